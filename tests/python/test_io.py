"""tacitrec.io.read_interactions: the streaming reader against SciPy on the same rows."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pcsv  # noqa: E402
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tacitrec import io  # noqa: E402
from tacitrec._validation import as_csr  # noqa: E402


def reference(users, items, weights=None):
    """The matrix and sorted ids by NumPy and SciPy."""
    uids, rows = np.unique(np.asarray(users), return_inverse=True)
    iids, cols = np.unique(np.asarray(items), return_inverse=True)
    w = np.ones(len(rows), np.float32) if weights is None else np.asarray(weights, np.float32)
    X = sp.csr_matrix((w, (rows, cols)), shape=(len(uids), len(iids)), dtype=np.float32)
    X.sum_duplicates()
    return X, uids, iids


def same(got, users, items, weights=None):
    X, uids, iids = reference(users, items, weights)
    m, gu, gi = got
    assert gu.tolist() == uids.tolist() and gi.tolist() == iids.tolist()
    assert m.shape == X.shape and m.dtype == np.float32
    assert m.has_sorted_indices
    np.testing.assert_array_equal(np.asarray(m.indptr), X.indptr)
    np.testing.assert_array_equal(np.asarray(m.indices), X.indices)
    np.testing.assert_array_equal(np.asarray(m.data), X.data)


@pytest.fixture
def rows():
    rng = np.random.default_rng(3)
    n = 5000
    users = rng.integers(-40, 160, n) * 1_000_003  # sparse, negative and large ids
    items = rng.integers(0, 90, n).astype(np.uint16)
    weights = rng.integers(1, 6, n).astype(np.float64)  # sums exact in float32
    return users, items, weights


def test_parquet_parts_folder_and_glob_with_integer_ids(rows, tmp_path):
    users, items, weights = rows
    parts = tmp_path / "parts"
    parts.mkdir()
    for k, s in enumerate(np.array_split(np.arange(len(users)), 3)):
        t = pa.table({"u": users[s], "i": items[s], "w": weights[s]})
        pq.write_table(t, parts / f"part-{k}.parquet", row_group_size=700)
    same(io.read_interactions(parts, "u", "i", "w"), users, items, weights)
    same(io.read_interactions(str(parts / "part-*.parquet"), "u", "i", "w"), users, items, weights)
    got = io.read_interactions(parts / "part-0.parquet", "u", "i")
    n0 = len(np.array_split(np.arange(len(users)), 3)[0])
    same(got, users[:n0], items[:n0])
    assert got.user_ids.dtype == np.int64 and got.item_ids.dtype == np.int64


def test_string_ids_dictionary_plain_and_large(rows, tmp_path):
    users, items, weights = rows
    su = np.array([f"user-{u}" for u in users])
    si = np.array([f"é{i}" for i in items])  # not ASCII: sorted by code point
    t = pa.table({"u": su, "i": si, "w": weights})
    pq.write_table(t, tmp_path / "s.parquet", row_group_size=999)
    same(io.read_interactions(tmp_path / "s.parquet", "u", "i", "w"), su, si, weights)
    big = t.cast(pa.schema([("u", pa.large_string()), ("i", pa.string()), ("w", pa.float64())]))
    same(io.read_interactions(big.slice(7), "u", "i", "w"), su[7:], si[7:], weights[7:])
    assert io.read_interactions(big, "u", "i").user_ids.dtype.kind == "U"
    mixed = pa.table({"u": users, "i": si})  # integer users, string items
    same(io.read_interactions(mixed, "u", "i"), users, si)


@pytest.mark.parametrize("out", [False, True])
def test_built_in_blocks_of_users_equals_one_block(rows, tmp_path, monkeypatch, out):
    users, items, weights = rows
    t = pa.table({"u": users, "i": items, "w": weights})
    one = io.read_interactions(t, "u", "i", "w")
    # blocks of at most 300 entries (about 12 of them), scratch read back 77 rows at a time
    monkeypatch.setattr(io, "MIN_BLOCK_ROWS", 300)
    monkeypatch.setattr(io, "BLOCKS", 1000)
    monkeypatch.setattr(io, "CHUNK_ROWS", 77)
    assert len(list(io._blocks(np.asarray(one.user_items.indptr, np.int64), 300))) > 10
    got = io.read_interactions(t, "u", "i", "w", out_dir=tmp_path / "m" if out else None)
    same(got, users, items, weights)
    assert (got.user_items != one.user_items).nnz == 0
    if out:
        same(io.open_interactions(tmp_path / "m"), users, items, weights)


def test_string_ids_of_any_code_points_and_lengths():
    users = np.array(["", "a", "😀", "a😀b", "ÿ" * 40, "z", "", "😀"])
    items = np.array(["x", "y", "x", "€uro", "", "y", "x", "€uro"])
    got = io.read_interactions(pa.table({"u": users, "i": items}), "u", "i")
    same(got, users, items)
    assert got.user_ids.dtype == np.dtype("<U40") and got.item_ids.dtype == np.dtype("<U4")
    with pytest.raises(ValueError, match="NUL"):
        io.read_interactions(pa.table({"u": ["a\0", "b"], "i": ["x", "y"]}), "u", "i")


def test_blocks_hold_whole_rows():
    indptr = np.array([0, 5, 5, 6, 20, 21, 22], np.int64)
    assert list(io._blocks(indptr, 6)) == [(0, 3), (3, 4), (4, 6)]
    assert list(io._blocks(indptr, 100)) == [(0, 6)]
    assert list(io._blocks(np.zeros(1, np.int64), 4)) == []


def test_parquet_dictionary_probe(tmp_path):
    # items from a small set (dictionary-encoded by Parquet), users all distinct (the
    # dictionary page overflows and Parquet falls back to plain pages)
    n = 200_000
    users = np.array([f"user-{k:09d}" for k in np.random.default_rng(0).permutation(n)])
    items = np.array([f"item-{k % 50}" for k in range(n)])
    t = pa.table({"u": users, "i": items})
    pq.write_table(t, tmp_path / "d.parquet", row_group_size=n)
    assert io._dictionary_columns(str(tmp_path / "d.parquet"), ["u", "i"]) == ["i"]
    assert io._dictionary_columns(str(tmp_path / "nothing.parquet"), ["u", "i"]) == []
    got = io.read_interactions(tmp_path / "d.parquet", "u", "i")
    same(got, users, items)


def test_csv_tsv_and_arrow_files(rows, tmp_path):
    users, items, weights = rows
    t = pa.table({"user": users, "item": items.astype(np.int64), "weight": weights})
    pcsv.write_csv(t, tmp_path / "x.csv")
    same(io.read_interactions(tmp_path / "x.csv", "user", "item", "weight"), users, items, weights)
    pcsv.write_csv(t, tmp_path / "x.tsv", pcsv.WriteOptions(delimiter="\t"))
    same(io.read_interactions(tmp_path / "x.tsv", "user", "item", "weight"), users, items, weights)
    feather.write_feather(t, tmp_path / "x.feather")
    same(io.read_interactions(tmp_path / "x.feather", "user", "item"), users, items)
    pcsv.write_csv(t, tmp_path / "x.data")
    same(io.read_interactions(tmp_path / "x.data", "user", "item", format="csv"), users, items)


def test_out_dir_is_memory_mapped_and_reopens(rows, tmp_path):
    users, items, weights = rows
    t = pa.table({"u": users, "i": items, "w": weights})
    got = io.read_interactions(t, "u", "i", "w", out_dir=tmp_path / "m")
    same(got, users, items, weights)
    X = got.user_items
    assert isinstance(X.indices, np.memmap) and isinstance(X.data, np.memmap)
    assert not X.data.flags.writeable
    # repeated pairs made the files shorter than the rows read: the headers say so
    assert np.load(tmp_path / "m" / "indices.npy").shape == (X.nnz,) and X.nnz < len(users)
    assert os.path.getsize(tmp_path / "m" / "data.npy") == 128 + 4 * X.nnz
    assert not [n for n in os.listdir(tmp_path / "m") if n.startswith(".")]  # scratch removed
    again = io.open_interactions(tmp_path / "m")
    same(again, users, items, weights)
    raw = io.open_interactions(tmp_path / "m", scipy=False, mmap=False).user_items
    assert raw.indptr.dtype == np.int64 and raw.shape == X.shape


def test_min_weight_drops_rows_then_ids(tmp_path):
    t = pa.table({"u": ["a", "b", "a", "c"], "i": [1, 2, 2, 3], "w": [5.0, 0.5, 2.0, 1.0]})
    got = io.read_interactions(t, "u", "i", "w", min_weight=1.0)
    same(got, ["a", "a", "c"], [1, 2, 3], [5.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="no interactions with weight >= 9"):
        io.read_interactions(t, "u", "i", "w", min_weight=9)


def test_training_from_the_memory_mapped_matrix_copies_nothing(tmp_path):
    import tacitrec

    rng = np.random.default_rng(0)
    n = 4000
    t = pa.table({"u": rng.integers(0, 150, n), "i": rng.integers(0, 80, n)})
    X = io.read_interactions(t, "u", "i", out_dir=tmp_path / "m").user_items
    c = as_csr(X, "user_items")
    assert np.shares_memory(c.indices, X.indices) and np.shares_memory(c.data, X.data)
    in_ram = sp.csr_matrix((np.array(X.data), np.array(X.indices), np.array(X.indptr)), X.shape)
    for make in (
        lambda: tacitrec.AlternatingLeastSquares(factors=8, iterations=3, random_state=1),
        lambda: tacitrec.BayesianPersonalizedRanking(factors=8, iterations=3, random_state=1),
        lambda: tacitrec.CosineRecommender(K=10),
    ):
        a, b = make(), make()
        a.fit(X, show_progress=False)
        b.fit(in_ram, show_progress=False)
        ids_a, _ = a.recommend(np.arange(20), X[:20], N=5)
        ids_b, _ = b.recommend(np.arange(20), in_ram[:20], N=5)
        np.testing.assert_array_equal(ids_a, ids_b)


def test_repeated_pairs_whose_weights_sum_past_float32_are_refused(tmp_path):
    """Each weight is finite, the pair's sum is not: it used to come back (and be written) as
    inf. Both readers: the streaming one, and the command line's line reader (latin-1 text
    takes it off pyarrow's parser)."""
    from tacitrec import _io

    p = tmp_path / "x.csv"
    p.write_text("u,i,w\n1,10,3e38\n1,10,3e38\n2,20,1\n")
    for out in (None, tmp_path / "out"):
        with pytest.raises(ValueError, match="column 'w': the weights of a .* sum past float32"):
            io.read_interactions(str(p), "u", "i", "w", out_dir=out)
    for encoding in ("utf-8", "latin-1"):
        with pytest.raises(ValueError, match="stored more than once sum past float32"):
            _io.read_interactions(str(p), user_col="u", item_col="i", weight_col="w",
                                  encoding=encoding)  # fmt: skip
    p.write_text("u,i,w\n1,10,1e38\n1,10,1e38\n2,20,1\n")
    assert io.read_interactions(str(p), "u", "i", "w").user_items.data[0] == np.float32(2e38)
    got = _io.read_interactions(str(p), user_col="u", item_col="i", encoding="latin-1")
    assert got.matrix.data[0] == np.float32(2e38)


