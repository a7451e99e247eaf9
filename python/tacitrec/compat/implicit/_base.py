"""What every model of :mod:`tacitrec.compat.implicit` changes on top of tacitrec's own class.

* ``fit`` warns :class:`~tacitrec.compat.implicit.utils.ParameterWarning` when the matrix is not
  CSR (then converts it, as implicit does);
* ``recommend`` requires ``user_items`` to be CSR when it is used (implicit's ValueError);
* with ``items=`` (implicit's replacement of ``rank_items``) every requested item comes back
  (when ``N`` allows): the candidates by score, then the items the user already has (or, in
  ``similar_items`` of the kNN models, the items that are not stored neighbours), in id order,
  with score ``-inf`` (implicit appends them with ``-FLT_MAX``). They never rank above a
  candidate;
* a call for one user (or one item) returns only real results: where fewer than ``N``
  candidates are left, the arrays are shorter (tacitrec's own API pads them with id -1 and
  score -inf so that batches stay rectangular; batch calls here keep that padding, implicit
  fills such slots with the user's own items instead);
* ``save(fileobj_or_path)`` writes tacitrec's format; ``load(fileobj_or_path)`` reads it and
  also the ``.npz`` files implicit 0.7.3's own ``save`` writes (see :meth:`ImplicitModel.load`);
* implicit's deprecated ``rank_items`` (and, on the factor models, ``recommend_all``) are there,
  warning DeprecationWarning as implicit's do;
* every model is registered as a subclass of
  :class:`tacitrec.compat.implicit.recommender_base.RecommenderBase`.

The factor models (ALS, BPR, LMF) add :class:`ImplicitFactorModel`'s: ``dtype`` stored as a
``numpy.dtype``, and ``user_norms`` / ``item_norms``.

Everything else is tacitrec's: liked items are never recommended, scores are exact, batch calls
are parallel, bad input raises an error naming the argument.
"""

from __future__ import annotations

import os
import warnings
from typing import Dict, List, Optional, Tuple, Type

import numpy as np
import scipy.sparse as sp

from ..._validation import Csr
from ...base import _META_KEY
from ...base import RecommenderBase as _TacitrecBase
from ...exceptions import ModelFormatError
from .recommender_base import RecommenderBase
from .utils import ParameterWarning

#: The implicit version whose API and file format this layer implements.
IMPLICIT_VERSION = "0.7.3"


def _is_csr(m) -> bool:
    return isinstance(m, Csr) or (sp.issparse(m) and m.format == "csr")


def _trim(ids: np.ndarray, scores: np.ndarray):
    keep = ids >= 0
    return ids[keep], scores[keep]


def _fill_requested(ids, scores, items, filter_items):
    """Fills each row's padding with the requested ``items`` (less ``filter_items``) missing
    from it, in ascending id order, with score -inf: implicit returns every item of ``items``."""
    if ids.shape[-1] == 0:  # items=[]: nothing requested, no column to fill
        return ids, scores
    requested = np.unique(np.asarray(items))
    if filter_items is not None:
        requested = np.setdiff1d(requested, np.asarray(filter_items))
    ids, scores = ids.copy(), scores.copy()
    rows_ids = ids.reshape(-1, ids.shape[-1])
    rows_scores = scores.reshape(-1, scores.shape[-1])
    for r in range(rows_ids.shape[0]):
        free = np.flatnonzero(rows_ids[r] < 0)
        if free.size:
            missing = np.setdiff1d(requested, rows_ids[r])[: free.size]
            rows_ids[r, free[: missing.size]] = missing
            rows_scores[r, free[: missing.size]] = -np.inf
    return ids, scores


# ---- implicit's own files ----------------------------------------------------------------------

#: The classes that read implicit's files, for the error that names the class a file is of.
_IMPLICIT_READERS: List[Type["ImplicitModel"]] = []


