//! Per-thread private copies of the most updated feature rows of one side (hogwild with adagrad
//! and several threads), merged into the shared rows every [`MERGE_EVERY`] examples.

use super::{Features, Side};
use crate::models::sgd::SharedRows;
use crate::simd;
use crate::sparse::CsrView;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub(super) struct Shared {
    pub(super) params: SharedRows,
    pub(super) grad_acc: SharedRows,
    pub(super) step_acc: SharedRows,
    /// The features every thread keeps a private copy of (see [`Local`]), and each feature's
    /// slot among them (`NOT_HOT` for the others).
    hot: Vec<u32>,
    slot: Vec<u32>,
    /// One bit per feature, set for the hot ones: the test every row access makes, small
    /// enough to stay in cache where `slot` (4 bytes per feature) would miss at large catalogues.
    is_hot: Vec<u64>,
    /// The number of feature rows.
    n: usize,
    /// `ln(1 / scale)` of the side (the bits of an f64): the decay the threads have published
    /// since the rows last held the parameters themselves (see [`Local::decay`]).
    log_decay: AtomicU64,
    /// Held while a thread merges its copies of the hot rows: two merges of the same rows at
    /// once would lose one thread's changes of thousands of examples (see [`Local::merge`]).
    merging: Mutex<()>,
}

const NOT_HOT: u32 = u32::MAX;

impl Shared {
    pub(super) fn new(s: Side<'_>, w: usize, hot: Vec<u32>) -> Self {
        let n = s.params.len() / w.max(1);
        let mut slot = vec![NOT_HOT; if hot.is_empty() { 0 } else { n }];
        let mut is_hot = vec![0u64; if hot.is_empty() { 0 } else { n.div_ceil(64) }];
        for (k, &p) in hot.iter().enumerate() {
            slot[p as usize] = k as u32;
            is_hot[p as usize >> 6] |= 1 << (p & 63);
        }
        Shared {
            params: SharedRows::new(s.params, w),
            grad_acc: SharedRows::new(s.grad_acc, w),
            step_acc: SharedRows::new(s.step_acc, w),
            hot,
            slot,
            is_hot,
            n,
            log_decay: AtomicU64::new(0f64.to_bits()),
            merging: Mutex::new(()),
        }
    }

