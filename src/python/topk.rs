//! Bindings of the batched top-k kernels, and the tail every recommend binding shares.

use super::convert::{candidates, ids_scores, IdsScores, PyCsr};
use super::interrupt;
use crate::sparse::CsrView;
use crate::topk::{recommend_batch, recommend_dot, BlockScorer, Candidates, DotParams, FirstPass};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// The top `k` candidates of every query of `scorer`, skipping `liked` (one row per query), run
/// with the GIL released (interruptible when `work`, the call's elementary steps, makes it
/// long; see [`interrupt::run`]) and returned as NumPy `(ids, scores)`.
pub(super) fn top_k<'py>(
    py: Python<'py>,
    scorer: &impl BlockScorer,
    cands: &Candidates,
    liked: Option<&CsrView<'_>>,
    k: usize,
    work: usize,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let res = interrupt::run(py, num_threads, work, || {
        recommend_batch(scorer, cands, liked, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

/// Top-`k` items by dot product of each row of `queries` with `item_factors`, skipping `liked`
/// (CSR, one row per query), `filter_items`, and anything outside `items`; with `cosine`, each
/// item's scores divided by its row's norm. Returns `(ids, scores)` of shape
/// `(n_queries, min(k, candidates))`, padded with -1 / -inf.
#[pyfunction]
#[pyo3(signature = (queries, item_factors, k, liked, items, filter_items, num_threads, cosine=false))]
#[allow(clippy::too_many_arguments)]
fn topk_dot<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    item_factors: PyReadonlyArray2<'py, f32>,
    k: usize,
    liked: Option<PyCsr<'py>>,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
    cosine: bool,
) -> PyResult<IdsScores<'py>> {
    let (q, it) = (queries.as_array(), item_factors.as_array());
    let cands = candidates(it.nrows(), &items, &filter_items)?;
    let liked = liked.as_ref().map(|m| m.view("user_items")).transpose()?;
    let work = q
        .nrows()
        .saturating_mul(it.nrows())
        .saturating_mul(it.ncols());
    // TACITREC_EXACT_TOPK=full turns the int8 first pass off, =always runs it from the smallest
    // batch it applies to, =no-tiles as well but off AMX tiles (identical results; for tests and
    // benchmarks of the full f32 path and of the kernels)
    let params = DotParams {
        first_pass: match std::env::var("TACITREC_EXACT_TOPK").as_deref() {
            Ok("full") => FirstPass::Off,
            Ok("always") => FirstPass::Always,
            Ok("no-tiles") => FirstPass::NoTiles,
            _ => FirstPass::Auto,
        },
        cosine,
    };
    let res = interrupt::run(py, num_threads, work, || {
        recommend_dot(q, it, &cands, liked.as_ref(), k, num_threads, params)
    })?;
    Ok(ids_scores(py, res)?)
}

/// [`crate::linalg::fingerprint`] of a factor matrix's values (C-contiguous float32), computed
/// with the GIL released: what the caches of values derived from the factors compare.
#[pyfunction]
fn factors_fingerprint(py: Python<'_>, factors: PyReadonlyArray2<'_, f32>) -> PyResult<u64> {
    let values = factors
        .as_slice()
        .map_err(|_| crate::Error::invalid("factors", "must be C-contiguous"))?;
    Ok(py.detach(|| crate::linalg::fingerprint(values)))
}

/// A copy of a 1-D float32, int32 or int64 array in memory Rust owns: NumPy refuses to make such
/// an array writeable once it is read-only, which is what lets a model trust arrays validated
/// once (`tacitrec._validation.ValidatedOnce`).
#[pyfunction]
fn owned_copy<'py>(py: Python<'py>, a: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    fn copy<'py, T: numpy::Element + Copy>(
        py: Python<'py>,
        a: &PyReadonlyArray1<'py, T>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(a.as_array().to_vec().into_pyarray(py).into_any())
    }
    if let Ok(x) = a.extract::<PyReadonlyArray1<'py, f32>>() {
        return copy(py, &x);
    }
    if let Ok(x) = a.extract::<PyReadonlyArray1<'py, i32>>() {
        return copy(py, &x);
    }
    if let Ok(x) = a.extract::<PyReadonlyArray1<'py, i64>>() {
        return copy(py, &x);
    }
    Err(crate::Error::invalid("array", "must be a 1-D float32, int32 or int64 array").into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(topk_dot, m)?)?;
    m.add_function(wrap_pyfunction!(factors_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(owned_copy, m)?)
}
