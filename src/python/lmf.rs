//! Bindings of the LMF kernel.

use super::convert::{mat, mat_mut, slice, Kwargs, PyCsr};
use super::interrupt;
use crate::models::lmf::{half_step, LmfParams, MaxNegatives};
use crate::models::sgd::{column_popularity, FoldInNegatives};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyDict;

/// `max_negatives` as Python gives it: `"auto"`, `None` (no cap) or a count.
struct PyMaxNegatives(MaxNegatives);

impl<'a, 'py> FromPyObject<'a, 'py> for PyMaxNegatives {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(PyMaxNegatives(if obj.is_none() {
            MaxNegatives::Unlimited
        } else if let Ok(name) = obj.extract::<PyBackedStr>() {
            name.parse()?
        } else {
            MaxNegatives::At(obj.extract()?)
        }))
    }
}

/// One half-step: the rows of `x` (with adagrad accumulators `g2`) from `c` (rows x columns)
/// against the fixed `y`; column `fixed` of `x` (the constant one) is left as it is. Negatives come from
/// `c`'s own interactions (training), or, when `popularity` is given, from those weights (rows
/// folded in later); `ids` seed the rows. The hyper-parameters come as keyword arguments named
/// as the estimator's: `learning_rate`, `regularization`, `neg_prop`, `max_negatives`.
#[pyfunction]
#[pyo3(signature = (c, x, g2, y, fixed, popularity, ids, seed, num_threads, **hyper_parameters))]
#[allow(clippy::too_many_arguments)]
fn lmf_half_step<'py>(
    py: Python<'py>,
    c: PyCsr<'py>,
    mut x: PyReadwriteArray2<'py, f32>,
    mut g2: PyReadwriteArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    fixed: usize,
    popularity: Option<PyReadonlyArray1<'py, f32>>,
    ids: Option<PyReadonlyArray1<'py, u64>>,
    seed: u64,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<()> {
    let kw = Kwargs::new(py, hyper_parameters);
    let p = LmfParams {
        learning_rate: kw.take("learning_rate")?,
        regularization: kw.take("regularization")?,
        neg_prop: kw.take("neg_prop")?,
        max_negatives: kw.take::<PyMaxNegatives>("max_negatives")?.0,
    };
    kw.finish()?;
    let m = c.view("interactions")?;
    let x = mat_mut("factors", &mut x)?;
    let g2 = mat_mut("adagrad accumulators", &mut g2)?;
    let y = mat("fixed factors", &y)?;
    x.same_cols(&g2)?;
    x.same_cols(&y)?;
    let pop = popularity
        .as_ref()
        .map(|a| slice("popularity", a))
        .transpose()?;
    let ids = ids.as_ref().map(|a| slice("ids", a)).transpose()?;
    let d = x.cols;
    let work = m
        .nnz()
        .saturating_mul(p.neg_prop.saturating_add(1))
        .saturating_mul(d);
    interrupt::run(py, num_threads, work, || {
        // training draws by the interaction counts of `c` itself (implicit's sampling); with
        // no interactions no row draws
        let neg = match pop {
            Some(w) => FoldInNegatives::new(Some(w), m.n_cols(), false)?,
            None => match column_popularity(m.indices(), m.n_cols())? {
                Some(table) => FoldInNegatives::Weighted(table),
                None => return Ok(()),
            },
        };
        let neg = neg.view();
        half_step(
            &m,
            x.data,
            g2.data,
            y.data,
            d,
            fixed,
            &p,
            &neg,
            ids,
            seed,
            num_threads,
        )
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lmf_half_step, m)?)
}
