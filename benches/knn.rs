//! Item-item kNN kernels on seeded synthetic power-law data: `cargo bench --bench knn`.

mod common;

use common::{power_law, Clock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tacitrec::models::knn::{item_knn, KnnParams, KnnScorer, Similarity};
use tacitrec::sparse::CsrView;
use tacitrec::topk::{recommend_batch, Candidates};

fn bench_knn(c: &mut Criterion<Clock>) {
    let x = power_law(20_000, 5_000, 40, 5);
    let mut g = c.benchmark_group("knn");
    g.sample_size(10);
    for threads in [1usize, 2] {
        g.bench_function(format!("fit_bm25_k100_t{threads}"), |b| {
            let params = KnnParams {
                k: 100,
                similarity: Similarity::Bm25 { k1: 1.2, b: 0.75 },
            };
            b.iter(|| item_knn(&x.view(), &params, threads).expect("valid"))
        });
    }
    let s = item_knn(
        &x.view(),
        &KnnParams {
            k: 100,
            similarity: Similarity::Cosine,
        },
        0,
    )
    .expect("valid");
    let q = CsrView::new(
        "queries",
        5000,
        x.n_cols,
        &x.indptr[..5001],
        &x.indices[..x.indptr[5000] as usize],
        &x.data[..x.indptr[5000] as usize],
    )
    .expect("a prefix of rows is valid");
    let cands = Candidates::all(x.n_cols);
    let scorer = KnnScorer::recommend(q, s.view(), &cands).expect("shapes agree");
    g.throughput(Throughput::Elements(5000));
    for threads in [1usize, 2] {
        g.bench_function(format!("recommend_5000_users_t{threads}"), |b| {
            b.iter(|| recommend_batch(&scorer, &cands, Some(&q), 10, threads).expect("valid"))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_knn
}
criterion_main!(benches);
