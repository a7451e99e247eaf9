"""Datasets: a seeded synthetic generator with planted structure (the demo and tests use it),
loaders for local copies of MovieLens and Last.fm, and downloaders that fetch them into a cache.

The loaders (:func:`load_movielens`, :func:`load_lastfm`) read a folder, a .zip/.tar.gz archive or
a data file and return a :class:`LoadedData`. The fetchers (:func:`fetch_movielens`,
:func:`fetch_lastfm`) download the official archive once into ``data_home``, else
``$TACITREC_DATA_HOME``, else ``~/.cache/tacitrec``, check its checksum, and load it from there.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import os
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse as sp

from ._validation import check_count, check_random_state


@dataclass
class SyntheticData:
    """What :func:`synthetic` returns."""

    #: users x items CSR (float32) of interaction counts (plays, clicks, ...).
    user_items: sp.csr_matrix
    #: the taste cluster of every user.
    user_cluster: np.ndarray
    #: the cluster of every item.
    item_cluster: np.ndarray
    #: users x user features CSR (float32, 0/1): a ``taste=c`` feature that names the user's
    #: cluster (a random cluster with probability ``feature_noise``) and an uninformative
    #: ``group=g`` feature (one of 5).
    user_features: sp.csr_matrix
    #: items x item features CSR (float32, 0/1): a ``genre=c`` feature that names the item's
    #: cluster (a random cluster with probability ``feature_noise``) and an uninformative
    #: ``tag=t`` feature (one of 50).
    item_features: sp.csr_matrix
    #: names of the columns of ``user_features``.
    user_feature_names: np.ndarray
    #: names of the columns of ``item_features``.
    item_feature_names: np.ndarray


def synthetic(n_users: int = 5000, n_items: int = 2000, n_clusters: int = 20,
              interactions_per_user: int = 40, in_cluster: float = 0.8, popularity_skew: float = 1.0,
              feature_noise: float = 0.2, random_state=0) -> SyntheticData:
    """Implicit-feedback data with planted structure.

    Items belong to ``n_clusters`` equal clusters, and so does every user's taste. Each user draws
    about ``interactions_per_user`` items (geometric counts, so activity is skewed): with
    probability ``in_cluster`` from its own cluster, otherwise from the whole catalogue, in both
    cases favouring popular items (Zipf exponent ``popularity_skew``). Repeated draws of the same
    item add up to its count. A personalised model should beat popularity on held-out data by a
    wide margin; popularity still beats random.

    Users and items also get metadata features (see :class:`SyntheticData`): one that reveals the
    cluster except with probability ``feature_noise`` and one that carries no signal, so a hybrid
    model (LightFM) can recommend to users and items it never saw in training.
    """
    n_users = check_count(n_users, "n_users")
    n_items = check_count(n_items, "n_items")
    n_clusters = check_count(n_clusters, "n_clusters")
    if n_clusters > n_items:
        raise ValueError(f"n_clusters ({n_clusters}) cannot exceed n_items ({n_items})")
    check_count(interactions_per_user, "interactions_per_user")
    for name, value in (("in_cluster", in_cluster), ("feature_noise", feature_noise)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    rng = check_random_state(random_state)

    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    user_cluster = rng.integers(0, n_clusters, size=n_users)
    # A popularity rank for every item; popularity ~ 1 / rank^skew.
    weight = 1.0 / (1.0 + rng.permutation(n_items)) ** popularity_skew
    global_cdf = np.cumsum(weight) / weight.sum()
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    cluster_cdf = [np.cumsum(weight[m]) / weight[m].sum() for m in members]

    counts = rng.geometric(1.0 / interactions_per_user, size=n_users)
    rows = np.repeat(np.arange(n_users), counts)
    cols = np.empty(rows.size, dtype=np.int64)
    own = rng.random(rows.size) < in_cluster
    u = rng.random(rows.size)
    glob = ~own
    cols[glob] = np.minimum(np.searchsorted(global_cdf, u[glob]), n_items - 1)
    row_cluster = user_cluster[rows]
    for c in range(n_clusters):
        sel = own & (row_cluster == c)
        pick = np.minimum(np.searchsorted(cluster_cdf[c], u[sel]), len(members[c]) - 1)
        cols[sel] = members[c][pick]
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)),
                      shape=(n_users, n_items))
    X.sum_duplicates()
    # Features are drawn after the interactions, so adding them left user_items unchanged.
    user_features, user_names = _features(rng, user_cluster, n_clusters, feature_noise, "taste",
                                          "group", 5)
    item_features, item_names = _features(rng, item_cluster, n_clusters, feature_noise, "genre",
                                          "tag", 50)
    return SyntheticData(X, user_cluster, item_cluster, user_features, item_features, user_names,
                         item_names)


def _features(rng, cluster, n_clusters, noise, informative, other, n_other):
    """One-hot of the (noisy) cluster next to one-hot of a random uninformative group."""
    n = len(cluster)
    shown = np.where(rng.random(n) < noise, rng.integers(0, n_clusters, size=n), cluster)
    group = rng.integers(0, n_other, size=n)
    cols = np.stack([shown, n_clusters + group], axis=1).ravel()
    F = sp.csr_matrix((np.ones(2 * n, dtype=np.float32), cols, np.arange(0, 2 * n + 1, 2)),
                      shape=(n, n_clusters + n_other))
    names = np.array([f"{informative}={c}" for c in range(n_clusters)]
                     + [f"{other}={g}" for g in range(n_other)])
    return F, names




# ---------------------------------------------------------------------------------------------
# Loaders for local copies of real data sets.


@dataclass
class LoadedData:
    """What :func:`load_movielens`, :func:`load_lastfm` and the fetchers return.

    Row ``u`` of ``user_items`` and ``user_features`` is user ``user_ids[u]``; column ``i`` of
    ``user_items`` and row ``i`` of ``item_features`` is item ``item_ids[i]``.
    """

    #: users x items CSR (float32): ratings (MovieLens) or play counts (Last.fm), repeated
    #: (user, item) rows summed. Every user and item of the ratings file has a row / column, also
    #: when ``min_rating`` removed all of its entries.
    user_items: sp.csr_matrix
    #: the original user ids: int64 sorted numerically when they are integers, else str (object
    #: array) sorted as strings.
    user_ids: np.ndarray
    #: the original item ids, like ``user_ids``.
    item_ids: np.ndarray
    #: title / artist name of every item (object array of str; "" for an item the metadata file
    #: does not name), or None without a metadata file.
    item_names: Optional[np.ndarray] = None
    #: users x user features CSR (float32, 0/1), or None without a user file. Users of the user
    #: file that never appear in the ratings are dropped; rated users it lacks get an empty row.
    user_features: Optional[sp.csr_matrix] = None
    #: names of the columns of ``user_features`` (``gender=F``, ``age=25``, ...), sorted.
    user_feature_names: Optional[np.ndarray] = None
    #: items x item features CSR (float32, 0/1), or None; rows as for ``user_features``.
    item_features: Optional[sp.csr_matrix] = None
    #: names of the columns of ``item_features`` (``genre=Comedy``, ``tag=rock``), sorted.
    item_feature_names: Optional[np.ndarray] = None


_CHUNK = 1 << 26          # bytes of a ratings file parsed at once
_TARS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class _Files:
    """The files of one data set: a folder (or the folder above it), a .zip / .tar(.gz) archive
    holding them at its top or in one folder, or one of the files itself."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file or directory: {self.path!r}")
        self.prefer, self._archive, self.folder = None, None, ""
        low = self.path.lower()
        if low.endswith(".zip"):
            self._archive = zipfile.ZipFile(self.path)
            members = {n: n for n in self._archive.namelist() if not n.endswith("/")}
            self._open = self._archive.open
        elif low.endswith(_TARS):
            self._archive = tarfile.open(self.path)
            members = {m.name[2:] if m.name.startswith("./") else m.name: m
                       for m in self._archive.getmembers() if m.isfile()}
            self._open = self._archive.extractfile
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
            hits = sorted((k.count("/"), k) for k in self._members
                          if fnmatch.fnmatchcase(k.rsplit("/", 1)[-1], pattern)
                          and self.prefer in (None, k))
            if hits:
                self.folder, _, name = hits[0][1].rpartition("/")
                self.folder += "/" if self.folder else ""
                return layout, name
        raise ValueError(f"{self.path!r} holds no {what} data set: looked for "
                         + ", ".join(p for _, p in layouts) + " (at its top or in one folder)")

    def label(self, name):
        return os.path.join(self.path if self.prefer is None else os.path.dirname(self.path),
                            self.folder + name)

    def open(self, name):
        """The file `name` of the data set's folder opened for binary reading, or None."""
        real = self._members.get(self.folder + name)
        return None if real is None else self._open(real)

    def numeric(self, name, sep, n_fields, skip=0):
        """The file as an (n_rows, n_fields) float64 array (see :func:`_numeric`), or None."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            return _numeric(f, self.label(name), sep, n_fields, skip)

    def rows(self, name, sep, n_fields, skip=0, ints=(0,)):
        """The rows of a small file (see :func:`_rows`) as a list, or None."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            return list(_rows(f, self.label(name), sep, n_fields, ints, skip))

    def header(self, name, needed=()):
        """The column names of a RecBole atomic file (its first line, ``name:type`` separated by
        tabs, without the types), or None; raises if one of `needed` is not among them."""
        f = self.open(name)
        if f is None:
            return None
        with f:
            names = [h.split(":")[0] for h in _decode(f.readline()).rstrip("\r\n").split("\t")]
        missing = [c for c in needed if c not in names]
        if missing:
            raise ValueError(f"{self.label(name)}: the header {names} lacks {missing}")
        return names


