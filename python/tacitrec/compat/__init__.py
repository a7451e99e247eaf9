"""Compatibility layers: code written for implicit 0.7 or LightFM 1.17 runs on tacitrec by
changing its imports only.

* :mod:`tacitrec.compat.implicit` mirrors ``implicit`` (``.als``, ``.bpr``, ``.lmf``,
  ``.nearest_neighbours``, ``.evaluation``);
* :mod:`tacitrec.compat.lightfm` mirrors ``lightfm`` (``LightFM``, ``.data.Dataset``,
  ``.evaluation``).

The layers are thin: argument mapping and output shaping over tacitrec's own models and kernels.
Each docstring says what differs from the peer and why. tacitrec's own API (``import tacitrec``)
keeps its fixes; the peers' defects stay fixed in the layers too.
"""