def _implicit_arrays(file) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of the ``.npz`` ``file`` when it is not a tacitrec file (it lacks tacitrec's
    metadata). None when it is one, or when NumPy cannot open it as an ``.npz`` at all: then
    tacitrec's own ``load`` reads it or raises its ModelFormatError. A file object is moved back
    to where it was before returning None."""
    start = None
    if not isinstance(file, (str, os.PathLike)):
        try:
            start = file.tell()
        except (AttributeError, OSError, ValueError):
            start = None

    def rewind() -> None:
        if start is not None:
            file.seek(start)

    try:
        z = np.load(file, allow_pickle=False)
    except Exception:  # whatever it is, tacitrec's load says so
        rewind()
        return None
    if not isinstance(z, np.lib.npyio.NpzFile):
        rewind()
        return None
    arrays: Dict[str, np.ndarray] = {}
    with z:
        if _META_KEY in z.files:
            rewind()
            return None
        for name in z.files:
            try:
                arrays[name] = z[name]
            except ValueError as e:
                if "allow_pickle" not in str(e):
                    raise _unreadable(file, e) from None
                if name == "random_state":
                    # implicit pickles a Generator given as random_state (and cannot read it
                    # back itself); it only seeds a later fit, so the model gets None
                    continue
                raise ModelFormatError(
                    f"{file!r}: its array {name!r} holds pickled Python objects, which "
                    "tacitrec does not unpickle"
                ) from None
            except Exception as e:  # a damaged member: zlib, zip or I/O errors
                raise _unreadable(file, e) from None
    return arrays


def _unreadable(file, e: Exception) -> ModelFormatError:
    return ModelFormatError(f"{file!r} is not a readable model file ({type(e).__name__}: {e})")


def _one_value(value: np.ndarray, name: str, file):
    """A hyper-parameter as implicit's ``save`` writes it (a 0-d array) as a Python value;
    ``dtype`` (written as its name) as a ``numpy.dtype``."""
    if value.shape != ():
        raise ModelFormatError(
            f"{file!r}: {name!r} is an array of shape {value.shape}; implicit's save writes "
            "one value"
        )
    if name != "dtype":
        return value.item()
    try:
        dtype = np.dtype(str(value))
    except TypeError:
        raise ModelFormatError(f"{file!r}: {str(value)!r} is not a dtype") from None
    # implicit's GPU models train in float16 too; tacitrec computes in float32
    return np.dtype(np.float32) if dtype == np.float16 else dtype


class ImplicitModel:
    """Mixin placed before a tacitrec model class: implicit's input and output conventions."""

    # (its super() calls reach the model class after it in the MRO, which mypy cannot see; its
    # recommend and similar_users keep implicit's signatures, which differ from tacitrec's)

    #: implicit's file format of the class: the hyper-parameters its ``save`` writes (as 0-d
    #: arrays), the arrays it writes, and the one key every such file holds
    _implicit_params: Tuple[str, ...] = ()
    _implicit_arrays: Tuple[str, ...] = ()
    _implicit_required = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if issubclass(cls, _TacitrecBase):  # a model, not one of the mixins
            RecommenderBase.register(cls)
            if cls._implicit_required:
                _IMPLICIT_READERS.append(cls)

    def fit(self, user_items, show_progress: bool = True, callback=None):
        return self._implicit_fit(user_items, show_progress, callback)

    def _implicit_fit(self, user_items, show_progress, callback):
        """tacitrec's ``fit``, after warning (at the caller of ``fit``: ``fit`` calls this
        directly) when ``user_items`` is not CSR."""
        if not _is_csr(user_items):
            warnings.warn(
                f"Method expects CSR input, and was passed {type(user_items).__name__} "
                "instead: converting it to CSR",
                ParameterWarning,
                stacklevel=3,
            )
        return super().fit(  # type: ignore[misc]
            user_items, show_progress=show_progress, callback=callback
        )

    def recommend(
        self,
        userid,
        user_items,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
    ):
        if (filter_already_liked_items or recalculate_user) and not _is_csr(user_items):
            raise ValueError("user_items needs to be a CSR sparse matrix")
        ids, scores = super().recommend(  # type: ignore[misc]
            userid,
            user_items,
            N=N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
            items=items,
        )
        if items is not None:
            ids, scores = _fill_requested(ids, scores, items, filter_items)
        return _trim(ids, scores) if np.ndim(userid) == 0 else (ids, scores)

    rank_items = RecommenderBase.rank_items  # implicit's deprecated method, on the ABC

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        ids, scores = super().similar_items(  # type: ignore[misc]
            itemid,
            N,
            recalculate_item=recalculate_item,
            item_users=item_users,
            filter_items=filter_items,
            items=items,
        )
        if items is not None:
            ids, scores = _fill_requested(ids, scores, items, filter_items)
        return _trim(ids, scores) if np.ndim(itemid) == 0 else (ids, scores)

    def similar_users(self, userid, N: int = 10, filter_users=None, users=None):
        ids, scores = super().similar_users(  # type: ignore[misc]
            userid, N, filter_users=filter_users, users=users
        )
        return _trim(ids, scores) if np.ndim(userid) == 0 else (ids, scores)

    # ---- files ----------------------------------------------------------------------------------
    def save(self, fileobj_or_path) -> None:
        """Writes the model in tacitrec's ``.npz`` format (a path, to which ``.npz`` is appended
        if missing, or a binary file object): :meth:`load` here and tacitrec's own classes read
        it; implicit itself does not. Parameter named as implicit's."""
        super().save(fileobj_or_path)  # type: ignore[misc]

    @classmethod
    def load(cls, fileobj_or_path):
        """Loads a model from a path (``.npz`` appended when the path does not exist but the
        path with it does) or a binary file object, in either format:

        * tacitrec's (written by :meth:`save` here or by tacitrec's own classes), as tacitrec's
          ``load``;
        * implicit 0.7.3's, written by its ``model.save(...)``: the factor models' hyper-parameters
          and ``user_factors`` / ``item_factors``, the kNN models' ``K`` and similarity (as CSR
          parts). The result recommends as implicit's model does; the arrays become tacitrec's
          float32 (so do float64 and float16 factors, and the kNN similarity, which implicit keeps
          in float64: scores agree to float32 precision), and a file's ``dtype`` of float16
          (implicit's GPU models) becomes float32.

        A file of another implicit class, an ``.npz`` of other arrays, or arrays that do not form
        a model (factor columns other than the file's ``factors`` implies, a similarity that is
        not square, NaN values...) raise ModelFormatError saying what is wrong; so does anything
        tacitrec's ``load`` refuses. Pickled arrays are never read."""
        if isinstance(fileobj_or_path, (str, os.PathLike)):
            path = os.fspath(fileobj_or_path)
            if os.path.isdir(path):
                return super().load(fileobj_or_path)  # type: ignore[misc]
            if not os.path.exists(path) and os.path.exists(path + ".npz"):
                fileobj_or_path = path + ".npz"
        arrays = _implicit_arrays(fileobj_or_path)
        if arrays is None:
            return super().load(fileobj_or_path)  # type: ignore[misc]
        return cls._from_implicit(arrays, fileobj_or_path)

    @classmethod
    def _reads_implicit(cls, keys) -> bool:
        """Whether an ``.npz`` holding the arrays ``keys`` is in this class's implicit format."""
        known = set(cls._implicit_params) | set(cls._implicit_arrays)
        return cls._implicit_required in keys and set(keys) <= known

    @classmethod
    def _from_implicit(cls, arrays: Dict[str, np.ndarray], file):
        """The model that implicit's ``save`` of this class wrote as ``arrays``."""
        if not cls._reads_implicit(arrays):
            raise ModelFormatError(_not_implicit(cls, arrays, file))
        params = {
            name: _one_value(arrays[name], name, file)
            for name in cls._implicit_params
            if name in arrays
        }
        try:
            model = cls(**params)
            model._check_params()  # type: ignore[attr-defined]  # the model class's
        except (TypeError, ValueError) as e:
            raise ModelFormatError(
                f"{file!r} holds implicit's {cls.__name__} with parameters tacitrec cannot use "
                f"({e})"
            ) from None
        try:
            model._set_implicit_state(
                {k: arrays[k] for k in cls._implicit_arrays if k in arrays}, params
            )
        except (ValueError, TypeError, IndexError) as e:  # ModelFormatError included
            raise ModelFormatError(f"{file!r}: {e}") from None
        return model

    def _set_implicit_state(self, arrays: Dict[str, np.ndarray], params) -> None:
        """Sets the fitted state from the arrays implicit's ``save`` wrote (none: unfitted);
        raises ModelFormatError (or ValueError) saying what is wrong with them."""
        raise NotImplementedError


