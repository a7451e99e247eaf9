"""Input validation and coercion to the canonical form the Rust core borrows.

Every public entry point goes through these functions, so that a bad argument gets the same
clear message everywhere: the argument's name and what is wrong with it. Inputs are never
modified; they are copied when conversion is needed.

Canonical forms: CSR matrices as ``Csr`` (indptr int64, indices int32, data float32, every row's
indices sorted and unique, all values finite); factor matrices as C-contiguous float32; id lists
as int32.
"""

from __future__ import annotations

import numbers
import os
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from . import _core


class Csr(NamedTuple):
    """A canonical CSR matrix (see the module docstring); the Rust core takes it as it is,
    shape included."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: Tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def take_rows(self, rows: np.ndarray) -> "Csr":
        """The matrix made of ``rows`` (in that order), without a Python loop."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return Csr(indptr, self.indices[pos], self.data[pos], (len(rows), self.shape[1]))

    def to_scipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


class ValidatedOnce:
    """Whether the kernels may skip their pass over the structure of a model's own CSR matrix
    (a serving call would otherwise read a whole similarity matrix, 10^8 entries at a million
    items, to score one user). Made with the matrix, which it keeps as :func:`model_owned`
    makes it (``csr``, arrays read-only); true once a kernel call has validated them
    (:meth:`run`), and only for arrays in memory Rust owns: NumPy refuses to make those
    writeable again, so nothing can change them. Memory-mapped files and buffers shared with
    another library (pickle protocol 5, an object store) can change under the arrays: those
    are validated by every call."""

    __slots__ = ("csr", "_arrays", "_trusted", "_passed")

    def __init__(self, c: Optional["Csr"]):
        c = None if c is None else model_owned(c)
        arrays = () if c is None else (c.indptr, c.indices, c.data)
        for a in arrays:
            a.flags.writeable = False
        #: the matrix: a call takes it from here, so that it and the flag are read together
        self.csr = c
        self._arrays = arrays
        self._trusted = bool(arrays) and all(_root(a) is _RUST_OWNED for a in arrays)
        self._passed = False

    def __bool__(self) -> bool:
        return self._passed and self._trusted

    def passed(self) -> None:
        """Records that a kernel call validated the arrays (call it after the call returned)."""
        self._passed = True

    def run(self, kernel):
        """``kernel(csr, validated)``, the matrix and whether the kernel may skip validating it
        read together; a call that returns has validated it."""
        assert self.csr is not None  # the model's _shape() raised otherwise
        out = kernel(self.csr, bool(self))
        self._passed = True
        return out

    def __reduce__(self):
        # a copy or an unpickled model makes its own from its arrays (``_set_state``)
        return (ValidatedOnce, (None,))

    def __eq__(self, other) -> bool:
        # models compare equal by their state (implicit's tests compare a reloaded unfitted
        # model's __dict__): trackers of the same matrix (or of none) are equal
        return isinstance(other, ValidatedOnce) and self.csr is other.csr

    __hash__ = None  # type: ignore[assignment]


