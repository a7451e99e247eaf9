//! Implicit ALS (Hu, Koren & Volinsky 2008) as implicit 0.7 implements it: half-sweeps solved
//! per row by conjugate gradient (warm-started, without forming the f x f matrix, [`cg`]) or by
//! Cholesky (rows batched across vector lanes, [`cholesky`]), and the training loss ([`loss`]).
//!
//! Confidence and preference: a stored value `r > 0` means preference 1 with confidence `r`; `r < 0`
//! means preference 0 with confidence `|r|`; a missing entry means preference 0 with confidence 1.
//! (The caller scales the values by alpha.) Row u of X solves
//! `(YtY + reg I + sum_i (c_ui - 1) y_i y_i^T) x_u = sum_i c_ui p_ui y_i`; empty rows get zeros.

mod cg;
mod cholesky;
mod loss;
mod objective;
pub mod subspace;

pub use loss::{loss, objective_loss};

use crate::error::{checked_len, try_with_capacity, try_zeroed, Error, Result};
use crate::simd::{prefetch, vaxpy, Arch, Lanes};
use crate::sparse::CsrView;
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};

/// How each row's normal equations are solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// `steps` conjugate-gradient steps from the current factors.
    ConjugateGradient { steps: usize },
    /// An exact solve by Cholesky factorisation (faer).
    Cholesky,
}

crate::names::by_name! { Solver, "solver",
    "cg" => ConjugateGradient { steps: 3 },
    "cholesky" => Cholesky,
}

/// Parameters of a half-sweep: the objective (implicit's convention or Rendle et al.'s, and the
/// regularisation; see [`objective`]) and the solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsParams {
    pub regularization: f32,
    pub solver: Solver,
    /// `None`: implicit's convention (a missing entry weighs 1, an observed one its confidence);
    /// `Some(alpha_0)`: every entry is pushed to 0 with weight `alpha_0` (Rendle et al. 2022).
    pub unobserved_weight: Option<f32>,
    /// `nu` of the row regularisation `regularization * (n + alpha_0 N)^nu`; 0: constant.
    pub regularization_exponent: f32,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            regularization: 0.01,
            solver: Solver::ConjugateGradient { steps: 3 },
            unobserved_weight: None,
            regularization_exponent: 0.0,
        }
    }
}

/// `Y^T Y` (row-major `f x f`) of a row-major `n x f` matrix, plus `reg` on the diagonal.
pub fn gram(y: &[f32], f: usize, reg: f32) -> Result<Vec<f32>> {
    weighted_gram(y, f, 1.0, reg)
}

/// `g Y^T Y + reg I` (row-major `f x f`) of a row-major `n x f` matrix.
fn weighted_gram(y: &[f32], f: usize, g: f32, reg: f32) -> Result<Vec<f32>> {
    let n = y.len().checked_div(f).unwrap_or(0);
    let cause = || format!("factors={f} (f x f floats)");
    let len = checked_len::<f32>(f, f, "the factors' Gram matrix", cause)?;
    let mut out = try_zeroed::<f32>(len, "the factors' Gram matrix", cause)?;
    if f > 0 && n > 0 {
        let yv = MatRef::from_row_major_slice(y, n, f);
        let o = MatMut::from_row_major_slice_mut(&mut out, f, f);
        faer::linalg::matmul::matmul(o, Accum::Replace, yv.transpose(), yv, g, Par::Seq);
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
    out.reserve(n * f);
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..n * f];
    for ((k, &i), dst) in items[..n]
        .iter()
        .enumerate()
        .zip(spare.chunks_exact_mut(f.max(1)))
    {
        if let Some(&next) = items.get(k + AHEAD) {
            prefetch_row(y, f, next);
        }
        // an inline copy: a call to `memmove` for every row was 18-23% of the profile of ALS at
        // power-law 80k x 10k (CPU s per iteration 0.366 -> 0.339, clustered 0.259 -> 0.236)
        for (d, &v) in dst.iter_mut().zip(&y[i as usize * f..(i as usize + 1) * f]) {
            d.write(v);
        }
    }
    // SAFETY: the n rows of f floats after `start` are written (capacity reserved above).
    unsafe { out.set_len(start + n * f) };
}

