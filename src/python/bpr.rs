//! Bindings of the BPR kernels.

use super::convert::{csr, slice, to_numpy2, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::bpr::{epoch, fold_in, BprParams, Sampling};
use crate::models::sgd::FoldInNegatives;
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

#[allow(clippy::too_many_arguments)]
fn params(
    learning_rate: f32,
    regularization: f32,
    verify_negative_samples: bool,
    max_redraws: usize,
    uniform: bool,
    use_weights: bool,
    deterministic: bool,
) -> BprParams {
    BprParams {
        learning_rate,
        regularization,
        verify_negative_samples,
        max_redraws,
        sampling: if uniform {
            Sampling::Uniform
        } else {
            Sampling::Popularity
        },
        use_weights,
        deterministic,
    }
}

/// One epoch over `c` (users x items), updating `x` and `y` in place. Returns
/// `(samples, correct, skipped, redrawn)`.
#[pyfunction]
#[pyo3(signature = (c, x, y, learning_rate, regularization, verify_negative_samples, max_redraws,
                    uniform, use_weights, deterministic, seed, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn bpr_epoch<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    mut y: PyReadwriteArray2<'py, f32>,
    learning_rate: f32,
    regularization: f32,
    verify_negative_samples: bool,
    max_redraws: usize,
    uniform: bool,
    use_weights: bool,
    deterministic: bool,
    seed: u64,
    num_threads: usize,
) -> PyResult<(u64, u64, u64, u64)> {
    let (rows, d) = x.as_array().dim();
    let n_items = y.as_array().nrows();
    let m = csr("user_items", &c, rows, n_items)?;
    let xs = x
        .as_slice_mut()
        .map_err(|_| Error::invalid("user_factors", "must be C-contiguous"))?;
    let ys = y
        .as_slice_mut()
        .map_err(|_| Error::invalid("item_factors", "must be C-contiguous"))?;
    let p = params(
        learning_rate,
        regularization,
        verify_negative_samples,
        max_redraws,
        uniform,
        use_weights,
        deterministic,
    );
    let s = interrupt::run(py, num_threads, interrupt::LONG, || {
        epoch(&m, xs, ys, d, &p, seed, num_threads)
    })?;
    Ok((s.samples, s.correct, s.skipped, s.redrawn))
}

/// The folded-in factors of the rows of `c` (one per id in `ids`) against the fixed `y`.
#[pyfunction]
#[pyo3(signature = (c, ids, y, learning_rate, regularization, verify_negative_samples,
                    max_redraws, uniform, popularity, epochs, seed, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn bpr_fold_in<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    ids: PyReadonlyArray1<'py, u64>,
    y: PyReadonlyArray2<'py, f32>,
    learning_rate: f32,
    regularization: f32,
    verify_negative_samples: bool,
    max_redraws: usize,
    uniform: bool,
    popularity: Option<PyReadonlyArray1<'py, f32>>,
    epochs: usize,
    seed: u64,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let yv = y.as_array();
    let (n_items, d) = yv.dim();
    let ids = slice("userids", &ids)?;
    let m = csr("user_items", &c, ids.len(), n_items)?;
    let ys = yv
        .to_slice()
        .ok_or_else(|| Error::invalid("item_factors", "must be C-contiguous"))?;
    let pop = popularity
        .as_ref()
        .map(|a| slice("popularity", a))
        .transpose()?;
    let p = params(
        learning_rate,
        regularization,
        verify_negative_samples,
        max_redraws,
        uniform,
        false,
        true,
    );
    let work = m.nnz().saturating_mul(epochs).saturating_mul(d);
    let out = interrupt::run(py, num_threads, work, || {
        let neg = FoldInNegatives::new(pop, n_items, uniform)?;
        fold_in(&m, ids, ys, d, &p, &neg.view(), epochs, seed, num_threads)
    })?;
    Ok(to_numpy2(py, out, ids.len(), d)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bpr_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(bpr_fold_in, m)?)
}
