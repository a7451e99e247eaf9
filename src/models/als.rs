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
use crate::simd::{axpy, dispatch, dot, prefetch, Simd};
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

/// `out = A x` for a symmetric row-major `f x f` matrix, as `sum_j x_j A[j, :]` (row j of a
/// symmetric matrix is its column j): vector multiply-adds without horizontal sums.
#[inline(always)]
fn symv<const FMA: bool>(a: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    out.fill(0.0);
    for (&xj, row) in x.iter().zip(a.chunks_exact(f)) {
        axpy::<FMA>(xj, row, out);
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

/// Copies the rows `items` of the row-major `n x f` matrix `y` into `out`, contiguously. The rows
/// are scattered through a matrix that is often larger than the cache, so the lines of a row a few
/// places ahead are requested early to overlap their memory latency with the copying.
fn gather(items: &[i32], y: &[f32], f: usize, out: &mut Vec<f32>) {
    const AHEAD: usize = 4;
    out.clear();
    for (k, &i) in items.iter().enumerate() {
        if let Some(&next) = items.get(k + AHEAD) {
            let row = &y[next as usize * f..(next as usize + 1) * f];
            for line in row.chunks(16) {
                prefetch(line.as_ptr());
            }
        }
        out.extend_from_slice(&y[i as usize * f..(i as usize + 1) * f]);
    }
}

/// The most item rows gathered at once (a row of 2048 x 128 factors is 1 MiB).
const GATHER_ROWS: usize = 2048;

/// Rows with at least this many items run the CG products through faer's matrix-vector kernels.
const GEMV_MIN_ROWS: usize = 32;

/// Per-thread buffers of a half-sweep.
struct Scratch {
    t: Vec<f32>,
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
    let llt_params = llt_params();
    let llt_req = llt::factor::cholesky_in_place_scratch::<f32>(f, Par::Seq, llt_params.into());
    let cg = dispatch!(Simd::detect(), cg_row, cg_row_avx2,
        (items: &[i32], conf: &[f32], x: &mut [f32], y: &[f32], yty: &[f32], steps: usize,
         s: &mut Scratch) -> ());
    parallel::install(num_threads, || {
        x.par_chunks_mut(f).enumerate().try_for_each_init(
            || Scratch {
                t: Vec::new(),
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
                        cg(items, conf, xu, y, &yty, steps, s);
                        Ok(())
                    }
                    Solver::Cholesky => cholesky_row(u, items, conf, xu, y, &yty, llt_params, s),
                }
            },
        )
    })?
}

