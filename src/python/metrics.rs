//! Bindings of the ranking metrics.

use super::convert::{csr, to_numpy2, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::metrics::{beyond_accuracy, ranking_metrics, METRIC_NAMES, N_METRICS};
use numpy::{PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

/// Per-user metrics (rows: users of `test`; columns: `METRIC_NAMES`) of the recommendation lists
/// `recs` (one row per test row) at `k`, for a catalogue of `n_items` items.
#[pyfunction]
#[pyo3(signature = (recs, test, k, n_items, num_threads=0))]
fn ranking_metrics_per_user<'py>(
    py: Python<'py>,
    recs: PyReadonlyArray2<'py, i32>,
    test: PyCsr<'py>,
    k: usize,
    n_items: usize,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let r = recs.as_array();
    let (n_users, width) = r.dim();
    let flat = r
        .to_slice()
        .ok_or_else(|| Error::invalid("recs", "must be a C-contiguous array"))?;
    let test = csr("test_user_items", &test, n_users, n_items)?;
    let work = n_users.saturating_mul(width);
    let out = interrupt::run(py, num_threads, work, || {
        ranking_metrics(flat, width, &test, k, n_items, num_threads)
    })?;
    Ok(to_numpy2(py, out, n_users, N_METRICS)?)
}

/// Beyond-accuracy statistics of the lists `recs` at `k`: `(means of the columns of
/// item_values per user, [diversity, listed] per user, times each item is listed)`.
#[pyfunction]
#[pyo3(signature = (recs, k, item_values, vectors=None, num_threads=0))]
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
    let r = recs.as_array();
    let (n_users, width) = r.dim();
    let flat = r
        .to_slice()
        .ok_or_else(|| Error::invalid("recs", "must be a C-contiguous array"))?;
    let values = item_values.as_array();
    let (n_items, m) = values.dim();
    let values = values
        .to_slice()
        .ok_or_else(|| Error::invalid("item_values", "must be a C-contiguous array"))?;
    let vecs = match &vectors {
        Some(v) => {
            let a = v.as_array();
            if a.dim().0 != n_items {
                return Err(
                    Error::shape("item vectors (one row per item)", n_items, a.dim().0).into(),
                );
            }
            let dim = a.dim().1;
            let s = a
                .to_slice()
                .ok_or_else(|| Error::invalid("vectors", "must be a C-contiguous array"))?;
            Some((s, dim))
        }
        None => None,
    };
    let work = n_users.saturating_mul(width).saturating_mul(width.max(m));
    let (means, stats, counts) = interrupt::run(py, num_threads, work, || {
        beyond_accuracy(flat, width, k, values, m, vecs, n_items, num_threads)
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
