"""Bad input gives a clear DataError naming the file and the line."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from mlfiles import write_100k, write_csv, write_dat, zip_folder

from rbmrec.data import load_movielens
from rbmrec.errors import DataError

GOOD_100K = "1\t10\t5\t881250949\n2\t20\t3\t881250950\n"
GOOD_DAT = "1::10::5::881250949\n2::20::3::881250950\n"
GOOD_CSV = "userId,movieId,rating,timestamp\n1,10,5.0,881250949\n2,20,3.5,881250950\n"


def _100k(tmp_path: Path, text: str) -> Path:
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text(text)
    return folder


def _dat(tmp_path: Path, text: str) -> Path:
    folder = write_dat(tmp_path / "ml-1m")
    (folder / "ratings.dat").write_text(text)
    return folder


def _csv(tmp_path: Path, text: str) -> Path:
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / "ratings.csv").write_text(text)
    return folder


# (bad line, expected message after "file, line 3: ") per format; line 3 follows two good
# lines (line 4 for the CSV, after its header).
CASES = {
    "too few fields": (
        "3\t30\t4\n",
        "3::30\n",
        "3,30\n",
        r"expected (4|3) fields",
    ),
    "too many fields": (
        "3\t30\t4\t1\t9\n",
        "3::30::4::1::9\n",
        "3,30,4,1,9\n",
        r"expected 4 fields",
    ),
    "non-numeric rating": (
        "3\t30\tgood\t1\n",
        "3::30::good::1\n",
        "3,30,good,1\n",
        r"rating 'good' is not a number",
    ),
    "NaN rating": (
        "3\t30\tnan\t1\n",
        "3::30::NaN::1\n",
        "3,30,NaN,1\n",
        r"rating is not a finite number",
    ),
    "negative user id": (
        "-3\t30\t4\t1\n",
        "-3::30::4::1\n",
        "-3,30,4,1\n",
        r"negative user_id",
    ),
    "non-integer item id": (
        "3\tx30\t4\t1\n",
        "3::x30::4::1\n",
        "3,x30,4,1\n",
        r"item_id 'x30' is not an integer",
    ),
    "missing item id": (
        "3\t\t4\t1\n",
        "3::::4::1\n",
        "3,,4,1\n",
        r"missing item_id",
    ),
    "rating of 0": (
        "3\t30\t0\t1\n",
        "3::30::0::1\n",
        "3,30,0,1\n",
        r"rating 0 is not on the ml-[\w-]+ scale",
    ),
    "rating off the scale": (
        "3\t30\t7\t1\n",
        "3::30::7::1\n",
        "3,30,7,1\n",
        r"rating 7 is not on the ml-[\w-]+ scale",
    ),
    "duplicate pair": (
        "1\t10\t4\t1\n",
        "1::10::4::1\n",
        "1,10,4,1\n",
        r"duplicate rating of item 10 by user 1 \(first at .*line (1|2)\)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt", ["100k", "dat", "csv"])
def test_malformed_ratings_line(tmp_path, fmt, case):
    line_100k, line_dat, line_csv, message = CASES[case]
    if fmt == "100k":
        folder, file, line = _100k(tmp_path, GOOD_100K + line_100k), "u.data", 3
    elif fmt == "dat":
        folder, file, line = _dat(tmp_path, GOOD_DAT + line_dat), "ratings.dat", 3
    else:
        folder, file, line = _csv(tmp_path, GOOD_CSV + line_csv), "ratings.csv", 4
    with pytest.raises(DataError, match=rf"{re.escape(file)}, line {line}: {message}"):
        load_movielens(folder)


def test_three_field_dat_rejects_a_four_field_line(tmp_path):
    folder = _dat(tmp_path, "1::10::5\n2::20::3\n3::30::4::99\n")
    with pytest.raises(DataError, match=r"ratings.dat, line 3: expected 3 fields .*'3::30::4::99'"):
        load_movielens(folder)


def test_blank_lines_are_skipped_and_line_numbers_stay_exact(tmp_path):
    folder = _100k(tmp_path, "1\t10\t5\t1\n\n2\t20\t3\t2\n\n3\t30\t0\t3\n")
    with pytest.raises(DataError, match=r"u.data, line 5: rating 0 is not on"):
        load_movielens(folder)
    folder = _100k(tmp_path, "1\t10\t5\t1\n\n2\t20\t3\t2\n")
    assert load_movielens(folder).n_ratings == 2


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_empty_file(tmp_path, text):
    with pytest.raises(DataError, match=r"u.data: the file is empty"):
        load_movielens(_100k(tmp_path, text))
    with pytest.raises(DataError, match=r"ratings.dat: the file is empty"):
        load_movielens(_dat(tmp_path, text))


def test_csv_header_is_checked(tmp_path):
    folder = _csv(tmp_path, "user,item,score\n1,2,3\n")
    with pytest.raises(DataError, match=r"ratings.csv, line 1: expected the header"):
        load_movielens(folder)


def test_malformed_metadata_lines(tmp_path):
    folder = write_dat(tmp_path / "ml-1m")
    (folder / "movies.dat").write_text("10::Toy Story (1995)::Comedy\nJumanji\n")
    with pytest.raises(DataError, match=r"movies.dat, line 2: expected 'MovieID::Title::Genres'"):
        load_movielens(folder)
    (folder / "movies.dat").write_text("ten::Toy Story (1995)::Comedy\n")
    with pytest.raises(DataError, match=r"movies.dat, line 1: movie id 'ten' is not an integer"):
        load_movielens(folder)
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.item").write_text("1|Toy Story\n")
    with pytest.raises(DataError, match=r"u.item, line 1: expected '\|' separated fields"):
        load_movielens(folder)


def test_error_inside_a_zip_names_the_member(tmp_path):
    folder = _100k(tmp_path, GOOD_100K + "3\t30\tgood\t1\n")
    z = zip_folder(folder, tmp_path / "ml-100k.zip")
    with pytest.raises(DataError, match=r"ml-100k.zip:ml-100k/u.data, line 3: rating 'good'"):
        load_movielens(z)


def test_not_a_zip(tmp_path):
    bad = tmp_path / "ml-100k.zip"
    bad.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(DataError, match=r"ml-100k.zip: not a readable zip archive.*corrupted"):
        load_movielens(bad)


def test_truncated_zip(tmp_path, ml100k_small):
    z = zip_folder(ml100k_small, tmp_path / "full.zip")
    data = z.read_bytes()
    cut = tmp_path / "ml-100k.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"not a readable zip archive.*truncated"):
        load_movielens(cut)


def test_corrupted_member_in_zip(tmp_path, ml100k_small):
    z = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in sorted(ml100k_small.iterdir()):
            zf.write(f, f"ml-100k/{f.name}")
    data = bytearray(z.read_bytes())
    # Flip a byte inside u.data's stored content: the central directory stays valid.
    pos = data.index(b"881250949")
    data[pos] = ord("7")
    z.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"u.data: cannot be read from the archive.*corrupted"):
        load_movielens(z)


def test_zip_without_ratings(tmp_path):
    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("other/readme.txt", "hello")
    with pytest.raises(DataError, match=r"no MovieLens ratings file found"):
        load_movielens(z)


def test_blank_lines_before_the_first_rating(tmp_path):
    # polars takes the column count from the first line it sees.
    folder = _100k(tmp_path, "\n  \n1\t10\t5\t1\n2\t20\t3\t2\n")
    assert load_movielens(folder).n_ratings == 2
    folder = _100k(tmp_path, "\n1\t10\t5\t1\n2\t20\t7\t2\n")
    with pytest.raises(DataError, match=r"u.data, line 3: rating 7 is not on"):
        load_movielens(folder)
    folder = _csv(tmp_path, "userId,movieId,rating,timestamp\n\n1,10,5.0,1\n2,20,0,2\n")
    with pytest.raises(DataError, match=r"ratings.csv, line 4: rating 0 is not on"):
        load_movielens(folder)


def test_spaces_around_values_are_ignored(tmp_path):
    folder = _100k(tmp_path, "1\t10\t5\t100 \n2\t 20\t3 \t200\n")
    r = load_movielens(folder)
    assert r.timestamps.data.tolist() == [100, 200]
    assert sorted(r.user_items.data.tolist()) == [3, 5]
    folder = _dat(tmp_path, "1::10::5::100 \n2::20::3::200\n")
    assert load_movielens(folder).n_ratings == 2
    # A value Python accepts but polars does not is still reported with its line.
    folder = _100k(tmp_path, "1\t10\t5\t100 \n2\t20\t3\t2_00\n")
    with pytest.raises(DataError, match=r"u.data, line 2: timestamp '2_00' is not a valid"):
        load_movielens(folder)


@pytest.mark.parametrize("line", ["Action|1|x", "Action", "Action|one"])
def test_malformed_genre_line(tmp_path, line):
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.genre").write_text(f"unknown|0\n{line}\n")
    with pytest.raises(DataError, match=r"u.genre, line 2: expected 'Genre\|index'"):
        load_movielens(folder)