/// For gathered rows `y_e` (`gathered`, `f` floats each) and their `(coef_e, w_e)`: `b += coef_e
/// y_e` for every row, and `a += sum_e w_e y_e y_e^T` (`a`: `f x f`, by one GEMM) over the rows
/// with `w_e != 0` only. An entry whose confidence is the observed offset has `w = 0`: binary
/// data at alpha = 1 have no other, and their GEMM is skipped (implicit adds the zeros). The kept
/// rows are moved to the front of `gathered`, so rows that all have a term are multiplied as
/// they were (the same bits); `scaled` is scratch.
#[inline(always)]
fn add_terms<S: Lanes>(
    simd: S,
    mut a: MatMut<'_, f32>,
    b: &mut [f32],
    gathered: &mut [f32],
    coefs: impl Iterator<Item = (f32, f32)>,
    scaled: &mut Vec<f32>,
) {
    let f = b.len();
    scaled.clear();
    let mut kept = 0;
    for (e, (coef, w)) in coefs.enumerate() {
        let ye = &gathered[e * f..(e + 1) * f];
        vaxpy(simd, coef, ye, b);
        if w != 0.0 {
            scaled.extend(ye.iter().map(|v| v * w));
            if kept != e {
                gathered.copy_within(e * f..(e + 1) * f, kept * f);
            }
            kept += 1;
        }
    }
    if kept > 0 {
        let g = MatRef::from_row_major_slice(&gathered[..kept * f], kept, f);
        let h = MatRef::from_row_major_slice(scaled, kept, f);
        faer::linalg::matmul::matmul(a.rb_mut(), Accum::Add, g.transpose(), h, 1.0f32, Par::Seq);
    }
}

/// How many rows ahead of the one being read a kernel that reads rows of the fixed factors by id
/// requests one ([`prefetch_row`]).
const AHEAD: usize = 16;

/// Requests the cache lines of row `i` of the row-major `n x f` matrix `y`.
#[inline(always)]
fn prefetch_row(y: &[f32], f: usize, i: i32) {
    let row = &y[i as usize * f..(i as usize + 1) * f];
    for line in row.chunks(16) {
        prefetch(line.as_ptr());
    }
}

/// The most item rows the Cholesky and subspace solvers gather at once (8192 rows of 64 factors are
/// 2 MiB, about an L2), and the least the CG gathers for one row (its limit follows the
/// last-level cache: `cg::gather_limit`); longer rows are read in place, from the fixed factors.
const GATHER_ROWS: usize = 8192;

/// Rows of the fixed factors converted to f64 at a time by [`gram_f64`].
const GRAM_CHUNK_ROWS: usize = 256;

/// `Y^T Y` (row-major `f x f`, f64) of a row-major `n x f` matrix, summed in f64 over chunks of
/// rows in order, so that the Gram matrices of a partition of the rows add up to the whole's to
/// f64 rounding (what a worker that holds a block of the fixed factors contributes).
pub fn gram_f64(y: &[f32], f: usize) -> Result<Vec<f64>> {
    if f == 0 {
        return Err(Error::invalid("factors", "must be at least 1"));
    }
    if !y.len().is_multiple_of(f) {
        return Err(Error::shape(
            "factors (rows x factors)",
            format!("a multiple of {f} values"),
            format!("{} values", y.len()),
        ));
    }
    let cause = || format!("factors={f} (f x f floats)");
    let len = checked_len::<f64>(f, f, "the factors' Gram matrix", cause)?;
    let mut out = try_zeroed::<f64>(len, "the factors' Gram matrix", cause)?;
    let chunk = checked_len::<f64>(GRAM_CHUNK_ROWS, f, "the Gram matrix's buffer", cause)?;
    let mut buf = try_with_capacity::<f64>(chunk, "the Gram matrix's buffer", cause)?;
    for rows in y.chunks(chunk) {
        buf.clear();
        buf.extend(rows.iter().map(|&v| v as f64));
        let yv = MatRef::from_row_major_slice(&buf, rows.len() / f, f);
        let o = MatMut::from_row_major_slice_mut(&mut out, f, f);
        faer::linalg::matmul::matmul(o, Accum::Add, yv.transpose(), yv, 1.0, Par::Seq);
    }
    Ok(out)
}

/// `g G + reg I` in f32 for a Gram matrix `G` (`f x f`, f64), rounded once.
fn system_gram(gram: &[f64], f: usize, g: f32, reg: f32) -> Result<Vec<f32>> {
    if gram.len() != f * f {
        return Err(Error::shape(
            "gram (factors x factors)",
            format!("{f} x {f}"),
            format!("{} values", gram.len()),
        ));
    }
    let (g, reg) = (g as f64, reg as f64);
    let cause = || format!("factors={f} (f x f floats)");
    let mut out = try_with_capacity::<f32>(gram.len(), "the factors' Gram matrix", cause)?;
    out.extend(gram.iter().enumerate().map(|(k, &v)| {
        let diag = if k / f == k % f { reg } else { 0.0 };
        (g * v + diag) as f32
    }));
    Ok(out)
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
    let gram = gram_f64(y, f)?;
    solve_on(
        Arch::new(),
        c,
        x,
        y,
        f,
        params,
        &gram,
        c.n_cols(),
        num_threads,
    )
}