def _decode(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _chunks(f, skip=0):
    """Blocks of whole lines of a binary file (about _CHUNK bytes, each ending with a newline),
    each with the number of its first line, after skipping `skip` lines."""
    line = 1
    for _ in range(skip):
        f.readline()
        line += 1
    rest = b""
    while True:
        block = f.read(_CHUNK)
        data = rest + block
        cut = data.rfind(b"\n") + 1 if block else len(data)
        data, rest = data[:cut], data[cut:]
        if data:
            data = data if data.endswith(b"\n") else data + b"\n"
            yield data, line
            line += data.count(b"\n")
        if not block:
            return


def _check(data, sep, n_fields, fname, line, shown):
    """Count the non-blank lines of a block; raise if one does not have n_fields fields."""
    b = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(b == 10)
    found = 1 + np.bincount(np.searchsorted(ends, np.flatnonzero(b == sep[0])),
                            minlength=len(ends))
    starts = np.concatenate([[0], ends[:-1] + 1])
    bad = np.flatnonzero(found != n_fields)
    for i in bad:
        text = data[starts[i]:ends[i]]
        if text.strip():
            raise ValueError(f"{fname}, line {line + i}: expected {n_fields} fields separated by "
                             f"{shown!r}, found {found[i]}: {_decode(text[:100])!r}")
    return len(ends) - len(bad)


def _bad_number(data, sep, fname, line, columns=None):
    """Raise for the first field of a block (in `columns`, default all) that is not a number."""
    for i, text in enumerate(data.split(b"\n")):
        fields = text.split(sep) if text.strip() else []
        for j, field in enumerate(fields):
            try:
                if columns is None or j in columns:
                    float(field)
            except ValueError:
                raise ValueError(f"{fname}, line {line + i}: field {j + 1} "
                                 f"({_decode(field)!r}) is not a number") from None
    raise ValueError(f"{fname}: numbers in the lines from {line} on cannot be parsed")


def _numeric(f, fname, sep, n_fields, skip=0):
    """A delimited file of numbers as an (n_rows, n_fields) float64 array.

    Block by block, the field count of every line is checked with numpy (blank lines are
    skipped) and the numbers are parsed in C by ``np.fromstring``; a bad line is reported with
    its file name and number."""
    one, blocks = (b"\t" if len(sep) > 1 else sep.encode()), []
    for data, line in _chunks(f, skip):
        if len(sep) > 1:
            data = data.replace(sep.encode(), one)
        n_rows = _check(data, one, n_fields, fname, line, sep)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)    # numpy < 2 on bad data
                values = np.fromstring(data.replace(one, b" "), sep=" ")
        except ValueError:
            values = None
        if values is None or values.size != n_rows * n_fields:
            _bad_number(data, one, fname, line)
        blocks.append(values.reshape(-1, n_fields))
    return np.concatenate(blocks) if blocks else np.empty((0, n_fields))


