"""tacitrec: recommendations from implicit feedback, with a parallel Rust core.

Models follow implicit 0.7's API (``fit(user_items)``, ``recommend(userid, user_items[userid])``)
with its defects fixed; see :mod:`tacitrec.base`.
"""

import os as _os

from . import _core, datasets, evaluation, knn, model_selection
from .als import AlternatingLeastSquares
from ._core import __version__
from .base import MatrixFactorizationBase, RecommenderBase
from .data import Dataset
from .ease import EASERecommender
from .spectral import SpectralFilterRecommender
from .bpr import BayesianPersonalizedRanking
from .lightfm import LightFM
from .lmf import LogisticMatrixFactorization
from .exceptions import ModelFitError, ModelFormatError, NotFittedError
from .knn import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    PearsonRecommender,
    TFIDFRecommender,
)
from .knn import RP3BetaRecommender
from .popularity import PopularityRecommender

# A forked child has none of the parent's threads: forget the Rust thread pools cached before
# the fork (their workers do not exist there), or the child's first parallel call would wait for
# them forever (multiprocessing, Spark's and Dask's forked workers).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_core._after_fork_in_child)

#: Opens a model directory written by ``save_dir``, memory-mapped (see RecommenderBase.load_dir).
load_dir = RecommenderBase.load_dir

__all__ = [
    "__version__",
    "RecommenderBase",
    "load_dir",
    "MatrixFactorizationBase",
    "AlternatingLeastSquares",
    "BayesianPersonalizedRanking",
    "LogisticMatrixFactorization",
    "LightFM",
    "Dataset",
    "PopularityRecommender",
    "ItemItemRecommender",
    "CosineRecommender",
    "TFIDFRecommender",
    "BM25Recommender",
    "PearsonRecommender",
    "RP3BetaRecommender",
    "EASERecommender",
    "SpectralFilterRecommender",
    "NotFittedError",
    "ModelFitError",
    "ModelFormatError",
    "datasets",
    "knn",
    "evaluation",
    "model_selection",
]
