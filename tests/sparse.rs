//! CSR validation, transpose and norms against naive dense references.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use proptest::prelude::*;
use tacitrec::sparse::{col_norms, relabel_columns, row_norms, transpose, Csr, CsrView};
use tacitrec::Error;

fn dense(m: &Csr) -> Vec<Vec<f32>> {
    let mut d = vec![vec![0f32; m.n_cols]; m.n_rows];
    for r in 0..m.n_rows {
        for p in m.indptr[r] as usize..m.indptr[r + 1] as usize {
            d[r][m.indices[p] as usize] += m.data[p];
        }
    }
    d
}

fn arb_csr() -> impl Strategy<Value = Csr> {
    (0usize..30, 1usize..30).prop_flat_map(|(rows, cols)| {
        prop::collection::vec((0..rows.max(1), 0..cols, -5.0f32..5.0), 0..200).prop_map(move |t| {
            let t: Vec<_> = t.into_iter().filter(|&(r, _, _)| r < rows).collect();
            Csr::from_triplets(rows, cols, &t).unwrap()
        })
    })
}

proptest! {
    #[test]
    fn transpose_matches_dense(m in arb_csr(), threads in 1usize..5) {
        let t = transpose(&m.view(), threads).unwrap();
        let d = dense(&m);
        let dt = dense(&t);
        prop_assert_eq!(t.n_rows, m.n_cols);
        prop_assert_eq!(t.n_cols, m.n_rows);
        for r in 0..m.n_rows {
            for c in 0..m.n_cols {
                prop_assert_eq!(d[r][c], dt[c][r]);
            }
        }
        // canonical: re-validates, and the transpose of the transpose is the input
        prop_assert!(CsrView::new("t", t.n_rows, t.n_cols, &t.indptr, &t.indices, &t.data).is_ok());
        prop_assert_eq!(transpose(&t.view(), threads).unwrap(), m.clone());
        prop_assert_eq!(transpose(&m.view(), 1).unwrap(), t);
    }

    #[test]
    fn relabel_columns_matches_naive(
        (m, label) in arb_csr().prop_flat_map(|m| {
            let label: Vec<u32> = (0..m.n_cols as u32).collect();
            (Just(m), Just(label).prop_shuffle())
        }),
        threads in 1usize..5,
    ) {
        // entry (r, label[c]) for every entry (r, c) of m, built from triplets
        let mut triplets = Vec::new();
        for r in 0..m.n_rows {
            for p in m.indptr[r] as usize..m.indptr[r + 1] as usize {
                triplets.push((r, label[m.indices[p] as usize] as usize, m.data[p]));
            }
        }
        let expected = Csr::from_triplets(m.n_rows, m.n_cols, &triplets).unwrap();
        let got = relabel_columns(&m.view(), &label, threads).unwrap();
        prop_assert_eq!(&got, &expected);
        // canonical: re-validates
        prop_assert!(
            CsrView::new("r", got.n_rows, got.n_cols, &got.indptr, &got.indices, &got.data).is_ok()
        );
    }

    #[test]
    fn norms_match_dense(m in arb_csr()) {
        let d = dense(&m);
        let rn = row_norms(&m.view(), 2).unwrap();
        let cn = col_norms(&m.view());
        for r in 0..m.n_rows {
            let e: f32 = d[r].iter().map(|v| v * v).sum::<f32>().sqrt();
            prop_assert!((rn[r] - e).abs() <= 1e-4 * (1.0 + e));
        }
        for c in 0..m.n_cols {
            let e: f32 = d.iter().map(|row| row[c] * row[c]).sum::<f32>().sqrt();
            prop_assert!((cn[c] - e).abs() <= 1e-4 * (1.0 + e));
        }
    }
}

