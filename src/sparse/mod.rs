//! Compressed sparse row matrices over borrowed slices.
//!
//! The canonical form at the boundary is indptr `i64`, indices `i32`, data `f32`, with every row's
//! indices strictly increasing (sorted, no duplicates). [`CsrView::new`] is the one validation
//! function every binding goes through; once a view exists its invariants hold, so kernels index
//! it without further checks.

pub mod build;
mod ops;
pub mod weighting;

pub use ops::{col_norms, relabel_columns, row_norms, transpose, transpose_with_positions};

use crate::error::{Error, Result};
use crate::simd::{Arch, Lanes, WithSimd};
use std::ops::Range;

/// A validated CSR matrix borrowing its three arrays.
#[derive(Debug, Clone, Copy)]
pub struct CsrView<'a> {
    n_rows: usize,
    n_cols: usize,
    indptr: &'a [i64],
    indices: &'a [i32],
    data: &'a [f32],
}

impl<'a> CsrView<'a> {
    /// Validates and wraps the arrays of an `n_rows x n_cols` CSR matrix. `what` names the argument
    /// in error messages. Checks: `indptr` has `n_rows + 1` entries, starts at 0, never decreases and
    /// ends at `indices.len() == data.len()`; every index is in `0..n_cols`; indices within a row are
    /// strictly increasing.
    pub fn new(
        what: &str,
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i32],
        data: &'a [f32],
    ) -> Result<Self> {
        Self::checked(what, (n_rows, n_cols), (indptr, indices, data), false)
    }

    /// [`CsrView::new`], but a row may store a column more than once (indices never decrease
    /// within a row): interactions where each stored entry is one example, as LightFM trains
    /// repeated COO entries.
    pub fn with_repeats(
        what: &str,
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i32],
        data: &'a [f32],
    ) -> Result<Self> {
        Self::checked(what, (n_rows, n_cols), (indptr, indices, data), true)
    }

    fn checked(
        what: &str,
        (n_rows, n_cols): (usize, usize),
        (indptr, indices, data): (&'a [i64], &'a [i32], &'a [f32]),
        repeats: bool,
    ) -> Result<Self> {
        // SAFETY: the structure is checked right here.
        let view = unsafe { Self::new_validated(what, n_rows, n_cols, indptr, indices, data)? };
        if !structure_holds(n_cols, indptr, indices, repeats) {
            structure_error(what, n_rows, n_cols, indptr, indices, repeats)?;
            // the two checks agree; were they ever not to, the matrix is still refused
            return Err(Error::invalid_csr(what, "invalid structure".to_string()));
        }
        Ok(view)
    }

    /// The same structure with other values, one per stored entry (the structure needs no new
    /// check).
    pub fn with_data(&self, data: &'a [f32]) -> Result<Self> {
        if data.len() != self.indices.len() {
            return Err(Error::shape(
                "values (one per stored entry)",
                self.indices.len(),
                data.len(),
            ));
        }
        Ok(CsrView { data, ..*self })
    }

    /// [`CsrView::new`] without its pass over the structure (`indptr` never decreasing, indices
    /// in range and increasing within rows): only the lengths and `indptr`'s ends are checked, in
    /// constant time. For a model's own arrays, validated once and read-only since (a serving
    /// call must not cost a pass over a similarity matrix of 10^8 entries to score one user).
    ///
    /// # Safety
    /// The same arrays, with this shape, passed [`CsrView::new`] and have not changed since:
    /// kernels index a view without bounds checks.
    pub unsafe fn new_validated(
        what: &str,
        n_rows: usize,
        n_cols: usize,
        indptr: &'a [i64],
        indices: &'a [i32],
        data: &'a [f32],
    ) -> Result<Self> {
        if n_cols > i32::MAX as usize + 1 {
            return Err(Error::invalid(
                what,
                format!("{n_cols} columns exceed the int32 index range"),
            ));
        }
        if indptr.len() != n_rows + 1 {
            return Err(Error::shape(
                &format!("{what}.indptr length"),
                n_rows + 1,
                indptr.len(),
            ));
        }
        if indices.len() != data.len() {
            return Err(Error::shape(
                &format!("{what}.data length (must equal indices length)"),
                indices.len(),
                data.len(),
            ));
        }
        if indptr[0] != 0 {
            return Err(Error::invalid_csr(
                what,
                format!("indptr[0] is {}, expected 0", indptr[0]),
            ));
        }
        let nnz = indices.len();
        if indptr[n_rows] != nnz as i64 {
            return Err(Error::invalid_csr(
                what,
                format!(
                    "indptr[-1] is {} but there are {nnz} stored entries",
                    indptr[n_rows]
                ),
            ));
        }
        Ok(CsrView {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn indptr(&self) -> &'a [i64] {
        self.indptr
    }

    pub fn indices(&self) -> &'a [i32] {
        self.indices
    }

    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Positions of row `r`'s entries in `indices` / `data`.
    #[inline]
    pub fn row_range(&self, r: usize) -> Range<usize> {
        self.indptr[r] as usize..self.indptr[r + 1] as usize
    }

    /// Column indices and values of row `r`. Always inlined: the SGD kernels call it several
    /// times per example inside large vector functions, where the inliner's size limit kept it a
    /// call.
    #[inline(always)]
    pub fn row(&self, r: usize) -> (&'a [i32], &'a [f32]) {
        let range = self.row_range(r);
        (&self.indices[range.clone()], &self.data[range])
    }

    /// Iterates over `(column indices, values)` of every row in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (&'a [i32], &'a [f32])> + '_ {
        (0..self.n_rows).map(move |r| self.row(r))
    }

    /// Whether row `r` stores column `c` ([`sorted_contains`] on the sorted row).
    #[inline]
    pub fn contains(&self, r: usize, c: i32) -> bool {
        sorted_contains(self.row(r).0, c)
    }
}

