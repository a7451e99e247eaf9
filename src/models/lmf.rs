//! Logistic matrix factorisation (Johnson 2014) as implicit 0.7 implements it: per row, the
//! gradient of the log-likelihood over the row's positives (weighted by the stored values) and
//! sampled negatives, then an adagrad step; users, then items, each iteration.
//!
//! Layout (as implicit's): user rows hold `f` factors, a 1 and the user bias; item rows `f`
//! factors, the item bias and a 1; so `x_u . y_i = latent score + b_u + b_i`. The constant column
//! of the rows being updated is left untouched.
//!
//! For row u with positives (i, c_ui) and negatives j:
//! `g = sum_i c_ui (1 - sigma(x_u . y_i)) y_i - sum_j sigma(x_u . y_j) y_j - reg x_u`,
//! `G += g^2`, `x_u += lr g / sqrt(1e-6 + G)` (elementwise).
//!
//! Each row's negatives come from its own generator (seeded by the call's seed and the row's id)
//! and a row's update reads only the fixed side, so the result does not depend on the threads.

use super::sgd::{sigmoid, stream, Negatives};
use crate::error::{Error, Result};
use crate::parallel;
use crate::simd::{load_tail, prefetch, sgd_arch, store_tail, vaxpy, vdot, Lanes, WithSimd};
use crate::sparse::CsrView;
use rand::rngs::SmallRng;
use rayon::prelude::*;

/// Parameters of a half-step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmfParams {
    pub learning_rate: f32,
    pub regularization: f32,
    /// Negatives per positive.
    pub neg_prop: usize,
    pub max_negatives: MaxNegatives,
}

/// The cap on a row's negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxNegatives {
    /// implicit 0.7's: the width of the factor rows (`factors + 2`; its loop bound reads the
    /// number of factor columns where the number of items was meant).
    Auto,
    /// None: `neg_prop` times the row's positives.
    Unlimited,
    /// At most this many.
    At(usize),
}

impl MaxNegatives {
    /// The cap for factor rows of `width` values (`None`: no cap).
    pub fn cap(self, width: usize) -> Option<usize> {
        match self {
            MaxNegatives::Auto => Some(width),
            MaxNegatives::Unlimited => None,
            MaxNegatives::At(n) => Some(n),
        }
    }
}

/// `"auto"` (the other caps are not names: Python passes `None` or a count).
impl std::str::FromStr for MaxNegatives {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(MaxNegatives::Auto),
            other => Err(Error::invalid(
                "max_negatives",
                format!("must be 'auto', None or a count, got '{other}'"),
            )),
        }
    }
}

impl Default for LmfParams {
    fn default() -> Self {
        LmfParams {
            learning_rate: 1.0,
            regularization: 0.6,
            neg_prop: 30,
            max_negatives: MaxNegatives::Auto,
        }
    }
}

/// One row's gradient (positives, then `n_neg` sampled negatives) and adagrad step.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_step<S: Lanes>(
    simd: S,
    items: &[i32],
    vals: &[f32],
    x: &mut [f32],
    g2: &mut [f32],
    y: &[f32],
    fixed: usize,
    neg: &Negatives<'_>,
    p: &LmfParams,
    rng: &mut SmallRng,
    grad: &mut [f32],
    negs: &mut Vec<u32>,
) {
    let d = x.len();
    grad.fill(0.0);
    let mut n_neg = p.neg_prop.saturating_mul(items.len());
    if let Some(cap) = p.max_negatives.cap(d) {
        n_neg = n_neg.min(cap);
    }
    // The fixed rows a row reads are random: at large catalogues each is a miss to memory.
    // The negatives are drawn first (the same draws in the same order as one at a time: they
    // never depend on the factors) so that every row can be requested AHEAD rows before it is
    // read, and the misses overlap.
    negs.clear();
    negs.extend((0..n_neg).map(|_| neg.draw(rng)));
    let ahead = |k: usize| -> Option<usize> {
        match items.get(k) {
            Some(&i) => Some(i as usize),
            None => negs.get(k - items.len()).map(|&j| j as usize),
        }
    };
    for k in 0..AHEAD {
        if let Some(r) = ahead(k) {
            prefetch_row(y, r, d);
        }
    }
    for (k, (&i, &c)) in items.iter().zip(vals).enumerate() {
        if let Some(r) = ahead(k + AHEAD) {
            prefetch_row(y, r, d);
        }
        let yi = &y[i as usize * d..(i as usize + 1) * d];
        let z = c * (1.0 - sigmoid(vdot(simd, x, yi)));
        vaxpy(simd, z, yi, grad);
    }
    for (k, &j) in negs.iter().enumerate() {
        if let Some(&r) = negs.get(k + AHEAD) {
            prefetch_row(y, r as usize, d);
        }
        let j = j as usize;
        let yj = &y[j * d..(j + 1) * d];
        let z = sigmoid(vdot(simd, x, yj));
        vaxpy(simd, -z, yj, grad);
    }
    // every column, then the constant one put back as it was
    let kept = (x[fixed], g2[fixed]);
    adagrad(simd, x, g2, grad, p.learning_rate, p.regularization);
    (x[fixed], g2[fixed]) = kept;
}

/// Rows requested ahead of their reads in [`row_step`].
const AHEAD: usize = 4;

