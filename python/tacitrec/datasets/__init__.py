"""Datasets: a seeded synthetic generator with planted structure (the demo and tests use it),
loaders for local copies of MovieLens and Last.fm, and downloaders that fetch them into a cache.

The loaders (:func:`load_movielens`, :func:`load_lastfm`) read a folder, a .zip/.tar.gz archive or
a data file and return a :class:`LoadedData`. The fetchers (:func:`fetch_movielens`,
:func:`fetch_lastfm`) download the official archive once into ``data_home``, else
``$TACITREC_DATA_HOME``, else ``~/.cache/tacitrec``, check its checksum, and load it from there.

One module per job: ``generator`` (the synthetic data), ``files`` (a data set's folder or
archive), ``loaded`` (what the loaders return), ``movielens`` and ``lastfm`` (their layouts),
``download`` (the cache and the fetchers). Text is read by :mod:`tacitrec._delimited` and ids are
encoded by :mod:`tacitrec._ids`, as everywhere in tacitrec.
"""

from .download import (
    DATA_HOME_ENV,
    LASTFM_DOWNLOADS,
    MOVIELENS_DOWNLOADS,
    ChecksumError,
    Download,
    fetch_lastfm,
    fetch_movielens,
)
from .generator import SyntheticData, synthetic
from .lastfm import load_lastfm
from .loaded import LoadedData
from .movielens import load_movielens

__all__ = [
    "SyntheticData",
    "synthetic",
    "LoadedData",
    "load_movielens",
    "load_lastfm",
    "fetch_movielens",
    "fetch_lastfm",
    "Download",
    "ChecksumError",
    "MOVIELENS_DOWNLOADS",
    "LASTFM_DOWNLOADS",
    "DATA_HOME_ENV",
]
