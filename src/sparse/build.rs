//! Building a CSR matrix from interaction rows that arrive in any order, in bounded memory: the
//! second pass of the streaming reader (`tacitrec.io.read_interactions`).
//!
//! The reader knows every row's count after its first pass, so it allocates the output arrays
//! once (`indptr` from the counts), then [`scatter`]s the rows a block at a time into their
//! row's next free slot (a counting sort: no pair of arrays the size of the input is ever held
//! besides the output), and finally [`sort_rows_sum_duplicates`] orders each row by column and
//! sums repeated pairs in place, compacting the arrays.

use crate::error::{Error, Result};
use crate::parallel;
use rayon::prelude::*;

fn mapped(what: &str, code: i32, rank: &[i32]) -> Result<usize> {
    usize::try_from(code)
        .ok()
        .and_then(|c| rank.get(c))
        .and_then(|&r| usize::try_from(r).ok())
        .ok_or_else(|| Error::out_of_range(what, code as i64, rank.len()))
}

/// Writes each row `(rows[j], cols[j], weights[j])` (codes, renumbered through `row_rank` and
/// `col_rank`; weight 1 without `weights`) whose row `r` is one of the window
/// `first_row..first_row + next.len()` into the next free slot of its row: `next[r - first_row]`
/// is that slot, advanced by one per row written (start it at the row's `indptr[r]`, less the
/// window's first `indptr` when `indices` and `data` hold only the window). Rows outside the
/// window are skipped, so that a matrix can be built a block of rows at a time.
#[allow(clippy::too_many_arguments)]
pub fn scatter(
    rows: &[i32],
    cols: &[i32],
    weights: Option<&[f32]>,
    row_rank: &[i32],
    col_rank: &[i32],
    first_row: usize,
    next: &mut [i64],
    indices: &mut [i32],
    data: &mut [f32],
) -> Result<()> {
    if cols.len() != rows.len() {
        return Err(Error::shape("cols length", rows.len(), cols.len()));
    }
    if let Some(w) = weights {
        if w.len() != rows.len() {
            return Err(Error::shape("weights length", rows.len(), w.len()));
        }
    }
    if indices.len() != data.len() {
        return Err(Error::shape("data length", indices.len(), data.len()));
    }
    for j in 0..rows.len() {
        let r = mapped("rows", rows[j], row_rank)?;
        let Some(slot) = r.checked_sub(first_row).and_then(|w| next.get_mut(w)) else {
            continue;
        };
        let c = mapped("cols", cols[j], col_rank)?;
        let p = usize::try_from(*slot)
            .ok()
            .filter(|&p| p < indices.len())
            .ok_or_else(|| {
                Error::invalid(
                    "next",
                    format!("row {r} writes past the {} slots", indices.len()),
                )
            })?;
        *slot += 1;
        indices[p] = c as i32;
        data[p] = weights.map_or(1.0, |w| w[j]);
    }
    Ok(())
}

