//! Seeded synthetic data and the clock shared by the criterion benches.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
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

/// The criterion configuration of the kernel benches: wall time, or with `TACITREC_BENCH_CLOCK=cpu`
/// the CPU time of the whole process (all threads), which a shared, oversubscribed machine
/// inflates far less than wall time (compare runs made with the same clock only).
pub fn criterion() -> criterion::Criterion<Clock> {
    let cpu = std::env::var("TACITREC_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    criterion::Criterion::default().with_measurement(Clock { cpu })
}

/// Wall time or process CPU time (see [`criterion`]).
pub struct Clock {
    cpu: bool,
}

static WALL: WallTime = WallTime;

impl Measurement for Clock {
    type Intermediate = (Instant, Duration);
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        (Instant::now(), cpu_time())
    }
    fn end(&self, (wall, cpu): Self::Intermediate) -> Duration {
        if self.cpu {
            cpu_time().saturating_sub(cpu)
        } else {
            wall.elapsed()
        }
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// The CPU time this process has used (all threads); zero where it cannot be read.
fn cpu_time() -> Duration {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, out: *mut Timespec) -> i32;
        }
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec (two 64-bit fields on 64-bit Linux), and the
        // clock id is Linux's process CPU-time clock.
        if unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0 {
            return Duration::new(t.sec as u64, t.nsec as u32);
        }
    }
    Duration::ZERO
}
