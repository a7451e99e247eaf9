"""The boundary with the Rust core: the Python defaults equal the core's (``_core.DEFAULTS``,
read from the core's ``Default`` impls and its named options), so that neither can change
alone; named options are parsed once, with errors naming the argument; a CSR matrix carries its
shape."""

import importlib
import inspect

import numpy as np
import pytest

from tacitrec import _core
from tacitrec import spectral


def _same(python, rust) -> bool:
    if isinstance(rust, float):  # the core holds float32 hyper-parameters
        return (
            isinstance(python, (int, float))
            and not isinstance(python, bool)
            and np.float32(python) == np.float32(rust)
        )
    if isinstance(rust, str) and not isinstance(python, str):  # dtype=np.float32
        return np.dtype(python).name == rust
    return type(python) is type(rust) and python == rust


def _signature_defaults(qualified: str) -> dict:
    module, name = qualified.split(".")
    obj = getattr(importlib.import_module(f"tacitrec.{module}"), name)
    return {p.name: p.default for p in inspect.signature(obj).parameters.values()}


def test_the_core_lists_every_model_with_rust_defaults():
    assert set(_core.DEFAULTS) == {
        "als.AlternatingLeastSquares",
        "bpr.BayesianPersonalizedRanking",
        "lmf.LogisticMatrixFactorization",
        "lightfm.LightFM",
        "knn.ItemItemRecommender",
        "knn.CosineRecommender",
        "knn.BM25Recommender",
        "knn.bm25_weight",
        "knn.RP3BetaRecommender",
        "ease.EASERecommender",
        "spectral.SpectralFilterRecommender",
    }


@pytest.mark.parametrize("qualified", sorted(_core.DEFAULTS))
def test_python_defaults_equal_the_cores(qualified):
    python = _signature_defaults(qualified)
    for name, rust in _core.DEFAULTS[qualified].items():
        if "[" in name:  # spectral's per-method ideal weight (the signature's None)
            continue
        assert name in python, f"{qualified} has no parameter {name}"
        assert _same(python[name], rust), f"{qualified}({name}={python[name]!r}), Rust {rust!r}"


def test_spectral_ideal_weights_equal_the_cores():
    rust = {
        k[len("ideal_weight[") : -1]: v
        for k, v in _core.DEFAULTS["spectral.SpectralFilterRecommender"].items()
        if k.startswith("ideal_weight[")
    }
    assert set(rust) == set(spectral._DEFAULT_IDEAL_WEIGHT)
    for method, w in spectral._DEFAULT_IDEAL_WEIGHT.items():
        assert np.float32(w) == np.float32(rust[method]), method


def test_the_values_that_once_drifted():
    """BPR's reproducible schedule without redraws, LMF's implicit cap, as the core has them."""
    bpr = _core.DEFAULTS["bpr.BayesianPersonalizedRanking"]
    assert bpr["deterministic"] is True and bpr["max_redraws"] == 0
    assert _core.DEFAULTS["lmf.LogisticMatrixFactorization"]["max_negatives"] == "auto"


def test_a_drifted_default_is_caught():
    assert not _same(False, True)
    assert not _same(0.02, 0.01)
    assert not _same(None, "auto")
    assert not _same(1, True)
    assert _same(np.float32, "float32")


@pytest.mark.parametrize(
    "call,argument,allowed",
    [
        (lambda: _core.ease_memory(3, "float16"), "dtype", "'float32', 'float64'"),
        (
            lambda: _core.weight(_csr(), "okapi", "rows", 1.2, 0.75, 1),
            "scheme",
            "'bm25', 'tfidf', 'normalize'",
        ),
        (
            lambda: _core.weight(_csr(), "bm25", "diagonal", 1.2, 0.75, 1),
            "docs",
            "'rows', 'columns'",
        ),
        (
            lambda: _core.knn_fit(_csr(), 2, "jaccard", 1.2, 0.75, 1),
            "similarity",
            "'dot', 'cosine', 'tfidf', 'bm25', 'pearson'",
        ),
    ],
)
def test_a_bad_name_is_a_value_error_naming_the_argument_and_the_choices(call, argument, allowed):
    with pytest.raises(ValueError, match=f"^{argument}: must be one of {allowed}, got"):
        call()


