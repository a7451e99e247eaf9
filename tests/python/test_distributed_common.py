"""What tacitrec.distributed promises whatever the engine: no engine imported by tacitrec, a
clear error naming the extra when one is missing, and the partition scorer equal to the local
call (without any engine)."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from distributed_cases import X, assert_same, local_rows, model, rows
from tacitrec.distributed import _local


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_tacitrec_imports_no_engine():
    done = _python(
        "import sys, tacitrec, tacitrec.distributed, tacitrec.distributed._local\n"
        "print(sorted(m for m in ('ray', 'dask', 'distributed', 'pyspark', 'pandas')"
        " if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "engine,module", [("ray", "ray"), ("dask", "distributed"), ("spark", "pyspark")]
)
def test_missing_engine_names_the_extra(engine, module):
    # the engine made unimportable in a child process
    done = _python(
        f"import sys; sys.modules[{module!r}] = None\n"
        f"import tacitrec.distributed.{engine} as m\n"
        "try:\n"
        "    m.recommend(None, None)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert f'pip install "tacitrec[{engine}]"' in done.stdout


def test_partition_scorer_equals_local_call_in_any_row_order():
    m = model("bm25")
    users = np.array([3, 0, 7, 5])
    table = pa.Table.from_pandas(
        rows(X, users).sample(frac=1.0, random_state=0), preserve_index=False
    )
    got = _local.Scorer(m, N=4).recommend(table).to_pandas()
    want = local_rows(m, X, users, N=4)
    got = got.sort_values(["user", "rank"]).reset_index(drop=True)
    want = want.sort_values(["user", "rank"]).reset_index(drop=True)
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-6)


def _table(pdf):
    return pa.Table.from_pandas(pdf, preserve_index=False)


def _sorted(frame):
    return frame.sort_values(["user", "rank"]).reset_index(drop=True)


def test_partition_scorer_reads_categorical_ids_as_their_values():
    # a categorical user column of a partition holding some users: its users are those of its
    # rows (was: every category, each served as if without history)
    m = model("bm25")
    pdf = rows(X, [3, 0, 7])
    cat = rows(X).astype({"user": "category"})
    cat = cat[cat.user.isin([3, 0, 7])]
    assert len(cat.user.cat.categories) > 3  # unused categories
    got = _local.Scorer(m, N=4).recommend(_table(cat)).to_pandas()
    want = _local.Scorer(m, N=4).recommend(_table(pdf)).to_pandas()
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))
    assert_same(got, local_rows(m, X, np.array([3, 0, 7]), N=4))


def test_canonical_rows_have_one_type_whatever_the_block():
    # what the engines apply before their shuffle by user: 3, 3.0 and a category 3 are one
    # user of a model without ids (int64 indices), so they hash alike
    scorer = _local.Scorer(model("als"))
    blocks = [
        pa.table({"user": pa.array(v), "item": pa.array([1, None]), "weight": pa.array([2, 1])})
        for v in ([3, 5], [3.0, 5.0], pa.array([3, 5], pa.int32()).dictionary_encode())
    ] + [pa.table({"user": [3, 5], "item": pa.nulls(2), "weight": pa.nulls(2)})]
    canonical = [scorer.canonical(b) for b in blocks]
    for t in canonical:
        assert t.column("user").to_pylist() == [3, 5] and t.schema.field("user").type == pa.int64()
        assert t.schema.field("item").type == pa.int64()
        assert t.schema.field("weight").type == pa.float64()
    assert canonical[0].equals(canonical[1]) and canonical[1].equals(canonical[2])
    # what the local call refuses, with the column named
    with pytest.raises(ValueError, match=r"user values must be integer indices.*column 'user'"):
        scorer.canonical(pa.table({"user": ["3"], "item": [1]}))
    with pytest.raises(ValueError, match=r"integer indices.*column 'item'"):
        scorer.canonical(pa.table({"user": [3], "item": [1.5]}))
    # a model with original ids: their type (as the local call casts to it), or the column named
    named = type(model("bm25"))(K=10).fit(X, show_progress=False)
    named.set_ids(user_ids=np.arange(X.shape[0]) * 10)
    for user in (pa.array(["30"]).dictionary_encode(), pa.array([30.0])):
        t = _local.Scorer(named).canonical(pa.table({"user": user, "item": [1]}))
        assert t.schema.field("user").type == pa.int64() and t.column("user").to_pylist() == [30]
    with pytest.raises(ValueError, match=r"column 'user' of type string cannot be compared with"):
        _local.Scorer(named).canonical(pa.table({"user": ["u3"], "item": [1]}))


def test_cold_users_and_null_weights():
    # users to serve without history: item and weight null, even a weight column of Arrow type
    # null (was ArrowInvalid); a null weight on a row with an item is an error (was read as 1)
    m = model("als")
    cold = pd.DataFrame({"user": [2, 9], "item": [None, None], "weight": [None, None]})
    table = _table(cold)
    assert pa.types.is_null(table.schema.field("weight").type)
    got = _local.Scorer(m, N=4).recommend(table).to_pandas()
    empty = sp.csr_matrix((2, X.shape[1]), dtype=np.float32)
    want = local_rows(m, sp.vstack([empty] * 5).tocsr(), np.array([2, 9]), N=4)
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want), check_dtype=False)
    bad = rows(X, [2, 9])
    bad.loc[1, "weight"] = np.nan
    with pytest.raises(ValueError, match=r"column 'weight' holds 1 null or NaN weights"):
        _local.Scorer(m, N=4).recommend(_table(bad))
    # a test row's weight is not read (metrics count every test row once)
    marked = _table(bad).append_column(_local.TEST_COLUMN, pa.array(np.arange(len(bad)) == 1))
    _local.Scorer(m).metric_sums(marked, 5)


def test_partition_scorer_threads_zero_means_all_cores():
    # 0 = all cores, as everywhere in tacitrec (was clamped to 1 thread)
    assert _local.Scorer(model("als"), num_threads=0).model.num_threads == 0
    assert _local.Scorer(model("als"), num_threads=2).model.num_threads == 2
