//! The SGD models' kernels: the alias sampler against its weights, BPR's reproducible schedule
//! and LMF's thread independence, and errors instead of panics on bad shapes.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tacitrec::models::bpr::{self, BprParams};
use tacitrec::models::lmf::{self, LmfParams};
use tacitrec::models::sgd::{column_counts, Alias, Negatives};
use tacitrec::sparse::Csr;

#[test]
fn alias_draws_follow_the_weights_and_never_zero_weights() {
    let w = [0.0, 1.0, 3.0, 0.0, 6.0, 0.5];
    let table = Alias::new(&w).expect("positive total");
    let mut rng = SmallRng::seed_from_u64(1);
    let n = 400_000;
    let mut counts = [0usize; 6];
    for _ in 0..n {
        counts[table.draw(&mut rng)] += 1;
    }
    let total: f64 = w.iter().sum();
    for (k, (&c, &wk)) in counts.iter().zip(&w).enumerate() {
        let p = wk / total;
        let got = c as f64 / n as f64;
        // 5 standard deviations of a binomial proportion
        let tol = 5.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-12;
        assert!((got - p).abs() <= tol, "item {k}: {got} vs {p}");
    }
    assert_eq!(counts[0] + counts[3], 0);
    assert!(Alias::new(&[0.0, 0.0]).is_none());
    assert!(Alias::new(&[]).is_none());
}

fn data() -> Csr {
    let mut t = Vec::new();
    for u in 0..300usize {
        for k in 0..(u % 17 + 1) {
            t.push((u, (u * 7 + k * 13) % 90, 1.0));
        }
    }
    Csr::from_triplets(300, 90, &t).expect("valid")
}

fn init(n: usize, d: usize, seed: u64) -> Vec<f32> {
    (0..n * d)
        .map(|k| (((k as u64 * 2654435761 + seed) % 1000) as f32 / 1000.0 - 0.5) / d as f32)
        .collect()
}

#[test]
fn bpr_reproducible_schedule_ignores_the_thread_count() {
    let m = data();
    let d = 9;
    let params = BprParams {
        deterministic: true,
        ..BprParams::default()
    };
    let run = |threads| {
        let (mut x, mut y) = (init(300, d, 1), init(90, d, 2));
        for row in x.chunks_mut(d) {
            row[d - 1] = 1.0;
        }
        let mut stats = Vec::new();
        for epoch in 0..3 {
            stats.push(bpr::epoch(&m.view(), &mut x, &mut y, d, &params, epoch, threads).unwrap());
        }
        (x, y, stats)
    };
    let one = run(1);
    assert_eq!(one.2[0].samples, m.indices.len() as u64);
    for threads in [2, 3] {
        assert_eq!(run(threads), one);
    }
}

#[test]
fn lmf_half_step_ignores_the_thread_count() {
    let m = data();
    let d = 6;
    let table = Alias::new(
        &column_counts(&m.indices, 90)
            .unwrap() // ok: test
            .iter()
            .map(|&c| c as f64)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let neg = Negatives::Weighted {
        table: &table,
        ids: None,
    };
    let run = |threads| {
        let (mut x, mut g) = (init(300, d, 3), vec![0f32; 300 * d]);
        let y = init(90, d, 4);
        lmf::half_step(
            &m.view(),
            &mut x,
            &mut g,
            &y,
            d,
            4,
            &LmfParams::default(),
            &neg,
            None,
            9,
            threads,
        )
        .unwrap();
        (x, g)
    };
    let one = run(1);
    assert_eq!(run(2), one);
    assert_ne!(one.0, init(300, 6, 3));
}

#[test]
fn bad_shapes_are_errors() {
    let m = data();
    let (mut x, mut y) = (vec![0f32; 300 * 5], vec![0f32; 90 * 4]);
    assert!(bpr::epoch(&m.view(), &mut x, &mut y, 5, &BprParams::default(), 0, 1).is_err());
    let mut y = vec![0f32; 90 * 5];
    assert!(bpr::epoch(&m.view(), &mut x, &mut y, 1, &BprParams::default(), 0, 1).is_err());
    let neg = Negatives::Uniform {
        count: 90,
        ids: None,
    };
    let mut half_step = |g_len: usize, fixed: usize| {
        let mut g = vec![0f32; g_len];
        let p = LmfParams::default();
        lmf::half_step(
            &m.view(),
            &mut x,
            &mut g,
            &y,
            5,
            fixed,
            &p,
            &neg,
            None,
            0,
            1,
        )
    };
    assert!(half_step(10, 4).is_err()); // accumulators of the wrong size
    assert!(half_step(300 * 5, 5).is_err()); // the constant column out of range
    assert!(half_step(300 * 5, 4).is_ok());
}
