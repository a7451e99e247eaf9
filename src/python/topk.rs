//! Bindings of the batched top-k kernels.

use super::convert::{csr, slice, to_numpy2, PyCsr};
use crate::topk::{recommend_batch, Candidates, DotScorer};
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

type IdsScores<'py> = (Bound<'py, PyArray2<i32>>, Bound<'py, PyArray2<f32>>);

/// Top-`k` items by dot product of each row of `queries` with `item_factors`, skipping `liked`
/// (CSR, one row per query), `filter_items`, and anything outside `items`. Returns `(ids, scores)`
/// of shape `(n_queries, min(k, candidates))`, padded with -1 / -inf.
#[pyfunction]
#[pyo3(signature = (queries, item_factors, k, liked=None, items=None, filter_items=None, num_threads=0))]
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
) -> PyResult<IdsScores<'py>> {
    let (q, it) = (queries.as_array(), item_factors.as_array());
    let items = items.as_ref().map(|a| slice("items", a)).transpose()?;
    let filter = filter_items
        .as_ref()
        .map(|a| slice("filter_items", a))
        .transpose()?;
    let cands = Candidates::new(it.nrows(), items, filter)?;
    let liked = liked
        .as_ref()
        .map(|m| csr("user_items", m, q.nrows(), it.nrows()))
        .transpose()?;
    let scorer = DotScorer::new(q, it, &cands)?;
    let res = py.detach(|| recommend_batch(&scorer, &cands, liked.as_ref(), k, num_threads))?;
    Ok((
        to_numpy2(py, res.ids, res.n_queries, res.k)?,
        to_numpy2(py, res.scores, res.n_queries, res.k)?,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(topk_dot, m)?)
}