def _rows(f, fname, sep, n_fields, ints=(0,), skip=0):
    """Rows of a small delimited text file (utf-8, else latin-1; ',' is read as CSV with quoted
    fields) as lists of at least n_fields str, those at `ints` converted to int, after skipping
    `skip` lines; blank lines are skipped."""
    for number, raw in enumerate(f, 1):
        text = _decode(raw).rstrip("\r\n")
        if number <= skip or not text.strip():
            continue
        fields = next(csv.reader([text])) if sep == "," else text.split(sep)
        if len(fields) < n_fields:
            raise ValueError(f"{fname}, line {number}: expected {n_fields} fields separated by "
                             f"{sep!r}, found {len(fields)}: {text[:100]!r}")
        for j in ints:
            try:
                fields[j] = int(fields[j])
            except ValueError:
                raise ValueError(f"{fname}, line {number}: field {j + 1} ({fields[j]!r}) is not "
                                 "an integer id") from None
        yield fields


def _index(keys):
    """Sorted distinct ids (int64 when they are all integers) and each key's position in them."""
    ids, codes = np.unique(keys, return_inverse=True)
    if ids.dtype.kind == "f" and np.array_equal(ids, np.round(ids)):
        ids = ids.astype(np.int64)
    return ids, codes.reshape(-1)