def _root(a):
    """What owns the memory of array ``a``: the type of the first base that is not an array
    (``np.ndarray`` when an array owns it)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return type(a)


#: what owns the memory of an array made by Rust (rust-numpy's container)
_RUST_OWNED = _root(_core.owned_copy(np.zeros(1, dtype=np.float32)))


def model_owned(c: "Csr") -> "Csr":
    """``c`` with the arrays NumPy owns replaced by copies in memory Rust owns (which
    :class:`ValidatedOnce` can trust); memory-mapped arrays and buffers shared with another
    library are kept as they are (shared, and validated by every call)."""

    def own(a):
        return _core.owned_copy(a) if _root(a) is np.ndarray else a

    return Csr(own(c.indptr), own(c.indices), own(c.data), c.shape)


def _bad(name: str, problem: str) -> ValueError:
    return ValueError(f"{name} is not a valid sparse matrix: {problem}")


#: The largest column index of a canonical CSR matrix (its indices are int32).
MAX_INDEX = int(np.iinfo(np.int32).max)


def check_compressed(
    indptr, indices, data, major: int, minor: int, name: str, kind: str = ""
) -> None:
    """Checks compressed sparse arrays (``major`` rows of ``minor`` columns for CSR): ``indptr`` of
    ``major + 1`` integers from 0, never decreasing, to the number of stored entries, as many
    values as indices, and indices in ``0..minor - 1``. Raises ValueError naming ``name``."""
    indptr, indices, data = np.asarray(indptr), np.asarray(indices), np.asarray(data)
    if indptr.ndim != 1 or indptr.size != major + 1:
        raise _bad(name, f"indptr has shape {indptr.shape}, expected ({major + 1},)")
    if indices.ndim != 1 or data.ndim < 1 or data.shape[0] != indices.size:
        raise _bad(name, f"{indices.size} indices but {data.shape[0] if data.ndim else 0} values")
    for label, arr in (("indptr", indptr), ("indices", indices)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise _bad(name, f"{label} has dtype {arr.dtype}, expected integers")
    if indptr[0] != 0 or indptr[-1] != indices.size:
        raise _bad(
            name,
            f"indptr runs from {int(indptr[0])} to {int(indptr[-1])}, expected "
            f"0 to {indices.size} (the number of stored entries)",
        )
    if major and (np.diff(indptr) < 0).any():
        raise _bad(name, "indptr decreases")
    if indices.size and (indices.min() < 0 or indices.max() >= minor):
        raise _bad(name, f"{kind}indices outside 0..{minor - 1}")


def check_sparse_arrays(X, name: str) -> None:
    """Checks the index arrays of a sparse matrix with NumPy before any SciPy routine reads them.

    SciPy trusts a matrix built from raw arrays (``csr_matrix((data, indices, indptr))``) and
    reads out of bounds, crashing the interpreter, when they disagree. Compressed formats (CSR,
    CSC, BSR) need an ``indptr`` of one entry per row (column) plus one, starting at 0, never
    decreasing and ending at the number of stored entries, and indices within the shape; COO
    needs row and column arrays as long as its data and within the shape. Other formats keep
    no such arrays. Raises ValueError naming ``name``."""
    fmt = getattr(X, "format", None)
    n_rows, n_cols = (int(s) for s in X.shape)
    if fmt in ("csr", "csc", "bsr"):
        if fmt == "bsr":
            r, c = X.blocksize
            major, minor = n_rows // r, n_cols // c
        else:
            major, minor = (n_rows, n_cols) if fmt == "csr" else (n_cols, n_rows)
        kind = {"csr": "column ", "csc": "row "}.get(fmt, "block ")
        check_compressed(X.indptr, X.indices, X.data, major, minor, name, kind)
    elif fmt == "coo":
        data = np.asarray(X.data)
        for label, arr, bound in (("row", X.row, n_rows), ("col", X.col, n_cols)):
            arr = np.asarray(arr)
            if arr.ndim != 1 or arr.size != data.size:
                raise _bad(name, f"{label} has {arr.size} entries but there are {data.size} values")
            if arr.size and (arr.min() < 0 or arr.max() >= bound):
                raise _bad(name, f"{label} indices outside 0..{bound - 1}")


def as_csr(
    X,
    name: str,
    *,
    n_rows: Optional[int] = None,
    n_cols: Optional[int] = None,
    repeats: bool = False,
) -> Csr:
    """Converts any 2-D scipy sparse matrix or array to a canonical ``Csr`` (copying only what
    must change). Dense input raises ``TypeError``; a wrong shape, NaN/inf values or invalid
    indices raise ``ValueError`` naming ``name``. With ``repeats``, an entry stored more than
    once stays as many entries (each row's entries sorted by column, repeats in their stored
    order) instead of being summed."""
    if isinstance(X, Csr):
        csr_shape = X.shape
        if not (
            isinstance(csr_shape, tuple)
            and len(csr_shape) == 2
            and all(isinstance(n, (int, np.integer)) and n >= 0 for n in csr_shape)
        ):
            raise TypeError(f"{name}.shape must be two counts, got {csr_shape!r}")
        csr_shape = (int(csr_shape[0]), int(csr_shape[1]))
    elif sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got a {X.ndim}-D sparse array")
        check_sparse_arrays(X, name)
        csr_shape = (int(X.shape[0]), int(X.shape[1]))
    elif X is None:
        raise TypeError(f"{name} is required (a scipy.sparse matrix), got None")
    else:
        kind = type(X).__name__
        hint = ""
        if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
            hint = f"; convert it with scipy.sparse.csr_matrix({name})"
        raise TypeError(f"{name} must be a scipy.sparse matrix or array, got {kind}{hint}")

    if csr_shape[1] > MAX_INDEX + 1:
        raise ValueError(
            f"{name} has {csr_shape[1]} columns: at most 2**31 are supported "
            "(column indices are 32-bit)"
        )
    if n_rows is not None and csr_shape[0] != n_rows:
        raise ValueError(f"{name} has {csr_shape[0]} rows, expected {n_rows}")
    if n_cols is not None and csr_shape[1] != n_cols:
        raise ValueError(f"{name} has {csr_shape[1]} columns, expected {n_cols} (one per item)")
    if isinstance(X, Csr):
        # arrays from outside (io.open_interactions(scipy=False), a file on disk) reach scipy's
        # unchecked C++ in some fits: the same checks as a scipy matrix gets
        for part, dtype in (("indptr", np.int64), ("indices", np.int32), ("data", np.float32)):
            a = getattr(X, part)
            if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == 1):
                raise TypeError(f"{name}.{part} must be a 1-D {np.dtype(dtype)} array")
        _core.csr_check(X, name, repeats)
        if not all_finite(X.data):
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    m = X.tocsr()
    if not m.has_canonical_format:
        m = m.copy() if m is X else m
        m.sum_duplicates()
    if repeats and m.nnz != X.nnz:  # repeated entries were summed: sort them apart instead
        m = csr_with_repeats(X)
    indices = m.indices
    real = np.issubdtype(m.dtype, np.number) and not np.issubdtype(m.dtype, np.complexfloating)
    if not (real or m.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {m.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, rejected below
        data = np.ascontiguousarray(m.data, dtype=np.float32)
    if not all_finite(data):
        raise ValueError(f"{name} contains NaN or infinite values (or values beyond float32 range)")
    return Csr(
        np.ascontiguousarray(m.indptr, dtype=np.int64),
        np.ascontiguousarray(indices, dtype=np.int32),
        data,
        csr_shape,
    )


def csr_with_repeats(X) -> sp.csr_matrix:
    """``X`` (any scipy sparse matrix) as CSR with each row's entries sorted by column and an
    entry stored more than once kept as many entries, in their stored order (scipy's ``tocsr``
    sums them), its dtype kept."""
    coo = X.tocoo()
    order = np.lexsort((coo.col, coo.row))
    counts = np.bincount(coo.row, minlength=coo.shape[0])
    return sp.csr_matrix(
        (coo.data[order], coo.col[order], np.concatenate([[0], np.cumsum(counts)])),
        shape=coo.shape,
    )


def check_ids(ids, bound: Optional[int], name: str, what: str = "ids") -> Tuple[np.ndarray, bool]:
    """``ids`` as a 1-D int32 array and whether it was a scalar. Ids must be integers in
    ``0..bound`` (``bound=None`` skips the upper check); otherwise ``TypeError`` /
    ``IndexError``."""
    if isinstance(ids, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer or an array of integers, got a bool")
    arr = np.asarray(ids)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    if arr.size == 0 and arr.ndim == 1:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer or an array of integers, got dtype {arr.dtype}")
    scalar = arr.ndim == 0
    arr = arr.reshape(-1)
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0:
            raise IndexError(f"{name} {low} is negative")
        if bound is not None and high >= bound:
            raise IndexError(f"{name} {high} is out of range: the model has {bound} {what}")
        if high > np.iinfo(np.int32).max:
            raise IndexError(f"{name} {high} is out of range: ids must be below 2**31")
    return np.ascontiguousarray(arr, dtype=np.int32), scalar


def check_id_list(ids, bound: int, name: str, what: str = "items") -> Optional[np.ndarray]:
    """An optional list of ids (``filter_items``, ``items``) as int32, range-checked."""
    if ids is None:
        return None
    arr, _ = check_ids(ids, bound, name, what)
    return arr


#: The largest count the Rust kernels take (they index with 64-bit integers).
MAX_COUNT = 2**63 - 1


def check_count(value, name: str, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """A Python int in ``minimum..maximum`` (``N``, ``K``). A number out of range is a ValueError
    naming ``name`` whatever its type (``-1.0`` is out of range, and so is ``2**70``: the kernels
    take 64-bit counts), any other non-integer a TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not value >= minimum:  # type: ignore[operator]  # numbers.Real declares no >=; NaN fails
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if not value <= maximum:
        raise ValueError(f"{name}={value!r} is too large: at most {maximum}")
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def check_fraction(value, name: str, below_one: bool = False) -> float:
    """A share in ``[0, 1]`` (``[0, 1)`` with ``below_one``) as a float: a real number (NumPy's
    too), not a bool or a string, is a TypeError naming ``name``; one out of range (NaN
    included) a ValueError."""
    interval = "[0, 1)" if below_one else "[0, 1]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number in {interval}, got {type(value).__name__} {value!r}"
        )
    if not (0.0 <= float(value) < 1.0 if below_one else 0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return float(value)


#: The largest ``num_threads`` accepted; the Rust pools are capped lower (``_core.MAX_THREADS``,
#: 256), so requests between the two run on that many threads.
MAX_NUM_THREADS = 2**16


def check_threads(value, name: str = "num_threads") -> int:
    """A thread count: an int in ``0..MAX_NUM_THREADS``, where 0 means all cores. Pools are
    capped at 256 threads (``_core.MAX_THREADS``): a larger count runs on 256 threads, and a
    count beyond ``MAX_NUM_THREADS`` (65,536) is refused as a mistake."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer (0 = all cores), got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (0 = all cores), got {value}")
    if not value <= MAX_NUM_THREADS:  # (numbers.Integral declares <= but not >)
        raise ValueError(
            f"{name}={value} is not a usable thread count: at most "
            f"{MAX_NUM_THREADS} (0 = all cores; pools are capped at 256 threads)"
        )
    return int(value)


def check_flag(value, name: str) -> bool:
    """A switch: True or False (NumPy's booleans and the integers 0 and 1 too); any other value
    is a TypeError naming ``name`` (a string such as ``"no"`` would otherwise count as True)."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, numbers.Integral) and int(value) in (0, 1)
    ):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_nonnegative(value, name: str) -> float:
    """A finite real number >= 0 (a learning rate, a regularisation weight) as a float; any other
    value is a ValueError naming ``name``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.number))
        or not np.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def column_counts(indices: np.ndarray, n_cols: int) -> np.ndarray:
    """Entries per column (int64) of a sparse matrix's ``indices``, counted in chunks:
    ``np.bincount`` first casts its whole input to intp, a temporary of 8 bytes per entry (31 MB
    at 3.9M interactions, more than the factors of an 80,000-user BPR). Chunks of at least
    ``n_cols`` entries, no larger than each call's result, and small: freed blocks of a few MB
    stay in the heap."""
    counts = np.zeros(n_cols, dtype=np.int64)
    step = max(1 << 16, n_cols)
    for lo in range(0, len(indices), step):
        counts += np.bincount(indices[lo : lo + step], minlength=n_cols)
    return counts


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of the float32 array ``a`` is finite, without a temporary the size of
    ``a`` (``np.isfinite(a).all()`` makes one): the float64 sum of float32 values cannot overflow,
    so it is finite exactly when they all are."""
    if a.dtype != np.float32:
        raise TypeError(f"all_finite takes float32 arrays, got {a.dtype}")
    with np.errstate(invalid="ignore"):  # inf + -inf: NaN, which is the answer wanted
        return bool(np.isfinite(np.add.reduce(a, axis=None, dtype=np.float64)))


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation, or None where the platform does not say:
    the machine's (Linux's MemAvailable, else the free physical pages), and no more than the
    process's memory cgroup can still grant (:func:`cgroup_available`: a container's or a
    cluster worker's limit, past which Linux kills the process however much the machine has)
    nor than its address-space limit leaves (:func:`address_space_left`: ``ulimit -v``, which
    batch schedulers set, and past which allocations fail)."""
    machine = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    machine = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if machine is None:
        try:
            machine = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    limits = [v for v in (machine, cgroup_available(), address_space_left()) if v is not None]
    return min(limits) if limits else None


def address_space_left() -> Optional[int]:
    """Bytes of address space this process can still map under its ``RLIMIT_AS`` limit (the
    limit less its ``VmSize``), or None without a limit or where either cannot be read (not
    Linux)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY or limit >= _NO_LIMIT:
            return None
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return max(0, limit - int(line.split()[1]) * 1024)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return None


