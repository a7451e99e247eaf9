"""Reading delimited text files: the one reader behind the dataset loaders and the command line.

A file is read in one of two ways, with the same rules and the same errors:

- line by line (:func:`lines`, then :func:`records`): for files whose fields are strings or are
  quoted (comma-separated fields are read as CSV), or whose separator is whitespace;
- block by block (:func:`blocks`, then :func:`numeric` or :func:`columns`): for large files of
  a fixed number of fields separated by one string: the field count of every line is checked
  with NumPy and numbers are parsed in C, a block of about :data:`CHUNK` bytes at a time.

Rules: lines end with ``\\n`` (or ``\\r\\n``); blank lines are skipped; a UTF-8 byte-order mark
at the start of a file is skipped; text is UTF-8, or Latin-1 for a line that is not UTF-8 (the
public data sets mix them), unless an encoding is given. A malformed line raises ValueError
naming the file and the line number: ``ratings.csv, line 8: ...``.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from typing import Iterable, Iterator, List, NoReturn, Optional, Tuple

import numpy as np

#: bytes of a file read into one block
CHUNK = 1 << 26
_BOM = "\ufeff"
_BOM_BYTES = _BOM.encode("utf-8")


def decode(raw: bytes) -> str:
    """UTF-8 text, else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def describe(sep: Optional[str]) -> str:
    """A separator as an error message shows it."""
    return {"\t": "tabs", None: "whitespace"}.get(sep, repr(sep))


def line_error(label, number: int, message: str) -> ValueError:
    return ValueError(f"{label}, line {number}: {message}")


def sniff(text: str) -> Optional[str]:
    """The separator of a line: the first of tab, '::', ',', ';', '|' that it holds, else None
    (whitespace)."""
    for sep in ("\t", "::", ",", ";", "|"):
        if sep in text:
            return sep
    return None


# ---- line by line ------------------------------------------------------------------------------
def lines(f, encoding: Optional[str] = None, skip: int = 0) -> Iterator[Tuple[int, str]]:
    """``(line number, text without its line end)`` of the non-blank lines of a file opened for
    binary reading, after its first ``skip`` lines.

    ``encoding=None``: each line UTF-8, else Latin-1. A codec name: the whole file in that
    encoding (UnicodeDecodeError where it is not), lines also ended by a lone ``\\r`` (as
    Python's text mode)."""
    source: Iterator[str]
    wrapper = None
    if encoding is None:
        source = map(decode, f)
    else:
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"
        source = wrapper = io.TextIOWrapper(f, encoding=encoding, newline="")
    try:
        for number, text in enumerate(source, 1):
            if number == 1 and text.startswith(_BOM):
                text = text[1:]
            if number > skip and text.strip():
                yield number, text.rstrip("\r\n")
    finally:
        if wrapper is not None and not f.closed:
            wrapper.detach()  # f stays open: the caller closes it


def _splitter(sep: Optional[str]):
    if sep == ",":
        return lambda text: next(csv.reader([text]))
    if sep is None:
        return str.split
    return lambda text: text.split(sep)