/// Requests the cache lines of row `r` of the row-major `y` (`d` columns); a hint.
#[inline(always)]
fn prefetch_row(y: &[f32], r: usize, d: usize) {
    let start = y.as_ptr().wrapping_add(r * d);
    for k in (0..d).step_by(16) {
        prefetch(start.wrapping_add(k));
    }
    prefetch(start.wrapping_add(d - 1));
}

/// `g = grad - reg x`, `G += g^2`, `x += lr g / sqrt(1e-6 + G)` elementwise.
#[inline(always)]
fn adagrad<S: Lanes>(simd: S, x: &mut [f32], g2: &mut [f32], grad: &[f32], lr: f32, reg: f32) {
    let n = x.len().min(g2.len()).min(grad.len());
    let (xh, xt) = S::as_mut_simd_f32s(&mut x[..n]);
    let (sh, st) = S::as_mut_simd_f32s(&mut g2[..n]);
    let (gh, gt) = S::as_simd_f32s(&grad[..n]);
    let (vlr, vreg, veps) = (
        simd.splat_f32s(lr),
        simd.splat_f32s(reg),
        simd.splat_f32s(1e-6),
    );
    for ((xk, sk), &gk) in xh.iter_mut().zip(sh.iter_mut()).zip(gh) {
        (*xk, *sk) = adagrad_vector(simd, vlr, vreg, veps, *xk, *sk, gk);
    }
    if !xt.is_empty() {
        let (x, s) = adagrad_vector(
            simd,
            vlr,
            vreg,
            veps,
            load_tail(simd, xt),
            load_tail(simd, st),
            load_tail(simd, gt),
        );
        store_tail(simd, xt, x);
        store_tail(simd, st, s);
    }
}

/// [`adagrad`] on one vector: `g = grad - reg x`, `s += g^2`, `x += lr g / sqrt(eps + s)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adagrad_vector<S: Lanes>(
    simd: S,
    lr: S::f32s,
    reg: S::f32s,
    eps: S::f32s,
    x: S::f32s,
    s: S::f32s,
    grad: S::f32s,
) -> (S::f32s, S::f32s) {
    let g = simd.sub_f32s(grad, simd.mul_f32s(reg, x));
    let s = simd.mul_add_e_f32s(g, g, s);
    let rate = simd.div_f32s(lr, simd.sqrt_f32s(simd.add_f32s(eps, s)));
    (simd.mul_add_e_f32s(rate, g, x), s)
}

/// [`row_step`], dispatched on [`sgd_arch`]'s instruction set.
struct RowStep<'a> {
    items: &'a [i32],
    vals: &'a [f32],
    x: &'a mut [f32],
    g2: &'a mut [f32],
    y: &'a [f32],
    fixed: usize,
    neg: &'a Negatives<'a>,
    p: &'a LmfParams,
    rng: &'a mut SmallRng,
    grad: &'a mut [f32],
    negs: &'a mut Vec<u32>,
}

impl WithSimd for RowStep<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let RowStep {
            items,
            vals,
            x,
            g2,
            y,
            fixed,
            neg,
            p,
            rng,
            grad,
            negs,
        } = self;
        row_step(simd, items, vals, x, g2, y, fixed, neg, p, rng, grad, negs)
    }
}

/// One half-step: every non-empty row of `x` (rows x `d`) and its adagrad accumulators `g2` are
/// updated from `m` (rows x columns, the stored values weighting the positives) with the column
/// factors `y` fixed; column `fixed` of `x` (its constant 1) is left as it is. Row r's negatives
/// are drawn from `neg` by a generator seeded with `seed` and `ids[r]` (the row index when `ids`
/// is `None`).
#[allow(clippy::too_many_arguments)]
pub fn half_step(
    m: &CsrView<'_>,
    x: &mut [f32],
    g2: &mut [f32],
    y: &[f32],
    d: usize,
    fixed: usize,
    params: &LmfParams,
    neg: &Negatives<'_>,
    ids: Option<&[u64]>,
    seed: u64,
    num_threads: usize,
) -> Result<()> {
    if d == 0 || fixed >= d {
        return Err(Error::invalid(
            "factors",
            "need the factor columns plus the bias and constant columns",
        ));
    }
    for (name, len, rows) in [
        ("factors being updated", x.len(), m.n_rows()),
        ("adagrad accumulators", g2.len(), m.n_rows()),
        ("fixed factors", y.len(), m.n_cols()),
    ] {
        if len != rows * d {
            return Err(Error::shape(
                name,
                format!("{rows} x {d}"),
                format!("{len} values"),
            ));
        }
    }
    if ids.is_some_and(|ids| ids.len() != m.n_rows()) {
        return Err(Error::invalid("ids", "need one id per row"));
    }
    let arch = sgd_arch();
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        x.par_chunks_mut(d)
            .zip(g2.par_chunks_mut(d))
            .enumerate()
            .for_each_init(
                || (vec![0f32; d], Vec::new()),
                |(grad, negs), (r, (xr, gr))| {
                    let (items, vals) = m.row(r);
                    if items.is_empty() || stop.is_set() {
                        return;
                    }
                    let id = ids.map_or(r as u64, |ids| ids[r]);
                    let mut rng = stream(seed, id, 2);
                    arch.dispatch(RowStep {
                        items,
                        vals,
                        x: xr,
                        g2: gr,
                        y,
                        fixed,
                        neg,
                        p: params,
                        rng: &mut rng,
                        grad,
                        negs,
                    });
                },
            )
    })?;
    stop.check()
}
