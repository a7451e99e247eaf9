//! Item-item kNN kernels against naive dense references.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use proptest::prelude::*;
use tacitrec::models::knn::{self, item_knn, KnnParams, KnnScorer, Similarity};
use tacitrec::sparse::weighting::{bm25, normalize, tfidf, Documents};
use tacitrec::sparse::Csr;
use tacitrec::topk::{recommend_batch, Candidates};

fn dense(m: &Csr) -> Vec<Vec<f64>> {
    let mut d = vec![vec![0f64; m.n_cols]; m.n_rows];
    for r in 0..m.n_rows {
        for p in m.indptr[r] as usize..m.indptr[r + 1] as usize {
            d[r][m.indices[p] as usize] = m.data[p] as f64;
        }
    }
    d
}

/// Users x items weights per the formulas (items are documents, users terms).
fn weighted(x: &Csr, sim: Similarity) -> Vec<Vec<f64>> {
    let d = dense(x);
    let (nu, ni) = (x.n_rows, x.n_cols);
    let df: Vec<f64> = (0..nu)
        .map(|u| d[u].iter().filter(|v| **v != 0.0).count() as f64)
        .collect();
    let idf: Vec<f64> = df.iter().map(|f| (ni as f64).ln() - f.ln_1p()).collect();
    let mut w = d.clone();
    let norm_cols = |w: &mut Vec<Vec<f64>>| {
        for i in 0..ni {
            let n: f64 = (0..nu).map(|u| w[u][i] * w[u][i]).sum::<f64>().sqrt();
            for u in 0..nu {
                if n > 0.0 {
                    w[u][i] /= n;
                }
            }
        }
    };
    match sim {
        Similarity::Dot | Similarity::Pearson => {}
        Similarity::Cosine => norm_cols(&mut w),
        Similarity::TfIdf => {
            for u in 0..nu {
                for i in 0..ni {
                    if d[u][i] != 0.0 {
                        w[u][i] = d[u][i].sqrt() * idf[u];
                    }
                }
            }
            norm_cols(&mut w);
        }
        Similarity::Bm25 { k1, b } => {
            let len: Vec<f64> = (0..ni).map(|i| (0..nu).map(|u| d[u][i]).sum()).collect();
            let mean = len.iter().sum::<f64>() / ni as f64;
            for u in 0..nu {
                for i in 0..ni {
                    let r = d[u][i];
                    if r != 0.0 {
                        let ln = (1.0 - b) + b * len[i] / mean;
                        w[u][i] = r * (k1 + 1.0) / (k1 * ln + r) * idf[u];
                    }
                }
            }
        }
    }
    w
}

