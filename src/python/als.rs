//! Bindings of the ALS kernels.

use super::convert::{csr, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::als::{loss, solve, AlsParams, Solver};
use numpy::{PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

/// Solves every row of `x` (updated in place) against the fixed factors `y` for the confidences
/// `c` (`x.shape[0] x y.shape[0]` CSR). `cg_steps=0` selects the Cholesky solver.
#[pyfunction]
#[pyo3(signature = (c, x, y, regularization, cg_steps, num_threads=0))]
fn als_solve<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    regularization: f32,
    cg_steps: usize,
    num_threads: usize,
) -> PyResult<()> {
    let (rows, f) = x.as_array().dim();
    let yv = y.as_array();
    let m = csr("user_items", &c, rows, yv.nrows())?;
    let ys = yv
        .to_slice()
        .ok_or_else(|| Error::invalid("item_factors", "must be C-contiguous"))?;
    let xs = x
        .as_slice_mut()
        .map_err(|_| Error::invalid("user_factors", "must be C-contiguous"))?;
    let params = AlsParams {
        regularization,
        solver: if cg_steps == 0 {
            Solver::Cholesky
        } else {
            Solver::ConjugateGradient { steps: cg_steps }
        },
    };
    // a row's solve: f x f (its system) plus f per interaction
    let work = rows.saturating_mul(f).saturating_mul(f) + m.nnz().saturating_mul(f);
    interrupt::run(py, num_threads, work, || {
        solve(&m, xs, ys, f, &params, num_threads)
    })?;
    Ok(())
}

/// implicit's ALS training loss of factors `x`, `y` on confidences `c`.
#[pyfunction]
#[pyo3(signature = (c, x, y, regularization, num_threads=0))]
fn als_loss<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    regularization: f32,
    num_threads: usize,
) -> PyResult<f64> {
    let (xv, yv) = (x.as_array(), y.as_array());
    let m = csr("user_items", &c, xv.nrows(), yv.nrows())?;
    let xs = xv
        .to_slice()
        .ok_or_else(|| Error::invalid("user_factors", "must be C-contiguous"))?;
    let ys = yv
        .to_slice()
        .ok_or_else(|| Error::invalid("item_factors", "must be C-contiguous"))?;
    let work = m.nnz().saturating_mul(xv.ncols());
    interrupt::run(py, num_threads, work, || {
        loss(&m, xs, ys, xv.ncols(), regularization, num_threads)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(als_solve, m)?)?;
    m.add_function(wrap_pyfunction!(als_loss, m)?)
}
