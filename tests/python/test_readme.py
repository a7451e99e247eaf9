"""The README's quickstart blocks run as they are and compute what they claim."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def python_blocks(title):
    """The Python blocks of the README's section ``## title``."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split(f"\n## {title}\n")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def blocks():
    """The Python blocks of the "Python quickstarts" section (others may need files)."""
    return python_blocks("Python quickstarts")


def test_readme_has_the_quickstarts():
    assert len(blocks()) >= 3


@pytest.mark.parametrize("index", range(len(blocks())))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may save files
    namespace = {}
    exec(compile(blocks()[index], f"README.md python block {index}", "exec"), namespace)
    # each block ends with recommendations it computed: ids in range, best first
    ids, scores = namespace["ids"], namespace["scores"]
    assert (ids >= 0).all() and (scores[..., :-1] >= scores[..., 1:]).all()
    if "new_user" in namespace:  # LightFM cold start: a user known only by taste=3
        assert (namespace["d"].item_cluster[ids] == 3).mean() >= 0.8


def engine_blocks():
    """The Python blocks of "More than one machine": one example per engine."""
    return python_blocks("More than one machine")


def test_readme_has_an_example_per_engine():
    found = {
        m
        for block in engine_blocks()
        for m in re.findall(r"tacitrec\.distributed import (\w+)", block)
    }
    assert found == {"dask", "ray", "spark"}


@pytest.mark.parametrize("index", range(len(engine_blocks())))
def test_readme_engine_example_runs(index, tmp_path):
    """Each example, in its own process (each starts its engine), on the loopback address;
    skipped when its engine is not installed."""
    import importlib.util
    import subprocess
    import sys

    block = engine_blocks()[index]
    engine = re.search(r"tacitrec\.distributed import (\w+)", block).group(1)
    needs = {"dask": ["dask", "distributed"], "ray": ["ray"], "spark": ["pyspark"]}[engine]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{engine} is not installed")
    if engine == "spark" and subprocess.run(["java", "-version"], capture_output=True).returncode:
        pytest.skip("Spark needs a Java runtime")
    done = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


def frame_blocks():
    return python_blocks("Data frames in and out")


@pytest.mark.parametrize("index", range(len(frame_blocks())))
def test_readme_frame_example_runs(index, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    monkeypatch.chdir(tmp_path)
    exec(compile(frame_blocks()[index], f"README.md frame block {index}", "exec"), {})


def get_started():
    """The commands of the README's "Get started" block."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Get started\n")[1].split("\n## ")[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return block.strip().splitlines()


def test_get_started_is_two_commands_and_ci_runs_the_second():
    install_demo, install_test = get_started()
    assert install_demo == "pip install . && tacitrec demo"
    ci = os.path.join(os.path.dirname(README), ".ci", "run")
    if not os.path.exists(ci):
        pytest.skip("no .ci/run beside this copy of the tests")
    with open(ci, encoding="utf-8") as f:  # verbatim, with at most an exit-code capture after it
        assert any(
            line == install_test or line.startswith(install_test + " || ")
            for line in f.read().splitlines()
        )


def test_the_version_is_the_package_metadata_version():
    from importlib.metadata import version

    import tacitrec

    assert tacitrec.__version__ == version("tacitrec")
