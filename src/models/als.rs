//! Implicit ALS (Hu, Koren & Volinsky 2008) as implicit 0.7 implements it: half-sweeps solved
//! per row by conjugate gradient (warm-started, without forming the f x f matrix) or by Cholesky
//! (rows batched across vector lanes, `linalg`), and the training loss.
//!
//! Confidence and preference: a stored value `r > 0` means preference 1 with confidence `r`; `r < 0`
//! means preference 0 with confidence `|r|`; a missing entry means preference 0 with confidence 1.
//! (The caller scales the values by alpha.) Row u of X solves
//! `(YtY + reg I + sum_i (c_ui - 1) y_i y_i^T) x_u = sum_i c_ui p_ui y_i`; empty rows get zeros.

use crate::error::{checked_len, try_with_capacity, try_zeroed, Error, Result};
use crate::linalg::cholesky_solve_lanes;
use crate::parallel;
use crate::simd::{axpy, dispatch, dot, prefetch, vaxpy, vdot, Arch, Lanes, Simd, WithSimd};
use crate::sparse::CsrView;
use faer::reborrow::ReborrowMut;
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
pub fn gram(y: &[f32], f: usize, reg: f32) -> Result<Vec<f32>> {
    let n = y.len().checked_div(f).unwrap_or(0);
    let cause = || format!("factors={f} (f x f floats)");
    let len = checked_len::<f32>(f, f, "the factors' Gram matrix", cause)?;
    let mut out = try_zeroed::<f32>(len, "the factors' Gram matrix", cause)?;
    if f > 0 && n > 0 {
        let yv = MatRef::from_row_major_slice(y, n, f);
        let o = MatMut::from_row_major_slice_mut(&mut out, f, f);
        faer::linalg::matmul::matmul(o, Accum::Replace, yv.transpose(), yv, 1.0f32, Par::Seq);
    }
    for d in 0..f {
        out[d * f + d] += reg;
    }
    Ok(out)
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

/// Appends the rows `items[..n]` of the row-major `n x f` matrix `y` to `out`, contiguously. The
/// rows are scattered through a matrix that is often larger than the cache, so the lines of a row
/// a few places ahead (in all of `items`) are requested early to overlap their memory latency with
/// the copying.
#[inline(always)]
fn gather(items: &[i32], n: usize, y: &[f32], f: usize, out: &mut Vec<f32>) {
    const AHEAD: usize = 16;
    for (k, &i) in items[..n].iter().enumerate() {
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

/// The conjugate-gradient solver runs blocks of consecutive rows in lockstep, so that the `YtY p`
/// products of a block are one matrix product instead of one matrix-vector product per row
/// (`cargo bench --bench als`, 2 threads: user half-sweep 142 -> 67-77 ms at 128 factors,
/// 39 -> 33 ms at 64). A block ends after `BLOCK_ROWS`
/// rows, or before its gathered item factors would pass `BLOCK_FLOATS` (256 KiB, so that they
/// stay in cache from one step to the next). Blocks depend on the data only, not on the threads.
const BLOCK_ROWS: usize = 32;
const BLOCK_FLOATS: usize = 64 * 1024;

/// Per-thread buffers of a half-sweep (the CG ones hold a block's rows, row-major). `f` is 0 for
/// the CG solver, the number of factors for the Cholesky one.
struct Scratch {
    terms: TermsScratch,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    rs: Vec<f32>,
    offsets: Vec<usize>,
    ids: Vec<i32>,
    a: Vec<f32>,
    gathered: Vec<f32>,
    scaled: Vec<f32>,
    batch: Vec<f32>,
    rhs: Vec<f32>,
}

impl Scratch {
    /// `gather`: the capacity of the gathered factors (and, with `f > 0`, of their scaled copy),
    /// reserved exactly (buffers grown by doubling took up to twice the memory). With `f > 0`
    /// the Cholesky solver's `lanes` interleaved systems are reserved too. Every buffer whose
    /// size grows with the factors is allocated fallibly: a thread's scratch that does not fit
    /// is a MemoryError naming `factors`, not an abort.
    fn new(f: usize, gather: usize, lanes: usize) -> Result<Self> {
        let what = "the solver's per-thread buffers";
        let cause = || {
            if f > 0 {
                format!("factors={f} with the Cholesky solver ({lanes} f x f systems per thread)")
            } else {
                "the factors times the longest row of user_items".to_string()
            }
        };
        let square = checked_len::<f32>(f, f, what, cause)?;
        let systems = checked_len::<f32>(square, lanes, what, cause)?;
        // a failure reports what the thread needs in all
        let total = (square as u128 + systems as u128 + (f * lanes) as u128 + 2 * gather as u128)
            * std::mem::size_of::<f32>() as u128;
        let oom = |_| Error::OutOfMemory {
            what: what.to_string(),
            bytes: total,
            cause: cause(),
        };
        Ok(Scratch {
            terms: TermsScratch::default(),
            r: Vec::new(),
            p: Vec::new(),
            ap: Vec::new(),
            rs: Vec::new(),
            offsets: Vec::new(),
            ids: Vec::new(),
            a: try_zeroed(square, what, String::new).map_err(oom)?,
            gathered: try_with_capacity(gather, what, String::new).map_err(oom)?,
            scaled: try_with_capacity(if f > 0 { gather } else { 0 }, what, String::new)
                .map_err(oom)?,
            batch: try_with_capacity(systems, what, String::new).map_err(oom)?,
            rhs: try_with_capacity(f * lanes, what, String::new).map_err(oom)?,
        })
    }
}

/// The first row of every CG block, then `c.n_rows()`; and the most floats a block gathers.
fn cg_blocks(c: &CsrView<'_>, f: usize) -> (Vec<usize>, usize) {
    let mut starts = vec![0];
    let (mut rows, mut floats, mut most) = (0, 0, 0);
    for u in 0..c.n_rows() {
        let len = c.row_range(u).len();
        let len = if len <= GATHER_ROWS { len * f } else { 0 }; // longer rows: read in place
        if rows == BLOCK_ROWS || (rows > 0 && floats + len > BLOCK_FLOATS) {
            starts.push(u);
            (rows, floats) = (0, 0);
        }
        rows += 1;
        floats += len;
        most = most.max(floats);
    }
    starts.push(c.n_rows());
    (starts, most)
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
    solve_on(Arch::new(), c, x, y, f, params, num_threads)
}

/// [`solve`] with the kernels run on `arch`'s vector instructions.
fn solve_on(
    arch: Arch,
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
    let yty = gram(y, f, reg)?;
    let stop = parallel::stop_flag();
    let steps = match params.solver {
        Solver::ConjugateGradient { steps } => steps,
        Solver::Cholesky => {
            let longest = (0..c.n_rows()).map(|u| c.row_range(u).len()).max();
            let gather = longest.unwrap_or(0).min(GATHER_ROWS) * f;
            let lanes = arch.dispatch(LaneCount);
            return parallel::install(num_threads, || {
                x.par_chunks_mut(lanes * f).enumerate().try_for_each_init(
                    || Scratch::new(f, gather, lanes),
                    |s, (batch, x)| {
                        stop.check()?;
                        let s = s.as_mut().map_err(|e| e.clone())?;
                        arch.dispatch(Block {
                            c,
                            first: batch * lanes,
                            x,
                            y,
                            yty: &yty,
                            f,
                            steps: None,
                            s,
                        })
                    },
                )
            })?;
        }
    };
    let (starts, gather) = cg_blocks(c, f);
    let mut blocks = Vec::with_capacity(starts.len() - 1);
    let mut rest = x;
    for w in starts.windows(2) {
        let (block, tail) = rest.split_at_mut((w[1] - w[0]) * f);
        blocks.push((w[0], block));
        rest = tail;
    }
    parallel::install(num_threads, || {
        blocks.into_par_iter().try_for_each_init(
            || Scratch::new(0, gather, 0),
            |s, (first, x)| {
                stop.check()?;
                let s = s.as_mut().map_err(|e| e.clone())?;
                arch.dispatch(Block {
                    c,
                    first,
                    x,
                    y,
                    yty: &yty,
                    f,
                    steps: Some(steps),
                    s,
                })
            },
        )
    })?
}

/// `out = sign * a b` for row-major `a` (`m x k`) and `b` (`k x n`).
fn matmul_rows(a: &[f32], b: &[f32], k: usize, out: &mut [f32], sign: f32) {
    let m = a.len() / k;
    let n = b.len() / k;
    let av = MatRef::from_row_major_slice(a, m, k);
    let bv = MatRef::from_row_major_slice(b, k, n);
    let ov = MatMut::from_row_major_slice_mut(out, m, n);
    faer::linalg::matmul::matmul(ov, Accum::Replace, av, bv, sign, Par::Seq);
}

/// Where a row's item factors are read from: copied out contiguously (the `k`-th item at `k * f`),
/// or from the fixed factor matrix itself by id (rows too long to keep a copy of: it would not
/// stay in cache from one CG step to the next anyway).
#[derive(Clone, Copy)]
enum Rows<'a> {
    Gathered(&'a [f32]),
    InPlace { ids: &'a [i32], y: &'a [f32] },
}

/// Per-thread buffers of [`rank_terms`].
#[derive(Default)]
struct TermsScratch {
    /// the weights of a slice of items
    w: Vec<f32>,
    /// the factors of a slice of items read in place
    slice: Vec<f32>,
}

/// `out += sum_k coef(c_k, y_k . v) y_k` over a row's items `k` (factors `rows`, confidences
/// `conf`; `f = v.len()`): the interaction terms of the row's CG residual and of `A p`.
/// In two passes over slices of items that stay in L1: all dot products first, four items at a
/// time as independent chains, then the weighted sum with `out` held in registers. (One pass, each
/// item's update waiting for its dot product and horizontal sum, kept the vector units idle:
/// 10-11 ns per item against 9 at 128 factors on data in L1.) Items read in place are copied
/// slice by slice (into L1) first.
#[inline(always)]
fn rank_terms<S: Lanes>(
    simd: S,
    rows: Rows<'_>,
    conf: &[f32],
    v: &[f32],
    out: &mut [f32],
    s: &mut TermsScratch,
    coef: impl Fn(f32, f32) -> f32,
) {
    let f = v.len();
    let per_slice = (8192 / f.max(1)).max(8);
    for start in (0..conf.len()).step_by(per_slice) {
        let end = (start + per_slice).min(conf.len());
        let g = match rows {
            Rows::Gathered(g) => &g[start * f..end * f],
            Rows::InPlace { ids, y } => {
                s.slice.clear();
                gather(&ids[start..], end - start, y, f, &mut s.slice);
                &s.slice[..]
            }
        };
        s.w.clear();
        dots(simd, g, v, &mut s.w);
        for (wk, &c) in s.w.iter_mut().zip(&conf[start..end]) {
            *wk = coef(c, *wk);
        }
        weighted_sum(simd, g, &s.w, out);
    }
}

/// Appends `g_k . v` for every row `g_k` (of length `v.len()`) of `g` to `d`.
#[inline(always)]
fn dots<S: Lanes>(simd: S, g: &[f32], v: &[f32], d: &mut Vec<f32>) {
    let f = v.len();
    let (vh, vt) = S::as_simd_f32s(v);
    let nv = vh.len();
    let mut quads = g.chunks_exact(4 * f);
    for quad in quads.by_ref() {
        // named accumulators (an array of them was kept in memory, not in registers)
        let (r0, r1, r2, r3) = (
            &quad[..f],
            &quad[f..2 * f],
            &quad[2 * f..3 * f],
            &quad[3 * f..],
        );
        let h0 = &S::as_simd_f32s(r0).0[..nv];
        let h1 = &S::as_simd_f32s(r1).0[..nv];
        let h2 = &S::as_simd_f32s(r2).0[..nv];
        let h3 = &S::as_simd_f32s(r3).0[..nv];
        let z = simd.splat_f32s(0.0);
        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
        let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
        let mut j = 0;
        while j + 2 <= nv {
            let (x, y) = (vh[j], vh[j + 1]);
            a0 = simd.mul_add_f32s(h0[j], x, a0);
            a1 = simd.mul_add_f32s(h1[j], x, a1);
            a2 = simd.mul_add_f32s(h2[j], x, a2);
            a3 = simd.mul_add_f32s(h3[j], x, a3);
            b0 = simd.mul_add_f32s(h0[j + 1], y, b0);
            b1 = simd.mul_add_f32s(h1[j + 1], y, b1);
            b2 = simd.mul_add_f32s(h2[j + 1], y, b2);
            b3 = simd.mul_add_f32s(h3[j + 1], y, b3);
            j += 2;
        }
        if j < nv {
            let x = vh[j];
            a0 = simd.mul_add_f32s(h0[j], x, a0);
            a1 = simd.mul_add_f32s(h1[j], x, a1);
            a2 = simd.mul_add_f32s(h2[j], x, a2);
            a3 = simd.mul_add_f32s(h3[j], x, a3);
        }
        let tail = nv * S::F32_LANES;
        let sum = |r: &[f32], a, b| {
            let mut s = simd.reduce_sum_f32s(simd.add_f32s(a, b));
            for (x, y) in r[tail..].iter().zip(vt) {
                s += x * y;
            }
            s
        };
        d.extend([
            sum(r0, a0, b0),
            sum(r1, a1, b1),
            sum(r2, a2, b2),
            sum(r3, a3, b3),
        ]);
    }
    for row in quads.remainder().chunks_exact(f) {
        d.push(crate::simd::vdot(simd, row, v));
    }
}

/// `out += sum_k w_k g_k` over the rows `g_k` (of length `out.len()`) of `g`: `out` is held in
/// registers, eight vectors at a time.
#[inline(always)]
fn weighted_sum<S: Lanes>(simd: S, g: &[f32], w: &[f32], out: &mut [f32]) {
    let f = out.len();
    let (oh, ot) = S::as_mut_simd_f32s(out);
    let nv = oh.len();
    let mut j = 0;
    while j + 8 <= nv {
        weighted_tile::<S, 8>(simd, g, w, f, j, &mut oh[j..j + 8]);
        j += 8;
    }
    while j + 2 <= nv {
        weighted_tile::<S, 2>(simd, g, w, f, j, &mut oh[j..j + 2]);
        j += 2;
    }
    if j < nv {
        weighted_tile::<S, 1>(simd, g, w, f, j, &mut oh[j..j + 1]);
    }
    let tail = nv * S::F32_LANES;
    for (row, &wk) in g.chunks_exact(f).zip(w) {
        for (o, &y) in ot.iter_mut().zip(&row[tail..]) {
            *o += wk * y;
        }
    }
}

/// Vectors `j..j + T` of [`weighted_sum`]; even and odd rows go to separate accumulators (twice
/// the independent chains: a tile of one or two vectors would otherwise wait on its own sums).
#[inline(always)]
fn weighted_tile<S: Lanes, const T: usize>(
    simd: S,
    g: &[f32],
    w: &[f32],
    f: usize,
    j: usize,
    out: &mut [S::f32s],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; T]; 2];
    let mut pairs = g.chunks_exact(2 * f).zip(w.chunks_exact(2));
    for (pair, wk) in pairs.by_ref() {
        let r0 = &S::as_simd_f32s(&pair[..f]).0[j..j + T];
        let r1 = &S::as_simd_f32s(&pair[f..]).0[j..j + T];
        let (w0, w1) = (simd.splat_f32s(wk[0]), simd.splat_f32s(wk[1]));
        for t in 0..T {
            acc[0][t] = simd.mul_add_f32s(w0, r0[t], acc[0][t]);
            acc[1][t] = simd.mul_add_f32s(w1, r1[t], acc[1][t]);
        }
    }
    let n = w.len().min(g.len() / f);
    if n % 2 == 1 {
        let rh = &S::as_simd_f32s(&g[(n - 1) * f..n * f]).0[j..j + T];
        let wv = simd.splat_f32s(w[n - 1]);
        for t in 0..T {
            acc[0][t] = simd.mul_add_f32s(wv, rh[t], acc[0][t]);
        }
    }
    for t in 0..T {
        out[t] = simd.add_f32s(out[t], simd.add_f32s(acc[0][t], acc[1][t]));
    }
}

/// The interaction terms of the residual `b - A x` (without its `YtY x` part):
/// `p_i c_i - (|c_i| - 1) y_i . x` per item.
#[inline(always)]
fn residual_coef(c: f32, d: f32) -> f32 {
    let pref = if c > 0.0 { c } else { 0.0 };
    pref - (c.abs() - 1.0) * d
}

/// The interaction terms of `A p` (without its `YtY p` part): `(|c_i| - 1) y_i . p` per item.
#[inline(always)]
fn confidence_coef(c: f32, d: f32) -> f32 {
    (c.abs() - 1.0) * d
}

/// A block of consecutive rows of a half-sweep (`x` holds them, the first is row `first` of `c`),
/// run by [`Arch::dispatch`] with the CPU's vector instructions: `steps` CG steps, or (`None`)
/// exact Cholesky solves.
struct Block<'a, 'c> {
    c: &'a CsrView<'c>,
    first: usize,
    x: &'a mut [f32],
    y: &'a [f32],
    yty: &'a [f32],
    f: usize,
    steps: Option<usize>,
    s: &'a mut Scratch,
}

impl WithSimd for Block<'_, '_> {
    type Output = Result<()>;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> Result<()> {
        match self.steps {
            Some(_) => {
                cg_block(simd, self);
                Ok(())
            }
            None => cholesky_batch(simd, self),
        }
    }
}

/// Conjugate gradient on the block of rows `first..` of `x` (implicit 0.7's algorithm per row,
/// warm-started from `x`), the rows in lockstep: each step's `YtY p` of all rows is one matrix
/// product; a row stops when its residual vanishes, as it would alone.
#[inline(always)]
fn cg_block<S: Lanes>(simd: S, block: Block<'_, '_>) {
    let Block {
        c,
        first,
        x,
        y,
        yty,
        f,
        steps,
        s,
    } = block;
    let steps = steps.unwrap_or(0);
    let rows = x.len() / f;
    let Scratch {
        terms,
        r,
        p,
        ap,
        rs,
        offsets,
        ids,
        gathered,
        ..
    } = s;
    r.resize(rows * f, 0.0);
    p.resize(rows * f, 0.0);
    ap.resize(rows * f, 0.0);
    rs.clear();
    offsets.clear();
    gathered.clear();
    // R = B - A X: the YtY part for the whole block, then each row's interaction terms. The item
    // factors of the block's rows are gathered once, in one pass over the block (so that the
    // requests for rows ahead run across row boundaries: most rows are short), and kept for the
    // steps; rows longer than GATHER_ROWS are read from `y` in place.
    ids.clear();
    for b in 0..rows {
        let items = c.row(first + b).0;
        offsets.push(ids.len() * f);
        if items.len() <= GATHER_ROWS {
            ids.extend_from_slice(items);
        }
    }
    offsets.push(ids.len() * f);
    gather(ids, ids.len(), y, f, gathered);
    // where row b's item factors are read from
    let source = |b: usize, ids| {
        if offsets[b] < offsets[b + 1] {
            Rows::Gathered(&gathered[offsets[b]..offsets[b + 1]])
        } else {
            Rows::InPlace { ids, y }
        }
    };
    matmul_rows(x, yty, f, r, -1.0);
    for b in 0..rows {
        let (items, conf) = c.row(first + b);
        let (xb, rb) = (&mut x[b * f..(b + 1) * f], &mut r[b * f..(b + 1) * f]);
        if items.is_empty() {
            xb.fill(0.0);
            rs.push(0.0); // done
            continue;
        }
        rank_terms(simd, source(b, items), conf, xb, rb, terms, residual_coef);
        p[b * f..(b + 1) * f].copy_from_slice(rb);
        let norm = vdot(simd, rb, rb);
        rs.push(if norm < 1e-20 { 0.0 } else { norm });
    }
    for _ in 0..steps {
        if rs.iter().all(|&v| v == 0.0) {
            break;
        }
        // Ap without forming A
        matmul_rows(p, yty, f, ap, 1.0);
        for b in 0..rows {
            if rs[b] == 0.0 {
                continue;
            }
            let (items, conf) = c.row(first + b);
            let pb = &mut p[b * f..(b + 1) * f];
            let apb = &mut ap[b * f..(b + 1) * f];
            rank_terms(
                simd,
                source(b, items),
                conf,
                pb,
                apb,
                terms,
                confidence_coef,
            );
            let (xb, rb) = (&mut x[b * f..(b + 1) * f], &mut r[b * f..(b + 1) * f]);
            let alpha = rs[b] / vdot(simd, pb, apb);
            vaxpy(simd, alpha, pb, xb);
            vaxpy(simd, -alpha, apb, rb);
            let rs_new = vdot(simd, rb, rb);
            if rs_new < 1e-20 {
                rs[b] = 0.0;
                continue;
            }
            let beta = rs_new / rs[b];
            for (pi, ri) in pb.iter_mut().zip(rb.iter()) {
                *pi = ri + beta * *pi;
            }
            rs[b] = rs_new;
        }
    }
}

/// Row `u`'s normal equations: `a = YtY + reg I + Y_u^T diag(|c| - 1) Y_u` (`f x f`, row-major, by
/// one GEMM per chunk of gathered item factors) and `b = sum_i c_ui p_ui y_i`.
#[allow(clippy::too_many_arguments)]
#[inline(always)] // into the callers' vector instructions
fn normal_equations<S: Lanes>(
    simd: S,
    items: &[i32],
    conf: &[f32],
    y: &[f32],
    yty: &[f32],
    a: &mut [f32],
    b: &mut [f32],
    gathered: &mut Vec<f32>,
    scaled: &mut Vec<f32>,
) {
    let f = b.len();
    b.fill(0.0);
    a.copy_from_slice(yty);
    let mut am = MatMut::from_row_major_slice_mut(a, f, f);
    for (ids, cs) in items.chunks(GATHER_ROWS).zip(conf.chunks(GATHER_ROWS)) {
        gathered.clear();
        gather(ids, ids.len(), y, f, gathered);
        scaled.clear();
        for (yi, &c) in gathered.chunks_exact(f).zip(cs) {
            let (pref, c) = if c > 0.0 { (c, c) } else { (0.0, -c) };
            vaxpy(simd, pref, yi, b);
            scaled.extend(yi.iter().map(|v| v * (c - 1.0)));
        }
        let n = ids.len();
        let g = MatRef::from_row_major_slice(gathered, n, f);
        let h = MatRef::from_row_major_slice(scaled, n, f);
        faer::linalg::matmul::matmul(am.rb_mut(), Accum::Add, g.transpose(), h, 1.0f32, Par::Seq);
    }
}
/// The number of `f32` lanes of the vectors [`Arch::dispatch`] runs kernels with.
struct LaneCount;

impl WithSimd for LaneCount {
    type Output = usize;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, _: S) -> usize {
        S::F32_LANES
    }
}

