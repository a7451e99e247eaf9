"""The recommender API shared by every model: recommend, similar items/users, save/load, pickling.

Conventions follow implicit 0.7 (``user_items`` is a CSR matrix with one row per user), with its
known defects fixed:

* already-liked and filtered items are removed from the candidates, never returned, and every row
  holds ``N' = min(N, number of candidate items)`` results; a row whose user has fewer candidates
  left is padded with id ``-1`` and score ``-inf``;
* batch calls are computed in parallel in Rust, in bounded memory, with exact top-k (ties go to the
  lower item id);
* bad input raises an exception that names the argument.

Concurrency: many readers or one writer per model. Any number of threads may call the serving
methods (``recommend``, ``similar_items``, ``similar_users``, ``recalculate_*``, ``explain``,
``predict``, ``predict_rank``, ``save``...) of one model at once; a training call (``fit``,
``fit_partial``, ``partial_fit_users``, ``partial_fit_items``) waits for the running ones to end and
makes new ones wait until it ends, so no reader sees a half-trained model; two training calls run
one after the other. A fit's callback may serve from the model it trains; a serving call that tries
to train the same model raises RuntimeError naming both calls. To keep serving while a model
retrains, train a copy (``copy.deepcopy(model)``) and swap it in. The lock is per model object,
created on first use, and never pickled, copied or saved.

Interruption: Ctrl-C during a long Rust call (a fit iteration, a batch ``recommend``, metrics)
stops it within a fraction of a second and raises KeyboardInterrupt. A serving call leaves the
model as it was. An interrupted fit keeps the updates made so far: the completed iterations and
the part of the interrupted one that ran, each row's update whole (a state the same algorithm
reaches with a shorter last iteration, as in Keras or PyTorch training loops); the model
recommends and can be trained further. No copy of the model is kept to undo the partial
iteration: such a copy doubled the memory of the factors (and of LightFM's and LMF's
accumulators) for the whole fit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import numpy as np
from tqdm.auto import tqdm

from . import _core, _files
from ._validation import (
    MAX_COUNT,
    Csr,
    as_csr,
    as_factors,
    as_state_array,
    at_most_columns,
    check_count,
    check_fits_in_memory,
    check_flag,
    check_id_list,
    check_ids,
    check_nonnegative,
    check_threads,
    check_trained_finite,
)
from .exceptions import ModelFitError, ModelFormatError, NotFittedError

#: What a fit that would not fit in memory suggests first (a matrix shaped by raw ids).
_SHAPE_HINT = (
    "check the matrix's shape (ids used directly as row or column indices make it as large as "
    "the largest id; map them to 0..n-1 first)"
)
#: Version of the ``.npz`` layout written by :meth:`RecommenderBase.save`.
FORMAT_VERSION = 1
_META_KEY = "__tacitrec__"
_REGISTRY: Dict[str, type] = {}
_Model = TypeVar("_Model", bound="RecommenderBase")  # methods that return the model itself


def _encode_param(value):
    if isinstance(value, (np.dtype, type)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, (np.random.Generator, np.random.RandomState)):
        return None  # a generator's state is not saved; int seeds are
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save parameter value {value!r}")


def _decode_param(obj):
    if isinstance(obj, dict) and set(obj) == {"__dtype__"}:
        return np.dtype(obj["__dtype__"]).type
    return obj


def _check_format_version(version, latest: int, what: str) -> None:
    """Raises ModelFormatError unless the ``format_version`` read from ``what`` is an int in
    ``1..latest``: a newer one asks for an upgrade, anything else (a string, a bool, a number
    below 1, none at all) is malformed."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFormatError(
            f"{what} has a malformed format version {version!r}: expected an integer "
            f"from 1 to {latest}"
        )
    if version > latest:
        raise ModelFormatError(
            f"{what} has format version {version}; this tacitrec reads up to "
            f"{latest}: upgrade tacitrec to load it"
        )