/// Every eligible similarity value (None where the pair has no co-occurrence or, for Pearson, an
/// item has no variance).
fn reference_values(x: &Csr, sim: Similarity) -> Vec<Vec<Option<f64>>> {
    let w = weighted(x, sim);
    let (nu, ni) = (x.n_rows, x.n_cols);
    let d = dense(x);
    let n = nu as f64;
    let s = |c: usize| (0..nu).map(|u| d[u][c]).sum::<f64>();
    let q = |c: usize| (0..nu).map(|u| d[u][c] * d[u][c]).sum::<f64>();
    let mut out = vec![vec![None; ni]; ni];
    for i in 0..ni {
        for j in 0..ni {
            let dot: f64 = (0..nu).map(|u| w[u][i] * w[u][j]).sum();
            if dot == 0.0 {
                continue;
            }
            out[i][j] = if sim == Similarity::Pearson {
                let (ci, cj) = (q(i) - s(i) * s(i) / n, q(j) - s(j) * s(j) / n);
                if ci <= 1e-9 * q(i) || cj <= 1e-9 * q(j) {
                    None
                } else {
                    Some((dot - s(i) * s(j) / n) / (ci * cj).sqrt())
                }
            } else {
                Some(dot)
            };
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + b.abs())
}

/// Distinct positive values (no exact ties) on a random sparsity pattern.
fn arb_matrix() -> impl Strategy<Value = Csr> {
    (1usize..25, 1usize..15, any::<u64>()).prop_map(|(nu, ni, seed)| {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut t = Vec::new();
        for u in 0..nu {
            for i in 0..ni {
                if next() % 3 == 0 {
                    t.push((u, i, 0.5 + (next() % 1000) as f32 / 137.0));
                }
            }
        }
        Csr::from_triplets(nu, ni, &t).unwrap()
    })
}

fn all_kinds() -> Vec<Similarity> {
    vec![
        Similarity::Dot,
        Similarity::Cosine,
        Similarity::TfIdf,
        Similarity::Bm25 { k1: 1.2, b: 0.75 },
        Similarity::Pearson,
    ]
}

proptest! {
    #[test]
    fn similarity_matches_naive_reference(x in arb_matrix(), k in 1usize..8, threads in 1usize..4) {
        for sim in all_kinds() {
            let params = KnnParams { k, similarity: sim };
            let got = item_knn(&x.view(), &params, threads).unwrap();
            let full = reference_values(&x, sim);
            for i in 0..x.n_cols {
                // every stored value is the right value of an eligible pair ...
                let (cols, vals) = got.view().row(i);
                for (&j, &v) in cols.iter().zip(vals) {
                    let want = full[i][j as usize];
                    prop_assert!(want.is_some_and(|w| close(v as f64, w)),
                        "{:?} S[{}][{}] = {} vs {:?}", sim, i, j, v, want);
                }
                // ... and the row holds the k largest values (ids may differ only on ties)
                let mut want: Vec<f64> = full[i].iter().flatten().copied().collect();
                want.sort_by(|a, b| b.partial_cmp(a).unwrap());
                want.truncate(k);
                let mut have: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
                have.sort_by(|a, b| b.partial_cmp(a).unwrap());
                prop_assert_eq!(have.len(), want.len(), "{:?} row {}", sim, i);
                for (a, b) in have.iter().zip(&want) {
                    prop_assert!(close(*a, *b), "{:?} row {}: {} vs {}", sim, i, a, b);
                }
            }
            // identical for any thread count
            prop_assert_eq!(&item_knn(&x.view(), &params, 1).unwrap(), &got);
        }
    }
}

#[test]
fn weighting_rows_as_documents_matches_formulas() {
    let x = Csr::from_triplets(
        3,
        4,
        &[
            (0, 0, 1.0),
            (0, 2, 4.0),
            (1, 2, 9.0),
            (2, 1, 2.0),
            (2, 2, 1.0),
        ],
    )
    .unwrap();
    let v = x.view();
    // 3 documents (rows); df of terms: col0 1, col1 1, col2 3, col3 0
    let idf = |df: f64| 3f64.ln() - df.ln_1p();
    let t = tfidf(&v, Documents::Rows, 1).unwrap();
    let want = [
        1.0 * idf(1.0),
        2.0 * idf(3.0),
        3.0 * idf(3.0),
        2f64.sqrt() * idf(1.0),
        idf(3.0),
    ];
    for (a, b) in t.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-6, "{a} {b}");
    }
    let n = normalize(&v, Documents::Rows, 2).unwrap();
    let r0 = 17f64.sqrt();
    assert!((n[0] as f64 - 1.0 / r0).abs() < 1e-7 && (n[2] - 1.0).abs() < 1e-7);
    let b = bm25(&v, Documents::Rows, 100.0, 0.8, 1).unwrap();
    let lens = [5.0, 9.0, 3.0];
    let mean = 17.0 / 3.0;
    let w = |r: f64, d: usize, df: f64| {
        r * 101.0 / (100.0 * (0.2 + 0.8 * lens[d] / mean) + r) * idf(df)
    };
    let want = [
        w(1.0, 0, 1.0),
        w(4.0, 0, 3.0),
        w(9.0, 1, 3.0),
        w(2.0, 2, 1.0),
        w(1.0, 2, 3.0),
    ];
    for (a, b) in b.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} {b}");
    }
    // columns as documents equals rows-as-documents of the transpose
    let xt = tacitrec::sparse::transpose(&v, 1).unwrap();
    let a = tfidf(&xt.view(), Documents::Columns, 1).unwrap();
    let b = tfidf(&v, Documents::Rows, 1).unwrap();
    let bt = tacitrec::sparse::transpose(
        &tacitrec::sparse::CsrView::new("b", 3, 4, &x.indptr, &x.indices, &b).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(a, bt.data);
    assert!(bm25(&v, Documents::Rows, 1.0, 2.0, 1).is_err());
    let neg = Csr::from_triplets(1, 2, &[(0, 0, -1.0)]).unwrap();
    assert!(tfidf(&neg.view(), Documents::Rows, 1).is_err());
}

