"""tacitrec: recommendations from implicit feedback, with a parallel Rust core.

Models follow implicit 0.7's API (``fit(user_items)``, ``recommend(userid, user_items[userid])``)
with its defects fixed; see :mod:`tacitrec.base`.
"""

from . import datasets, evaluation, knn, model_selection
from .als import AlternatingLeastSquares
from ._core import __version__
from .base import MatrixFactorizationBase, RecommenderBase
from .data import Dataset
from .bpr import BayesianPersonalizedRanking
from .lightfm import LightFM
from .lmf import LogisticMatrixFactorization
from .exceptions import ModelFitError, ModelFormatError, NotFittedError
from .knn import (BM25Recommender, CosineRecommender, ItemItemRecommender, PearsonRecommender,
                  TFIDFRecommender)
from .popularity import PopularityRecommender

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
    "NotFittedError",
    "ModelFitError",
    "ModelFormatError",
    "datasets",
    "knn",
    "evaluation",
    "model_selection",
]
