//! The per-parameter learning-rate schedules (adagrad, adadelta), applied to every feature row of
//! a user or item.

use super::{Epoch, Locals, Regularization, Schedule};
use crate::simd::{load_tail, rsqrt, store_tail, Lanes};

/// Adagrad: `grad = gw coeff + alpha theta`, `theta -= lr grad / sqrt(G)`, `G += grad^2`
/// elementwise (G starts at 1). `1 / sqrt(G)` comes from [`rsqrt`] on the vector part: the exact
/// square root and division were the slowest part of the update. The tail shorter than a vector
/// is one more (masked) vector, so every element is updated alike. With `RATES`, returns the sum
/// of `1 / sqrt(G)` over the elements (G before the step: each one's learning rate over `lr`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adagrad<S: Lanes, const RATES: bool>(
    simd: S,
    theta: &mut [f32],
    acc: &mut [f32],
    coeff: &[f32],
    gw: f32,
    alpha: f32,
    lr: f32,
) -> f32 {
    let n = theta.len().min(acc.len()).min(coeff.len());
    let (th, tt) = S::as_mut_simd_f32s(&mut theta[..n]);
    let (ah, at) = S::as_mut_simd_f32s(&mut acc[..n]);
    let (ch, ct) = S::as_simd_f32s(&coeff[..n]);
    let k = AdagradVector::<S> {
        gw: simd.splat_f32s(gw),
        alpha: simd.splat_f32s(alpha),
        lr: simd.splat_f32s(lr),
    };
    let mut rates = simd.splat_f32s(0.0);
    for ((t, a), &c) in th.iter_mut().zip(ah.iter_mut()).zip(ch) {
        let r;
        (*t, *a, r) = k.apply(simd, *t, *a, c);
        if RATES {
            rates = simd.add_f32s(rates, r);
        }
    }
    if !tt.is_empty() {
        let (t, a, r) = k.apply(
            simd,
            load_tail(simd, tt),
            load_tail(simd, at),
            load_tail(simd, ct),
        );
        store_tail(simd, tt, t);
        store_tail(simd, at, a);
        if RATES {
            // lanes past the tail loaded G = 0: their 1 / sqrt(G) is dropped
            let live = simd.mask_between_m32s(0, tt.len() as u32).mask();
            rates = simd.add_f32s(rates, simd.select_f32s(live, r, simd.splat_f32s(0.0)));
        }
    }
    if RATES {
        simd.reduce_sum_f32s(rates)
    } else {
        0.0
    }
}

/// Zeiler's adadelta elementwise: `G = rho G + (1 - rho) grad^2`, `step = sqrt((M + eps) /
/// (G + eps)) grad`, `M = rho M + (1 - rho) step^2`, `theta -= shrink step`. With `RATES`,
/// returns the sum of the elements' learning rates `sqrt((M + eps) / (G + eps))`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adadelta<S: Lanes, const RATES: bool>(
    simd: S,
    theta: &mut [f32],
    acc: &mut [f32],
    mom: &mut [f32],
    coeff: &[f32],
    gw: f32,
    alpha: f32,
    rho: f32,
    epsilon: f32,
    shrink: f32,
) -> f32 {
    let n = theta.len().min(acc.len()).min(mom.len()).min(coeff.len());
    let (th, tt) = S::as_mut_simd_f32s(&mut theta[..n]);
    let (ah, at) = S::as_mut_simd_f32s(&mut acc[..n]);
    let (mh, mt) = S::as_mut_simd_f32s(&mut mom[..n]);
    let (ch, ct) = S::as_simd_f32s(&coeff[..n]);
    let k = AdadeltaVector::<S> {
        gw: simd.splat_f32s(gw),
        alpha: simd.splat_f32s(alpha),
        rho: simd.splat_f32s(rho),
        keep: simd.splat_f32s(1.0 - rho),
        eps: simd.splat_f32s(epsilon),
        shrink: simd.splat_f32s(shrink),
    };
    let mut rates = simd.splat_f32s(0.0);
    for (((t, a), m), &c) in th.iter_mut().zip(ah.iter_mut()).zip(mh.iter_mut()).zip(ch) {
        let r;
        (*t, *a, *m, r) = k.apply(simd, *t, *a, *m, c);
        if RATES {
            rates = simd.add_f32s(rates, r);
        }
    }
    if !tt.is_empty() {
        let (t, a, m, r) = k.apply(
            simd,
            load_tail(simd, tt),
            load_tail(simd, at),
            load_tail(simd, mt),
            load_tail(simd, ct),
        );
        store_tail(simd, tt, t);
        store_tail(simd, at, a);
        store_tail(simd, mt, m);
        if RATES {
            let live = simd.mask_between_m32s(0, tt.len() as u32).mask();
            rates = simd.add_f32s(rates, simd.select_f32s(live, r, simd.splat_f32s(0.0)));
        }
    }
    if RATES {
        simd.reduce_sum_f32s(rates)
    } else {
        0.0
    }
}

