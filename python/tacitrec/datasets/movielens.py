"""The MovieLens loader: the GroupLens layouts and RecBole's atomic files."""

from __future__ import annotations

import numpy as np

from .files import DataFiles
from .loaded import LoadedData, assemble, field_pairs, numeric_ids, titles

_MOVIELENS = (
    ("100k", "u.data"),
    ("1m", "ratings.dat"),
    ("csv", "ratings.csv"),
    ("recbole", "*.inter"),
)


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
    parsed block by block in C.

    Raises FileNotFoundError for a missing path, ValueError for a path without a recognised
    layout or a malformed line (naming the file and the line number).
    """
    with DataFiles(path) as files:
        layout, main = files.locate(_MOVIELENS, "MovieLens")
        names = user_pairs = item_pairs = None
        if layout == "recbole":
            stem = main[: -len(".inter")]
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
                item_pairs = None if genre is None else titles(rows, key, key, genre, " ")[1]
            head = files.header(stem + ".user", ("user_id",))
            if head is not None:
                key = head.index("user_id")
                rows = files.rows(stem + ".user", "\t", len(head), skip=1, ints=(key,))
                user_pairs = field_pairs(
                    rows,
                    key,
                    {h: j for j, h in enumerate(head) if h not in ("user_id", "zip_code")},
                )
        else:
            sep, skip = {"100k": ("\t", 0), "1m": ("::", 0), "csv": (",", 1)}[layout]
            table, (u, i, r) = files.numeric(main, sep, 4, skip), (0, 1, 2)
            if layout == "100k":
                genres = {j: g for g, j in files.rows("u.genre", "|", 2, ints=(1,)) or []}
                rows = files.rows("u.item", "|", 24)
                rows = rows and [
                    [
                        row[0],
                        row[1],
                        "|".join(
                            genres.get(j, str(j)) for j, flag in enumerate(row[5:24]) if flag == "1"
                        ),
                    ]
                    for row in rows
                ]
                fields = {"age": 1, "gender": 2, "occupation": 3}
                user_pairs = field_pairs(files.rows("u.user", "|", 5), 0, fields)
            elif layout == "1m":
                rows = files.rows("movies.dat", "::", 3)
                fields = {"gender": 1, "age": 2, "occupation": 3}
                user_pairs = field_pairs(files.rows("users.dat", "::", 5), 0, fields)
            else:
                rows = files.rows("movies.csv", ",", 3, skip=1)
            names, item_pairs = titles(rows, 0, 1, 2, "|")
    for column, what in ((u, "user id"), (i, "item id"), (r, "rating")):
        bad = np.flatnonzero(~np.isfinite(table[:, column]))
        if len(bad):
            raise ValueError(
                f"{main}, data row {bad[0] + 1}: the {what} is "
                f"{table[bad[0], column]}, not a finite number"
            )
    keep = None if min_rating is None else table[:, r] >= min_rating
    return assemble(
        numeric_ids(table[:, u]),
        numeric_ids(table[:, i]),
        table[:, r],
        keep,
        names,
        user_pairs,
        item_pairs,
    )


__all__ = ["load_movielens"]
