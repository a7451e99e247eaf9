//! What the SGD models (BPR, LMF) share: seeded generators, negative sampling, and rows of a
//! factor matrix that several threads update at once.

use crate::error::{Error, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A generator for one stream of draws (a thread, a block, a row), from a call's seed and the
/// stream's coordinates, so that the draws of a stream never depend on how streams are scheduled.
pub(crate) fn stream(seed: u64, a: u64, b: u64) -> SmallRng {
    // splitmix64 finaliser over the combined words: nearby coordinates give unrelated seeds
    let mut z = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// Where negative items are drawn from.
#[derive(Debug, Clone, Copy)]
pub enum Negatives<'a> {
    /// The column of a uniformly drawn stored interaction: items in proportion to their
    /// interaction counts (implicit's sampling). Never empty.
    Pool(&'a [i32]),
    /// Items in proportion to weights given as a cumulative sum (increasing, last entry > 0).
    Cumulative(&'a [f64]),
    /// Uniform over `start, start + step, ...` (`count >= 1` items).
    Uniform { start: u32, step: u32, count: u32 },
}

impl Negatives<'_> {
    #[inline(always)]
    pub(crate) fn draw(&self, rng: &mut SmallRng) -> u32 {
        match *self {
            Negatives::Pool(pool) => pool[rng.random_range(0..pool.len())] as u32,
            Negatives::Cumulative(cum) => {
                let total = cum[cum.len() - 1];
                let r = rng.random::<f64>() * total;
                // first entry above r; r < total, so it exists
                cum.partition_point(|&c| c <= r).min(cum.len() - 1) as u32
            }
            Negatives::Uniform { start, step, count } => start + step * rng.random_range(0..count),
        }
    }
}

/// Negatives for rows folded in after training, when the training interactions are gone: by
/// item popularity (interaction counts kept from training) when known, else uniform.
pub enum FoldInNegatives {
    Cumulative(Vec<f64>),
    Uniform(u32),
}

impl FoldInNegatives {
    /// `popularity` (one non-negative weight per item) unless `uniform` is asked for or it is
    /// absent or all zero.
    pub fn new(popularity: Option<&[f32]>, n_items: usize, uniform: bool) -> Result<Self> {
        let fallback = Ok(FoldInNegatives::Uniform(n_items as u32));
        let Some(weights) = popularity.filter(|_| !uniform) else {
            return fallback;
        };
        if weights.len() != n_items {
            return Err(Error::shape(
                "item popularity",
                n_items.to_string(),
                weights.len().to_string(),
            ));
        }
        let mut acc = 0f64;
        let mut cum = Vec::with_capacity(n_items);
        for &w in weights {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(Error::invalid(
                    "item popularity",
                    "must hold finite values >= 0",
                ));
            }
            acc += w as f64;
            cum.push(acc);
        }
        if acc > 0.0 {
            Ok(FoldInNegatives::Cumulative(cum))
        } else {
            fallback
        }
    }

    pub fn view(&self) -> Negatives<'_> {
        match self {
            FoldInNegatives::Cumulative(c) => Negatives::Cumulative(c),
            FoldInNegatives::Uniform(n) => Negatives::Uniform {
                start: 0,
                step: 1,
                count: *n,
            },
        }
    }
}

/// `1 / (1 + exp(-x))` without overflow.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let z = x.exp();
        z / (1.0 + z)
    }
}

/// The rows of a row-major factor matrix, for kernels in which threads update rows concurrently.
/// Either the kernel guarantees that concurrent tasks touch disjoint rows (the reproducible BPR
/// schedule), or it is hogwild SGD (Recht et al. 2011): threads read and write shared rows
/// without locks, and an occasional lost or mixed update of an `f32` is part of the algorithm.
pub(crate) struct SharedRows {
    ptr: *mut f32,
    d: usize,
    n: usize,
}

// SAFETY: see the type's documentation; every row access is bounds-checked against `n`.
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

impl SharedRows {
    pub(crate) fn new(data: &mut [f32], d: usize) -> Self {
        SharedRows {
            ptr: data.as_mut_ptr(),
            d,
            n: data.len().checked_div(d).unwrap_or(0),
        }
    }

    /// Row `i`.
    ///
    /// # Safety
    /// The caller must not hold another reference to row `i` in this thread, and accepts that
    /// other threads may update it concurrently (see the type's documentation).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row(&self, i: usize) -> &mut [f32] {
        assert!(i < self.n, "row {i} out of {} rows", self.n);
        // SAFETY: in bounds by the assertion; aliasing as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.d), self.d) }
    }
}
