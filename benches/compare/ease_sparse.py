"""EASE with ``sparse_k`` (the k largest-magnitude weights of every column of B) against the dense
model on MovieLens-100K (rating >= 4, 0/1) and Last.fm-2K (0/1): test ndcg@10 and recall@20 on the
split of the tuned quality section (80/20 of the interactions, seed 42), the regularisation tuned
there, the model's bytes and the CPU seconds of scoring every user. Also, for comparison, the k
largest *values* of every column (positive weights only), scored the same way through
ItemItemRecommender's sparse scorer.

Usage: python benches/compare/ease_sparse.py [--data DIR] [--threads N]
Skips a data set whose folder is missing (the data is not part of the repository).
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

from tacitrec import EASERecommender, ItemItemRecommender
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

from quality_new_models import load

#: the regularisation the tuned quality section chose (validation ndcg@10)
LAMBDA = {"ml-100k": 434.0, "lastfm-2k": 53.5}
KS = (10, 20, 50, 100, 200, 500)


def largest_values(B, k):
    """The k largest positive entries of every column of the dense B, by rows (CSR)."""
    n = B.shape[0]
    rows, cols, vals = [], [], []
    for j in range(n):
        col = B[:, j]
        pos = np.flatnonzero(col > 0)
        keep = pos[np.lexsort((pos, -col[pos]))][:k]
        rows.append(keep)
        cols.append(np.full(keep.size, j))
        vals.append(col[keep])
    r, c, v = (np.concatenate(a) for a in (rows, cols, vals))
    return sp.csr_matrix((v.astype(np.float32), (r, c)), shape=(n, n))


def evaluate(model, train, test, threads):
    c = time.process_time()
    m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False, num_threads=threads)
    r = ranking_metrics_at_k(model, train, test, K=20, show_progress=False, num_threads=threads)
    # the two passes score every test user twice: half is one pass
    return m["ndcg"], r.get("recall", float("nan")), (time.process_time() - c) / 2


def nbytes(model):
    w = model.weights
    if sp.issparse(w):
        return w.data.nbytes + w.indices.nbytes + w.indptr.nbytes
    return w.nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data")
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for name in ("ml-100k", "lastfm-2k"):
        X = load(name, args.data)
        if X is None:
            print(f"{name}: not found under {args.data}, skipped")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        n = X.shape[1]
        print(f"{name}: {X.shape[0]} users x {n} items, regularization {LAMBDA[name]}", flush=True)
        print("| model | k | test ndcg@10 | recall@20 | model MB | scoring CPU s |")
        print("|---|---|---|---|---|---|")
        dense = EASERecommender(regularization=LAMBDA[name], num_threads=args.threads)
        dense.fit(train, show_progress=False)
        nd, rc, cpu = evaluate(dense, train, test, args.threads)
        print(f"| EASE dense | - | {nd:.4f} | {rc:.4f} | {nbytes(dense) / 1e6:.1f} | {cpu:.2f} |")
        for k in KS:
            if k >= n:
                continue
            m = EASERecommender(
                regularization=LAMBDA[name], sparse_k=k, num_threads=args.threads
            ).fit(train, show_progress=False)
            nd, rc, cpu = evaluate(m, train, test, args.threads)
            print(
                f"| EASE sparse_k (magnitude) | {k} | {nd:.4f} | {rc:.4f} | "
                f"{nbytes(m) / 1e6:.1f} | {cpu:.2f} |",
                flush=True,
            )
            v = ItemItemRecommender(num_threads=args.threads)
            v.similarity = largest_values(dense.weights, k)
            nd, rc, _ = evaluate(v, train, test, args.threads)
            print(f"| largest positive values | {k} | {nd:.4f} | {rc:.4f} | | |", flush=True)


if __name__ == "__main__":
    main()
