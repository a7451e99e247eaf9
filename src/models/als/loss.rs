//! The training loss of a factorisation: implicit 0.7's, or Rendle et al.'s objective (see
//! [`super::objective`]).

use super::cg::{rank_terms, Rows, TermsScratch};
use super::{check_shapes, weighted_gram, AlsParams};
use crate::error::Result;
use crate::parallel;
use crate::simd::{vaxpy, vdot, Arch, Lanes, WithSimd};
use crate::sparse::CsrView;
use rayon::prelude::*;

/// `out = A x` for a symmetric row-major `f x f` matrix, as `sum_j x_j A[j, :]` (row j of a
/// symmetric matrix is its column j): vector multiply-adds without horizontal sums.
#[inline(always)]
fn symv<S: Lanes>(simd: S, a: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    out.fill(0.0);
    for (&xj, row) in x.iter().zip(a.chunks_exact(f)) {
        vaxpy(simd, xj, row, out);
    }
}

/// One row's `(loss terms, confidence, |x_u|^2)`: `(A x - 2 b) . x` without forming A, plus the
/// constant `sum c+` (`sum |c|` with `implicit`, see [`loss`]). `yty` is `g YtY` and `o` the
/// observed offset. The interaction terms go through the CG's [`rank_terms`] (each item's
/// factors read once, for its dot product and its update).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn loss_row<S: Lanes>(
    simd: S,
    items: &[i32],
    conf: &[f32],
    xu: &[f32],
    y: &[f32],
    yty: &[f32],
    o: f32,
    implicit: bool,
    r: &mut [f32],
    terms: &mut TermsScratch,
) -> (f64, f64, f64) {
    symv(simd, yty, xu, r);
    let (mut loss, mut total) = (0f64, 0f64);
    for &c in conf {
        total += c.abs() as f64;
        if implicit || c > 0.0 {
            loss += c.abs() as f64;
        }
    }
    let rows = Rows::InPlace { ids: items, y };
    rank_terms(simd, rows, conf, xu, r, terms, |c, d| {
        let pref = if c > 0.0 { -2.0 * c } else { 0.0 };
        pref + (c.abs() - o) * d
    });
    loss += vdot(simd, r, xu) as f64;
    (loss, total, vdot(simd, xu, xu) as f64)
}

/// implicit 0.7's training loss: `(sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)) /
/// (sum of confidences + number of missing entries)`, missing entries having confidence 1 and
/// preference 0. Like implicit, a stored negative entry adds its confidence to the numerator as if
/// its preference were 1 (the exact objective would not); kept so that losses compare with
/// implicit's. Summed per row, then in row order (independent of the thread count).
pub fn loss(
    c: &CsrView<'_>,
    x: &[f32],
    y: &[f32],
    f: usize,
    reg: f32,
    num_threads: usize,
) -> Result<f64> {
    let params = AlsParams {
        regularization: reg,
        ..AlsParams::default()
    };
    objective_loss(c, x, y, f, &params, num_threads)
}

/// The loss of `params`'s objective (its `solver` is not used), divided by the total weight of
/// the entries. With `unobserved_weight = None`, [`loss`] with each row's regularisation
/// (`regularization * n^nu`). With `Some(alpha_0)`, Rendle et al.'s
/// `(sum_obs |c| (p - x_u.y_i)^2 + alpha_0 sum_all (x_u.y_i)^2 + sum_u reg_u |x_u|^2 +
/// sum_i reg_i |y_i|^2) / (sum_obs |c| + alpha_0 n_users n_items)`, exactly (no count of negative
/// entries as positive), `reg_u = reg (|I_u| + alpha_0 n_items)^nu` and
/// `reg_i = reg (|U_i| + alpha_0 n_users)^nu`.
pub fn objective_loss(
    c: &CsrView<'_>,
    x: &[f32],
    y: &[f32],
    f: usize,
    params: &AlsParams,
    num_threads: usize,
) -> Result<f64> {
    check_shapes(c, x, y, f)?;
    params.check()?;
    let yty = weighted_gram(y, f, params.gram_weight(), 0.0)?;
    let (o, implicit) = (params.observed_offset(), params.unobserved_weight.is_none());
    let arch = Arch::new();
    let per_row: Vec<(f64, f64, f64)> = parallel::install(num_threads, || {
        x.par_chunks(f)
            .enumerate()
            .map_init(
                || {
                    let mut terms = TermsScratch::default();
                    terms.set_factors(f);
                    (vec![0f32; f], terms)
                },
                |(r, terms), (u, xu)| {
                    let (items, conf) = c.row(u);
                    arch.dispatch(LossRow {
                        items,
                        conf,
                        xu,
                        y,
                        yty: &yty,
                        o,
                        implicit,
                        r,
                        terms,
                    })
                },
            )
            .collect()
    })?;
    let norms = arch.dispatch(SquaredNorms { y, f }).into_iter();
    let (mut loss, mut total, mut user_norm) = (0f64, 0f64, 0f64);
    if params.scaled_regularization() {
        let mut counts = vec![0usize; c.n_cols()];
        for &i in c.indices() {
            counts[i as usize] += 1;
        }
        let n_rows = c.n_rows();
        for (n, v) in counts.into_iter().zip(norms) {
            loss += params.row_regularization(n, n_rows) as f64 * v;
        }
        for (u, (l, t, n)) in per_row.into_iter().enumerate() {
            loss += l + params.row_regularization(c.row_range(u).len(), c.n_cols()) as f64 * n;
            total += t;
        }
    } else {
        let item_norm: f64 = norms.sum();
        for (l, t, n) in per_row {
            loss += l;
            total += t;
            user_norm += n;
        }
        loss += params.regularization as f64 * (item_norm + user_norm);
    }
    let unobserved = match params.unobserved_weight {
        None => (c.n_rows() * c.n_cols() - c.nnz()) as f64,
        Some(a0) => a0 as f64 * c.n_rows() as f64 * c.n_cols() as f64,
    };
    Ok(loss / (total + unobserved))
}

/// [`loss_row`], run by [`Arch::dispatch`] with the CPU's vector instructions.
struct LossRow<'a> {
    items: &'a [i32],
    conf: &'a [f32],
    xu: &'a [f32],
    y: &'a [f32],
    yty: &'a [f32],
    o: f32,
    implicit: bool,
    r: &'a mut [f32],
    terms: &'a mut TermsScratch,
}

impl WithSimd for LossRow<'_> {
    type Output = (f64, f64, f64);
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> Self::Output {
        let LossRow {
            items,
            conf,
            xu,
            y,
            yty,
            o,
            implicit,
            r,
            terms,
        } = self;
        loss_row(simd, items, conf, xu, y, yty, o, implicit, r, terms)
    }
}

/// The squared norm of every row of a row-major matrix with rows of `f` values.
struct SquaredNorms<'a> {
    y: &'a [f32],
    f: usize,
}

impl WithSimd for SquaredNorms<'_> {
    type Output = Vec<f64>;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.y.len() / self.f.max(1));
        for v in self.y.chunks(self.f) {
            out.push(vdot(simd, v, v) as f64);
        }
        out
    }
}
