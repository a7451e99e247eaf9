//! The sparse EASE model's column selection against a naive reference.

use proptest::prelude::*;
use tacitrec::models::ease::sparsify_columns;

/// Of every column of the row-major `n x n` `w`, the `k` entries of largest magnitude (ties to
/// the lower row, zeros never kept), as a dense row-major matrix.
fn reference(w: &[f32], n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * n];
    for j in 0..n {
        let mut rows: Vec<usize> = (0..n).filter(|&i| w[i * n + j] != 0.0).collect();
        rows.sort_by(|&a, &b| {
            w[b * n + j]
                .abs()
                .partial_cmp(&w[a * n + j].abs())
                .unwrap()
                .then(a.cmp(&b))
        });
        for &i in rows.iter().take(k) {
            out[i * n + j] = w[i * n + j];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn keeps_the_largest_magnitudes_of_every_column(
        n in 1usize..70,
        k in 0usize..12,
        threads in 1usize..4,
        seed in any::<u64>(),
    ) {
        // small integers (many ties, zeros and negative values)
        let mut s = seed | 1;
        let w: Vec<f32> = (0..n * n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 9) as f32 - 4.0
            })
            .collect();
        let m = sparsify_columns(&w, n, k, threads).unwrap();
        prop_assert_eq!((m.n_rows, m.n_cols), (n, n));
        let mut got = vec![0f32; n * n];
        for r in 0..n {
            let (lo, hi) = (m.indptr[r] as usize, m.indptr[r + 1] as usize);
            prop_assert!(m.indices[lo..hi].windows(2).all(|p| p[0] < p[1]));
            for p in lo..hi {
                got[r * n + m.indices[p] as usize] = m.data[p];
            }
        }
        prop_assert_eq!(got, reference(&w, n, k));
    }
}

#[test]
fn wrong_sizes_are_errors() {
    assert!(sparsify_columns(&[1.0; 6], 2, 1, 1).is_err());
    assert!(sparsify_columns(&[], 0, 3, 1).unwrap().indptr == vec![0]);
}
