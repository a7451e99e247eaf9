//! The top right singular vectors of a sparse matrix by randomized subspace iteration (Halko,
//! Martinsson and Tropp 2011, algorithms 4.4 and 5.1), with faer's Householder QR and a small dense
//! SVD, and the sparse x dense product it runs on.

use crate::error::{checked_len, try_with_capacity, try_zeroed, Error, Result};
use crate::parallel;
use crate::simd::{vaxpy, Arch, Lanes, WithSimd};
use crate::sparse::CsrView;
use faer::{Mat, MatRef};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

struct RowsTimes<'a> {
    a: &'a CsrView<'a>,
    rows: std::ops::Range<usize>,
    x: &'a [f32],
    m: usize,
    out: &'a mut [f32],
}

impl WithSimd for RowsTimes<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Lanes>(self, simd: S) {
        let m = self.m;
        for (r, out) in self.rows.zip(self.out.chunks_exact_mut(m)) {
            out.fill(0.0);
            let (cols, vals) = self.a.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let c = c as usize;
                vaxpy(simd, v, &self.x[c * m..(c + 1) * m], out);
            }
        }
    }
}

/// `out = A X` for a sparse `A` (`n_rows x n_cols`) and a dense row-major `X` (`n_cols x m`),
/// `out` row-major `n_rows x m`, in parallel over blocks of rows (inside the caller's pool).
pub(crate) fn spmm_par(a: &CsrView<'_>, x: &[f32], m: usize, out: &mut [f32]) {
    const ROWS: usize = 256;
    if m == 0 {
        return;
    }
    out[..a.n_rows() * m]
        .par_chunks_mut(ROWS * m)
        .enumerate()
        .for_each(|(b, chunk)| {
            let r0 = b * ROWS;
            Arch::new().dispatch(RowsTimes {
                a,
                rows: r0..r0 + chunk.len() / m,
                x,
                m,
                out: chunk,
            });
        });
}

/// Orthonormal columns spanning the `n x l` row-major `y` (replaced).
fn orthonormalize(y: &mut [f32], n: usize, l: usize) -> Result<()> {
    let q = dense(n, l, || {
        MatRef::from_row_major_slice(y, n, l).qr().compute_thin_Q()
    })?;
    for (i, row) in y.chunks_exact_mut(l).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = q[(i, c)];
        }
    }
    Ok(())
}

/// `f()`, a step of faer's dense algebra on an `n x l` matrix, which allocates its copies and
/// panics where an allocation fails (an `AllocError` unwrapped): that panic as
/// [`Error::OutOfMemory`] (the fit's memory check counts these copies; this is for memory taken
/// by others meanwhile). Any other panic goes on unwinding.
fn dense<T>(n: usize, l: usize, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if !message.is_some_and(|m| m.contains("AllocError")) {
            std::panic::resume_unwind(payload);
        }
        Error::out_of_memory::<f32>(
            n as u128 * l as u128,
            "the randomized SVD's dense factorisations",
            format!("{n} rows x {l} columns (factors + oversampling)"),
        )
    })
}

/// Parameters of [`top_right_singular_vectors`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomizedSvdParams {
    /// Singular vectors wanted.
    pub k: usize,
    /// Extra dimensions of the sampled subspace (`k + oversampling` in all, at most the smaller
    /// dimension of the matrix).
    pub oversampling: usize,
    /// Subspace (power) iterations (`A A^T` applied to the row-side basis, re-orthonormalised
    /// after each).
    pub iterations: usize,
    pub seed: u64,
}