def _dir_path(path, what: str) -> str:
    """``path`` as a str; a file object, or anything else that is not a str or os.PathLike, is a
    TypeError naming ``path`` (``what`` names the directory it should be)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a directory name (a str or os.PathLike), got {type(path).__name__}: "
            f"{what} is a directory of files, not a file object"
        )
    return os.fspath(path)


def _write_dir(path, manifest: str, what: str, write: Callable[[str], None]) -> None:
    """Writes the directory ``path`` by ``write(tmp)`` (:func:`tacitrec._files.replace_dir`: a
    scratch folder renamed into place). An existing directory holding the file ``manifest`` (or
    an empty one) is replaced; anything else at ``path`` is refused with FileExistsError
    (``what`` names what ``path`` should be)."""
    path = os.path.abspath(_dir_path(path, what))
    if os.path.exists(path) and not os.path.isfile(os.path.join(path, manifest)):
        if not os.path.isdir(path) or os.listdir(path):
            raise FileExistsError(
                f"{path!r} exists and is not {what}: choose another path or remove it"
            )
    _files.replace_dir(path, write)


class RecommenderBase:
    """Base class of every tacitrec model.

    Subclasses set their hyper-parameters as attributes named like their ``__init__`` arguments,
    implement ``_shape()`` (numbers of users and items the model knows), ``_recommend(...)`` and
    ``_get_state()`` / ``_set_state()`` (the fitted arrays); everything else comes from here.
    """

    #: whether ``recommend`` scores from the ``user_items`` rows (kNN) rather than from stored
    #: state: otherwise ``user_items`` is only read to filter or recalculate, and is ignored
    #: (not even validated) when neither is asked for, as in implicit.
    _scores_from_user_items = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _accept_datasets(cls)  # fit(Dataset.from_frame(...)): original ids end to end
        _guard_methods(cls)  # many readers or one writer (see the module docstring)
        # tacitrec's own class keeps its name: a compatibility subclass of the same name
        # (tacitrec.compat) loads files of its base class through ``Subclass.load``.
        _REGISTRY.setdefault(cls.__name__, cls)

    # ---- hyper-parameters ---------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The hyper-parameters, as passed to ``__init__`` (``deep`` is accepted, as
        scikit-learn and LightFM pass it, and changes nothing: no parameter is an estimator)."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def set_params(self: _Model, **params) -> _Model:
        """Sets hyper-parameters by name (scikit-learn's and LightFM's ``set_params``); returns
        the model. A name that is not a parameter raises ValueError; the new values are checked
        as ``fit`` checks them (ValueError or TypeError naming the parameter), and on an error
        none of them is set."""
        valid = self.get_params()
        for name in params:
            if name not in valid:
                raise ValueError(
                    f"{name} is not a parameter of {type(self).__name__}; valid: {sorted(valid)}"
                )
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._check_params()
        except (TypeError, ValueError):
            for name in params:
                setattr(self, name, valid[name])
            raise
        return self

    def _check_params(self) -> None:
        """Raises ValueError (TypeError for a value of the wrong type) naming the first
        hyper-parameter out of range; run by ``fit`` and :meth:`set_params`. Models extend it
        with their own parameters."""
        self._threads()
        self._check_flags()

    #: the hyper-parameters that are switches (True / False), checked by :meth:`_check_params`
    _flag_params: Tuple[str, ...] = ()

    def _check_flags(self) -> None:
        for name in self._flag_params:
            check_flag(getattr(self, name), name)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __getstate__(self):
        d = self.__dict__.copy()
        d.pop("_dataset", None)  # the training data is not part of the model
        d.pop(_LOCK_KEY, None)  # a copy gets its own lock
        return d

    def _threads(self) -> int:
        return check_threads(getattr(self, "num_threads", 0))

    # ---- hooks for subclasses -----------------------------------------------------------------
    def _shape(self) -> Tuple[Optional[int], int]:
        """``(n_users, n_items)``; raises NotFittedError before fitting. ``n_users`` is None for
        models that serve any user from its ``user_items`` row."""
        raise NotImplementedError

    def _recommend(
        self,
        userids: np.ndarray,
        user_items: Optional[Csr],
        N: int,
        *,
        filter_liked: bool,
        filter_items: Optional[np.ndarray],
        items: Optional[np.ndarray],
        recalculate_user: bool,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Ids and scores of the validated request (see :meth:`recommend`); ``filter_items``
        and ``items`` are checked int32 id lists or None, and are passed by keyword at every
        layer (to the Rust kernels too)."""
        raise NotImplementedError

    def _get_state(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: Dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ---- public API ---------------------------------------------------------------------------
    def recommend(
        self,
        userid,
        user_items=None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Recommends items for one user or a batch of users.

        Exact: every candidate item is ranked by its full-precision score. (Factor models may
        rule items out with a cheaper int8 pass first, under a proven error bound, so ids, order
        and scores equal a full float32 scan; ``approximate()`` is the approximate path.)

        Parameters
        ----------
        userid : int or array of int
            The user (1-D results) or users (2-D results, one row per user).
        user_items : scipy.sparse matrix, optional
            One row per requested user, in the order of ``userid``, with ``n_items`` columns (or
            fewer: the items beyond are ones the user does not have, e.g. after
            ``partial_fit_items`` grew the model): the items each user already has. Required
            when ``filter_already_liked_items`` or ``recalculate_user`` is true (and by models
            that score from it, kNN); otherwise ignored.
        N : int
            Number of results per user.
        filter_already_liked_items : bool
            Remove the items stored in each user's ``user_items`` row from its candidates.
        filter_items : array of int, optional
            Items never to return.
        recalculate_user : bool
            Compute the user's representation from its ``user_items`` row instead of using the
            stored one (models that support it).
        items : array of int, optional
            Only rank these items (combined with ``filter_items``).

        Returns
        -------
        (ids, scores) : int32 and float32 arrays of shape ``(N',)`` for a scalar ``userid`` or
        ``(len(userid), N')``, where ``N' = min(N, number of candidate items)``. Best first; ties go
        to the lower item id. Where a user has fewer than ``N'`` candidates left after removing
        its liked items, its row is padded with id ``-1`` and score ``-inf``.
        """
        return self._checked_recommend(
            self._shape(),
            self._recommend,
            userid,
            user_items,
            N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
            items=items,
        )

    def _checked_recommend(
        self,
        shape,
        run,
        userid,
        user_items,
        N,
        *,
        filter_already_liked_items,
        filter_items,
        recalculate_user,
        items,
        items_from: Optional[str] = None,
    ):
        """:meth:`recommend`'s validation, then ``run`` (a ``_recommend``-like callable, given
        the flags and id lists by keyword) for a model that knows ``shape = (n_users,
        n_items)``. ``items_from`` names the argument whose rows set ``n_items`` (LightFM's
        ``item_features``): it is the one blamed when ``user_items`` has more columns."""
        n_users, n_items = shape
        filter_already_liked_items = check_flag(
            filter_already_liked_items, "filter_already_liked_items"
        )
        recalculate_user = check_flag(recalculate_user, "recalculate_user")
        bound = None if recalculate_user else n_users
        users, scalar = check_ids(userid, bound, "userid", "users")
        N = check_count(N, "N")
        liked = None
        if not (filter_already_liked_items or recalculate_user or self._scores_from_user_items):
            user_items = None
        if user_items is not None:
            liked = as_csr(user_items, "user_items")
            if items_from is not None and liked.shape[1] > n_items:
                raise ValueError(
                    f"{items_from} has {n_items} rows but user_items has {liked.shape[1]} "
                    f"columns: {items_from} needs a row for every item (column) of user_items"
                )
            liked = at_most_columns(liked, n_items, "user_items")
            if liked.shape[0] != len(users):
                raise ValueError(
                    f"user_items has {liked.shape[0]} rows but {len(users)} users were requested: "
                    "pass one row per requested user, e.g. user_items[userid]"
                )
        elif filter_already_liked_items or recalculate_user:
            need = (
                "recalculate_user=True" if recalculate_user else "filter_already_liked_items=True"
            )
            raise ValueError(
                f"user_items is required with {need}: pass the requested users' rows "
                "(e.g. user_items[userid]) or set filter_already_liked_items=False"
            )
        ids, scores = run(
            users,
            liked,
            N,
            filter_liked=bool(filter_already_liked_items),
            filter_items=check_id_list(filter_items, n_items, "filter_items"),
            items=check_id_list(items, n_items, "items"),
            recalculate_user=bool(recalculate_user),
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def _rows_to_score(self, user_items: Optional[Csr]) -> Csr:
        """``user_items``, for ``_recommend`` of a model that scores from the users' rows
        (``_scores_from_user_items``): it cannot do without them."""
        if user_items is None:
            raise ValueError(
                f"user_items is required: {type(self).__name__} scores items from each user's "
                "row (pass user_items[userid])"
            )
        return user_items

    def _similar_from_rows(self, score, itemid, N, filter_items, items):
        """``similar_items`` of a model that scores items from a user's row: the top ``N`` for
        a user who has only ``itemid`` (scalar or array), that item filtered out. ``score(rows,
        N, filter_liked=, items=, filter_items=)`` is the model's scoring of checked rows."""
        _, n = self._shape()
        ids, scalar = check_ids(itemid, n, "itemid", "items")
        N = check_count(N, "N")
        one_hot = Csr(
            np.arange(len(ids) + 1, dtype=np.int64),
            ids,
            np.ones(len(ids), dtype=np.float32),
            (len(ids), n),
        )
        res = score(
            one_hot,
            N,
            filter_liked=True,
            filter_items=check_id_list(filter_items, n, "filter_items"),
            items=check_id_list(items, n, "items"),
        )
        return (res[0][0], res[1][0]) if scalar else res

    # ---- data frames --------------------------------------------------------------------------
    def recommend_frame(
        self,
        users=None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        items=None,
        *,
        user_items=None,
        unknown: str = "raise",
        frame: Optional[str] = None,
    ):
        """:meth:`recommend` in original ids, as a data frame of ``user_id, item_id, rank,
        score`` (the column names of the :class:`~tacitrec.Dataset` the model was fitted from),
        best first, padding left out.

        ``users``: original ids (a list, array, Series or one-column frame); None: every user of
        the Dataset. Histories (for filtering and kNN scoring) come from ``user_items``, a frame
        of interaction rows in original ids, or else from the Dataset the model was fitted from
        in this process. ``filter_items`` / ``items`` are original item ids. Ids the model does
        not know raise ValueError, or are left out with ``unknown="skip"``. The frame is of the
        library of ``users`` (or of the Dataset's frame; ``frame="pandas" | "polars" |
        "pyarrow"`` chooses). Needs pyarrow."""
        from .frames import recommend_frame

        return recommend_frame(
            self,
            users,
            N,
            filter_already_liked_items,
            filter_items,
            items,
            user_items=user_items,
            unknown=unknown,
            frame=frame,
        )

    def similar_items_frame(self, items=None, N: int = 10, frame: Optional[str] = None):
        """:meth:`similar_items` in original ids, as a frame of ``item_id, similar_item_id,
        rank, score`` (``items`` None: every item); as :meth:`recommend_frame`."""
        from .frames import similar_items_frame

        return similar_items_frame(self, items, N, frame)

    # ---- original ids -------------------------------------------------------------------------
    #: the original id of each user / item index (e.g. from :meth:`tacitrec.Dataset.mapping` or
    #: the command line), or None; kept by :meth:`save` / :meth:`save_dir` and used by
    #: :mod:`tacitrec.distributed` to take and return original ids. Set with :meth:`set_ids`.
    user_ids_: Optional[np.ndarray] = None
    item_ids_: Optional[np.ndarray] = None

    def set_ids(self, user_ids=None, item_ids=None) -> "RecommenderBase":
        """Records the original id of every user and item index (arrays of distinct integers or
        strings, one per row / column of the training matrix; None leaves a side as it is).
        Returns the model."""
        for side, value in (("user", user_ids), ("item", item_ids)):
            if value is not None:
                setattr(self, f"{side}_ids_", _id_array(value, f"{side}_ids", self, side))
        return self

    # ---- persistence --------------------------------------------------------------------------
    def _meta(self) -> Dict[str, Any]:
        return {
            "class": type(self).__name__,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
        }

    def _state_with_ids(self) -> Dict[str, np.ndarray]:
        try:
            state = dict(self._get_state())
        except NotFittedError:
            state = {}
        for side in ("user", "item"):
            ids = getattr(self, f"{side}_ids_")
            if ids is not None:
                state[f"{side}_ids"] = ids
        return state

    def save(self, file) -> None:
        """Saves the model to one ``.npz`` file (a path, to which ``.npz`` is appended if missing,
        or a binary file object). Holds arrays, hyper-parameters, the class name and the format
        version; loads with ``allow_pickle=False``. A ``random_state`` given as a numpy
        Generator or RandomState is saved as None (int seeds are kept). To serve from several
        processes, :meth:`save_dir` writes a form that loads memory-mapped. A path is written
        whole or not at all: an error or Ctrl-C while saving leaves the file that was there."""
        meta = json.dumps(self._meta(), default=_encode_param)
        arrays: Dict[str, Any] = {_META_KEY: np.array(meta), **self._state_with_ids()}
        if not isinstance(file, (str, os.PathLike)):
            np.savez(file, **arrays)
            return
        path = os.fsdecode(file)
        with _files.atomic_output(path if path.endswith(".npz") else path + ".npz", "wb") as f:
            np.savez(f, **arrays)

    def save_dir(self, path) -> None:
        """Saves the model to the directory ``path``: one ``.npy`` file per array and a
        ``manifest.json`` (class, format version, hyper-parameters, the arrays' names, dtypes and
        shapes). :func:`tacitrec.load_dir` opens it memory-mapped, so every process of a machine
        that serves the model shares one copy of it in the page cache. The directory is written
        beside ``path`` and renamed into place, so readers never see a half-written model; an
        existing model directory at ``path`` is replaced, anything else there is refused.
        ``path`` is a directory name: a file object raises TypeError (:meth:`save` writes to
        one)."""
        state = self._state_with_ids()
        manifest = dict(self._meta(), format=_DIR_FORMAT, arrays={})

        def write(tmp: str) -> None:
            for name, arr in state.items():
                arr = _savable(arr, name)
                np.save(os.path.join(tmp, name + ".npy"), arr, allow_pickle=False)
                manifest["arrays"][name] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
            with open(os.path.join(tmp, _MANIFEST), "w", encoding="utf-8") as f:
                json.dump(manifest, f, default=_encode_param, indent=1)

        _write_dir(path, _MANIFEST, "a tacitrec model directory", write)

    @classmethod
    def load(cls, file):
        """Loads a model saved by :meth:`save` (or a directory written by :meth:`save_dir`, read
        into memory). Called on a base class, returns whichever model the file holds; called on
        a model class, the file must hold that class, a subclass (which is returned) or a base
        class of it (then ``cls`` is returned)."""
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            if os.path.isdir(path):
                return cls.load_dir(path, mmap=False)
            if not os.path.exists(path) and os.path.exists(path + ".npz"):
                file = path + ".npz"
        import zipfile

        try:
            z = np.load(file, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ModelFormatError(
                    f"{file!r} holds a single array (.npy), not a tacitrec model (.npz)"
                )
            with z:
                if _META_KEY not in z.files:
                    raise ModelFormatError(f"{file!r} is not a tacitrec model file")
                meta = json.loads(str(z[_META_KEY]), object_hook=_decode_param)
                state = {k: z[k] for k in z.files if k != _META_KEY}
        except (FileNotFoundError, IsADirectoryError, PermissionError, ModelFormatError):
            raise
        except (
            zipfile.BadZipFile,
            ValueError,
            OSError,
            EOFError,
            KeyError,
            TypeError,
            UnicodeDecodeError,
            NotImplementedError,
            zlib_error(),
        ) as e:
            raise ModelFormatError(
                f"{file!r} is not a readable tacitrec model file ({type(e).__name__}: {e})"
            ) from None
        return cls._from_saved(meta, state)

    @classmethod
    def load_dir(cls, path, mmap: bool = True):
        """Opens a model directory written by :meth:`save_dir`. With ``mmap`` (the default) the
        arrays are memory-mapped read-only (``np.load(mmap_mode="r")``): nothing is read until
        used, and processes on one machine share the pages. Training such a model again copies
        its arrays first. Class rules as :meth:`load`."""
        path = _dir_path(path, "a tacitrec model directory")
        manifest_path = os.path.join(path, _MANIFEST)
        if not os.path.isfile(manifest_path):
            raise ModelFormatError(f"{path!r} is not a tacitrec model directory (no {_MANIFEST})")
        try:
            with open(manifest_path, encoding="utf-8") as f:
                meta = json.load(f, object_hook=_decode_param)
            arrays = meta["arrays"]
            if meta.get("format") != _DIR_FORMAT or not isinstance(arrays, dict):
                raise ValueError("not a model manifest")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ModelFormatError(f"{manifest_path!r} is not a valid model manifest ({e})") from e
        state = {}
        for name, spec in arrays.items():
            if not isinstance(name, str) or not name.replace("_", "").isalnum():
                raise ModelFormatError(f"{manifest_path!r} names an invalid array {name!r}")
            file = os.path.join(path, name + ".npy")
            try:
                shape = tuple(spec["shape"])
                size = int(np.prod(shape, dtype=np.int64))
                arr = np.load(file, mmap_mode="r" if (mmap and size) else None, allow_pickle=False)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ModelFormatError(f"cannot read the array {name!r} of {path!r} ({e})") from e
            if arr.shape != shape or arr.dtype.str != spec["dtype"]:
                raise ModelFormatError(
                    f"the array {name!r} of {path!r} has dtype {arr.dtype.str} "
                    f"and shape {arr.shape}; the manifest says "
                    f"{spec['dtype']} and {shape}"
                )
            state[name] = arr
        return cls._from_saved(meta, state)

    @classmethod
    def _saved_params(cls, params):
        """The constructor arguments for ``params`` as a file saved them: a model whose
        parameters changed meaning since an older tacitrec fills in what those files lack."""
        return params

    @classmethod
    def _from_saved(cls, meta, state):
        """The model that ``meta`` (class, format version, params) and ``state`` describe."""
        version = meta.get("format_version") if isinstance(meta, dict) else None
        _check_format_version(version, FORMAT_VERSION, "model file")
        target = _REGISTRY.get(meta.get("class"))
        if target is not None and issubclass(cls, target):
            target = cls  # e.g. a compatibility subclass loading its base class's file
        if target is None or not issubclass(target, cls):
            raise ModelFormatError(
                f"model file holds a {meta.get('class')}, which is not a {cls.__name__}"
            )
        params = target._saved_params(meta.get("params"))
        try:
            model = target(**params)
        except TypeError as e:
            raise ModelFormatError(
                f"the saved parameters of the {meta.get('class')} do not fit this tacitrec ({e})"
            ) from e
        ids = {side: state.pop(f"{side}_ids", None) for side in ("user", "item")}
        try:
            if state:
                model._set_state(state)
            model.set_ids(ids["user"], ids["item"])
        except ModelFormatError:
            raise
        except KeyError as e:
            raise ModelFormatError(f"the saved {meta.get('class')} lacks the array {e}") from None
        except (ValueError, TypeError, IndexError) as e:
            raise ModelFormatError(f"the saved {meta.get('class')} is inconsistent ({e})") from None
        return model

    def __setstate__(self, d) -> None:
        """Unpickling checks the arrays as :meth:`load` does (pickle protocol 5 hands them over
        out-of-band: zero-copy from Ray's object store, possibly unaligned from Dask's frames,
        which are then copied)."""
        self.__dict__.update(d)
        try:
            state = self._get_state()
        except NotFittedError:
            return
        self._set_state(state)

    def _own_state(self) -> None:
        """Replaces state arrays the model cannot write (memory-mapped by :meth:`load_dir`, or
        shared read-only by an object store) with copies, before training updates them in
        place."""
        try:
            state = self._get_state()
        except NotFittedError:
            return
        if any(isinstance(a, np.ndarray) and not a.flags.writeable for a in state.values()):
            self._set_state({k: np.array(a) for k, a in state.items()})


_MANIFEST = "manifest.json"
_DIR_FORMAT = "tacitrec-model-dir"


def zlib_error():
    import zlib

    return zlib.error


def _accept_datasets(cls) -> None:
    """Lets ``cls.fit`` take a :class:`~tacitrec.Dataset` built by ``Dataset.from_frame``: the
    model fits its matrices (and, for LightFM, its features and weights), keeps the Dataset for
    :meth:`RecommenderBase.recommend_frame` (not saved) and records its original ids."""
    import functools

    fit = cls.__dict__.get("fit")
    if fit is None or getattr(fit, "_takes_datasets", False):
        return

    @functools.wraps(fit)
    def fit_from_dataset(self, data, *args, **kwargs):
        from .data import Dataset

        if not isinstance(data, Dataset):
            out = fit(self, data, *args, **kwargs)
            self.__dict__.pop("_dataset", None)
            _drop_stale_ids(self)
            return out
        matrix, extra = data._model_inputs(self)
        out = fit(self, matrix, *args, **dict(extra, **kwargs))
        self._dataset = data
        self.set_ids(user_ids=data.user_id_array, item_ids=data.item_id_array)
        return out

    fit_from_dataset._takes_datasets = True  # type: ignore[attr-defined]  # a marker
    cls.fit = fit_from_dataset


def _drop_stale_ids(model) -> None:
    """Forgets original ids that no longer fit the model's shape (after a refit on other data)."""
    try:
        shape = model._shape()
    except NotFittedError:
        return
    for side, n in zip(("user", "item"), shape):
        ids = getattr(model, f"{side}_ids_")
        if ids is not None and n is not None and len(ids) != n:
            setattr(model, f"{side}_ids_", None)


def _savable(arr, name: str) -> np.ndarray:
    """``arr`` as NumPy saves it without pickling (object arrays of strings become str arrays)."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    return arr


def _id_array(value, name: str, model, side: str) -> np.ndarray:
    """A 1-D array of distinct integer or string ids, as many as the model has users / items."""
    import numbers

    arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
    if arr.dtype.kind == "O":  # a list, or an object array: all strings or all integers
        values = arr.ravel().tolist()
        if all(isinstance(v, str) for v in values):
            arr = arr.astype(str)
        elif all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers or strings (all of one kind)")
    if arr.ndim != 1 or arr.dtype.kind not in "iuU":
        raise ValueError(
            f"{name} must be a 1-D array of integers or strings, got dtype "
            f"{arr.dtype} and shape {arr.shape}"
        )
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{name} holds repeated ids: each index needs its own id")
    try:
        n = model._shape()[0 if side == "user" else 1]
    except NotFittedError:
        n = None
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} ids but the model has {n} {side}s")
    return arr


# ---- concurrency: many readers or one writer per model --------------------------------------


class _ReadersWriter:
    """The lock of one model: any number of threads may read it (``recommend`` and the other
    serving methods) at once, or one thread may write it (``fit``, ``fit_partial``,
    ``partial_fit_*``). A writer waits for the running reads to end, and reads arriving during a
    write wait for it to end (waiting writers go first, so a stream of reads cannot starve a fit).
    The writing thread may read (a fit's callback evaluating the model) and write again (a fit
    calling ``fit_partial``); a thread that is reading may not start writing the same model, which
    would wait for itself: that raises RuntimeError naming both calls."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers: Dict[int, list] = {}  # thread -> names of the calls it is in
        self._writer: Optional[int] = None
        self._writes: list = []  # the writer's calls, outermost first
        self._waiting_writers = 0

    def start_read(self, what: str) -> bool:
        """Enters a read (waiting while a writer runs or waits); returns what
        :meth:`end_read` takes."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                return False  # the writer reads what it writes: nothing to register
            if me not in self._readers:  # a nested read never waits (it would deadlock)
                while self._writer is not None or self._waiting_writers:
                    self._cond.wait()
            self._readers.setdefault(me, []).append(what)
            return True

    def end_read(self, registered: bool) -> None:
        if registered:
            me = threading.get_ident()
            with self._cond:
                calls = self._readers[me]
                calls.pop()
                if not calls:
                    del self._readers[me]
                    self._cond.notify_all()

    def start_write(self, what: str) -> None:
        """Enters a write (waiting until no other thread reads or writes)."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                if me in self._readers:
                    raise RuntimeError(
                        f"{what} was called while the same thread is in "
                        f"{self._readers[me][-1]} on this model: a model cannot be trained "
                        "from inside one of its own serving calls (many readers or one writer "
                        "per model)"
                    )
                self._waiting_writers += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting_writers -= 1
                self._writer = me
            self._writes.append(what)

    def end_write(self) -> None:
        with self._cond:
            self._writes.pop()
            if not self._writes:
                self._writer = None
                self._cond.notify_all()

    @contextlib.contextmanager
    def reading(self, what: str):
        registered = self.start_read(what)
        try:
            yield
        finally:
            self.end_read(registered)

    @contextlib.contextmanager
    def writing(self, what: str):
        self.start_write(what)
        try:
            yield
        finally:
            self.end_write()


def _model_lock(model) -> _ReadersWriter:
    """The model's lock, created on first use. It lives beside the model (a weak-keyed table),
    not in its ``__dict__``, so pickles, copies, saved files and comparisons of ``__dict__``
    (implicit's tests compare a reloaded model's) never see it; a copy gets its own."""
    lock = _LOCKS.get(model)
    if lock is None:
        with _LOCKS_GUARD:  # two threads never get different locks
            lock = _LOCKS.get(model)
            if lock is None:
                lock = _LOCKS[model] = _ReadersWriter()
    return lock


_LOCK_KEY = "_readers_writer"  # where older pickles kept it (dropped when pickling)
_LOCKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()

#: Methods that read a model (many threads at once) and that write it (one thread, alone).
_READERS = (
    "recommend",
    "similar_items",
    "similar_users",
    "recalculate_user",
    "recalculate_item",
    "explain",
    "predict",
    "predict_rank",
    "get_user_representations",
    "get_item_representations",
    "as_factor_model",
    "approximate",
    "save",
    "save_dir",
    "recommend_frame",
    "similar_items_frame",
)
_WRITERS = ("fit", "fit_partial", "partial_fit_users", "partial_fit_items")


def _guarded(method, mode: str):
    if getattr(method, "_tacitrec_guard", None):
        return method

    name = method.__name__
    if mode == "read":

        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            lock = _model_lock(self)
            registered = lock.start_read(f"{type(self).__name__}.{name}")
            try:
                return method(self, *args, **kwargs)
            finally:
                lock.end_read(registered)
    else:

        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            lock = _model_lock(self)
            lock.start_write(f"{type(self).__name__}.{name}")
            try:
                return method(self, *args, **kwargs)
            finally:
                lock.end_write()

    guarded._tacitrec_guard = mode  # type: ignore[attr-defined]  # a marker
    return guarded


def _guard_methods(cls) -> None:
    """Wraps the reading and writing methods that ``cls`` defines itself in the model's lock."""
    for names, mode in ((_READERS, "read"), (_WRITERS, "write")):
        for name in names:
            method = cls.__dict__.get(name)
            if callable(method):
                setattr(cls, name, _guarded(method, mode))


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere). An epoch's arrays of a few bytes per interaction
    (BPR's blocks, LightFM's order), once freed, stay in the freeing thread's heap when they are
    under glibc's mmap threshold (up to 32 MiB), and the next epoch, run by another thread, takes
    new ones: resident memory grows by one epoch's arrays. Trimming after each epoch gives them
    back (measured in benches/compare/RESULTS.md)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def _train_epochs(
    n_epochs: int,
    step,
    *,
    check,
    desc: str,
    show_progress: bool,
    summary=None,
    callback=None,
) -> None:
    """The fit loop every trained model shares. For each epoch:

    * ``step(epoch)`` updates the model (in Rust, in place); Ctrl-C midway stops it between
      chunks of work and the KeyboardInterrupt propagates, the model keeping the updates made
      so far (no copy of the arrays is kept to restore: see the module docstring);
    * ``check(epoch)`` raises if the epoch diverged (ModelFitError naming the epoch);
    * ``summary(epoch, result)`` (``result`` is what ``step`` returned) gives the progress bar's
      postfix (a dict, or None) and the values the callback gets after the epoch and the
      elapsed time (a tuple); without it, none;
    * the progress bar (``desc``, shown with ``show_progress``) advances and
      ``callback(epoch, elapsed_seconds, *values)`` is called, the time running from the start
      of the epoch to here.
    """
    with tqdm(total=n_epochs, disable=not show_progress, desc=desc) as bar:
        for epoch in range(n_epochs):
            start = time.perf_counter()
            result = step(epoch)
            trim = _malloc_trim()
            if trim is not None:
                trim(0)
            check(epoch)
            postfix, values = summary(epoch, result) if summary is not None else (None, ())
            if postfix:
                bar.set_postfix(postfix)
            bar.update(1)
            if callback is not None:
                callback(epoch, time.perf_counter() - start, *values)


def check_use_gpu(use_gpu) -> bool:
    """implicit's ``use_gpu`` keyword: accepted as False (tacitrec has no GPU path yet)."""
    if use_gpu:
        raise ValueError(
            "use_gpu=True: tacitrec has no GPU path yet; its CPU kernels are "
            "parallel (see num_threads): pass use_gpu=False"
        )
    return False


def _normalize_rows(factors: np.ndarray) -> np.ndarray:
    """The rows of ``factors`` (2-D) divided by their Euclidean norms, as float32 (zero rows stay
    zero). Computed in float64, a block of rows at a time: float32 squares overflow from values
    of about 1.8e19, which would make such a row's norm infinite and the row zero."""
    out = np.empty(factors.shape, dtype=np.float32)
    step = max(1, 2**18 // max(factors.shape[1], 1))
    for lo in range(0, len(factors), step):
        block = np.asarray(factors[lo : lo + step], dtype=np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        norms[norms == 0] = 1.0
        out[lo : lo + step] = block / norms
    return out


class MatrixFactorizationBase(RecommenderBase):
    """A model whose scores are dot products of user and item factors.

    ``user_factors`` (n_users x f) and ``item_factors`` (n_items x f) are NumPy float32 arrays that
    can be read and assigned (assignment copies and validates them). The class is usable on its
    own to serve factors trained elsewhere::

        model = MatrixFactorizationBase()
        model.user_factors, model.item_factors = U, V
        ids, scores = model.recommend(userids, user_items[userids], N=10)

    ``similar_items`` / ``similar_users`` rank by cosine similarity of the factors. One query
    divides by each row's norm as it reads the factors; batches (and factors with bias columns,
    BPR's and LMF's) use normalised factors cached while the factors' values stay the same (a
    fingerprint of the factors is checked on every such call), so editing the factors in place
    is seen either way.
    """

    #: what the ``dtype`` hyper-parameter of a trained subclass may be (implicit's CPU choices);
    #: the kernels compute in float32 and the factors are float32 either way.
    _dtypes: Tuple[type, ...] = (np.float32, np.float64)
    #: the hyper-parameters a trained subclass checks before fitting, in this order: counts
    #: (name -> (minimum, maximum or None)), then ``num_threads``, ``dtype`` and ``use_gpu``
    #: where the model has them, then finite numbers >= 0 (names).
    _count_params: Dict[str, Tuple[int, Optional[int]]] = {}
    _nonnegative_params: Tuple[str, ...] = ()
    #: bias / constant columns after the ``factors`` latent ones (implicit's layout for BPR and
    #: LMF, so that a plain dot product scores with the biases); ``similar_items`` /
    #: ``similar_users`` compare the latent columns only.
    _extra_columns = 0
    # hyper-parameters of the trained subclasses, read by the shared fit helpers below
    # (annotations only: the class itself has none of them)
    factors: int
    iterations: int
    dtype: Any

    def __init__(self, num_threads: int = 0):
        self.num_threads = num_threads
        self._user_factors: Optional[np.ndarray] = None
        self._item_factors: Optional[np.ndarray] = None
        # values derived from one side's factors: (side, kind) -> (the factors' key, value)
        self._derived: Dict[Tuple[str, str], Tuple[Tuple, Any]] = {}

    @property
    def user_factors(self) -> Optional[np.ndarray]:
        return self._user_factors

    @user_factors.setter
    def user_factors(self, value) -> None:
        n = None if self._item_factors is None else self._item_factors.shape[1]
        self._user_factors = None if value is None else as_factors(value, "user_factors", n)
        self._forget("user")

    @property
    def item_factors(self) -> Optional[np.ndarray]:
        return self._item_factors

    @item_factors.setter
    def item_factors(self, value) -> None:
        n = None if self._user_factors is None else self._user_factors.shape[1]
        self._item_factors = None if value is None else as_factors(value, "item_factors", n)
        self._forget("item")

    def _check_params(self) -> None:
        for name, (low, high) in self._count_params.items():
            check_count(
                getattr(self, name), name, minimum=low, maximum=MAX_COUNT if high is None else high
            )
        check_threads(self.num_threads)
        if hasattr(self, "dtype"):
            self._check_dtype()
        if hasattr(self, "use_gpu"):
            check_use_gpu(self.use_gpu)
        for name in self._nonnegative_params:
            check_nonnegative(getattr(self, name), name)
        self._check_flags()

    def _check_dtype(self) -> None:
        try:
            ok = np.dtype(self.dtype) in self._dtypes
        except TypeError:
            ok = False
        if not ok:
            names = " or ".join(np.dtype(t).name for t in self._dtypes)
            raise ValueError(
                f"dtype must be {names} (tacitrec's {type(self).__name__} computes "
                f"in float32), got {self.dtype!r}"
            )

    def _shape(self) -> Tuple[int, int]:
        if self._user_factors is None or self._item_factors is None:
            raise NotFittedError(
                f"{type(self).__name__} has no factors yet: call fit() or assign "
                "user_factors and item_factors"
            )
        return self._user_factors.shape[0], self._item_factors.shape[0]

    def recalculate_user(self, userid, user_items):
        """The factors of users computed from their ``user_items`` rows (models that can fold
        users in override this)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot recalculate user factors from user_items; "
            "use the stored factors (recalculate_user=False)"
        )

    def recalculate_item(self, itemid, item_users):
        """The factors of items computed from their ``item_users`` rows (models that can fold
        items in override this)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot recalculate item factors from item_users; "
            "use the stored factors (recalculate_item=False)"
        )

    def _rows_per_id(
        self, ids, rows, names: Tuple[str, str], convert
    ) -> Tuple[np.ndarray, bool, Csr]:
        """What :meth:`recalculate_user` / :meth:`recalculate_item` start from: ``ids`` (any
        non-negative ids, scalar or 1-D) as int32 and whether it was a scalar, and ``rows``
        converted by ``convert(rows, name)`` to one row per id. ``names`` are the arguments'
        names (ids, rows), used in the errors."""
        ids_arr, scalar = check_ids(ids, None, names[0])
        c = convert(rows, names[1])
        if c.shape[0] != len(ids_arr):
            raise ValueError(
                f"{names[1]} has {c.shape[0]} rows but {len(ids_arr)} ids were "
                "given: pass one row per id"
            )
        return ids_arr, scalar, c

    def _user_vectors(self, userids, user_items, recalculate_user) -> np.ndarray:
        if recalculate_user:
            return self.recalculate_user(userids, user_items)
        assert self._user_factors is not None  # the caller's _shape() raised otherwise
        return self._user_factors[userids]

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        assert self._item_factors is not None  # the caller's _shape() raised otherwise
        queries = self._user_vectors(userids, user_items, recalculate_user)
        liked = user_items if (filter_liked and user_items is not None) else None
        return _core.topk_dot(
            queries,
            self._item_factors,
            N,
            liked,
            items=items,
            filter_items=filter_items,
            num_threads=self._threads(),
        )

    # ---- training (what every trained subclass's fit shares) ----------------------------------
    def _same_shape(self, n_users: int, n_items: int) -> bool:
        """Whether the current factors fit ``n_users`` x ``n_items`` with this model's width
        (``factors`` plus the extra columns): then a second ``fit`` continues from them, as
        implicit's does; otherwise it draws new ones."""
        d = int(self.factors) + self._extra_columns
        return (
            self._user_factors is not None
            and self._item_factors is not None
            and self._user_factors.shape == (n_users, d)
            and self._item_factors.shape == (n_items, d)
        )

    def _check_fit_memory(self, n_users: int, n_items: int) -> None:
        """Before a ``fit`` on ``n_users`` x ``n_items`` draws new factors (not when it continues
        from factors of that shape): MemoryError naming the bytes when the factors and the fit's
        per-row arrays (float32 factors of ``factors`` plus the extra columns, 8 bytes per row)
        exceed the memory available (:func:`check_fits_in_memory`)."""
        if self._same_shape(n_users, n_items):
            return
        width = int(self.factors) + self._extra_columns
        check_fits_in_memory(
            (n_users + n_items) * (4 * width + 8),
            f"{type(self).__name__} on {n_users:,} users x {n_items:,} items ({width} float32 "
            "columns of factors per row)",
            _SHAPE_HINT + " or lower factors",
        )

    def _fit_epochs(
        self, step, *, desc: str, show_progress: bool, callback, unit: str, hint: str, summary=None
    ) -> "MatrixFactorizationBase":
        """Runs ``iterations`` epochs of ``step(epoch)``, which updates the factors in place, in
        the shared fit loop (:func:`_train_epochs`: progress bar, callback, Ctrl-C).
        After every epoch the cached normalised factors are dropped and the factors are checked:
        NaN or infinite values raise ModelFitError "<factors> became NaN or infinite in <unit>
        <epoch>: <hint>" and leave the model unfitted (implicit keeps the NaN factors). Returns
        the model."""
        self._forget()

        def check(epoch: int) -> None:
            self._forget()
            assert self._user_factors is not None and self._item_factors is not None  # fitted
            try:
                check_trained_finite(
                    {"user_factors": self._user_factors, "item_factors": self._item_factors},
                    f"{unit} {epoch}",
                    hint,
                )
            except ModelFitError:
                # NaN factors serve nothing, and no file or pickle could keep them
                self._user_factors = self._item_factors = None
                raise

        _train_epochs(
            int(self.iterations),
            step,
            check=check,
            desc=desc,
            show_progress=show_progress,
            summary=summary,
            callback=callback,
        )
        return self

    def _latent(self, factors: np.ndarray) -> np.ndarray:
        """The columns of ``factors`` compared by ``similar_items`` / ``similar_users``."""
        return factors[:, : factors.shape[1] - self._extra_columns]

    def _similarity_factors(self, side: str) -> np.ndarray:
        factors = self._user_factors if side == "user" else self._item_factors
        assert factors is not None  # the caller's _shape() raised otherwise
        return self._latent(factors)

    def _derived_from(self, factors: np.ndarray, side: str, kind: str, compute) -> Any:
        """``compute(factors)`` of ``side``'s ``factors`` (the array the caller works with),
        kept while their values stay the same: a fingerprint of the array (one read of it, at
        memory speed) is compared on every use, so factors edited in place are noticed.
        (implicit's caches of such values, its factor norms and ``YtY``, go stale when the
        factors are edited in place.)"""
        if not (factors.flags.c_contiguous and factors.dtype == np.float32):
            return compute(factors)  # not a layout the model makes itself: nothing is kept
        key = (factors.shape, _core.factors_fingerprint(factors))
        derived = self.__dict__.setdefault("_derived", {})
        hit = derived.get((side, kind))
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute(factors)
        derived[(side, kind)] = (key, value)
        return value

    def _forget(self, side: Optional[str] = None) -> None:
        """Drops the values derived from ``side``'s factors (both sides' by default)."""
        derived = self.__dict__.setdefault("_derived", {})  # absent in older pickles
        for key in [k for k in derived if side is None or k[0] == side]:
            derived.pop(key, None)

    def _normalized(self, side: str) -> np.ndarray:
        factors = self._user_factors if side == "user" else self._item_factors
        assert factors is not None  # the caller's _shape() raised otherwise
        return self._derived_from(
            factors, side, "normalized", lambda f: _normalize_rows(self._latent(f))
        )

    def _cosine_top(self, side, queries, N, subset, filter_ids, num_threads):
        """The ``N`` best rows of ``side``'s factors by cosine with the normalised ``queries``.
        One query reads every row once anyway: it divides by the rows' norms as it goes, which
        needs no normalised copy (nor the fingerprint that keeps one fresh, a read of all the
        factors). Batches, and factors with bias columns, score the kept normalised rows (so
        that the first pass applies)."""
        latent = self._similarity_factors(side)
        one = len(queries) == 1 and latent.flags.c_contiguous and latent.dtype == np.float32
        return _core.topk_dot(
            queries,
            latent if one else self._normalized(side),
            N,
            None,
            items=subset,
            filter_items=filter_ids,
            num_threads=num_threads,
            cosine=one,
        )

    def _similar(self, side, ids, N, filter_ids, subset, names, recalculate, rows):
        n_users, n_items = self._shape()
        bound = n_users if side == "user" else n_items
        plural = side + "s"
        N = check_count(N, "N")
        if recalculate:
            fold_in = self.recalculate_user if side == "user" else self.recalculate_item
            vectors = fold_in(ids, rows)
            scalar = vectors.ndim == 1
            queries = _normalize_rows(self._latent(np.atleast_2d(vectors)))
        else:
            ids, scalar = check_ids(ids, bound, names[0], plural)
            queries = _normalize_rows(self._similarity_factors(side)[ids])
        res_ids, scores = self._cosine_top(
            side,
            queries,
            N,
            check_id_list(subset, bound, names[2], plural),
            check_id_list(filter_ids, bound, names[1], plural),
            self._threads(),
        )
        return (res_ids[0], scores[0]) if scalar else (res_ids, scores)

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        """The ``N`` items most similar to ``itemid`` (scalar or array) by cosine of the item
        factors, the item itself included (it ranks first unless its factors are zero). Returns
        ``(ids, scores)`` shaped like :meth:`recommend`'s.

        With ``recalculate_item=True`` the query items' factors are computed from their rows of
        ``item_users`` (one row per id, users as columns) by :meth:`recalculate_item`, so an
        item not seen in training can be compared (models that cannot fold items in raise
        NotImplementedError, as implicit's). ``item_users`` is ignored otherwise."""
        return self._similar(
            "item",
            itemid,
            N,
            filter_items,
            items,
            ("itemid", "filter_items", "items"),
            recalculate_item,
            item_users,
        )

    def similar_users(
        self,
        userid,
        N: int = 10,
        filter_users=None,
        users=None,
        recalculate_user: bool = False,
        user_items=None,
    ):
        """The ``N`` users most similar to ``userid`` (scalar or array) by cosine of the user
        factors, the user itself included. Returns ``(ids, scores)`` like :meth:`recommend`.
        With ``recalculate_user=True`` the query users' factors are computed from their rows of
        ``user_items`` by :meth:`recalculate_user` (implicit has no such option)."""
        return self._similar(
            "user",
            userid,
            N,
            filter_users,
            users,
            ("userid", "filter_users", "users"),
            recalculate_user,
            user_items,
        )

    def approximate(self, **index_params):
        """An :class:`~tacitrec.approximate.ApproximateRecommender` over these factors: the same
        ``recommend`` / ``similar_items``, answered from an HNSW graph index (faiss-cpu, the
        optional extra ``ann``: ``pip install "tacitrec[ann]"``) for catalogues too large to
        scan per user. **Approximate**: which items come back may miss some of the exact top-N
        (recall is measured, not promised; ``ef_search`` trades speed for recall); their scores
        are exact, and every row still holds ``N'`` results after liked and filtered items are
        removed. This model's own methods stay exact. ``index_params``: ``M``,
        ``ef_construction``, ``ef_search``, ``dtype``, ``similar_items``, ``exact_above``,
        ``num_threads`` (see the class). Retraining the model afterwards needs a new index."""
        from .approximate import INDEX_PARAMS, ApproximateRecommender

        unknown = sorted(set(index_params) - set(INDEX_PARAMS))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not an index parameter of approximate(); "
                f"valid: {', '.join(INDEX_PARAMS)}"
            )
        return ApproximateRecommender(self, **index_params)

    def _get_state(self) -> Dict[str, np.ndarray]:
        self._shape()
        assert self._user_factors is not None and self._item_factors is not None  # _shape()
        return {"user_factors": self._user_factors, "item_factors": self._item_factors}

    def _set_state(self, state) -> None:
        user = as_state_array(state["user_factors"], "user_factors", np.float32, 2)
        item = as_state_array(state["item_factors"], "item_factors", np.float32, 2)
        if user.shape[1] != item.shape[1]:
            raise ModelFormatError(
                f"the saved user factors have {user.shape[1]} columns and the "
                f"item factors {item.shape[1]}"
            )
        self._user_factors, self._item_factors = user, item
        self._derived = {}

    def __getstate__(self):
        d = super().__getstate__()
        d["_derived"] = {}
        return d


_guard_methods(RecommenderBase)
