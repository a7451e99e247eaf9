"""The one delimited-file reader (tacitrec._delimited), line by line and block by block."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tacitrec import _delimited, _io
from tacitrec.datasets import load_lastfm, load_movielens


def lines(raw: bytes, **kw):
    return list(_delimited.lines(io.BytesIO(raw), **kw))


def test_lines_skip_blank_lines_and_a_byte_order_mark_and_keep_numbers():
    raw = "\ufeffa\tb\r\n\n  \nc\té\n".encode("utf-8")
    assert lines(raw) == [(1, "a\tb"), (4, "c\té")]
    assert lines(raw, encoding="utf-8") == [(1, "a\tb"), (4, "c\té")]
    assert lines(raw, skip=1) == [(4, "c\té")]
    # without an encoding each line is UTF-8, else Latin-1 (the public data sets mix them)
    assert lines("ü\n".encode("latin-1") + "ü\n".encode("utf-8")) == [(1, "ü"), (2, "ü")]
    with pytest.raises(UnicodeDecodeError):
        lines("ü\n".encode("latin-1"), encoding="utf-8")
    assert lines(b"a\rb\r", encoding="latin-1") == [(1, "a"), (2, "b")]  # text mode's line ends


def test_lines_leave_the_file_open_for_its_owner():
    f = io.BytesIO(b"a\nb\n")
    assert [t for _, t in _delimited.lines(f, encoding="utf-8")] == ["a", "b"]
    assert not f.closed and f.read() == b""


def test_records_split_csv_whitespace_and_separators_and_name_the_bad_line():
    numbered = [(1, 'a,"b, c",1'), (3, "x,y")]
    assert list(_delimited.records(numbered, "f.csv", ",")) == [
        (1, ["a", "b, c", "1"]),
        (3, ["x", "y"]),
    ]
    assert list(_delimited.records([(2, " a  b\t1 ")], "f", None)) == [(2, ["a", "b", "1"])]
    assert list(_delimited.records([(1, "1::2::3")], "f", "::")) == [(1, ["1", "2", "3"])]
    with pytest.raises(
        ValueError,
        match=r"^f\.csv, line 3: expected at least 3 fields separated "
        r"by ',', found 2: 'x,y'$",
    ):
        list(_delimited.records(numbered, "f.csv", ",", min_fields=3))
    with pytest.raises(
        ValueError,
        match=r"^f, line 9: expected at least 2 fields separated by "
        "tabs, found 1",
    ):
        list(_delimited.records([(9, "a")], "f", "\t", min_fields=2))


def test_rows_convert_integer_ids_or_name_the_field():
    raw = b"id|name\n1|a|extra\n\n2|b\n"
    assert _delimited.rows(io.BytesIO(raw), "x", "|", 2, ints=(0,), skip=1) == [
        [1, "a", "extra"],
        [2, "b"],
    ]
    with pytest.raises(ValueError, match=r"x, line 1: field 1 \('id'\) is not an integer id"):
        _delimited.rows(io.BytesIO(raw), "x", "|", 2, ints=(0,))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(-99, 99), st.booleans()), max_size=30),
    st.sampled_from(["\t", ",", "::"]),
    st.integers(1, 40),
    st.booleans(),
)
def test_numeric_equals_a_plain_parse_for_any_block_size(rows, sep, chunk, bom):
    text = "".join(f"{a}{sep}{b / 4}\n" + ("\n" if blank else "") for a, b, blank in rows)
    raw = ("\ufeff" if bom else "").encode() + text.encode()
    want = np.array([[a, b / 4] for a, b, _ in rows], dtype=np.float64).reshape(-1, 2)
    old = _delimited.CHUNK
    try:
        _delimited.CHUNK = chunk
        got = _delimited.numeric(io.BytesIO(raw), "f", sep, 2)
    finally:
        _delimited.CHUNK = old
    np.testing.assert_array_equal(got, want)


def test_numeric_errors_name_the_line_in_any_block():
    raw = b"1\t2\n3\t4\n\n5\tx\n"
    for chunk in (3, 1 << 20):
        old, _delimited.CHUNK = _delimited.CHUNK, chunk
        try:
            with pytest.raises(ValueError, match=r"f, line 4: field 2 \('x'\) is not a number"):
                _delimited.numeric(io.BytesIO(raw), "f", "\t", 2)
            with pytest.raises(
                ValueError,
                match=r"f, line 2: expected 2 fields separated by "
                r"tabs, found 3: '3\\t4\\t5'",
            ):
                _delimited.numeric(io.BytesIO(b"1\t2\n3\t4\t5\n"), "f", "\t", 2)
        finally:
            _delimited.CHUNK = old


def test_columns_skip_blank_lines():
    raw = b"a\tb\n\nc\td\n"
    got = [(cols, line) for cols, _, line in _delimited.columns(io.BytesIO(raw), "f", "\t", 2)]
    assert got == [([[b"a", b"c"], [b"b", b"d"]], 1)]


def test_a_bad_play_count_after_a_blank_line_names_its_own_line(tmp_path):
    (tmp_path / "usersha1-artmbid-artname-plays.tsv").write_text("a\t\tx\t1\n\nb\t\ty\tmany\n")
    with pytest.raises(ValueError, match=r"plays\.tsv, line 3: field 4 \('many'\)"):
        load_lastfm(tmp_path)


def test_loaders_skip_a_byte_order_mark(tmp_path):
    (tmp_path / "ratings.csv").write_bytes(
        "\ufeffuserId,movieId,rating,timestamp\n1,2,4,0\n".encode("utf-8")
    )
    (tmp_path / "movies.csv").write_bytes("\ufeffmovieId,title,genres\n2,A,Drama\n".encode("utf-8"))
    d = load_movielens(tmp_path)
    assert d.user_items.toarray().tolist() == [[4.0]] and list(d.item_names) == ["A"]
    (tmp_path / "u.data").write_bytes("\ufeff3\t4\t5\t0\n".encode("utf-8"))
    assert load_movielens(tmp_path / "u.data").user_ids.tolist() == [3]


def test_command_line_and_loader_read_the_same_file_alike(tmp_path):
    p = tmp_path / "ratings.csv"
    p.write_text(
        "userId,movieId,rating,timestamp\n11,20,4,0\n12,21,3.5,0\n\n11,21,1,0\n11,20,1,0\n"
    )
    cli, loader = _io.read_interactions(p), load_movielens(p)
    assert cli.user_ids.tolist() == ["11", "12"] and loader.user_ids.tolist() == [11, 12]
    assert cli.item_ids.tolist() == ["20", "21"] and loader.item_ids.tolist() == [20, 21]
    assert (cli.matrix != loader.user_items).nnz == 0
