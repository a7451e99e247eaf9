//! Top-k kernels on seeded synthetic data: `cargo bench --bench topk`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use tacitrec::sparse::Csr;
use tacitrec::topk::{recommend_batch, top_k, Candidates, DotScorer};

fn random_factors(rng: &mut SmallRng, rows: usize, factors: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, factors), |_| rng.random::<f32>() - 0.5)
}

/// About `per_row` items per user, drawn with a popularity skew (item = n * u^2).
fn liked(rng: &mut SmallRng, users: usize, items: usize, per_row: usize) -> Csr {
    let mut t = Vec::with_capacity(users * per_row);
    for u in 0..users {
        for _ in 0..per_row {
            let x: f64 = rng.random();
            t.push((u, ((x * x) * items as f64) as usize % items, 1.0));
        }
    }
    Csr::from_triplets(users, items, &t).expect("valid triplets")
}

fn bench_select(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let scores: Vec<f32> = (0..100_000).map(|_| rng.random()).collect();
    let mut g = c.benchmark_group("top_k_row");
    g.throughput(Throughput::Elements(scores.len() as u64));
    for k in [10usize, 100, 1000] {
        g.bench_with_input(BenchmarkId::new("heap", k), &k, |b, &k| {
            b.iter(|| top_k(black_box(&scores), k, &[]))
        });
    }
    g.bench_function("full_sort_k10", |b| {
        b.iter(|| {
            let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
            idx.sort_unstable_by(|&i, &j| scores[j as usize].total_cmp(&scores[i as usize]));
            idx.truncate(10);
            idx
        })
    });
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(11);
    let (users, items) = (4096usize, 10_000usize);
    let mut g = c.benchmark_group("recommend_batch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(users as u64));
    let filter = liked(&mut rng, users, items, 50);
    for factors in [32usize, 64, 128] {
        let q = random_factors(&mut rng, users, factors);
        let it = random_factors(&mut rng, items, factors);
        let cands = Candidates::all(items);
        let scorer = DotScorer::new(q.view(), it.view(), &cands).expect("shapes agree");
        for threads in [1usize, 2] {
            g.bench_function(format!("f{factors}_t{threads}_liked"), |b| {
                b.iter(|| {
                    recommend_batch(&scorer, &cands, Some(&filter.view()), 10, threads)
                        .expect("valid")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_select, bench_batch);
criterion_main!(benches);