class _Codes:
    """Incremental dictionary encoding of byte-string keys (for files too big to hold as str)."""

    def __init__(self):
        self.index = {}

    def encode(self, keys):
        index = self.index
        return np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))

    def finish(self, codes):
        """Sorted decoded ids (object array), codes remapped to them, and the sorting order."""
        keys = [_decode(k) for k in self.index]
        order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
        rank = np.empty(len(keys), np.int64)
        rank[order] = np.arange(len(keys))
        return np.array([keys[i] for i in order], dtype=object), rank[codes], order


def _lookup(ids, keys):
    """Position of every key in the sorted ids, -1 where it is absent."""
    keys = np.asarray(keys, dtype=ids.dtype).reshape(-1)
    if not len(ids):
        return np.full(len(keys), -1)
    pos = np.minimum(np.searchsorted(ids, keys), len(ids) - 1)
    return np.where(ids[pos] == keys, pos, -1)


def _onehot(n_rows, rows, names):
    """0/1 float32 CSR (n_rows x distinct names, columns sorted by name) of (row, name) pairs,
    leaving out rows < 0; and the column names."""
    rows = np.asarray(rows, dtype=np.int64)
    keep = rows >= 0
    columns, cols = np.unique(np.asarray(names, dtype=str)[keep], return_inverse=True)
    X = sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols.reshape(-1))),
                      shape=(n_rows, len(columns)))
    X.sum_duplicates()
    X.data[:] = 1
    return X, columns


