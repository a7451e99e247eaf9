"""``lightfm`` on tacitrec: code written for LightFM 1.17 runs by changing its imports only.

* ``lightfm.LightFM`` and ``lightfm.lightfm.LightFM``: :class:`LightFM` (also
  ``.lightfm.LightFM``);
* ``lightfm.data.Dataset``: :class:`.data.Dataset`;
* ``lightfm.evaluation``: :mod:`.evaluation` (``precision_at_k``, ``recall_at_k``,
  ``auc_score``, ``reciprocal_rank``);
* ``lightfm.cross_validation``: :mod:`.cross_validation` (``random_train_test_split``).

The classes are tacitrec's (:class:`tacitrec.LightFM`, :class:`tacitrec.Dataset`) with LightFM's
exceptions; the metrics are computed from the model's ``predict_rank`` as LightFM computes them.
Each docstring says what differs from LightFM and why: mainly LightFM's training defects, which
stay fixed here. Not provided: ``lightfm.datasets`` (its downloaders; see
:mod:`tacitrec.datasets`) and LightFM's Cython module ``lightfm._lightfm_fast``.
"""

from . import cross_validation, data, evaluation
from .lightfm import LightFM

#: The LightFM version whose API this layer implements (tacitrec's own: ``tacitrec.__version__``).
__version__ = "1.17"

__all__ = ["LightFM", "cross_validation", "data", "evaluation"]
