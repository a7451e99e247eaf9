"""``implicit`` 0.7.3, mirrored over tacitrec: change ``import implicit`` to
``import tacitrec.compat.implicit as implicit`` (or ``from tacitrec.compat.implicit.als import
AlternatingLeastSquares``, ...) and existing code runs unchanged.

Modules: :mod:`.als`, :mod:`.bpr`, :mod:`.lmf`, :mod:`.nearest_neighbours`, :mod:`.evaluation`,
:mod:`.gpu` (``HAS_CUDA = False``), :mod:`.utils` (``ParameterWarning``, ``nonzeros``),
:mod:`.datasets.movielens`. What the models change on top of tacitrec's classes is in
:mod:`._base`; each module's docstring lists its own differences from implicit. Not mirrored:
implicit's internals (``implicit.cpu``, ``implicit.gpu`` kernels, ``calculate_loss``), its
approximate-nearest-neighbour wrappers (``approximate_als``) and its other dataset downloaders.
"""

from . import als, bpr, datasets, evaluation, gpu, lmf, nearest_neighbours, utils

__all__ = ["als", "bpr", "lmf", "nearest_neighbours", "evaluation", "gpu", "utils", "datasets"]