def _assemble(users, items, values, keep=None, names=None, user_pairs=None, item_pairs=None):
    """LoadedData from (ids, codes) of the users and the items of every rating, the values, a
    mask of the ratings to keep (the others only define ids), {item id: name} and lists of
    (id, feature name); None where there is no such file."""
    (user_ids, rows), (item_ids, cols) = users, items
    if keep is not None:
        rows, cols, values = rows[keep], cols[keep], values[keep]
    X = sp.csr_matrix((values.astype(np.float32), (rows, cols)),
                      shape=(len(user_ids), len(item_ids)))
    X.sum_duplicates()
    out = LoadedData(X, user_ids, item_ids)
    if names is not None:
        pos = _lookup(item_ids, list(names))
        out.item_names = np.full(len(item_ids), "", dtype=object)
        out.item_names[pos[pos >= 0]] = np.array(list(names.values()), dtype=object)[pos >= 0]
    for side, ids, pairs in (("user", user_ids, user_pairs), ("item", item_ids, item_pairs)):
        if pairs is not None:
            rows_of = _lookup(ids, [k for k, _ in pairs]) if pairs else np.empty(0, np.int64)
            F, columns = _onehot(len(ids), rows_of, [v for _, v in pairs])
            setattr(out, f"{side}_features", F)
            setattr(out, f"{side}_feature_names", columns)
    return out


def _field_pairs(rows, key, fields):
    """(id, "name=value") pairs of the named fields of every row, skipping empty values."""
    if rows is None:
        return None
    return [(r[key], f"{name}={r[j].strip()}") for r in rows for name, j in fields.items()
            if r[j].strip()]


def _titles(rows, key, title, genres, sep):
    """{id: title} and (id, "genre=g") pairs from rows listing an item's genres in one field."""
    if rows is None:
        return None, None
    pairs = [(r[key], f"genre={g.strip()}") for r in rows for g in r[genres].split(sep)
             if g.strip() and g.strip() != "(no genres listed)"]
    return {r[key]: r[title] for r in rows}, pairs


_MOVIELENS = (("100k", "u.data"), ("1m", "ratings.dat"), ("csv", "ratings.csv"),
              ("recbole", "*.inter"))


