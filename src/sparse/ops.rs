//! Whole-matrix operations on CSR views: transpose, column relabelling, row and column norms.

use super::{Csr, CsrView};
use crate::error::{try_with_capacity, try_zeroed, Result};
use crate::parallel;
use rayon::prelude::*;

/// A pointer that parallel tasks write through at positions no other task writes.
#[derive(Clone, Copy)]
struct DisjointWrites<T>(*mut T);
// SAFETY: used only for writes to positions partitioned between tasks (see `transpose`).
unsafe impl<T: Send> Send for DisjointWrites<T> {}
unsafe impl<T: Send> Sync for DisjointWrites<T> {}

/// The transpose of `m` (an `n_cols x n_rows` canonical CSR), built in parallel: each thread counts
/// the columns of a contiguous band of rows, a prefix sum over (column, band) gives every band its
/// write offsets, and the bands scatter their entries. Rows of the result come out sorted because
/// the bands are in row order. The result does not depend on the thread count.
pub fn transpose(m: &CsrView<'_>, num_threads: usize) -> Result<Csr> {
    Ok(transpose_impl(m, num_threads, false)?.0)
}

/// [`transpose`], plus, for every entry of the transpose, its position within its row of `m`
/// (entry `(c, r)` of the result is entry number `pos` of row `r` of `m`). Kernels that walk a
/// row of `m` from a given column on use it instead of a binary search.
pub fn transpose_with_positions(m: &CsrView<'_>, num_threads: usize) -> Result<(Csr, Vec<u32>)> {
    let (t, pos) = transpose_impl(m, num_threads, true)?;
    Ok((t, pos))
}

/// A per-(band, column) counter of the transpose, then the band's next write position: 4 bytes
/// wherever the positions fit (half the counters' cache footprint), 8 otherwise.
trait Counter: crate::error::Zeroable + Send + Sync {
    fn add(&mut self, n: usize);
    fn get(self) -> usize;
    fn set(&mut self, v: usize);
}

macro_rules! counter {
    ($($t:ty),*) => {$(
        impl Counter for $t {
            #[inline(always)]
            fn add(&mut self, n: usize) {
                *self += n as $t;
            }
            #[inline(always)]
            fn get(self) -> usize {
                self as usize
            }
            #[inline(always)]
            fn set(&mut self, v: usize) {
                *self = v as $t;
            }
        }
    )*};
}
counter!(u32, u64);

fn transpose_impl(m: &CsrView<'_>, num_threads: usize, positions: bool) -> Result<(Csr, Vec<u32>)> {
    if m.nnz() <= u32::MAX as usize {
        transpose_with::<u32>(m, num_threads, positions)
    } else {
        transpose_with::<u64>(m, num_threads, positions)
    }
}

fn transpose_with<C: Counter>(
    m: &CsrView<'_>,
    num_threads: usize,
    positions: bool,
) -> Result<(Csr, Vec<u32>)> {
    let (n_rows, n_cols, nnz) = (m.n_rows(), m.n_cols(), m.nnz());
    let bands = parallel::resolve_threads(num_threads)
        .min(n_rows.max(1))
        .max(1);
    // Bands of consecutive input rows holding about as many entries each (a band's work is its
    // entries).
    let mut band_start = vec![0usize; bands + 1];
    for (b, start) in band_start.iter_mut().enumerate().skip(1) {
        let target = (nnz as u128 * b as u128 / bands as u128) as i64;
        *start = m.indptr().partition_point(|&p| p < target).min(n_rows);
    }
    band_start[bands] = n_rows;
    let band_range = |b: usize| band_start[b]..band_start[b + 1];

    let stop = parallel::stop_flag();
    let what = "the transposed matrix";
    let per_col = || format!("the matrix has {n_cols} columns");
    let per_entry = || format!("the matrix has {nnz} stored entries");
    let mut indptr = try_zeroed::<i64>(n_cols + 1, what, per_col)?;
    let mut indices = try_zeroed::<i32>(nnz, what, per_entry)?;
    let mut data = try_zeroed::<f32>(nnz, what, per_entry)?;
    let mut row_pos = try_zeroed::<u32>(if positions { nnz } else { 0 }, what, per_entry)?;
    let out = parallel::install(num_threads, || {
        // counts[b][c]: entries of column c in band b.
        let mut counts: Vec<Vec<C>> = (0..bands)
            .into_par_iter()
            .map(|b| {
                let mut cnt = try_zeroed::<C>(n_cols, what, per_col)?;
                let rows = band_range(b);
                let (lo, hi) = (
                    m.indptr()[rows.start] as usize,
                    m.indptr()[rows.end] as usize,
                );
                for &c in &m.indices()[lo..hi] {
                    cnt[c as usize].add(1);
                }
                Ok(cnt)
            })
            .collect::<Result<_>>()?;

        // Turn the counts into write offsets, column-major over (column, band).
        let mut pos = 0usize;
        for c in 0..n_cols {
            indptr[c] = pos as i64;
            for cnt in counts.iter_mut() {
                let k = cnt[c].get();
                cnt[c].set(pos);
                pos += k;
            }
        }
        indptr[n_cols] = pos as i64;

        let out_idx = DisjointWrites(indices.as_mut_ptr());
        let out_val = DisjointWrites(data.as_mut_ptr());
        let out_pos = DisjointWrites(row_pos.as_mut_ptr());
        counts.par_iter_mut().enumerate().for_each(|(b, next)| {
            let (out_idx, out_val, out_pos) = (out_idx, out_val, out_pos);
            for r in band_range(b) {
                if r % 4096 == 0 && stop.is_set() {
                    return; // interrupted: checked below
                }
                let (cols, vals) = m.row(r);
                for (k, (&c, &v)) in cols.iter().zip(vals).enumerate() {
                    let p = next[c as usize].get();
                    next[c as usize].add(1);
                    // SAFETY: p < nnz, and the offsets of (column, band) pairs are disjoint ranges,
                    // so no other band writes position p; `pos` has nnz entries when written.
                    unsafe {
                        *out_idx.0.add(p) = r as i32;
                        *out_val.0.add(p) = v;
                        if positions {
                            *out_pos.0.add(p) = k as u32;
                        }
                    }
                }
            }
        });
        Ok((
            Csr {
                n_rows: n_cols,
                n_cols: n_rows,
                indptr,
                indices,
                data,
            },
            row_pos,
        ))
    })??;
    stop.check()?;
    Ok(out)
}

