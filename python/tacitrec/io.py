"""Reading interaction data sets of any size into a training matrix, in bounded memory.

:func:`read_interactions` streams the record batches of a Parquet, Arrow IPC (Feather) or CSV
data set (one file, a folder of part files, a glob, or a pyarrow Dataset / Table) through
pyarrow's dataset scanner and builds the users x items CSR matrix in two passes:

1. every batch's user and item ids are mapped to codes in Rust (a hash table over the integer
   values, or over the bytes of Arrow's string buffers, read in place; a column that Parquet
   stores dictionary-encoded is read with its dictionary, and only the dictionary is hashed),
   each row is counted for its user, and the codes and weights are appended to scratch files;
2. the row counts give ``indptr``; the matrix is then built a block of users at a time (at
   most :data:`BLOCKS` blocks): the scratch files are read back and each row of the block's
   users is written into its user's next free slot (a counting sort), every row is sorted by
   item and repeated (user, item) pairs are summed, and the block is appended to the output.

Memory: the id tables (about 40 to 60 bytes per distinct integer id, a few more plus its bytes
per string id), a few record batches, then one block's entries before summing (8 bytes per
row) and ``indptr`` (8 bytes per user). With ``out_dir`` the matrix is written to files and
returned memory-mapped, so it is not held at all; without, it is read into memory at the end
(8 bytes per stored pair). The scratch files (12 bytes per row, 8 without weights) are read
and written sequentially, never held.

Ids keep their type: integer columns (any width, signed or not up to 2^63 - 1) give an int64
id array, string columns a str array. Ids are numbered in sorted order (numbers by value,
strings by code point), as ``tacitrec._ids.encode`` and the command line number them; only
ids that have at least one interaction are kept. Repeated pairs are summed (float32), as every
reader of the package does. ``import tacitrec`` does not import this module or pyarrow.
"""

from __future__ import annotations

import glob as _glob
import json
import numbers
import os
import struct
from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse as sp

from . import _core
from ._files import scratch_dir
from ._validation import check_threads

#: rows of scratch codes read back per call of the scatter kernel
CHUNK_ROWS = 1 << 20
#: the matrix is built in this many blocks of users (each reading the scratch files once) ...
BLOCKS = 4
#: ... unless blocks would hold fewer entries than this
MIN_BLOCK_ROWS = 1 << 22
#: rows per record batch asked of the scanner
BATCH_ROWS = 1 << 18
#: the most bytes a row of a dictionary-encoded Parquet column chunk's data pages take (indices
#: of up to 20 bits, as a 1 MB dictionary page of ids holds, and the pages' headers)
_DICT_BYTES_PER_ROW = 3
#: decoded batches waiting for the encoder, at most
READAHEAD = 2
#: the npy header of the matrix files: fixed size, so that it can be rewritten with the final
#: length after repeated pairs are summed
_HEADER = 128
_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".csv": "csv",
    ".tsv": "tsv",
}
MANIFEST = "interactions.json"


class Interactions(NamedTuple):
    """A users x items matrix with the original id of each row and column; unpacks as
    ``user_items, user_ids, item_ids``."""

    user_items: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.dataset as ds
    except ImportError as e:
        raise ImportError("tacitrec.io needs pyarrow: pip install pyarrow") from e
    return pa, ds


