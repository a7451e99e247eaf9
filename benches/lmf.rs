//! LMF user half-steps on seeded synthetic data at 32/64/128 factors (the row kernel must
//! vectorise): `cargo bench --bench lmf`.

mod common;

use common::{power_law, Clock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::models::lmf::{half_step, LmfParams, MaxNegatives};
use tacitrec::models::sgd::{column_counts, Alias, Negatives};

fn bench_lmf(c: &mut Criterion<Clock>) {
    let (users, items) = (20_000usize, 5_000usize);
    let x = power_law(users, items, 40, 12);
    let counts: Vec<f64> = column_counts(&x.indices, items)
        .expect("the counts fit in memory")
        .iter()
        .map(|&c| c as f64)
        .collect();
    let table = Alias::new(&counts).expect("interactions");
    let neg = Negatives::Weighted {
        table: &table,
        ids: None,
    };
    let mut g = c.benchmark_group("lmf_user_half_step");
    g.sample_size(10);
    g.throughput(Throughput::Elements(x.indices.len() as u64));
    for f in [32usize, 64, 128] {
        let d = f + 2;
        let params = LmfParams {
            max_negatives: MaxNegatives::At(d),
            ..LmfParams::default()
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let x0: Vec<f32> = (0..users * d).map(|_| rng.random::<f32>() - 0.5).collect();
        let y: Vec<f32> = (0..items * d).map(|_| rng.random::<f32>() - 0.5).collect();
        g.bench_function(format!("f{f}_t2"), |b| {
            let (mut xs, mut g2) = (x0.clone(), vec![0f32; users * d]);
            let mut seed = 0;
            b.iter(|| {
                seed += 1;
                half_step(
                    &x.view(),
                    &mut xs,
                    &mut g2,
                    &y,
                    d,
                    f,
                    &params,
                    &neg,
                    None,
                    seed,
                    2,
                )
                .expect("valid")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_lmf
}
criterion_main!(benches);
