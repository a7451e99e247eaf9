//! Borrowing NumPy arrays as validated Rust views, and returning Rust-owned arrays.

use crate::error::{Error, Result};
use crate::sparse::CsrView;
use crate::topk::{Candidates, TopKResult};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

/// A CSR matrix as passed from Python: `(indptr int64, indices int32, data float32)`.
pub type PyCsr<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i32>,
    PyReadonlyArray1<'py, f32>,
);

/// The contiguous data of a 1-D array, or an error naming it.
pub fn slice<'a, T: numpy::Element>(what: &str, a: &'a PyReadonlyArray1<'_, T>) -> Result<&'a [T]> {
    a.as_slice()
        .map_err(|_| Error::invalid(what, "must be a contiguous array"))
}

/// Validates the CSR triple `m` as an `n_rows x n_cols` matrix.
pub fn csr<'a>(what: &str, m: &'a PyCsr<'_>, n_rows: usize, n_cols: usize) -> Result<CsrView<'a>> {
    CsrView::new(
        what,
        n_rows,
        n_cols,
        slice(&format!("{what}.indptr"), &m.0)?,
        slice(&format!("{what}.indices"), &m.1)?,
        slice(&format!("{what}.data"), &m.2)?,
    )
}

/// A row-major `rows x cols` NumPy array that takes ownership of `v` (no copy).
pub fn to_numpy2<T: numpy::Element>(
    py: Python<'_>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> Result<Bound<'_, PyArray2<T>>> {
    let a = Array2::from_shape_vec((rows, cols), v)
        .map_err(|e| Error::invalid("result", e.to_string()))?;
    Ok(a.into_pyarray(py))
}

/// `(ids, scores)` as returned by every top-k binding.
pub type IdsScores<'py> = (Bound<'py, PyArray2<i32>>, Bound<'py, PyArray2<f32>>);

/// The candidate set of `n_items` items from the optional `items` and `filter_items` arrays.
pub fn candidates(
    n_items: usize,
    items: &Option<PyReadonlyArray1<'_, i32>>,
    filter_items: &Option<PyReadonlyArray1<'_, i32>>,
) -> Result<Candidates> {
    let items = items.as_ref().map(|a| slice("items", a)).transpose()?;
    let filter = filter_items
        .as_ref()
        .map(|a| slice("filter_items", a))
        .transpose()?;
    Candidates::new(n_items, items, filter)
}

/// A top-k result as two `(n_queries, k)` NumPy arrays that own the Rust buffers.
pub fn ids_scores(py: Python<'_>, res: TopKResult) -> Result<IdsScores<'_>> {
    Ok((
        to_numpy2(py, res.ids, res.n_queries, res.k)?,
        to_numpy2(py, res.scores, res.n_queries, res.k)?,
    ))
}
