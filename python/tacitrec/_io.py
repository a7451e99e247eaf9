"""Reading interaction files and the command line's model bundles (private; used by the CLI).

An interaction file is a table of user, item and optionally weight columns: CSV/TSV or any
single-character separated text (quoted fields in comma-separated files), ``::``-separated text
(MovieLens 1M), whitespace-separated text, or Parquet (needs pyarrow; read by the streaming
reader :func:`tacitrec.io.read_interactions`). Ids are kept as strings.
Text goes through the package's one delimited-file reader (:mod:`tacitrec._delimited`), ids
through its one id encoder (:mod:`tacitrec._ids`); where pyarrow is installed and can read a
text file exactly as that reader would (:func:`_read_text_arrow`), pyarrow parses it into the
streaming reader instead.
"""

from __future__ import annotations

import codecs
import io
import itertools
import json
import math
import os
from array import array
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import scipy.sparse as sp

from . import _delimited, _files, _ids

_PARQUET = (".parquet", ".pq")
_SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "space": None, "whitespace": None}


@dataclass
class Interactions:
    """A users x items matrix with the original ids of its rows and columns."""

    matrix: sp.csr_matrix  # float32, duplicates summed
    user_ids: np.ndarray  # str, sorted
    item_ids: np.ndarray  # str, sorted


