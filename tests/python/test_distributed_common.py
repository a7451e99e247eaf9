"""What tacitrec.distributed promises whatever the engine: no engine imported by tacitrec, a
clear error naming the extra when one is missing, and the partition scorer equal to the local
call (without any engine)."""

import subprocess
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from distributed_cases import X, local_rows, model, rows
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
