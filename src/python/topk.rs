//! Bindings of the batched top-k kernels.

use super::convert::{candidates, csr, ids_scores, IdsScores, PyCsr};
use super::interrupt;
use crate::topk::{recommend_batch, DotScorer};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

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
    let cands = candidates(it.nrows(), &items, &filter_items)?;
    let liked = liked
        .as_ref()
        .map(|m| csr("user_items", m, q.nrows(), it.nrows()))
        .transpose()?;
    let scorer = DotScorer::new(q, it, &cands)?;
    let work = q
        .nrows()
        .saturating_mul(it.nrows())
        .saturating_mul(it.ncols());
    let res = interrupt::run(py, num_threads, work, || {
        recommend_batch(&scorer, &cands, liked.as_ref(), k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(topk_dot, m)?)
}