/// [`solve`] for a block of rows that sees only part of the fixed side: `y` holds the fixed rows
/// its entries touch (`c`'s columns index them), `gram` is `Y^T Y` of the *whole* fixed side
/// (`f x f`, the sum of [`gram_f64`] over its blocks) and `fixed_rows` its number of rows (which
/// the frequency-scaled regularisation counts). With the whole `y`, its [`gram_f64`] and
/// `c.n_cols()` this is [`solve`].
#[allow(clippy::too_many_arguments)]
pub fn solve_block(
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &[f32],
    f: usize,
    params: &AlsParams,
    gram: &[f64],
    fixed_rows: usize,
    num_threads: usize,
) -> Result<()> {
    check_shapes(c, x, y, f)?;
    if fixed_rows < c.n_cols() {
        return Err(Error::invalid(
            "fixed_rows",
            format!(
                "must be at least the {} fixed rows the block's entries index, got {fixed_rows}",
                c.n_cols()
            ),
        ));
    }
    solve_on(
        Arch::new(),
        c,
        x,
        y,
        f,
        params,
        gram,
        fixed_rows,
        num_threads,
    )
}

/// [`solve_block`] with the kernels run on `arch`'s vector instructions.
#[allow(clippy::too_many_arguments)]
fn solve_on(
    arch: Arch,
    c: &CsrView<'_>,
    x: &mut [f32],
    y: &[f32],
    f: usize,
    params: &AlsParams,
    gram: &[f64],
    fixed_rows: usize,
    num_threads: usize,
) -> Result<()> {
    check_shapes(c, x, y, f)?;
    params.check()?;
    // a constant regularisation is added to the Gram matrix once, a row's own in its solve
    let scaled = params.scaled_regularization();
    let reg = if scaled { 0.0 } else { params.regularization };
    let yty = system_gram(gram, f, params.gram_weight(), reg)?;
    let regs = scaled.then(|| params.row_regularizations(c, fixed_rows));
    let system = System {
        yty: &yty,
        offset: params.observed_offset(),
        regs: regs.as_deref(),
    };
    match params.solver {
        Solver::ConjugateGradient { steps } => {
            cg::solve_rows(arch, c, x, y, &system, f, steps, num_threads)
        }
        Solver::Cholesky => cholesky::solve_rows(arch, c, x, y, &system, f, num_threads),
    }
}

/// What the rows of a half-sweep share (see [`objective`]): `g YtY`, plus the regularisation when
/// it is the same for every row; the offset `o` of the observed confidences; and every row's
/// regularisation when it depends on the row (then not in `yty`).
struct System<'a> {
    yty: &'a [f32],
    offset: f32,
    regs: Option<&'a [f32]>,
}

impl System<'_> {
    /// Row `r`'s regularisation beyond what `yty` holds.
    #[inline(always)]
    fn extra_reg(&self, r: usize) -> Option<f32> {
        self.regs.map(|regs| regs[r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Csr;

    /// Every instruction set this CPU has (scalar, AVX2, AVX-512) gives the same solutions up to
    /// rounding: the integration tests check the widest against f64 references.
    #[test]
    fn every_instruction_set_gives_the_same_solution() {
        let archs = crate::simd::tests::archs();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32) / (1u64 << 31) as f32
        };
        let (rows, cols) = (37, cg::MAX_GATHER_ROWS + 100);
        let mut t = Vec::new();
        for u in 0..rows {
            // row 3 is longer than any solver gathers (read in place), row 5 empty, one disliked
            // item
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
                    ..Default::default()
                };
                let results: Vec<Vec<f32>> = archs
                    .iter()
                    .map(|&arch| {
                        let mut x = x0.clone();
                        let gram = gram_f64(&y, f).unwrap(); // ok: test
                        solve_on(arch, &c.view(), &mut x, &y, f, &params, &gram, cols, 2).unwrap(); // ok: test
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

    /// The Gram matrices of a partition of the rows add up to the whole's (f64 sums), which a
    /// plain f64 loop gives; chunks of [`GRAM_CHUNK_ROWS`] and a ragged last one included.
    #[test]
    fn gram_of_blocks_adds_up_to_the_whole() {
        let (n, f) = (GRAM_CHUNK_ROWS * 2 + 37, 5);
        let y: Vec<f32> = (0..n * f)
            .map(|k| ((k * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let whole = gram_f64(&y, f).unwrap(); // ok: test
        let mut naive = vec![0f64; f * f];
        for r in y.chunks(f) {
            for a in 0..f {
                for b in 0..f {
                    naive[a * f + b] += r[a] as f64 * r[b] as f64;
                }
            }
        }
        let cut = 300 * f;
        let parts: Vec<f64> = gram_f64(&y[..cut], f)
            .unwrap() // ok: test
            .iter()
            .zip(gram_f64(&y[cut..], f).unwrap()) // ok: test
            .map(|(a, b)| a + b)
            .collect();
        for k in 0..f * f {
            assert!((whole[k] - naive[k]).abs() <= 1e-9 * naive[k].abs().max(1.0));
            assert!((parts[k] - naive[k]).abs() <= 1e-9 * naive[k].abs().max(1.0));
        }
        assert!(gram_f64(&y[..7], f).is_err());
        assert!(gram_f64(&y, 0).is_err());
    }
}