/// Exact solves of as many consecutive rows as the CPU's vectors have lanes, one row per lane:
/// each row's normal equations are formed by GEMM, then laid out interleaved (element `(i, k)` of
/// every row in one vector) and factorised and solved together, so that the Cholesky
/// factorisation, whose per-row loops are too short and too dependent to vectorise, runs at full
/// vector width. Lanes without a row, and empty rows, get the identity and a zero right-hand side.
/// The interleaved systems take `f * f` floats per lane and thread (1 MiB at 128 factors with
/// AVX-512's 16 lanes).
#[inline(always)]
fn cholesky_batch<S: Lanes>(simd: S, block: Block<'_, '_>) -> Result<()> {
    let Block {
        c,
        first,
        x,
        y,
        yty,
        f,
        s,
        ..
    } = block;
    let lanes = S::F32_LANES;
    let rows = x.len() / f;
    // column-major, interleaved: element (i, k) of lane l at (k * f + i) * lanes + l
    s.batch.clear();
    s.batch.resize(f * f * lanes, 0.0);
    s.rhs.clear();
    s.rhs.resize(f * lanes, 0.0);
    for l in 0..lanes {
        let (items, conf) = if l < rows {
            c.row(first + l)
        } else {
            (&[][..], &[][..])
        };
        if items.is_empty() {
            for k in 0..f {
                s.batch[(k * f + k) * lanes + l] = 1.0;
            }
            continue;
        }
        let b = &mut x[l * f..(l + 1) * f];
        normal_equations(
            simd,
            items,
            conf,
            y,
            yty,
            &mut s.a,
            b,
            &mut s.gathered,
            &mut s.scaled,
        );
        for (k, &bk) in b.iter().enumerate() {
            for i in k..f {
                s.batch[(k * f + i) * lanes + l] = s.a[i * f + k];
            }
            s.rhs[k * lanes + l] = bk;
        }
    }
    cholesky_solve_lanes(simd, &mut s.batch, &mut s.rhs, f, rows).map_err(|l| {
        Error::invalid(
            "user_items",
            format!(
                "the normal equations of row {} are singular (the fixed factors are rank \
                 deficient): use a regularization above 0",
                first + l
            ),
        )
    })?;
    for (l, xl) in x.chunks_exact_mut(f).enumerate() {
        for (k, v) in xl.iter_mut().enumerate() {
            *v = s.rhs[k * lanes + l];
        }
    }
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
    let yty = gram(y, f, 0.0)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Csr;

    /// Every instruction set this CPU has (scalar, AVX2, AVX-512) gives the same solutions up to
    /// rounding: the integration tests check the widest against f64 references.
    #[test]
    fn every_instruction_set_gives_the_same_solution() {
        let mut archs = vec![Arch::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                archs.push(Arch::V3(v3));
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                archs.push(Arch::V4(v4));
            }
        }
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32) / (1u64 << 31) as f32
        };
        let (rows, cols) = (37, 2100);
        let mut t = Vec::new();
        for u in 0..rows {
            // row 3 is longer than GATHER_ROWS (read in place), row 5 empty, one disliked item
            let n = match u {
                3 => cols,
                5 => 0,
                _ => 3 + (u * 7) % 40,
            };
            for i in 0..n {
                let c = 1.0 + 4.0 * next();
                t.push((u, (i * 13 + u) % cols, if i == 1 { -c } else { c }));
            }
        }
        let c = Csr::from_triplets(rows, cols, &t).unwrap(); // ok: test
        for f in [7usize, 20, 64] {
            let y: Vec<f32> = (0..cols * f).map(|_| (next() - 0.5) * 0.3).collect();
            let x0: Vec<f32> = (0..rows * f).map(|_| next() * 0.1).collect();
            for solver in [Solver::ConjugateGradient { steps: 3 }, Solver::Cholesky] {
                let params = AlsParams {
                    regularization: 0.1,
                    solver,
                };
                let results: Vec<Vec<f32>> = archs
                    .iter()
                    .map(|&arch| {
                        let mut x = x0.clone();
                        solve_on(arch, &c.view(), &mut x, &y, f, &params, 2).unwrap(); // ok: test
                        x
                    })
                    .collect();
                let scale = results[0].iter().fold(0f32, |m, v| m.max(v.abs()));
                for (a, x) in results.iter().enumerate().skip(1) {
                    let err = x
                        .iter()
                        .zip(&results[0])
                        .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                    assert!(err <= 1e-4 * scale, "f={f} {solver:?} arch {a}: {err}");
                }
            }
        }
    }
}
