//! ALS half-sweeps on seeded synthetic data: `cargo bench --bench als`.

mod common;

use common::{power_law, Clock};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::models::als::{solve, AlsParams, Solver};

fn bench_als(c: &mut Criterion<Clock>) {
    let (users, items) = (20_000usize, 5_000usize);
    let x = power_law(users, items, 40, 9);
    let mut g = c.benchmark_group("als_user_half_sweep");
    g.sample_size(10);
    for (name, solver, f) in [
        ("cg3_f64", Solver::ConjugateGradient { steps: 3 }, 64usize),
        ("cg3_f128", Solver::ConjugateGradient { steps: 3 }, 128),
        ("cholesky_f64", Solver::Cholesky, 64),
    ] {
        let mut rng = SmallRng::seed_from_u64(1);
        let y: Vec<f32> = (0..items * f).map(|_| rng.random::<f32>() * 0.1).collect();
        let x0: Vec<f32> = (0..users * f).map(|_| rng.random::<f32>() * 0.1).collect();
        let params = AlsParams {
            regularization: 0.01,
            solver,
            ..Default::default()
        };
        for threads in [1usize, 2] {
            g.bench_function(format!("{name}_t{threads}"), |b| {
                let mut xs = x0.clone();
                b.iter(|| solve(&x.view(), &mut xs, &y, f, &params, threads).expect("valid"))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_als
}
criterion_main!(benches);
