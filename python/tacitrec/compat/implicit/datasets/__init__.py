"""``implicit.datasets``: the MovieLens loader in implicit's shape (see :mod:`.movielens`)."""

from . import movielens

__all__ = ["movielens"]