/// Whether the CSR structure holds (given `indptr[0] == 0` and `indptr[-1] == indices.len()`):
/// `indptr` never decreases, every index is below `n_cols`, and indices increase within every row.
/// Vector passes without early exits (inputs are validated on every call, similarity matrices of
/// 10^8 entries among them); [`structure_error`] names the first fault when it fails. A row's indices increase
/// exactly when every adjacent pair of `indices` that decreases (or repeats) straddles a row
/// boundary: the number of such pairs must equal the number found at the rows' first entries.
/// With `repeats`, only decreasing pairs count (a row may store a column more than once).
fn structure_holds(n_cols: usize, indptr: &[i64], indices: &[i32], repeats: bool) -> bool {
    if indptr.windows(2).any(|w| w[1] < w[0]) {
        return false;
    }
    // as u32 (n_cols <= 2^31), a negative index is at least 2^31, so out of range too
    let as_u32: &[u32] = pulp::bytemuck::cast_slice(indices);
    let (out_of_range, drops) = Arch::new().dispatch(Faults {
        indices: as_u32,
        limit: n_cols as u32,
        repeats,
    });
    if out_of_range > 0 {
        return false;
    }
    // the decreasing pairs at row starts: each distinct start position inside the array once
    let nnz = indices.len() as i64;
    let mut at_starts = 0u64;
    let mut last = 0i64;
    for &p in indptr {
        if p != last && p < nnz {
            let (c, prev) = (indices[p as usize], indices[p as usize - 1]);
            at_starts += (c < prev || (c == prev && !repeats)) as u64;
        }
        last = p;
    }
    drops == at_starts
}

/// Over `indices`: how many are at least `limit`, and how many are at most their predecessor
/// (below it, with `repeats`).
struct Faults<'a> {
    indices: &'a [u32],
    limit: u32,
    repeats: bool,
}

impl WithSimd for Faults<'_> {
    type Output = (u64, u64);

    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> (u64, u64) {
        let Faults {
            indices,
            limit,
            repeats,
        } = self;
        let Some((&first, rest)) = indices.split_first() else {
            return (0, 0);
        };
        let (mut out, mut drops) = ((first >= limit) as u64, 0u64);
        let (one, zero, lim) = (
            simd.splat_u32s(1),
            simd.splat_u32s(0),
            simd.splat_u32s(limit),
        );
        // blocks short enough that a lane's count stays below 2^32
        const BLOCK: usize = 1 << 20;
        for (cur, prev) in rest.chunks(BLOCK).zip(indices.chunks(BLOCK)) {
            let (cv, ct) = S::as_simd_u32s(cur);
            let (pv, pt) = S::as_simd_u32s(&prev[..cur.len()]);
            let (mut o, mut d) = (zero, zero);
            for (&c, &p) in cv.iter().zip(pv) {
                let high = simd.greater_than_or_equal_u32s(c, lim);
                o = simd.add_u32s(o, simd.select_u32s(high, one, zero));
                let low = if repeats {
                    simd.less_than_u32s(c, p)
                } else {
                    simd.less_than_or_equal_u32s(c, p)
                };
                d = simd.add_u32s(d, simd.select_u32s(low, one, zero));
            }
            out += lane_sum::<S>(o);
            drops += lane_sum::<S>(d);
            for (&c, &p) in ct.iter().zip(pt) {
                out += (c >= limit) as u64;
                drops += (c < p || (c == p && !repeats)) as u64;
            }
        }
        (out, drops)
    }
}

