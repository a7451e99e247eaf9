//! BPR epochs on seeded synthetic data, both schedules, at 32/64/128 factors (the step must
//! vectorise: time should grow far slower than the factor count): `cargo bench --bench bpr`.

mod common;

use common::{power_law, Clock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::models::bpr::{epoch, BprParams};

fn bench_bpr(c: &mut Criterion<Clock>) {
    let (users, items) = (20_000usize, 5_000usize);
    let x = power_law(users, items, 40, 11);
    let mut g = c.benchmark_group("bpr_epoch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(x.indices.len() as u64));
    for f in [32usize, 64, 128] {
        let d = f + 1;
        let mut rng = SmallRng::seed_from_u64(2);
        let mut x0: Vec<f32> = (0..users * d).map(|_| rng.random::<f32>() - 0.5).collect();
        x0.chunks_mut(d).for_each(|r| r[f] = 1.0);
        let y0: Vec<f32> = (0..items * d).map(|_| rng.random::<f32>() - 0.5).collect();
        for (name, deterministic) in [("stratified", true), ("hogwild", false)] {
            let params = BprParams {
                deterministic,
                ..BprParams::default()
            };
            g.bench_function(format!("{name}_f{f}_t2"), |b| {
                let (mut xs, mut ys) = (x0.clone(), y0.clone());
                let mut seed = 0;
                b.iter(|| {
                    seed += 1;
                    epoch(&x.view(), &mut xs, &mut ys, d, &params, seed, 2).expect("valid")
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_bpr
}
criterion_main!(benches);
