//! Borrowing NumPy arrays as validated Rust views, parsing named options, and returning
//! Rust-owned arrays.

use crate::error::{Error, Result};
use crate::sparse::{Csr, CsrView};
use crate::topk::{Candidates, TopKResult};
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyDict;

/// A CSR matrix as passed from Python: `(indptr int64, indices int32, data float32,
/// (n_rows, n_cols))`, the package's `Csr` named tuple (or any tuple of that form).
#[derive(FromPyObject)]
pub struct PyCsr<'py>(
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i32>,
    PyReadonlyArray1<'py, f32>,
    (usize, usize),
);

impl PyCsr<'_> {
    /// The matrix as a validated view of its own shape, named `what` in errors.
    pub fn view(&self, what: &str) -> Result<CsrView<'_>> {
        let (n_rows, n_cols, indptr, indices, data) = self.arrays(what)?;
        CsrView::new(what, n_rows, n_cols, indptr, indices, data)
    }

    /// [`PyCsr::view`] allowing a column more than once in a row ([`CsrView::with_repeats`]).
    pub fn view_with_repeats(&self, what: &str) -> Result<CsrView<'_>> {
        let (n_rows, n_cols, indptr, indices, data) = self.arrays(what)?;
        CsrView::with_repeats(what, n_rows, n_cols, indptr, indices, data)
    }

    /// [`PyCsr::view`], without the pass over the structure when `validated`
    /// ([`CsrView::new_validated`]).
    ///
    /// # Safety
    /// With `validated`, as [`CsrView::new_validated`]: the Python caller passes it only for a
    /// model's own arrays, read-only since a call validated them.
    pub unsafe fn view_trusting(&self, what: &str, validated: bool) -> Result<CsrView<'_>> {
        if !validated {
            return self.view(what);
        }
        let (n_rows, n_cols, indptr, indices, data) = self.arrays(what)?;
        CsrView::new_validated(what, n_rows, n_cols, indptr, indices, data)
    }

    /// The shape and the contiguous arrays, named after `what` in errors.
    #[allow(clippy::type_complexity)]
    fn arrays(&self, what: &str) -> Result<(usize, usize, &[i64], &[i32], &[f32])> {
        let (n_rows, n_cols) = self.3;
        Ok((
            n_rows,
            n_cols,
            slice(&format!("{what}.indptr"), &self.0)?,
            slice(&format!("{what}.indices"), &self.1)?,
            slice(&format!("{what}.data"), &self.2)?,
        ))
    }
}

/// The contiguous data of a 1-D array, or an error naming it.
pub fn slice<'a, T: numpy::Element>(what: &str, a: &'a PyReadonlyArray1<'_, T>) -> Result<&'a [T]> {
    a.as_slice()
        .map_err(|_| Error::invalid(what, "must be a contiguous array"))
}

/// A row-major matrix: `rows x cols` values in `data`, called `name` in errors.
pub struct Mat<S> {
    pub name: &'static str,
    pub data: S,
    pub rows: usize,
    pub cols: usize,
}

impl<S> Mat<S> {
    /// Errors unless `other` has as many columns as this matrix (the factor matrices of one
    /// model share their width).
    pub fn same_cols<O>(&self, other: &Mat<O>) -> Result<()> {
        if other.cols == self.cols {
            Ok(())
        } else {
            Err(Error::shape(
                &format!(
                    "{} columns (must equal the {} columns)",
                    other.name, self.name
                ),
                self.cols,
                other.cols,
            ))
        }
    }
}

fn c_contiguous(name: &str, a: &PyReadonlyArray2<'_, impl numpy::Element>) -> Result<()> {
    if a.is_c_contiguous() {
        Ok(())
    } else {
        Err(Error::invalid(name, "must be C-contiguous"))
    }
}

/// The values of a C-contiguous 2-D array with its shape, or an error naming it.
pub fn mat<'a, T: numpy::Element>(
    name: &'static str,
    a: &'a PyReadonlyArray2<'_, T>,
) -> Result<Mat<&'a [T]>> {
    c_contiguous(name, a)?;
    let (rows, cols) = a.as_array().dim();
    let data = a
        .as_slice()
        .map_err(|_| Error::invalid(name, "must be C-contiguous"))?;
    Ok(Mat {
        name,
        data,
        rows,
        cols,
    })
}

/// The values of a C-contiguous 2-D array, writable, with its shape, or an error naming it.
pub fn mat_mut<'a, T: numpy::Element>(
    name: &'static str,
    a: &'a mut PyReadwriteArray2<'_, T>,
) -> Result<Mat<&'a mut [T]>> {
    c_contiguous(name, a)?;
    let (rows, cols) = a.as_array().dim();
    let data = a
        .as_slice_mut()
        .map_err(|_| Error::invalid(name, "must be C-contiguous"))?;
    Ok(Mat {
        name,
        data,
        rows,
        cols,
    })
}

/// A core enum selected by its name (`loss="warp"`), parsed once, here, by its `FromStr`
/// (errors name the argument and the allowed names).
pub struct Named<T>(pub T);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Named<T>
where
    T: std::str::FromStr<Err = Error>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name: PyBackedStr = obj.extract()?;
        Ok(Named(name.parse::<T>()?))
    }
}

/// Keyword arguments (a binding's `**kwargs`) taken one by one: a missing one, or one that no
/// binding asked for, is a `TypeError` naming it, as for a Python function's own arguments.
pub struct Kwargs<'py>(Bound<'py, PyDict>);

impl<'py> Kwargs<'py> {
    pub fn new(py: Python<'py>, kwargs: Option<&Bound<'py, PyDict>>) -> Self {
        // `**kwargs` is a fresh dict for every call: taking items out of it changes nothing
        // the caller holds
        Kwargs(kwargs.cloned().unwrap_or_else(|| PyDict::new(py)))
    }

    /// The argument `key`, extracted as `T`.
    pub fn take<T: FromPyObjectOwned<'py>>(&self, key: &str) -> PyResult<T> {
        let value = self
            .0
            .get_item(key)?
            .ok_or_else(|| PyTypeError::new_err(format!("missing keyword argument '{key}'")))?;
        self.0.del_item(key)?;
        value.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            // as PyO3 marks the failures of a function's own arguments
            let _ = e
                .value(self.0.py())
                .call_method1("add_note", (format!("while processing '{key}'"),));
            e
        })
    }

    /// Errors if an argument was not taken.
    pub fn finish(self) -> PyResult<()> {
        match self.0.keys().iter().next() {
            None => Ok(()),
            Some(key) => Err(PyTypeError::new_err(format!(
                "unexpected keyword argument '{key}'"
            ))),
        }
    }
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

/// A Rust-built CSR matrix as `(indptr, indices, data, (n_rows, n_cols))`, the form Python's
/// `Csr` is built from, its arrays owned by NumPy (no copy).
pub type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    (usize, usize),
);

/// `m` handed to NumPy.
pub fn csr_arrays(py: Python<'_>, m: Csr) -> CsrArrays<'_> {
    (
        PyArray1::from_vec(py, m.indptr),
        PyArray1::from_vec(py, m.indices),
        PyArray1::from_vec(py, m.data),
        (m.n_rows, m.n_cols),
    )
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
