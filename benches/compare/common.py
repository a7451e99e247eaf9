"""Shared helpers of the side-by-side benchmarks (peers are optional dev dependencies)."""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import pickle
import platform
import sys
import time
import traceback

import numpy as np
import scipy.sparse as sp


def power_law_user_items(
    n_users: int,
    n_items: int,
    mean_per_user: float,
    seed: int = 0,
    item_skew: float = 0.8,
    user_skew: float = 1.8,
) -> sp.csr_matrix:
    """Users with power-law activity (Zipf counts) choosing items with power-law popularity; binary
    CSR float32 with about ``mean_per_user`` distinct items per user (repeat draws of popular items
    collapse, so the draw count is corrected once)."""
    X = _draw(n_users, n_items, mean_per_user, seed, item_skew, user_skew)
    scale = mean_per_user * n_users / max(X.nnz, 1)
    return _draw(n_users, n_items, mean_per_user * scale, seed, item_skew, user_skew)


def _draw(n_users, n_items, mean_per_user, seed, item_skew, user_skew):
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** item_skew
    pop = rng.permutation(pop / pop.sum())
    raw = np.minimum(rng.zipf(user_skew, n_users), 200).astype(np.float64)
    counts = np.clip(np.rint(raw * mean_per_user / raw.mean()), 1, n_items).astype(np.int64)
    rows = np.repeat(np.arange(n_users), counts)
    cols = rng.choice(n_items, size=counts.sum(), p=pop)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def best_of(fn, repeat: int = 5):
    """(min seconds, median seconds, result of the last call) over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


DATA = os.environ.get(
    "TACITREC_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
)


def _index(values):
    uniq, inv = np.unique(values, return_inverse=True)
    return inv, len(uniq)


def load_real(name: str):
    """users x items CSR float32 of a benchmark dataset in ``DATA``, or None when absent.
    ``ml-100k``: ratings >= 4 as 1; ``lastfm-2k``: play counts as weights."""
    if name == "ml-100k":
        path = os.path.join(DATA, "ml-100k", "ml-100k.inter")
        if not os.path.exists(path):
            return None
        raw = np.loadtxt(path, delimiter="\t", skiprows=1, usecols=(0, 1, 2))
        raw = raw[raw[:, 2] >= 4]
        values = np.ones(len(raw), dtype=np.float32)
    elif name == "lastfm-2k":
        path = os.path.join(DATA, "lastfm-2k", "user_artists.dat")
        if not os.path.exists(path):
            return None
        raw = np.loadtxt(path, delimiter="\t", skiprows=1)
        values = raw[:, 2].astype(np.float32)
    else:
        raise ValueError(name)
    users, n_users = _index(raw[:, 0].astype(np.int64))
    items, n_items = _index(raw[:, 1].astype(np.int64))
    X = sp.csr_matrix((values, (users, items)), shape=(n_users, n_items))
    X.sum_duplicates()
    return X


#: how to install each peer library
INSTALL = {
    "implicit": "pip install implicit==0.7.3",
    "lightfm": "pip install setuptools wheel numpy scipy && "
    "pip install --no-build-isolation lightfm==1.17",
}


def peer(name: str):
    """The peer library's module, or exit with how to install it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        sys.exit(f"{name} is not installed: {INSTALL[name]}")


