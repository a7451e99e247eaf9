//! The Cholesky solver: exact solves of each row's normal equations, formed by GEMM and
//! factorised as many rows at a time as the CPU's vectors have lanes (`linalg`).

use super::{add_terms, gather, System, GATHER_ROWS};
use crate::error::{checked_len, try_with_capacity, try_zeroed, Error, Result};
use crate::linalg::cholesky_solve_lanes;
use crate::parallel;
use crate::simd::{f32_lanes, Arch, Lanes, WithSimd};
use crate::sparse::CsrView;
use faer::reborrow::ReborrowMut;
use faer::MatMut;
use rayon::prelude::*;

/// Per-thread buffers of the solver: one row's normal equations, its gathered item factors and
/// their scaled copy, and the interleaved systems of a batch of rows.
struct Scratch {
    a: Vec<f32>,
    gathered: Vec<f32>,
    scaled: Vec<f32>,
    batch: Vec<f32>,
    rhs: Vec<f32>,
}

impl Scratch {
    /// `gather`: the capacity of the gathered factors and of their scaled copy, reserved exactly
    /// (buffers grown by doubling took up to twice the memory); `lanes` interleaved `f x f`
    /// systems. Every buffer whose size grows with the factors is allocated fallibly: a thread's
    /// scratch that does not fit is a MemoryError naming `factors`, not an abort.
    fn new(f: usize, gather: usize, lanes: usize) -> Result<Self> {
        let what = "the solver's per-thread buffers";
        let cause =
            || format!("factors={f} with the Cholesky solver ({lanes} f x f systems per thread)");
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
            a: try_zeroed(square, what, String::new).map_err(oom)?,
            gathered: try_with_capacity(gather, what, String::new).map_err(oom)?,
            scaled: try_with_capacity(gather, what, String::new).map_err(oom)?,
            batch: try_with_capacity(systems, what, String::new).map_err(oom)?,
            rhs: try_with_capacity(f * lanes, what, String::new).map_err(oom)?,
        })
    }
}

/// Exact solves of every row of `x` against the fixed factors `y` and their Gram matrix plus the
/// regularisation, `yty` (see [`super::solve`]).
pub(super) fn solve_rows(
    arch: Arch,
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &[f32],
    system: &System<'_>,
    f: usize,
    num_threads: usize,
) -> Result<()> {
    let stop = parallel::stop_flag();
    let longest = (0..c.n_rows()).map(|u| c.row_range(u).len()).max();
    let gather = longest.unwrap_or(0).min(GATHER_ROWS) * f;
    let lanes = f32_lanes(arch);
    parallel::install(num_threads, || {
        x.par_chunks_mut(lanes * f).enumerate().try_for_each_init(
            || Scratch::new(f, gather, lanes),
            |s, (batch, x)| {
                stop.check()?;
                let s = s.as_mut().map_err(|e| e.clone())?;
                arch.dispatch(Batch {
                    c,
                    first: batch * lanes,
                    x,
                    y,
                    system,
                    f,
                    s,
                })
            },
        )
    })?
}

/// Row `u`'s normal equations: `a = yty + Y_u^T diag(|c| - o) Y_u` (`f x f`, row-major, by one
/// GEMM per chunk of gathered item factors, over the entries whose `|c|` is not `o`; `yty` is
/// `g YtY`, plus the regularisation when it is constant, and `o` the observed offset, see
/// [`System`]) and `b = sum_i c_ui p_ui y_i`.
#[allow(clippy::too_many_arguments)]
#[inline(always)] // into the callers' vector instructions
fn normal_equations<S: Lanes>(
    simd: S,
    items: &[i32],
    conf: &[f32],
    y: &[f32],
    yty: &[f32],
    offset: f32,
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
        let coefs = cs.iter().map(|&c| {
            let (pref, c) = if c > 0.0 { (c, c) } else { (0.0, -c) };
            (pref, c - offset)
        });
        add_terms(simd, am.rb_mut(), b, gathered, coefs, scaled);
    }
}
/// A batch of consecutive rows, one per vector lane (`x` holds them, the first is row `first` of
/// `c`), run by [`Arch::dispatch`] with the CPU's vector instructions.
struct Batch<'a, 'c> {
    c: &'a CsrView<'c>,
    first: usize,
    x: &'a mut [f32],
    y: &'a [f32],
    system: &'a System<'a>,
    f: usize,
    s: &'a mut Scratch,
}

impl WithSimd for Batch<'_, '_> {
    type Output = Result<()>;
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) -> Result<()> {
        cholesky_batch(simd, self)
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
fn cholesky_batch<S: Lanes>(simd: S, batch: Batch<'_, '_>) -> Result<()> {
    let Batch {
        c,
        first,
        x,
        y,
        system,
        f,
        s,
    } = batch;
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
            system.yty,
            system.offset,
            &mut s.a,
            b,
            &mut s.gathered,
            &mut s.scaled,
        );
        if let Some(reg) = system.extra_reg(first + l) {
            for k in 0..f {
                s.a[k * f + k] += reg;
            }
        }
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
                "the normal equations of row {} are singular in float32 (rank-deficient \
                 fixed factors with regularization 0, or confidences so large that the \
                 regularization is lost next to them): raise regularization or scale the \
                 data down (e.g. log1p or bm25_weight)",
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
