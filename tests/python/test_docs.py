"""The documentation site's Python examples run as they are (their asserts check the values they
compute against NumPy references)."""

import os
import re

import pytest

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs")


def examples():
    found = []
    for root, _, files in os.walk(DOCS):
        for name in sorted(files):
            if name.endswith(".md"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    for i, block in enumerate(re.findall(r"```python\n(.*?)```", f.read(), re.S)):
                        found.append(pytest.param(block, id=f"{os.path.relpath(path, DOCS)}:{i}"))
    return found


def test_the_pages_have_examples():
    if not os.path.isdir(DOCS):
        pytest.skip("no docs/ beside this copy of the tests")
    assert len(examples()) >= 6


@pytest.mark.parametrize("block", examples())
def test_example_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs example", "exec"), {})


def test_the_site_builds_strictly(tmp_path):
    """The documentation site builds with every warning an error: a broken reference, a malformed
    docstring table, a missing include or image fails it."""
    if not os.path.isdir(DOCS):
        pytest.skip("no docs/ beside this copy of the tests")
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("myst_parser")
    import subprocess
    import sys

    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-q",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            DOCS,
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert (tmp_path / "html" / "api.html").stat().st_size > 100_000