def cli(doc: str) -> argparse.ArgumentParser:
    """The argument parser of a compare script with the options every script shares."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--json",
        metavar="PATH",
        help="also write the results as a JSON list of records (see record())",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: a tenth of the synthetic data, 1 repeat, few epochs; "
        "not results to publish",
    )
    return ap


def parse(ap: argparse.ArgumentParser) -> argparse.Namespace:
    global _JSON
    args = ap.parse_args()
    _JSON = args.json
    _flush()
    return args


# metric -> whether a higher value is better
HIGHER_IS_BETTER = {
    "seconds": False,
    "peak_mb": False,
    "mb": False,
    "users_per_s": True,
    "precision@10": True,
    "ndcg@10": True,
}
RECORDS: list = []
_JSON = None


def record(
    section: str, model: str, case: str, metric: str, tacitrec, peer, peer_name: str, data: str
) -> None:
    """Collects one measurement of a model pair; rewrites the ``--json`` file at once, so a run
    that fails later keeps what it measured. ``peer`` is None where the peer has no such model;
    nothing is recorded when ``tacitrec`` is None (a measurement this machine cannot take)."""
    if tacitrec is None:
        return
    RECORDS.append(
        dict(
            section=section,
            model=model,
            case=case,
            metric=metric,
            tacitrec=float(tacitrec),
            peer=None if peer is None else float(peer),
            peer_name=peer_name,
            data=data,
            higher_is_better=HIGHER_IS_BETTER[metric],
            script=os.path.splitext(os.path.basename(sys.argv[0]))[0],
        )
    )
    _flush()


def _flush():
    if _JSON:
        with open(_JSON + ".tmp", "w") as fh:
            json.dump(RECORDS, fh, indent=1)
        os.replace(_JSON + ".tmp", _JSON)


def synthetic(
    quick: bool, users: int = 80_000, items: int = 10_000, per_user: float = 50.0, seed: int = 3
):
    """The benchmarks' power-law data (a tenth of the users and items with ``--quick``) and its
    label for the records."""
    if quick:
        users, items = users // 10, items // 10
    X = power_law_user_items(users, items, per_user, seed=seed)
    return X, data_label(X)


def data_label(X) -> str:
    return f"synthetic {X.shape[0] / 1000:g}k x {X.shape[1] / 1000:g}k x {X.nnz / 1e6:.1f}M"


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(key)


def _trim_heap() -> None:
    """Hands the free heap pages of this process back to the OS (glibc's ``malloc_trim``; a no-op
    elsewhere). A forked child inherits the parent's free heap, resident and already counted in
    its baseline: allocations served from it would not show in the peak (a 41 MB factor matrix
    measured as 4 MB above the baseline; each library's share of that pool depended on its
    allocation pattern)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def warm_pages(mb: int) -> None:
    """Touches ``mb`` MB of fresh memory and frees it, so that a measured call's allocations get
    pages the guest kernel has just had back instead of pages its host reclaimed (on the VMs of
    RESULTS.md the first touch of those costs ~5 ms per MB, and which library pays it depended on
    the order of the queue: "Every issue-22 target in one queue")."""
    if mb > 0:
        block = np.ones(mb * 2**20 // 8)
        del block


def steal_seconds() -> float:
    """CPU seconds the hypervisor has taken from this machine's CPUs so far, all of them together
    (``/proc/stat``'s steal column; 0 where there is none), so that a run slowed by other tenants
    of the host can be told from one slowed by the code."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measured(fn, peak: bool = True, warm_mb: int = 0) -> tuple:
    """Runs ``fn()`` in this process and returns (its result, a dict of the call's ``cpu`` (process
    time, all threads), ``wall``, ``sys`` (its system part) and ``steal`` seconds, ``cpu_start``
    (the process time it started at) and ``peak_mb``: the resident high-water mark above the
    resident memory at the call, after the free heap is returned to the OS (None without
    ``peak`` or where /proc/self/clear_refs cannot be written)). ``warm_mb``: see
    :func:`warm_pages`."""
    warm_pages(warm_mb)
    base = None
    if peak:
        _trim_heap()
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current VmRSS
            base = _status_mb("VmRSS")
        except (OSError, KeyError):
            base = None
    c0, t0, s0, st0 = time.process_time(), time.perf_counter(), os.times().system, steal_seconds()
    out = fn()
    m = dict(
        cpu=time.process_time() - c0,
        wall=time.perf_counter() - t0,
        sys=os.times().system - s0,
        steal=steal_seconds() - st0,
        cpu_start=c0,
        peak_mb=None if base is None else _status_mb("VmHWM") - base,
    )
    return out, m


def _child(fn) -> tuple:
    out, m = measured(fn)
    return out, m["wall"], m["peak_mb"]


def forked(fn, repeat: int = 1):
    """Runs ``fn()`` ``repeat`` times, each in a forked child process, and returns (the last
    call's result, which must pickle; the least seconds; the least peak MB). The peak is the
    child's resident high-water mark above its resident memory at the call (after the free heap
    it inherited is returned to the OS), so data made by the parent before the fork is in the
    baseline, not in the peak, and everything the call allocates is in the peak; it is None where
    /proc/self/clear_refs cannot be written (not Linux, some containers). Without os.fork the
    calls run in this process, with no peak.

    Fork before this process runs any tacitrec, implicit or LightFM parallel code: their thread
    pools (rayon, GNU OpenMP) do not survive a fork, and the child would hang."""
    if not hasattr(os, "fork"):
        runs = [_child(fn) for _ in range(repeat)]  # no /proc either: no peak
    elif any(_read(c).startswith("tacitrec-") for c in glob.glob("/proc/self/task/*/comm")):
        raise RuntimeError(
            "tacitrec's thread pools run in this process: a forked child would "
            "hang; take the forked measurements first"
        )
    else:
        runs = [_fork_once(fn) for _ in range(repeat)]
    peaks = [r[2] for r in runs if r[2] is not None]
    return runs[-1][0], min(r[1] for r in runs), min(peaks) if peaks else None


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _fork_once(fn):
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(r)
        try:
            payload = pickle.dumps((True, _child(fn)))
        except BaseException:  # noqa: BLE001 - reported by the parent
            payload = pickle.dumps((False, traceback.format_exc()))
        with os.fdopen(w, "wb") as fh:
            fh.write(payload)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        payload = fh.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError(f"forked child died (wait status {status})")
    ok, value = pickle.loads(payload)
    if not ok:
        raise RuntimeError(f"forked child failed:\n{value}")
    return value
