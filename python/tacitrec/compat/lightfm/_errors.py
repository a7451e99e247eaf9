"""The exceptions of :mod:`tacitrec.compat.lightfm`: each subclasses both what tacitrec raises and
what LightFM 1.17 raises in the same situation, so that an ``except`` (or ``pytest.raises``)
written for either catches it."""

from __future__ import annotations

from contextlib import contextmanager

from ...exceptions import ModelFitError


class LightFMParameterError(ValueError, AssertionError):
    """An invalid hyper-parameter. tacitrec raises ValueError; LightFM asserts (AssertionError),
    or raises ValueError for ``max_sampled``."""


class LightFMInputTypeError(TypeError, ValueError):
    """An argument of the wrong type (a dense ``sample_weight``, a string id): tacitrec raises
    TypeError, LightFM ValueError."""


class LightFMIdError(IndexError, ValueError):
    """An id outside the range the model (or the feature matrix) covers, or beyond int32:
    tacitrec raises IndexError; LightFM raises ValueError (negative ids, or ids that overflow
    int32) or reads out of bounds."""


class LightFMDivergenceError(ModelFitError, ValueError):
    """The parameters became NaN or infinite during ``fit``: tacitrec raises ModelFitError (a
    RuntimeError), LightFM ValueError."""


class LightFMNotImplementedError(NotImplementedError, ValueError):
    """A combination neither library trains (``sample_weight`` with ``loss="warp-kos"``):
    tacitrec raises ValueError, LightFM NotImplementedError."""


@contextmanager
def lightfm_errors():
    """Re-raises tacitrec's TypeError, IndexError and ModelFitError as the classes above (the
    message and the original exception, as ``__cause__``, are kept); ValueErrors pass as they
    are, since LightFM raises ValueError there too."""
    try:
        yield
    except ValueError:
        raise
    except ModelFitError as e:
        raise LightFMDivergenceError(str(e)) from e
    except IndexError as e:
        raise LightFMIdError(str(e)) from e
    except TypeError as e:
        raise LightFMInputTypeError(str(e)) from e


__all__ = [
    "LightFMParameterError",
    "LightFMInputTypeError",
    "LightFMIdError",
    "LightFMDivergenceError",
    "LightFMNotImplementedError",
]
