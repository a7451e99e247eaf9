"""Outputs written whole or not at all, and scratch space that never outlives its call (private).

Everything is first written under a fresh name beside its destination, then renamed into place.
The scratch name is chosen first and created *inside* the ``try`` that removes it:
``tempfile.mkstemp`` / ``mkdtemp`` create theirs before returning, and Python raises a pending
KeyboardInterrupt as soon as a builtin call returns, so a Ctrl-C in that instant left the
scratch file behind (and ``mkstemp``'s mode 0600 followed the output into place).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from typing import Callable, Iterator, Optional


def scratch_name(folder: str, suffix: str = "") -> str:
    """A name in ``folder`` that nothing has (64 random bits); the caller creates it."""
    return os.path.join(folder, f".tacitrec-{secrets.token_hex(8)}{suffix}")


@contextlib.contextmanager
def atomic_output(path, mode: str = "w", **open_kw) -> Iterator:
    """A file object writing to a scratch file beside ``path`` that replaces ``path`` only when
    the block ends normally: an error or Ctrl-C leaves no truncated output and no scratch file.
    The file gets the permissions ``open`` gives (the umask's), as if written in place."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"output {path!r} is a directory: give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    tmp = scratch_name(folder, ".part")
    try:
        with open(tmp, mode.replace("w", "x"), **open_kw) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def scratch_dir(folder: Optional[str] = None) -> Iterator[str]:
    """A new empty directory in ``folder`` (the system's temporary folder by default), removed
    with its contents when the block ends, however it ends."""
    tmp = scratch_name(folder if folder is not None else tempfile.gettempdir())
    try:
        os.mkdir(tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(path: str, write: Callable[[str], None]) -> None:
    """Writes the directory ``path`` by ``write(tmp)`` into a scratch directory beside it, then
    renames it into place (replacing what is there), so readers never see it half
    written. An error or Ctrl-C leaves ``path`` as it was."""
    path = os.path.abspath(os.fspath(path))
    tmp = scratch_name(os.path.dirname(path))
    old = None
    try:
        os.mkdir(tmp)
        write(tmp)
        if os.path.exists(path):
            old = scratch_name(os.path.dirname(path))
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.exists(path):
            os.rename(old, path)  # interrupted between the two renames
        raise
    finally:
        if old is not None and os.path.lexists(old):  # replaced (or a file the caller allows)
            shutil.rmtree(old) if os.path.isdir(old) else os.unlink(old)