#[inline(always)]
fn lane_sum<S: Lanes>(v: S::u32s) -> u64 {
    let lanes: &[u32] = pulp::bytemuck::cast_slice(std::slice::from_ref(&v));
    lanes.iter().map(|&x| x as u64).sum()
}

/// The error [`structure_holds`] found, named as the first faulty row in order.
fn structure_error(
    what: &str,
    n_rows: usize,
    n_cols: usize,
    indptr: &[i64],
    indices: &[i32],
    repeats: bool,
) -> Result<()> {
    if let Some(r) = (0..n_rows).find(|&r| indptr[r + 1] < indptr[r]) {
        return Err(Error::invalid_csr(
            what,
            format!(
                "indptr decreases at row {r} ({} -> {})",
                indptr[r],
                indptr[r + 1]
            ),
        ));
    }
    for r in 0..n_rows {
        let row = &indices[indptr[r] as usize..indptr[r + 1] as usize];
        let mut prev: i64 = -1;
        for &c in row {
            if c < 0 || c as usize >= n_cols {
                return Err(Error::out_of_range(
                    &format!("{what} column index in row {r}"),
                    c as i64,
                    n_cols,
                ));
            }
            if (c as i64) < prev || (c as i64 == prev && !repeats) {
                let fault = if repeats {
                    "unsorted"
                } else {
                    "unsorted or duplicate"
                };
                return Err(Error::invalid_csr(
                    what,
                    format!("row {r} has {fault} column indices"),
                ));
            }
            prev = c as i64;
        }
    }
    Ok(())
}

/// Whether the sorted slice `row` holds `x`: the membership test of the kernels that skip a
/// user's items (a CSR row, a list of excluded positions). Entries are compared without early
/// exits, so that the loads are independent and all in flight at once (vector compares), where
/// a binary search waits for each probe's load in turn, a cache miss when the row is not in L1:
/// every entry of a row of up to 64; up to 4,096, the first entry of every block of 16 (of 64
/// past 1,024) and then the one block that can hold `x`; longer rows by bisection.
#[inline(always)]
pub fn sorted_contains<T: Copy + Ord>(row: &[T], x: T) -> bool {
    let any = |part: &[T]| part.iter().fold(false, |found, &y| found | (y == x));
    let n = row.len();
    if n <= 64 {
        any(row)
    } else if n <= 4096 {
        let w = if n <= 1024 { 16 } else { 64 };
        let b = row.iter().step_by(w).fold(0, |b, &y| b + (y <= x) as usize);
        b > 0 && any(&row[(b - 1) * w..(b * w).min(n)])
    } else {
        row.binary_search(&x).is_ok()
    }
}

/// An owned CSR matrix in canonical form (produced by kernels such as [`transpose`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: Vec<f32>,
}

impl Csr {
    /// The `n x n` identity (every row its own feature, as LightFM's default features).
    pub fn identity(n: usize) -> Csr {
        Csr {
            n_rows: n,
            n_cols: n,
            indptr: (0..=n as i64).collect(),
            indices: (0..n as i32).collect(),
            data: vec![1.0; n],
        }
    }

    /// Builds a canonical CSR from `(row, col, value)` triplets (summing duplicates). Meant for tests,
    /// benchmarks and small inputs; kernels build their outputs directly.
    pub fn from_triplets(
        n_rows: usize,
        n_cols: usize,
        triplets: &[(usize, usize, f32)],
    ) -> Result<Self> {
        let mut t: Vec<(usize, usize, f32)> = triplets.to_vec();
        for &(r, c, _) in &t {
            if r >= n_rows {
                return Err(Error::out_of_range("triplet row", r as i64, n_rows));
            }
            if c >= n_cols {
                return Err(Error::out_of_range("triplet column", c as i64, n_cols));
            }
        }
        t.sort_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0i64; n_rows + 1];
        let mut indices: Vec<i32> = Vec::with_capacity(t.len());
        let mut data: Vec<f32> = Vec::with_capacity(t.len());
        let mut last: Option<(usize, usize)> = None;
        for (r, c, v) in t {
            if last == Some((r, c)) {
                if let Some(d) = data.last_mut() {
                    *d += v;
                }
                continue;
            }
            last = Some((r, c));
            indptr[r + 1] += 1;
            indices.push(c as i32);
            data.push(v);
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        Ok(Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        })
    }

    /// A view of this matrix. Owned matrices are canonical by construction.
    pub fn view(&self) -> CsrView<'_> {
        CsrView {
            n_rows: self.n_rows,
            n_cols: self.n_cols,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}
