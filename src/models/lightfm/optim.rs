//! The per-parameter learning-rate schedules (adagrad, adadelta), applied to every feature row of
//! a user or item.

use super::{Epoch, Locals, Schedule};

/// Adagrad on the leading multiple of 8 elements with AVX2 (`FMA` is only true where the CPU
/// has AVX2 and FMA): `1 / sqrt(G)` from the approximate reciprocal square root refined by one
/// Newton step (relative error ~1e-7, against the exact division's ~1e-7; the division and
/// square root were the slowest part of the update). Returns how many elements it did.
#[inline(always)]
fn adagrad_avx2<const FMA: bool>(
    theta: &mut [f32],
    acc: &mut [f32],
    coeff: &[f32],
    gw: f32,
    alpha: f32,
    lr: f32,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        use std::arch::x86_64::*;
        let n = theta.len().min(acc.len()).min(coeff.len()) / 8 * 8;
        // SAFETY: FMA = true is only instantiated behind the AVX2+FMA runtime check
        // (simd::dispatch!); every access is below n, within all three slices.
        unsafe {
            let (vgw, valpha, vlr) = (
                _mm256_set1_ps(gw),
                _mm256_set1_ps(alpha),
                _mm256_set1_ps(lr),
            );
            let (half, three_halves) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.5));
            for k in (0..n).step_by(8) {
                let t = _mm256_loadu_ps(theta.as_ptr().add(k));
                let a = _mm256_loadu_ps(acc.as_ptr().add(k));
                let c = _mm256_loadu_ps(coeff.as_ptr().add(k));
                let grad = _mm256_fmadd_ps(vgw, c, _mm256_mul_ps(valpha, t));
                let y = _mm256_rsqrt_ps(a);
                let y = _mm256_mul_ps(
                    y,
                    _mm256_fnmadd_ps(_mm256_mul_ps(half, a), _mm256_mul_ps(y, y), three_halves),
                );
                _mm256_storeu_ps(
                    theta.as_mut_ptr().add(k),
                    _mm256_fnmadd_ps(_mm256_mul_ps(vlr, y), grad, t),
                );
                _mm256_storeu_ps(acc.as_mut_ptr().add(k), _mm256_fmadd_ps(grad, grad, a));
            }
        }
        return n;
    }
    let _ = (theta, acc, coeff, gw, alpha, lr);
    0
}

/// Which side an update goes to.
#[derive(Clone, Copy)]
pub(super) enum Which {
    User,
    Item,
}

/// Applies `g * F[r, p] * coeff + alpha * theta` to every feature row p of row r of `which` side (the bias
/// column only when `bias`), through the schedule.
#[inline(always)]
pub(super) fn update<const FMA: bool>(
    e: &Epoch<'_>,
    locals: &mut Locals,
    which: Which,
    r: usize,
    g: f32,
    coeff: &[f32],
    bias: bool,
) {
    let (f, side, local, alpha) = match which {
        Which::User => (e.user_features, &e.users, &mut locals.users, e.p.user_alpha),
        Which::Item => (e.item_features, &e.items, &mut locals.items, e.p.item_alpha),
    };
    let schedule = e.p.schedule;
    let cols = if bias { coeff.len() } else { coeff.len() - 1 };
    let (feats, ws) = f.row(r);
    for (&p, &w) in feats.iter().zip(ws) {
        let (theta, acc, mom) = match side.slot_of(p as usize) {
            Some(slot) => local.rows_mut(slot),
            // SAFETY: hogwild updates (see SharedRows); distinct matrices per reference.
            None => unsafe {
                (
                    side.params.row(p as usize),
                    side.grad_acc.row(p as usize),
                    side.step_acc.row(p as usize),
                )
            },
        };
        let gw = g * w;
        let (theta, acc, mom, coeff) = (
            &mut theta[..cols],
            &mut acc[..cols],
            &mut mom[..cols],
            &coeff[..cols],
        );
        match schedule {
            Schedule::Adagrad { learning_rate } => {
                let done = adagrad_avx2::<FMA>(theta, acc, coeff, gw, alpha, learning_rate);
                for ((t, a), &c) in theta.iter_mut().zip(acc.iter_mut()).zip(coeff).skip(done) {
                    let grad = gw * c + alpha * *t;
                    *t -= learning_rate / a.sqrt() * grad;
                    *a += grad * grad;
                }
            }
            Schedule::Adadelta { rho, epsilon } => {
                for (((t, a), m), &c) in theta.iter_mut().zip(acc).zip(mom).zip(coeff) {
                    let grad = gw * c + alpha * *t;
                    *a = rho * *a + (1.0 - rho) * grad * grad;
                    let step = ((*m + epsilon) / (*a + epsilon)).sqrt() * grad;
                    *m = rho * *m + (1.0 - rho) * step * step;
                    *t -= step;
                }
            }
        }
    }
}