#[test]
fn scorers_match_dense_products() {
    let x = Csr::from_triplets(
        4,
        5,
        &[
            (0, 0, 1.0),
            (0, 1, 2.0),
            (1, 1, 1.0),
            (1, 2, 3.0),
            (2, 3, 1.0),
            (3, 0, 2.0),
            (3, 4, 1.0),
        ],
    )
    .unwrap();
    let s = item_knn(
        &x.view(),
        &KnnParams {
            k: 3,
            similarity: Similarity::Dot,
        },
        2,
    )
    .unwrap();
    let sd = dense(&s);
    let q = Csr::from_triplets(2, 5, &[(0, 1, 2.0), (1, 0, 1.0), (1, 3, 1.0)]).unwrap();
    let cands = Candidates::all(5);
    let scorer = KnnScorer::recommend(q.view(), s.view(), &cands).unwrap();
    let r = recommend_batch(&scorer, &cands, Some(&q.view()), 5, 1).unwrap();
    assert_eq!(r.k, 5);
    for u in 0..2 {
        let row = dense(&q);
        let scores: Vec<f64> = (0..5)
            .map(|j| (0..5).map(|i| row[u][i] * sd[i][j]).sum())
            .collect();
        let mut want: Vec<usize> = (0..5).filter(|&j| row[u][j] == 0.0).collect();
        want.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
        for (p, &j) in want.iter().enumerate() {
            assert_eq!(r.ids[u * 5 + p], j as i32);
            assert!((r.scores[u * 5 + p] as f64 - scores[j]).abs() < 1e-5);
        }
        assert!(r.ids[u * 5 + want.len()..(u + 1) * 5]
            .iter()
            .all(|&i| i == -1));
    }
    // neighbours: only stored entries, padded
    let items = [1i32, 4];
    let r = knn::neighbours(&items, &s.view(), &cands, 5, 1).unwrap();
    for (qi, &i) in items.iter().enumerate() {
        let stored = (s.indptr[i as usize + 1] - s.indptr[i as usize]) as usize;
        assert!(r.ids[qi * 5..qi * 5 + stored]
            .iter()
            .all(|&j| sd[i as usize][j as usize] != 0.0));
        assert!(r.ids[qi * 5 + stored..(qi + 1) * 5]
            .iter()
            .all(|&j| j == -1));
    }
    // with a candidate subset the positions map back to item ids
    let sub = Candidates::new(5, Some(&[4, 2]), None).unwrap();
    let scorer = KnnScorer::recommend(q.view(), s.view(), &sub).unwrap();
    let r = recommend_batch(&scorer, &sub, None, 5, 1).unwrap();
    assert_eq!(r.k, 2);
    assert!(r.ids.iter().all(|&i| i == 2 || i == 4));
    assert!(knn::neighbours(&[5], &s.view(), &cands, 5, 1).is_err());
}

/// A random `nr x nc` matrix with about `per_row` entries a row, values from small integers
/// (ties and exact zero sums happen) of either sign when `signed`.
fn random_csr(nr: usize, nc: usize, per_row: usize, signed: bool, seed: u64) -> Csr {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut t = Vec::new();
    for r in 0..nr {
        let n = (next() % (2 * per_row as u64 + 1)) as usize;
        let mut cols: Vec<usize> = (0..n).map(|_| (next() % nc as u64) as usize).collect();
        cols.sort_unstable();
        cols.dedup();
        for c in cols {
            let mut v = 1.0 + (next() % 4) as f32 * 0.5;
            if signed && next() % 3 == 0 {
                v = -v;
            }
            t.push((r, c, v));
        }
    }
    Csr::from_triplets(nr, nc, &t).unwrap()
}

proptest! {
    /// The sparse recommender (touched items only, whole-row fallback) returns exactly what the
    /// dense scorer through the shared driver returns, bit for bit, with filters, liked items,
    /// negative values and zero sums, on catalogues where either path runs and where the block
    /// bound skips blocks (many blocks of 64, hundreds touched), for any thread count.
    #[test]
    fn sparse_recommend_equals_dense_scorer(
        n_items in 1usize..3000,
        per_row in 1usize..40,
        k in 0usize..12,
        signed in any::<bool>(),
        liked in any::<bool>(),
        filter in any::<bool>(),
        threads in 1usize..4,
        seed in any::<u64>(),
    ) {
        let sim = random_csr(n_items, n_items, per_row, signed, seed);
        let q = random_csr(150, n_items, per_row, signed, seed ^ 0x5555);
        let filter_items: Vec<i32> = (0..n_items as i32).filter(|i| filter && i % 7 == 3).collect();
        let cands = Candidates::new(n_items, None, Some(&filter_items)).unwrap();
        let (qv, sv) = (q.view(), sim.view());
        let liked = liked.then_some(&qv);
        let scorer = KnnScorer::recommend(qv, sv, &cands).unwrap();
        let want = recommend_batch(&scorer, &cands, liked, k, 1).unwrap();
        let got = knn::recommend(&qv, &sv, &cands, liked, k, threads).unwrap();
        prop_assert_eq!(got.k, want.k);
        prop_assert_eq!(&got.ids, &want.ids);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&got.scores), bits(&want.scores));
    }
}

