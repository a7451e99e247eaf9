"""LightFM: tacitrec against LightFM 1.17 in one run.

    python benches/compare/lightfm.py [--threads 2] [--repeat 3] [--skip-speed] [--skip-quality]
                                      [--json PATH] [--quick]

Quality (when ../shared/data exists): MovieLens-100K (rating >= 4, 80/20 ``train_test_split``
seed 42), no_components=64, learning_rate=0.05, 30 epochs, mean of seeds 0-2, tacitrec's
evaluator for both libraries (training items excluded): warp, bpr, warp-kos, logistic,
warp with adadelta, and warp with user features (age decade, gender, occupation) and item
features (genres), identity features included, rows normalised to sum 1.
Speed: synthetic power-law data, 80,000 users x 10,000 items x ~4M interactions, 64
components: seconds per epoch (warp, bpr; warp with ~10 item features per item; best of
``--repeat`` one-epoch fits from the same start, each in a forked process, with its peak resident
memory above the data) and top-10 for 20,000 users (LightFM: predict over all items, then a
NumPy top-10); and building 1M interactions with ``Dataset``. ``--quick``: a tenth of the
synthetic data, 1 repeat, seed 0 only and 3 epochs on MovieLens.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

import numpy as np
import scipy.sparse as sp

from common import (
    DATA,
    best_of,
    cli,
    forked,
    machine,
    parse,
    peer,
    record,
    synthetic,
)

# this file is named like the peer package: keep its folder off the path so that
# `import lightfm` finds LightFM
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

SEEDS = (0, 1, 2)


def movielens_with_features():
    """users x items positives (rating >= 4) and normalised user/item feature matrices with
    identity features, or None when the data folder is absent."""
    base = os.path.join(DATA, "ml-100k")
    if not os.path.exists(os.path.join(base, "ml-100k.inter")):
        return None
    raw = np.loadtxt(
        os.path.join(base, "ml-100k.inter"), delimiter="\t", skiprows=1, usecols=(0, 1, 2)
    )
    raw = raw[raw[:, 2] >= 4]
    uids, u = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
    iids, i = np.unique(raw[:, 1].astype(np.int64), return_inverse=True)
    X = sp.csr_matrix((np.ones(len(raw), np.float32), (u, i)), shape=(len(uids), len(iids)))
    X.sum_duplicates()

    def table(path):
        with open(path, encoding="latin-1") as fh:
            next(fh)
            return {int(p[0]): p[1:] for p in (line.rstrip("\n").split("\t") for line in fh)}

    users, items = (
        table(os.path.join(base, "ml-100k.user")),
        table(os.path.join(base, "ml-100k.item")),
    )

    def features(ids, names_of):
        vocab, rows, cols = {}, [], []
        for r, key in enumerate(ids):
            for name in [f"id:{key}"] + names_of(key):
                rows.append(r)
                cols.append(vocab.setdefault(name, len(vocab)))
        F = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(ids), len(vocab))
        )
        F.sum_duplicates()
        return sp.diags(1.0 / np.asarray(F.sum(axis=1)).ravel()).dot(F).tocsr().astype(np.float32)

    Fu = features(
        uids,
        lambda k: [
            f"age:{int(users[k][0]) // 10}",
            f"gender:{users[k][1]}",
            f"occupation:{users[k][2]}",
        ],
    )
    Fi = features(iids, lambda k: [f"genre:{g}" for g in items[k][2].split()])
    return X, Fu, Fi


class PeerAdapter:
    """Serves a LightFM model through tacitrec's evaluator: predict over all items, liked items
    removed, stable top-N."""

    def __init__(self, model, n_items, threads, user_features=None, item_features=None):
        self.m, self.n, self.t = model, n_items, threads
        self.uf, self.itf = user_features, item_features

    def _shape(self):
        return None, self.n

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **_):
        users = np.atleast_1d(userid)
        S = self.m.predict(
            np.repeat(users, self.n).astype(np.int32),
            np.tile(np.arange(self.n, dtype=np.int32), len(users)),
            user_features=self.uf,
            item_features=self.itf,
            num_threads=self.t,
        ).reshape(len(users), self.n)
        if filter_already_liked_items:
            S[user_items.nonzero()] = -np.inf  # the evaluator hands peers a scipy matrix
        ids = np.argsort(-S, axis=1, kind="stable")[:, :N]
        return ids.astype(np.int32), np.take_along_axis(S, ids, 1)


CASES = [
    ("warp", {}, False),
    ("bpr", {}, False),
    ("warp-kos", {}, False),
    ("logistic", {}, False),
    ("warp", dict(learning_schedule="adadelta"), False),
    ("warp", {}, True),
]


def quality(args):
    import lightfm
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    data = movielens_with_features()
    seeds, epochs = (SEEDS[:1], 3) if args.quick else (SEEDS, 30)
    print(f"\n## quality: MovieLens-100K, mean of seeds {seeds}")
    if data is None:
        print("data folder absent, skipped")
        return
    X, Fu, Fi = data
    train, test = train_test_split(X, 0.8, random_state=42)
    print("| loss | schedule | features | p@10 tacitrec / LightFM | ndcg@10 tacitrec / LightFM |")
    print("|---|---|---|---|---|")
    for loss, extra, feats in CASES:
        fkw = dict(user_features=Fu, item_features=Fi) if feats else {}
        ours, peer = [], []
        for seed in seeds:
            kw = dict(no_components=64, learning_rate=0.05, loss=loss, random_state=seed, **extra)
            o = tacitrec.LightFM(**kw).fit(train, epochs=epochs, num_threads=args.threads, **fkw)
            r = ranking_metrics_at_k(_Served(o, fkw), train, test, K=10, show_progress=False)
            ours.append([r["precision"], r["ndcg"]])
            p = lightfm.LightFM(**kw)
            p.fit(train, epochs=epochs, num_threads=args.threads, **fkw)
            r = ranking_metrics_at_k(
                PeerAdapter(p, X.shape[1], args.threads, **fkw),
                train,
                test,
                K=10,
                show_progress=False,
            )
            peer.append([r["precision"], r["ndcg"]])
        o, p = np.mean(ours, axis=0), np.mean(peer, axis=0)
        model = (
            f"LightFM {loss}"
            + "".join(f", {v}" for v in extra.values())
            + (", user + item metadata" if feats else "")
        )
        for metric, ov, pv in zip(("precision@10", "ndcg@10"), o, p):
            record(
                "quality",
                model,
                f"64 components, {epochs} epochs, seeds {','.join(map(str, seeds))}",
                metric,
                ov,
                pv,
                f"LightFM {lightfm.__version__}",
                "ml-100k",
            )
        print(
            f"| {loss} | {extra.get('learning_schedule', 'adagrad')} | "
            f"{'identity + metadata' if feats else 'identity'} | {o[0]:.4f} / {p[0]:.4f} "
            f"({o[0] / p[0]:.3f}) | {o[1]:.4f} / {p[1]:.4f} ({o[1] / p[1]:.3f}) |",
            flush=True,
        )


class _Served:
    """A tacitrec LightFM with its feature matrices bound, for the evaluator."""

    def __init__(self, model, fkw):
        self.m, self.fkw = model, fkw

    def _shape(self):
        return self.m._shape()

    def recommend(self, userid, user_items, **kw):
        return self.m.recommend(userid, user_items, **kw, **self.fkw)


def speed(args):
    import lightfm
    import tacitrec

    X, data = synthetic(args.quick)
    n_items, n_tags = X.shape[1], X.shape[1] // 10
    rng = np.random.default_rng(0)
    tags = sp.csr_matrix(
        (
            np.ones(n_items * 9, np.float32),
            (np.repeat(np.arange(n_items), 9), rng.integers(0, n_tags, n_items * 9)),
        ),
        shape=(n_items, n_tags),
    )
    tags.sum_duplicates()
    Fi = sp.hstack([sp.identity(n_items, dtype=np.float32, format="csr"), tags]).tocsr()
    peer_name = f"LightFM {lightfm.__version__}"
    print(
        f"\n## speed: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} interactions, "
        f"64 components, {args.threads} threads; one-epoch fits: best of {args.repeat}, peak "
        "resident memory above the data"
    )
    print("| case | tacitrec | LightFM | speed-up | fit peak MB tacitrec / LightFM |")
    print("|---|---|---|---|---|")
    for label, loss, fkw in (
        ("warp epoch, identity", "warp", {}),
        ("bpr epoch, identity", "bpr", {}),
        ("warp epoch, ~10 item features per item", "warp", dict(item_features=Fi)),
    ):

        def epoch(lib, loss=loss, fkw=fkw):
            lib.LightFM(no_components=64, loss=loss, random_state=0).fit(
                X, epochs=1, num_threads=args.threads, **fkw
            )

        (_, t_ours, mb_ours), (_, t_peer, mb_peer) = [
            forked(lambda lib=lib: epoch(lib), args.repeat) for lib in (tacitrec, lightfm)
        ]
        model = f"LightFM {loss} (64 components{', item features' if fkw else ''})"
        record("speed", model, "fit, s/epoch", "seconds", t_ours, t_peer, peer_name, data)
        record(
            "memory",
            model,
            "fit 1 epoch, peak above data",
            "peak_mb",
            mb_ours,
            mb_peer,
            peer_name,
            data,
        )
        mb = "-" if mb_ours is None else f"{mb_ours:.0f} / {mb_peer:.0f}"
        print(
            f"| {label} | {t_ours:.2f} s | {t_peer:.2f} s | {t_peer / t_ours:.1f}x | {mb} |",
            flush=True,
        )
    users = np.arange(min(20_000, X.shape[0]))
    ours = tacitrec.LightFM(no_components=64, loss="warp", random_state=0).fit(
        X, epochs=1, num_threads=args.threads
    )
    peer = lightfm.LightFM(no_components=64, loss="warp", random_state=0)
    peer.fit(X, epochs=1, num_threads=args.threads)
    rows = X[users]
    t_ours, _, _ = best_of(lambda: ours.recommend(users, rows, N=10), args.repeat)

    def peer_top10():
        for lo in range(0, len(users), 1000):
            b = users[lo : lo + 1000]
            S = peer.predict(
                np.repeat(b, X.shape[1]).astype(np.int32),
                np.tile(np.arange(X.shape[1], dtype=np.int32), len(b)),
                num_threads=args.threads,
            ).reshape(len(b), X.shape[1])
            S[X[b].nonzero()] = -np.inf
            top = np.argpartition(-S, 10, axis=1)[:, :10]
            np.take_along_axis(S, top, 1)

    t_peer, _, _ = best_of(peer_top10, args.repeat)
    record(
        "speed",
        "LightFM warp (64 components)",
        f"recommend {len(users):,} users, N=10",
        "users_per_s",
        len(users) / t_ours,
        len(users) / t_peer,
        peer_name,
        data,
    )
    print(
        f"| top-10 for {len(users):,} users (liked filtered) | {t_ours:.2f} s | {t_peer:.2f} s | "
        f"{t_peer / t_ours:.0f}x | |"
    )


def dataset_speed(args):
    import lightfm.data
    import tacitrec

    n = 100_000 if args.quick else 1_000_000
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50_000, n)
    items = rng.integers(0, 10_000, n)
    ours, peer = tacitrec.Dataset(), lightfm.data.Dataset()
    for ds in (ours, peer):
        ds.fit(np.arange(50_000), np.arange(10_000))
    t_ours, _, (a, _) = best_of(
        lambda: ours.build_interactions_from_arrays(users, items), args.repeat
    )
    tuples = list(zip(users.tolist(), items.tolist()))
    t_peer, _, (b, _) = best_of(lambda: peer.build_interactions(tuples), args.repeat)
    assert (a.tocsr() != b.tocsr()).nnz == 0
    record(
        "speed",
        "Dataset",
        f"build {n / 1e6:g}M interactions (arrays / LightFM: tuples)",
        "seconds",
        t_ours,
        t_peer,
        f"LightFM {lightfm.__version__}",
        "random ids, 50k users x 10k items",
    )
    print(
        f"| Dataset: {n / 1e6:g}M interactions (tacitrec from arrays, LightFM from tuples) | "
        f"{t_ours:.3f} s | {t_peer:.2f} s | {t_peer / t_ours:.0f}x | |"
    )


def main():
    ap = cli(__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = parse(ap)
    if args.quick:
        args.repeat = 1
    lightfm = peer("lightfm")
    print(f"# LightFM: tacitrec vs LightFM {lightfm.__version__} ({machine()})")
    if not args.skip_speed:  # first: it forks, and in-process thread pools do not survive a fork
        speed(args)
        dataset_speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()
