"""Downloads of the official archives into a local cache, checked against published checksums,
and the fetchers that load them from there."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from typing import NamedTuple, Optional

from .._files import atomic_output
from .lastfm import load_lastfm
from .loaded import LoadedData
from .movielens import load_movielens


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
    "100k": Download(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "sha256:50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        4924029,
    ),
    "1m": Download(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        5917549,
    ),
    "10m": Download(
        "https://files.grouplens.org/datasets/movielens/ml-10m.zip",
        "sha256:813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
    ),
    "20m": Download(
        "https://files.grouplens.org/datasets/movielens/ml-20m.zip",
        "sha256:96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        198702078,
    ),
    "25m": Download(
        "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
        "sha256:8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        261978986,
    ),
    "latest-small": Download(
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        "sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        978202,
    ),
}

#: variant -> Download of a Last.fm archive. SHA-256 as published in ISG-Siegen/OmniRec. The
#: 360K archive (http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-360K.tar.gz) has no
#: published checksum, so it is not fetched: download it yourself and use :func:`load_lastfm`.
LASTFM_DOWNLOADS = {
    "hetrec-2k": Download(
        "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
        "sha256:6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c",
    ),
}

DATA_HOME_ENV = "TACITREC_DATA_HOME"


def _download(registry, variant, data_home, what):
    """The path of the variant's archive in the cache, downloaded (and checked) if not there."""
    if variant not in registry:
        hint = (
            " (the Last.fm 360K archive has no published checksum: download it and use load_lastfm)"
            if what == "Last.fm" and variant == "360k"
            else ""
        )
        raise ValueError(
            f"unknown {what} variant {variant!r}; choose from {sorted(registry)}{hint}"
        )
    entry = registry[variant]
    home = os.path.expanduser(
        os.fspath(
            data_home or os.environ.get(DATA_HOME_ENV) or os.path.join("~", ".cache", "tacitrec")
        )
    )
    os.makedirs(home, exist_ok=True)
    target = os.path.join(home, os.path.basename(urllib.parse.urlparse(entry.url).path))
    if os.path.isfile(target) and entry.size in (None, os.path.getsize(target)):
        return target
    algorithm, expected = entry.checksum.split(":", 1)
    digest, size = hashlib.new(algorithm), 0
    with atomic_output(target, "wb") as out, urllib.request.urlopen(entry.url, timeout=60) as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
            size += len(block)
        if entry.size is not None and size != entry.size:
            raise ChecksumError(f"{entry.url}: expected {entry.size} bytes, got {size}")
        if digest.hexdigest() != expected.lower():
            raise ChecksumError(
                f"{entry.url}: expected {algorithm} {expected}, got {digest.hexdigest()}"
            )
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
    return load_movielens(
        _download(MOVIELENS_DOWNLOADS, variant, data_home, "MovieLens"), min_rating=min_rating
    )


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


__all__ = [
    "fetch_movielens",
    "fetch_lastfm",
    "Download",
    "ChecksumError",
    "MOVIELENS_DOWNLOADS",
    "LASTFM_DOWNLOADS",
    "DATA_HOME_ENV",
]
