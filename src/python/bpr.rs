//! Bindings of the BPR kernels.

use super::convert::{mat, mat_mut, slice, to_numpy2, Named, PyCsr};
use super::interrupt;
use crate::models::bpr::{epoch, fold_in, BprParams, Sampling};
use crate::models::sgd::FoldInNegatives;
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

/// One epoch over `c` (users x items), updating `x` and `y` in place. Returns
/// `(samples, correct, skipped, redrawn)`.
#[pyfunction]
#[pyo3(signature = (c, x, y, learning_rate, regularization, verify_negative_samples, max_redraws,
                    negative_sampling, use_weights, deterministic, seed, num_threads))]
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
    negative_sampling: Named<Sampling>,
    use_weights: bool,
    deterministic: bool,
    seed: u64,
    num_threads: usize,
) -> PyResult<(u64, u64, u64, u64)> {
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat_mut("item_factors", &mut y)?;
    x.same_cols(&y)?;
    let p = BprParams {
        learning_rate,
        regularization,
        verify_negative_samples,
        max_redraws,
        sampling: negative_sampling.0,
        use_weights,
        deterministic,
    };
    let s = interrupt::run(py, num_threads, interrupt::LONG, || {
        epoch(&m, x.data, y.data, x.cols, &p, seed, num_threads)
    })?;
    Ok((s.samples, s.correct, s.skipped, s.redrawn))
}

/// The folded-in factors of the rows of `c` (one per id in `ids`) against the fixed `y`.
#[pyfunction]
#[pyo3(signature = (c, ids, y, learning_rate, regularization, verify_negative_samples,
                    max_redraws, negative_sampling, popularity, epochs, seed, num_threads))]
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
    negative_sampling: Named<Sampling>,
    popularity: Option<PyReadonlyArray1<'py, f32>>,
    epochs: usize,
    seed: u64,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let m = c.view("user_items")?;
    let ids = slice("userids", &ids)?;
    let y = mat("item_factors", &y)?;
    let pop = popularity
        .as_ref()
        .map(|a| slice("popularity", a))
        .transpose()?;
    let p = BprParams {
        learning_rate,
        regularization,
        verify_negative_samples,
        max_redraws,
        sampling: negative_sampling.0,
        ..BprParams::default()
    };
    let (n_items, d) = (y.rows, y.cols);
    let work = m.nnz().saturating_mul(epochs).saturating_mul(d);
    let out = interrupt::run(py, num_threads, work, || {
        let uniform = p.sampling == Sampling::Uniform;
        let neg = FoldInNegatives::new(pop, n_items, uniform)?;
        fold_in(
            &m,
            ids,
            y.data,
            d,
            &p,
            &neg.view(),
            epochs,
            seed,
            num_threads,
        )
    })?;
    Ok(to_numpy2(py, out, ids.len(), d)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bpr_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(bpr_fold_in, m)?)
}