/// The `k` leading right singular vectors of `a` (`n_rows x n_cols`; `at` its transpose) as a
/// row-major `n_cols x k` float32 matrix, best first. Deterministic for a seed whatever the thread
/// count (the products are parallel over rows, the factorisations sequential).
pub fn top_right_singular_vectors(
    a: &CsrView<'_>,
    at: &CsrView<'_>,
    params: &RandomizedSvdParams,
    num_threads: usize,
) -> Result<Vec<f32>> {
    let (n_rows, n_cols) = (a.n_rows(), a.n_cols());
    if at.n_rows() != n_cols || at.n_cols() != n_rows {
        return Err(Error::shape(
            "transposed matrix",
            format!("{n_cols} x {n_rows}"),
            format!("{} x {}", at.n_rows(), at.n_cols()),
        ));
    }
    let k = params.k;
    let small = n_rows.min(n_cols);
    if k > small {
        return Err(Error::invalid(
            "factors",
            format!("at most min(users, items) = {small}, got {k}"),
        ));
    }
    if k == 0 {
        return Ok(Vec::new());
    }
    let l = (k + params.oversampling).min(small);
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let what = "the randomized SVD's blocks";
    let cause = |n: usize| move || format!("{n} rows x {l} columns (factors + oversampling)");
    let nz = checked_len::<f32>(n_cols, l, what, cause(n_cols))?;
    let mut z: Vec<f32> = try_with_capacity(nz, what, cause(n_cols))?;
    z.extend((0..nz).map(|_| rng.random::<f32>() * 2.0 - 1.0));
    let ny = checked_len::<f32>(n_rows, l, what, cause(n_rows))?;
    let mut y: Vec<f32> = try_zeroed(ny, what, cause(n_rows))?;
    let stop = parallel::stop_flag(); // Ctrl-C: noticed between the passes over the matrix
    parallel::install(num_threads, || {
        spmm_par(a, &z, l, &mut y);
        orthonormalize(&mut y, n_rows, l)?;
        for _ in 0..params.iterations {
            stop.check()?;
            // z = A^T Q is not re-orthonormalised: its condition number is at most
            // s_1 / s_l of A, so y = A z (s_1 / s_l squared) still has a well-defined basis in
            // single precision, and the subspace is the same; one QR per pass pair, not two
            spmm_par(at, &y, l, &mut z);
            spmm_par(a, &z, l, &mut y);
            orthonormalize(&mut y, n_rows, l)?;
        }
        // B^T = A^T Q (n_cols x l) = Q2 R2, R2 = U S W^T: the right singular vectors are Q2 U
        spmm_par(at, &y, l, &mut z);
        stop.check()
    })??;
    drop(y);
    // each copy freed once the next is made: at most two n_cols x l matrices at a time
    let (qu, order) = dense(n_cols, l, move || -> Result<(Mat<f32>, Vec<usize>)> {
        let qr = MatRef::from_row_major_slice(&z, n_cols, l).qr();
        drop(z);
        let q2 = qr.compute_thin_Q();
        let r2: Mat<f32> = qr.thin_R().to_owned();
        drop(qr);
        let svd = r2
            .svd()
            .map_err(|_| Error::invalid("factors", "the small dense SVD did not converge"))?;
        let s = svd.S().column_vector();
        let mut order: Vec<usize> = (0..l).collect();
        order.sort_by(|&x, &w| s[w].total_cmp(&s[x]));
        Ok((&q2 * svd.U(), order))
    })??;
    let what = "the singular vectors";
    let cause = || format!("{n_cols} items x {k} factors");
    let mut v: Vec<f32> = try_zeroed(checked_len::<f32>(n_cols, k, what, cause)?, what, cause)?;
    for (i, row) in v.chunks_exact_mut(k).enumerate() {
        for (c, o) in row.iter_mut().zip(&order) {
            *c = qu[(i, *o)];
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed allocation's panic (faer unwraps an `AllocError`) becomes `OutOfMemory` naming
    /// the block; any other panic goes on unwinding; a value passes through.
    #[test]
    fn dense_maps_only_allocation_panics() {
        assert_eq!(dense(3, 2, || 7).ok(), Some(7));
        // as faer's `Mat` panics: `Result::unwrap` on its `AllocError` (a formatted message)
        let oom = dense(1000, 20, || {
            let layout = "Layout { size: 80000, align: 64 }";
            panic!("called `Result::unwrap()` on an `Err` value: AllocError {{ layout: {layout} }}")
        });
        let message = oom.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("dense factorisations") && message.contains("1000 rows"),
            "{message}"
        );
        let other = std::panic::catch_unwind(|| dense(1, 1, || panic!("index out of bounds")));
        assert!(
            other.is_err(),
            "a panic that is not an allocation's must keep unwinding"
        );
    }
}
