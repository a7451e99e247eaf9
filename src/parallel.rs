//! Thread pools. Every parallel kernel takes `num_threads` (0 = all cores) and runs inside a rayon
//! pool of exactly that size. Pools are created once per size and cached for the life of the
//! process; library code never configures rayon's global pool.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The number of threads `num_threads` stands for: itself, or all available cores when 0.
pub fn resolve_threads(num_threads: usize) -> usize {
    if num_threads > 0 {
        num_threads
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// The cached pool with `resolve_threads(num_threads)` threads.
pub fn pool(num_threads: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let threads = resolve_threads(num_threads);
    // A poisoned lock only means another thread panicked while inserting; the map is still valid.
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(Arc::clone(p));
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
    pools.insert(threads, Arc::clone(&p));
    Ok(p)
}

/// Runs `f` inside the cached pool of `num_threads` threads; rayon iterators inside use that pool.
pub fn install<R: Send>(num_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool(num_threads)?.install(f))
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
}
