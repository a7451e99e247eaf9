"""LightFM 1.17's own tests, run against tacitrec.

Set ``TACITREC_LIGHTFM_SRC`` to a checkout of LightFM's repository at tag 1.17 (its ``tests/``
folder is read from there; nothing of it is copied into this repository); LightFM's
``test_evaluation.py`` needs scikit-learn. Two runs of ``FILES``:

* ``plain``: a shim that only renames ``lightfm`` to tacitrec's own modules (tacitrec has no
  LightFM-style evaluation of its own, so ``lightfm.evaluation`` is the compatibility layer's).
  Tests fail there only where tacitrec's own classes differ on purpose (``PLAIN_DIFFERENCES``);
* ``compat``: the shim points at :mod:`tacitrec.compat.lightfm`, where every test passes.
"""

from __future__ import annotations

import pytest

from _peer import peer_root, run_suite, summarize

FILES = ["test_api.py", "test_evaluation.py", "test_data.py"]

# LightFM's other test files, not run: each downloads data or calls LightFM's Cython internals.
NOT_RUN = {
    "test_movielens.py": "downloads MovieLens (lightfm.datasets.fetch_movielens)",
    "test_datasets.py": "downloads MovieLens and StackExchange",
    "test_cross_validation.py": "downloads MovieLens to split it",
    "test_fast_functions.py": "calls the Cython module lightfm._lightfm_fast",
}

# Tests of FILES that download data or call LightFM's Cython internals: none (every test of
# these files runs, and must pass through the compatibility layer).
PEER_INTERNALS: set = set()

PLAIN = {
    "lightfm": "tacitrec",
    "lightfm.lightfm": "tacitrec.lightfm",
    "lightfm.data": "tacitrec.data",
    "lightfm.evaluation": "tacitrec.compat.lightfm.evaluation",
}
COMPAT = {
    "lightfm": "tacitrec.compat.lightfm",
    **{f"lightfm.{m}": f"tacitrec.compat.lightfm.{m}" for m in ("lightfm", "data", "evaluation")},
}

# Where tacitrec's own LightFM raises another exception class than LightFM, on purpose: the
# builtin that names the problem (the compatibility layer raises classes deriving from both).
PLAIN_DIFFERENCES = {
    # invalid hyper-parameters raise ValueError (LightFM asserts: AssertionError)
    "test_api::test_param_sanity",
    # a string id raises TypeError (LightFM: ValueError)
    "test_api::test_predict",
    # an id beyond the users the features describe raises IndexError (LightFM: ValueError or
    # OverflowError)
    "test_api::test_overflow_predict",
    # a dense sample_weight raises TypeError, and sample_weight with warp-kos ValueError
    # (LightFM: ValueError and NotImplementedError)
    "test_api::test_sample_weight",
    # divergence raises ModelFitError, a RuntimeError (LightFM: ValueError)
    "test_api::test_exception_on_divergence",
}


def _run(modules, tmp_path):
    root = peer_root("TACITREC_LIGHTFM_SRC")
    pytest.importorskip("sklearn", reason="LightFM's test_evaluation.py needs scikit-learn")
    outcomes = run_suite(root, FILES, modules, tmp_path)
    print(summarize(outcomes))
    assert outcomes, "the peer suite ran no test"
    return outcomes


def _short(key: str) -> str:
    module, _, name = key.partition("::")
    return f"{module.split('.')[-1]}::{name}"


def test_plain_classes_differ_only_on_purpose(tmp_path):
    outcomes = _run(PLAIN, tmp_path)
    unexpected = sorted(
        k
        for k, v in outcomes.items()
        if v != "passed" and _short(k) not in PLAIN_DIFFERENCES | PEER_INTERNALS
    )
    assert not unexpected, summarize(outcomes)


def test_compat_layer_passes_the_whole_suite(tmp_path):
    outcomes = _run(COMPAT, tmp_path)
    not_passed = sorted(
        k for k, v in outcomes.items() if v != "passed" and _short(k) not in PEER_INTERNALS
    )
    assert not not_passed, summarize(outcomes)