#[test]
fn transpose_and_relabel_balance_skewed_rows_and_reject_bad_labels() {
    // one row holds most entries (the bands split by entries, not rows), with empty rows and
    // columns around it
    let mut t = Vec::new();
    for c in 0..40 {
        if c % 7 != 3 {
            t.push((2, c, c as f32 + 0.5));
        }
    }
    t.extend([(0, 5, 1.0), (5, 0, 2.0), (5, 39, -3.0), (7, 20, 4.0)]);
    let m = Csr::from_triplets(9, 41, &t).unwrap();
    // columns reversed: every row's order reversed
    let label: Vec<u32> = (0..41u32).rev().collect();
    let reversed: Vec<_> = t.iter().map(|&(r, c, v)| (r, 40 - c, v)).collect();
    let expected = Csr::from_triplets(9, 41, &reversed).unwrap();
    for threads in 1..6 {
        assert_eq!(
            relabel_columns(&m.view(), &label, threads).unwrap(),
            expected
        );
        let tt = transpose(&m.view(), threads).unwrap();
        assert_eq!(transpose(&tt.view(), threads).unwrap(), m);
    }
    let mut repeated: Vec<u32> = (0..41).collect();
    repeated[40] = 0;
    let mut beyond: Vec<u32> = (0..41).collect();
    beyond[40] = 41;
    for bad in [repeated, beyond, vec![0, 1, 2]] {
        assert!(matches!(
            relabel_columns(&m.view(), &bad, 2),
            Err(Error::InvalidArgument { .. } | Error::Shape { .. })
        ));
    }
}

#[test]
fn validation_accepts_canonical_and_exposes_rows() {
    let (indptr, indices, data) = ([0i64, 2, 2, 3], [0i32, 3, 1], [1.0f32, 2.0, 3.0]);
    let v = CsrView::new("x", 3, 4, &indptr, &indices, &data).unwrap();
    assert_eq!(v.nnz(), 3);
    assert_eq!(v.row(0), (&[0i32, 3][..], &[1.0f32, 2.0][..]));
    assert_eq!(v.row(1).0.len(), 0);
    assert!(v.contains(0, 3) && !v.contains(0, 1) && v.contains(2, 1));
    assert_eq!(v.rows().count(), 3);
    // the same structure with other values, one per stored entry
    let other = [4.0f32, 5.0, 6.0];
    let w = v.with_data(&other).unwrap();
    assert_eq!(w.row(0), (&[0i32, 3][..], &[4.0f32, 5.0][..]));
    assert_eq!((w.n_rows(), w.n_cols(), w.indptr()), (3, 4, &indptr[..]));
    assert!(matches!(v.with_data(&other[..2]), Err(Error::Shape { .. })));
}