def _dictionary_columns(path: str, columns) -> list:
    """The string columns of ``columns`` that the Parquet file ``path`` stores
    dictionary-encoded, judged from its first row group's metadata: read with their
    dictionary, only the dictionary needs hashing. A column whose values overflowed Parquet's
    dictionary page (as a column of many distinct ids does: the writer falls back to plain
    pages) is read as plain strings, since Arrow would rebuild a dictionary from those pages
    row by row, at a higher cost than hashing the ids. The data pages of a dictionary-encoded
    chunk hold bit-packed indices (at most :data:`_DICT_BYTES_PER_ROW` bytes a row for any
    dictionary a page holds); plain pages hold the strings themselves."""
    pa, _ = _pyarrow()
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
        meta, schema = f.metadata, f.schema_arrow
        if meta.num_row_groups == 0:
            return []
        rg = meta.row_group(0)
        chunks = {rg.column(k).path_in_schema: rg.column(k) for k in range(rg.num_columns)}
        keep = []
        for c in columns:
            cc = chunks.get(c)
            if cc is None or not cc.has_dictionary_page or not rg.num_rows:
                continue
            typ = schema.field(c).type
            if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                continue  # integer ids are read as they are
            dict_bytes = cc.data_page_offset - (cc.dictionary_page_offset or 0)
            data_bytes = cc.total_compressed_size - max(dict_bytes, 0)
            if 0 < dict_bytes and data_bytes <= _DICT_BYTES_PER_ROW * rg.num_rows:
                keep.append(c)
        return keep
    except (OSError, pa.ArrowException):
        return []  # the scan reports what is wrong with the file


def _format(name: str, fmt: Optional[str], id_columns=(), probe: Optional[str] = None):
    _, ds = _pyarrow()
    if fmt is None:
        ext = os.path.splitext(name.lower())[1]
        if ext not in _FORMATS:
            raise ValueError(
                f"source {name!r}: cannot tell the format from the name; give format= "
                f"({', '.join(sorted(set(_FORMATS.values())))})"
            )
        fmt = _FORMATS[ext]
    if fmt == "tsv":
        import pyarrow.csv as pcsv

        return ds.CsvFileFormat(parse_options=pcsv.ParseOptions(delimiter="\t"))
    if fmt == "parquet":
        # string ids stored dictionary-encoded are read so: a dictionary per row group, hashed
        # once (integer columns are read as they are)
        # pre_buffer off: with it, pyarrow keeps the whole file's column chunks in memory
        dictionary = _dictionary_columns(probe or name, id_columns) if id_columns else []
        return ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=dictionary),
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
        )
    if fmt in ("ipc", "csv"):
        return fmt
    raise ValueError(f"format must be one of parquet, ipc, csv, tsv, got {fmt!r}")


def _dataset(source, fmt: Optional[str], id_columns):
    """A pyarrow Dataset of ``source`` (a path, glob, Dataset, Table or RecordBatch)."""
    pa, ds = _pyarrow()
    if isinstance(source, ds.Dataset):
        return source
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        return ds.dataset(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"source must be a path, a glob, or a pyarrow Dataset or Table, got "
            f"{type(source).__name__}"
        )
    path = os.fspath(source)
    if any(c in path for c in "*?["):
        files = sorted(f for f in _glob.glob(path) if os.path.isfile(f))
        if not files:
            raise FileNotFoundError(f"source {path!r} matches no file")
        return ds.dataset(files, format=_format(files[0], fmt, id_columns))
    if os.path.isdir(path):
        if fmt is None:
            names = sorted(
                n
                for n in os.listdir(path)
                if os.path.splitext(n.lower())[1] in _FORMATS and not n.startswith((".", "_"))
            )
            if not names:
                raise ValueError(
                    f"source {path!r}: a folder without Parquet, Arrow or CSV files (or give "
                    "format=)"
                )
            fmt_obj = _format(os.path.join(path, names[0]), None, id_columns)
        else:
            first = sorted(n for n in os.listdir(path) if not n.startswith((".", "_")))
            probe = os.path.join(path, first[0]) if first else None
            fmt_obj = _format(path, fmt, id_columns, probe)
        return ds.dataset(path, format=fmt_obj, exclude_invalid_files=False)
    if not os.path.exists(path):
        raise FileNotFoundError(f"source {path!r} does not exist")
    return ds.dataset(path, format=_format(path, fmt, id_columns))


def _kind(typ, name: str) -> str:
    pa, _ = _pyarrow()
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or _is_view(pa, typ):
        return "bytes"
    raise ValueError(f"column {name!r} must hold integer or string ids, got {typ}")


def _is_view(pa, typ) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(typ))


