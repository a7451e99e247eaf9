"""``implicit.gpu``: tacitrec has no GPU path, so ``HAS_CUDA`` is False and the models reject
``use_gpu=True`` with a ValueError (implicit raises the same when built without CUDA)."""

HAS_CUDA = False

__all__ = ["HAS_CUDA"]