#[test]
fn validation_rejects_each_defect_with_its_kind() {
    let d = [1.0f32; 3];
    let check = |n_rows, n_cols, indptr: &[i64], indices: &[i32], data: &[f32]| {
        CsrView::new("user_items", n_rows, n_cols, indptr, indices, data).unwrap_err()
    };
    // wrong indptr length
    assert!(matches!(
        check(3, 4, &[0, 3], &[0, 1, 2], &d),
        Error::Shape { .. }
    ));
    // indptr not starting at 0
    assert!(matches!(
        check(1, 4, &[1, 3], &[0, 1, 2], &d),
        Error::InvalidCsr { .. }
    ));
    // indptr end != nnz
    assert!(matches!(
        check(1, 4, &[0, 2], &[0, 1, 2], &d),
        Error::InvalidCsr { .. }
    ));
    // decreasing indptr
    assert!(matches!(
        check(2, 4, &[0, 3, 2], &[0, 1, 2], &d),
        Error::InvalidCsr { .. }
    ));
    // an indptr entry past the end, then decreasing (was a slice panic before the decrease)
    assert!(matches!(
        check(2, 4, &[0, 100, 3], &[0, 1, 2], &d),
        Error::InvalidCsr { .. }
    ));
    // out-of-range and negative column
    let e = check(1, 2, &[0, 3], &[0, 1, 2], &d);
    assert!(
        matches!(
            e,
            Error::OutOfRange {
                index: 2,
                bound: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        check(1, 4, &[0, 3], &[0, -1, 2], &d),
        Error::OutOfRange { index: -1, .. }
    ));
    // unsorted / duplicate columns
    assert!(matches!(
        check(1, 4, &[0, 3], &[0, 2, 1], &d),
        Error::InvalidCsr { .. }
    ));
    assert!(matches!(
        check(1, 4, &[0, 3], &[0, 1, 1], &d),
        Error::InvalidCsr { .. }
    ));
    // data length differs from indices
    assert!(matches!(
        check(1, 4, &[0, 3], &[0, 1, 2], &d[..2]),
        Error::Shape { .. }
    ));
    let msg = check(1, 2, &[0, 3], &[0, 1, 2], &d).to_string();
    assert!(msg.contains("user_items") && msg.contains('2'), "{msg}");
}

#[test]
fn from_triplets_sums_duplicates_and_rejects_out_of_range() {
    let m = Csr::from_triplets(2, 3, &[(1, 2, 1.0), (0, 1, 2.0), (1, 2, 0.5)]).unwrap();
    assert_eq!(m.indptr, vec![0, 1, 2]);
    assert_eq!(m.indices, vec![1, 2]);
    assert_eq!(m.data, vec![2.0, 1.5]);
    assert!(Csr::from_triplets(2, 3, &[(2, 0, 1.0)]).is_err());
}

#[test]
fn sorted_contains_agrees_with_bisection_at_every_length_and_path() {
    // lengths at and around each path's bounds (all entries, blocks of 16, blocks of 64,
    // bisection), strictly increasing rows with gaps of 1-3, every value from below the first
    // to past the last entry, as i32 and u32
    use tacitrec::sparse::sorted_contains;
    let mut state = 12345u64;
    for n in [
        0usize, 1, 2, 15, 16, 17, 63, 64, 65, 100, 1023, 1024, 1025, 2000, 4095, 4096, 4097, 6000,
    ] {
        let mut row = Vec::with_capacity(n);
        let mut v = 5i32;
        for _ in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v += 1 + (state >> 62) as i32 % 3;
            row.push(v);
        }
        let unsigned: Vec<u32> = row.iter().map(|&x| x as u32).collect();
        for x in 0..v + 3 {
            let want = row.binary_search(&x).is_ok();
            assert_eq!(sorted_contains(&row, x), want, "n {n} x {x}");
            assert_eq!(
                sorted_contains(&unsigned, x as u32),
                want,
                "n {n} x {x} (u32)"
            );
        }
    }
}

/// Whether the arrays form a canonical CSR matrix (with `repeats`: but for repeated columns),
/// checked naively row by row.
fn canonical(n_cols: usize, indptr: &[i64], indices: &[i32], repeats: bool) -> bool {
    let nnz = indices.len() as i64;
    if indptr[0] != 0 || *indptr.last().unwrap() != nnz {
        return false;
    }
    if indptr.windows(2).any(|w| w[1] < w[0]) {
        return false;
    }
    indptr.windows(2).all(|w| {
        let row = &indices[w[0] as usize..w[1] as usize];
        row.iter().all(|&c| c >= 0 && (c as usize) < n_cols)
            && row
                .windows(2)
                .all(|p| p[0] < p[1] || (repeats && p[0] == p[1]))
    })
}