# cgroup v1 writes "no limit" as a page-rounded 2**63 - 1; any limit above 2**62 is none
_NO_LIMIT = 1 << 62


def cgroup_available(
    root: str = "/sys/fs/cgroup", proc: str = "/proc/self/cgroup"
) -> Optional[int]:
    """Bytes the memory cgroups of this process can still grant, or None when none of them has a
    limit (or there are none: not Linux). Each limited cgroup, the process's own and each one
    above it, can grant its limit less what it holds that it cannot reclaim (its usage less its
    inactive file cache, as ``docker stats`` counts it); the least of them. Reads cgroup v2
    (``memory.max``, ``memory.current``) and v1 (``memory.limit_in_bytes``,
    ``memory.usage_in_bytes``), under ``root`` as mounted, the paths from ``proc``."""
    try:
        with open(proc) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    groups = []  # (mount, path in it, limit file, usage file, memory.stat key)
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            groups.append((root, path, "memory.max", "memory.current", "inactive_file"))
        elif "memory" in controllers.split(","):
            groups.append(
                (
                    os.path.join(root, "memory"),
                    path,
                    "memory.limit_in_bytes",
                    "memory.usage_in_bytes",
                    "total_inactive_file",
                )
            )
    least = None
    for mount, path, limit_file, usage_file, inactive_key in groups:
        mount = os.path.realpath(mount)
        here = os.path.realpath(os.path.join(mount, path.lstrip("/")))
        if os.path.commonpath([here, mount]) != mount or not os.path.isdir(here):
            here = mount  # a cgroup namespace: the process's cgroup is the mount's root
        while True:
            can = _cgroup_grants(here, limit_file, usage_file, inactive_key)
            if can is not None:
                least = can if least is None else min(least, can)
            if here == mount:
                break
            here = os.path.dirname(here)
    return least


