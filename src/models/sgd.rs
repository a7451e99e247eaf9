//! What the SGD models (BPR, LMF, LightFM) share: seeded generators, negative sampling, and rows of a
//! factor matrix that several threads update at once.

use crate::error::{try_zeroed, Error, Result};
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

/// Where negative items are drawn from: an index `k`, mapped to an item by `ids[k]` (`None`:
/// the item is `k`).
#[derive(Debug, Clone, Copy)]
pub enum Negatives<'a> {
    /// `k` drawn from `table` (in proportion to its weights). With interaction counts as the
    /// weights this is implicit's popularity sampling (the column of a uniformly drawn
    /// interaction), from a table that stays in cache and costs O(1) per draw.
    Weighted {
        table: &'a Alias,
        ids: Option<&'a [u32]>,
    },
    /// `k` uniform below `count` (at least 1).
    Uniform { count: u32, ids: Option<&'a [u32]> },
    /// As `Weighted` with `ids`, from the table resolved through them ([`Alias::resolved`]).
    Resolved(&'a [AliasEntry]),
}

impl Negatives<'_> {
    /// How many distinct items a draw can return (at most).
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        match *self {
            Negatives::Weighted { table, ids } => ids.map_or(table.len(), <[u32]>::len),
            Negatives::Uniform { count, ids } => ids.map_or(count as usize, <[u32]>::len),
            Negatives::Resolved(table) => table.len(),
        }
    }

    #[inline(always)]
    pub(crate) fn draw(&self, rng: &mut SmallRng) -> u32 {
        let (k, ids) = match *self {
            Negatives::Weighted { table, ids } => (table.draw(rng), ids),
            Negatives::Uniform { count, ids } => (rng.random_range(0..count) as usize, ids),
            Negatives::Resolved(table) => return draw_resolved(table, rng),
        };
        ids.map_or(k as u32, |ids| ids[k])
    }
}

/// A discrete distribution over `0..n` in proportion to non-negative weights, drawn in O(1) by
/// Walker's alias method (Vose's construction): pick a slot uniformly, keep it with probability
/// `keep[slot]`, else take `alias[slot]`.
#[derive(Debug, Clone)]
pub struct Alias {
    keep: Vec<f32>,
    alias: Vec<u32>,
}

impl Alias {
    /// `None` when the weights are empty or sum to zero.
    pub fn new(weights: &[f64]) -> Option<Self> {
        Self::from_weights(weights.to_vec())
    }

    /// [`Alias::new`] taking the weights by value: they become the construction's scaled
    /// probabilities in place (per outcome 8 bytes of weights, 4 of work lists and the table's
    /// 8, where a copy and `usize` lists took 20 more: 40 MB less at 10^6 items).
    pub fn from_weights(mut scaled: Vec<f64>) -> Option<Self> {
        let n = scaled.len();
        let total: f64 = scaled.iter().sum();
        if n == 0 || total <= 0.0 || n > u32::MAX as usize {
            return None;
        }
        for w in &mut scaled {
            *w = *w * n as f64 / total;
        }
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&k| scaled[k as usize] < 1.0);
        let mut keep = vec![1f32; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let (s, l) = (s as usize, l as usize);
            keep[s] = scaled[s] as f32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l as u32);
            }
        }
        // what is left is 1 up to rounding, and keeps its initial 1: kept with certainty (a zero
        // weight is never left: it sits in `small` at 0, a whole unit below the rest)
        Some(Alias { keep, alias })
    }

    /// The number of outcomes (weights), zero weights included.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    #[inline(always)]
    pub fn draw(&self, rng: &mut SmallRng) -> usize {
        let r: u64 = rng.random();
        let (slot, coin) = Self::split(r, self.keep.len());
        if coin < self.keep[slot] {
            slot
        } else {
            self.alias[slot] as usize
        }
    }

    /// The slot a draw `r` reads in a table of `len` slots.
    #[inline(always)]
    pub(crate) fn slot(r: u64, len: usize) -> usize {
        Self::split(r, len).0
    }

    /// The slot and the coin of a draw `r`: the high half picks the slot (multiply-shift), the
    /// low half is the coin.
    #[inline(always)]
    fn split(r: u64, len: usize) -> (usize, f32) {
        let slot = (((r >> 32) * len as u64) >> 32) as usize;
        let coin = (r as u32 >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
        (slot, coin)
    }

    /// The table with its outcomes mapped through `ids` (one id per outcome) and stored beside
    /// each slot's probability: a draw reads one 16-byte entry where [`Alias::draw`] followed by
    /// `ids[..]` reads up to three arrays in a dependent chain, each a cache miss when the table
    /// is large or the cache is busy with factor rows. Draws the same ids from the same
    /// generator state as `ids[self.draw(rng)]`.
    pub(crate) fn resolved(&self, ids: &[u32]) -> Vec<AliasEntry> {
        (0..self.len())
            .map(|slot| AliasEntry {
                keep: self.keep[slot],
                kept: ids[slot],
                other: ids[self.alias[slot] as usize],
                _pad: 0,
            })
            .collect()
    }
}

/// A slot of a [`Alias::resolved`] table.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub struct AliasEntry {
    keep: f32,
    kept: u32,
    other: u32,
    _pad: u32,
}

/// A draw from a [`Alias::resolved`] table (not empty).
#[inline(always)]
pub(crate) fn draw_resolved(table: &[AliasEntry], rng: &mut SmallRng) -> u32 {
    let r: u64 = rng.random();
    let (slot, coin) = Alias::split(r, table.len());
    let e = &table[slot];
    if coin < e.keep {
        e.kept
    } else {
        e.other
    }
}

