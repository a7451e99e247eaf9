//! Binding of the LightFM epoch kernel.

use super::convert::{csr, slice, PyCsr};
use super::interrupt;
use crate::error::Error;
use crate::models::lightfm::{epoch, Data, LightFmParams, Loss, Schedule, Side};
use numpy::{PyReadonlyArray1, PyReadwriteArray2};
use pyo3::prelude::*;

fn side<'a>(
    what: &str,
    params: &'a mut PyReadwriteArray2<'_, f32>,
    grad_acc: &'a mut PyReadwriteArray2<'_, f32>,
    step_acc: &'a mut PyReadwriteArray2<'_, f32>,
) -> Result<Side<'a>, Error> {
    let contiguous = || Error::invalid(what, "must be C-contiguous");
    Ok(Side {
        params: params.as_slice_mut().map_err(|_| contiguous())?,
        grad_acc: grad_acc.as_slice_mut().map_err(|_| contiguous())?,
        step_acc: step_acc.as_slice_mut().map_err(|_| contiguous())?,
    })
}

/// One epoch over `interactions` (users x items) with the user/item feature matrices, updating
/// each side's `[embeddings | bias]` parameters and optimiser accumulators in place.
#[pyfunction]
#[pyo3(signature = (interactions, weights, user_features, item_features, user_params, user_grad,
                    user_step, item_params, item_grad, item_step, loss, k, n, schedule,
                    learning_rate, rho, epsilon, item_alpha, user_alpha, max_sampled, seed,
                    num_threads=1))]
#[allow(clippy::too_many_arguments)]
fn lightfm_epoch<'py>(
    py: Python<'py>,
    interactions: PyCsr<'py>,
    weights: Option<PyReadonlyArray1<'py, f32>>,
    user_features: PyCsr<'py>,
    item_features: PyCsr<'py>,
    mut user_params: PyReadwriteArray2<'py, f32>,
    mut user_grad: PyReadwriteArray2<'py, f32>,
    mut user_step: PyReadwriteArray2<'py, f32>,
    mut item_params: PyReadwriteArray2<'py, f32>,
    mut item_grad: PyReadwriteArray2<'py, f32>,
    mut item_step: PyReadwriteArray2<'py, f32>,
    loss: &str,
    k: usize,
    n: usize,
    schedule: &str,
    learning_rate: f32,
    rho: f32,
    epsilon: f32,
    item_alpha: f32,
    user_alpha: f32,
    max_sampled: usize,
    seed: u64,
    num_threads: usize,
) -> PyResult<()> {
    let (n_user_features, w) = user_params.as_array().dim();
    let n_item_features = item_params.as_array().nrows();
    let n_users = user_features.0.as_array().len().saturating_sub(1);
    let n_items = item_features.0.as_array().len().saturating_sub(1);
    let m = csr("interactions", &interactions, n_users, n_items)?;
    let uf = csr("user_features", &user_features, n_users, n_user_features)?;
    let itf = csr("item_features", &item_features, n_items, n_item_features)?;
    let weights = weights
        .as_ref()
        .map(|a| slice("sample_weight", a))
        .transpose()?;
    let params = LightFmParams {
        loss: match loss {
            "logistic" => Loss::Logistic,
            "bpr" => Loss::Bpr,
            "warp" => Loss::Warp,
            "warp-kos" => Loss::WarpKos { k, n },
            _ => return Err(Error::invalid("loss", format!("unknown loss {loss:?}")).into()),
        },
        schedule: match schedule {
            "adagrad" => Schedule::Adagrad { learning_rate },
            "adadelta" => Schedule::Adadelta { rho, epsilon },
            _ => {
                return Err(Error::invalid(
                    "learning_schedule",
                    format!("unknown schedule {schedule:?}"),
                )
                .into())
            }
        },
        item_alpha,
        user_alpha,
        max_sampled,
    };
    let users = side(
        "user parameters",
        &mut user_params,
        &mut user_grad,
        &mut user_step,
    )?;
    let items = side(
        "item parameters",
        &mut item_params,
        &mut item_grad,
        &mut item_step,
    )?;
    let data = Data {
        interactions: &m,
        weights,
        user_features: &uf,
        item_features: &itf,
    };
    interrupt::run(py, num_threads, interrupt::LONG, || {
        epoch(
            &data,
            users,
            items,
            w.saturating_sub(1),
            &params,
            seed,
            num_threads,
        )
    })?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lightfm_epoch, m)?)
}
