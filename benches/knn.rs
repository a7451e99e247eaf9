//! Item-item kNN kernels on seeded synthetic power-law data: `cargo bench --bench knn`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::models::knn::{item_knn, KnnParams, KnnScorer, Similarity};
use tacitrec::sparse::{Csr, CsrView};
use tacitrec::topk::{recommend_batch, Candidates};

/// Users with skewed activity choosing items with skewed popularity (item = n * x^3).
fn power_law(users: usize, items: usize, mean: usize, seed: u64) -> Csr {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut t = Vec::new();
    for u in 0..users {
        let x: f64 = rng.random();
        let n = ((mean as f64 * 0.5 / (1.0 - x).max(0.01).sqrt()) as usize).clamp(1, items / 4);
        for _ in 0..n {
            let y: f64 = rng.random();
            t.push((u, ((y * y * y) * items as f64) as usize % items, 1.0));
        }
    }
    let mut m = Csr::from_triplets(users, items, &t).expect("valid triplets");
    m.data.iter_mut().for_each(|v| *v = v.min(5.0));
    m
}

fn bench_knn(c: &mut Criterion) {
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

criterion_group!(benches, bench_knn);
criterion_main!(benches);