def _cgroup_grants(
    folder: str, limit_file: str, usage_file: str, inactive_key: str
) -> Optional[int]:
    """What the cgroup at ``folder`` can still grant (see :func:`cgroup_available`), None without
    a limit or where its files cannot be read."""
    try:
        with open(os.path.join(folder, limit_file)) as f:
            limit = f.read().strip()
        if limit == "max" or int(limit) >= _NO_LIMIT:
            return None
        with open(os.path.join(folder, usage_file)) as f:
            usage = int(f.read().strip())
        inactive = 0
        try:
            with open(os.path.join(folder, "memory.stat")) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == inactive_key:
                        inactive = int(value)
                        break
        except OSError:
            pass
        return max(0, int(limit) - max(0, usage - inactive))
    except (OSError, ValueError):
        return None


def check_fits_in_memory(need: int, what: str, hint: str) -> None:
    """MemoryError "<what> needs at least N GB, but only M GB of memory is available: <hint>"
    when ``need`` bytes exceed :func:`available_memory` (for allocations whose size is known
    before they are made: Linux would grant one that does not fit and kill the process when its
    pages are touched)."""
    available = available_memory()
    if available is not None and need > available:
        raise MemoryError(
            f"{what} needs at least {need / 1e9:.2f} GB, but only {available / 1e9:.2f} GB of "
            f"memory is available: {hint}"
        )


