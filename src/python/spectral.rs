//! Bindings of the graph spectral filters (GF-CF, BSPM, ChebyCF).

use super::convert::{candidates, csr, ids_scores, slice, to_numpy2, IdsScores, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::linalg::svd::RandomizedSvdParams;
use crate::models::spectral::{spectral_fit as fit_graph, Filter, Ode, Solver, SpectralScorer};
use crate::topk::recommend_batch;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

type Arrays<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// The normalised graph's values, its transpose (indptr, indices, data), the `k` leading right
/// singular vectors (items x k) and the item degrees of `user_items`.
#[pyfunction]
#[pyo3(signature = (user_items, n_users, n_items, user_exponent, item_exponent, k, oversampling, iterations, seed, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn spectral_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_users: usize,
    n_items: usize,
    user_exponent: f64,
    item_exponent: f64,
    k: usize,
    oversampling: usize,
    iterations: usize,
    seed: u64,
    num_threads: usize,
) -> PyResult<Arrays<'py>> {
    let m = csr("user_items", &user_items, n_users, n_items)?;
    let params = RandomizedSvdParams {
        k,
        oversampling,
        iterations,
        seed,
    };
    let fit = interrupt::run(py, num_threads, interrupt::LONG, || {
        fit_graph(&m, user_exponent, item_exponent, &params, num_threads)
    })?;
    let (data, degree, t, v) = (fit.graph_data, fit.item_degree, fit.graph_t, fit.factors);
    Ok((
        PyArray1::from_vec(py, data),
        PyArray1::from_vec(py, t.indptr),
        PyArray1::from_vec(py, t.indices),
        PyArray1::from_vec(py, t.data),
        to_numpy2(py, v, n_items, k)?,
        PyArray1::from_vec(py, degree),
    ))
}

fn ode(what: &str, spec: (String, f64, usize)) -> Result<Ode, Error> {
    let solver = match spec.0.as_str() {
        "euler" => Solver::Euler,
        "rk4" => Solver::Rk4,
        other => {
            return Err(Error::invalid(
                what,
                format!("solver must be 'euler' or 'rk4', got {other:?}"),
            ))
        }
    };
    Ok(Ode {
        solver,
        time: spec.1,
        steps: spec.2,
    })
}

/// Recommendations of a spectral filter for the rows of `user_items` (one per query).
#[pyfunction]
#[pyo3(signature = (user_items, n_queries, graph, graph_t, n_users, n_items, factors, pre, post, method, ideal_weight, coeffs, blur, ideal, sharpen, final_sharpening, t_point_combination, k, filter_liked=true, items=None, filter_items=None, num_threads=0))]
#[allow(clippy::too_many_arguments)]
fn spectral_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    n_queries: usize,
    graph: PyCsr<'py>,
    graph_t: PyCsr<'py>,
    n_users: usize,
    n_items: usize,
    factors: PyReadonlyArray2<'py, f32>,
    pre: PyReadonlyArray1<'py, f32>,
    post: PyReadonlyArray1<'py, f32>,
    method: &str,
    ideal_weight: f32,
    coeffs: Vec<f32>,
    blur: (String, f64, usize),
    ideal: (String, f64, usize),
    sharpen: Option<(String, f64, usize)>,
    final_sharpening: bool,
    t_point_combination: bool,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
) -> PyResult<IdsScores<'py>> {
    let queries = csr("user_items", &user_items, n_queries, n_items)?;
    let g = csr("graph", &graph, n_users, n_items)?;
    let gt = csr("graph_t", &graph_t, n_items, n_users)?;
    let fv = factors.as_array();
    let fs = fv
        .to_slice()
        .ok_or_else(|| Error::invalid("factors", "must be C-contiguous"))?;
    let filter = match method {
        "gf-cf" => Filter::GfCf { ideal_weight },
        "bspm" => Filter::Bspm {
            ideal_weight,
            blur: ode("blur", blur)?,
            ideal: ode("ideal", ideal)?,
            sharpen: sharpen.map(|s| ode("sharpen", s)).transpose()?,
            final_sharpening,
            t_point_combination,
        },
        "chebycf" => Filter::ChebyCf {
            coeffs,
            ideal_weight,
        },
        other => return Err(Error::invalid("method", format!("unknown filter {other:?}")).into()),
    };
    let cands = candidates(n_items, &items, &filter_items)?;
    let scorer = SpectralScorer::new(
        queries,
        g,
        gt,
        fs,
        fv.ncols(),
        slice("pre", &pre)?,
        slice("post", &post)?,
        filter,
        &cands,
    )?;
    let liked = filter_liked.then_some(&queries);
    // every query costs passes over the graph: always interruptible
    let res = interrupt::run(py, num_threads, interrupt::LONG, || {
        recommend_batch(&scorer, &cands, liked, k, num_threads)
    })?;
    Ok(ids_scores(py, res)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(spectral_fit, m)?)?;
    m.add_function(wrap_pyfunction!(spectral_recommend, m)?)
}