def load_movielens(path, min_rating=None) -> LoadedData:
    """Load a local copy of MovieLens (GroupLens) into a :class:`LoadedData`.

    ``path`` is the data set's folder, the folder above it, its official .zip (which holds one
    folder, e.g. ``ml-100k/``), or one of its files. Recognised layouts, by their ratings file:

    - 100k: ``u.data`` (user, item, rating, timestamp; tab-separated); ``u.item``
      (id|title|release date|video date|url|19 genre flags, latin-1) with the genre names in
      ``u.genre``; ``u.user`` (id|age|gender|occupation|zip).
    - 1m and 10m: ``ratings.dat`` (``::``-separated); ``movies.dat`` (id::title::genres with the
      genres separated by '|'); ``users.dat`` (1m only: id::gender::age::occupation code::zip).
    - 20m, 25m, latest(-small): ``ratings.csv`` (header userId,movieId,rating,timestamp) and
      ``movies.csv`` (movieId,title,genres; quoted titles may hold commas).
    - RecBole atomic files: ``<name>.inter`` (tab-separated, header ``user_id:token
      item_id:token rating:float timestamp:float``), ``<name>.user`` (user_id age gender
      occupation zip_code) and ``<name>.item`` (item_id movie_title release_year class, the
      class a space-separated list of genres).

    ``user_items`` holds the ratings (float32), only those >= ``min_rating`` when it is given,
    with a row / column for every user / item of the ratings file all the same. ``item_names``
    are the titles, ``item_features`` the genres (``genre=Comedy``) and ``user_features`` the
    age, gender and occupation (``age=25``, ``gender=F``, ``occupation=technician``; the 1m
    layout has occupation codes, ``occupation=12``), each None without its file. Ratings are
    parsed block by block in C: about 0.8 s per million rows.

    Raises FileNotFoundError for a missing path, ValueError for a path without a recognised
    layout or a malformed line (naming the file and the line number).
    """
    with _Files(path) as files:
        layout, main = files.locate(_MOVIELENS, "MovieLens")
        names = user_pairs = item_pairs = None
        if layout == "recbole":
            stem = main[:-len(".inter")]
            header = files.header(main, ("user_id", "item_id", "rating"))
            u, i, r = (header.index(c) for c in ("user_id", "item_id", "rating"))
            table = files.numeric(main, "\t", len(header), skip=1)
            head = files.header(stem + ".item", ("item_id",))
            if head is not None:
                key = head.index("item_id")
                rows = files.rows(stem + ".item", "\t", len(head), skip=1, ints=(key,))
                title = next((j for j, h in enumerate(head) if "title" in h), None)
                names = None if title is None else {row[key]: row[title] for row in rows}
                genre = next((j for j, h in enumerate(head) if h in ("class", "genre")), None)
                item_pairs = None if genre is None else _titles(rows, key, key, genre, " ")[1]
            head = files.header(stem + ".user", ("user_id",))
            if head is not None:
                key = head.index("user_id")
                rows = files.rows(stem + ".user", "\t", len(head), skip=1, ints=(key,))
                user_pairs = _field_pairs(rows, key, {h: j for j, h in enumerate(head)
                                                   if h not in ("user_id", "zip_code")})
        else:
            sep, skip = {"100k": ("\t", 0), "1m": ("::", 0), "csv": (",", 1)}[layout]
            table, (u, i, r) = files.numeric(main, sep, 4, skip), (0, 1, 2)
            if layout == "100k":
                genre = {j: g for g, j in files.rows("u.genre", "|", 2, ints=(1,)) or []}
                rows = files.rows("u.item", "|", 24)
                rows = rows and [[row[0], row[1], "|".join(genre.get(j, str(j)) for j, flag
                                                           in enumerate(row[5:24]) if flag == "1")]
                                 for row in rows]
                fields = {"age": 1, "gender": 2, "occupation": 3}
                user_pairs = _field_pairs(files.rows("u.user", "|", 5), 0, fields)
            elif layout == "1m":
                rows = files.rows("movies.dat", "::", 3)
                fields = {"gender": 1, "age": 2, "occupation": 3}
                user_pairs = _field_pairs(files.rows("users.dat", "::", 5), 0, fields)
            else:
                rows = files.rows("movies.csv", ",", 3, skip=1)
            names, item_pairs = _titles(rows, 0, 1, 2, "|")
    for column, what in ((u, "user id"), (i, "item id"), (r, "rating")):
        bad = np.flatnonzero(~np.isfinite(table[:, column]))
        if len(bad):
            raise ValueError(f"{main}, data row {bad[0] + 1}: the {what} is "
                             f"{table[bad[0], column]}, not a finite number")
    keep = None if min_rating is None else table[:, r] >= min_rating
    return _assemble(_index(table[:, u]), _index(table[:, i]), table[:, r], keep, names,
                     user_pairs, item_pairs)


_LASTFM = (("hetrec", "user_artists.dat"), ("360k", "usersha1-artmbid-artname-plays.tsv"))


