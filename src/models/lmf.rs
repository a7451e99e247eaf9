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
use crate::simd::{axpy, dispatch, dot, Simd};
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

#[inline(always)] // so that dispatch! compiles it with the CPU features
#[allow(clippy::too_many_arguments)]
fn row_step<const FMA: bool>(
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
) {
    let d = x.len();
    grad.fill(0.0);
    for (&i, &c) in items.iter().zip(vals) {
        let yi = &y[i as usize * d..(i as usize + 1) * d];
        let z = c * (1.0 - sigmoid(dot::<FMA>(x, yi)));
        axpy::<FMA>(z, yi, grad);
    }
    let mut n_neg = p.neg_prop.saturating_mul(items.len());
    if let Some(cap) = p.max_negatives.cap(d) {
        n_neg = n_neg.min(cap);
    }
    for _ in 0..n_neg {
        let j = neg.draw(rng) as usize;
        let yj = &y[j * d..(j + 1) * d];
        let z = sigmoid(dot::<FMA>(x, yj));
        axpy::<FMA>(-z, yj, grad);
    }
    for (k, ((xk, gk), sk)) in x.iter_mut().zip(grad.iter()).zip(g2.iter_mut()).enumerate() {
        if k != fixed {
            let g = gk - p.regularization * *xk;
            *sk += g * g;
            *xk += p.learning_rate / (1e-6 + *sk).sqrt() * g;
        }
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
    let run = dispatch!(Simd::detect(), row_step, row_step_avx2,
        (items: &[i32], vals: &[f32], x: &mut [f32], g2: &mut [f32], y: &[f32], fixed: usize,
         neg: &Negatives<'_>, p: &LmfParams, rng: &mut SmallRng, grad: &mut [f32]) -> ());
    let stop = parallel::stop_flag();
    parallel::install(num_threads, || {
        x.par_chunks_mut(d)
            .zip(g2.par_chunks_mut(d))
            .enumerate()
            .for_each_init(
                || vec![0f32; d],
                |grad, (r, (xr, gr))| {
                    let (items, vals) = m.row(r);
                    if items.is_empty() || stop.is_set() {
                        return;
                    }
                    let id = ids.map_or(r as u64, |ids| ids[r]);
                    let mut rng = stream(seed, id, 2);
                    run(items, vals, xr, gr, y, fixed, neg, params, &mut rng, grad);
                },
            )
    })?;
    stop.check()
}
