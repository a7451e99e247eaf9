"""``implicit.datasets.movielens.get_movielens`` over :func:`tacitrec.datasets.fetch_movielens`.

Differences from implicit: the data come from GroupLens' own archives (checked by SHA-256 and
cached in ``$TACITREC_DATA_HOME`` or ``~/.cache/tacitrec``), not from implicit's HDF5 copies, and
rows are the movies in the order of ``tacitrec.datasets.LoadedData.item_ids`` (implicit uses the
raw movieId as the row, leaving empty rows for unused ids).
"""

from __future__ import annotations

from ....datasets import fetch_movielens


def get_movielens(variant: str = "20m"):
    """``(titles, ratings)``: an array of the movie titles and an items x users CSR matrix of
    the ratings, as implicit's ``get_movielens``."""
    data = fetch_movielens(variant)
    return data.item_names, data.user_items.T.tocsr()


__all__ = ["get_movielens"]
