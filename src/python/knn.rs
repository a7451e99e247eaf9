//! Bindings of the item-item kNN and RP3beta kernels and the weighting functions.

use super::convert::{
    candidates, csr_arrays, ids_scores, slice, CsrArrays, IdsScores, Named, PyCsr,
};
use super::interrupt;
use super::topk::top_k;
use crate::error::Result;
use crate::models::knn::{
    self, item_knn, rp3beta_knn, KnnParams, KnnScorer, Rp3BetaParams, Similarity,
};
use crate::sparse::weighting::{self, Documents, Weighting};
use crate::sparse::{Csr, CsrView};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

/// The shared body of the item x item fits: `kernel` on `user_items` (users x items) with the
/// GIL released and interruptible, its result handed to NumPy.
fn fit<'py>(
    py: Python<'py>,
    user_items: &PyCsr<'_>,
    num_threads: usize,
    kernel: impl FnOnce(&CsrView<'_>) -> Result<Csr> + Send,
) -> PyResult<CsrArrays<'py>> {
    let m = user_items.view("user_items")?;
    let s = interrupt::run(py, num_threads, interrupt::LONG, || kernel(&m))?;
    Ok(csr_arrays(py, s))
}

/// The top-`k` item x item `similarity` of `user_items` (`k1` and `b` are BM25's).
#[pyfunction]
#[pyo3(signature = (user_items, k, similarity, k1, b, num_threads))]
fn knn_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    k: usize,
    similarity: Named<Similarity>,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> PyResult<CsrArrays<'py>> {
    let mut similarity = similarity.0;
    if let Similarity::Bm25 {
        k1: bm25_k1,
        b: bm25_b,
    } = &mut similarity
    {
        (*bm25_k1, *bm25_b) = (k1, b);
    }
    let params = KnnParams { k, similarity };
    fit(py, &user_items, num_threads, |m| {
        item_knn(m, &params, num_threads)
    })
}

/// The bytes [`knn_fit`] holds at least besides its input and result
/// ([`knn::fit_memory_at_least`]).
#[pyfunction]
fn knn_fit_memory(
    nnz: usize,
    n_items: usize,
    similarity: Named<Similarity>,
    num_threads: usize,
) -> u128 {
    knn::fit_memory_at_least(nnz, n_items, similarity.0, num_threads)
}

/// The bytes [`rp3beta_fit`] holds at least besides its input and result
/// ([`knn::rp3beta_memory_at_least`]).
#[pyfunction]
fn rp3beta_fit_memory(nnz: usize, n_users: usize, n_items: usize, num_threads: usize) -> u128 {
    knn::rp3beta_memory_at_least(nnz, n_users, n_items, num_threads)
}

/// RP3beta's top-`k` item x item weights of `user_items`.
#[pyfunction]
#[pyo3(signature = (user_items, k, alpha, beta, normalize, num_threads))]
fn rp3beta_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    k: usize,
    alpha: f64,
    beta: f64,
    normalize: bool,
    num_threads: usize,
) -> PyResult<CsrArrays<'py>> {
    let params = Rp3BetaParams {
        k,
        alpha,
        beta,
        normalize,
    };
    fit(py, &user_items, num_threads, |m| {
        rp3beta_knn(m, &params, num_threads)
    })
}

/// Recommendations from `similarity` (items x items) for the rows of `user_items` (one per
/// query).
#[pyfunction]
#[pyo3(signature = (user_items, similarity, k, filter_liked, items, filter_items, num_threads, similarity_validated = false))]
#[allow(clippy::too_many_arguments)]
fn knn_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    similarity: PyCsr<'py>,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
    similarity_validated: bool,
) -> PyResult<IdsScores<'py>> {
    // SAFETY: the Python layer passes `similarity_validated` only for a model's own read-only
    // similarity that a call has validated (tacitrec.knn).
    let sim = unsafe { similarity.view_trusting("similarity", similarity_validated)? };
    let queries = user_items.view("user_items")?;
    let cands = candidates(sim.n_cols(), &items, &filter_items)?;
    let work = queries.n_rows().saturating_mul(sim.n_cols());
    let liked = filter_liked.then_some(&queries);
    if cands.subset().is_none() {
        let res = interrupt::run(py, num_threads, work, || {
            knn::recommend(&queries, &sim, &cands, liked, k, num_threads)
        })?;
        return Ok(ids_scores(py, res)?);
    }
    let scorer = KnnScorer::recommend(queries, sim, &cands)?;
    top_k(py, &scorer, &cands, liked, k, work, num_threads)
}

/// The best `k` stored neighbours of each item in `itemids` (padded where a row holds fewer).
#[pyfunction]
#[pyo3(signature = (itemids, similarity, k, items, filter_items, num_threads, similarity_validated = false))]
#[allow(clippy::too_many_arguments)]
fn knn_similar_items<'py>(
    py: Python<'py>,
    itemids: PyReadonlyArray1<'py, i32>,
    similarity: PyCsr<'py>,
    k: usize,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
    similarity_validated: bool,
) -> PyResult<IdsScores<'py>> {
    // SAFETY: as in knn_recommend.
    let sim = unsafe { similarity.view_trusting("similarity", similarity_validated)? };
    let ids = slice("itemid", &itemids)?;
    let cands = candidates(sim.n_cols(), &items, &filter_items)?;
    let work = ids
        .len()
        .saturating_mul(sim.nnz() / sim.n_rows().max(1) + 1);
    let res = interrupt::run(py, num_threads, work, || {
        knn::neighbours(ids, &sim, &cands, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

/// New values for the entries of `m` under `scheme` ("bm25" with `k1` and `b`, "tfidf",
/// "normalize"), with the documents along `docs` ("rows" or "columns").
#[pyfunction]
#[pyo3(signature = (m, scheme, docs, k1, b, num_threads))]
fn weight<'py>(
    py: Python<'py>,
    m: PyCsr<'py>,
    scheme: Named<Weighting>,
    docs: Named<Documents>,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let v = m.view("X")?;
    let mut scheme = scheme.0;
    if let Weighting::Bm25 {
        k1: bm25_k1,
        b: bm25_b,
    } = &mut scheme
    {
        (*bm25_k1, *bm25_b) = (k1, b);
    }
    let out = interrupt::run(py, num_threads, v.nnz(), || {
        weighting::weight(&v, scheme, docs.0, num_threads)
    })?;
    Ok(PyArray1::from_vec(py, out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn_fit, m)?)?;
    m.add_function(wrap_pyfunction!(knn_fit_memory, m)?)?;
    m.add_function(wrap_pyfunction!(rp3beta_fit_memory, m)?)?;
    m.add_function(wrap_pyfunction!(rp3beta_fit, m)?)?;
    m.add_function(wrap_pyfunction!(knn_recommend, m)?)?;
    m.add_function(wrap_pyfunction!(knn_similar_items, m)?)?;
    m.add_function(wrap_pyfunction!(weight, m)?)
}