proptest! {
    /// `neighbours` (reading each item's stored row) returns what ranking the row's stored
    /// entries among the candidates returns: best first, ties (many: values are multiples of
    /// 0.5) to the lower id, padded; with an items subset, filter_items, negative values and
    /// any thread count.
    #[test]
    fn neighbours_equal_ranked_stored_entries(
        n_items in 1usize..400,
        per_row in 1usize..30,
        k in 0usize..12,
        signed in any::<bool>(),
        subset in any::<bool>(),
        filter in any::<bool>(),
        threads in 1usize..4,
        seed in any::<u64>(),
    ) {
        let sim = random_csr(n_items, n_items, per_row, signed, seed);
        let filter_items: Vec<i32> = (0..n_items as i32).filter(|i| filter && i % 5 == 2).collect();
        let items_sub: Vec<i32> = (0..n_items as i32).filter(|i| i % 3 != 1).collect();
        let cands = Candidates::new(
            n_items,
            subset.then_some(&items_sub[..]),
            Some(&filter_items),
        )
        .unwrap();
        let queries: Vec<i32> = (0..n_items as i32).step_by(3).collect();
        let got = knn::neighbours(&queries, &sim.view(), &cands, k, threads).unwrap();
        let k = k.min(cands.available());
        prop_assert_eq!(got.k, k);
        let allowed = |j: i32| {
            !filter_items.contains(&j) && (!subset || items_sub.contains(&j))
        };
        for (q, &i) in queries.iter().enumerate() {
            let (cols, vals) = sim.view().row(i as usize);
            let mut want: Vec<(f32, i32)> = cols
                .iter()
                .zip(vals)
                .filter(|(&j, _)| allowed(j))
                .map(|(&j, &v)| (v, j))
                .collect();
            want.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            for p in 0..k {
                let (id, score) = (got.ids[q * k + p], got.scores[q * k + p]);
                match want.get(p) {
                    Some(&(v, j)) => prop_assert_eq!((id, score.to_bits()), (j, v.to_bits())),
                    None => prop_assert_eq!((id, score), (-1, f32::NEG_INFINITY)),
                }
            }
        }
    }
}

#[test]
fn sparse_recommend_rejects_subsets_and_bad_shapes() {
    let sim = random_csr(10, 10, 3, false, 1);
    let q = random_csr(4, 10, 3, false, 2);
    let sub = Candidates::new(10, Some(&[1, 2]), None).unwrap();
    assert!(knn::recommend(&q.view(), &sim.view(), &sub, None, 2, 1).is_err());
    let q9 = random_csr(4, 9, 3, false, 2);
    let all = Candidates::all(10);
    assert!(knn::recommend(&q9.view(), &sim.view(), &all, None, 2, 1).is_err());
}

/// A catalogue large enough for the fit's light (tracked) and heavy (dense) rows, the shared
/// selections' compaction (many offers per row, K small) and the popularity relabelling: the
/// same similarity for 1 and 3 threads, and equal to the naive reference on every kept entry.
#[test]
fn larger_fit_matches_reference_and_thread_counts() {
    let x = random_csr(300, 120, 8, false, 11);
    for sim in all_kinds() {
        let params = KnnParams {
            k: 3,
            similarity: sim,
        };
        let one = item_knn(&x.view(), &params, 1).unwrap();
        let three = item_knn(&x.view(), &params, 3).unwrap();
        assert_eq!(one.indptr, three.indptr);
        assert_eq!(one.indices, three.indices);
        assert_eq!(one.data, three.data);
        let want = reference_values(&x, sim);
        let got = dense(&one);
        for i in 0..120 {
            // the kept entries are the row's best 3 (ties to the lower id) of its stored values
            let mut cand: Vec<(usize, f64)> = (0..120)
                .filter_map(|j| want[i][j].map(|v| (j, v)))
                .collect();
            cand.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
            let kept: Vec<usize> = (0..120).filter(|&j| got[i][j] != 0.0).collect();
            assert!(kept.len() == cand.len().min(3), "{sim:?} row {i}");
            for &(j, v) in cand.iter().take(3) {
                if (v - cand[2.min(cand.len() - 1)].1).abs() > 1e-4 * (1.0 + v.abs()) {
                    assert!(
                        close(got[i][j], v),
                        "{sim:?} ({i}, {j}): {} vs {v}",
                        got[i][j]
                    );
                }
            }
        }
    }
}