def test_bad_input_names_the_problem(tmp_path):
    t = pa.table({"u": [1, 2], "i": ["a", "b"], "f": [0.5, 1.5], "w": [1.0, np.nan]})
    with pytest.raises(ValueError, match="item_col 'x' is not a column"):
        io.read_interactions(t, "u", "x")
    with pytest.raises(ValueError, match="column 'f' must hold integer or string ids"):
        io.read_interactions(t, "u", "f")
    with pytest.raises(ValueError, match="'w' holds a weight that is not finite"):
        io.read_interactions(t, "u", "i", "w")
    with pytest.raises(ValueError, match="column 'i' must hold numbers"):
        io.read_interactions(pa.table({"u": [1], "v": [2], "i": ["a"]}), "u", "v", "i")
    with pytest.raises(ValueError, match="must name different columns, got \\['u', 'u'\\]"):
        io.read_interactions(t, "u", "u")  # was pyarrow's KeyError on reading a file
    for bad in (np.nan, "1", True):  # NaN kept no row and blamed the source
        with pytest.raises(ValueError, match="min_weight must be a number \\(not NaN\\)"):
            io.read_interactions(t, "u", "i", "f", min_weight=bad)
    with pytest.raises(ValueError, match="min_weight needs weight_col"):
        io.read_interactions(t, "u", "i", min_weight=1)
    with pytest.raises(ValueError, match="'u' holds nulls"):
        io.read_interactions(pa.table({"u": [1, None], "i": [1, 2]}), "u", "i")
    with pytest.raises(ValueError, match="beyond the int64 range"):
        io.read_interactions(
            pa.table({"u": pa.array([2**64 - 1], pa.uint64()), "i": [1]}), "u", "i"
        )
    with pytest.raises(TypeError, match="source must be a path"):
        io.read_interactions([1, 2], "u", "i")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.read_interactions(tmp_path / "none.parquet", "u", "i")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        io.read_interactions(str(tmp_path / "*.parquet"), "u", "i")
    with pytest.raises(ValueError, match="cannot tell the format"):
        io.read_interactions(__file__, "u", "i")
    with pytest.raises(ValueError, match="no interactions"):
        io.read_interactions(t.slice(0, 0), "u", "i")
    # parts whose ids differ in type
    d = tmp_path / "parts"
    d.mkdir()
    pq.write_table(pa.table({"u": [1], "i": [1]}), d / "a.parquet")
    pq.write_table(pa.table({"u": ["x"], "i": [1]}), d / "b.parquet")
    with pytest.raises((ValueError, pa.ArrowInvalid)):
        io.read_interactions(d, "u", "i")
    with pytest.raises(FileNotFoundError, match="holds no interactions.json"):
        io.open_interactions(tmp_path)
    (tmp_path / "interactions.json").write_text("{not json")
    with pytest.raises(ValueError, match="interactions.json' is not the JSON read_interactions"):
        io.open_interactions(tmp_path)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-3, 3), st.sampled_from(["", "a", "b", "ab", "ß"]), st.integers(1, 4)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_matches_scipy_on_any_rows(triples):
    users = np.array([t[0] for t in triples], np.int64)
    items = np.array([t[1] for t in triples])
    weights = np.array([t[2] for t in triples], np.float64)
    table = pa.table({"u": users, "i": pa.array(items.tolist(), pa.string()), "w": weights})
    same(io.read_interactions(table, "u", "i", "w"), users, items, weights)