def load_lastfm(path) -> LoadedData:
    """Load a local copy of a Last.fm data set into a :class:`LoadedData`.

    ``path`` is the data set's folder (or the folder above it), its archive (.zip for HetRec,
    .tar.gz for 360K) or its play-count file itself. Recognised layouts:

    - HetRec 2011 (``hetrec2011-lastfm-2k``): ``user_artists.dat`` (tab-separated, header
      ``userID artistID weight``); optional ``artists.dat`` (id, name, url, pictureURL) for the
      names; optional ``user_taggedartists.dat`` (userID artistID tagID day month year) with
      ``tags.dat`` (tagID, tagValue) for item features ``tag=rock``.
    - Last.fm 360K: ``usersha1-artmbid-artname-plays.tsv`` (user sha1, artist MusicBrainz id,
      which may be empty, artist name, plays; no header), items keyed by the MusicBrainz id when
      there is one and else by the name (the name is the first one seen); optional
      ``usersha1-profile.tsv`` (sha1, gender, age, country, signup date) for user features
      ``gender=f``, ``age=22``, ``country=Germany``. Ids are strings. Read block by block.

    ``user_items`` holds the play counts (float32, repeated rows summed). Raises
    FileNotFoundError for a missing path, ValueError for a path without a recognised layout or a
    malformed line (naming the file and the line number).
    """
    with _Files(path) as files:
        layout, main = files.locate(_LASTFM, "Last.fm")
        if layout == "hetrec":
            table = files.numeric(main, "\t", 3, skip=1)
            artists = files.rows("artists.dat", "\t", 2, skip=1)
            names = None if artists is None else {row[0]: row[1] for row in artists}
            tagged, item_pairs = files.numeric("user_taggedartists.dat", "\t", 6, skip=1), None
            if tagged is not None:
                tags = {row[0]: row[1] for row in files.rows("tags.dat", "\t", 2, skip=1) or []}
                item_pairs = [(int(a), "tag=" + tags.get(int(t), str(int(t))))
                              for a, t in tagged[:, 1:3]]
            return _assemble(_index(table[:, 0]), _index(table[:, 1]), table[:, 2],
                             names=names, item_pairs=item_pairs)
        users, items, first_names, rows, cols, plays = _Codes(), _Codes(), [], [], [], []
        with files.open(main) as f:
            for data, line in _chunks(f):
                if _check(data, b"\t", 4, files.label(main), line, "\t") != data.count(b"\n"):
                    data = b"".join(t for t in data.splitlines(True) if t.strip())
                tok = data.replace(b"\n", b"\t").split(b"\t")[:-1]
                try:
                    plays.append(np.array(tok[3::4], dtype=np.float64))
                except ValueError:
                    _bad_number(data, b"\t", files.label(main), line, columns=(3,))
                rows.append(users.encode(tok[0::4]))
                seen = len(items.index)
                cols.append(items.encode([m or a for m, a in zip(tok[1::4], tok[2::4])]))
                new = np.flatnonzero(cols[-1] >= seen)
                first = new[np.unique(cols[-1][new], return_index=True)[1]]
                first_names += [tok[4 * k + 2] for k in first]
        profile = files.rows("usersha1-profile.tsv", "\t", 5, ints=())
    cat = (lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64))
    user_ids, rows, _ = users.finish(cat(rows))
    item_ids, cols, order = items.finish(cat(cols))
    names = {item_ids[k]: _decode(first_names[j]) for k, j in enumerate(order)}
    return _assemble((user_ids, rows), (item_ids, cols), cat(plays), names=names,
                     user_pairs=_field_pairs(profile, 0, {"gender": 1, "age": 2, "country": 3}))


# ---------------------------------------------------------------------------------------------
# Downloads into a local cache.


class ChecksumError(OSError):
    """A downloaded file does not have the published size or checksum (it was deleted)."""


class Download(NamedTuple):
    """Where a data set's archive is and how to check it: ``checksum`` is ``"sha256:<hex>"``
    (or ``"md5:<hex>"`` where only an MD5 is published); ``size`` in bytes, or None."""

    url: str
    checksum: str
    size: Optional[int] = None