/// Sorts every row of a CSR matrix by column and sums the values of repeated columns (in the
/// order they were stored), moving the rows together when some shrink; `indptr` is updated.
/// Returns the number of entries left (the arrays' prefix holding them).
pub fn sort_rows_sum_duplicates(
    indptr: &mut [i64],
    indices: &mut [i32],
    data: &mut [f32],
    num_threads: usize,
) -> Result<usize> {
    let nnz = indices.len();
    if data.len() != nnz {
        return Err(Error::shape("data length", nnz, data.len()));
    }
    let Some(n_rows) = indptr.len().checked_sub(1) else {
        return Err(Error::shape("indptr length", "at least 1", 0));
    };
    if indptr[0] != 0 || indptr[n_rows] != nnz as i64 || indptr.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::invalid_csr(
            "indptr",
            format!("must rise from 0 to the {nnz} entries"),
        ));
    }
    let mut kept = vec![0i64; n_rows];
    // blocks of whole rows of about equal entries, each with its own part of the arrays
    let blocks = (parallel::resolve_threads(num_threads) * 8).max(1);
    let target = nnz.div_ceil(blocks).max(1);
    let mut parts = Vec::with_capacity(blocks + 1);
    {
        let (mut idx, mut val, mut kep) = (&mut *indices, &mut *data, &mut kept[..]);
        let (mut r, mut at) = (0usize, 0i64);
        while r < n_rows {
            let mut end = r + 1;
            while end < n_rows && ((indptr[end] - at) as usize) < target {
                end += 1;
            }
            let len = (indptr[end] - at) as usize;
            let (a, b) = idx.split_at_mut(len);
            let (c, d) = val.split_at_mut(len);
            let (e, f) = kep.split_at_mut(end - r);
            parts.push((r, a, c, e));
            (idx, val, kep) = (b, d, f);
            at = indptr[end];
            r = end;
        }
    }
    let indptr_ro = &*indptr;
    parallel::install(num_threads, || {
        parts.into_par_iter().for_each_init(
            || (Vec::<u64>::new(), Vec::<f32>::new()),
            |(keys, vals), (first, idx, val, kep)| {
                let base = indptr_ro[first];
                for (k, out) in kep.iter_mut().enumerate() {
                    let r = first + k;
                    let (s, e) = (
                        (indptr_ro[r] - base) as usize,
                        (indptr_ro[r + 1] - base) as usize,
                    );
                    let (ri, rv) = (&mut idx[s..e], &mut val[s..e]);
                    if ri.windows(2).all(|w| w[0] < w[1]) {
                        *out = ri.len() as i64;
                        continue;
                    }
                    keys.clear();
                    // column in the high half, position in the low: sorted, the values of one
                    // column keep the order they came in
                    keys.extend(
                        ri.iter()
                            .enumerate()
                            .map(|(p, &c)| ((c as u32 as u64) << 32) | p as u64),
                    );
                    keys.sort_unstable();
                    vals.clear();
                    vals.extend_from_slice(rv);
                    let mut n = 0usize;
                    for &key in keys.iter() {
                        let c = (key >> 32) as u32 as i32;
                        let v = vals[(key & 0xFFFF_FFFF) as usize];
                        if n > 0 && ri[n - 1] == c {
                            rv[n - 1] += v;
                        } else {
                            ri[n] = c;
                            rv[n] = v;
                            n += 1;
                        }
                    }
                    *out = n as i64;
                }
            },
        )
    })?;
    let total: i64 = kept.iter().sum();
    if total as usize == nnz {
        return Ok(nnz);
    }
    let mut write = 0usize;
    for (r, &len) in kept.iter().enumerate() {
        let start = indptr[r] as usize;
        let len = len as usize;
        indices.copy_within(start..start + len, write);
        data.copy_within(start..start + len, write);
        indptr[r] = write as i64;
        write += len;
    }
    indptr[n_rows] = write as i64;
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_then_sort_equals_a_dense_sum() {
        // 3 users x 4 items, rows in any order with repeats
        let rows = [2, 0, 2, 1, 0, 2, 0];
        let cols = [3, 1, 0, 2, 1, 3, 0];
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let ident = [0, 1, 2, 3];
        let mut counts = [0i64; 3];
        for &r in &rows {
            counts[r as usize] += 1;
        }
        let mut indptr = vec![0i64; 4];
        for r in 0..3 {
            indptr[r + 1] = indptr[r] + counts[r];
        }
        let mut next = indptr[..3].to_vec();
        let (mut idx, mut val) = (vec![0; 7], vec![0.0; 7]);
        scatter(
            &rows,
            &cols,
            Some(&w),
            &ident[..3],
            &ident,
            0,
            &mut next,
            &mut idx,
            &mut val,
        )
        .unwrap(); // ok: a test, on valid data it builds
        let nnz = sort_rows_sum_duplicates(&mut indptr, &mut idx, &mut val, 2).unwrap(); // ok: a test, on valid data it builds
        assert_eq!(nnz, 5);
        assert_eq!(indptr, [0, 2, 3, 5]);
        assert_eq!(&idx[..nnz], &[0, 1, 2, 0, 3]);
        assert_eq!(&val[..nnz], &[7.0, 7.0, 4.0, 3.0, 7.0]);
    }

    #[test]
    fn renumbering_and_bad_codes() {
        let (mut idx, mut val) = (vec![0; 2], vec![0.0; 2]);
        let mut next = vec![0i64, 1];
        // codes 0, 1 are rows 1, 0 after renumbering
        scatter(
            &[0, 1],
            &[1, 0],
            None,
            &[1, 0],
            &[1, 0],
            0,
            &mut next,
            &mut idx,
            &mut val,
        )
        .unwrap(); // ok: a test, on valid data it builds
        assert_eq!(idx, [1, 0]);
        assert_eq!(val, [1.0, 1.0]);
        assert!(scatter(
            &[5],
            &[0],
            None,
            &[0],
            &[0],
            0,
            &mut next,
            &mut idx,
            &mut val
        )
        .is_err());
        assert!(scatter(
            &[0],
            &[0],
            None,
            &[-1],
            &[0],
            0,
            &mut next,
            &mut idx,
            &mut val
        )
        .is_err());
        assert!(scatter(
            &[0],
            &[0],
            None,
            &[0],
            &[-1],
            0,
            &mut next,
            &mut idx,
            &mut val
        )
        .is_err());
        let mut full = vec![2i64];
        assert!(scatter(
            &[0],
            &[0],
            None,
            &[0],
            &[0],
            0,
            &mut full,
            &mut idx,
            &mut val
        )
        .is_err());
    }

    #[test]
    fn a_window_of_rows_at_a_time_equals_the_whole() {
        // 4 rows; codes are their own ranks; built as rows 0..2 then 2..4
        let rows = [3, 0, 1, 3, 2, 0, 1];
        let cols = [0, 1, 2, 3, 0, 1, 2];
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let ident = [0, 1, 2, 3];
        let indptr = [0i64, 2, 4, 5, 7];
        let (mut all_i, mut all_v) = (vec![0; 7], vec![0.0; 7]);
        let mut next = indptr[..4].to_vec();
        scatter(
            &rows,
            &cols,
            Some(&w),
            &ident,
            &ident,
            0,
            &mut next,
            &mut all_i,
            &mut all_v,
        )
        .unwrap(); // ok: a test, on valid data it builds
        let (mut got_i, mut got_v) = (Vec::new(), Vec::new());
        for (lo, hi) in [(0usize, 2usize), (2, 4)] {
            let base = indptr[lo];
            let len = (indptr[hi] - base) as usize;
            let (mut bi, mut bv) = (vec![0; len], vec![0.0; len]);
            let mut next: Vec<i64> = indptr[lo..hi].iter().map(|&p| p - base).collect();
            scatter(
                &rows,
                &cols,
                Some(&w),
                &ident,
                &ident,
                lo,
                &mut next,
                &mut bi,
                &mut bv,
            )
            .unwrap(); // ok: a test, on valid data it builds
            got_i.extend(bi);
            got_v.extend(bv);
        }
        assert_eq!(got_i, all_i);
        assert_eq!(got_v, all_v);
        assert_eq!(got_i, [1, 1, 2, 2, 0, 0, 3]);
        assert_eq!(got_v, [2.0, 6.0, 3.0, 7.0, 5.0, 1.0, 4.0]);
    }

    #[test]
    fn empty_rows_and_empty_matrix() {
        let mut indptr = vec![0i64, 0, 0];
        assert_eq!(
            sort_rows_sum_duplicates(&mut indptr, &mut [], &mut [], 1).unwrap(), // ok: a test, on valid data it builds
            0
        );
        let mut indptr = vec![0i64, 0, 3, 3];
        let (mut idx, mut val) = (vec![4, 4, 1], vec![1.0, 2.0, 0.5]);
        assert_eq!(
            sort_rows_sum_duplicates(&mut indptr, &mut idx, &mut val, 1).unwrap(), // ok: a test, on valid data it builds
            2
        );
        assert_eq!(indptr, [0, 0, 2, 2]);
        assert_eq!(&idx[..2], &[1, 4]);
        assert_eq!(&val[..2], &[0.5, 3.0]);
    }
}
