"""``lightfm`` on tacitrec: code written for LightFM 1.17 runs by changing its imports only.

=====================================  =========================================
LightFM                                tacitrec.compat.lightfm
=====================================  =========================================
``lightfm.LightFM``                    :class:`LightFM` (also ``.lightfm.LightFM``)
``lightfm.data.Dataset``               :class:`.data.Dataset`
``lightfm.evaluation.precision_at_k``  :func:`.evaluation.precision_at_k`
``lightfm.evaluation.recall_at_k``     :func:`.evaluation.recall_at_k`
``lightfm.evaluation.auc_score``       :func:`.evaluation.auc_score`
``lightfm.evaluation.reciprocal_rank`` :func:`.evaluation.reciprocal_rank`
=====================================  =========================================

The classes are tacitrec's (:class:`tacitrec.LightFM`, :class:`tacitrec.Dataset`) with LightFM's
exceptions; the metrics are computed from the model's ``predict_rank`` as LightFM computes them.
Each docstring says what differs from LightFM and why: mainly LightFM's training defects, which
stay fixed here. Not provided: ``lightfm.datasets`` (downloads; see :mod:`tacitrec.datasets`),
``lightfm.cross_validation`` (see :func:`tacitrec.evaluation.train_test_split`) and LightFM's
Cython module ``lightfm._lightfm_fast``.
"""

from . import data, evaluation
from .lightfm import LightFM

__all__ = ["LightFM", "data", "evaluation"]