#: variant -> Download of the official GroupLens archive. SHA-256 and sizes as published in
#: tensorflow/datasets (url_checksums/movielens.txt), agreeing with ISG-Siegen/OmniRec, which is
#: also the source of 10m's. Tests, mirrors and proxies may replace entries.
MOVIELENS_DOWNLOADS = {
    "100k": Download("https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                     "sha256:50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                     4924029),
    "1m": Download("https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                   "sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                   5917549),
    "10m": Download("https://files.grouplens.org/datasets/movielens/ml-10m.zip",
                    "sha256:813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862"),
    "20m": Download("https://files.grouplens.org/datasets/movielens/ml-20m.zip",
                    "sha256:96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                    198702078),
    "25m": Download("https://files.grouplens.org/datasets/movielens/ml-25m.zip",
                    "sha256:8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                    261978986),
    "latest-small": Download(
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        "sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202),
}

#: variant -> Download of a Last.fm archive. SHA-256 as published in ISG-Siegen/OmniRec. The
#: 360K archive (http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-360K.tar.gz) has no
#: published checksum, so it is not fetched: download it yourself and use :func:`load_lastfm`.
LASTFM_DOWNLOADS = {
    "hetrec-2k": Download(
        "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
        "sha256:6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c"),
}

DATA_HOME_ENV = "TACITREC_DATA_HOME"


def _download(registry, variant, data_home, what):
    """The path of the variant's archive in the cache, downloaded (and checked) if not there."""
    if variant not in registry:
        hint = (" (the Last.fm 360K archive has no published checksum: download it and use "
                "load_lastfm)" if what == "Last.fm" and variant == "360k" else "")
        raise ValueError(f"unknown {what} variant {variant!r}; choose from "
                         f"{sorted(registry)}{hint}")
    entry = registry[variant]
    home = os.path.expanduser(os.fspath(
        data_home or os.environ.get(DATA_HOME_ENV) or os.path.join("~", ".cache", "tacitrec")))
    os.makedirs(home, exist_ok=True)
    target = os.path.join(home, os.path.basename(urllib.parse.urlparse(entry.url).path))
    if os.path.isfile(target) and entry.size in (None, os.path.getsize(target)):
        return target
    algorithm, expected = entry.checksum.split(":", 1)
    fd, part = tempfile.mkstemp(dir=home, prefix=".download-", suffix=".part")
    try:
        digest, size = hashlib.new(algorithm), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry.url, timeout=60) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                size += len(block)
        if entry.size is not None and size != entry.size:
            raise ChecksumError(f"{entry.url}: expected {entry.size} bytes, got {size}")
        if digest.hexdigest() != expected.lower():
            raise ChecksumError(f"{entry.url}: expected {algorithm} {expected}, got "
                                f"{digest.hexdigest()}")
        os.replace(part, target)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return target


def fetch_movielens(variant="100k", data_home=None, min_rating=None) -> LoadedData:
    """Download a MovieLens archive from GroupLens once, then load it with
    :func:`load_movielens` (see there for what the :class:`LoadedData` holds).

    ``variant`` is one of the keys of :data:`MOVIELENS_DOWNLOADS` ("100k", "1m", "10m", "20m",
    "25m", "latest-small"). The archive is cached in ``data_home``, else in the folder named by
    the environment variable ``TACITREC_DATA_HOME``, else in ``~/.cache/tacitrec``: it is
    downloaded (standard library only) to a temporary file there and moved into place only when
    its size and SHA-256 match the published ones (else it is deleted and :class:`ChecksumError`
    names the URL and both digests). Later calls read the cached archive without the network.
    Raises ValueError for an unknown variant.
    """
    return load_movielens(_download(MOVIELENS_DOWNLOADS, variant, data_home, "MovieLens"),
                          min_rating=min_rating)


def fetch_lastfm(variant="hetrec-2k", data_home=None) -> LoadedData:
    """Download a Last.fm archive once, then load it with :func:`load_lastfm` (see there for
    what the :class:`LoadedData` holds).

    ``variant`` is one of the keys of :data:`LASTFM_DOWNLOADS`: "hetrec-2k" (HetRec 2011 from
    GroupLens). "360k" cannot be fetched, as no checksum of its archive is published: download
    it from http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-360K.tar.gz and call
    :func:`load_lastfm` on it. Caching and checking as in :func:`fetch_movielens`: ``data_home``,
    else ``$TACITREC_DATA_HOME``, else ``~/.cache/tacitrec``. Raises ValueError for an unknown
    variant.
    """
    return load_lastfm(_download(LASTFM_DOWNLOADS, variant, data_home, "Last.fm"))


__all__ = ["SyntheticData", "synthetic", "LoadedData", "load_movielens", "load_lastfm",
           "fetch_movielens", "fetch_lastfm", "Download", "ChecksumError", "MOVIELENS_DOWNLOADS",
           "LASTFM_DOWNLOADS", "DATA_HOME_ENV"]