def _encode(table, arr, name: str) -> np.ndarray:
    """The codes of the ids in ``arr`` (a pyarrow Array), each counted."""
    pa, _ = _pyarrow()
    if arr.null_count:
        raise ValueError(f"column {name!r} holds nulls")
    if pa.types.is_dictionary(arr.type):
        if pa.types.is_integer(arr.type.value_type):
            arr = arr.cast(arr.type.value_type)
        else:
            # only the dictionary is hashed; its ids are counted by the rows that use them
            dict_codes = _encode_values(table, arr.dictionary, name, count=False)
            indices = arr.indices
            if not pa.types.is_int32(indices.type):
                indices = indices.cast(pa.int32())
            return table.take_counted(name, dict_codes, indices.to_numpy(zero_copy_only=False))
    return _encode_values(table, arr, name, count=True)


def _encode_values(table, arr, name: str, count: bool) -> np.ndarray:
    pa, _ = _pyarrow()
    typ = arr.type
    if pa.types.is_integer(typ):
        if not pa.types.is_int64(typ):
            try:
                arr = arr.cast(pa.int64())
            except pa.ArrowInvalid:
                raise ValueError(f"column {name!r} holds ids beyond the int64 range") from None
        return table.encode_ints(name, arr.to_numpy(zero_copy_only=False))
    if _is_view(pa, typ):
        arr, typ = arr.cast(pa.large_string()), pa.large_string()
    if arr.null_count:
        raise ValueError(f"column {name!r} holds nulls")
    _, offsets_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_string(typ) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    return table.encode_bytes(name, offsets, data, count)


def _weights(batch, name: str, min_weight):
    pa, _ = _pyarrow()
    col = batch.column(name)
    if col.null_count:
        raise ValueError(f"column {name!r} holds nulls")
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)):
        raise ValueError(f"column {name!r} must hold numbers, got {typ}")
    w64 = col.to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        w = w64.astype(np.float32, copy=False)
    if not np.isfinite(w).all():
        raise ValueError(
            f"column {name!r} holds a weight that is not finite (or beyond float32 range)"
        )
    keep = None if min_weight is None else w64 >= min_weight
    return w, keep


