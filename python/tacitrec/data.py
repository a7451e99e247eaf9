"""Building interaction and feature matrices from raw ids, as ``lightfm.data.Dataset`` does.

``Dataset`` maps user ids, item ids and feature names to contiguous indices and builds the
sparse matrices :class:`tacitrec.LightFM` takes. The method names and results are LightFM's;
beyond LightFM: inverse mappings, vectorised builders from arrays
(:meth:`Dataset.build_interactions_from_arrays`), and no silent collision between an id and a
feature of the same name (with identity features LightFM maps both to one column).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable as IterableType
from typing import Dict, Hashable, Iterable, List, Optional, Tuple, cast

import numpy as np
import scipy.sparse as sp

from . import _ids
from ._validation import csr_with_repeats


def _indices(mapping: Dict[Hashable, int], values, what: str) -> np.ndarray:
    """Indices of ``values`` (an array or iterable of ids) in ``mapping``, whose indices are its
    insertion order; raises ValueError naming the first unknown id. Integer and string ids are
    looked up vectorised (:func:`tacitrec._ids.lookup`) when NumPy keeps the registered ids
    apart; otherwise (ids NumPy cannot tell apart, such as strings differing by a trailing NUL or
    ints on both sides of 2^63, or ids of mixed types) the dict decides, by equality, as it did
    when the ids were registered and as LightFM's dicts do."""
    originals = values if isinstance(values, np.ndarray) else list(values)
    arr = originals if isinstance(originals, np.ndarray) else _ids._sequence_array(originals)
    keys = _ids._sequence_array(list(mapping))
    family = {"i": "int", "u": "int", "U": "str", "S": "bytes"}
    vectorised = (
        arr.dtype.kind in family
        and (not len(mapping) or family.get(keys.dtype.kind) == family[arr.dtype.kind])
        and len(np.unique(keys)) == len(mapping)
    )
    if vectorised:
        pos = _ids.lookup(keys, arr, what=what)
    else:
        objects = np.empty(len(originals), dtype=object)
        objects[:] = list(originals)
        pos = np.fromiter((mapping.get(v, -1) for v in objects), np.int64, count=len(objects))
        arr = objects
    unknown = pos < 0
    if unknown.any():
        k = int(np.argmax(unknown))
        bad = arr[k : k + 1].tolist()[0]
        raise ValueError(f"unknown {what} {bad!r}: add it with Dataset.fit_partial first")
    return pos.astype(np.int32)


