//! Bindings of the EASE kernels.

use super::convert::{candidates, csr, ids_scores, IdsScores, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::ease::{ease_fit, ease_peak_bytes, EaseParams, EaseScorer, Precision};
use crate::topk::recommend_batch;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

fn precision(dtype: &str) -> Result<Precision, Error> {
    match dtype {
        "float32" => Ok(Precision::F32),
        "float64" => Ok(Precision::F64),
        other => Err(Error::invalid(
            "dtype",
            format!("must be float32 or float64, got {other:?}"),
        )),
    }
}

/// Bytes the fit holds at its peak for `n_items` items in `dtype` (None on overflow).
#[pyfunction]
fn ease_memory(n_items: usize, dtype: &str) -> PyResult<Option<usize>> {
    Ok(ease_peak_bytes(n_items, precision(dtype)?))
}

/// The EASE weights of `user_items` as a flat row-major `n_items x n_items` float32 array.
#[pyfunction]
#[pyo3(signature = (user_items, n_users, n_items, regularization, dtype="float32", num_threads=0))]
fn ease_fit_weights<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_users: usize,
    n_items: usize,
    regularization: f64,
    dtype: &str,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let m = csr("user_items", &user_items, n_users, n_items)?;
    let params = EaseParams {
        regularization,
        precision: precision(dtype)?,
    };
    let b = interrupt::run(py, num_threads, interrupt::LONG, || {
        ease_fit(&m, &params, num_threads)
    })?;
    Ok(PyArray1::from_vec(py, b))
}

/// Recommendations `x_u B` for the rows of `user_items` (one per query).
#[pyfunction]
#[pyo3(signature = (user_items, n_queries, weights, n_items, k, filter_liked=true, items=None, filter_items=None, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn ease_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_queries: usize,
    weights: PyReadonlyArray1<'py, f32>,
    n_items: usize,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let queries = csr("user_items", &user_items, n_queries, n_items)?;
    let w = super::convert::slice("weights", &weights)?;
    let cands = candidates(n_items, &items, &filter_items)?;
    let scorer = EaseScorer::new(queries, w, &cands)?;
    let liked = filter_liked.then_some(&queries);
    let work = n_queries.saturating_mul(n_items).saturating_mul(8);
    let res = interrupt::run(py, num_threads, work, || {
        recommend_batch(&scorer, &cands, liked, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ease_memory, m)?)?;
    m.add_function(wrap_pyfunction!(ease_fit_weights, m)?)?;
    m.add_function(wrap_pyfunction!(ease_recommend, m)?)
}
