"""The command line, run as a user would (a subprocess), checked against the library."""

import csv
import re
import io
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import (
    AlternatingLeastSquares,
    BM25Recommender,
    Dataset,
    LightFM,
    PopularityRecommender,
)
from tacitrec import _files, _io
from tacitrec.cli import main
from tacitrec.datasets import synthetic
from tacitrec.evaluation import leave_k_out_split, ranking_metrics_at_k, train_test_split


def run(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "tacitrec", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}: {out.stderr}")
    return out


def metric_rows(stdout):
    return {
        line.split()[0]: [float(v) for v in line.split()[-7:]]
        for line in stdout.splitlines()
        if line.startswith(("popularity ", "bm25 ", "als ", "lightfm "))
    }


def test_demo_prints_the_metrics_the_library_computes():
    out = run("--users", 400, "--items", 150, "--seed", 3, "-k", 5, "--epochs", 5)
    rows = metric_rows(out.stdout)
    d = synthetic(n_users=400, n_items=150, random_state=3)
    train, test = train_test_split(d.user_items, 0.8, random_state=3)
    m = ranking_metrics_at_k(
        PopularityRecommender().fit(train), train, test, K=5, show_progress=False
    )
    want = [m[k] for k in ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate")]
    assert rows["popularity"] == pytest.approx(want, abs=5e-5)
    assert "user 0:" in out.stdout and "cold start (lightfm)" in out.stdout
    # the personalised models beat the baseline on the planted data (ndcg column)
    ndcg = {name: r[3] for name, r in rows.items()}
    assert ndcg["bm25"] > 1.5 * ndcg["popularity"] and ndcg["als"] > 1.2 * ndcg["popularity"]
    assert ndcg["lightfm"] > 1.2 * ndcg["popularity"]


def test_default_demo_cold_start_finds_the_users_cluster():
    out = run("demo", "--epochs", 10)  # the README's command: 20,000 users x 5,000 items
    line = next(x for x in out.stdout.splitlines() if x.startswith("cold start"))
    hits = int(line.split("; ")[1].split()[0])
    assert hits >= 8, line  # a random item is in the cluster with probability 0.05


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same interactions as a headed CSV with string ids and as a headerless TSV."""
    d = tmp_path_factory.mktemp("cli")
    X = synthetic(n_users=300, n_items=120, random_state=5).user_items.tocoo()
    order = np.random.default_rng(0).permutation(X.nnz)  # rows in no particular order
    r, c, v = X.row[order], X.col[order], X.data[order]
    with open(d / "plays.csv", "w") as f:
        f.write("ts,userId,title,plays\n")
        for a, b, w in zip(r, c, v):
            f.write(f'0,user{a:03d},"film {b}, part 1",{w:g}\n')
    with open(d / "plays.tsv", "w") as f:
        for a, b, w in zip(r, c, v):
            f.write(f"{a}\t{b}\t{w:g}\n")
    return d, X.tocsr()


def expected_matrix(X):
    """X with rows/columns reordered as the CLI orders ids (sorted as strings)."""
    users = np.array([f"user{u:03d}" for u in range(X.shape[0])])
    items = np.array([f"film {i}, part 1" for i in range(X.shape[1])])
    ru, ri = np.argsort(users), np.argsort(items)
    return X[ru][:, ri].tocsr(), users[ru], items[ri]


def read_recs(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["user", "item", "rank", "score"]
    return rows[1:]


def test_fit_then_recommend_matches_the_library_in_original_ids(files, tmp_path):
    d, X = files
    model_file, recs = tmp_path / "bm25.npz", tmp_path / "recs.csv"
    run(
        "fit",
        d / "plays.csv",
        "--model",
        "bm25",
        "-p",
        "K=30",
        "--user-col",
        "userId",
        "--item-col",
        "title",
        "--weight-col",
        "plays",
        "--out",
        model_file,
        "-q",
    )
    run("recommend", model_file, "--all", "-n", 4, "--out", recs, "--chunk-size", 37, "-q")
    M, users, items = expected_matrix(X)
    ref = BM25Recommender(K=30).fit(M, show_progress=False)
    ids, scores = ref.recommend(np.arange(M.shape[0]), M, N=4)
    rows = read_recs(recs)
    want = [
        (users[u], items[i], str(k + 1))
        for u in range(M.shape[0])
        for k, i in enumerate(ids[u])
        if i >= 0
    ]
    assert [tuple(r[:3]) for r in rows] == want
    got_scores = np.array([float(r[3]) for r in rows])
    assert got_scores == pytest.approx(scores[ids >= 0], rel=1e-5)


def test_recommend_users_file_filters_and_chunks(files, tmp_path):
    d, X = files
    model_file = tmp_path / "als.npz"
    run(
        "fit",
        d / "plays.tsv",
        "-m",
        "als",
        "-p",
        "factors=8",
        "-p",
        "iterations=3",
        "-o",
        model_file,
        "-q",
    )
    (tmp_path / "users.txt").write_text("7\n\n12\n7\n")
    # newer interactions of user 7 (items it did not have) are removed and used as history
    newer = [i for i in range(X.shape[1]) if X[7, i] == 0][:5]
    (tmp_path / "new.tsv").write_text("".join(f"7\t{i}\t1\n" for i in newer) + "999\t1\t1\n")
    base = read_recs_text(
        run("recommend", model_file, "--users", tmp_path / "users.txt", "-n", 20).stdout
    )
    assert [r[0] for r in base] == ["7"] * 20 + ["12"] * 20 + ["7"] * 20
    liked7 = {str(i) for i in X[7].indices}
    assert not liked7 & {r[1] for r in base[:20]}
    filtered = read_recs_text(
        run(
            "recommend",
            model_file,
            "--users",
            tmp_path / "users.txt",
            "-n",
            20,
            "--filter-liked",
            tmp_path / "new.tsv",
        ).stdout
    )
    assert not {str(i) for i in newer} & {r[1] for r in filtered[:20]}
    assert filtered[20:40] == base[20:40]  # user 12 has no newer interactions
    kept = read_recs_text(
        run(
            "recommend", model_file, "--users", tmp_path / "users.txt", "-n", 500, "--keep-liked"
        ).stdout
    )  # N' = all 120 items
    assert len(kept) == 3 * 120 and liked7 <= {r[1] for r in kept[:120]}
    assert [r[2] for r in kept] == [str(k) for k in range(1, 121)] * 3


def read_recs_text(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["user", "item", "rank", "score"]
    return rows[1:]


def test_evaluate_prints_the_library_metrics(files):
    d, X = files
    out = run(
        "evaluate", d / "plays.tsv", "-m", "als", "-p", "factors=8", "--seed", 4, "-k", 5, "-q"
    )
    printed = {
        line.split()[0]: float(line.split()[1]) for line in out.stdout.splitlines() if "@5 " in line
    }
    # the TSV's ids are 0..n-1, sorted as strings by the CLI
    order_u = np.argsort(np.arange(X.shape[0]).astype(str))
    order_i = np.argsort(np.arange(X.shape[1]).astype(str))
    M = X[order_u][:, order_i].tocsr()
    train, test = train_test_split(M, 0.8, random_state=4)
    model = AlternatingLeastSquares(factors=8, random_state=4).fit(train, show_progress=False)
    m = ranking_metrics_at_k(model, train, test, K=5, show_progress=False)
    assert printed == pytest.approx(
        {f"{k}@5": m[k] for k in ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate")},
        abs=2e-6,
    )
    out = run(
        "evaluate",
        d / "plays.tsv",
        "-m",
        "popularity",
        "--split",
        "leave-k-out",
        "--leave-k",
        2,
        "-q",
    )
    train, test = leave_k_out_split(M, 2, random_state=0)
    m = ranking_metrics_at_k(PopularityRecommender().fit(train), train, test, show_progress=False)
    assert f"ndcg@10         {m['ndcg']:.6f}" in out.stdout


def test_lightfm_through_the_cli(files, tmp_path):
    d, X = files
    model_file = tmp_path / "lfm.npz"
    run(
        "fit",
        d / "plays.tsv",
        "-m",
        "lightfm",
        "-p",
        "epochs=3",
        "-p",
        "no_components=8",
        "--seed",
        1,
        "--threads",
        1,
        "-o",
        model_file,
        "-q",
    )  # 1 thread: reproducible
    model, data, info, features = _io.load_bundle(model_file)
    assert isinstance(model, LightFM) and model.loss == "warp" and info["fit"] == {"epochs": 3}
    assert features == {}
    order_u = np.argsort(np.arange(X.shape[0]).astype(str))
    order_i = np.argsort(np.arange(X.shape[1]).astype(str))
    M = X[order_u][:, order_i].tocsr()
    assert (data.matrix != M).nnz == 0
    ref = LightFM(no_components=8, loss="warp", random_state=1).fit(M, epochs=3, num_threads=1)
    users = np.arange(5)
    assert model.predict(users, users) == pytest.approx(ref.predict(users, users), rel=1e-5)


def test_lightfm_with_feature_files_matches_the_dataset_builder(files, tmp_path):
    d, X = files
    syn = synthetic(n_users=300, n_items=120, random_state=5)  # the fixture's data
    present = {}
    for side, F, names in (
        ("user", syn.user_features, syn.user_feature_names),
        ("item", syn.item_features, syn.item_feature_names),
    ):
        C = F.tocoo()
        pairs = [(r, names[c]) for r, c in zip(C.row, C.col) if r != 7]  # 7: identity only
        pairs.append((9999, "x"))  # an id the interactions do not have
        present[side] = np.unique([name for _, name in pairs])
        (tmp_path / f"{side}.tsv").write_text(
            "id\tfeature\n" + "".join(f"{r}\t{name}\n" for r, name in pairs)
        )
    model_file, recs = tmp_path / "lfm.npz", tmp_path / "recs.csv"
    run(
        "fit",
        d / "plays.tsv",
        "-m",
        "lightfm",
        "-p",
        "epochs=3",
        "-p",
        "no_components=8",
        "--user-features",
        tmp_path / "user.tsv",
        "--item-features",
        tmp_path / "item.tsv",
        "--seed",
        2,
        "--threads",
        1,
        "-o",
        model_file,
        "-q",
    )
    run("recommend", model_file, "-n", 3, "-o", recs, "-q")
    # reference: LightFM's Dataset builder (identity + features, rows normalised) over the ids
    # and the files' feature names in the CLI's order (sorted as strings)
    users = np.sort(np.arange(X.shape[0]).astype(str)).astype(int)
    items = np.sort(np.arange(X.shape[1]).astype(str)).astype(int)
    ds = Dataset().fit(users, items, user_features=present["user"], item_features=present["item"])

    def rows_of(F, names, ids):
        return [(i, [] if i == 7 else list(names[F[i].indices])) for i in ids]

    Fu = ds.build_user_features(rows_of(syn.user_features, syn.user_feature_names, users))
    Fi = ds.build_item_features(rows_of(syn.item_features, syn.item_feature_names, items))
    M = X[users][:, items].tocsr()
    ref = LightFM(no_components=8, loss="warp", random_state=2).fit(
        M, user_features=Fu, item_features=Fi, epochs=3, num_threads=1
    )
    ids, scores = ref.recommend(np.arange(M.shape[0]), M, N=3, user_features=Fu, item_features=Fi)
    got = read_recs(recs)
    assert [r[1] for r in got] == [str(items[i]) for i in ids.ravel()]
    assert np.array([float(r[3]) for r in got]) == pytest.approx(scores.ravel(), rel=1e-4)
    out = run(
        "fit",
        d / "plays.tsv",
        "-m",
        "als",
        "--item-features",
        tmp_path / "item.tsv",
        "-o",
        model_file,
        check=False,
    )
    assert out.returncode == 2 and "only used by --model lightfm" in out.stderr


def test_demo_on_a_file(files):
    d, X = files
    out = run("demo", "--data", d / "plays.tsv", "--epochs", 2, "-k", 5, "--seed", 2)
    rows = metric_rows(out.stdout)
    assert set(rows) == {"popularity", "bm25", "als", "lightfm"} and "cold start" not in out.stdout
    order_u = np.argsort(np.arange(X.shape[0]).astype(str))
    order_i = np.argsort(np.arange(X.shape[1]).astype(str))
    train, test = train_test_split(X[order_u][:, order_i].tocsr(), 0.8, random_state=2)
    m = ranking_metrics_at_k(
        PopularityRecommender().fit(train), train, test, K=5, show_progress=False
    )
    assert rows["popularity"][3] == pytest.approx(m["ndcg"], abs=5e-5)


def test_reader_formats(tmp_path):
    p = tmp_path / "a.dat"
    p.write_text("1::10::5::978300760\n1::20::3::978300760\n2::10::4::978300760\n")
    data = _io.read_interactions(p, min_weight=4)
    assert data.user_ids.tolist() == ["1", "2"] and data.item_ids.tolist() == ["10"]
    assert data.matrix.toarray().tolist() == [[5.0], [4.0]]
    p = tmp_path / "b.txt"  # whitespace, no weights, duplicates summed, header by name
    p.write_text("user item\n a  x\nb y\na x\n")
    data = _io.read_interactions(p, user_col="user", item_col="item")
    assert data.matrix.toarray().tolist() == [[2.0, 0.0], [0.0, 1.0]]
    p = tmp_path / "c.csv"  # auto header: the weight field is not a number, the next line's is
    p.write_text("u;i;w\n3;4;0.5\n")
    data = _io.read_interactions(p)
    assert (data.user_ids.tolist(), data.matrix.toarray().tolist()) == (["3"], [[0.5]])
    p.write_text("3;4\n5;6\n")
    data = _io.read_interactions(p, weight_col="none", header="no")
    assert data.matrix.nnz == 2 and data.item_ids.tolist() == ["4", "6"]
    with pytest.raises(ValueError, match="user_col and item_col must be given"):
        _io.read_interactions(p, user_col=None)  # was a TypeError from a list index


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,b,1\nc,d,x\n", [], "line 2: weight 'x' is not a number"),
        ("a\tb\t1\n\nc\n", [], "line 3: expected at least 3 fields separated by tabs, found 1"),
        ("a,b,1\nc,d,nan\n", [], "line 2: weight 'nan' is not finite"),
        ("a,b\n", ["--user-col", "user"], "'user' is not a column of the header (a, b)"),
        ("a,b,1\n", ["--min-weight", 5], "no interactions with weight >= 5.0"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, capsys, content, args, message):
    p = tmp_path / "x.csv"
    p.write_text(content)
    assert main(["fit", str(p), "-m", "als", "-o", str(tmp_path / "m.npz"), *map(str, args)]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_usage_errors_exit_non_zero(tmp_path, capsys):
    p = tmp_path / "x.csv"
    p.write_text("a,b,1\n")
    out = str(tmp_path / "m.npz")
    assert main(["fit", str(p), "-m", "svd", "-o", out]) == 2
    assert "unknown model 'svd'; choose from als, bpr" in capsys.readouterr().err
    assert main(["fit", str(p), "-m", "bpr", "-p", "factor=3", "-o", out]) == 2
    assert "'factor' is not a parameter of bpr" in capsys.readouterr().err
    assert main(["fit", str(p), "-m", "bpr", "-p", "factors", "-o", out]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "none.csv"), "-m", "als", "-o", out]) == 1
    assert "does not exist" in capsys.readouterr().err
    PopularityRecommender().fit(sp.csr_matrix(np.ones((2, 2)))).save(out)
    assert main(["recommend", out]) == 1
    assert "was not written by `tacitrec fit`" in capsys.readouterr().err
    if _parquet_missing():
        q = tmp_path / "x.parquet"
        q.write_bytes(b"PAR1")
        assert main(["fit", str(q), "-m", "als", "-o", out]) == 1
        assert "needs pyarrow: pip install pyarrow" in capsys.readouterr().err
    for cmd in ("demo", "fit", "recommend", "evaluate"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0 and "usage: tacitrec " + cmd in capsys.readouterr().out
    assert run("fit", p, check=False).returncode == 2  # argparse: --model and --out required


def _parquet_missing():
    try:
        import pyarrow.parquet  # noqa: F401

        return False
    except ImportError:
        return True


@pytest.mark.skipif(_parquet_missing(), reason="pyarrow is not installed")
def test_parquet_reads_like_csv(files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d, X = files
    C = X.tocoo()
    pq.write_table(
        pa.table({"user": C.row.astype(str), "item": C.col.astype(str), "w": C.data}),
        tmp_path / "x.parquet",
    )
    a = _io.read_interactions(
        tmp_path / "x.parquet", user_col="user", item_col="item", weight_col="w"
    )
    b = _io.read_interactions(d / "plays.tsv")
    assert (a.matrix != b.matrix).nnz == 0 and (a.user_ids == b.user_ids).all()


def test_text_encodings_and_ids_numpy_would_alter(tmp_path, capsys):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffuser,item\nu1,i1\nu2,i1\nu2,i2\n".encode("utf-8"))
    data = _io.read_interactions(str(bom), user_col="user", item_col="item")
    assert data.user_ids.tolist() == ["u1", "u2"]  # the mark joined neither the header nor an id
    latin = tmp_path / "latin.csv"
    latin.write_bytes("u\xe9,i1\nu2,i1\n".encode("latin-1"))
    assert (
        main(["fit", "--model", "popularity", "--out", str(tmp_path / "m.npz"), str(latin), "-q"])
        == 1
    )
    assert "--encoding latin-1" in capsys.readouterr().err
    data = _io.read_interactions(str(latin), encoding="latin-1")
    assert data.user_ids.tolist() == ["u2", "u\xe9"]
    nul = tmp_path / "nul.csv"
    nul.write_text("u1\0,i1\nu1,i2\n")
    with pytest.raises(ValueError, match="line 1: an id ends with a NUL"):
        _io.read_interactions(str(nul))
    big = tmp_path / "big.csv"
    big.write_text('u1,"' + "x" * 200_000 + '"\n')
    assert (
        main(
            [
                "fit",
                "--model",
                "popularity",
                "--out",
                str(tmp_path / "m.npz"),
                str(big),
                "--sep",
                ",",
                "-q",
            ]
        )
        == 1
    )
    assert "line 1" in capsys.readouterr().err


def test_outputs_are_written_whole_or_not_at_all(tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with _files.atomic_output(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous" and len(list(tmp_path.iterdir())) == 1
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"u{u},i{u % 7}\n" for u in range(50)))
    model = tmp_path / "m.npz"
    assert main(["fit", "--model", "popularity", "--out", str(model), str(rows), "-q"]) == 0
    assert main(["recommend", str(model), "--out", str(tmp_path), "-q"]) == 1
    assert "is a directory" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "--model",
                "als",
                "-p",
                "regularization=nan",
                "--out",
                str(model),
                str(rows),
                "-q",
            ]
        )
        == 1
    )
    assert "regularization" in capsys.readouterr().err
    bad_zip = tmp_path / "data.zip"
    bad_zip.write_bytes(b"PK\3\4 not really a zip")
    assert main(["demo", "--data", str(bad_zip)]) == 1


def test_ctrl_c_exits_130_and_leaves_no_output(tmp_path):
    import signal
    import time

    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"u{u},i{u % 13}\n" for u in range(60_000)))
    run("fit", "--model", "popularity", "--out", str(tmp_path / "m.npz"), str(rows))
    out = tmp_path / "recs.csv"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tacitrec",
            "recommend",
            str(tmp_path / "m.npz"),
            "--chunk-size",
            "1",
            "--out",
            str(out),
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs with SIGINT ignored, which a child
        # inherits (and Python then installs no KeyboardInterrupt handler): restore the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".tacitrec-*.part")):  # writing has begun
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "rows.csv"]  # no recs.csv


def _line_by_line(monkeypatch, *args, **kw):
    """What the line reader makes of a file (the pyarrow path turned off)."""
    with monkeypatch.context() as m:
        m.setattr(_io, "_read_text_arrow", lambda *a, **k: None)
        return _io.read_interactions(*args, **kw)


def _same(a, b):
    assert a.user_ids.dtype.kind == b.user_ids.dtype.kind == "U"
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.matrix.dtype == b.matrix.dtype == np.float32
    assert a.matrix.shape == b.matrix.shape and (a.matrix != b.matrix).nnz == 0


@pytest.mark.parametrize(
    "text, kw",
    [
        # a header chosen by name, quoted ids (a comma, a doubled quote is left to the line
        # reader: see below), repeated pairs summed, a blank line, CRLF, a byte-order mark
        (
            '\ufeffwho,what,n\r\nu1,"i,1",2.5\r\nu2,i2,1\r\n\r\nu1,"i,1",1\r\nü,i2,4e0\r\n',
            dict(user_col="who", item_col="what", weight_col="n"),
        ),
        # tabs, no header, ids that differ only as text ("007" and "7")
        ("007\ta\t1\n7\ta\t2\n007\tb\t3\n", {}),
        # two columns, every weight 1
        ("u;x\nv;x\nu;y\nu;x\n", dict(sep=";")),
        # rows under min_weight dropped, and the ids left without rows
        ("a|x|1\nb|y|5\nc|x|4\na|z|6\n", dict(sep="|", min_weight=4)),
        # the weight column before the ids
        ("3,u1,i1\n1,u2,i1\n", dict(user_col="1", item_col="2", weight_col="0")),
    ],
)
def test_text_files_read_by_pyarrow_as_line_by_line(tmp_path, monkeypatch, text, kw):
    """Files pyarrow can parse go through it (not None) and give the line reader's result."""
    pytest.importorskip("pyarrow")
    p = tmp_path / "x.txt"
    p.write_bytes(text.encode("utf-8"))
    kw = dict(dict(sep=None, header="auto", user_col="0", item_col="1", weight_col="auto"), **kw)
    kw.setdefault("min_weight", None)
    fast = _io._read_text_arrow(
        str(p),
        kw["sep"],
        kw["header"],
        kw["user_col"],
        kw["item_col"],
        kw["weight_col"],
        kw["min_weight"],
        "utf-8",
    )
    assert fast is not None
    _same(fast, _line_by_line(monkeypatch, str(p), **kw))
    _same(_io.read_interactions(str(p), **kw), fast)


@pytest.mark.parametrize(
    "text, kw",
    [
        ("u1, i1,1\nu2,i1 ,2\n", {}),  # ids the line reader strips
        ('u1,"i""1",1\nu2,i1,2\n', {}),  # a quote inside a comma-separated id
        ("u1,i1,1\nu2,i1,2,extra\n", {}),  # lines of other field counts
        ("u1::i1::1\nu2::i1::2\n", {}),  # a two-character separator
        ("u1 i1 1\nu2  i1 2\n", {}),  # whitespace
        ("\nu1,i1,1\nu2,i1,2\n", {}),  # a blank line before the first record
        ("u1,i1,1\nu2,i1,NA\n", {}),  # a weight that is not a number: the line reader's error
        ("u1,i1,1\nu2,i1,inf\n", {}),  # nor finite
        ("u1,i1,1\n", dict(min_weight=5)),  # nothing left
        ("u\xe9,i1,1\n", dict(encoding="latin-1")),
    ],
)
def test_text_files_pyarrow_cannot_read_as_the_line_reader_go_line_by_line(
    tmp_path, monkeypatch, text, kw
):
    p = tmp_path / "x.txt"
    p.write_bytes(text.encode(kw.get("encoding", "utf-8")))
    enc = kw.pop("encoding", "utf-8")
    fast = _io._read_text_arrow(str(p), None, "auto", "0", "1", "auto", kw.get("min_weight"), enc)
    assert fast is None
    try:
        want = _line_by_line(monkeypatch, str(p), encoding=enc, **kw)
    except ValueError as e:
        with pytest.raises(ValueError, match=f"^{re.escape(str(e))}$"):
            _io.read_interactions(str(p), encoding=enc, **kw)
    else:
        _same(_io.read_interactions(str(p), encoding=enc, **kw), want)
