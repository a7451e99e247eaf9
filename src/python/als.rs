//! Bindings of the ALS kernels.

use super::convert::{mat, mat_mut, to_numpy2, Kwargs, Named, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::als::{gram_f64, objective_loss, solve_block, subspace, AlsParams, Solver};
use numpy::{PyArray2, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The objective's hyper-parameters from keyword arguments named as the estimator's:
/// `regularization`, `unobserved_weight` (None: implicit's convention) and
/// `regularization_exponent` (`models::als::objective`).
fn objective(kw: &Kwargs<'_>) -> PyResult<AlsParams> {
    Ok(AlsParams {
        regularization: kw.take("regularization")?,
        unobserved_weight: kw.take("unobserved_weight")?,
        regularization_exponent: kw.take("regularization_exponent")?,
        ..AlsParams::default()
    })
}

/// Solves every row of `x` (updated in place) against the fixed factors `y` for the confidences
/// `c` (`x.shape[0] x y.shape[0]` CSR). The hyper-parameters come as keyword arguments named as
/// the estimator's: those of the objective (`regularization`, `unobserved_weight`,
/// `regularization_exponent`), `solver` ("cg": `cg_steps` conjugate-gradient steps from the
/// current rows, or "cholesky") and `cg_steps`.
///
/// `gram` (`f x f` float64, `Y^T Y` of the whole fixed side, see `als_gram`) and `fixed_rows`
/// (its number of rows) are for a block that holds only the fixed rows its entries touch (`c`'s
/// columns index `y`'s rows); by default the Gram matrix is `y`'s and `fixed_rows` `y`'s rows.
#[pyfunction]
#[pyo3(signature = (c, x, y, num_threads, gram=None, fixed_rows=None, **hyper_parameters))]
#[allow(clippy::too_many_arguments)]
fn als_solve<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    num_threads: usize,
    gram: Option<PyReadonlyArray2<'py, f64>>,
    fixed_rows: Option<usize>,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<()> {
    let kw = Kwargs::new(py, hyper_parameters);
    let mut solver = kw.take::<Named<Solver>>("solver")?.0;
    let cg_steps: usize = kw.take("cg_steps")?;
    if let Solver::ConjugateGradient { steps } = &mut solver {
        *steps = cg_steps;
    }
    let params = AlsParams {
        solver,
        ..objective(&kw)?
    };
    kw.finish()?;
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat("item_factors", &y)?;
    x.same_cols(&y)?;
    let f = x.cols;
    let given = gram.as_ref().map(|g| mat("gram", g)).transpose()?;
    if let Some(g) = &given {
        if g.rows != f || g.cols != f {
            return Err(Error::shape(
                "gram (factors x factors)",
                format!("{f} x {f}"),
                format!("{} x {}", g.rows, g.cols),
            )
            .into());
        }
    }
    let fixed_rows = fixed_rows.unwrap_or(m.n_cols());
    // a row's solve: f x f (its system) plus f per interaction
    let work = x.rows.saturating_mul(f).saturating_mul(f) + m.nnz().saturating_mul(f);
    interrupt::run(py, num_threads, work, || {
        let own;
        let gram = match &given {
            Some(g) => g.data,
            None => {
                own = gram_f64(y.data, f)?;
                &own[..]
            }
        };
        solve_block(
            &m,
            x.data,
            y.data,
            f,
            &params,
            gram,
            fixed_rows,
            num_threads,
        )
    })
}

/// `Y^T Y` of the factors `y` (`f x f` float64, summed in float64), the Gram matrix `als_solve`
/// takes: the sum of those of a partition of the rows of `y` is that of `y`.
#[pyfunction]
fn als_gram<'py>(
    py: Python<'py>,
    y: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let y = mat("factors", &y)?;
    let f = y.cols;
    let g = py.detach(|| gram_f64(y.data, f))?;
    Ok(to_numpy2(py, g, f, f)?)
}

/// The ALS training loss of factors `x`, `y` on confidences `c`: implicit's, or with
/// `unobserved_weight`, Rendle et al.'s objective (`models::als::objective_loss`); the
/// hyper-parameters as keyword arguments: `regularization`, `unobserved_weight`,
/// `regularization_exponent`.
#[pyfunction]
#[pyo3(signature = (c, x, y, num_threads, **hyper_parameters))]
fn als_loss<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<f64> {
    let kw = Kwargs::new(py, hyper_parameters);
    let params = objective(&kw)?;
    kw.finish()?;
    let m = c.view("user_items")?;
    let x = mat("user_factors", &x)?;
    let y = mat("item_factors", &y)?;
    x.same_cols(&y)?;
    let work = m.nnz().saturating_mul(x.cols);
    interrupt::run(py, num_threads, work, || {
        objective_loss(&m, x.data, y.data, x.cols, &params, num_threads)
    })
}

/// One iALS++ epoch (`models::als::subspace`) on the user factors `x` and the item factors `y`,
/// both updated in place, for the confidences `c` (users x items CSR); the hyper-parameters as
/// keyword arguments: those of `als_loss` and `block_size`.
#[pyfunction]
#[pyo3(signature = (c, x, y, num_threads, **hyper_parameters))]
fn als_ials_epoch<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    mut y: PyReadwriteArray2<'py, f32>,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<()> {
    let kw = Kwargs::new(py, hyper_parameters);
    let block_size: usize = kw.take("block_size")?;
    let params = objective(&kw)?;
    kw.finish()?;
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat_mut("item_factors", &mut y)?;
    x.same_cols(&y)?;
    let f = x.cols;
    interrupt::run(py, num_threads, interrupt::LONG, || {
        subspace::epoch(&m, x.data, y.data, f, &params, block_size, num_threads)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(als_solve, m)?)?;
    m.add_function(wrap_pyfunction!(als_gram, m)?)?;
    m.add_function(wrap_pyfunction!(als_loss, m)?)?;
    m.add_function(wrap_pyfunction!(als_ials_epoch, m)?)
}