    /// Adds a thread's decay factor to the side's and returns the side's `ln(1 / scale)`.
    pub(super) fn publish(&self, factor: f64) -> f64 {
        let add = factor.ln();
        let mut cur = self.log_decay.load(Ordering::Relaxed);
        loop {
            let new = f64::from_bits(cur) + add;
            match self.log_decay.compare_exchange_weak(
                cur,
                new.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return new,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Multiplies every parameter row by the side's scale, which becomes 1: the rows hold the
    /// parameters themselves again. Run with no thread training.
    pub(super) fn fold(&self) {
        let log = f64::from_bits(self.log_decay.swap(0f64.to_bits(), Ordering::Relaxed));
        if log == 0.0 {
            return;
        }
        let scale = (-log).exp() as f32;
        for p in 0..self.n {
            // SAFETY: no thread trains while the rows are folded.
            for v in unsafe { self.params.row_mut(p) } {
                *v *= scale;
            }
        }
    }

    /// The slot of feature p when it is hot.
    #[inline(always)]
    pub(super) fn slot_of(&self, p: usize) -> Option<usize> {
        match self.is_hot.get(p >> 6) {
            Some(&bits) if bits >> (p & 63) & 1 == 1 => Some(self.slot[p] as usize),
            _ => None,
        }
    }

    /// Requests the shared rows that `need` names of the first features of row r of `f` into
    /// the second-level cache (see [`super::share`]), skipping hot features (trained in the
    /// thread's own copies).
    #[inline(always)]
    pub(super) fn prefetch(&self, f: Features<'_>, r: usize, need: Need) {
        for (p, _) in f.row(r).take(4) {
            if self.slot_of(p).is_none() {
                self.params.prefetch_row_to::<{ simd::L2 }>(p);
                if need == Need::Train {
                    self.grad_acc.prefetch_row_to::<{ simd::L2 }>(p);
                }
            }
        }
    }
}

/// What [`Shared::prefetch`] requests a feature's rows for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Training: its parameter and accumulator rows.
    Train,
    /// Scoring, perhaps (a negative candidate drawn ahead): its parameter rows.
    Score,
}

/// Examples a thread trains between merges of its private rows.
pub(super) const MERGE_EVERY: usize = 4096;

/// The most features of one side kept as private copies per thread.
const MAX_HOT: usize = 2048;

/// The features of one side updated at least `4 * nnz / MERGE_EVERY` times per epoch (about four
/// updates per merge window), the most updated first, at most [`MAX_HOT`]. `updates[r]` is how
/// often row r of the feature matrix is trained in an epoch.
pub(super) fn hot_features(f: &CsrView<'_>, updates: &[f64], nnz: usize) -> Vec<u32> {
    let mut per_feature = vec![0f64; f.n_cols()];
    for (r, &n) in updates.iter().enumerate() {
        for &p in f.row(r).0 {
            per_feature[p as usize] += n;
        }
    }
    let min = 4.0 * nnz as f64 / MERGE_EVERY as f64;
    let mut hot: Vec<u32> = (0..f.n_cols() as u32)
        .filter(|&p| per_feature[p as usize] >= min)
        .collect();
    hot.sort_by(|&a, &b| {
        per_feature[b as usize]
            .total_cmp(&per_feature[a as usize])
            .then(a.cmp(&b))
    });
    hot.truncate(MAX_HOT);
    hot.sort_unstable();
    hot
}

/// A thread's private copies of one side's hot feature rows (parameters and both accumulators,
/// `3 (d + 1)` values per slot) and their values at the last merge. Hogwild threads that write
/// the same rows (features shared by many items, such as tags) move the rows' cache lines between
/// cores on every update; with private copies each thread trains on its own and adds its changes
/// to the shared rows every [`MERGE_EVERY`] examples, taking the other threads' in return.
pub(super) struct Local {
    w: usize,
    rows: Vec<f32>,
    base: Vec<f32>,
    /// The side's scale as this thread knows it (see [`Local::decay`]), its f32 copy and
    /// reciprocal, the decay this thread has applied since it last published, and the side's
    /// published decay it last took (the bits of `Shared::log_decay`).
    scale: f64,
    shrink: f64,
    scale32: f32,
    shrink32: f32,
    unpublished: f64,
    seen: u64,
}

impl Local {
    pub(super) fn new(side: &Shared, w: usize) -> Self {
        let mut rows = vec![0f32; side.hot.len() * 3 * w];
        for (k, &p) in side.hot.iter().enumerate() {
            for (m, shared) in [&side.params, &side.grad_acc, &side.step_acc]
                .iter()
                .enumerate()
            {
                // SAFETY: a read; concurrent hogwild writes are part of the algorithm.
                let g = unsafe { shared.row_ref(p as usize) };
                rows[(3 * k + m) * w..(3 * k + m + 1) * w].copy_from_slice(g);
            }
        }
        Local {
            w,
            base: rows.clone(),
            rows,
            scale: 1.0,
            shrink: 1.0,
            scale32: 1.0,
            shrink32: 1.0,
            unpublished: 1.0,
            seen: side.log_decay.load(Ordering::Relaxed),
        }
    }

    /// The side's scale: its parameters are the rows times the scale (1 but in
    /// [`Regularization::Decay`](super::Regularization::Decay), where a decay of every parameter
    /// of the side is a division of the scale).
    #[inline(always)]
    pub(super) fn scale(&self) -> f32 {
        self.scale32
    }

    /// `1 / scale`, what a step of the parameters is multiplied by to be a step of the rows.
    #[inline(always)]
    pub(super) fn shrink(&self) -> f32 {
        self.shrink32
    }

    /// The scale in f64 (to decide when the rows must be folded).
    #[inline(always)]
    pub(super) fn scale_f64(&self) -> f64 {
        self.scale
    }

    /// Divides every parameter of the side by `factor` (>= 1), lazily: the scale is divided.
    #[inline(always)]
    pub(super) fn decay(&mut self, factor: f64) {
        self.scale /= factor;
        self.shrink *= factor;
        self.unpublished *= factor;
        self.scale32 = self.scale as f32;
        self.shrink32 = self.shrink as f32;
    }

    /// The decay this thread has applied since it last published (a factor >= 1).
    #[inline(always)]
    pub(super) fn unpublished(&self) -> f64 {
        self.unpublished
    }

    /// Publishes this thread's decay to the side and takes the side's scale, which includes the
    /// other threads' published decay.
    pub(super) fn publish(&mut self, side: &Shared) {
        if self.unpublished != 1.0 {
            let log = side.publish(self.unpublished);
            self.unpublished = 1.0;
            self.seen = log.to_bits();
            self.set_scale((-log).exp());
        }
    }

    /// Takes the decay the other threads have published since this thread last looked (one
    /// load when there is none): a thread that was descheduled while the others trained does
    /// not go on with the scale it had.
    #[inline(always)]
    pub(super) fn catch_up(&mut self, side: &Shared) {
        let now = side.log_decay.load(Ordering::Relaxed);
        if now != self.seen {
            self.seen = now;
            self.set_scale((-f64::from_bits(now)).exp() / self.unpublished);
        }
    }

    #[inline(always)]
    fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
        self.shrink = 1.0 / scale;
        self.scale32 = scale as f32;
        self.shrink32 = self.shrink as f32;
    }

    #[inline(always)]
    pub(super) fn params(&self, slot: usize) -> &[f32] {
        &self.rows[3 * slot * self.w..(3 * slot + 1) * self.w]
    }

    #[inline(always)]
    pub(super) fn rows_mut(&mut self, slot: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let w = self.w;
        let all = &mut self.rows[3 * slot * w..(3 * slot + 3) * w];
        let (theta, rest) = all.split_at_mut(w);
        let (acc, mom) = rest.split_at_mut(w);
        (theta, acc, mom)
    }

    /// Adds this thread's changes since the last merge to the shared rows (parameters and
    /// adagrad's sums of squares; changes add up because both are sums of updates) and takes the
    /// merged values.
    pub(super) fn merge(&mut self, side: &Shared) {
        if side.hot.is_empty() {
            return;
        }
        let w = self.w;
        // One merge at a time: the threads reach their merges together (every MERGE_EVERY
        // examples of parts trained at the same speed), and two merges of a row at once kept
        // only one thread's changes since the last merge, parameters and adagrad sums alike
        // (the lost sums raised the learning rates, hence the decay: two threads shrank the
        // factors up to 3x more than one, in runs whose threads stayed in step).
        let _one = side.merging.lock().unwrap_or_else(|e| e.into_inner());
        for (k, &p) in side.hot.iter().enumerate() {
            for (m, sh) in [&side.params, &side.grad_acc].iter().enumerate() {
                // SAFETY: the shared hot rows change only here (under `merging`) and in folds
                // (no thread trains then); a thread copying them at the start of its part may
                // read one mid-merge, as a hogwild read can.
                let g = unsafe { sh.row_mut(p as usize) };
                let range = (3 * k + m) * w..(3 * k + m + 1) * w;
                let (l, b) = (&mut self.rows[range.clone()], &mut self.base[range]);
                for ((g, l), b) in g.iter_mut().zip(l.iter_mut()).zip(b.iter_mut()) {
                    let v = *g + (*l - *b);
                    *g = v;
                    *l = v;
                    *b = v;
                }
            }
        }
    }
}

/// Each side's [`Local`] of one thread, and the learning rates of the current example's updates.
pub(super) struct Locals {
    pub(super) users: Local,
    pub(super) items: Local,
    pub(super) rates: Rates,
}

/// The sum and number of the learning rates of the elements an example updated.
#[derive(Default)]
pub(super) struct Rates {
    sum: f64,
    n: u64,
}

impl Rates {
    #[inline(always)]
    pub(super) fn add(&mut self, sum: f32, n: u32) {
        self.sum += sum as f64;
        self.n += n as u64;
    }

