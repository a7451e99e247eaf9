//! Bindings of the ranking metrics.

use super::convert::{mat, to_numpy2, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::metrics::{beyond_accuracy, ranking_metrics, METRIC_NAMES, N_METRICS};
use numpy::{PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

/// Per-user metrics (rows: users of `test`; columns: `METRIC_NAMES`) of the recommendation lists
/// `recs` (one row per test row) at `k`, for a catalogue of `n_items` items.
#[pyfunction]
#[pyo3(signature = (recs, test, k, n_items, num_threads))]
fn ranking_metrics_per_user<'py>(
    py: Python<'py>,
    recs: PyReadonlyArray2<'py, i32>,
    test: PyCsr<'py>,
    k: usize,
    n_items: usize,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let recs = mat("recs", &recs)?;
    let test = test.view("test_user_items")?;
    let work = recs.rows.saturating_mul(recs.cols);
    let out = interrupt::run(py, num_threads, work, || {
        ranking_metrics(recs.data, recs.cols, &test, k, n_items, num_threads)
    })?;
    Ok(to_numpy2(py, out, recs.rows, N_METRICS)?)
}

/// Beyond-accuracy statistics of the lists `recs` at `k`: `(means of the columns of
/// item_values per user, [diversity, listed] per user, times each item is listed)`.
#[pyfunction]
#[pyo3(signature = (recs, k, item_values, vectors, num_threads))]
#[allow(clippy::type_complexity)]
fn beyond_accuracy_per_user<'py>(
    py: Python<'py>,
    recs: PyReadonlyArray2<'py, i32>,
    k: usize,
    item_values: PyReadonlyArray2<'py, f32>,
    vectors: Option<PyReadonlyArray2<'py, f32>>,
    num_threads: usize,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<u64>>,
)> {
    let recs = mat("recs", &recs)?;
    let values = mat("item_values", &item_values)?;
    let vectors = vectors.as_ref().map(|v| mat("vectors", v)).transpose()?;
    if let Some(v) = &vectors {
        if v.rows != values.rows {
            return Err(
                Error::shape("item vectors (one row per item)", values.rows, v.rows).into(),
            );
        }
    }
    let (n_users, width, m) = (recs.rows, recs.cols, values.cols);
    let work = n_users.saturating_mul(width).saturating_mul(width.max(m));
    let (means, stats, counts) = interrupt::run(py, num_threads, work, || {
        let vecs = vectors.as_ref().map(|v| (v.data, v.cols));
        beyond_accuracy(
            recs.data,
            width,
            k,
            values.data,
            m,
            vecs,
            values.rows,
            num_threads,
        )
    })?;
    Ok((
        to_numpy2(py, means, n_users, m)?,
        to_numpy2(py, stats, n_users, 2)?,
        PyArray1::from_vec(py, counts),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("METRIC_NAMES", METRIC_NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(ranking_metrics_per_user, m)?)?;
    m.add_function(wrap_pyfunction!(beyond_accuracy_per_user, m)?)
}
