"""The Last.fm loader: HetRec 2011 (Last.fm 2K) and Last.fm 360K."""

from __future__ import annotations

import numpy as np

from .. import _delimited, _ids
from .files import DataFiles
from .loaded import LoadedData, assemble, field_pairs, numeric_ids

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
    with DataFiles(path) as files:
        layout, main = files.locate(_LASTFM, "Last.fm")
        if layout == "hetrec":
            table = files.numeric(main, "\t", 3, skip=1)
            artists = files.rows("artists.dat", "\t", 2, skip=1)
            names = None if artists is None else {row[0]: row[1] for row in artists}
            tagged, item_pairs = files.numeric("user_taggedartists.dat", "\t", 6, skip=1), None
            if tagged is not None:
                tags = {row[0]: row[1] for row in files.rows("tags.dat", "\t", 2, skip=1) or []}
                item_pairs = [
                    (int(a), "tag=" + tags.get(int(t), str(int(t)))) for a, t in tagged[:, 1:3]
                ]
            return assemble(
                numeric_ids(table[:, 0]),
                numeric_ids(table[:, 1]),
                table[:, 2],
                names=names,
                item_pairs=item_pairs,
            )
        users, items, first_names, rows, cols, plays = (
            _ids.Encoder(),
            _ids.Encoder(),
            [],
            [],
            [],
            [],
        )
        label = files.label(main)
        with files.open(main) as f:
            for (sha, mbid, name, count), data, line in _delimited.columns(f, label, "\t", 4):
                try:
                    plays.append(np.array(count, dtype=np.float64))
                except ValueError:
                    _delimited.bad_number(data, b"\t", label, line, columns=(3,))
                rows.append(users.codes(sha))
                seen = len(items)
                cols.append(items.codes([m or a for m, a in zip(mbid, name)]))
                new = np.flatnonzero(cols[-1] >= seen)
                first = new[np.unique(cols[-1][new], return_index=True)[1]]
                first_names += [name[k] for k in first]
        profile = files.rows("usersha1-profile.tsv", "\t", 5, ints=())

    def cat(parts):
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    user_ids, rows, _ = users.sorted(cat(rows), object, _delimited.decode)
    item_ids, cols, order = items.sorted(cat(cols), object, _delimited.decode)
    names = {item_ids[k]: _delimited.decode(first_names[j]) for k, j in enumerate(order)}
    return assemble(
        (user_ids, rows),
        (item_ids, cols),
        cat(plays),
        names=names,
        user_pairs=field_pairs(profile, 0, {"gender": 1, "age": 2, "country": 3}),
    )


__all__ = ["load_lastfm"]
