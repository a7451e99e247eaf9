//! Ranking metrics against hand-computed cases.
#![allow(clippy::needless_range_loop)] // index loops keep the references plain

use tacitrec::metrics::{ranking_metrics, METRIC_NAMES, N_METRICS};
use tacitrec::sparse::Csr;

fn col(name: &str) -> usize {
    METRIC_NAMES.iter().position(|n| *n == name).unwrap()
}

#[test]
fn hand_computed_user() {
    // 10 items; test = {1, 4, 7}; recommended [4, 2, 1, 9, -1] at K = 5.
    let test = Csr::from_triplets(1, 10, &[(0, 1, 1.0), (0, 4, 1.0), (0, 7, 1.0)]).unwrap();
    let recs = [4, 2, 1, 9, -1];
    let m = ranking_metrics(&recs, 5, &test.view(), 5, 10, 1).unwrap();
    let close = |name: &str, want: f64| {
        let got = m[col(name)];
        assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
    };
    close("precision", 2.0 / 5.0);
    close("recall", 2.0 / 3.0);
    // hits at ranks 1 and 3: AP = (1/1 + 2/3) / min(5, 3)
    close("map", (1.0 + 2.0 / 3.0) / 3.0);
    let dcg = 1.0 + 1.0 / 4f64.log2();
    let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
    close("ndcg", dcg / idcg);
    close("mrr", 1.0);
    close("hit_rate", 1.0);
    close("hits", 2.0);
    close("ideal", 3.0);
    // implicit's AUC: misses at ranks 2 and 4 see 1 and 2 hits above them (the -1 at rank 5 holds
    // no item); 7 negatives, 2 misses.
    let auc = (1.0 + 2.0 + (2.0 + 3.0) / 2.0 * (7.0 - 2.0)) / (3.0 * 7.0);
    close("auc", auc);
}

#[test]
fn short_lists_hold_no_items_and_empty_users_are_nan() {
    let test = Csr::from_triplets(2, 4, &[(1, 3, 1.0)]).unwrap();
    // width 1 < K = 3; user 0 has no test items
    let recs = [0, 3];
    let m = ranking_metrics(&recs, 1, &test.view(), 3, 4, 2).unwrap();
    assert!(m[..N_METRICS].iter().all(|v| v.is_nan()));
    let u1 = &m[N_METRICS..];
    assert_eq!(u1[col("precision")], 1.0 / 3.0);
    assert_eq!(u1[col("mrr")], 1.0);
    assert_eq!(u1[col("ndcg")], 1.0);
    // the two slots past the width-1 list hold no item: no misses; (1 + 1) / 2 * 3 negatives
    assert!((u1[col("auc")] - (1.0 * 3.0) / 3.0).abs() < 1e-12);
}

#[test]
fn no_hits_and_late_first_hit() {
    let test = Csr::from_triplets(2, 6, &[(0, 5, 1.0), (1, 2, 1.0), (1, 3, 1.0)]).unwrap();
    let recs = [0, 1, 2, 0, 1, 3];
    let m = ranking_metrics(&recs, 3, &test.view(), 3, 6, 1).unwrap();
    assert_eq!(m[col("precision")], 0.0);
    assert_eq!(m[col("mrr")], 0.0);
    assert_eq!(m[col("hit_rate")], 0.0);
    let u1 = &m[N_METRICS..];
    assert!((u1[col("mrr")] - 1.0 / 3.0).abs() < 1e-12);
    assert!((u1[col("map")] - (1.0 / 3.0) / 2.0).abs() < 1e-12);
}

#[test]
fn rejects_mismatched_shapes() {
    let test = Csr::from_triplets(2, 6, &[]).unwrap();
    assert!(ranking_metrics(&[0, 1, 2], 2, &test.view(), 2, 6, 1).is_err());
    assert!(ranking_metrics(&[0, 1], 1, &test.view(), 0, 6, 1).is_err());
    assert!(ranking_metrics(&[0, 1], 1, &test.view(), 1, 5, 1).is_err());
}

#[test]
fn thread_count_does_not_change_results() {
    let mut trip = Vec::new();
    let mut recs = Vec::new();
    for u in 0..500usize {
        for j in 0..(u % 7) {
            trip.push((u, (u * 3 + j * 11) % 50, 1.0));
        }
        recs.extend((0..10).map(|i| ((u + i * 7) % 50) as i32));
    }
    let test = Csr::from_triplets(500, 50, &trip).unwrap();
    let a = ranking_metrics(&recs, 10, &test.view(), 10, 50, 1).unwrap();
    let b = ranking_metrics(&recs, 10, &test.view(), 10, 50, 3).unwrap();
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