/// The alias table of the interaction counts of the columns `ids` (all columns when `None`),
/// from per-column `counts`; `None` when they are all zero.
pub(crate) fn popularity(counts: &[u64], ids: Option<&[u32]>) -> Option<Alias> {
    let w: Vec<f64> = match ids {
        Some(ids) => ids.iter().map(|&i| counts[i as usize] as f64).collect(),
        None => counts.iter().map(|&c| c as f64).collect(),
    };
    Alias::from_weights(w)
}

/// The alias table of the interaction counts of every column of `indices` (`n_cols` columns),
/// built in the counts' own memory; `None` when there are none; an error when the counts do not
/// fit in memory.
pub(crate) fn column_popularity(indices: &[i32], n_cols: usize) -> Result<Option<Alias>> {
    // same size and alignment: the conversion reuses the counts' allocation
    Ok(Alias::from_weights(
        column_counts(indices, n_cols)?
            .into_iter()
            .map(|c| c as f64)
            .collect(),
    ))
}

/// Interactions per column of `indices` (valid column ids below `n_cols`).
pub fn column_counts(indices: &[i32], n_cols: usize) -> Result<Vec<u64>> {
    let per_col = || format!("the matrix has {n_cols} columns");
    let mut counts: Vec<u64> = try_zeroed(n_cols, "the interactions per item", per_col)?;
    for &i in indices {
        counts[i as usize] += 1;
    }
    Ok(counts)
}

/// Negatives for rows folded in after training, when the training interactions are gone: by
/// item popularity (interaction counts kept from training) when known, else uniform.
pub enum FoldInNegatives {
    Weighted(Alias),
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
        if weights.iter().any(|w| !(*w >= 0.0 && w.is_finite())) {
            return Err(Error::invalid(
                "item popularity",
                "must hold finite values >= 0",
            ));
        }
        let w: Vec<f64> = weights.iter().map(|&w| w as f64).collect();
        Alias::from_weights(w).map_or(fallback, |t| Ok(FoldInNegatives::Weighted(t)))
    }

    pub fn view(&self) -> Negatives<'_> {
        match self {
            FoldInNegatives::Weighted(table) => Negatives::Weighted { table, ids: None },
            FoldInNegatives::Uniform(n) => Negatives::Uniform {
                count: *n,
                ids: None,
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

    /// Requests the cache lines of row `i` (a hint; never reads the row).
    #[inline(always)]
    pub(crate) fn prefetch_row(&self, i: usize) {
        self.prefetch_row_to::<{ crate::simd::L1 }>(i)
    }

    /// [`SharedRows::prefetch_row`] into cache level `LEVEL` (see [`crate::simd::prefetch_to`]).
    #[inline(always)]
    pub(crate) fn prefetch_row_to<const LEVEL: i32>(&self, i: usize) {
        if i < self.n {
            let start = self.ptr.wrapping_add(i * self.d);
            for k in (0..self.d).step_by(16) {
                crate::simd::prefetch_to::<LEVEL, f32>(start.wrapping_add(k));
            }
        }
    }

    /// Row `i`, to read.
    ///
    /// # Safety
    /// The caller must not hold a mutable reference to row `i` in this thread, and accepts that
    /// other threads may update it while it is read (see the type's documentation).
    #[inline(always)]
    pub(crate) unsafe fn row_ref(&self, i: usize) -> &[f32] {
        assert!(i < self.n, "row {i} out of {} rows", self.n);
        // SAFETY: in bounds by the assertion; aliasing as the caller promises.
        unsafe { std::slice::from_raw_parts(self.ptr.add(i * self.d), self.d) }
    }

    /// Row `i`, to update.
    ///
    /// # Safety
    /// The caller must not hold another reference to row `i` in this thread, and accepts that
    /// other threads may read or update it concurrently (see the type's documentation).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row_mut(&self, i: usize) -> &mut [f32] {
        assert!(i < self.n, "row {i} out of {} rows", self.n);
        // SAFETY: in bounds by the assertion; aliasing as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.d), self.d) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_table_draws_what_the_table_and_ids_draw() {
        let weights = [5.0, 0.0, 1.0, 3.0, 0.5, 2.0, 0.0, 7.0];
        let ids = [40u32, 41, 42, 43, 44, 45, 46, 47];
        let table = Alias::new(&weights).unwrap(); // ok: test data, positive weights
        let resolved = table.resolved(&ids);
        let (mut a, mut b) = (stream(9, 1, 2), stream(9, 1, 2));
        let mut seen = [0usize; 8];
        for _ in 0..20_000 {
            let want = ids[table.draw(&mut a)];
            let got = draw_resolved(&resolved, &mut b);
            assert_eq!(got, want);
            seen[(got - 40) as usize] += 1;
        }
        // zero weights never drawn, the others in proportion (loose bounds)
        assert_eq!((seen[1], seen[6]), (0, 0));
        let total: f64 = weights.iter().sum();
        for (k, &w) in weights.iter().enumerate() {
            let share = seen[k] as f64 / 20_000.0;
            assert!((share - w / total).abs() < 0.02, "item {k}: {share}");
        }
        // the slot a draw reads is the one `slot` names
        let r = 0x1234_5678_9abc_def0u64;
        assert_eq!(Alias::slot(r, 8), Alias::split(r, 8).0);
    }
}