def records(
    numbered: Iterable[Tuple[int, str]], label, sep: Optional[str], min_fields: int = 0
) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` of ``(line number, text)`` lines split at ``sep`` (None:
    whitespace; ',': CSV, fields may be quoted); raises for a line of fewer than
    ``min_fields`` fields or one the CSV reader refuses."""
    split = _splitter(sep)
    for number, text in numbered:
        try:
            fields = split(text)
        except csv.Error as e:  # e.g. a field over the csv module's size limit
            raise line_error(label, number, str(e)) from None
        if len(fields) < min_fields:
            raise line_error(
                label,
                number,
                f"expected at least {min_fields} fields separated "
                f"by {describe(sep)}, found {len(fields)}: {text[:100]!r}",
            )
        yield number, fields


def rows(f, label, sep: str, min_fields: int, ints=(), skip: int = 0) -> List[list]:
    """The rows of a small file (see :func:`lines` and :func:`records`) as lists of at least
    ``min_fields`` str, those at the positions ``ints`` converted to int."""
    out = []
    for number, fields in records(lines(f, skip=skip), label, sep, min_fields):
        for j in ints:
            try:
                fields[j] = int(fields[j])  # type: ignore[call-overload]  # the row's ints
            except ValueError:
                raise line_error(
                    label, number, f"field {j + 1} ({fields[j]!r}) is not an integer id"
                ) from None
        out.append(fields)
    return out


# ---- block by block ----------------------------------------------------------------------------
def blocks(f, skip: int = 0) -> Iterator[Tuple[bytes, int]]:
    """``(data, number of its first line)``: whole lines of a binary file, about :data:`CHUNK`
    bytes at a time (the last line also ended with a newline), after its first ``skip``
    lines."""
    line = 1
    for _ in range(skip):
        f.readline()
        line += 1
    rest = b""
    while True:
        block = f.read(CHUNK)
        data = rest + block
        if line == 1 and data.startswith(_BOM_BYTES):
            data = data[len(_BOM_BYTES) :]
        cut = data.rfind(b"\n") + 1 if block else len(data)
        data, rest = data[:cut], data[cut:]
        if data:
            data = data if data.endswith(b"\n") else data + b"\n"
            yield data, line
            line += data.count(b"\n")
        if not block:
            return


def _count(data: bytes, one: bytes, n_fields: int, label, line: int, sep: str) -> int:
    """The number of non-blank lines of a block (separator ``one``, a byte); raises for a line
    without ``n_fields`` fields."""
    b = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(b == 10)
    found = 1 + np.bincount(np.searchsorted(ends, np.flatnonzero(b == one[0])), minlength=len(ends))
    starts = np.concatenate([[0], ends[:-1] + 1])
    bad = np.flatnonzero(found != n_fields)
    for i in bad:
        text = data[starts[i] : ends[i]]
        if text.strip():
            raise line_error(
                label,
                line + i,
                f"expected {n_fields} fields separated by "
                f"{describe(sep)}, found {found[i]}: {decode(text[:100])!r}",
            )
    return len(ends) - len(bad)


def bad_number(data: bytes, one: bytes, label, line: int, columns=None) -> NoReturn:
    """Raises for the first field of a block (in ``columns``, default all) that is not a
    number."""
    for i, text in enumerate(data.split(b"\n")):
        fields = text.split(one) if text.strip() else []
        for j, field in enumerate(fields):
            try:
                if columns is None or j in columns:
                    float(field)
            except ValueError:
                raise line_error(
                    label, line + i, f"field {j + 1} ({decode(field)!r}) is not a number"
                ) from None
    raise ValueError(f"{label}: numbers in the lines from {line} on cannot be parsed")


def numeric(f, label, sep: str, n_fields: int, skip: int = 0) -> np.ndarray:
    """A file of numbers as an ``(n_rows, n_fields)`` float64 array."""
    one, parts = (b"\t" if len(sep) > 1 else sep.encode()), []
    for data, line in blocks(f, skip):
        if len(sep) > 1:
            data = data.replace(sep.encode(), one)
        n_rows = _count(data, one, n_fields, label, line, sep)
        if n_rows == 0:  # blank lines only
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # numpy < 2 on bad data
                values = np.fromstring(data.replace(one, b" "), sep=" ")
        except ValueError:
            values = None
        if values is None or values.size != n_rows * n_fields:
            bad_number(data, one, label, line)
        parts.append(values.reshape(-1, n_fields))
    return np.concatenate(parts) if parts else np.empty((0, n_fields))


def columns(f, label, sep: str, n_fields: int) -> Iterator[Tuple[List[list], bytes, int]]:
    """Per block of a file of ``n_fields`` fields separated by one character: ``(columns,
    data, line)``, ``columns[j]`` the j-th fields (bytes) of the block's non-blank lines, and
    the block as read with the number of its first line (for :func:`bad_number`)."""
    one = sep.encode()
    for data, line in blocks(f):
        body = data
        if _count(data, one, n_fields, label, line, sep) != data.count(b"\n"):
            body = b"".join(t for t in data.splitlines(True) if t.strip())
        tokens = body.replace(b"\n", one).split(one)[:-1]
        yield [tokens[j::n_fields] for j in range(n_fields)], data, line


__all__ = [
    "CHUNK",
    "decode",
    "describe",
    "line_error",
    "sniff",
    "lines",
    "records",
    "rows",
    "blocks",
    "numeric",
    "columns",
    "bad_number",
]