class Dataset:
    """Id and feature mappings, and the matrices built from them (LightFM's ``Dataset``).

    With ``user_identity_features`` (``item_identity_features``) every user (item) is also its
    own feature, registered when the id is (as LightFM).
    """

    def __init__(self, user_identity_features: bool = True, item_identity_features: bool = True):
        self._user_identity = bool(user_identity_features)
        self._item_identity = bool(item_identity_features)
        self._user_ids: Dict[Hashable, int] = {}
        self._item_ids: Dict[Hashable, int] = {}
        self._user_features: Dict[Hashable, int] = {}
        self._item_features: Dict[Hashable, int] = {}

    # ---- mappings -----------------------------------------------------------------------------
    def fit(self, users, items, user_features=None, item_features=None) -> "Dataset":
        """Starts the mappings afresh from these ids and feature names."""
        type(self).__init__(self, self._user_identity, self._item_identity)
        return self.fit_partial(users, items, user_features, item_features)

    def fit_partial(
        self, users=None, items=None, user_features=None, item_features=None
    ) -> "Dataset":
        """Adds ids and feature names not seen before (in order of first appearance). A
        ValueError (an id that is also a feature name) leaves the mappings as they were."""
        staged = []  # (mapping, new entries) of each of the four, applied once all are checked
        sides = (
            (users, self._user_ids, self._user_features, user_features, self._user_identity),
            (items, self._item_ids, self._item_features, item_features, self._item_identity),
        )
        for (ids, mapping, feats, names, identity), what in zip(sides, ("user", "item")):
            new_ids: Dict[Hashable, int] = {}
            new_feats: Dict[Hashable, int] = {}
            for i in () if ids is None else ids:
                if i in mapping or i in new_ids:
                    continue
                new_ids[i] = len(mapping) + len(new_ids)
                if identity:
                    if i in feats or i in new_feats:
                        raise ValueError(
                            f"{what} id {i!r} is also a {what} feature name: rename the feature "
                            "(identity features would share its column)"
                        )
                    new_feats[i] = len(feats) + len(new_feats)
            for name in () if names is None else names:
                if identity and (name in mapping or name in new_ids):
                    raise ValueError(
                        f"{what} feature {name!r} is also a {what} id: rename the feature "
                        "(identity features would share its column)"
                    )
                if name not in feats and name not in new_feats:
                    new_feats[name] = len(feats) + len(new_feats)
            staged += [(mapping, new_ids), (feats, new_feats)]
        for mapping, new in staged:
            mapping.update(new)
        return self

    def mapping(self) -> Tuple[dict, dict, dict, dict]:
        """``(user_id_map, user_feature_map, item_id_map, item_feature_map)``: the dataset's
        own dicts, as LightFM returns them, so they include what later ``fit_partial`` calls
        add (do not modify them: copy one to edit it)."""
        return self._user_ids, self._user_features, self._item_ids, self._item_features

    def inverse_mapping(self) -> Tuple[list, list, list, list]:
        """Index -> id / feature name lists, in the order of :meth:`mapping`."""
        return cast(Tuple[list, list, list, list], tuple(list(m.keys()) for m in self.mapping()))

    def interactions_shape(self) -> Tuple[int, int]:
        return len(self._user_ids), len(self._item_ids)

    def user_features_shape(self) -> Tuple[int, int]:
        return len(self._user_ids), len(self._user_features)

    def item_features_shape(self) -> Tuple[int, int]:
        return len(self._item_ids), len(self._item_features)

    def model_dimensions(self) -> Tuple[int, int]:
        """``(number of user features, number of item features)``."""
        return len(self._user_features), len(self._item_features)

    # ---- matrices -----------------------------------------------------------------------------
    def build_interactions(self, data: Iterable) -> Tuple[sp.coo_matrix, sp.coo_matrix]:
        """``(interactions, weights)`` COO matrices (users x items) from ``(user, item)`` or
        ``(user, item, weight)`` tuples: interactions hold 1 per pair, weights the given weight
        (1 when absent), as LightFM. Repeated pairs add up when converted to CSR. An entry of
        another length raises ValueError, one that is not a tuple or a weight that is not a real
        number TypeError, each showing the entry."""
        users, items, weights = [], [], []
        form = "data must hold (user, item) or (user, item, weight) tuples"
        for row in data:
            if _entry_length(row, (2, 3), form) == 2:
                (u, i), w = row, 1.0
            else:
                u, i, w = row
                if not isinstance(w, numbers.Real):
                    raise TypeError(f"{form} with a real number as weight, got {row!r}")
            users.append(u)
            items.append(i)
            weights.append(w)
        return self.build_interactions_from_arrays(users, items, weights)

    def build_interactions_from_arrays(
        self, users, items, weights=None
    ) -> Tuple[sp.coo_matrix, sp.coo_matrix]:
        """:meth:`build_interactions` from parallel arrays (vectorised)."""
        u = _indices(self._user_ids, users, "user id")
        i = _indices(self._item_ids, items, "item id")
        return self._interaction_matrices(u, i, weights)

    def _interaction_matrices(self, u, i, weights):
        if len(u) != len(i):
            raise ValueError(f"users and items have different lengths ({len(u)}, {len(i)})")
        w = (
            np.ones(len(u), dtype=np.float32)
            if weights is None
            else np.asarray(weights, dtype=np.float32)
        )
        if w.shape != u.shape:
            raise ValueError(
                f"weights has {w.shape[0] if w.ndim else 0} entries for {len(u)} interactions"
            )
        if not np.isfinite(w).all():
            raise ValueError("weights contains NaN or infinite values")
        shape = self.interactions_shape()
        return (
            sp.coo_matrix((np.ones(len(u), dtype=np.int32), (u, i)), shape=shape),
            sp.coo_matrix((w, (u, i)), shape=shape),
        )

    def _build_features(self, data, ids, feats, identity, what, normalize) -> sp.csr_matrix:
        rows: List[int] = []
        cols: List[int] = []
        vals: List[float] = []
        if identity:
            for key, r in ids.items():
                rows.append(r)
                cols.append(feats[key])
                vals.append(1.0)
        form = f"data must hold ({what}, [feature, ...]) or ({what}, {{feature: weight}}) tuples"
        for entry in data or ():
            _entry_length(entry, (2,), form)
            key, names = entry
            if key not in ids:
                raise ValueError(
                    f"unknown {what} id {key!r}: add it with Dataset.fit_partial first"
                )
            if not isinstance(names, IterableType):
                raise TypeError(f"{form}, got {entry!r}")
            pairs = names.items() if isinstance(names, dict) else ((n, 1.0) for n in names)
            for name, weight in pairs:
                if name not in feats:
                    raise ValueError(
                        f"unknown {what} feature {name!r}: add it with Dataset.fit_partial first"
                    )
                if not isinstance(weight, numbers.Real):
                    raise TypeError(
                        f"{form} with real numbers as weights, got {weight!r} for {name!r} "
                        f"in {entry!r}"
                    )
                rows.append(ids[key])
                cols.append(feats[name])
                vals.append(float(weight))
        return _feature_matrix((len(ids), len(feats)), rows, cols, vals, what, normalize)

    # ---- data frames --------------------------------------------------------------------------
    #: what :meth:`from_frame` builds (None on a Dataset built the LightFM way)
    interactions = weights = user_feature_matrix = item_feature_matrix = None
    frame_kind: Optional[str] = None
    user_col: Optional[str] = None
    item_col: Optional[str] = None
    weight_col: Optional[str] = None

    @classmethod
    def from_frame(
        cls,
        interactions,
        user_col: str = "user_id",
        item_col: str = "item_id",
        weight_col=None,
        user_features=None,
        item_features=None,
        feature_col: str = "feature",
        feature_weight_col=None,
        user_identity_features: bool = True,
        item_identity_features: bool = True,
        normalize_features: bool = True,
    ) -> "Dataset":
        """A Dataset built from a data frame of interaction rows (pandas, polars or a pyarrow
        Table): ids of any type kept as they are, mapped in order of first appearance by
        vectorised kernels (no Python loop over rows). A categorical (dictionary-encoded)
        column gives the values its rows use, in the rows' order, as a plain column of them
        would: its unused categories are no ids, and the categories' own order does not count.

        ``user_features`` / ``item_features`` are optional frames of ``(id, feature[,
        weight])`` rows (columns ``user_col`` / ``item_col``, ``feature_col`` and
        ``feature_weight_col`` when given); ids that appear only there are users / items without
        interactions (cold). Sets ``interactions`` (1 per pair, repeated pairs add up),
        ``weights`` (``weight_col``, or 1), ``user_feature_matrix`` / ``item_feature_matrix``
        (identity features included, rows l1-normalised when ``normalize_features``; None
        without a features frame), ``user_id_array`` / ``item_id_array`` and the frame kind.
        Every model fits from it (``model.fit(dataset)``) and then serves in these ids
        (``recommend_frame``)."""
        from . import frames

        table = frames.to_arrow(interactions, "interactions")
        users = frames.column(table, user_col, "interactions")
        items = frames.column(table, item_col, "interactions")
        side_frames = {}
        for side, F, col in (("user", user_features, user_col), ("item", item_features, item_col)):
            if F is not None:
                F = frames.to_arrow(F, f"{side}_features")
                side_frames[side] = (
                    frames.column(F, col, f"{side}_features"),
                    frames.column(F, feature_col, f"{side}_features"),
                    None
                    if feature_weight_col is None
                    else frames.numbers(
                        frames.column(F, feature_weight_col, f"{side}_features"),
                        feature_weight_col,
                        f"{side}_features",
                    ),
                )
        ids, codes, names, name_codes = {}, {}, {}, {}
        for side, col, name in (("user", users, user_col), ("item", items, item_col)):
            # the ids the rows use (a categorical column's used categories, not all of them),
            # in order of first appearance; then those only the features frame has
            ids[side], codes[side] = _ids.encode(col, order="appearance")
            extra = side_frames.get(side)
            if extra is not None:
                extra_ids = _ids.cast(
                    extra[0],
                    ids[side].type,
                    what=f"column {name!r} of {side}_features",
                    known_as=f"the {side} ids of interactions",
                )
                ids[side], extra_codes = _ids.encode(extra_ids, order="appearance", known=ids[side])
                codes[side] = np.concatenate([codes[side], extra_codes])
                names[side], name_codes[side] = _ids.encode(extra[1], order="appearance")
        data = cls(user_identity_features, item_identity_features)
        data.fit_partial(
            users=ids["user"].to_pylist(),
            items=ids["item"].to_pylist(),
            user_features=names["user"].to_pylist() if "user" in names else None,
            item_features=names["item"].to_pylist() if "item" in names else None,
        )
        u, i = codes["user"][: len(users)], codes["item"][: len(items)]
        w = (
            None
            if weight_col is None
            else frames.numbers(
                frames.column(table, weight_col, "interactions"), weight_col, "interactions"
            )
        )
        X, W = data._interaction_matrices(u, i, w)
        # a (user, item) pair of several rows stays several entries, as in LightFM's Dataset:
        # LightFM trains each, the other models' fits sum them
        data.interactions, data.weights = csr_with_repeats(X), csr_with_repeats(W)
        for side, identity in (("user", user_identity_features), ("item", item_identity_features)):
            extra = side_frames.get(side)
            if extra is None:
                continue
            n, n_rows = len(ids[side]), len(users if side == "user" else items)
            rows = codes[side][n_rows:]
            cols = name_codes[side] + (n if identity else 0)
            vals = np.ones(len(rows), np.float32) if extra[2] is None else extra[2]
            if identity:
                rows = np.concatenate([np.arange(n), rows])
                cols = np.concatenate([np.arange(n), cols])
                vals = np.concatenate([np.ones(n, np.float32), vals])
            shape = data.user_features_shape() if side == "user" else data.item_features_shape()
            setattr(
                data,
                f"{side}_feature_matrix",
                _feature_matrix(shape, rows, cols, vals, side, normalize_features),
            )
        data.frame_kind = frames.kind_of(interactions)
        data.user_col, data.item_col, data.weight_col = user_col, item_col, weight_col
        return data

    def _model_inputs(self, model):
        """``(matrix, fit keyword arguments)`` to fit ``model`` from this Dataset: LightFM gets
        the interactions, the weights as ``sample_weight`` (with a weight column) and the
        feature matrices; the other models the weights (1 per row without a weight column)."""
        from .lightfm import LightFM

        if self.interactions is None:
            raise ValueError(
                "this Dataset holds no interactions: build it with "
                "Dataset.from_frame, or pass build_interactions' matrix to fit"
            )
        if isinstance(model, LightFM):
            extra = {
                "user_features": self.user_feature_matrix,
                "item_features": self.item_feature_matrix,
            }
            if self.weight_col is not None:
                extra["sample_weight"] = self.weights.tocoo()
            return self.interactions, {k: v for k, v in extra.items() if v is not None}
        return self.weights, {}

    @property
    def user_id_array(self) -> np.ndarray:
        """The user id of every row index (NumPy: integers, or str)."""
        from .frames import ids_array

        return ids_array(list(self._user_ids))

    @property
    def item_id_array(self) -> np.ndarray:
        """The item id of every column index."""
        from .frames import ids_array

        return ids_array(list(self._item_ids))

    def build_user_features(self, data=None, normalize: bool = True) -> sp.csr_matrix:
        """Users x user features CSR from ``(user, [feature, ...])`` or ``(user, {feature:
        weight})`` entries, identity features included; ``normalize`` divides every row by the
        sum of its absolute weights (l1), as LightFM. A malformed entry raises ValueError
        (TypeError for features that are neither a list nor a dict, or a weight that is not a
        real number), showing the entry."""
        return self._build_features(
            data, self._user_ids, self._user_features, self._user_identity, "user", normalize
        )

    def build_item_features(self, data=None, normalize: bool = True) -> sp.csr_matrix:
        """Items x item features CSR, as :meth:`build_user_features`."""
        return self._build_features(
            data, self._item_ids, self._item_features, self._item_identity, "item", normalize
        )


