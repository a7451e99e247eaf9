//! `_core.DEFAULTS`: the core's defaults under the Python names of the estimators (and
//! functions) that have them, keyed by `"module.name"` within the package. A Python test
//! compares them with the signatures' defaults, so the two cannot drift apart.

use crate::error::Result;
use crate::models::als::{AlsParams, Solver};
use crate::models::bpr::BprParams;
use crate::models::ease::EaseParams;
use crate::models::knn::{KnnParams, Rp3BetaParams, Similarity};
use crate::models::lightfm::{LightFmParams, Loss, Schedule};
use crate::models::lmf::{LmfParams, MaxNegatives};
use crate::models::spectral::{Filter, Ode};
use crate::sparse::weighting::Weighting;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `name=value` pairs as a dict.
macro_rules! dict {
    ($py:expr, $($name:literal => $value:expr),* $(,)?) => {{
        let d = PyDict::new($py);
        $(d.set_item($name, $value)?;)*
        d
    }};
}

/// A variant's default options, or an error should its name have gone.
fn parsed<T: std::str::FromStr<Err = crate::error::Error>>(name: &str) -> Result<T> {
    name.parse()
}

pub fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);

    let als = AlsParams::default();
    let cg_steps = match als.solver {
        Solver::ConjugateGradient { steps } => Some(steps),
        Solver::Cholesky => None,
    };
    out.set_item(
        "als.AlternatingLeastSquares",
        dict!(py,
            "regularization" => als.regularization,
            "use_cg" => cg_steps.is_some(),
            "cg_steps" => cg_steps,
            "unobserved_weight" => als.unobserved_weight,
            "regularization_exponent" => als.regularization_exponent,
            "block_size" => crate::models::als::subspace::DEFAULT_BLOCK_SIZE,
        ),
    )?;

    let bpr = BprParams::default();
    out.set_item(
        "bpr.BayesianPersonalizedRanking",
        dict!(py,
            "learning_rate" => bpr.learning_rate,
            "regularization" => bpr.regularization,
            "verify_negative_samples" => bpr.verify_negative_samples,
            "max_redraws" => bpr.max_redraws,
            "negative_sampling" => bpr.sampling.name(),
            "use_weights" => bpr.use_weights,
            "deterministic" => bpr.deterministic,
        ),
    )?;

    let lmf = LmfParams::default();
    let max_negatives = match lmf.max_negatives {
        MaxNegatives::Auto => "auto".into_pyobject(py)?.into_any(),
        MaxNegatives::Unlimited => py.None().into_bound(py),
        MaxNegatives::At(n) => n.into_pyobject(py)?.into_any(),
    };
    out.set_item(
        "lmf.LogisticMatrixFactorization",
        dict!(py,
            "learning_rate" => lmf.learning_rate,
            "regularization" => lmf.regularization,
            "neg_prop" => lmf.neg_prop,
            "max_negatives" => max_negatives,
        ),
    )?;

    let lightfm = LightFmParams::default();
    let Schedule::Adagrad { learning_rate } = lightfm.schedule else {
        unreachable!("LightFM's default schedule is adagrad")
    };
    let Schedule::Adadelta { rho, epsilon } = parsed("adadelta")? else {
        unreachable!("\"adadelta\" names adadelta")
    };
    let Loss::WarpKos { k, n } = parsed("warp-kos")? else {
        unreachable!("\"warp-kos\" names k-OS WARP")
    };
    out.set_item(
        "lightfm.LightFM",
        dict!(py,
            "loss" => lightfm.loss.name(),
            "learning_schedule" => lightfm.schedule.name(),
            "learning_rate" => learning_rate,
            "rho" => rho,
            "epsilon" => epsilon,
            "k" => k,
            "n" => n,
            "item_alpha" => lightfm.item_alpha,
            "user_alpha" => lightfm.user_alpha,
            "max_sampled" => lightfm.max_sampled,
        ),
    )?;

    let knn = KnnParams::default();
    out.set_item("knn.ItemItemRecommender", dict!(py, "K" => knn.k))?;
    out.set_item("knn.CosineRecommender", dict!(py, "K" => knn.k))?;
    let Similarity::Bm25 { k1, b } = parsed("bm25")? else {
        unreachable!("\"bm25\" names BM25")
    };
    out.set_item(
        "knn.BM25Recommender",
        dict!(py, "K" => knn.k, "K1" => k1, "B" => b),
    )?;
    let Weighting::Bm25 { k1, b } = parsed("bm25")? else {
        unreachable!("\"bm25\" names BM25")
    };
    out.set_item("knn.bm25_weight", dict!(py, "K1" => k1, "B" => b))?;
    let rp3 = Rp3BetaParams::default();
    out.set_item(
        "knn.RP3BetaRecommender",
        dict!(py,
            "K" => rp3.k,
            "alpha" => rp3.alpha,
            "beta" => rp3.beta,
            "normalize_similarity" => rp3.normalize,
        ),
    )?;

    let ease = EaseParams::default();
    out.set_item(
        "ease.EASERecommender",
        dict!(py,
            "regularization" => ease.regularization,
            "dtype" => ease.precision.name(),
        ),
    )?;

    // the filters' options: BSPM's ODEs and merge as the method's defaults; the ideal weight
    // of each method (the estimator's `ideal_weight=None`) under "ideal_weight[method]"
    let spectral = dict!(py,);
    if let Filter::Bspm {
        blur,
        ideal,
        sharpen,
        final_sharpening,
        t_point_combination,
        ..
    } = parsed("bspm")?
    {
        let ode = |prefix: &str, o: Ode| -> PyResult<()> {
            spectral.set_item(format!("{prefix}_solver"), o.solver.name())?;
            spectral.set_item(format!("{prefix}_time"), o.time)?;
            spectral.set_item(format!("{prefix}_steps"), o.steps)
        };
        ode("blur", blur)?;
        ode("ideal", ideal)?;
        if let Some(s) = sharpen {
            ode("sharpen", s)?;
        }
        spectral.set_item("sharpening", sharpen.is_some())?;
        spectral.set_item("final_sharpening", final_sharpening)?;
        spectral.set_item("t_point_combination", t_point_combination)?;
    }
    for method in Filter::NAMES {
        let w = match parsed::<Filter>(method)? {
            Filter::GfCf { ideal_weight }
            | Filter::Bspm { ideal_weight, .. }
            | Filter::ChebyCf { ideal_weight, .. } => ideal_weight,
        };
        spectral.set_item(format!("ideal_weight[{method}]"), w)?;
    }
    out.set_item("spectral.SpectralFilterRecommender", spectral)?;
    Ok(out)
}
