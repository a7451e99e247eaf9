"""Exceptions raised by tacitrec. Each subclasses the builtin a caller would catch anyway."""


class NotFittedError(ValueError, AttributeError):
    """The model is used before ``fit`` (or before its factors are assigned)."""


class ModelFitError(RuntimeError):
    """Training diverged or could not proceed (e.g. factors became NaN or infinite)."""


class ModelFormatError(ValueError):
    """A saved model file is not a tacitrec model of the expected class or format version."""


__all__ = ["NotFittedError", "ModelFitError", "ModelFormatError"]
