//! Binding of the LightFM epoch kernel.

use super::convert::{mat, mat_mut, slice, Kwargs, Mat, Named, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::lightfm::{
    epoch, pair_scores, Data, LightFmParams, Loss, Order, Regularization, Schedule, Side,
};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One side's `[parameters, gradient accumulators, step accumulators]`, each
/// `features x (d + 1)`.
type PySide<'py> = [PyReadwriteArray2<'py, f32>; 3];

fn side<'a>(name: &'static str, arrays: &'a mut PySide<'_>) -> Result<Mat<Side<'a>>, Error> {
    let [params, grad_acc, step_acc] = arrays;
    let params = mat_mut(name, params)?;
    let (rows, cols) = (params.rows, params.cols);
    Ok(Mat {
        name,
        data: Side {
            params: params.data,
            grad_acc: mat_mut(name, grad_acc)?.data,
            step_acc: mat_mut(name, step_acc)?.data,
        },
        rows,
        cols,
    })
}

/// The hyper-parameters, from keyword arguments named as the estimator's.
fn params(kw: Kwargs<'_>) -> PyResult<LightFmParams> {
    let mut loss = kw.take::<Named<Loss>>("loss")?.0;
    let (kos_k, kos_n) = (kw.take("k")?, kw.take("n")?);
    if let Loss::WarpKos { k, n } = &mut loss {
        (*k, *n) = (kos_k, kos_n);
    }
    let mut schedule = kw.take::<Named<Schedule>>("learning_schedule")?.0;
    let (lr, rho, eps) = (
        kw.take("learning_rate")?,
        kw.take("rho")?,
        kw.take("epsilon")?,
    );
    match &mut schedule {
        Schedule::Adagrad { learning_rate } => *learning_rate = lr,
        Schedule::Adadelta { rho: r, epsilon } => (*r, *epsilon) = (rho, eps),
    }
    let params = LightFmParams {
        loss,
        schedule,
        item_alpha: kw.take("item_alpha")?,
        user_alpha: kw.take("user_alpha")?,
        regularization: kw.take::<Named<Regularization>>("regularization")?.0,
        max_sampled: kw.take("max_sampled")?,
        order: kw.take::<Named<Order>>("order")?.0,
    };
    kw.finish()?;
    Ok(params)
}

/// One epoch over `interactions` (users x items) with the user/item feature matrices, updating
/// each side's `[parameters, gradient accumulators, step accumulators]` in place. The
/// hyper-parameters come as keyword arguments named as `LightFM`'s: `loss`, `k`, `n`,
/// `learning_schedule`, `learning_rate`, `rho`, `epsilon`, `item_alpha`, `user_alpha`,
/// `regularization`, `max_sampled`, `order`.
#[pyfunction]
#[pyo3(signature = (interactions, weights, user_features, item_features, user, item, seed,
                    num_threads, **hyper_parameters))]
#[allow(clippy::too_many_arguments)]
fn lightfm_epoch<'py>(
    py: Python<'py>,
    interactions: PyCsr<'py>,
    weights: Option<PyReadonlyArray1<'py, f32>>,
    user_features: PyCsr<'py>,
    item_features: PyCsr<'py>,
    mut user: PySide<'py>,
    mut item: PySide<'py>,
    seed: u64,
    num_threads: usize,
    hyper_parameters: Option<&Bound<'py, PyDict>>,
) -> PyResult<()> {
    let params = params(Kwargs::new(py, hyper_parameters))?;
    let data = Data {
        interactions: &interactions.view_with_repeats("interactions")?,
        weights: weights
            .as_ref()
            .map(|a| slice("sample_weight", a))
            .transpose()?,
        user_features: &user_features.view("user_features")?,
        item_features: &item_features.view("item_features")?,
    };
    let users = side("user parameters", &mut user)?;
    let items = side("item parameters", &mut item)?;
    users.same_cols(&items)?;
    let d = users.cols.saturating_sub(1);
    interrupt::run(py, num_threads, interrupt::LONG, || {
        epoch(&data, users.data, items.data, d, &params, seed, num_threads)
    })
}

/// LightFM's scores of the `(user_ids[k], item_ids[k])` pairs from the users' and items'
/// representations (rows `[embedding | bias]`).
#[pyfunction]
#[pyo3(signature = (users, items, user_ids, item_ids, num_threads))]
fn lightfm_pair_scores<'py>(
    py: Python<'py>,
    users: PyReadonlyArray2<'py, f32>,
    items: PyReadonlyArray2<'py, f32>,
    user_ids: PyReadonlyArray1<'py, i32>,
    item_ids: PyReadonlyArray1<'py, i32>,
    num_threads: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let (u, i) = (mat("users", &users)?, mat("items", &items)?);
    if u.cols != i.cols || u.cols == 0 {
        return Err(Error::shape("item representations (columns)", u.cols, i.cols).into());
    }
    let (uid, iid) = (slice("user_ids", &user_ids)?, slice("item_ids", &item_ids)?);
    let work = uid.len().saturating_mul(u.cols);
    let out = interrupt::run(py, num_threads, work, || {
        pair_scores(u.data, i.data, u.cols - 1, uid, iid, num_threads)
    })?;
    Ok(PyArray1::from_vec(py, out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lightfm_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(lightfm_pair_scores, m)?)
}
