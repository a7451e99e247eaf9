//! iALS++ (Rendle, Zhang & Koren 2021, "iALS++: Speeding up Matrix Factorization with Subspace
//! Optimization", arXiv 2110.14044): block coordinate descent over subspaces of `block_size`
//! factors. An epoch visits the blocks in order; for each, every user's block is set to its exact
//! minimiser with the rest of the user's factors and all item factors fixed (one Newton step of
//! the quadratic), then every item's block likewise. A row's step costs `block^2` per stored
//! entry and a `block x block` Cholesky solve, so an epoch costs about
//! `nnz d block + rows d block^2 / 3 + rows d^2` against `nnz d^2 + rows d^3 / 3` for exact ALS.
//! With `block_size >= factors` an epoch is one exact ALS epoch (users, then items).
//!
//! Row u's block `b` solves, with `e_ui = (|c| - o) s_ui - c+` (the observed part of the gradient,
//! from the scores `s_ui` of its stored entries, kept up to date across blocks):
//! `(g Y_b^T Y_b + sum_obs (|c| - o) y_ib y_ib^T + reg_u I) delta =
//! sum_obs e_ui y_ib + g (Y_b^T Y) x_u + reg_u x_ub`, then `x_ub -= delta` and
//! `s_ui -= delta . y_ib` (`g`, `o`, `reg_u` as in `objective`). Rows without stored entries get
//! zeros, as with the other solvers. Rows are independent within a half-step and the Gram matrices
//! are summed in a fixed order, so results do not depend on the thread count.

use super::{add_terms, check_shapes, gather, AlsParams, GATHER_ROWS};
use crate::error::{checked_len, try_with_capacity, try_zeroed, Error, Result};
use crate::linalg::cholesky_solve_lanes;
use crate::parallel::{self, Stop};
use crate::simd::{vaxpy, vdot, Arch, Lanes, WithSimd};
use crate::sparse::{transpose_with_positions, CsrView};
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// The block size the iALS++ paper's reference implementation defaults to.
pub const DEFAULT_BLOCK_SIZE: usize = 128;

/// One iALS++ epoch on the users' factors `x` (`c.n_rows() x f`, row-major) and the items' `y`
/// (`c.n_cols() x f`), both updated in place, for the confidences `c` (users x items) and the
/// objective of `params` (its `solver` is not used). `block_size` is capped at `f`.
pub fn epoch(
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &mut [f32],
    f: usize,
    params: &AlsParams,
    block_size: usize,
    num_threads: usize,
) -> Result<()> {
    check_shapes(c, x, y, f)?;
    params.check()?;
    if block_size == 0 {
        return Err(Error::invalid("block_size", "must be at least 1"));
    }
    let block = block_size.min(f);
    let stop = parallel::stop_flag();
    let arch = Arch::new();
    let nnz = c.nnz();
    let what = "the iALS++ solver's scores of the stored entries";
    let cause = || format!("user_items has {nnz} stored entries");
    // the items' rows, and where each of their entries is stored in `c`
    let (ct, positions) = transpose_with_positions(c, num_threads)?;
    let ct = ct.view();
    let mut to_c = try_zeroed::<u64>(nnz, what, cause)?;
    for i in 0..ct.n_rows() {
        for k in ct.row_range(i) {
            let u = ct.indices()[k] as usize;
            to_c[k] = (c.row_range(u).start + positions[k] as usize) as u64;
        }
    }
    drop(positions);
    let mut from_c = try_zeroed::<u64>(nnz, what, cause)?;
    for (k, &j) in to_c.iter().enumerate() {
        from_c[j as usize] = k as u64;
    }
    let reg_x = params.row_regularizations(c, c.n_cols());
    let reg_y = params.row_regularizations(&ct, ct.n_cols());
    // the scores of the stored entries, in the order of `c`, then of `ct`
    let mut s = try_zeroed::<f32>(nnz, what, cause)?;
    let mut st = try_zeroed::<f32>(nnz, what, cause)?;
    parallel::install(num_threads, || {
        split_rows(c, &mut s)
            .into_par_iter()
            .zip(x.par_chunks(f))
            .for_each(|((u, su), xu)| {
                arch.dispatch(Scores {
                    items: c.row(u).0,
                    xu,
                    y,
                    out: su,
                })
            })
    })?;
    for lo in (0..f).step_by(block) {
        let hi = (lo + block).min(f);
        stop.check()?;
        half(
            arch,
            c,
            &mut s,
            x,
            y,
            f,
            lo..hi,
            &reg_x,
            params,
            num_threads,
            &stop,
        )?;
        parallel::install(num_threads, || {
            st.par_iter_mut()
                .zip(to_c.par_iter())
                .for_each(|(v, &j)| *v = s[j as usize])
        })?;
        stop.check()?;
        half(
            arch,
            &ct,
            &mut st,
            y,
            x,
            f,
            lo..hi,
            &reg_y,
            params,
            num_threads,
            &stop,
        )?;
        parallel::install(num_threads, || {
            s.par_iter_mut()
                .zip(from_c.par_iter())
                .for_each(|(v, &k)| *v = st[k as usize])
        })?;
    }
    Ok(())
}