def _csr():
    return (
        np.array([0, 1, 2], dtype=np.int64),
        np.array([0, 1], dtype=np.int32),
        np.ones(2, dtype=np.float32),
        (2, 2),
    )


def test_a_csr_carries_its_shape():
    """The declared shape, not one inferred from indptr, bounds the column indices."""
    indptr, indices, data, _ = _csr()
    assert _core.weight((indptr, indices, data, (2, 2)), "normalize", "rows", 0, 0, 1).tolist() == [
        1.0,
        1.0,
    ]
    with pytest.raises(IndexError, match="X"):
        _core.weight((indptr, indices, data, (2, 1)), "normalize", "rows", 0, 0, 1)
    with pytest.raises(ValueError, match="X.indptr length"):
        _core.weight((indptr, indices, data, (3, 2)), "normalize", "rows", 0, 0, 1)


def _factors(n: int, d: int = 3) -> np.ndarray:
    return np.full((n, d), 0.1, dtype=np.float32)


_BPR = dict(
    learning_rate=0.01,
    regularization=0.01,
    verify_negative_samples=True,
    max_redraws=0,
    negative_sampling="uniform",
)
_ALS = dict(regularization=0.01, unobserved_weight=None, regularization_exponent=0.0)
_KEYWORD_KERNELS = {
    "als.AlternatingLeastSquares": (
        lambda **kw: _core.als_solve(_csr(), _factors(2), _factors(2), 1, **kw),
        dict(_ALS, solver="cg", cg_steps=3),
    ),
    "als.AlternatingLeastSquares (loss)": (
        lambda **kw: _core.als_loss(_csr(), _factors(2), _factors(2), 1, **kw),
        _ALS,
    ),
    "als.AlternatingLeastSquares (ials++)": (
        lambda **kw: _core.als_ials_epoch(_csr(), _factors(2), _factors(2), 1, **kw),
        dict(_ALS, block_size=2),
    ),
    "bpr.BayesianPersonalizedRanking": (
        lambda **kw: _core.bpr_epoch(_csr(), _factors(2), _factors(2), 0, 1, **kw),
        dict(_BPR, use_weights=False, deterministic=True),
    ),
    "lmf.LogisticMatrixFactorization": (
        lambda **kw: _core.lmf_half_step(
            _csr(), _factors(2), _factors(2), _factors(2), 2, None, None, 0, 1, **kw
        ),
        dict(learning_rate=1.0, regularization=0.6, neg_prop=30, max_negatives="auto"),
    ),
}


@pytest.mark.parametrize("qualified", sorted(_KEYWORD_KERNELS))
def test_hyper_parameters_cross_by_the_estimators_names(qualified):
    """Every keyword a kernel takes is a parameter of its estimator; a missing or unknown one
    is a TypeError naming it."""
    call, kwargs = _KEYWORD_KERNELS[qualified]
    assert set(kwargs) <= set(_signature_defaults(qualified.split(" ")[0]))
    call(**kwargs)
    first = next(iter(kwargs))
    with pytest.raises(TypeError, match=f"missing keyword argument '{first}'"):
        call(**{k: v for k, v in kwargs.items() if k != first})
    with pytest.raises(TypeError, match="unexpected keyword argument 'learningrate'"):
        call(**kwargs, learningrate=0.1)


def test_numpy_api_is_loaded_at_import_so_no_later_call_can_panic_there():
    # rust-numpy loads NumPy's C API on the first array it touches and panics if that import
    # fails (Ctrl-C during it made a recommend raise PanicException once); the module loads it
    # when imported. Here the import would fail after `import tacitrec`: the call must still work.
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, scipy.sparse as sp, tacitrec as tr\n"
        "X = sp.csr_matrix(np.eye(4, dtype=np.float32))\n"
        "m = tr.PopularityRecommender().fit(X)\n"
        "sys.modules['numpy._core.multiarray'] = None\n"
        "sys.modules['numpy.core.multiarray'] = None\n"
        "ids, scores = m.recommend(0, X[0], N=2)\n"
        "print(len(ids))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr[-2000:]
