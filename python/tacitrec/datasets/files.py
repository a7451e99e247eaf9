"""The files of one data set, wherever they are: a folder (or the folder above it), a .zip or
.tar(.gz) archive holding them at its top or in one folder, or one of the files itself; read
through the one delimited-file reader (:mod:`tacitrec._delimited`)."""

from __future__ import annotations

import fnmatch
import os
import tarfile
import zipfile
from typing import IO, Any, Callable, Dict, Optional, Union

from .. import _delimited

_TARS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class DataFiles:
    """The files of one data set (see the module); a context manager closing the archive."""

    _archive: Union[zipfile.ZipFile, tarfile.TarFile, None]
    _open: Callable[[Any], Optional[IO[bytes]]]  # a member's binary reader

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file or directory: {self.path!r}")
        self.prefer, self._archive, self.folder = None, None, ""
        low = self.path.lower()
        if low.endswith(".zip"):
            self._archive = zipfile.ZipFile(self.path)
            members: Dict[str, Any] = {
                n: n for n in self._archive.namelist() if not n.endswith("/")
            }  # name -> what _open takes
            self._open = self._archive.open
        elif low.endswith(_TARS):
            self._archive = tar = tarfile.open(self.path)
            members = {
                m.name[2:] if m.name.startswith("./") else m.name: m
                for m in tar.getmembers()
                if m.isfile()
            }
            self._open = tar.extractfile
        else:
            root = self.path
            if not os.path.isdir(root):
                root, self.prefer = os.path.split(os.path.abspath(root))
            members = {}
            for entry in sorted(os.listdir(root)):
                full = os.path.join(root, entry)
                if not os.path.isdir(full):
                    members[entry] = full
                    continue
                for name in sorted(os.listdir(full)):
                    members[f"{entry}/{name}"] = os.path.join(full, name)
            self._open = lambda real: open(real, "rb")
        self._members = {k: v for k, v in members.items() if k.count("/") <= 1}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._archive is not None:
            self._archive.close()

    def locate(self, layouts, what):
        """The first (layout, file pattern) whose file is present (the shallowest, then by name):
        returns (layout, file name) and makes that file's folder the one the other files are
        looked up in."""
        for layout, pattern in layouts:
            hits = sorted(
                (k.count("/"), k)
                for k in self._members
                if fnmatch.fnmatchcase(k.rsplit("/", 1)[-1], pattern) and self.prefer in (None, k)
            )
            if hits:
                self.folder, _, name = hits[0][1].rpartition("/")
                self.folder += "/" if self.folder else ""
                return layout, name
        raise ValueError(
            f"{self.path!r} holds no {what} data set: looked for "
            + ", ".join(p for _, p in layouts)
            + " (at its top or in one folder)"
        )

    def label(self, name):
        """The path of the file ``name`` as error messages show it."""
        return os.path.join(
            self.path if self.prefer is None else os.path.dirname(self.path), self.folder + name
        )

    def open(self, name):
        """The file ``name`` of the data set's folder opened for binary reading, or None."""
        real = self._members.get(self.folder + name)
        return None if real is None else self._open(real)

    def numeric(self, name, sep, n_fields, skip=0):
        """The file as an (n_rows, n_fields) float64 array (:func:`_delimited.numeric`), or
        None."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            return _delimited.numeric(f, self.label(name), sep, n_fields, skip)

    def rows(self, name, sep, n_fields, skip=0, ints=(0,)):
        """The rows of a small file (:func:`_delimited.rows`), or None."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            return _delimited.rows(f, self.label(name), sep, n_fields, ints, skip)

    def header(self, name, needed=()):
        """The column names of a RecBole atomic file (its first line, ``name:type`` separated by
        tabs, without the types), or None; raises if one of ``needed`` is not among them."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            first = _delimited.decode(f.readline()).lstrip("\ufeff").rstrip("\r\n")
        names = [h.split(":")[0] for h in first.split("\t")]
        missing = [c for c in needed if c not in names]
        if missing:
            raise ValueError(f"{self.label(name)}: the header {names} lacks {missing}")
        return names


__all__ = ["DataFiles"]
