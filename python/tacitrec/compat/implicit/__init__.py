"""``implicit`` 0.7.3, mirrored over tacitrec: change ``import implicit`` to
``import tacitrec.compat.implicit as implicit`` (or ``from tacitrec.compat.implicit.als import
AlternatingLeastSquares``, ...) and existing code runs unchanged.

Modules: :mod:`.als`, :mod:`.bpr`, :mod:`.lmf`, :mod:`.nearest_neighbours`, :mod:`.evaluation`,
:mod:`.recommender_base` (``RecommenderBase``, ``ModelFitError``), :mod:`.gpu`
(``HAS_CUDA = False``), :mod:`.utils` (``ParameterWarning``, ``nonzeros``, ``check_csr``,
``check_random_state``, ``augment_inner_product_matrix``), :mod:`.datasets.movielens`. What the
models change on top of tacitrec's classes is in :mod:`._base`; each module's docstring lists its
own differences from implicit. The models load implicit's own saved files as well as tacitrec's.
Not mirrored: implicit's internals (``implicit.cpu``, ``implicit.gpu`` kernels,
``calculate_loss``), its approximate-nearest-neighbour wrappers (``approximate_als``) and its
other dataset downloaders.

``__version__`` is ``"0.7.3"``: the implicit version whose API this layer implements (code that
gates features on ``implicit.__version__`` takes the 0.7.3 branch), not tacitrec's version,
which is ``tacitrec.__version__``.
"""

from . import (
    als,
    bpr,
    datasets,
    evaluation,
    gpu,
    lmf,
    nearest_neighbours,
    recommender_base,
    utils,
)
from ._base import IMPLICIT_VERSION

__version__ = IMPLICIT_VERSION

__all__ = [
    "als",
    "bpr",
    "lmf",
    "nearest_neighbours",
    "evaluation",
    "recommender_base",
    "gpu",
    "utils",
    "datasets",
    "__version__",
]