def _entry_length(row, lengths: Tuple[int, ...], form: str) -> int:
    """The length of ``row``, an entry of a builder's ``data``: one of ``lengths``, or ValueError
    (TypeError for an entry with no length) saying ``form`` and showing the entry."""
    try:
        n = len(row)
    except TypeError:
        raise TypeError(f"{form}, got {row!r}") from None
    if n not in lengths:
        raise ValueError(f"{form}, got {row!r}")
    return n


def _feature_matrix(shape, rows, cols, vals, what: str, normalize: bool) -> sp.csr_matrix:
    """Rows x features CSR (duplicates summed), l1-normalised as LightFM when ``normalize``."""
    with np.errstate(over="ignore"):  # beyond float32: inf, refused below
        values = np.asarray(vals, dtype=np.float32)
    if not np.isfinite(values).all():
        # NaN would pass through normalisation into every feature weight of its row
        raise ValueError(f"{what} feature weights contain NaN or infinite values")
    F = sp.coo_matrix((values, (rows, cols)), shape=shape).tocsr()
    F.sum_duplicates()
    if not np.isfinite(F.data).all():
        raise ValueError(
            f"{what} feature weights: the weights of a ({what}, feature) pair given more than "
            "once sum past float32's range (about 3.4e38)"
        )
    if normalize:
        # l1, as LightFM: every row divided by the sum of its absolute weights (in float64)
        row_of = np.repeat(np.arange(F.shape[0]), np.diff(F.indptr))
        norms = np.bincount(row_of, weights=np.abs(F.data), minlength=F.shape[0])
        if np.any(norms == 0):
            raise ValueError(
                f"cannot normalize: some {what}s have no features or only zero "
                f"weights (enable {what}_identity_features or pass "
                "normalize=False)"
            )
        F.data = (F.data / norms[row_of]).astype(np.float32)
    return F


__all__ = ["Dataset"]
