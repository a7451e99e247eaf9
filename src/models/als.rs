//! Implicit ALS (Hu, Koren & Volinsky 2008) as implicit 0.7 implements it: half-sweeps solved
//! per row by conjugate gradient (warm-started, without forming the f x f matrix) or by Cholesky,
//! and the training loss.
//!
//! Confidence and preference: a stored value `r > 0` means preference 1 with confidence `r`; `r < 0`
//! means preference 0 with confidence `|r|`; a missing entry means preference 0 with confidence 1.
//! (The caller scales the values by alpha.) Row u of X solves
//! `(YtY + reg I + sum_i (c_ui - 1) y_i y_i^T) x_u = sum_i c_ui p_ui y_i`; empty rows get zeros.

use crate::error::{Error, Result};
use crate::parallel;
use crate::sparse::CsrView;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// How each row's normal equations are solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// `steps` conjugate-gradient steps from the current factors.
    ConjugateGradient { steps: usize },
    /// An exact solve by Cholesky factorisation (faer).
    Cholesky,
}

/// Parameters of a half-sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsParams {
    pub regularization: f32,
    pub solver: Solver,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            regularization: 0.01,
            solver: Solver::ConjugateGradient { steps: 3 },
        }
    }
}

/// `a . b`, with eight independent partial sums so that it vectorises.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += alpha * x`.
#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out = A x` for a row-major `f x f` matrix.
#[inline]
fn symv(a: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    for (o, row) in out.iter_mut().zip(a.chunks_exact(f)) {
        *o = dot(row, x);
    }
}

/// `Y^T Y` (row-major `f x f`) of a row-major `n x f` matrix, plus `reg` on the diagonal.
pub fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let n = y.len().checked_div(f).unwrap_or(0);
    let mut out = vec![0f32; f * f];
    if f > 0 && n > 0 {
        let yv = MatRef::from_row_major_slice(y, n, f);
        let o = MatMut::from_row_major_slice_mut(&mut out, f, f);
        faer::linalg::matmul::matmul(o, Accum::Replace, yv.transpose(), yv, 1.0f32, Par::Seq);
    }
    for d in 0..f {
        out[d * f + d] += reg;
    }
    out
}

fn check_shapes(c: &CsrView<'_>, x: &[f32], y: &[f32], f: usize) -> Result<()> {
    if f == 0 {
        return Err(Error::invalid("factors", "must be at least 1"));
    }
    if x.len() != c.n_rows() * f {
        return Err(Error::shape(
            "factors being solved (rows x factors)",
            format!("{} x {f}", c.n_rows()),
            format!("{} values", x.len()),
        ));
    }
    if y.len() != c.n_cols() * f {
        return Err(Error::shape(
            "fixed factors (columns x factors)",
            format!("{} x {f}", c.n_cols()),
            format!("{} values", y.len()),
        ));
    }
    Ok(())
}

/// Per-thread buffers of a half-sweep.
struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    a: Vec<f32>,
    gathered: Vec<f32>,
    scaled: Vec<f32>,
    stack: MemBuffer,
}

/// Solves every row of `x` (`c.n_rows() x f`, row-major, updated in place) against the fixed
/// factors `y` (`c.n_cols() x f`). Rows are independent, so the result does not depend on the
/// thread count. The systems are positive semi-definite (confidences are `|r|`), positive definite
/// for `reg > 0`; a singular Cholesky system (`reg == 0` and rank-deficient factors) is an error,
/// as is a `reg` that is not finite and non-negative.
pub fn solve(
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &[f32],
    f: usize,
    params: &AlsParams,
    num_threads: usize,
) -> Result<()> {
    check_shapes(c, x, y, f)?;
    let reg = params.regularization;
    if !(reg.is_finite() && reg >= 0.0) {
        return Err(Error::invalid(
            "regularization",
            format!("must be >= 0, got {reg}"),
        ));
    }
    let yty = gram(y, f, reg);
    let llt_req = llt::factor::cholesky_in_place_scratch::<f32>(f, Par::Seq, Default::default());
    parallel::install(num_threads, || {
        x.par_chunks_mut(f).enumerate().try_for_each_init(
            || Scratch {
                r: vec![0.0; f],
                p: vec![0.0; f],
                ap: vec![0.0; f],
                a: vec![0.0; f * f],
                gathered: Vec::new(),
                scaled: Vec::new(),
                stack: MemBuffer::new(llt_req),
            },
            |s, (u, xu)| {
                let (items, conf) = c.row(u);
                if items.is_empty() {
                    xu.fill(0.0);
                    return Ok(());
                }
                match params.solver {
                    Solver::ConjugateGradient { steps } => {
                        cg_row(items, conf, xu, y, &yty, steps, s);
                        Ok(())
                    }
                    Solver::Cholesky => cholesky_row(u, items, conf, xu, y, &yty, s),
                }
            },
        )
    })?
}