/// The scores `x_u . y_i` of a row's stored entries.
struct Scores<'a> {
    items: &'a [i32],
    xu: &'a [f32],
    y: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Scores<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let f = self.xu.len();
        for (sv, &i) in self.out.iter_mut().zip(self.items) {
            let i = i as usize;
            *sv = vdot(simd, self.xu, &self.y[i * f..(i + 1) * f]);
        }
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

/// `scores` (one per stored entry of `c`) cut into the rows of `c`, with their row numbers.
fn split_rows<'s>(c: &CsrView<'_>, scores: &'s mut [f32]) -> Vec<(usize, &'s mut [f32])> {
    let mut out = Vec::with_capacity(c.n_rows());
    let mut rest = scores;
    for u in 0..c.n_rows() {
        let (row, tail) = rest.split_at_mut(c.row_range(u).len());
        out.push((u, row));
        rest = tail;
    }
    out
}

/// `Y_b^T Y` (`block x f`, row-major) of the block's columns `yb` (`n x block`) and `y`
/// (`n x f`), summed over a fixed partition of the rows (the same for any thread count).
fn block_gram(yb: &[f32], y: &[f32], block: usize, f: usize) -> Result<Vec<f32>> {
    let n = y.len() / f;
    let parts = n.div_ceil(4096).clamp(1, 32);
    let per = n.div_ceil(parts).max(1);
    let cause = || format!("factors={f}, block_size={block}");
    let len = checked_len::<f32>(block, f, "the iALS++ block Gram matrix", cause)?;
    let partial = |p: usize| -> Result<Vec<f32>> {
        let mut out = try_zeroed::<f32>(len, "the iALS++ block Gram matrix", cause)?;
        let (lo, hi) = ((p * per).min(n), ((p + 1) * per).min(n));
        if hi > lo {
            let a = MatRef::from_row_major_slice(&yb[lo * block..hi * block], hi - lo, block);
            let b = MatRef::from_row_major_slice(&y[lo * f..hi * f], hi - lo, f);
            let o = MatMut::from_row_major_slice_mut(&mut out, block, f);
            faer::linalg::matmul::matmul(o, Accum::Replace, a.transpose(), b, 1.0f32, Par::Seq);
        }
        Ok(out)
    };
    let parts: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(partial)
        .collect::<Result<_>>()?;
    let mut it = parts.into_iter();
    let mut total = it.next().unwrap_or_default();
    for p in it {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    Ok(total)
}

/// Updates the block `cols` of every row of `x` (`c.n_rows() x f`) against the fixed `y`
/// (`c.n_cols() x f`); `s` holds the scores of `c`'s stored entries and is kept up to date.
#[allow(clippy::too_many_arguments)]
fn half(
    arch: Arch,
    c: &CsrView<'_>,
    s: &mut [f32],
    x: &mut [f32],
    y: &[f32],
    f: usize,
    cols: std::ops::Range<usize>,
    regs: &[f32],
    params: &AlsParams,
    num_threads: usize,
    stop: &Stop,
) -> Result<()> {
    let (lo, k) = (cols.start, cols.len());
    let n_fixed = c.n_cols();
    let what = "the iALS++ solver's block of the fixed factors";
    let cause = || format!("{n_fixed} rows x block_size={k}");
    let len = checked_len::<f32>(n_fixed, k, what, cause)?;
    let mut yb = try_zeroed::<f32>(len, what, cause)?;
    for (dst, src) in yb.chunks_exact_mut(k).zip(y.chunks_exact(f)) {
        dst.copy_from_slice(&src[cols.clone()]);
    }
    let g = params.gram_weight();
    let (gbf, gbb) = parallel::install(num_threads, || -> Result<_> {
        let mut gbf = block_gram(&yb, y, k, f)?;
        for v in gbf.iter_mut() {
            *v *= g;
        }
        let mut gbb = vec![0f32; k * k];
        for (r, row) in gbb.chunks_exact_mut(k).enumerate() {
            row.copy_from_slice(&gbf[r * f + lo..r * f + lo + k]);
        }
        Ok((gbf, gbb))
    })??;
    let lanes = arch.dispatch(LaneCount);
    let longest = (0..c.n_rows()).map(|u| c.row_range(u).len()).max();
    let gathered = longest.unwrap_or(0).min(GATHER_ROWS) * k;
    // tasks of `lanes` consecutive rows, with their scores
    let mut tasks = Vec::with_capacity(c.n_rows().div_ceil(lanes.max(1)));
    let (mut rest_x, mut rest_s) = (x, s);
    for first in (0..c.n_rows()).step_by(lanes) {
        let last = (first + lanes).min(c.n_rows());
        let (xs, tx) = rest_x.split_at_mut((last - first) * f);
        let stored = c.row_range(first).start..c.row_range(last - 1).end;
        let (ss, ts) = rest_s.split_at_mut(stored.len());
        tasks.push((first, xs, ss));
        (rest_x, rest_s) = (tx, ts);
    }
    let shared = Shared {
        c,
        yb: &yb,
        gbf: &gbf,
        gbb: &gbb,
        regs,
        f,
        lo,
        k,
        offset: params.observed_offset(),
    };
    parallel::install(num_threads, || {
        tasks.into_par_iter().try_for_each_init(
            || Scratch::new(k, lanes, gathered),
            |scratch, (first, xs, ss)| {
                stop.check()?;
                let scratch = scratch.as_mut().map_err(|e| e.clone())?;
                arch.dispatch(Step {
                    shared: &shared,
                    first,
                    x: xs,
                    s: ss,
                    scratch,
                })
            },
        )
    })?
}

/// What every task of a half-step reads.
struct Shared<'a, 'c> {
    c: &'a CsrView<'c>,
    /// the block's columns of the fixed factors (`n_fixed x k`)
    yb: &'a [f32],
    /// `g Y_b^T Y` (`k x f`)
    gbf: &'a [f32],
    /// `g Y_b^T Y_b` (`k x k`)
    gbb: &'a [f32],
    regs: &'a [f32],
    f: usize,
    lo: usize,
    k: usize,
    offset: f32,
}

/// Per-thread buffers of a half-step.
struct Scratch {
    gx: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    gathered: Vec<f32>,
    scaled: Vec<f32>,
    batch: Vec<f32>,
    rhs: Vec<f32>,
}

impl Scratch {
    fn new(k: usize, lanes: usize, gathered: usize) -> Result<Self> {
        let what = "the iALS++ solver's per-thread buffers";
        let cause = || format!("block_size={k} ({lanes} block x block systems per thread)");
        let square = checked_len::<f32>(k, k, what, cause)?;
        let systems = checked_len::<f32>(square, lanes, what, cause)?;
        Ok(Scratch {
            gx: try_zeroed(lanes * k, what, cause)?,
            a: try_zeroed(square, what, cause)?,
            b: try_zeroed(k, what, cause)?,
            gathered: try_with_capacity(gathered, what, cause)?,
            scaled: try_with_capacity(gathered, what, cause)?,
            batch: try_zeroed(systems, what, cause)?,
            rhs: try_zeroed(lanes * k, what, cause)?,
        })
    }
}

/// The block steps of up to `lanes` consecutive rows (the first is row `first` of `c`), their
/// systems factorised side by side in vector lanes (`linalg::cholesky_solve_lanes`).
struct Step<'a, 'c> {
    shared: &'a Shared<'a, 'c>,
    first: usize,
    x: &'a mut [f32],
    s: &'a mut [f32],
    scratch: &'a mut Scratch,
}

impl WithSimd for Step<'_, '_> {
    type Output = Result<()>;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> Result<()> {
        let Step {
            shared,
            first,
            x,
            s,
            scratch,
        } = self;
        let Shared {
            c,
            yb,
            gbf,
            gbb,
            regs,
            f,
            lo,
            k,
            offset,
        } = *shared;
        let lanes = S::F32_LANES;
        let rows = x.len() / f;
        let sc = scratch;
        // g (Y_b^T Y) x_u for the task's rows at once
        {
            let xv = MatRef::from_row_major_slice(x, rows, f);
            let gv = MatRef::from_row_major_slice(gbf, k, f);
            let out = MatMut::from_row_major_slice_mut(&mut sc.gx[..rows * k], rows, k);
            faer::linalg::matmul::matmul(out, Accum::Replace, xv, gv.transpose(), 1.0f32, Par::Seq);
        }
        sc.batch.fill(0.0);
        sc.rhs[..k * lanes].fill(0.0);
        let base = c.row_range(first).start;
        for l in 0..lanes {
            let (items, conf) = if l < rows {
                c.row(first + l)
            } else {
                (&[][..], &[][..])
            };
            if items.is_empty() {
                if l < rows {
                    x[l * f..(l + 1) * f].fill(0.0);
                }
                for d in 0..k {
                    sc.batch[(d * k + d) * lanes + l] = 1.0;
                }
                continue;
            }
            let reg = regs[first + l];
            let range = c.row_range(first + l);
            let su = &s[range.start - base..range.end - base];
            let xb = &x[l * f + lo..l * f + lo + k];
            // the gradient: g (Y_b^T Y) x_u + reg x_ub + sum_obs e_ui y_ib
            let b = &mut sc.b;
            b.copy_from_slice(&sc.gx[l * k..(l + 1) * k]);
            vaxpy(simd, reg, xb, b);
            // the Hessian: g Y_b^T Y_b + reg I + sum_obs (|c| - o) y_ib y_ib^T
            sc.a.copy_from_slice(gbb);
            for d in 0..k {
                sc.a[d * k + d] += reg;
            }
            let mut am = MatMut::from_row_major_slice_mut(&mut sc.a, k, k);
            let chunks = items.chunks(GATHER_ROWS).zip(conf.chunks(GATHER_ROWS));
            for ((ids, cs), ss) in chunks.zip(su.chunks(GATHER_ROWS)) {
                sc.gathered.clear();
                gather(ids, ids.len(), yb, k, &mut sc.gathered);
                let coefs = cs.iter().zip(ss).map(|(&cv, &sv)| {
                    let (pref, w) = if cv > 0.0 { (cv, cv) } else { (0.0, -cv) };
                    let w = w - offset;
                    (w * sv - pref, w)
                });
                add_terms(
                    simd,
                    am.rb_mut(),
                    b,
                    &mut sc.gathered,
                    coefs,
                    &mut sc.scaled,
                );
            }
            for (d, &bd) in b.iter().enumerate() {
                for i in d..k {
                    sc.batch[(d * k + i) * lanes + l] = sc.a[i * k + d];
                }
                sc.rhs[d * lanes + l] = bd;
            }
        }
        cholesky_solve_lanes(simd, &mut sc.batch, &mut sc.rhs, k, rows).map_err(|l| {
            Error::invalid(
                "user_items",
                format!(
                    "the block system of row {} is singular in float32 (rank-deficient \
                     fixed factors with regularization 0, or confidences so large that the \
                     regularization is lost next to them): raise regularization or scale the \
                     data down (e.g. log1p or bm25_weight)",
                    first + l
                ),
            )
        })?;
        for l in 0..rows {
            let (items, _) = c.row(first + l);
            if items.is_empty() {
                continue;
            }
            let delta = &mut sc.b;
            for (d, v) in delta.iter_mut().enumerate() {
                *v = sc.rhs[d * lanes + l];
            }
            vaxpy(simd, -1.0, delta, &mut x[l * f + lo..l * f + lo + k]);
            let range = c.row_range(first + l);
            let su = &mut s[range.start - base..range.end - base];
            for (sv, &i) in su.iter_mut().zip(items) {
                let i = i as usize;
                *sv -= vdot(simd, delta, &yb[i * k..(i + 1) * k]);
            }
        }
        Ok(())
    }
}
