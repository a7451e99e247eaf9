//! Thread pools. Every parallel kernel takes `num_threads` (0 = all cores) and runs inside a rayon
//! pool of that size, at most [`MAX_THREADS`]. Pools are created on first use and cached, at most
//! [`CACHED_POOLS`] of them (the least recently used is dropped, its threads exit once idle);
//! library code never configures rayon's global pool.
//!
//! Fork safety: a forked child has none of its parent's threads, so a pool cached before
//! `fork()` would wait forever for workers that do not exist. [`forget_pools`] (called in the
//! child, by the Python package's `os.register_at_fork` hook) drops the whole cache without
//! touching it: the old pools and their lock are leaked, never joined or locked, and the child
//! creates fresh pools on its next call.

use crate::error::{Error, Result};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::RefCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

/// The most threads a pool gets: larger requests are served by a pool of this size (a kernel
/// gains nothing from more threads than cores, and thousands of threads exhaust the process's
/// thread and memory limits).
pub const MAX_THREADS: usize = 256;

/// The most pools kept alive at once.
pub const CACHED_POOLS: usize = 4;

/// The number of threads `num_threads` stands for: itself, or all available cores when 0, at
/// most [`MAX_THREADS`].
pub fn resolve_threads(num_threads: usize) -> usize {
    let n = if num_threads > 0 {
        num_threads
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    };
    n.min(MAX_THREADS)
}

/// Cached pools by size, the most recently used last.
type Cache = Mutex<Vec<(usize, Arc<ThreadPool>)>>;

static CACHE: AtomicPtr<Cache> = AtomicPtr::new(ptr::null_mut());

fn cache() -> &'static Cache {
    let p = CACHE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a published cache is never freed (forget_pools leaks it).
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(Cache::default()));
    match CACHE.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `fresh` was just published and is never freed.
        Ok(_) => unsafe { &*fresh },
        Err(existing) => {
            // SAFETY: `fresh` was never published; `existing` is never freed.
            drop(unsafe { Box::from_raw(fresh) });
            unsafe { &*existing }
        }
    }
}

/// Forgets every cached pool without dropping, joining or locking anything: for a process just
/// forked, whose copies of the pools have no threads (and whose cache lock may have been held by
/// a thread that does not exist in it). Leaks the old pools' memory (a few KiB each).
pub fn forget_pools() {
    let fresh = Box::into_raw(Box::new(Cache::default()));
    // the old cache (and the pools in it) is deliberately leaked
    let _old = CACHE.swap(fresh, Ordering::AcqRel);
}

/// The cached pool with `resolve_threads(num_threads)` threads.
pub fn pool(num_threads: usize) -> Result<Arc<ThreadPool>> {
    let threads = resolve_threads(num_threads);
    // A poisoned lock only means another thread panicked while inserting; the list is still valid.
    let mut pools = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(at) = pools.iter().position(|(n, _)| *n == threads) {
        let entry = pools.remove(at);
        let p = Arc::clone(&entry.1);
        pools.push(entry);
        return Ok(p);
    }
    if pools.len() >= CACHED_POOLS {
        // dropped here unless a running call still holds it; its threads exit once idle
        pools.remove(0);
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tacitrec-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool {
            threads,
            reason: e.to_string(),
        })?;
    let p = Arc::new(p);
    pools.push((threads, Arc::clone(&p)));
    Ok(p)
}

/// A call's cancellation flag. The Python bindings set it when Ctrl-C (any signal whose handler
/// raises) arrives during a kernel (`src/python/interrupt.rs`); every long kernel reads it once
/// on entry ([`stop_flag`]) and checks it between chunks of work, skipping what is left and
/// returning [`Error::Interrupted`]. Outside the bindings it is never set, and checking it costs
/// one relaxed load.
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<Arc<AtomicBool>>);

impl Stop {
    /// A flag that can be set.
    pub fn new() -> Self {
        Stop(Some(Arc::new(AtomicBool::new(false))))
    }

