//! Bindings of the item-item kNN kernels and the weighting functions.

use super::convert::{candidates, csr, ids_scores, slice, IdsScores, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::knn::{item_knn, rp3beta_knn, KnnParams, KnnScorer, Rp3BetaParams, Similarity};
use crate::sparse::weighting::{self, Documents};
use crate::topk::recommend_batch;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
);

fn similarity_kind(name: &str, k1: f64, b: f64) -> Result<Similarity, Error> {
    Ok(match name {
        "dot" => Similarity::Dot,
        "cosine" => Similarity::Cosine,
        "tfidf" => Similarity::TfIdf,
        "bm25" => Similarity::Bm25 { k1, b },
        "pearson" => Similarity::Pearson,
        other => {
            return Err(Error::invalid(
                "similarity",
                format!("unknown kind {other:?}"),
            ))
        }
    })
}

/// The top-`k` item x item similarity of `user_items` (`n_users x n_items`) as CSR arrays.
#[pyfunction]
#[pyo3(signature = (user_items, n_users, n_items, k, similarity, k1=1.2, b=0.75, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn knn_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_users: usize,
    n_items: usize,
    k: usize,
    similarity: &str,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> PyResult<CsrArrays<'py>> {
    let m = csr("user_items", &user_items, n_users, n_items)?;
    let params = KnnParams {
        k,
        similarity: similarity_kind(similarity, k1, b)?,
    };
    let s = interrupt::run(py, num_threads, interrupt::LONG, || {
        item_knn(&m, &params, num_threads)
    })?;
    Ok((
        PyArray1::from_vec(py, s.indptr),
        PyArray1::from_vec(py, s.indices),
        PyArray1::from_vec(py, s.data),
    ))
}

/// RP3beta's top-`k` item x item weights of `user_items` (`n_users x n_items`) as CSR arrays.
#[pyfunction]
#[pyo3(signature = (user_items, n_users, n_items, k, alpha, beta, normalize, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn rp3beta_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_users: usize,
    n_items: usize,
    k: usize,
    alpha: f64,
    beta: f64,
    normalize: bool,
    num_threads: usize,
) -> PyResult<CsrArrays<'py>> {
    let m = csr("user_items", &user_items, n_users, n_items)?;
    let params = Rp3BetaParams {
        k,
        alpha,
        beta,
        normalize,
    };
    let s = interrupt::run(py, num_threads, interrupt::LONG, || {
        rp3beta_knn(&m, &params, num_threads)
    })?;
    Ok((
        PyArray1::from_vec(py, s.indptr),
        PyArray1::from_vec(py, s.indices),
        PyArray1::from_vec(py, s.data),
    ))
}

/// Recommendations from `similarity` for the rows of `user_items` (one per query).
#[pyfunction]
#[pyo3(signature = (user_items, n_queries, similarity, n_items, k, filter_liked=true, items=None, filter_items=None, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn knn_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_queries: usize,
    similarity: PyCsr<'py>,
    n_items: usize,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let sim = csr("similarity", &similarity, n_items, n_items)?;
    let queries = csr("user_items", &user_items, n_queries, n_items)?;
    let cands = candidates(n_items, &items, &filter_items)?;
    let scorer = KnnScorer::recommend(queries, sim, &cands)?;
    let liked = filter_liked.then_some(&queries);
    let work = n_queries.saturating_mul(n_items);
    let res = interrupt::run(py, num_threads, work, || {
        recommend_batch(&scorer, &cands, liked, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

/// The best `k` stored neighbours of each item in `itemids` (padded where a row holds fewer).
#[pyfunction]
#[pyo3(signature = (itemids, similarity, n_items, k, items=None, filter_items=None, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn knn_similar_items<'py>(
    py: Python<'py>,
    itemids: PyReadonlyArray1<'py, i32>,
    similarity: PyCsr<'py>,
    n_items: usize,
    k: usize,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let sim = csr("similarity", &similarity, n_items, n_items)?;
    let ids = slice("itemid", &itemids)?;
    let cands = candidates(n_items, &items, &filter_items)?;
    let scorer = KnnScorer::neighbours(ids, sim, &cands)?;
    let work = ids.len().saturating_mul(n_items);
    let res = interrupt::run(py, num_threads, work, || {
        recommend_batch(&scorer, &cands, None, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

/// New values for the entries of `m` under `scheme` ("bm25", "tfidf", "normalize"), with the
/// documents along `docs` ("rows" or "columns").
#[pyfunction]
#[pyo3(signature = (m, n_rows, n_cols, scheme, docs="rows", k1=100.0, b=0.8, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn weight<'py>(
    py: Python<'py>,
    m: PyCsr<'py>,
    n_rows: usize,
    n_cols: usize,
    scheme: &str,
    docs: &str,
    k1: f64,
    b: f64,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let v = csr("X", &m, n_rows, n_cols)?;
    let docs = match docs {
        "rows" => Documents::Rows,
        "columns" => Documents::Columns,
        other => return Err(Error::invalid("docs", format!("unknown axis {other:?}")).into()),
    };
    let out = interrupt::run(py, num_threads, v.nnz(), || match scheme {
        "bm25" => weighting::bm25(&v, docs, k1, b, num_threads),
        "tfidf" => weighting::tfidf(&v, docs, num_threads),
        "normalize" => weighting::normalize(&v, docs, num_threads),
        other => Err(Error::invalid(
            "scheme",
            format!("unknown weighting {other:?}"),
        )),
    })?;
    Ok(PyArray1::from_vec(py, out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn_fit, m)?)?;
    m.add_function(wrap_pyfunction!(rp3beta_fit, m)?)?;
    m.add_function(wrap_pyfunction!(knn_recommend, m)?)?;
    m.add_function(wrap_pyfunction!(knn_similar_items, m)?)?;
    m.add_function(wrap_pyfunction!(weight, m)?)
}
