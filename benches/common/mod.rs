//! Seeded synthetic data shared by the criterion benches.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tacitrec::sparse::Csr;

/// Users with skewed activity (about `mean` items on average) choosing items with skewed
/// popularity (item = n * x^3); repeated picks add up, capped at 5.
pub fn power_law(users: usize, items: usize, mean: usize, seed: u64) -> Csr {
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
