//! Bindings of the EASE kernels.

use super::convert::{candidates, csr_arrays, mat, to_numpy2, CsrArrays, IdsScores, Named, PyCsr};
use super::interrupt;
use super::topk::top_k;
use crate::models::ease::{
    ease_fit, ease_peak_bytes, sparsify_columns, EaseParams, EaseScorer, Precision,
};
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// Bytes the fit holds at its peak for `n_items` items in `dtype` (None on overflow).
#[pyfunction]
fn ease_memory(n_items: usize, dtype: Named<Precision>) -> Option<usize> {
    ease_peak_bytes(n_items, dtype.0)
}

/// The EASE weights of `user_items` (`n_items x n_items` float32), computed in `dtype`.
#[pyfunction]
#[pyo3(signature = (user_items, regularization, dtype, num_threads))]
fn ease_fit_weights<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    regularization: f64,
    dtype: Named<Precision>,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let m = user_items.view("user_items")?;
    let params = EaseParams {
        regularization,
        precision: dtype.0,
    };
    let b = interrupt::run(py, num_threads, interrupt::LONG, || {
        ease_fit(&m, &params, num_threads)
    })?;
    Ok(to_numpy2(py, b, m.n_cols(), m.n_cols())?)
}

/// Recommendations `x_u B` for the rows of `user_items` (one per query).
#[pyfunction]
#[pyo3(signature = (user_items, weights, k, filter_liked, items, filter_items, num_threads))]
#[allow(clippy::too_many_arguments)]
fn ease_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    weights: PyReadonlyArray2<'py, f32>,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let queries = user_items.view("user_items")?;
    let w = mat("weights", &weights)?;
    let cands = candidates(w.cols, &items, &filter_items)?;
    let work = queries.n_rows().saturating_mul(w.cols).saturating_mul(8);
    let scorer = EaseScorer::new(queries, w.data, &cands)?;
    let liked = filter_liked.then_some(&queries);
    top_k(py, &scorer, &cands, liked, k, work, num_threads)
}

/// The `k` entries of largest magnitude of every column of `weights`, by rows (CSR).
#[pyfunction]
#[pyo3(signature = (weights, k, num_threads))]
fn ease_sparsify<'py>(
    py: Python<'py>,
    weights: PyReadonlyArray2<'py, f32>,
    k: usize,
    num_threads: usize,
) -> PyResult<CsrArrays<'py>> {
    let w = mat("weights", &weights)?;
    let work = w.rows.saturating_mul(w.cols);
    let s = interrupt::run(py, num_threads, work, || {
        sparsify_columns(w.data, w.cols, k, num_threads)
    })?;
    Ok(csr_arrays(py, s))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ease_memory, m)?)?;
    m.add_function(wrap_pyfunction!(ease_fit_weights, m)?)?;
    m.add_function(wrap_pyfunction!(ease_recommend, m)?)?;
    m.add_function(wrap_pyfunction!(ease_sparsify, m)?)
}
