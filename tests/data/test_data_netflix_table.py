"""Netflix Prize format and the generic CSV/TSV/parquet loader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rbmrec.data import load_netflix, load_ratings, load_table
from rbmrec.errors import DataError

MOVIES = {
    1: [(6, 3, "2005-09-06"), (1488844, 5, "2005-09-07"), (822109, 4, "2004-01-01")],
    2: [(6, 1, "2003-02-28")],
    30: [(1488844, 2, "2001-12-31"), (7, 5, "2002-06-15")],
}


def _epoch(date: str) -> int:
    return int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC).timestamp())


def _movie_text(movie: int) -> str:
    return f"{movie}:\n" + "".join(f"{u},{r},{d}\n" for u, r, d in MOVIES[movie])


def _training_set(root: Path) -> Path:
    ts = root / "training_set"
    ts.mkdir(parents=True)
    for movie in MOVIES:
        (ts / f"mv_{movie:07d}.txt").write_text(_movie_text(movie))
    titles = "1,2003,Dinosaur Planet\n2,NULL,Isle of Man TT, 2004 Review\n30,1999,Amélie\n"
    (root / "movie_titles.txt").write_bytes(titles.encode("latin-1"))
    return root


def _check(r) -> None:
    assert (r.n_ratings, r.n_users, r.n_items) == (6, 4, 3)
    assert r.user_ids.raw.tolist() == [6, 7, 822109, 1488844]
    assert r.item_ids.raw.tolist() == [1, 2, 30]
    for movie, rows in MOVIES.items():
        i = r.item_ids.to_index(movie)
        for u, rating, date in rows:
            ui = r.user_ids.to_index(u)
            assert r.user_items[ui, i] == rating
            assert r.timestamps[ui, i] == _epoch(date)
    assert r.values.tolist() == [1, 2, 3, 4, 5]


def test_netflix_training_set_layout(tmp_path):
    root = _training_set(tmp_path / "nf")
    r = load_netflix(root)
    _check(r)
    assert r.item_titles([0, 1, 2]) == ["Dinosaur Planet", "Isle of Man TT, 2004 Review", "Amélie"]
    assert r.items["year"].to_list() == [2003, None, 1999]
    # The training_set folder itself works too.
    assert load_netflix(root / "training_set").n_ratings == 6


def test_netflix_combined_layout(tmp_path):
    (tmp_path / "combined_data_1.txt").write_text(_movie_text(1) + _movie_text(2))
    (tmp_path / "combined_data_2.txt").write_text(_movie_text(30))
    _check(load_netflix(tmp_path))
    single = load_netflix(tmp_path / "combined_data_1.txt", metadata=False)
    assert single.n_ratings == 4 and single.items is None


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("2:\n6,1,2003-02-28\n7,x,2003-02-28\n", 3, "rating is not a number"),
        ("2:\n6,1,2003-02-28\n7,4,2003-02-30\n", 3, "date is not YYYY-MM-DD"),
        ("2:\n6,1\n", 2, "expected 'CustomerID,Rating,Date'"),
        ("2:\n6,1,2003-02-28,9\n", 2, "expected 'CustomerID,Rating,Date'"),
        ("2:\n-6,1,2003-02-28\n", 2, "negative customer id"),
        ("2:\nsix,1,2003-02-28\n", 2, "customer id is not an integer"),
        ("2:\n6,nan,2003-02-28\n", 2, "rating is not a finite number"),
        ("2:\n6,0,2003-02-28\n", 2, "rating 0 is not on the 1..5 scale"),
        ("2:\n6,9,2003-02-28\n", 2, "rating 9 is not on the 1..5 scale"),
        ("two:\n6,1,2003-02-28\n", 1, "movie id is not an integer"),
        ("6,1,2003-02-28\n", 1, "rating before the first 'MovieID:' line"),
        ("2:\n6,1,2003-02-28\n6,2,2003-02-28\n", 3, "duplicate rating of item 2 by user 6"),
        # Only YYYY-MM-DD: polars alone accepts 2003-2-8.
        ("2:\n6,1,2003-2-8\n", 2, "date is not YYYY-MM-DD"),
    ],
)
def test_netflix_bad_lines(tmp_path, text, line, message):
    root = _training_set(tmp_path / "nf")
    bad = root / "training_set" / "mv_0000002.txt"
    bad.write_text(text)
    with pytest.raises(DataError, match=rf"mv_0000002.txt, line {line}: {message}"):
        load_netflix(root)


@pytest.mark.parametrize("when", ["09/06/2005", "2005-9-6"])
def test_netflix_dates_must_be_iso(tmp_path, when):
    # A pl.Date schema read 09/06/2005 day first (2005-06-09) when every date looked so.
    training = tmp_path / "nf" / "training_set"
    training.mkdir(parents=True)
    (training / "mv_0000001.txt").write_text(f"1:\n10,3,{when}\n11,4,{when}\n")
    with pytest.raises(DataError, match=r"mv_0000001.txt, line 2: date is not YYYY-MM-DD"):
        load_netflix(tmp_path / "nf")


def test_netflix_empty_and_missing(tmp_path):
    root = _training_set(tmp_path / "nf")
    (root / "training_set" / "mv_0000002.txt").write_text("")
    with pytest.raises(DataError, match=r"mv_0000002.txt: the file is empty"):
        load_netflix(root)
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no Netflix Prize rating files"):
        load_netflix(tmp_path / "none")
    with pytest.raises(FileNotFoundError):
        load_netflix(tmp_path / "missing")


def test_netflix_duplicates_policy(tmp_path):
    root = _training_set(tmp_path / "nf")
    (root / "training_set" / "mv_0000002.txt").write_text("2:\n6,1,2003-02-28\n6,5,2003-03-01\n")
    r = load_netflix(root, duplicates="last")
    assert r.user_items[r.user_ids.to_index(6), r.item_ids.to_index(2)] == 5


# --------------------------------------------------------------------------- tables


def test_csv_with_string_ids_and_dates(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text(
        "who,what,stars,when\n"
        "alice,tt01,4,2001-01-01\n"
        "bob,tt01,5,2002-03-04 10:00:00\n"
        "\n"
        "carol,tt02,3.5,2003-01-01\n"
    )
    r = load_table(f, user="who", item="what", rating="stars", timestamp="when")
    assert (r.n_users, r.n_items, r.n_ratings) == (3, 2, 3)
    assert r.user_ids.raw.tolist() == ["alice", "bob", "carol"]
    assert r.item_ids.raw.tolist() == ["tt01", "tt02"]
    assert r.timestamps[1, 0] == _epoch("2002-03-04T10:00:00")
    assert r.name == "export"
    assert load_ratings is load_table


def test_tsv_and_custom_separator_without_header(tmp_path):
    f = tmp_path / "r.tsv"
    f.write_text("user_id\titem_id\trating\n1\t10\t4\n2\t10\t5\n")
    r = load_table(f)
    assert r.user_ids.raw.tolist() == [1, 2] and r.user_items.dtype == np.float32
    g = tmp_path / "ratings.txt"
    g.write_text("1::10::4::100\n2::10::5::200\n")
    r = load_table(g, user=0, item=1, rating=2, timestamp=3, has_header=False)
    assert r.n_ratings == 2 and r.timestamps[1, 0] == 200
    h = tmp_path / "semi.txt"
    h.write_text("u;i;r\n1;2;3\n")
    assert load_table(h, user="u", item="i", rating="r").n_ratings == 1


def test_parquet(tmp_path):
    f = tmp_path / "r.parquet"
    pl.DataFrame(
        {
            "u": [1, 2, 2],
            "i": ["a", "a", "b"],
            "r": [1.0, 2.0, 3.0],
            "t": [dt.datetime(2000, 1, 1)] * 3,
        }
    ).write_parquet(f)
    r = load_table(f, user="u", item="i", rating="r", timestamp="t")
    assert r.user_items.toarray().tolist() == [[1, 0], [2, 3]]
    assert set(r.timestamps.data.tolist()) == {946684800}
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_table(tmp_path / "bad.parquet")


def test_parquet_string_ids_are_kept_as_stored(tmp_path):
    f = tmp_path / "r.parquet"
    pl.DataFrame(
        {"user_id": ["a", " a", "b"], "item_id": ["x", "x", "x "], "rating": [1.0, 2.0, 3.0]}
    ).write_parquet(f)
    r = load_table(f)
    # " a" is another user than "a", and "x " another item than "x": nothing is merged.
    assert r.n_users == 3 and r.n_items == 2 and r.n_ratings == 3
    assert sorted(r.user_ids.raw.tolist()) == [" a", "a", "b"]


def test_text_ids_are_still_stripped(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("user_id,item_id,rating\na,x,1\n a ,x,2\n")
    with pytest.raises(DataError, match="duplicate rating"):
        load_table(f)


def test_parquet_all_null_row_is_an_error_naming_the_row(tmp_path):
    f = tmp_path / "r.parquet"
    pl.DataFrame(
        {"user_id": [1, None, 2], "item_id": [5, None, 6], "rating": [1.0, None, 2.0]}
    ).write_parquet(f)
    with pytest.raises(DataError, match=r"r\.parquet, row 1: missing user"):
        load_table(f)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1,10,good\n", r"line 3: rating 'good' is not a number"),
        ("1,10,nan\n", r"line 3: rating nan is not a finite number"),
        ("-1,10,4\n", r"line 3: negative user id -1"),
        (",10,4\n", r"line 3: missing user \('user_id'\)"),
        (" ,10,4\n", r"line 3: missing user \('user_id'\)"),
        ("1,  ,4\n", r"line 3: missing item \('item_id'\)"),
        ("2,20,4\n", r"line 3: duplicate rating of item 20 by user 2 \(first at .*line 2\)"),
    ],
)
def test_table_bad_values(tmp_path, body, match):
    f = tmp_path / "r.csv"
    f.write_text("user_id,item_id,rating\n2,20,3\n" + body)
    with pytest.raises(DataError, match=match):
        load_table(f)


def test_table_structure_errors(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("user,item,score\n1,2,3\n")
    with pytest.raises(DataError, match=r"rating column 'rating' not found .*columns: \['user'"):
        load_table(f, user="user", item="item")
    with pytest.raises(DataError, match="out of range"):
        load_table(f, user=0, item=1, rating=7)
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        load_table(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("user_id,item_id,rating\n")
    with pytest.raises(DataError, match="no ratings"):
        load_table(tmp_path / "h.csv")
    with pytest.raises(FileNotFoundError):
        load_table(tmp_path / "missing.csv")
    g = tmp_path / "d.csv"
    g.write_text("user_id,item_id,rating\n1,2,3\n1,2,5\n")
    assert load_table(g, duplicates="mean").user_items[0, 0] == 4


def test_table_columns_by_position_mean_no_header(tmp_path):
    f = tmp_path / "noheader.csv"
    f.write_text("1,2,5\n3,4,2\n")
    r = load_table(f, user=0, item=1, rating=2)
    assert r.n_ratings == 2 and r.user_ids.raw.tolist() == [1, 3]
    # A header is still read when asked for, or when any column is named.
    g = tmp_path / "header.csv"
    g.write_text("who,what,stars\n1,2,5\n3,4,2\n")
    assert load_table(g, user=0, item=1, rating=2, has_header=True).n_ratings == 2
    assert load_table(g, user="who", item=1, rating=2).n_ratings == 2
    # A "header" of numbers is a rating line: an error, not a silently dropped rating.
    with pytest.raises(DataError, match=r"noheader.csv, line 1: read as the header but holds"):
        load_table(f, user=0, item=1, rating=2, has_header=True)


def test_table_blank_lines_at_the_top(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("\n  \n1,2,5\n3,4,2\n3,x,\n")
    with pytest.raises(DataError, match=r"r.csv, line 5: missing rating"):
        load_table(f, user=0, item=1, rating=2)
    f.write_text("\n\n1,2,5\n3,4,2\n")
    assert load_table(f, user=0, item=1, rating=2).n_ratings == 2
    f.write_text("\nuser_id,item_id,rating\n\n1,2,5\n3,4,x\n")
    with pytest.raises(DataError, match=r"r.csv, line 5: rating 'x' is not a number"):
        load_table(f)


def test_table_zero_and_negative_ratings_are_stored_entries(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("user_id,item_id,rating\n1,10,0\n1,11,-2.5\n2,10,4\n3,12,0.0\n")
    r = load_table(f)
    assert r.n_ratings == 4 and r.user_items.nnz == 4
    assert sorted(r.values.tolist()) == [-2.5, 0.0, 4.0]
    frame = r.to_frame().sort(["user_id", "item_id"])
    assert frame["rating"].to_list() == [0.0, -2.5, 4.0, 0.0]


@pytest.mark.parametrize(
    "when", ["09/06/2005", "13/02/2020", "2005-9-6", "06.09.2005", "2005/09/06"]
)
def test_table_dates_must_be_iso(tmp_path, when):
    f = tmp_path / "r.csv"
    f.write_text(f"user_id,item_id,rating,ts\n1,2,5,{when}\n2,2,4,{when}\n")
    with pytest.raises(DataError, match=r"r.csv, line 2: timestamp .* nor an ISO date"):
        load_table(f, timestamp="ts")
    # ISO dates and datetimes are still read.
    f.write_text(
        "user_id,item_id,rating,ts\n"
        "1,2,5,2020-01-02\n"
        "2,2,4,2020-01-02T10:00:00\n"
        "3,2,3,2020-01-02 10:00:00.5\n"
    )
    r = load_table(f, timestamp="ts")
    assert r.timestamps.data.tolist() == [
        _epoch("2020-01-02"),
        _epoch("2020-01-02T10:00:00"),
        _epoch("2020-01-02T10:00:00"),
    ]
    f.write_text("user_id,item_id,rating,ts\n1,2,5,2020-01-02T00:00:00+02:00\n")
    assert load_table(f, timestamp="ts").timestamps.data.tolist() == [_epoch("2020-01-01T22:00")]


def test_table_ids_written_with_leading_zeros_stay_strings(tmp_path):
    """``0042`` read as the integer 42 would not match the id a user copies from the file."""
    f = tmp_path / "padded.csv"
    f.write_text("user_id,item_id,rating\n0001,00242,4\n0002, 00242 ,5\n0002,17,3\n")
    r = load_table(f)
    assert r.user_ids.raw.tolist() == ["0001", "0002"]
    assert sorted(r.item_ids.raw.tolist()) == ["00242", "17"]
    # Plain integers (spaces around them allowed) are still integer ids.
    g = tmp_path / "plain.csv"
    g.write_text("user_id,item_id,rating\n1, 242,4\n2,17 ,5\n")
    r = load_table(g)
    assert r.user_ids.raw.dtype.kind == "i" and sorted(r.item_ids.raw.tolist()) == [17, 242]


@pytest.mark.parametrize(
    ("body", "kwargs", "line", "text"),
    [
        ("user_id,item_id,rating\n1,2,5\n3,4,2,9\n", {}, 3, "3,4,2,9"),
        ("\n\nuser_id,item_id,rating\n\n1,2,5\n3,4,2,9\n", {}, 6, "3,4,2,9"),
        ("1::2::5\n3::4::2::9\n", {"user": 0, "item": 1, "rating": 2}, 2, "3::4::2::9"),
        ("\n1,2,5\n3,4,2,9\n", {"user": 0, "item": 1, "rating": 2}, 3, "3,4,2,9"),
    ],
)
def test_table_line_with_too_many_fields_is_named(tmp_path, body, kwargs, line, text):
    f = tmp_path / "ragged.txt"
    f.write_text(body)
    with pytest.raises(DataError, match=rf"ragged.txt, line {line}: 4 fields .* '{text}'"):
        load_table(f, **kwargs)


def test_naive_and_offset_iso_datetimes_can_be_mixed(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(
        "user_id,item_id,rating,ts\n"
        "1,1,4,2005-09-06T10:00:00\n"
        "1,2,3,2005-09-06T10:00:00+02:00\n"
        "2,1,5,2005-09-06\n"
        "2,2,2,2005-09-06 10:00:00Z\n"
    )
    r = load_table(f, timestamp="ts")
    t = r.timestamps.toarray()
    ten_utc = int(dt.datetime(2005, 9, 6, 10, tzinfo=dt.UTC).timestamp())
    # Naive = UTC; the +02:00 value is two hours earlier in UTC; a date is its midnight.
    assert t[0, 0] == ten_utc and t[0, 1] == ten_utc - 7200
    assert t[1, 0] == ten_utc - 10 * 3600 and t[1, 1] == ten_utc


def test_integer_and_date_timestamps_mixed_names_both_lines(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("user_id,item_id,rating,ts\n1,1,4,100\n1,2,3,2005-01-01\n")
    with pytest.raises(
        DataError, match=r"mix formats.*'100' \(.*line 2\).*'2005-01-01' \(.*line 3\)"
    ):
        load_table(f, timestamp="ts")


# ---- blank lines, bare separators, encodings, line numbers


@pytest.mark.parametrize(
    ("data", "line", "text"),
    [
        (b"1:\n10,3,2005-09-06\xe9\n", 2, "10,3,2005-09-06"),
        (b"1\xe9:\n10,3,2005-09-06\n", 1, "1"),
    ],
)
def test_netflix_text_that_is_not_utf8_is_a_data_error_naming_the_line(tmp_path, data, line, text):
    p = tmp_path / "combined_data_1.txt"
    p.write_bytes(data)
    with pytest.raises(DataError, match=rf"line {line}: not UTF-8 text.*{text}"):
        load_netflix(p)


def test_netflix_lines_of_spaces_are_blank_and_lines_of_commas_are_errors(tmp_path):
    p = tmp_path / "combined_data_1.txt"
    p.write_bytes(b"1: \n10,3,2005-09-06\n   \n2:\n11,4,2005-09-07\n\t")
    r = load_netflix(p)
    assert r.n_ratings == 2  # the "1: " header and the lines of whitespace are accepted
    assert sorted(r.item_ids.raw.tolist()) == [1, 2]
    for bad, line in ((b",,", 3), (b",", 3)):
        p.write_bytes(b"1:\n10,3,2005-09-06\n" + bad + b"\n11,4,2005-09-07\n")
        with pytest.raises(DataError, match=rf"line {line}: expected 'CustomerID,Rating,Date'"):
            load_netflix(p)


def test_netflix_file_of_movie_headers_only_is_an_error(tmp_path):
    p = tmp_path / "combined_data_1.txt"
    p.write_bytes(b"1:\n10:\n")
    with pytest.raises(DataError, match="no ratings"):
        load_netflix(p)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("blank.csv", b"user_id,item_id,rating\n\n\n"),
        ("spaces.csv", b"user_id,item_id,rating\n  \n\t\n"),
    ],
)
def test_table_with_a_header_and_only_blank_lines_has_no_ratings(tmp_path, name, body):
    p = tmp_path / name
    p.write_bytes(body)
    with pytest.raises(DataError, match="no ratings"):
        load_table(p)


def test_table_lines_of_spaces_are_skipped_and_lines_of_separators_are_errors(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b"user_id,item_id,rating\n1,10,3\n   \n2,10,4\n\t\n")
    assert load_table(p).n_ratings == 2
    cases = [
        ("r.csv", b"user_id,item_id,rating\n1,10,3\n,,\n2,10,4\n", "',,'"),
        ("r.tsv", b"user_id\titem_id\trating\n1\t10\t3\n\t\t\n2\t10\t4\n", r"'\\t\\t'"),
        ("w.csv", b"user_id,item_id,rating,title\n1,10,3,x\n,,,y\n", "',,,y'"),
    ]
    for name, body, text in cases:
        q = tmp_path / name
        q.write_bytes(body)
        with pytest.raises(DataError, match=rf"line 3: missing user \('user_id'\): {text}"):
            load_table(q)


def test_table_line_numbers_count_newlines_inside_quoted_fields(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b'user_id,item_id,rating\n"a\nb",10,3\n2,10,x\n')
    with pytest.raises(DataError, match=r"line 4: rating 'x' is not a number: '2,10,x'"):
        load_table(p)
    p.write_bytes(b'user_id,item_id,rating\n"a\nb",10,3\n2,10,4\n2,10,5\n')
    with pytest.raises(DataError, match=r"line 5: duplicate rating .* \(first at .*line 4\)"):
        load_table(p)


def test_table_multi_character_separator_inside_a_quoted_value_is_an_error(tmp_path):
    p = tmp_path / "r.dat"
    p.write_bytes(b'1::10::3\n2::"a::b"::4\n')
    with pytest.raises(DataError, match=r"line 2: a quoted item value holds the separator '::'"):
        load_table(p, user=0, item=1, rating=2)
    p.write_bytes(b'1::10::3\n2::"ab"::4\n')  # quotes without the separator are still fine
    assert load_table(p, user=0, item=1, rating=2).n_ratings == 2


def test_table_text_that_is_not_utf8_names_the_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b"user_id,item_id,rating\n1,10,3\n2,1\xe90,4\n")
    with pytest.raises(DataError, match=r"r\.csv, line 3: not UTF-8 text"):
        load_table(p)


def test_parquet_float_ids_too_large_for_int64_are_named(tmp_path):
    p = tmp_path / "r.parquet"
    pl.DataFrame({"user_id": [1e20, 2.0], "item_id": [10, 10], "rating": [3.0, 4.0]}).write_parquet(
        p
    )
    with pytest.raises(DataError, match=r"row 0: id column 'user_id' holds 1e\+20, too large"):
        load_table(p)


def test_parquet_rating_column_of_another_type_is_named(tmp_path):
    f = tmp_path / "b.parquet"
    pl.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [True, False]}).write_parquet(f)
    with pytest.raises(DataError, match=r"b\.parquet: rating column 'rating' has type Boolean$"):
        load_table(f)
