//! Scores as dot products of query vectors with item vectors (the factor models), computed tile by
//! tile with faer's GEMM, or, for calls of one to [`STREAMED_QUERIES`] queries, query by query
//! with the item rows streamed from memory ([`streamed_dots`]).

use super::batch::{BlockScorer, Candidates};
use crate::error::{Error, Result};
use crate::linalg::{row_norms, streamed_dots};
use crate::simd::Arch;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::ArrayView2;
use std::borrow::Cow;

/// Queries per block and positions per tile. 64 x 2048 keeps the tile (512 KiB) and, for up to 64
/// factors, the item block in L2; measured fastest on 2 cores with the position-major layout.
const BLOCK_QUERIES: usize = 64;
const TILE_POSITIONS: usize = 2048;
/// Calls of at most this many queries score each query with [`streamed_dots`] (the first reads
/// the tile from memory at full bandwidth, the others from cache) instead of a GEMM, which reads
/// the items at about half the bandwidth. Medians per call, GEMM against streamed, 2 threads, 64
/// factors: 1M items, 2 queries 12.9 / 8.3 ms, 3: 12.7 / 9.5, 4: 13.0 / 11.7, 8: 15.7 / 19.5
/// (each further query adds a pass over the tile in cache); 200,000 items, 3: 3.1 / 2.2, 4: 4.7 /
/// 2.5. Only whole calls that small: a batch's last block keeps the GEMM, whose per-element
/// arithmetic the first pass reproduces.
const STREAMED_QUERIES: usize = 4;

/// Item-row norms (f32) for which a cosine is the f32 dot product divided by the f32 norm: no
/// square of the row under- or overflows enough to matter, and a dot product with a unit query
/// (at most the norm) cannot overflow. Rows outside are scored in f64.
const COSINE_F32_NORMS: std::ops::RangeInclusive<f32> = 9.094947e-13..=1.0995116e12; // 2^-40..=2^40

/// `a . b` summed in f64.
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Dot-product scorer over row-major query (`n_queries x f`) and item (`n_items x f`) factors;
/// with [`DotScorer::cosine`], each item's scores are divided by its row's norm.
pub struct DotScorer<'a> {
    queries: &'a [f32],
    n_queries: usize,
    items: Cow<'a, [f32]>,
    n_positions: usize,
    factors: usize,
    arch: Arch,
    cosine: bool,
}

fn contiguous<'a>(what: &str, a: &ArrayView2<'a, f32>) -> Result<&'a [f32]> {
    a.to_slice()
        .ok_or_else(|| Error::invalid(what, "must be a C-contiguous (row-major) array"))
}

impl<'a> DotScorer<'a> {
    /// A scorer for `queries` against the `candidates` rows of `item_factors`. With a candidate
    /// subset the subset's rows are gathered once, so every tile is one contiguous GEMM.
    pub fn new(
        queries: ArrayView2<'a, f32>,
        item_factors: ArrayView2<'a, f32>,
        candidates: &Candidates,
    ) -> Result<Self> {
        let factors = queries.ncols();
        if item_factors.ncols() != factors {
            return Err(Error::shape(
                "item factors columns (must equal the query factors)",
                factors,
                item_factors.ncols(),
            ));
        }
        if item_factors.nrows() != candidates.n_items() {
            return Err(Error::shape(
                "item factors rows",
                candidates.n_items(),
                item_factors.nrows(),
            ));
        }
        let q = contiguous("queries", &queries)?;
        let all = contiguous("item_factors", &item_factors)?;
        let items = match candidates.subset() {
            None => Cow::Borrowed(all),
            Some(ids) => Cow::Owned(
                ids.iter()
                    .flat_map(|&i| &all[i as usize * factors..(i as usize + 1) * factors])
                    .copied()
                    .collect(),
            ),
        };
        Ok(DotScorer {
            queries: q,
            n_queries: queries.nrows(),
            items,
            n_positions: candidates.n_positions(),
            factors,
            arch: Arch::new(),
            cosine: false,
        })
    }