/// [`adagrad`] on one vector (coefficients splatted once per row).
struct AdagradVector<S: Lanes> {
    gw: S::f32s,
    alpha: S::f32s,
    lr: S::f32s,
}

impl<S: Lanes> AdagradVector<S> {
    /// `(theta, G)` after the step, and `1 / sqrt(G)` before it.
    #[inline(always)]
    fn apply(&self, simd: S, t: S::f32s, a: S::f32s, c: S::f32s) -> (S::f32s, S::f32s, S::f32s) {
        let grad = simd.mul_add_e_f32s(self.gw, c, simd.mul_f32s(self.alpha, t));
        let inv = rsqrt(simd, a);
        let rate = simd.mul_f32s(self.lr, inv);
        (
            simd.negate_mul_add_e_f32s(rate, grad, t),
            simd.mul_add_e_f32s(grad, grad, a),
            inv,
        )
    }
}

/// [`adadelta`] on one vector (coefficients splatted once per row; `keep` is `1 - rho`).
struct AdadeltaVector<S: Lanes> {
    gw: S::f32s,
    alpha: S::f32s,
    rho: S::f32s,
    keep: S::f32s,
    eps: S::f32s,
    shrink: S::f32s,
}

impl<S: Lanes> AdadeltaVector<S> {
    /// `(theta, G, M)` after the step, and the step's learning rate.
    #[inline(always)]
    fn apply(
        &self,
        simd: S,
        t: S::f32s,
        a: S::f32s,
        m: S::f32s,
        c: S::f32s,
    ) -> (S::f32s, S::f32s, S::f32s, S::f32s) {
        let grad = simd.mul_add_e_f32s(self.gw, c, simd.mul_f32s(self.alpha, t));
        let a = simd.mul_add_e_f32s(
            simd.mul_f32s(self.keep, grad),
            grad,
            simd.mul_f32s(self.rho, a),
        );
        let ratio = simd.div_f32s(simd.add_f32s(m, self.eps), simd.add_f32s(a, self.eps));
        let rate = simd.sqrt_f32s(ratio);
        let step = simd.mul_f32s(rate, grad);
        let m = simd.mul_add_e_f32s(
            simd.mul_f32s(self.keep, step),
            step,
            simd.mul_f32s(self.rho, m),
        );
        (simd.negate_mul_add_e_f32s(self.shrink, step, t), a, m, rate)
    }
}

/// Which side an update goes to.
#[derive(Clone, Copy)]
pub(super) enum Which {
    User,
    Item,
}

/// Applies `g * F[r, p] * coeff` to every feature row p of row r of `which` side (the bias
/// column only when `bias`), through the schedule, with the L2 term `alpha * theta` in
/// [`Regularization::L2`]. The rows hold the side's parameters over its scale (see
/// [`Local::decay`]): the step is multiplied by `1 / scale`. While the sides decay, the learning
/// rates of the updated elements are added to `locals.rates`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn update<S: Lanes>(
    simd: S,
    e: &Epoch<'_>,
    locals: &mut Locals,
    which: Which,
    r: usize,
    g: f32,
    coeff: &[f32],
    bias: bool,
) {
    let Locals {
        users,
        items,
        rates,
    } = locals;
    let (f, side, local, alpha) = match which {
        Which::User => (e.user_features, &e.users, users, e.p.user_alpha),
        Which::Item => (e.item_features, &e.items, items, e.p.item_alpha),
    };
    let l2 = match e.p.regularization {
        Regularization::L2 => alpha,
        Regularization::Decay => 0.0,
    };
    let shrink = local.shrink();
    let schedule = e.p.schedule;
    let cols = if bias { coeff.len() } else { coeff.len() - 1 };
    let mut sum = 0.0f32;
    let mut n = 0u32;
    for (p, w) in f.row(r) {
        let (theta, acc, mom) = match side.slot_of(p) {
            Some(slot) => local.rows_mut(slot),
            // SAFETY: hogwild updates (see SharedRows); distinct matrices per reference.
            None => unsafe {
                (
                    side.params.row_mut(p),
                    side.grad_acc.row_mut(p),
                    side.step_acc.row_mut(p),
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
        match (schedule, e.decaying) {
            (Schedule::Adagrad { learning_rate }, false) => {
                adagrad::<S, false>(simd, theta, acc, coeff, gw, l2, learning_rate);
            }
            (Schedule::Adagrad { learning_rate }, true) => {
                sum += learning_rate
                    * adagrad::<S, true>(simd, theta, acc, coeff, gw, l2, learning_rate * shrink);
            }
            (Schedule::Adadelta { rho, epsilon }, false) => {
                adadelta::<S, false>(simd, theta, acc, mom, coeff, gw, l2, rho, epsilon, 1.0);
            }
            (Schedule::Adadelta { rho, epsilon }, true) => {
                sum +=
                    adadelta::<S, true>(simd, theta, acc, mom, coeff, gw, l2, rho, epsilon, shrink);
            }
        }
        n += cols as u32;
    }
    if e.decaying {
        rates.add(sum, n);
    }
}