def _npy_header(dtype, n: int) -> bytes:
    body = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (np.dtype(dtype).str, n)
    body = body.ljust(_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def _set_npy_length(path: str, dtype, n: int) -> None:
    """Writes the header of a ``.npy`` file of ``n`` values (whose first bytes were a header
    of :data:`_HEADER` bytes written before the length was known)."""
    with open(path, "r+b") as f:
        f.write(_npy_header(dtype, n))
        f.truncate(_HEADER + n * np.dtype(dtype).itemsize)


def _id_array(table, order: np.ndarray, name: str) -> np.ndarray:
    """The ids of ``table`` in ``order`` (codes) as int64 or str (NumPy's fixed-width
    strings, written by Rust without a Python string per id)."""
    if len(order) == 0:
        return np.zeros(0, np.int64)
    keys = table.int_keys()
    if len(keys) or len(table) == 0:
        return keys[order]
    codes, width = table.utf32_keys(name, order)
    return codes.view(f"<U{width}")


def read_interactions(
    source,
    user_col: str,
    item_col: str,
    weight_col: Optional[str] = None,
    out_dir=None,
    *,
    format: Optional[str] = None,
    min_weight: Optional[float] = None,
    num_threads: int = 0,
) -> Interactions:
    """The users x items matrix of an interaction data set, with the ids of its rows and
    columns, built in bounded memory (see the module docstring).

    Parameters
    ----------
    source : path, glob, pyarrow Dataset or Table
        A Parquet (``.parquet``, ``.pq``), Arrow IPC / Feather (``.arrow``, ``.feather``,
        ``.ipc``) or CSV (``.csv``; ``.tsv`` tab-separated) file, a folder of such part files
        (the format of the first one, unless ``format`` says), a glob (``"parts/*.parquet"``),
        or a pyarrow ``Dataset``, ``Table`` or ``RecordBatch``.
    user_col, item_col : str
        The columns of the user and item ids: integers of any width or strings.
    weight_col : str, optional
        A numeric column of interaction weights (float32); every row weighs 1 without it.
    out_dir : path, optional
        A folder for the matrix: ``indptr.npy``, ``indices.npy``, ``data.npy``,
        ``user_ids.npy``, ``item_ids.npy`` and ``interactions.json`` are written there and the
        matrix is returned memory-mapped from them (reopen it with
        :func:`open_interactions`). Without it the matrix is built in memory.
    format : str, optional
        ``"parquet"``, ``"ipc"``, ``"csv"`` or ``"tsv"`` when the name does not tell.
    min_weight : float, optional
        Rows of a smaller weight are left out (before repeated pairs are summed); ids left
        without rows are dropped.
    num_threads : int
        Threads for sorting the rows (0: all cores); pyarrow decodes with its own pool.

    Returns
    -------
    Interactions
        ``(user_items, user_ids, item_ids)``: a float32 ``scipy.sparse.csr_matrix`` whose rows
        are sorted with repeated pairs summed, and the ids of its rows and columns (int64 or
        str), sorted. A matrix of more than 2^31 - 1 stored pairs is beyond what SciPy's CSR
        holds with 32-bit indices; open it as ``open_interactions(out_dir, scipy=False)``.
    """
    pa, ds = _pyarrow()
    num_threads = check_threads(num_threads)
    for value, what in ((user_col, "user_col"), (item_col, "item_col")):
        if not isinstance(value, str):
            raise TypeError(f"{what} must be a column name, got {type(value).__name__}")
    if weight_col is not None and not isinstance(weight_col, str):
        raise TypeError(
            f"weight_col must be a column name or None, got {type(weight_col).__name__}"
        )
    if min_weight is not None and weight_col is None:
        raise ValueError("min_weight needs weight_col")
    if min_weight is not None and (
        isinstance(min_weight, (bool, np.bool_))
        or not isinstance(min_weight, numbers.Real)
        or np.isnan(min_weight)
    ):
        raise ValueError(f"min_weight must be a number (not NaN) or None, got {min_weight!r}")
    given = [c for c in (user_col, item_col, weight_col) if c is not None]
    if len(set(given)) != len(given):
        raise ValueError(
            f"user_col, item_col and weight_col must name different columns, got {given}"
        )
    dataset = _dataset(source, format, (user_col, item_col))
    names = dataset.schema.names
    columns = [user_col, item_col] + ([weight_col] if weight_col is not None else [])
    for c, what in zip(columns, ("user_col", "item_col", "weight_col")):
        if c not in names:
            raise ValueError(f"{what} {c!r} is not a column of the source ({', '.join(names)})")
    users = _core.IdTable(_kind(dataset.schema.field(user_col).type, user_col))
    items = _core.IdTable(_kind(dataset.schema.field(item_col).type, item_col))

    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
    with scratch_dir(out_dir) as scratch:
        n_rows = _first_pass(dataset, columns, users, items, weight_col, min_weight, scratch)
        pa.default_memory_pool().release_unused()  # the batches' memory, kept by the pool
        if n_rows == 0:
            raise ValueError(
                "the source holds no interactions"
                + (f" with weight >= {min_weight}" if min_weight is not None else "")
            )
        tables = [users, items]  # handed over, so that the second pass can free them
        del users, items
        return _second_pass(tables, weight_col is not None, scratch, out_dir, num_threads, columns)


def _batches(dataset, columns):
    """The record batches of ``dataset``, decoded by one thread of their own while the caller
    encodes the previous ones (the Rust encoder releases the GIL): at most :data:`READAHEAD`
    batches wait. (pyarrow's threaded scanner reads ahead without bound when its consumer is
    slower, holding hundreds of batches.)"""
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(READAHEAD)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            scanner = dataset.scanner(
                columns=columns,
                batch_size=BATCH_ROWS,
                use_threads=False,
                batch_readahead=1,
                fragment_readahead=1,
            )
            for batch in scanner.to_batches():
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    thread = threading.Thread(target=produce, name="tacitrec-io-scan", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _first_pass(dataset, columns, users, items, weight_col, min_weight, scratch) -> int:
    user_col, item_col = columns[:2]
    n = 0
    with (
        open(os.path.join(scratch, "rows"), "wb") as fr,
        open(os.path.join(scratch, "cols"), "wb") as fc,
        open(os.path.join(scratch, "weights"), "wb") as fw,
    ):
        for batch in _batches(dataset, columns):
            if batch.num_rows == 0:
                continue
            if weight_col is not None:
                w, keep = _weights(batch, weight_col, min_weight)
                if keep is not None and not keep.all():
                    batch = batch.filter(keep)
                    w = w[keep]
                    if batch.num_rows == 0:
                        continue
                np.ascontiguousarray(w).tofile(fw)
            _encode(users, batch.column(user_col), user_col).tofile(fr)
            _encode(items, batch.column(item_col), item_col).tofile(fc)
            n += batch.num_rows
    return n


def _blocks(indptr: np.ndarray, block_rows: int):
    """``(lo, hi)`` ranges of whole rows of at most ``block_rows`` entries each (or one row
    when a row alone holds more)."""
    n = len(indptr) - 1
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(indptr, indptr[lo] + block_rows, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


_SUM_OVERFLOW = (
    "column {column}: the weights of a (user, item) pair stored more than once sum past "
    "float32's range (about 3.4e38): rescale the weights"
)


def _second_pass(tables, weighted, scratch, out_dir, num_threads, columns) -> Interactions:
    users, items = tables
    tables.clear()
    users.release_index()
    items.release_index()
    user_order, user_rank = users.sorted_codes()
    item_order, item_rank = items.sorted_codes()
    counts = users.counts()[user_order]
    n_users, n_items = len(user_order), len(item_order)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    del counts
    total = int(indptr[-1])
    # the matrix is built a block of users at a time: each block's rows are gathered from the
    # scratch files (read once per block), sorted and summed, and appended to the output, so
    # that only one block's entries before summing are ever held
    block_rows = max(MIN_BLOCK_ROWS, -(-total // BLOCKS))
    blocks = list(_blocks(indptr, block_rows))
    longest = max(int(indptr[hi] - indptr[lo]) for lo, hi in blocks)
    buf_i, buf_v = np.empty(longest, np.int32), np.empty(longest, np.float32)
    if out_dir is not None:
        paths = {k: os.path.join(out_dir, f"{k}.npy") for k in ("indices", "data")}
    else:
        paths = {k: os.path.join(scratch, k) for k in ("indices", "data")}
    header = b"" if out_dir is None else _npy_header(np.int32, 0)
    chunk_r = np.empty(min(CHUNK_ROWS, total), np.int32)
    chunk_c = np.empty_like(chunk_r)
    chunk_w = np.empty(len(chunk_r), np.float32) if weighted else None
    nnz = 0
    with (
        open(os.path.join(scratch, "rows"), "rb") as fr,
        open(os.path.join(scratch, "cols"), "rb") as fc,
        open(os.path.join(scratch, "weights"), "rb") as fw,
        open(paths["indices"], "wb") as oi,
        open(paths["data"], "wb") as ov,
    ):
        oi.write(header)
        ov.write(header)
        w = None
        base = 0  # the block's first entry before summing (indptr is rewritten as we go)
        for lo, hi in blocks:
            m = int(indptr[hi]) - base
            bptr = np.empty(hi - lo + 1, np.int64)
            bptr[0] = 0
            bptr[1:] = indptr[lo + 1 : hi + 1] - base
            nxt = bptr[:-1].copy()
            idx, val = buf_i[:m], buf_v[:m]
            for f in (fr, fc, fw):
                f.seek(0)
            while True:
                k = fr.readinto(chunk_r.data) // 4
                if k == 0:
                    break
                fc.readinto(chunk_c[:k].data)
                w = None
                if chunk_w is not None:
                    fw.readinto(chunk_w[:k].data)
                    w = chunk_w[:k]
                _core.csr_scatter(
                    chunk_r[:k], chunk_c[:k], w, user_rank, item_rank, lo, nxt, idx, val
                )
            kept = _core.csr_sort_rows_sum_duplicates(bptr, idx, val, num_threads)
            if weighted and not np.isfinite(val[:kept]).all():
                raise ValueError(_SUM_OVERFLOW.format(column=repr(columns[2])))
            idx[:kept].tofile(oi)
            val[:kept].tofile(ov)
            base += m
            indptr[lo + 1 : hi + 1] = nnz + bptr[1:]
            nnz += kept
    # the block's buffers go before the ids and the matrix are built (views of them too)
    del buf_i, buf_v, idx, val, nxt, bptr, w, chunk_r, chunk_c, chunk_w, user_rank, item_rank
    user_ids = _id_array(users, user_order, columns[0])
    item_ids = _id_array(items, item_order, columns[1])
    del user_order, item_order, users, items  # the id tables, before the matrix is read in
    shape = (n_users, n_items)
    if out_dir is None:
        indices = np.fromfile(paths["indices"], np.int32)
        data = np.fromfile(paths["data"], np.float32)
        return Interactions(_csr(indptr, indices, data, shape), user_ids, item_ids)
    _set_npy_length(paths["indices"], np.int32, nnz)
    _set_npy_length(paths["data"], np.float32, nnz)
    np.save(os.path.join(out_dir, "indptr.npy"), indptr)
    np.save(os.path.join(out_dir, "user_ids.npy"), user_ids)
    np.save(os.path.join(out_dir, "item_ids.npy"), item_ids)
    manifest = {
        "format": "tacitrec.interactions",
        "version": 1,
        "shape": list(shape),
        "nnz": nnz,
        "user_col": columns[0],
        "item_col": columns[1],
        "weight_col": columns[2] if len(columns) > 2 else None,
    }
    with open(os.path.join(out_dir, MANIFEST), "w") as out:
        json.dump(manifest, out, indent=1)
    return open_interactions(out_dir)


def _csr(indptr, indices, data, shape) -> sp.csr_matrix:
    """A SciPy CSR matrix over the arrays, without copying ``indices`` or ``data`` (SciPy keeps
    one index dtype: ``indptr`` becomes int32 below 2^31 stored pairs)."""
    if len(indices) > np.iinfo(np.int32).max:
        raise ValueError(
            f"{len(indices)} stored pairs are more than SciPy's CSR matrix holds with int32 "
            "indices: open the matrix with open_interactions(out_dir, scipy=False)"
        )
    m = sp.csr_matrix(shape, dtype=np.float32)
    m.indptr = indptr.astype(np.int32)
    m.indices, m.data = indices, data
    m.has_sorted_indices = True
    m.has_canonical_format = True
    return m


def open_interactions(out_dir, scipy: bool = True, mmap: bool = True) -> Interactions:
    """The matrix and ids that :func:`read_interactions` wrote to ``out_dir``, memory-mapped
    (read-only) unless ``mmap=False``. ``scipy=False`` gives the matrix as the package's
    canonical ``(indptr int64, indices int32, data float32, shape)`` tuple, which every
    model's ``fit`` takes as it is (for more than 2^31 - 1 stored pairs)."""
    from ._validation import Csr

    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{out_dir!r} holds no {MANIFEST} (not written by read_interactions)"
        )
    with open(path) as f:
        try:
            manifest = json.load(f)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{path!r} is not the JSON read_interactions writes ({e})") from None
    arrays = {
        k: np.load(os.path.join(out_dir, f"{k}.npy"), mmap_mode="r" if mmap else None)
        for k in ("indptr", "indices", "data", "user_ids", "item_ids")
    }
    shape = tuple(manifest["shape"])
    indptr = np.asarray(arrays["indptr"]).copy() if mmap else arrays["indptr"]
    if not scipy:
        matrix = Csr(indptr, arrays["indices"], arrays["data"], shape)
    else:
        matrix = _csr(indptr, arrays["indices"], arrays["data"], shape)
    return Interactions(matrix, np.asarray(arrays["user_ids"]), np.asarray(arrays["item_ids"]))


__all__ = ["Interactions", "read_interactions", "open_interactions"]
