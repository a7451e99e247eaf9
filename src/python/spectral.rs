//! Bindings of the graph spectral filters (GF-CF, BSPM, ChebyCF).

use super::convert::{
    candidates, csr_arrays, mat, slice, to_numpy2, CsrArrays, IdsScores, Kwargs, PyCsr,
};
use super::interrupt;
use super::topk::top_k;
use crate::linalg::svd::RandomizedSvdParams;
use crate::models::spectral::{
    fit_memory_at_least, spectral_fit as fit_graph, Filter, GraphTiles, Ode, Solver, SpectralScorer,
};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

type Arrays<'py> = (
    Bound<'py, PyArray1<f32>>,
    CsrArrays<'py>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// The normalised graph's values, its transpose, the `k` leading right singular vectors
/// (items x k) and the item degrees of `user_items`.
#[pyfunction]
#[pyo3(signature = (user_items, user_exponent, item_exponent, k, oversampling, iterations, seed,
                    num_threads))]
#[allow(clippy::too_many_arguments)]
fn spectral_fit<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    user_exponent: f64,
    item_exponent: f64,
    k: usize,
    oversampling: usize,
    iterations: usize,
    seed: u64,
    num_threads: usize,
) -> PyResult<Arrays<'py>> {
    let m = user_items.view("user_items")?;
    let params = RandomizedSvdParams {
        k,
        oversampling,
        iterations,
        seed,
    };
    let fit = interrupt::run(py, num_threads, interrupt::LONG, || {
        fit_graph(&m, user_exponent, item_exponent, &params, num_threads)
    })?;
    Ok((
        PyArray1::from_vec(py, fit.graph_data),
        csr_arrays(py, fit.graph_t),
        to_numpy2(py, fit.factors, m.n_cols(), k)?,
        PyArray1::from_vec(py, fit.item_degree),
    ))
}

/// The bytes [`spectral_fit`] holds at least besides its input
/// ([`crate::models::spectral::fit_memory_at_least`]).
#[pyfunction]
fn spectral_fit_memory(
    n_users: usize,
    n_items: usize,
    nnz: usize,
    k: usize,
    oversampling: usize,
) -> u128 {
    fit_memory_at_least(n_users, n_items, nnz, k, oversampling)
}

/// An ODE given as `key=(solver, time, steps)`.
fn ode(key: &str, (solver, time, steps): (String, f64, usize)) -> PyResult<Ode> {
    Ok(Ode {
        solver: Solver::from_name(&format!("{key}_solver"), &solver)?,
        time,
        steps,
    })
}

/// The filter from keyword arguments: `method` and the options of every method
/// (`ideal_weight`, `coeffs`, `blur`, `ideal`, `sharpen`, `final_sharpening`,
/// `t_point_combination`).
fn filter(kw: Kwargs<'_>) -> PyResult<Filter> {
    let mut filter = Filter::from_name("method", &kw.take::<String>("method")?)?;
    let (w, cs) = (kw.take("ideal_weight")?, kw.take("coeffs")?);
    let (b, i) = (
        ode("blur", kw.take("blur")?)?,
        ode("ideal", kw.take("ideal")?)?,
    );
    let s = kw.take::<Option<_>>("sharpen")?;
    let s = s.map(|spec| ode("sharpen", spec)).transpose()?;
    let (fs, tp) = (
        kw.take("final_sharpening")?,
        kw.take("t_point_combination")?,
    );
    match &mut filter {
        Filter::GfCf { ideal_weight } => *ideal_weight = w,
        Filter::Bspm {
            ideal_weight,
            blur,
            ideal,
            sharpen,
            final_sharpening,
            t_point_combination,
        } => {
            *ideal_weight = w;
            (*blur, *ideal, *sharpen) = (b, i, s);
            (*final_sharpening, *t_point_combination) = (fs, tp);
        }
        Filter::ChebyCf {
            coeffs,
            ideal_weight,
        } => (*coeffs, *ideal_weight) = (cs, w),
    }
    kw.finish()?;
    Ok(filter)
}

/// The normalised graph cut into the column ranges its products run on, built once per graph
/// and passed to every `spectral_recommend` with that graph.
#[pyclass(module = "tacitrec._core", name = "SpectralTiles", frozen)]
pub struct PySpectralTiles(GraphTiles);

#[pymethods]
impl PySpectralTiles {
    #[new]
    fn new(py: Python<'_>, graph: PyCsr<'_>, graph_t: PyCsr<'_>) -> PyResult<Self> {
        let (g, gt) = (graph.view("graph")?, graph_t.view("graph_t")?);
        Ok(PySpectralTiles(py.detach(|| GraphTiles::new(&g, &gt))?))
    }
}

/// Recommendations of a spectral filter for the rows of `user_items` (one per query); the
/// filter comes as keyword arguments (see `filter`).
#[pyfunction]
#[pyo3(signature = (user_items, graph, graph_t, tiles, factors, pre, post, k, filter_liked, items,
                    filter_items, num_threads, graph_validated = false, **filter_options))]
#[allow(clippy::too_many_arguments)]
fn spectral_recommend<'py>(
    py: Python<'py>,
    user_items: PyCsr<'py>,
    graph: PyCsr<'py>,
    graph_t: PyCsr<'py>,
    tiles: PyRef<'py, PySpectralTiles>,
    factors: PyReadonlyArray2<'py, f32>,
    pre: PyReadonlyArray1<'py, f32>,
    post: PyReadonlyArray1<'py, f32>,
    k: usize,
    filter_liked: bool,
    items: Option<PyReadonlyArray1<'py, i32>>,
    filter_items: Option<PyReadonlyArray1<'py, i32>>,
    num_threads: usize,
    graph_validated: bool,
    filter_options: Option<&Bound<'py, PyDict>>,
) -> PyResult<IdsScores<'py>> {
    let filter = filter(Kwargs::new(py, filter_options))?;
    let queries = user_items.view("user_items")?;
    // SAFETY: the Python layer passes `graph_validated` only for a model's own read-only graph
    // and transpose that a call has validated (tacitrec.spectral).
    let g = unsafe { graph.view_trusting("graph", graph_validated)? };
    let gt = unsafe { graph_t.view_trusting("graph_t", graph_validated)? };
    let v = mat("factors", &factors)?;
    let cands = candidates(g.n_cols(), &items, &filter_items)?;
    let scorer = SpectralScorer::new(
        queries,
        g,
        gt,
        &tiles.0,
        v.data,
        v.cols,
        slice("pre", &pre)?,
        slice("post", &post)?,
        filter,
        &cands,
    )?;
    let liked = filter_liked.then_some(&queries);
    // every query costs passes over the graph: always interruptible
    top_k(py, &scorer, &cands, liked, k, interrupt::LONG, num_threads)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpectralTiles>()?;
    m.add_function(wrap_pyfunction!(spectral_fit, m)?)?;
    m.add_function(wrap_pyfunction!(spectral_fit_memory, m)?)?;
    m.add_function(wrap_pyfunction!(spectral_recommend, m)?)
}
