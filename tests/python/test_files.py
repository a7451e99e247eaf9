"""Outputs written whole or not at all (tacitrec._files): a Ctrl-C at any instant leaves either
the previous output or the new one, and no scratch file or folder."""

import builtins
import os
import sys

import pytest

from tacitrec import _files


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def interrupt_after(monkeypatch, owner, name, calls=1):
    """Makes ``owner.name`` do its work, then raise KeyboardInterrupt on its ``calls``-th call:
    a Ctrl-C that arrives the moment the builtin returns (where Python raises it)."""
    real = getattr(owner, name, None) or getattr(builtins, name)  # a module's global or builtin
    seen = []

    def wrapper(*args, **kw):
        out = real(*args, **kw)
        seen.append(args)
        if len(seen) == calls:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(owner, name, wrapper, raising=False)


def test_ctrl_c_the_moment_the_scratch_file_exists_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("previous")
    interrupt_after(monkeypatch, _files, "open")  # a module global shadows the builtin
    with pytest.raises(KeyboardInterrupt):
        with _files.atomic_output(target) as f:
            f.write("new")
    assert listing(tmp_path) == ["out.csv"] and target.read_text() == "previous"
    monkeypatch.undo()
    with _files.atomic_output(target) as f:
        f.write("new")
    assert listing(tmp_path) == ["out.csv"] and target.read_text() == "new"
    with pytest.raises(FileNotFoundError, match="the folder .*none.* does not exist"):
        with _files.atomic_output(tmp_path / "none" / "out.csv"):
            pass


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_outputs_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with _files.atomic_output(tmp_path / "a.csv") as f:
            f.write("x")
        with _files.atomic_output(tmp_path / "b.bin", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert {oct(os.stat(tmp_path / n).st_mode & 0o777) for n in ("a.csv", "b.bin")} == {"0o644"}


def write_model(text):
    def write(tmp):
        with open(os.path.join(tmp, "manifest"), "w") as f:
            f.write(text)

    return write


@pytest.mark.parametrize("calls", [1, 2])
def test_a_directory_is_replaced_whole_at_every_interruption(tmp_path, monkeypatch, calls):
    path = tmp_path / "model"
    _files.replace_dir(str(path), write_model("old"))
    assert listing(tmp_path) == ["model"]
    # 1: interrupted right after the old directory was moved aside: it is put back
    # 2: right after the new one was renamed into place: the new one stays, the old is removed
    interrupt_after(monkeypatch, os, "rename", calls)
    with pytest.raises(KeyboardInterrupt):
        _files.replace_dir(str(path), write_model("new"))
    monkeypatch.undo()
    assert listing(tmp_path) == ["model"]
    assert (path / "manifest").read_text() == ("old" if calls == 1 else "new")


def test_a_directory_write_that_fails_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "model"
    _files.replace_dir(str(path), write_model("old"))

    def failing(tmp):
        write_model("half")(tmp)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _files.replace_dir(str(path), failing)
    interrupt_after(monkeypatch, os, "mkdir")
    with pytest.raises(KeyboardInterrupt):
        _files.replace_dir(str(path), write_model("new"))
    monkeypatch.undo()
    assert listing(tmp_path) == ["model"] and (path / "manifest").read_text() == "old"
    (tmp_path / "file").write_text("a file")  # a plain file may be replaced too (overwrite=True)
    _files.replace_dir(str(tmp_path / "file"), write_model("new"))
    assert listing(tmp_path) == ["file", "model"] and (tmp_path / "file" / "manifest").exists()


def test_scratch_folders_are_removed_however_the_block_ends(tmp_path, monkeypatch):
    with _files.scratch_dir(str(tmp_path)) as d:
        open(os.path.join(d, "x"), "w").close()
        assert listing(tmp_path) == [os.path.basename(d)]
    assert listing(tmp_path) == []
    interrupt_after(monkeypatch, os, "mkdir")
    with pytest.raises(KeyboardInterrupt):
        with _files.scratch_dir(str(tmp_path)):
            pass
    monkeypatch.undo()
    assert listing(tmp_path) == []


def test_saving_over_a_model_file_is_whole_or_not_at_all(tmp_path, monkeypatch):
    import numpy as np

    from tacitrec import PopularityRecommender, RecommenderBase
    from tacitrec.datasets import synthetic

    X = synthetic(n_users=30, n_items=20, n_clusters=2, random_state=0).user_items
    model = PopularityRecommender().fit(X)
    model.save(tmp_path / "m")  # ".npz" appended, as numpy does
    assert listing(tmp_path) == ["m.npz"]
    real = np.savez

    def half_then_interrupt(f, **arrays):
        real(f, **arrays)
        f.truncate(f.tell() // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        PopularityRecommender().fit(X[:, :10]).save(str(tmp_path / "m.npz"))
    monkeypatch.undo()
    assert listing(tmp_path) == ["m.npz"]
    again = RecommenderBase.load(tmp_path / "m.npz")
    assert (
        np.array_equal(again.item_popularity, model.item_popularity)
        and again.item_popularity.size == 20
    )
