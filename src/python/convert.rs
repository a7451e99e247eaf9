//! Borrowing NumPy arrays as validated Rust views, and returning Rust-owned arrays.

use crate::error::{Error, Result};
use crate::sparse::CsrView;
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
