//! Bindings of the ranking metrics.

use super::convert::{csr, to_numpy2, PyCsr};
use crate::error::Error;
use crate::metrics::{ranking_metrics, METRIC_NAMES, N_METRICS};
use numpy::{PyArray2, PyReadonlyArray2};
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
    let out = py.detach(|| ranking_metrics(flat, width, &test, k, n_items, num_threads))?;
    Ok(to_numpy2(py, out, n_users, N_METRICS)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("METRIC_NAMES", METRIC_NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(ranking_metrics_per_user, m)?)
}
