//! Bindings of the BPR kernels.

use super::convert::{mat, mat_mut, slice, to_numpy2, Kwargs, Named, PyCsr};
use super::interrupt;
use crate::models::bpr::{epoch, fold_in, BprParams, Sampling};
use crate::models::sgd::FoldInNegatives;
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The hyper-parameters shared by training and folding in, from keyword arguments named as
/// the estimator's: `learning_rate`, `regularization`, `verify_negative_samples`,
/// `max_redraws`, `negative_sampling`.
fn params(kw: &Kwargs<'_>) -> PyResult<BprParams> {
    Ok(BprParams {
        learning_rate: kw.take("learning_rate")?,
        regularization: kw.take("regularization")?,
        verify_negative_samples: kw.take("verify_negative_samples")?,
        max_redraws: kw.take("max_redraws")?,
        sampling: kw.take::<Named<Sampling>>("negative_sampling")?.0,
        ..BprParams::default()
    })
}

/// One epoch over `c` (users x items), updating `x` and `y` in place. The hyper-parameters
/// come as keyword arguments named as the estimator's: those of `params` plus `use_weights`
/// and `deterministic`. Returns `(samples, correct, skipped, redrawn)`.
#[pyfunction]
#[pyo3(signature = (c, x, y, seed, num_threads, **hyper_parameters))]
fn bpr_epoch<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    mut y: PyReadwriteArray2<'py, f32>,
    seed: u64,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<(u64, u64, u64, u64)> {
    let kw = Kwargs::new(py, hyper_parameters);
    let p = BprParams {
        use_weights: kw.take("use_weights")?,
        deterministic: kw.take("deterministic")?,
        ..params(&kw)?
    };
    kw.finish()?;
    let m = c.view("user_items")?;
    let x = mat_mut("user_factors", &mut x)?;
    let y = mat_mut("item_factors", &mut y)?;
    x.same_cols(&y)?;
    let s = interrupt::run(py, num_threads, interrupt::LONG, || {
        epoch(&m, x.data, y.data, x.cols, &p, seed, num_threads)
    })?;
    Ok((s.samples, s.correct, s.skipped, s.redrawn))
}

/// The folded-in factors of the rows of `c` (one per id in `ids`) against the fixed `y`, with
/// negatives drawn by `popularity` (None: uniformly) for `epochs` epochs; the hyper-parameters
/// as `bpr_epoch`'s, less `use_weights` and `deterministic`.
#[pyfunction]
#[pyo3(signature = (c, ids, y, popularity, epochs, seed, num_threads, **hyper_parameters))]
#[allow(clippy::too_many_arguments)]
fn bpr_fold_in<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    ids: PyReadonlyArray1<'py, u64>,
    y: PyReadonlyArray2<'py, f32>,
    popularity: Option<PyReadonlyArray1<'py, f32>>,
    epochs: usize,
    seed: u64,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let kw = Kwargs::new(py, hyper_parameters);
    let p = params(&kw)?;
    kw.finish()?;
    let m = c.view("user_items")?;
    let ids = slice("userids", &ids)?;
    let y = mat("item_factors", &y)?;
    let pop = popularity
        .as_ref()
        .map(|a| slice("popularity", a))
        .transpose()?;
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