def check_scores_finite(scores: np.ndarray) -> None:
    """Raises the error of the Rust top-k drivers when float32 ``scores``, computed from finite
    parameters, hold inf or NaN (an overflow): ranking them would be silently wrong."""
    if not all_finite(scores):
        raise ValueError(
            "scores: a score overflowed float32 (inf or NaN from finite parameters): the "
            "model's parameters are too large; rescale them (factors of a diverged fit: refit "
            "with a lower learning rate or more regularisation)"
        )


def check_trained_finite(arrays: Dict[str, np.ndarray], when: str, hint: str) -> None:
    """Raises ModelFitError when one of the float32 ``arrays`` (name -> array) a fit has just
    updated holds NaN or infinite values: "<name> became NaN or infinite in <when>: <hint>",
    where ``hint`` says which hyper-parameter or data to change."""
    from .exceptions import ModelFitError

    for name, a in arrays.items():
        if not all_finite(a):
            raise ModelFitError(f"{name} became NaN or infinite in {when}: {hint}")


def as_float32_copy(value, name: str, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """A finite float32 C-contiguous copy of the real numbers in ``value`` (of exactly ``shape``
    when given); ValueError naming ``name`` otherwise (complex, text or object values included:
    converting them would drop or garble data)."""
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray(None)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    with np.errstate(over="ignore"):  # beyond float32: inf, rejected below
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
    if not all_finite(out):
        raise ValueError(f"{name} contains NaN or infinite values (or values beyond float32 range)")
    return out


def as_state_array(value, name: str, dtype, ndim: int) -> np.ndarray:
    """A model array read back from a file, an artefact directory or a pickle, checked like a
    fitted one: kept as it is when it already has ``dtype``, C order, ``ndim`` dimensions and
    aligned memory (Dask's deserialisation may hand out unaligned arrays, which kernels refuse; a
    memory map stays mapped, a read-only array from an object store stays shared), converted
    otherwise. Float arrays must be finite. Raises ModelFormatError naming ``name``."""
    from .exceptions import ModelFormatError

    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    dtype = np.dtype(dtype)
    if arr.ndim != ndim:
        raise ModelFormatError(f"the saved {name} has {arr.ndim} dimensions, expected {ndim}")
    if arr.dtype.kind not in ("f" if dtype.kind == "f" else "iu"):
        raise ModelFormatError(f"the saved {name} has dtype {arr.dtype}, expected {dtype.name}")
    if arr.dtype != dtype or not (arr.flags.c_contiguous and arr.flags.aligned):
        with np.errstate(over="ignore"):
            converted = np.array(arr, dtype=dtype, order="C", copy=True)
        if dtype.kind in "iu" and not np.array_equal(converted, arr):
            raise ModelFormatError(f"the saved {name} holds values beyond {dtype.name}")
        arr = converted
    if dtype == np.float32 and not all_finite(arr):
        raise ModelFormatError(f"the saved {name} contains NaN or infinite values")
    return arr


def csr_state(prefix: str, c: Csr) -> Dict[str, np.ndarray]:
    """The arrays of ``c`` named as a model's state holds them (:func:`as_state_csr` reads them
    back)."""
    return {f"{prefix}_indptr": c.indptr, f"{prefix}_indices": c.indices, f"{prefix}_data": c.data}


def as_state_csr(state, prefix: str, name: str, shape: Tuple[int, int]) -> Csr:
    """The CSR matrix of ``shape`` saved as the arrays ``{prefix}_indptr``, ``{prefix}_indices``
    and ``{prefix}_data`` of ``state``, each read by :func:`as_state_array` and the whole checked
    by :func:`check_compressed`. Raises ModelFormatError naming ``name``."""
    from .exceptions import ModelFormatError

    indptr, indices, data = [
        as_state_array(state[f"{prefix}_{part}"], f"{name} {part}", dtype, 1)
        for part, dtype in (("indptr", np.int64), ("indices", np.int32), ("data", np.float32))
    ]
    try:
        check_compressed(indptr, indices, data, shape[0], shape[1], f"the saved {name}", "column ")
    except ValueError as e:
        raise ModelFormatError(str(e)) from e
    return Csr(indptr, indices, data, shape)


def as_factors(value, name: str, n_factors: Optional[int] = None) -> np.ndarray:
    """A finite 2-D float32 C-contiguous copy of ``value``."""
    arr = as_float32_copy(value, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if n_factors is not None and arr.shape[1] != n_factors:
        raise ValueError(f"{name} has {arr.shape[1]} factors, expected {n_factors}")
    return arr


def at_most_columns(c: Csr, n_cols: int, name: str, columns: str = "item") -> Csr:
    """``c`` widened to ``n_cols`` columns: a matrix may have fewer columns than the model has
    items (users), the ones beyond holding no interactions (after ``partial_fit_*`` grew the
    model, as implicit allows); more columns raise ValueError naming ``name``."""
    if c.shape[1] > n_cols:
        raise ValueError(
            f"{name} has {c.shape[1]} columns, expected at most {n_cols} (one per {columns})"
        )
    return c._replace(shape=(c.shape[0], n_cols))


def check_random_state(random_state) -> np.random.Generator:
    """A NumPy Generator from None, an int seed, a Generator or a legacy RandomState."""
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, numbers.Integral) and random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return np.random.default_rng(random_state)  # type: ignore[arg-type]  # any Integral
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
    raise TypeError(
        f"random_state must be None, an int, a numpy Generator or RandomState, "
        f"got {type(random_state).__name__}"
    )
