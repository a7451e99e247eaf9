//! LightFM epochs on seeded synthetic data (identity features; WARP and BPR; 32/64/128
//! components): `cargo bench --bench lightfm`.

mod common;

use common::{power_law, Clock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::models::lightfm::{epoch, Data, LightFmParams, Loss, Side};
use tacitrec::sparse::Csr;

fn bench_lightfm(c: &mut Criterion<Clock>) {
    let (users, items) = (20_000usize, 5_000usize);
    let x = power_law(users, items, 40, 13);
    let (uf, itf) = (Csr::identity(users), Csr::identity(items));
    let mut g = c.benchmark_group("lightfm_epoch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(x.indices.len() as u64));
    for (name, loss) in [("warp", Loss::Warp), ("bpr", Loss::Bpr)] {
        for d in [32usize, 64, 128] {
            let w = d + 1;
            let mut rng = SmallRng::seed_from_u64(4);
            let mut init = |n: usize| -> Vec<f32> {
                (0..n * w)
                    .map(|_| (rng.random::<f32>() - 0.5) / d as f32)
                    .collect()
            };
            let (u0, i0) = (init(users), init(items));
            let params = LightFmParams {
                loss,
                ..Default::default()
            };
            g.bench_function(format!("{name}_d{d}_t2"), |b| {
                let (mut up, mut ip) = (u0.clone(), i0.clone());
                let (mut ug, mut us) = (vec![1f32; up.len()], vec![0f32; up.len()]);
                let (mut ig, mut is) = (vec![1f32; ip.len()], vec![0f32; ip.len()]);
                let data = Data {
                    interactions: &x.view(),
                    weights: None,
                    user_features: &uf.view(),
                    item_features: &itf.view(),
                };
                let mut seed = 0;
                b.iter(|| {
                    seed += 1;
                    let users = Side {
                        params: &mut up,
                        grad_acc: &mut ug,
                        step_acc: &mut us,
                    };
                    let items = Side {
                        params: &mut ip,
                        grad_acc: &mut ig,
                        step_acc: &mut is,
                    };
                    epoch(&data, users, items, d, &params, seed, 2).expect("valid")
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_lightfm
}
criterion_main!(benches);