/// Conjugate gradient on one row, warm-started from `x` (implicit 0.7's algorithm).
fn cg_row(
    items: &[i32],
    conf: &[f32],
    x: &mut [f32],
    y: &[f32],
    yty: &[f32],
    steps: usize,
    s: &mut Scratch,
) {
    let f = x.len();
    let row = |i: i32| &y[i as usize * f..(i as usize + 1) * f];
    // r = b - A x
    symv(yty, x, &mut s.r);
    s.r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &c) in items.iter().zip(conf) {
        let yi = row(i);
        let (pref, c) = if c > 0.0 { (c, c) } else { (0.0, -c) };
        axpy(pref - (c - 1.0) * dot(yi, x), yi, &mut s.r);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot(&s.r, &s.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap without forming A
        symv(yty, &s.p, &mut s.ap);
        for (&i, &c) in items.iter().zip(conf) {
            let yi = row(i);
            axpy((c.abs() - 1.0) * dot(yi, &s.p), yi, &mut s.ap);
        }
        let alpha = rs_old / dot(&s.p, &s.ap);
        axpy(alpha, &s.p, x);
        axpy(-alpha, &s.ap, &mut s.r);
        let rs_new = dot(&s.r, &s.r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (p, r) in s.p.iter_mut().zip(&s.r) {
            *p = r + beta * *p;
        }
        rs_old = rs_new;
    }
}

/// The exact solve of one row: `A = YtY + reg I + Y_u^T diag(c - 1) Y_u` by one GEMM over the
/// row's gathered item factors, then a Cholesky factorisation and two triangular solves.
fn cholesky_row(
    u: usize,
    items: &[i32],
    conf: &[f32],
    x: &mut [f32],
    y: &[f32],
    yty: &[f32],
    s: &mut Scratch,
) -> Result<()> {
    let f = x.len();
    let n = items.len();
    s.gathered.clear();
    s.scaled.clear();
    x.fill(0.0);
    for (&i, &c) in items.iter().zip(conf) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let (pref, c) = if c > 0.0 { (c, c) } else { (0.0, -c) };
        axpy(pref, yi, x); // b, solved in place below
        s.gathered.extend_from_slice(yi);
        s.scaled.extend(yi.iter().map(|v| v * (c - 1.0)));
    }
    s.a.copy_from_slice(yty);
    let mut a = MatMut::from_row_major_slice_mut(&mut s.a, f, f);
    let g = MatRef::from_row_major_slice(&s.gathered, n, f);
    let h = MatRef::from_row_major_slice(&s.scaled, n, f);
    faer::linalg::matmul::matmul(a.rb_mut(), Accum::Add, g.transpose(), h, 1.0f32, Par::Seq);
    let stack = MemStack::new(&mut s.stack);
    llt::factor::cholesky_in_place(
        a.rb_mut(),
        Default::default(),
        Par::Seq,
        stack,
        Default::default(),
    )
    .map_err(|_| {
        Error::invalid(
            "user_items",
            format!(
                "the normal equations of row {u} are singular (the fixed factors are rank \
                     deficient): use a regularization above 0"
            ),
        )
    })?;
    let rhs = MatMut::from_column_major_slice_mut(x, f, 1);
    llt::solve::solve_in_place(a.rb(), rhs, Par::Seq, stack);
    Ok(())
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
    check_shapes(c, x, y, f)?;
    let yty = gram(y, f, 0.0);
    let per_row: Vec<(f64, f64, f64)> = parallel::install(num_threads, || {
        x.par_chunks(f)
            .enumerate()
            .map_init(
                || vec![0f32; f],
                |r, (u, xu)| {
                    // (A x - 2 b) . x without forming A
                    symv(&yty, xu, r);
                    let (mut loss, mut total) = (0f64, 0f64);
                    let (items, conf) = c.row(u);
                    for (&i, &cv) in items.iter().zip(conf) {
                        let yi = &y[i as usize * f..(i as usize + 1) * f];
                        let (pref, cv) = if cv > 0.0 {
                            (-2.0 * cv, cv)
                        } else {
                            (0.0, -cv)
                        };
                        axpy(pref + (cv - 1.0) * dot(yi, xu), yi, r);
                        total += cv as f64;
                        loss += cv as f64;
                    }
                    loss += dot(r, xu) as f64;
                    (loss, total, dot(xu, xu) as f64)
                },
            )
            .collect()
    })?;
    let item_norm: f64 = y.chunks(f).map(|v| dot(v, v) as f64).sum();
    let (mut loss, mut total, mut user_norm) = (0f64, 0f64, 0f64);
    for (l, t, n) in per_row {
        loss += l;
        total += t;
        user_norm += n;
    }
    loss += reg as f64 * (item_norm + user_norm);
    let missing = (c.n_rows() * c.n_cols() - c.nnz()) as f64;
    Ok(loss / (total + missing))
}