/// `m` with its columns relabelled: entry `(r, c)` becomes `(r, label[c])` (`label` a permutation
/// of `m`'s columns), each row's entries sorted by their new labels. The rows keep their places
/// (the same `indptr`): one pass of short sorts, where building the same matrix from the
/// transpose (its rows taken in label order) scatters every entry a second time (the kNN fit,
/// clustered 300k x 100k, one thread: 6% less CPU in all). Its entry arrays come from
/// [`try_zeroed`], so large ones sit on huge pages (for kernels that read its rows at random). In
/// parallel over bands of rows.
pub fn relabel_columns(m: &CsrView<'_>, label: &[u32], num_threads: usize) -> Result<Csr> {
    check_permutation("column labels", label, m.n_cols())?;
    let (n_rows, nnz) = (m.n_rows(), m.nnz());
    let what = "the relabelled matrix";
    let per_entry = || format!("the matrix has {nnz} stored entries");
    let mut indices = try_zeroed::<i32>(nnz, what, per_entry)?;
    let mut data = try_zeroed::<f32>(nnz, what, per_entry)?;
    let mut indptr = try_with_capacity::<i64>(n_rows + 1, what, || format!("{n_rows} rows"))?;
    indptr.extend_from_slice(m.indptr());
    // bands of rows holding about as many entries each, several per thread
    let bands = (parallel::resolve_threads(num_threads) * 8).min(n_rows.max(1));
    let mut band_start: Vec<usize> = (0..=bands)
        .map(|b| {
            let target = (nnz as u128 * b as u128 / bands as u128) as i64;
            m.indptr().partition_point(|&p| p < target).min(n_rows)
        })
        .collect();
    band_start[bands] = n_rows;
    let mut parts = Vec::with_capacity(bands);
    let (mut idx_rest, mut val_rest) = (&mut indices[..], &mut data[..]);
    for b in 0..bands {
        let rows = band_start[b]..band_start[b + 1];
        let len = (m.indptr()[rows.end] - m.indptr()[rows.start]) as usize;
        let (idx, idx_tail) = idx_rest.split_at_mut(len);
        let (val, val_tail) = val_rest.split_at_mut(len);
        (idx_rest, val_rest) = (idx_tail, val_tail);
        parts.push((rows, idx, val));
    }
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        parts.into_par_iter().for_each(|(rows, idx, val)| {
            // each entry as one u64 (label, then the value's bits): a plain integer sort
            let mut keys: Vec<u64> = Vec::new();
            let mut at = 0;
            for r in rows {
                if r % 4096 == 0 && stop.is_set() {
                    return; // interrupted: checked below
                }
                let (cols, vals) = m.row(r);
                keys.clear();
                keys.extend(
                    cols.iter()
                        .zip(vals)
                        .map(|(&c, &v)| (label[c as usize] as u64) << 32 | v.to_bits() as u64),
                );
                keys.sort_unstable();
                for (k, key) in keys.iter().enumerate() {
                    idx[at + k] = (key >> 32) as i32;
                    val[at + k] = f32::from_bits(*key as u32);
                }
                at += keys.len();
            }
        })
    })?;
    stop.check()?;
    Ok(Csr {
        n_rows,
        n_cols: m.n_cols(),
        indptr,
        indices,
        data,
    })
}

/// An error naming `what` unless `p` is a permutation of `0..n`.
fn check_permutation(what: &str, p: &[u32], n: usize) -> Result<()> {
    if p.len() != n {
        return Err(crate::error::Error::shape(what, n, p.len()));
    }
    let mut seen = vec![false; n];
    for &x in p {
        match seen.get_mut(x as usize) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(crate::error::Error::invalid(
                    what,
                    format!("must be a permutation of 0..{n}, repeats or exceeds at {x}"),
                ))
            }
        }
    }
    Ok(())
}

/// The L2 norm of every row, in parallel.
pub fn row_norms(m: &CsrView<'_>, num_threads: usize) -> Result<Vec<f32>> {
    parallel::install(num_threads, || {
        (0..m.n_rows())
            .into_par_iter()
            .map(|r| {
                let (_, vals) = m.row(r);
                vals.iter()
                    .map(|&v| (v as f64) * (v as f64))
                    .sum::<f64>()
                    .sqrt() as f32
            })
            .collect()
    })
}

/// The L2 norm of every column. One pass over the stored values in order (the sum order, and so
/// the result, is fixed); accumulated in f64.
pub fn col_norms(m: &CsrView<'_>) -> Vec<f32> {
    let mut sq = vec![0f64; m.n_cols()];
    for (&c, &v) in m.indices().iter().zip(m.data()) {
        sq[c as usize] += (v as f64) * (v as f64);
    }
    sq.into_iter().map(|s| s.sqrt() as f32).collect()
}