    /// Scores `q . v / |v|` for item rows `v` (0 for a zero row): with normalised queries, the
    /// cosine, computed from the factors as they are (nothing derived from them is kept).
    pub fn cosine(self) -> Self {
        DotScorer {
            cosine: true,
            ..self
        }
    }

    /// Whether scores are divided by the item rows' norms.
    pub fn is_cosine(&self) -> bool {
        self.cosine
    }
}

impl DotScorer<'_> {
    /// `(queries per block, positions per tile)` of every GEMM this scorer runs.
    pub const TILE: (usize, usize) = (BLOCK_QUERIES, TILE_POSITIONS);

    /// `(queries, candidate item rows, n_queries, n_positions, factors)`, both row-major.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn parts(&self) -> (&[f32], &[f32], usize, usize, usize) {
        (
            self.queries,
            &self.items,
            self.n_queries,
            self.n_positions,
            self.factors,
        )
    }
}

/// Per-thread buffers of [`DotScorer`]: the norms of a tile's item rows (cosine scores) and one
/// query's scores (streamed queries).
#[derive(Default)]
pub struct TileScratch {
    norms: Vec<f32>,
    row: Vec<f32>,
}

impl BlockScorer for DotScorer<'_> {
    type Scratch = TileScratch;

    fn n_queries(&self) -> usize {
        self.n_queries
    }

    fn n_positions(&self) -> usize {
        self.n_positions
    }

    fn tile_shape(&self) -> (usize, usize) {
        (BLOCK_QUERIES, TILE_POSITIONS)
    }

    fn make_scratch(&self) -> TileScratch {
        TileScratch::default()
    }

    fn score_tile(
        &self,
        q0: usize,
        m: usize,
        p0: usize,
        nt: usize,
        out: &mut [f32],
        scratch: &mut TileScratch,
    ) {
        let TileScratch { norms, row } = scratch;
        let f = self.factors;
        let out = &mut out[..m * nt];
        if f == 0 {
            out.fill(0.0);
            return;
        }
        if m == 1 {
            // one query (a single-user call): the scores stream the item rows from memory once,
            // where a GEMM (or faer's matrix-vector kernel) reads at half the bandwidth
            let q = &self.queries[q0 * f..(q0 + 1) * f];
            streamed_dots(self.arch, &self.items[p0 * f..], q, out);
        } else if m == self.n_queries && m <= STREAMED_QUERIES {
            row.resize(nt, 0.0);
            for q in 0..m {
                let query = &self.queries[(q0 + q) * f..(q0 + q + 1) * f];
                streamed_dots(self.arch, &self.items[p0 * f..], query, row);
                for (o, &s) in out.iter_mut().skip(q).step_by(m).zip(row.iter()) {
                    *o = s;
                }
            }
        } else {
            let a = MatRef::from_row_major_slice(&self.queries[q0 * f..(q0 + m) * f], m, f);
            let b = MatRef::from_row_major_slice(&self.items[p0 * f..(p0 + nt) * f], nt, f);
            // Column-major m x nt is the position-major layout the driver scans.
            let c = MatMut::from_column_major_slice_mut(out, m, nt);
            faer::linalg::matmul::matmul(c, Accum::Replace, a, b.transpose(), 1.0f32, Par::Seq);
        }
        if self.cosine {
            // the tile's rows were just read: their norms come from cache
            norms.resize(nt, 0.0);
            row_norms(self.arch, &self.items[p0 * f..(p0 + nt) * f], f, norms);
            for (r, (scores, &n)) in out.chunks_exact_mut(m).zip(norms.iter()).enumerate() {
                if COSINE_F32_NORMS.contains(&n) {
                    for s in scores {
                        *s /= n;
                    }
                } else {
                    // a zero row (scores 0), or one whose f32 squares or dot products may have
                    // under- or overflowed: its cosines in f64, as the normalised factors of a
                    // batch are computed
                    let row = &self.items[(p0 + r) * f..(p0 + r + 1) * f];
                    let n = dot_f64(row, row).sqrt();
                    for (qi, s) in scores.iter_mut().enumerate() {
                        let q = &self.queries[(q0 + qi) * f..(q0 + qi + 1) * f];
                        *s = if n > 0.0 {
                            (dot_f64(q, row) / n) as f32
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}