/// Row lengths (some empty, some of thousands of entries: vector lanes and tails) and a canonical
/// matrix of them, then one defect or none: an index moved up or down (out of range, negative,
/// a duplicate or a disorder, or harmless), or an indptr entry moved.
fn arb_structure() -> impl Strategy<Value = (usize, Vec<i64>, Vec<i32>)> {
    (
        prop::collection::vec(prop_oneof![3 => 0usize..4, 1 => 0usize..2500], 1..8),
        1usize..3000,
        any::<u64>(),
        0u8..8,
    )
        .prop_map(|(lens, extra, seed, defect)| {
            let n_cols = lens.iter().copied().max().unwrap_or(0) + extra;
            let mut state = seed | 1;
            let mut next = move |n: usize| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % n.max(1) as u64) as usize
            };
            let mut indptr = vec![0i64];
            let mut indices = Vec::new();
            for &len in &lens {
                // `len` increasing columns from a random start, with random gaps while the
                // room lasts
                let start = next(n_cols - len + 1);
                let mut room = n_cols - len - start;
                let mut c = start;
                for _ in 0..len {
                    indices.push(c as i32);
                    let gap = room > 0 && next(4) == 0;
                    room -= gap as usize;
                    c += 1 + gap as usize;
                }
                indptr.push(indices.len() as i64);
            }
            let nnz = indices.len();
            if nnz > 0 {
                let e = next(nnz);
                match defect {
                    0 => indices[e] = n_cols as i32,
                    1 => indices[e] = -1 - next(3) as i32,
                    2 if e > 0 => indices[e] = indices[e - 1],
                    3 if e > 0 => indices.swap(e - 1, e),
                    4 => indices[e] = next(n_cols) as i32,
                    _ => {}
                }
            }
            if defect == 5 && indptr.len() > 2 {
                let r = 1 + next(indptr.len() - 2);
                indptr[r] = next(2 * nnz + 1) as i64;
            }
            (n_cols, indptr, indices)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn validation_accepts_exactly_the_canonical_structures(
        (n_cols, indptr, indices) in arb_structure()
    ) {
        let data = vec![1.0f32; indices.len()];
        let n_rows = indptr.len() - 1;
        let got = CsrView::new("m", n_rows, n_cols, &indptr, &indices, &data);
        prop_assert_eq!(got.is_ok(), canonical(n_cols, &indptr, &indices, false), "{:?}", got.err());
        let got = CsrView::with_repeats("m", n_rows, n_cols, &indptr, &indices, &data);
        prop_assert_eq!(got.is_ok(), canonical(n_cols, &indptr, &indices, true), "{:?}", got.err());
    }
}

/// The validation's vector pass sums its counts per block of 2^20 indices: a valid matrix of more
/// than two such blocks (rows start lower than the previous row ends in every block), then
/// faults just before, at and after the first block boundary, and in the third block.
#[test]
fn validation_across_the_count_blocks() {
    const BLOCK: usize = 1 << 20;
    let (n_rows, per_row) = (2 * BLOCK / 1000 + 7, 1000);
    let n_cols = 5000;
    let mut indptr = vec![0i64];
    let mut indices = Vec::with_capacity(n_rows * per_row);
    for r in 0..n_rows {
        indices.extend((0..per_row).map(|c| ((c * 3 + r % 7) % n_cols) as i32));
        let row = &mut indices[r * per_row..];
        row.sort_unstable();
        indptr.push(indices.len() as i64);
    }
    let data = vec![1.0f32; indices.len()];
    let check = |indptr: &[i64], indices: &[i32]| {
        CsrView::new("m", n_rows, n_cols, indptr, indices, &data).is_ok()
    };
    assert!(check(&indptr, &indices));
    // the first pair of the second block is (BLOCK, BLOCK + 1): faults just before, at and after
    for e in [BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3] {
        assert!(
            indptr.binary_search(&(e as i64)).is_err(),
            "{e} is inside a row"
        );
        let repeats_allowed = |indices: &[i32]| {
            CsrView::with_repeats("m", n_rows, n_cols, &indptr, indices, &data).is_ok()
        };
        let mut bad = indices.clone();
        bad[e] = bad[e - 1]; // a duplicate inside the row
        assert!(!check(&indptr, &bad), "duplicate at {e}");
        assert!(repeats_allowed(&bad), "a repeat at {e} is allowed");
        let mut bad = indices.clone();
        bad.swap(e - 1, e);
        assert!(
            !check(&indptr, &bad) && !repeats_allowed(&bad),
            "disorder at {e}"
        );
        let mut bad = indices.clone();
        bad[e] = n_cols as i32;
        assert!(!check(&indptr, &bad), "out of range at {e}");
        assert!(!repeats_allowed(&bad), "out of range at {e}");
    }
}
