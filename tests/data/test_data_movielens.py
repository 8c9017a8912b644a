"""MovieLens loaders on small files in each release's layout, and on the real data."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from mlfiles import N_ITEMS, N_RATINGS, N_USERS, ROWS, TITLES, write_100k, write_csv, write_dat

from rbmrec.data import load_movielens
from rbmrec.errors import DataError


def _check_small(r, timestamps=True):
    assert (r.n_users, r.n_items, r.n_ratings) == (N_USERS, N_ITEMS, N_RATINGS)
    assert r.user_ids.raw.tolist() == [1, 2, 3, 7]
    assert r.item_ids.raw.tolist() == [10, 20, 30, 40, 50]
    m = r.user_items
    assert m.indices.dtype == np.int32 and m.indptr.dtype == np.int32
    for u, i, _rating, t in ROWS:
        ui, ii = r.user_ids.to_index(u), r.item_ids.to_index(i)
        assert m[ui, ii] > 0
        if timestamps:
            assert r.timestamps[ui, ii] == t
    if not timestamps:
        assert r.timestamps is None


def test_100k_folder(ml100k_small):
    r = load_movielens(ml100k_small)
    _check_small(r)
    assert r.info["release"] == "ml-100k"
    assert r.values.tolist() == [1, 2, 3, 4, 5]
    assert r.user_items[0, 0] == 5.0
    # Latin-1 title decoded; unrated item 60 not in the item axis.
    assert r.item_titles([1]) == [TITLES[20]]
    assert r.items["genres"].to_list()[0] == "Animation"
    assert r.users["age"].to_list() == [21, 22, 23, 27]


def test_100k_zip(tmp_path, ml100k_small, writer):
    z = writer["zip"](ml100k_small, tmp_path / "ml-100k.zip")
    r = load_movielens(z)
    _check_small(r)
    assert r.item_titles([2]) == [TITLES[30]]


def test_parent_folder_is_descended(tmp_path):
    write_100k(tmp_path / "extracted" / "ml-100k")
    r = load_movielens(tmp_path / "extracted")
    assert r.n_ratings == N_RATINGS


@pytest.mark.parametrize("timestamps", [True, False])
def test_1m_dat_four_and_three_fields(tmp_path, timestamps):
    folder = write_dat(tmp_path / "ml-1m", timestamps=timestamps)
    r = load_movielens(folder)
    _check_small(r, timestamps=timestamps)
    assert r.info["release"] == "ml-1m"
    # Titles with colons and latin-1 characters survive.
    assert r.item_titles(range(5)) == [TITLES[i] for i in (10, 20, 30, 40, 50)]


def test_1m_shared_layout_without_timestamps(tmp_path):
    folder = write_dat(tmp_path / "ml-1m", timestamps=False, name="ratings_no_timestamps.dat")
    r = load_movielens(folder)
    _check_small(r, timestamps=False)
    assert r.info["ratings_file"] == "ratings_no_timestamps.dat"


def test_1m_zip(tmp_path, ml1m_small, writer):
    r = load_movielens(writer["zip"](ml1m_small, tmp_path / "ml-1m.zip"))
    _check_small(r)
    assert r.users["gender"].to_list() == ["F"] * 4


def test_10m_half_stars(tmp_path):
    rows = [(u, i, r - 0.5 if r > 1 else r, t) for u, i, r, t in ROWS]
    folder = write_dat(tmp_path / "ml-10M100K", rows=rows)
    (folder / "users.dat").unlink()
    r = load_movielens(folder)
    _check_small(r)
    assert r.info["release"] == "ml-10m"
    assert r.values.tolist() == [v / 2 for v in range(1, 11)]
    assert 4.5 in r.user_items.data


@pytest.mark.parametrize("ratings_file", ["ratings.dat", "ratings_no_timestamps.dat"])
def test_dat_release_in_a_generic_folder(tmp_path, ratings_file):
    # Without users.dat and a telling name, whole stars mean ML-1M, half stars ML-10M.
    folder = write_dat(tmp_path / "data", name=ratings_file)
    (folder / "users.dat").unlink()
    r = load_movielens(folder)
    assert r.info["release"] == "ml-1m" and r.name == "ml-1m"
    assert r.values.tolist() == [1, 2, 3, 4, 5]
    rows = [(u, i, r - 0.5 if r > 1 else r, t) for u, i, r, t in ROWS]
    folder = write_dat(tmp_path / "other", rows=rows, name=ratings_file)
    (folder / "users.dat").unlink()
    r = load_movielens(folder)
    assert r.info["release"] == "ml-10m"
    assert r.values.tolist() == [v / 2 for v in range(1, 11)]


@pytest.mark.parametrize("name", ["ml-25m", "ml-latest-small", "ml-20m"])
def test_csv_releases(tmp_path, name, writer):
    folder = write_csv(tmp_path / name)
    r = load_movielens(folder)
    _check_small(r)
    assert r.info["release"] == name
    assert 4.5 in r.user_items.data
    # Quoted titles with commas.
    assert r.item_titles([2]) == [TITLES[30].replace(":", ",")]
    z = writer["zip"](folder, tmp_path / f"{name}.zip")
    assert load_movielens(z).n_ratings == N_RATINGS


def test_metadata_can_be_skipped(ml100k_small):
    r = load_movielens(ml100k_small, metadata=False)
    assert r.items is None and r.users is None
    assert r.item_titles([0]) == ["10"]


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_movielens(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no MovieLens ratings file found"):
        load_movielens(tmp_path / "empty")


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_ml100k_counts(ml100k_dir: Path):
    r = load_movielens(ml100k_dir)
    assert (r.n_ratings, r.n_users, r.n_items) == (100_000, 943, 1_682)
    assert r.timestamps is not None and r.timestamps.nnz == 100_000
    assert r.describe().histogram == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert r.item_titles([r.item_ids.to_index(543)]) == ["Misérables, Les (1995)"]
    assert r.items.height == 1_682 and r.users.height == 943


@pytest.mark.realdata
def test_real_ml100k_matches_the_registry_file_md5(ml100k_dir: Path):
    import hashlib

    from rbmrec.data.datasets import info

    digest = hashlib.md5((ml100k_dir / "u.data").read_bytes()).hexdigest()
    assert digest == info("ml-100k").file_md5["u.data"] == "6e47046882bad158b0efbb84cd5cb987"


@pytest.mark.realdata
def test_real_ml1m_counts(ml1m_dir: Path):
    r = load_movielens(ml1m_dir)
    assert (r.n_ratings, r.n_users, r.n_items) == (1_000_209, 6_040, 3_706)
    assert r.values.tolist() == [1, 2, 3, 4, 5]
    assert r.item_titles([r.item_ids.to_index(1)]) == ["Toy Story (1995)"]
    star_wars = r.item_ids.to_index(260)
    assert r.item_titles([star_wars]) == ["Star Wars: Episode IV - A New Hope (1977)"]
    assert r.users.height == 6_040


# --------------------------------------------------------------------------- release roots


def _zip_tree(target: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return target


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_zip_ignores_a_stray_u_data_deeper_than_the_release(tmp_path):
    # A stray 100K-style file deep inside an ML-1M zip must not win over ml-1m/ratings.dat.
    files = {f"ml-1m/{k}": v for k, v in _tree(write_dat(tmp_path / "src" / "ml-1m")).items()}
    files["ml-1m/extra/backup/u.data"] = b"99\t99\t1\t0\n"
    r = load_movielens(_zip_tree(tmp_path / "ml-1m.zip", files))
    assert r.info["release"] == "ml-1m"
    _check_small(r)
    assert 99 not in r.user_ids.raw.tolist()


def test_zip_reads_metadata_from_the_release_root_only(tmp_path):
    files = {f"ml-100k/{k}": v for k, v in _tree(write_100k(tmp_path / "src")).items()}
    # u.item exists only in a sub-folder (a broken old copy): it is not the release's file.
    del files["ml-100k/u.item"]
    files["ml-100k/old/u.item"] = b"garbage without separators\n"
    r = load_movielens(_zip_tree(tmp_path / "ml-100k.zip", files))
    assert r.items is None
    assert r.users is not None


def test_zip_with_two_releases_is_refused_naming_both(tmp_path):
    files = {f"ml-1m/{k}": v for k, v in _tree(write_dat(tmp_path / "a")).items()}
    files.update({f"ml-100k/{k}": v for k, v in _tree(write_100k(tmp_path / "b")).items()})
    with pytest.raises(DataError, match=r"2 MovieLens releases.*ml-100k/.*ml-1m/"):
        load_movielens(_zip_tree(tmp_path / "both.zip", files))


def test_folder_with_two_releases_is_refused_naming_both(tmp_path):
    write_100k(tmp_path / "data" / "ml-100k")
    write_dat(tmp_path / "data" / "ml-1m")
    with pytest.raises(DataError, match=r"2 MovieLens releases.*ml-100k, ml-1m"):
        load_movielens(tmp_path / "data")
