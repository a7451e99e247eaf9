//! Bindings of the ALS kernels.

use super::convert::{mat, mat_mut, Named, PyCsr};
use super::interrupt;
use crate::models::als::{objective_loss, solve, subspace, AlsParams, Solver};
use numpy::{PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

/// Solves every row of `x` (updated in place) against the fixed factors `y` for the confidences
/// `c` (`x.shape[0] x y.shape[0]` CSR) with `solver` ("cg": `cg_steps` conjugate-gradient
/// steps from the current rows, or "cholesky"), on the objective of `unobserved_weight` (None:
/// implicit's convention) and `regularization_exponent` (`models::als::objective`).
#[pyfunction]
#[pyo3(signature = (c, x, y, regularization, solver, cg_steps, num_threads, unobserved_weight,
                    regularization_exponent))]
#[allow(clippy::too_many_arguments)]
fn als_solve<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    regularization: f32,
    solver: Named<Solver>,
    cg_steps: usize,
    num_threads: usize,
    unobserved_weight: Option<f32>,
    regularization_exponent: f32,
) -> PyResult<()> {
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat("item_factors", &y)?;
    x.same_cols(&y)?;
    let mut solver = solver.0;
    if let Solver::ConjugateGradient { steps } = &mut solver {
        *steps = cg_steps;
    }
    let params = AlsParams {
        regularization,
        solver,
        unobserved_weight,
        regularization_exponent,
    };
    let f = x.cols;
    // a row's solve: f x f (its system) plus f per interaction
    let work = x.rows.saturating_mul(f).saturating_mul(f) + m.nnz().saturating_mul(f);
    interrupt::run(py, num_threads, work, || {
        solve(&m, x.data, y.data, f, &params, num_threads)
    })
}

/// The ALS training loss of factors `x`, `y` on confidences `c`: implicit's, or with
/// `unobserved_weight`, Rendle et al.'s objective (`models::als::objective_loss`).
#[pyfunction]
#[pyo3(signature = (c, x, y, regularization, num_threads, unobserved_weight,
                    regularization_exponent))]
#[allow(clippy::too_many_arguments)]
fn als_loss<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    regularization: f32,
    num_threads: usize,
    unobserved_weight: Option<f32>,
    regularization_exponent: f32,
) -> PyResult<f64> {
    let m = c.view("user_items")?;
    let x = mat("user_factors", &x)?;
    let y = mat("item_factors", &y)?;
    x.same_cols(&y)?;
    let params = AlsParams {
        regularization,
        unobserved_weight,
        regularization_exponent,
        ..Default::default()
    };
    let work = m.nnz().saturating_mul(x.cols);
    interrupt::run(py, num_threads, work, || {
        objective_loss(&m, x.data, y.data, x.cols, &params, num_threads)
    })
}

/// One iALS++ epoch (`models::als::subspace`) on the user factors `x` and the item factors `y`,
/// both updated in place, for the confidences `c` (users x items CSR).
#[pyfunction]
#[pyo3(signature = (c, x, y, regularization, block_size, num_threads, unobserved_weight,
                    regularization_exponent))]
#[allow(clippy::too_many_arguments)]
fn als_ials_epoch<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    mut y: PyReadwriteArray2<'py, f32>,
    regularization: f32,
    block_size: usize,
    num_threads: usize,
    unobserved_weight: Option<f32>,
    regularization_exponent: f32,
) -> PyResult<()> {
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat_mut("item_factors", &mut y)?;
    x.same_cols(&y)?;
    let params = AlsParams {
        regularization,
        unobserved_weight,
        regularization_exponent,
        ..Default::default()
    };
    let f = x.cols;
    interrupt::run(py, num_threads, interrupt::LONG, || {
        subspace::epoch(&m, x.data, y.data, f, &params, block_size, num_threads)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(als_solve, m)?)?;
    m.add_function(wrap_pyfunction!(als_loss, m)?)?;
    m.add_function(wrap_pyfunction!(als_ials_epoch, m)?)
}