/// Conjugate gradient on one row, warm-started from `x` (implicit 0.7's algorithm).
#[inline(always)]
fn cg_row<const FMA: bool>(
    items: &[i32],
    conf: &[f32],
    x: &mut [f32],
    y: &[f32],
    yty: &[f32],
    steps: usize,
    s: &mut Scratch,
) {
    let f = x.len();
    let Scratch {
        t,
        r,
        p,
        ap,
        gathered,
        scaled,
        ..
    } = s;
    // The row's item factors are gathered (in chunks of at most GATHER_ROWS, so that the few
    // very long rows do not need a huge buffer): the 2 * (steps + 1) passes over them then stream
    // contiguous memory instead of scattered rows of Y. A row that fits is gathered once. (No
    // closures here: they would not inherit this function's target features.)
    let whole = items.len() <= GATHER_ROWS;
    // r = b - A x
    symv::<FMA>(yty, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (ids, cs) in items.chunks(GATHER_ROWS).zip(conf.chunks(GATHER_ROWS)) {
        gather(ids, y, f, gathered);
        for (yi, &c) in gathered.chunks_exact(f).zip(cs) {
            let pref = if c > 0.0 { c } else { 0.0 };
            axpy::<FMA>(pref - (c.abs() - 1.0) * dot::<FMA>(yi, x), yi, r);
        }
    }
    p.copy_from_slice(r);
    let mut rs_old = dot::<FMA>(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap without forming A
        symv::<FMA>(yty, p, ap);
        for (ids, cs) in items.chunks(GATHER_ROWS).zip(conf.chunks(GATHER_ROWS)) {
            if !whole {
                gather(ids, y, f, gathered);
            }
            scaled.clear();
            scaled.extend(cs.iter().map(|c| c.abs() - 1.0));
            let n = ids.len();
            if n >= GEMV_MIN_ROWS {
                // t = G p; t *= w; Ap += G^T t, as two matrix-vector products
                t.resize(n, 0.0);
                let gm = MatRef::from_row_major_slice(gathered, n, f);
                let pv = MatRef::from_column_major_slice(p, f, 1);
                let tv = MatMut::from_column_major_slice_mut(t, n, 1);
                faer::linalg::matmul::matmul(tv, Accum::Replace, gm, pv, 1.0f32, Par::Seq);
                for (ti, w) in t.iter_mut().zip(scaled.iter()) {
                    *ti *= w;
                }
                let tv = MatRef::from_column_major_slice(t, n, 1);
                let apv = MatMut::from_column_major_slice_mut(ap, f, 1);
                faer::linalg::matmul::matmul(apv, Accum::Add, gm.transpose(), tv, 1.0f32, Par::Seq);
            } else {
                for (yi, &w) in gathered.chunks_exact(f).zip(scaled.iter()) {
                    axpy::<FMA>(w * dot::<FMA>(yi, p), yi, ap);
                }
            }
        }
        let alpha = rs_old / dot::<FMA>(p, ap);
        axpy::<FMA>(alpha, p, x);
        axpy::<FMA>(-alpha, ap, r);
        let rs_new = dot::<FMA>(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pi, ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rs_old = rs_new;
    }
}

/// faer's Cholesky with a recursion threshold of 16: for the 32..256-sized systems of ALS it is
/// 3.4x faster than the default of 64 (64 x 64 float32: 9.5 us against 32 us per factorisation).
fn llt_params() -> llt::factor::LltParams {
    let mut p = <llt::factor::LltParams as faer::Auto<f32>>::auto();
    p.recursion_threshold = 16;
    p
}

/// The exact solve of one row: `A = YtY + reg I + Y_u^T diag(c - 1) Y_u` by one GEMM over the
/// row's gathered item factors, then a Cholesky factorisation and two triangular solves.
#[allow(clippy::too_many_arguments)]
fn cholesky_row(
    u: usize,
    items: &[i32],
    conf: &[f32],
    x: &mut [f32],
    y: &[f32],
    yty: &[f32],
    params: llt::factor::LltParams,
    s: &mut Scratch,
) -> Result<()> {
    let f = x.len();
    x.fill(0.0);
    s.a.copy_from_slice(yty);
    let mut a = MatMut::from_row_major_slice_mut(&mut s.a, f, f);
    // A += G^T diag(c - 1) G, one GEMM per chunk of at most GATHER_ROWS gathered rows
    for (ids, cs) in items.chunks(GATHER_ROWS).zip(conf.chunks(GATHER_ROWS)) {
        gather(ids, y, f, &mut s.gathered);
        s.scaled.clear();
        for (yi, &c) in s.gathered.chunks_exact(f).zip(cs) {
            let (pref, c) = if c > 0.0 { (c, c) } else { (0.0, -c) };
            axpy::<false>(pref, yi, x); // b, solved in place below
            s.scaled.extend(yi.iter().map(|v| v * (c - 1.0)));
        }
        let n = ids.len();
        let g = MatRef::from_row_major_slice(&s.gathered, n, f);
        let h = MatRef::from_row_major_slice(&s.scaled, n, f);
        faer::linalg::matmul::matmul(a.rb_mut(), Accum::Add, g.transpose(), h, 1.0f32, Par::Seq);
    }
    let stack = MemStack::new(&mut s.stack);
    llt::factor::cholesky_in_place(
        a.rb_mut(),
        Default::default(),
        Par::Seq,
        stack,
        params.into(),
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

/// One row's `(loss terms, confidence, |x_u|^2)`: `(A x - 2 b) . x` without forming A.
#[inline(always)]
fn loss_row<const FMA: bool>(
    items: &[i32],
    conf: &[f32],
    xu: &[f32],
    y: &[f32],
    yty: &[f32],
    r: &mut [f32],
) -> (f64, f64, f64) {
    let f = xu.len();
    symv::<FMA>(yty, xu, r);
    let (mut loss, mut total) = (0f64, 0f64);
    for (&i, &cv) in items.iter().zip(conf) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let (pref, cv) = if cv > 0.0 {
            (-2.0 * cv, cv)
        } else {
            (0.0, -cv)
        };
        axpy::<FMA>(pref + (cv - 1.0) * dot::<FMA>(yi, xu), yi, r);
        total += cv as f64;
        loss += cv as f64;
    }
    loss += dot::<FMA>(r, xu) as f64;
    (loss, total, dot::<FMA>(xu, xu) as f64)
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
    let row_loss = dispatch!(Simd::detect(), loss_row, loss_row_avx2,
        (items: &[i32], conf: &[f32], xu: &[f32], y: &[f32], yty: &[f32], r: &mut [f32])
        -> (f64, f64, f64));
    let per_row: Vec<(f64, f64, f64)> = parallel::install(num_threads, || {
        x.par_chunks(f)
            .enumerate()
            .map_init(
                || vec![0f32; f],
                |r, (u, xu)| {
                    let (items, conf) = c.row(u);
                    row_loss(items, conf, xu, y, &yty, r)
                },
            )
            .collect()
    })?;
    let item_norm: f64 = y.chunks(f).map(|v| dot::<false>(v, v) as f64).sum();
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