def _check_file(path: str, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory, not a file")
    return path


def _column(spec: Optional[str], header: Optional[List[str]], what: str) -> Optional[int]:
    """Index of a column given by 0-based position or by header name (None: no column)."""
    if spec is None:
        return None
    spec = str(spec)
    if spec.isdigit():
        return int(spec)
    if header is None:
        raise ValueError(
            f"--{what}-col {spec!r} names a column but the file has no header: "
            "give a 0-based position, or --header yes"
        )
    if spec not in header:
        raise ValueError(
            f"--{what}-col {spec!r} is not a column of the header ({', '.join(header)})"
        )
    return header.index(spec)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_interactions(
    path,
    sep: Optional[str] = None,
    header: str = "auto",
    user_col="0",
    item_col="1",
    weight_col: Optional[str] = "auto",
    min_weight: Optional[float] = None,
    encoding: str = "utf-8",
) -> Interactions:
    """The users x items matrix of an interaction file, with its ids (sorted as strings).

    ``user_col`` / ``item_col`` / ``weight_col`` are 0-based positions or header names;
    ``weight_col="auto"`` takes the third column when the file has one, ``None``/"none" gives
    every interaction weight 1. ``header="auto"`` treats the first line as a header when a column
    is chosen by name, or when its weight (else user) field is not a number but the next line's
    is. Rows whose weight is below ``min_weight`` are dropped; duplicate pairs are summed.
    Text is read in ``encoding`` (a UTF-8 byte-order mark is skipped). Malformed rows, and ids
    that NumPy's strings cannot keep (a trailing NUL character), raise ValueError naming the file
    and line.
    """
    path = _check_file(path, "interactions file")
    if weight_col is not None and str(weight_col).lower() == "none":
        weight_col = None
    if header not in ("auto", "yes", "no"):
        raise ValueError(f"header must be 'auto', 'yes' or 'no', got {header!r}")
    if path.lower().endswith(_PARQUET):
        return _read_parquet(path, sep, header, user_col, item_col, weight_col, min_weight)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        fast = _read_text_arrow(
            path, sep, header, user_col, item_col, weight_col, min_weight, encoding
        )
        if fast is not None:
            return fast
        try:
            parsed = _read_text(path, sep, header, user_col, item_col, weight_col, encoding)
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}: not {encoding} text (it holds the byte "
                f"{e.object[e.start]:#04x}): give the file's encoding, e.g. "
                "--encoding latin-1"
            ) from None
    (user_ids, rows), (item_ids, cols), weights = parsed
    if min_weight is not None:
        keep = weights >= float(min_weight)
        rows, cols, weights = rows[keep], cols[keep], weights[keep]
        user_ids, rows = _compact(user_ids, rows)  # ids left without interactions go
        item_ids, cols = _compact(item_ids, cols)
    if len(weights) == 0:
        raise ValueError(
            f"{path}: no interactions"
            + (f" with weight >= {min_weight}" if min_weight is not None else "")
        )
    X = sp.csr_matrix(
        (weights.astype(np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    X.sum_duplicates()
    if not np.isfinite(X.data).all():
        raise ValueError(
            f"{path}: the weights of a (user, item) pair stored more than once sum past "
            "float32's range (about 3.4e38): rescale the weights"
        )
    return Interactions(X, user_ids, item_ids)


def _compact(ids: np.ndarray, codes: np.ndarray):
    used, codes = _ids.encode(codes)
    return ids[used], codes


def _layout(path, head, sep, header, user_col, item_col, weight_col):
    """The separator, whether there is a header, and the positions of the user, item and weight
    columns (weight None: none), from the file's first two non-blank ``(number, text)`` lines
    and the options; also the fields of the first line."""
    sep = _SEPARATORS.get(sep, sep) if sep is not None else None
    if sep is None:
        sep = _delimited.sniff(head[0][1])
    parsed = [fields for _, fields in _delimited.records(head, path, sep)]
    first = parsed[0]
    has_header = header == "yes"
    if header == "auto":
        has_header = any(
            c is not None and not str(c).isdigit() and c != "auto"
            for c in (user_col, item_col, weight_col)
        )
        if not has_header and len(parsed) > 1:
            second = parsed[1]
            probe = 2 if weight_col is not None and min(len(first), len(second)) > 2 else 0
            if str(weight_col).isdigit():
                probe = int(weight_col)
            if probe < min(len(first), len(second)):
                has_header = not _is_number(first[probe]) and _is_number(second[probe])
    names = [c.strip() for c in first] if has_header else None
    if weight_col == "auto":
        weight_col = "2" if len(first) > 2 else None
    u, i, w = (
        _column(user_col, names, "user"),
        _column(item_col, names, "item"),
        _column(weight_col, names, "weight"),
    )
    if u is None or i is None:
        raise ValueError("user_col and item_col must be given (a position or a header name)")
    return sep, has_header, (u, i, w), first


def _read_text_arrow(path, sep, header, user_col, item_col, weight_col, min_weight, encoding):
    """The file read by pyarrow's CSV parser into the streaming reader
    (:func:`tacitrec.io.read_interactions`), ten times and more the speed of the line reader; or
    None where this cannot give the line reader's result: pyarrow missing, a text encoding
    other than UTF-8, whitespace or a multi-character separator, blank lines before the first
    record, or a file the parser refuses or whose ids the line reader would change or refuse
    (ids with surrounding spaces, a quote in a comma-separated id, a NUL at the end; a line of
    another field count; a weight that is not a finite number). The caller then reads it line
    by line, which also gives the error message of a malformed file."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.dataset as ds
    except ImportError:
        return None
    if codecs.lookup(encoding).name != "utf-8":
        return None
    try:
        with open(path, "rb") as f:
            head = list(itertools.islice(_delimited.lines(f, encoding), 2))
        if not head or head[0][0] != 1:
            return None
        sep, has_header, (u, i, w), first = _layout(
            path, head, sep, header, user_col, item_col, weight_col
        )
        if sep is None or len(sep) != 1 or sep in '"\r\n' or max(u, i, w or 0) >= len(first):
            return None
        names = [f"c{j}" for j in range(len(first))]
        types = {name: pa.string() for name in names}  # other columns are read, not parsed
        if w is not None:
            types[names[w]] = pa.float64()
        fmt = ds.CsvFileFormat(
            parse_options=pcsv.ParseOptions(delimiter=sep, quote_char='"' if sep == "," else False),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=int(has_header)),
            convert_options=pcsv.ConvertOptions(column_types=types),
        )
        from . import io

        X, user_ids, item_ids = io.read_interactions(
            ds.dataset(path, format=fmt),
            names[u],
            names[i],
            None if w is None else names[w],
            min_weight=None if min_weight is None else float(min_weight),
        )
    except (ValueError, OSError, UnicodeDecodeError, pa.ArrowException):
        return None
    for ids in (user_ids, item_ids):
        if ids.dtype.kind != "U" or len(ids) == 0:
            return None
        changed = np.char.str_len(np.char.strip(ids)) != np.char.str_len(ids)
        if changed.any() or (sep == "," and np.char.find(ids, '"').max() >= 0):
            return None
    return Interactions(sp.csr_matrix(X, dtype=np.float32), user_ids, item_ids)


def _read_text(path, sep, header, user_col, item_col, weight_col, encoding="utf-8"):
    with open(path, "rb") as f:
        numbered = _delimited.lines(f, encoding)
        head = list(itertools.islice(numbered, 2))
        if not head:
            raise ValueError(f"{path}: the file is empty")
        sep, has_header, (u, i, w), first = _layout(
            path, head, sep, header, user_col, item_col, weight_col
        )
        need = max(c for c in (u, i, w) if c is not None) + 1
        users, items = _ids.Encoder(), _ids.Encoder()
        rows, cols, weights = array("q"), array("q"), array("d")
        body = head[1:] if has_header else head
        for n, fields in _delimited.records(itertools.chain(body, numbered), path, sep, need):
            user, item = fields[u].strip(), fields[i].strip()
            if user.endswith("\0") or item.endswith("\0"):
                raise ValueError(
                    f"{path}, line {n}: an id ends with a NUL character, which "
                    "NumPy strings drop (two ids would become one): remove it"
                )
            rows.append(users.code(user))
            cols.append(items.code(item))
            if w is not None:
                try:
                    value = float(fields[w])
                except ValueError:
                    raise ValueError(
                        f"{path}, line {n}: weight {fields[w]!r} is not a number"
                    ) from None
                if not math.isfinite(value):
                    raise ValueError(f"{path}, line {n}: weight {fields[w]!r} is not finite")
                weights.append(value)
    if not rows:
        raise ValueError(f"{path}: no rows after the header")
    values = (
        np.frombuffer(weights, dtype=np.float64)
        if w is not None
        else np.ones(len(rows), dtype=np.float64)
    )
    user_ids, rows, _ = users.sorted(np.frombuffer(rows, dtype=np.int64))
    item_ids, cols, _ = items.sorted(np.frombuffer(cols, dtype=np.int64))
    return (user_ids, rows), (item_ids, cols), values


def _read_parquet(path, sep, header, user_col, item_col, weight_col, min_weight=None):
    """A Parquet file through the streaming reader (:func:`tacitrec.io.read_interactions`),
    with the command line's conventions: columns by name or position, ids as strings sorted
    as strings. Returns an :class:`Interactions`."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet files needs pyarrow: pip install pyarrow") from None
    from . import io

    names = list(pq.read_schema(path).names)
    if weight_col == "auto":
        weight_col = "2" if len(names) > 2 else None

    def name(spec, what):
        c = _column(spec, names, what)
        if c is None:
            return None
        if c >= len(names):
            raise ValueError(f"--{what}-col {spec}: {path} has only {len(names)} columns")
        return names[c]

    try:
        X, user_ids, item_ids = io.read_interactions(
            path,
            name(user_col, "user"),
            name(item_col, "item"),
            name(weight_col, "weight"),
            format="parquet",
            min_weight=None if min_weight is None else float(min_weight),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    # the command line keeps ids as strings, sorted as strings
    rows = cols = None
    if user_ids.dtype.kind != "U":
        user_ids = user_ids.astype(str)
        rows = np.argsort(user_ids, kind="stable")
        user_ids = user_ids[rows]
    if item_ids.dtype.kind != "U":
        item_ids = item_ids.astype(str)
        cols = np.argsort(item_ids, kind="stable")
        item_ids = item_ids[cols]
    if rows is not None:
        X = X[rows]
    if cols is not None:
        X = X[:, cols]
        X.sort_indices()
    return Interactions(sp.csr_matrix(X, dtype=np.float32), user_ids, item_ids)


def restrict(other: Interactions, data: Interactions) -> sp.csr_matrix:
    """The interactions of ``other`` whose user and item ids ``data`` knows, as a matrix of
    ``data``'s shape (the rest are dropped)."""
    X = other.matrix.tocoo()
    r = _ids.lookup(data.user_ids, other.user_ids)[X.row]
    c = _ids.lookup(data.item_ids, other.item_ids)[X.col]
    keep = (r >= 0) & (c >= 0)
    return sp.csr_matrix(
        (X.data[keep], (r[keep], c[keep])), shape=data.matrix.shape, dtype=np.float32
    )


def aligned(ids: np.ndarray, features: Interactions) -> sp.csr_matrix:
    """The rows of an id x feature file's matrix for the sorted ``ids`` (ids the file lacks get
    empty rows; ids only in the file are dropped)."""
    X = features.matrix.tocoo()
    rows = _ids.lookup(ids, features.user_ids)[X.row]
    keep = rows >= 0
    return sp.csr_matrix(
        (X.data[keep], (rows[keep], X.col[keep])), shape=(len(ids), X.shape[1]), dtype=np.float32
    )


def with_identity(meta: sp.csr_matrix) -> sp.csr_matrix:
    """LightFM's feature matrix ``[identity | meta]`` with each row scaled to sum 1 (as
    LightFM's Dataset normalises)."""
    n = meta.shape[0]
    M = sp.hstack([sp.identity(n, dtype=np.float32, format="csr"), meta], format="csr")
    sums = np.asarray(M.sum(axis=1)).ravel()
    if (sums <= 0).any():
        raise ValueError(
            f"feature weights must be positive: a row's weights sum to {sums[sums <= 0][0]:g}"
        )
    return (sp.diags(1.0 / sums).astype(np.float32) @ M).tocsr()


# ---- the command line's model bundle -----------------------------------------------------------
_MATRICES = ("train", "user_features", "item_features")


def save_bundle(path, model, data: Interactions, info: dict, **features) -> None:
    """One ``.npz`` holding the model (as saved by ``model.save``), the id mappings, the training
    interactions (user histories for filtering and for kNN scoring) and, for LightFM, the
    ``user_features`` / ``item_features`` matrices it was fitted with."""
    buf = io.BytesIO()
    model.save(buf)
    arrays = {}
    for name, M in (("train", data.matrix), *features.items()):
        if M is not None:
            arrays.update(
                {
                    f"{name}_data": M.data,
                    f"{name}_indices": M.indices,
                    f"{name}_indptr": M.indptr,
                    f"{name}_shape": np.array(M.shape),
                }
            )
    with _files.atomic_output(path, "wb") as f:
        np.savez(
            f,
            tacitrec_cli=np.array(json.dumps(info)),
            model=np.frombuffer(buf.getvalue(), dtype=np.uint8),
            user_ids=data.user_ids,
            item_ids=data.item_ids,
            **arrays,
        )


def load_bundle(path):
    """(model, Interactions, info, features) of a bundle written by :func:`save_bundle`;
    ``features`` maps ``user_features`` / ``item_features`` to the stored matrices."""
    from .base import RecommenderBase
    from .exceptions import ModelFormatError

    path = _check_file(path, "model file")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ModelFormatError(
            f"{path!r} is not a model file written by `tacitrec fit` ({e})"
        ) from e
    with z:
        if "tacitrec_cli" not in z.files:
            raise ModelFormatError(
                f"{path!r} was not written by `tacitrec fit`: the command line needs the id "
                "mappings and histories it stores (a file from Model.save() lacks them)"
            )
        info = json.loads(str(z["tacitrec_cli"]))
        model = RecommenderBase.load(io.BytesIO(z["model"].tobytes()))
        matrices = {
            name: sp.csr_matrix(
                (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
                shape=tuple(z[f"{name}_shape"]),
            )
            for name in _MATRICES
            if f"{name}_data" in z.files
        }
        data = Interactions(matrices.pop("train"), z["user_ids"], z["item_ids"])
    return model, data, info, matrices


def format_scores(values: np.ndarray) -> List[str]:
    return [f"{v:.6g}" if math.isfinite(v) else str(v) for v in values.tolist()]