def _not_implicit(cls, arrays, file) -> str:
    """Why ``arrays`` (an ``.npz`` without tacitrec's metadata) cannot be loaded by ``cls``."""
    keys = sorted(arrays)
    what = f"{file!r} is not a tacitrec model file, nor a file of implicit 0.7.3's {cls.__name__}"
    if not keys:
        return f"{what}: it holds no arrays"
    others = [c.__name__ for c in _IMPLICIT_READERS if c._reads_implicit(keys)]
    if others:
        return (
            f"{what}: its arrays ({', '.join(keys)}) are what implicit's "
            f"{' / '.join(dict.fromkeys(others))} writes; load it with that class of "
            "tacitrec.compat.implicit"
        )
    known = set(cls._implicit_params) | set(cls._implicit_arrays)
    unexpected = [k for k in keys if k not in known]
    if unexpected:
        return (
            f"{what}: implicit's {cls.__name__} does not write the arrays "
            f"{', '.join(map(repr, unexpected))}"
        )
    return f"{what}: it lacks {cls._implicit_required!r}, which implicit always writes"


class ImplicitFactorModel(ImplicitModel):
    """Mixin of the factor models (ALS, BPR, LMF): implicit's ``dtype`` attribute (a
    ``numpy.dtype``), ``user_norms`` / ``item_norms``, the deprecated ``recommend_all`` and
    implicit's factor files."""

    _implicit_arrays = ("user_factors", "item_factors")
    _implicit_required = "factors"

    # ---- dtype --------------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """The ``dtype`` hyper-parameter as a ``numpy.dtype`` (implicit stores
        ``np.dtype(dtype)``: ``model.dtype.name`` works). Computation and factors stay
        float32."""
        d = self.__dict__
        if "_dtype" not in d:  # pickled before this attribute existed: its value was "dtype"
            d["_dtype"] = np.dtype(d.pop("dtype", np.float32))
        return d["_dtype"]

    @dtype.setter
    def dtype(self, value) -> None:
        self.__dict__["_dtype"] = np.dtype(value)  # TypeError for what is not a dtype

    # ---- norms --------------------------------------------------------------------------------
    def _implicit_norms(self, side: str) -> np.ndarray:
        self._shape()  # type: ignore[attr-defined]  # NotFittedError before fit
        factors = getattr(self, f"{side}_factors")

        def norms(f: np.ndarray) -> np.ndarray:
            n = np.linalg.norm(f, axis=-1)
            n[n == 0] = 1e-10  # implicit's stand-in, so that dividing by it is safe
            n.flags.writeable = False
            return n

        return self._derived_from(  # type: ignore[attr-defined]  # MatrixFactorizationBase's
            factors, side, "implicit_norms", norms
        )

    @property
    def user_norms(self) -> np.ndarray:
        """The L2 norm of every row of ``user_factors`` (all columns, bias columns included, as
        implicit), 0 replaced by ``1e-10``; float32, read-only. Unlike implicit's, which caches
        them until the next ``fit`` or ``partial_fit_*`` (so they go stale when the factors are
        edited in place), they always match the current factors: the value is kept only while a
        fingerprint of the factors, checked on every access, stays the same."""
        return self._implicit_norms("user")

    @property
    def item_norms(self) -> np.ndarray:
        """The L2 norm of every row of ``item_factors``; as :attr:`user_norms`."""
        return self._implicit_norms("item")

    # ---- deprecated -----------------------------------------------------------------------------
    def recommend_all(
        self,
        user_items,
        N: int = 10,
        recalculate_user: bool = False,
        filter_already_liked_items: bool = True,
        filter_items=None,
        users_items_offset: int = 0,
    ):
        """Deprecated in implicit, which warns DeprecationWarning (so does this): the ids (2-D,
        no scores) of ``recommend`` for the users ``users_items_offset + 0, 1, ...``, one per
        row of ``user_items``. (implicit 0.7.3 with an offset pads ``user_items`` with as many
        empty rows on top, which then no longer has one row per user: its ``recommend`` raises
        ValueError unless neither filtering nor recalculating; here row ``r`` is user
        ``users_items_offset + r`` in every case.)"""
        warnings.warn(
            "recommend_all is deprecated. Use recommend with an array of userids instead",
            DeprecationWarning,
            stacklevel=2,
        )
        userids = np.arange(user_items.shape[0]) + users_items_offset
        ids, _ = self.recommend(
            userids,
            user_items,
            N=N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
        )
        return ids

    # ---- implicit's files -----------------------------------------------------------------------
    def _set_implicit_state(self, arrays, params) -> None:
        present = [k for k in ("user_factors", "item_factors") if k in arrays]
        if not present:
            return  # saved before fitting
        if len(present) == 1:
            raise ModelFormatError(f"it holds {present[0]} without the other factors")
        width = int(params["factors"]) + self._extra_columns  # type: ignore[attr-defined]
        for name in present:
            shape = arrays[name].shape
            if len(shape) == 2 and shape[1] != width:
                raise ModelFormatError(
                    f"{name} has {shape[1]} columns, but implicit's "
                    f"{type(self).__name__} with factors={params['factors']} has {width}"
                )
        self._set_state(arrays)  # type: ignore[attr-defined]  # checks them: ModelFormatError


class NoUserFoldIn:
    """Mixin for BPR and LMF: implicit's cannot recalculate users, so neither do these (tacitrec's
    own classes fold users in)."""

    def recalculate_user(self, userid, user_items):
        raise NotImplementedError(
            "recalculate_user is not supported with this model (as in implicit); "
            f"tacitrec.{type(self).__name__} folds users in"
        )


def no_gpu(name: str):
    """implicit's ``to_gpu``: without CUDA, implicit's raises ValueError ("... can't train on
    GPU"); tacitrec has no GPU path, so this always does."""
    raise ValueError(
        f"{name}.to_gpu(): tacitrec has no GPU path, can't train on GPU (implicit raises this "
        "ValueError where CUDA is not available); keep the CPU model, whose kernels are "
        "parallel (num_threads)"
    )
