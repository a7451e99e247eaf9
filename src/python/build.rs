//! Bindings of the CSR builder (`src/sparse/build.rs`).

use super::convert::{slice, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::sparse::build;
use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;

fn slice_mut<'a, T: numpy::Element>(
    what: &str,
    a: &'a mut PyReadwriteArray1<'_, T>,
) -> Result<&'a mut [T], Error> {
    a.as_slice_mut()
        .map_err(|_| Error::invalid(what, "must be a contiguous array"))
}

/// Writes rows of codes into their CSR rows' next free slots (see `sparse::build::scatter`).
#[pyfunction]
#[pyo3(signature = (rows, cols, weights, row_rank, col_rank, first_row, next, indices, data))]
#[allow(clippy::too_many_arguments)]
fn csr_scatter<'py>(
    py: Python<'py>,
    rows: PyReadonlyArray1<'py, i32>,
    cols: PyReadonlyArray1<'py, i32>,
    weights: Option<PyReadonlyArray1<'py, f32>>,
    row_rank: PyReadonlyArray1<'py, i32>,
    col_rank: PyReadonlyArray1<'py, i32>,
    first_row: usize,
    mut next: PyReadwriteArray1<'py, i64>,
    mut indices: PyReadwriteArray1<'py, i32>,
    mut data: PyReadwriteArray1<'py, f32>,
) -> PyResult<()> {
    let (r, c) = (slice("rows", &rows)?, slice("cols", &cols)?);
    let w = weights.as_ref().map(|w| slice("weights", w)).transpose()?;
    let (rr, cr) = (slice("row_rank", &row_rank)?, slice("col_rank", &col_rank)?);
    let next = slice_mut("next", &mut next)?;
    let indices = slice_mut("indices", &mut indices)?;
    let data = slice_mut("data", &mut data)?;
    py.detach(|| build::scatter(r, c, w, rr, cr, first_row, next, indices, data))?;
    Ok(())
}

/// Sorts each row by column and sums repeated pairs in place; returns the entries left.
#[pyfunction]
fn csr_sort_rows_sum_duplicates<'py>(
    py: Python<'py>,
    mut indptr: PyReadwriteArray1<'py, i64>,
    mut indices: PyReadwriteArray1<'py, i32>,
    mut data: PyReadwriteArray1<'py, f32>,
    num_threads: usize,
) -> PyResult<usize> {
    let indptr = slice_mut("indptr", &mut indptr)?;
    let indices = slice_mut("indices", &mut indices)?;
    let data = slice_mut("data", &mut data)?;
    interrupt::run(py, num_threads, interrupt::LONG, || {
        build::sort_rows_sum_duplicates(indptr, indices, data, num_threads)
    })
}

/// Checks the structure of a CSR matrix given as arrays (`indptr` from 0 to the entries, never
/// decreasing; every index in range and increasing within its row, or never decreasing with
/// `repeats`): an error naming `what`.
#[pyfunction]
#[pyo3(signature = (m, what, repeats=false))]
fn csr_check(m: PyCsr<'_>, what: &str, repeats: bool) -> PyResult<()> {
    if repeats {
        m.view_with_repeats(what)?;
    } else {
        m.view(what)?;
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(csr_check, m)?)?;
    m.add_function(wrap_pyfunction!(csr_scatter, m)?)?;
    m.add_function(wrap_pyfunction!(csr_sort_rows_sum_duplicates, m)?)
}
