"""The README's quickstart blocks run as they are and compute what they claim."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def blocks():
    """The Python blocks of the "Python quickstarts" section (others may need files)."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Python quickstarts\n")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


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