    pub fn set(&self) {
        if let Some(f) = &self.0 {
            f.store(true, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// `Err(Error::Interrupted)` once set.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

thread_local! {
    static CURRENT_STOP: RefCell<Stop> = RefCell::new(Stop::default());
}

/// The stop flag of the call running on this thread: the one [`with_stop`] installed, or one
/// that is never set. Kernels read it on entry, on the thread that called them, and hand it to
/// their workers.
pub fn stop_flag() -> Stop {
    CURRENT_STOP.with(|c| c.borrow().clone())
}

/// Runs `f` with `stop` as this thread's [`stop_flag`].
pub fn with_stop<R>(stop: &Stop, f: impl FnOnce() -> R) -> R {
    struct Restore(Stop);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = std::mem::take(&mut self.0);
            CURRENT_STOP.with(|c| *c.borrow_mut() = old);
        }
    }
    let old = CURRENT_STOP.with(|c| c.replace(stop.clone()));
    let _restore = Restore(old);
    f()
}

/// The first error met by any thread of a parallel call (say, a thread whose scratch could not
/// be allocated; the other threads go on). Poisoning is ignored: the value is an `Option`
/// that a panicking thread cannot leave half-written.
#[derive(Default)]
pub struct FirstError(Mutex<Option<Error>>);

impl FirstError {
    /// Keeps `e` unless an earlier error was kept.
    pub fn record(&self, e: Error) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }

    /// The error kept, if any.
    pub fn into_inner(self) -> Option<Error> {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `f` inside the cached pool of `num_threads` threads; rayon iterators inside use that pool.
pub fn install<R: Send>(num_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool(num_threads)?.install(f))
}

/// The driver of every top-k kernel: calls `op(state, block, ids, scores)` for each block of
/// `rows` consecutive queries of a result that holds `k` ids and scores per query (the slices
/// are the block's own), in the pool of `num_threads` threads, `state` made by `init` for each
/// run of blocks a thread takes. A result of one block runs on the calling thread: handing it
/// to a pool and waiting for it costs two thread wake-ups, tens of microseconds, which a
/// single-user call would notice (`op` must not start parallel work of its own).
pub fn for_each_block<T>(
    num_threads: usize,
    ids: &mut [i32],
    scores: &mut [f32],
    k: usize,
    rows: usize,
    init: impl Fn() -> T + Send + Sync,
    op: impl Fn(&mut T, usize, &mut [i32], &mut [f32]) + Send + Sync,
) -> Result<()> {
    let len = rows.max(1) * k.max(1);
    if ids.len() <= len {
        op(&mut init(), 0, ids, scores);
        return Ok(());
    }
    install(num_threads, || {
        ids.par_chunks_mut(len)
            .zip(scores.par_chunks_mut(len))
            .enumerate()
            .for_each_init(init, |state, (block, (ids, scores))| {
                op(state, block, ids, scores)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_has_requested_size_and_is_cached() {
        let n = install(3, rayon::current_num_threads).unwrap(); // ok: test
        assert_eq!(n, 3);
        let a = pool(3).unwrap(); // ok: test
        let b = pool(3).unwrap(); // ok: test
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            install(0, rayon::current_num_threads).unwrap(), // ok: test
            resolve_threads(0)
        );
    }

    #[test]
    fn blocks_cover_the_result_once_and_one_block_stays_on_this_thread() {
        for (n_rows, rows, k) in [(10, 4, 3), (8, 4, 2), (4, 4, 5), (1, 64, 10), (0, 4, 2)] {
            let (mut ids, mut scores) = (vec![-1i32; n_rows * k], vec![0f32; n_rows * k]);
            let caller = std::thread::current().id();
            let on_caller = AtomicBool::new(true);
            for_each_block(
                2,
                &mut ids,
                &mut scores,
                k,
                rows,
                || 0usize,
                |calls, block, ids, scores| {
                    *calls += 1;
                    assert_eq!(ids.len(), scores.len());
                    assert_eq!(ids.len(), (rows * k).min(n_rows * k - block * rows * k));
                    ids.fill(block as i32);
                    scores.fill(block as f32);
                    if std::thread::current().id() != caller {
                        on_caller.store(false, Ordering::Relaxed);
                    }
                },
            )
            .unwrap(); // ok: test
            let want: Vec<i32> = (0..n_rows * k).map(|e| (e / (rows * k)) as i32).collect();
            assert_eq!(ids, want);
            if n_rows <= rows {
                assert!(
                    on_caller.load(Ordering::Relaxed),
                    "one block runs on the caller"
                );
            }
        }
    }

    #[test]
    fn stop_flags_are_per_call_and_restored() {
        assert!(!stop_flag().is_set());
        let stop = Stop::new();
        with_stop(&stop, || {
            let inner = stop_flag();
            assert!(!inner.is_set());
            stop.set();
            assert!(inner.is_set());
            assert_eq!(inner.check(), Err(Error::Interrupted));
        });
        assert!(!stop_flag().is_set());
        Stop::default().set(); // a flag that cannot be set stays clear
        assert!(!Stop::default().is_set());
    }

    #[test]
    fn thread_counts_are_capped_and_pools_bounded() {
        assert_eq!(resolve_threads(usize::MAX), MAX_THREADS);
        assert_eq!(resolve_threads(MAX_THREADS + 1), MAX_THREADS);
        // many sizes in turn: the cache keeps a bounded number, so threads do not pile up
        for n in 1..=40 {
            assert_eq!(install(n, rayon::current_num_threads).unwrap(), n); // ok: test
        }
        let len = cache().lock().map(|c| c.len()).unwrap_or(0);
        assert!(len <= CACHED_POOLS, "{len} pools cached");
    }
}