def test_import_tacitrec_does_not_import_pyarrow():
    code = "import sys, tacitrec; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_command_line_parquet_reader_keeps_string_ids(rows, tmp_path):
    """The command line reads Parquet through read_interactions, ids as strings sorted as
    strings (as its CSV reader): integer ids 10 and 9 sort as '10' < '9'."""
    from tacitrec import _io

    users, items, weights = rows
    t = pa.table({"u": users, "i": items.astype(np.int64), "w": weights})
    pq.write_table(t, tmp_path / "x.parquet", row_group_size=1000)
    pcsv.write_csv(t, tmp_path / "x.csv")
    a = _io.read_interactions(tmp_path / "x.parquet", user_col="u", item_col="1", min_weight=2)
    b = _io.read_interactions(tmp_path / "x.csv", user_col="u", item_col="i", min_weight=2)
    assert a.user_ids.tolist() == b.user_ids.tolist() and a.item_ids.tolist() == b.item_ids.tolist()
    assert a.user_ids.dtype.kind == "U" and a.matrix.has_sorted_indices
    assert (a.matrix != b.matrix).nnz == 0


def test_readme_section_runs(tmp_path, monkeypatch):
    """The README's blocks on large inputs and MLlib models run as they are, in order."""
    import re

    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Interaction data larger than memory")[1].split("\n## ")[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(code) == 2
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in code:
        exec(compile(block, "README.md", "exec"), namespace)
    again, model = namespace["again"], namespace["model"]
    assert (again.user_items != namespace["X"]).nnz == 0
    assert model.user_factors.shape == (len(namespace["user_ids"]), 64)