    /// Their mean (None without updates), and a new sum.
    #[inline(always)]
    pub(super) fn take_mean(&mut self) -> Option<f64> {
        let mean = (self.n > 0).then(|| self.sum / self.n as f64);
        *self = Rates::default();
        mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Csr;

    #[test]
    fn hot_features_are_the_most_updated_above_the_threshold() {
        // 3 rows x 4 features: feature 3 is in every row, feature 0 in rows 0 and 1
        let f = Csr::from_triplets(
            3,
            4,
            &[
                (0, 0, 1.0),
                (0, 3, 1.0),
                (1, 0, 1.0),
                (1, 3, 1.0),
                (2, 1, 1.0),
                (2, 3, 1.0),
            ],
        )
        .unwrap(); // ok: test data, valid triplets
        let nnz = MERGE_EVERY; // threshold: 4 updates per epoch
                               // per feature: 0 -> 5, 1 -> 1, 2 -> 0, 3 -> 6
        assert_eq!(hot_features(&f.view(), &[2.0, 3.0, 1.0], nnz), vec![0, 3]);
        assert_eq!(
            hot_features(&f.view(), &[1.0, 1.0, 1.0], nnz),
            Vec::<u32>::new()
        );
        // more candidates than MAX_HOT: the most updated are kept, returned in id order
        let n = MAX_HOT + 3;
        let many = Csr::identity(n);
        let updates: Vec<f64> = (0..n).map(|r| 10.0 + r as f64).collect();
        let hot = hot_features(&many.view(), &updates, nnz);
        assert_eq!(hot, (3..n as u32).collect::<Vec<_>>());
    }

    #[test]
    fn merges_add_every_threads_changes() {
        let w = 2;
        let mut params = vec![1.0f32, 2.0, 5.0, 6.0];
        let mut grad_acc = vec![1.0f32; 4];
        let mut step_acc = vec![0.0f32; 4];
        let side = Shared::new(
            Side {
                params: &mut params,
                grad_acc: &mut grad_acc,
                step_acc: &mut step_acc,
            },
            w,
            vec![1],
        );
        assert_eq!(side.slot_of(0), None);
        assert_eq!(side.slot_of(1), Some(0));
        let (mut a, mut b) = (Local::new(&side, w), Local::new(&side, w));
        assert_eq!(a.params(0), &[5.0, 6.0]);
        {
            let (theta, acc, _) = a.rows_mut(0);
            theta[0] += 1.0;
            acc[1] += 0.5;
        }
        {
            let (theta, acc, _) = b.rows_mut(0);
            theta[0] -= 3.0;
            theta[1] += 2.0;
            acc[1] += 0.25;
        }
        a.merge(&side);
        b.merge(&side);
        // SAFETY: no other thread
        let (p, g) = unsafe {
            (
                side.params.row_ref(1).to_vec(),
                side.grad_acc.row_ref(1).to_vec(),
            )
        };
        assert_eq!(p, vec![3.0, 8.0]);
        assert_eq!(g, vec![1.0, 1.75]);
        // b merged last and holds the merged rows; a takes them at its next merge
        assert_eq!(b.params(0), &[3.0, 8.0]);
        a.merge(&side);
        assert_eq!(a.params(0), &[3.0, 8.0]);
        // the row that is not hot was never touched
        // SAFETY: no other thread
        assert_eq!(unsafe { side.params.row_ref(0).to_vec() }, vec![1.0, 2.0]);
    }
}