/// A binary matrix whose items have skewed popularity (item `c` drawn with weight about
/// `1 / (c + 1)`), so the fit meets light rows, rows that turn dense, and many tied sums.
fn skewed_binary(nr: usize, nc: usize, per_row: usize, seed: u64) -> Csr {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut t = Vec::new();
    for r in 0..nr {
        let n = 1 + (next() % (2 * per_row as u64)) as usize;
        let mut cols: Vec<usize> = (0..n)
            .map(|_| {
                // inverse of a log-uniform draw: small ids far more often
                let u = (next() % 1_000_000) as f64 / 1_000_000.0;
                (((nc as f64 + 1.0).powf(u) - 1.0) as usize).min(nc - 1)
            })
            .collect();
        cols.sort_unstable();
        cols.dedup();
        // a permutation of the ids, so that popularity is not id order
        t.extend(cols.into_iter().map(|c| (r, (c * 37 + 11) % nc, 1.0)));
    }
    Csr::from_triplets(nr, nc, &t).unwrap()
}

/// Row `i` of the fit `got` holds exactly the `k` largest of the `(item, value)` pairs `want`
/// (ties to the lower item), in item order.
fn assert_row_is_top_k(got: &Csr, i: usize, mut want: Vec<(usize, f64)>, k: usize, what: &str) {
    want.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    want.truncate(k);
    want.sort_by_key(|e| e.0);
    let (cols, vals) = got.view().row(i);
    let have: Vec<(usize, f64)> = cols
        .iter()
        .zip(vals)
        .map(|(&j, &v)| (j as usize, v as f64))
        .collect();
    assert_eq!(have, want, "{what} row {i}");
}

/// Dot products of binary columns are exact integers: the fit must keep exactly the `k` largest
/// co-occurrence counts of each row, ties to the lower item id, with every thread count.
#[test]
fn dot_fit_keeps_exact_top_k_with_ties_to_lower_ids() {
    for (nr, nc, per_row, seed) in [(400, 97, 12, 5), (800, 300, 30, 9)] {
        let x = skewed_binary(nr, nc, per_row, seed);
        let counts = reference_values(&x, Similarity::Dot);
        for k in [1, 4, 25, 1000] {
            let params = KnnParams {
                k,
                similarity: Similarity::Dot,
            };
            let got = item_knn(&x.view(), &params, 2).unwrap();
            assert_eq!(got, item_knn(&x.view(), &params, 1).unwrap());
            for i in 0..nc {
                let want = (0..nc).filter_map(|j| counts[i][j].map(|v| (j, v)));
                assert_row_is_top_k(&got, i, want.collect(), k, &format!("{nr}x{nc} K={k}"));
            }
        }
    }
}

/// A catalogue above the fit's small-catalogue size (2^15 items), where rows track the items
/// they touch until they have done as many multiply-adds as there are items: light rows and
/// popular rows that turn dense both keep exactly the `k` largest co-occurrence counts (ties to
/// the lower id), the same with 1 and 2 threads, against a sparse reference.
#[test]
fn dot_fit_over_a_large_catalogue_keeps_exact_top_k() {
    let (nr, nc, k) = (3000, 40_000, 20);
    let x = skewed_binary(nr, nc, 30, 21);
    let params = KnnParams {
        k,
        similarity: Similarity::Dot,
    };
    let got = item_knn(&x.view(), &params, 2).unwrap();
    assert_eq!(got, item_knn(&x.view(), &params, 1).unwrap());
    // items -> users
    let mut users_of: Vec<Vec<usize>> = vec![Vec::new(); nc];
    for r in 0..nr {
        for p in x.indptr[r] as usize..x.indptr[r + 1] as usize {
            users_of[x.indices[p] as usize].push(r);
        }
    }
    let popular = (0..nc).max_by_key(|&i| users_of[i].len()).unwrap();
    // the most popular item's row does far more multiply-adds than there are items
    let work: usize = users_of[popular]
        .iter()
        .map(|&u| (x.indptr[u + 1] - x.indptr[u]) as usize)
        .sum();
    assert!(work > nc, "{work}");
    let mut count = vec![0u32; nc];
    let mut touched = Vec::new();
    for i in (0..nc).step_by(37).chain([popular]) {
        touched.clear();
        for &u in &users_of[i] {
            for p in x.indptr[u] as usize..x.indptr[u + 1] as usize {
                let j = x.indices[p] as usize;
                if count[j] == 0 {
                    touched.push(j);
                }
                count[j] += 1;
            }
        }
        let want = touched.iter().map(|&j| (j, count[j] as f64)).collect();
        touched.iter().for_each(|&j| count[j] = 0);
        assert_row_is_top_k(&got, i, want, k, "large catalogue");
    }
}
