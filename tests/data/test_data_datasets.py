"""The dataset registry: lookup order, atomic checksummed downloads (file:// URLs only)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import os
import urllib.error
from pathlib import Path

import pytest
from mlfiles import N_RATINGS, write_100k, write_csv, zip_folder

import rbmrec.data.datasets as ds
from rbmrec.errors import DataError, DownloadError


@pytest.fixture(autouse=True)
def _no_data_dir(monkeypatch):
    """The registry must not find the real data of RBMREC_DATA_DIR in these tests."""
    monkeypatch.delenv("RBMREC_DATA_DIR", raising=False)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def release(tmp_path, monkeypatch) -> Path:
    """A small ml-100k zip served from a file:// URL, registered in place of the real one."""
    folder = write_100k(tmp_path / "src" / "ml-100k")
    z = zip_folder(folder, tmp_path / "ml-100k.zip")
    entry = dataclasses.replace(ds.REGISTRY["ml-100k"], url=z.as_uri(), md5=_md5(z), file_md5={})
    monkeypatch.setitem(ds.REGISTRY, "ml-100k", entry)
    return z


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("."))


def test_registry_lists_the_releases():
    names = ds.list_datasets()
    for name in ("demo", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"):
        assert name in names
    assert ds.info("ml-1m").n_ratings == 1_000_209
    assert ds.info("ml-100k").file_md5["u.data"] == "6e47046882bad158b0efbb84cd5cb987"
    with pytest.raises(DataError, match="unknown data set 'ml-2m'"):
        ds.info("ml-2m")


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RBMREC_CACHE_DIR", str(tmp_path / "c"))
    assert ds.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RBMREC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert ds.cache_dir() == tmp_path / "x" / "rbmrec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ds.cache_dir() == Path.home() / ".cache" / "rbmrec"


def test_lookup_order_data_dir_then_cache(monkeypatch, tmp_path):
    data, cache = tmp_path / "data", Path(os.environ["RBMREC_CACHE_DIR"])
    monkeypatch.setenv("RBMREC_DATA_DIR", str(data))
    assert ds.locate("ml-100k") is None
    write_100k(cache / "ml-100k")
    assert ds.locate("ml-100k") == cache / "ml-100k"
    write_100k(data / "ml-100k")
    assert ds.locate("ml-100k") == data / "ml-100k"
    r = ds.load("ml-100k", download=False)
    assert r.n_ratings == N_RATINGS and r.info["release"] == "ml-100k"


def test_release_folder_name_and_zip_are_found(monkeypatch, tmp_path):
    monkeypatch.setenv("RBMREC_DATA_DIR", str(tmp_path))
    write_csv(tmp_path / "ml-25m")
    assert ds.locate("ml-25m") == tmp_path / "ml-25m"
    z = zip_folder(write_100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip")
    assert ds.locate("ml-100k") == z
    assert ds.load("ml-100k").n_ratings == N_RATINGS


def test_load_demo_and_missing(monkeypatch, tmp_path):
    assert ds.load("demo").n_ratings == 25_000
    monkeypatch.setenv("RBMREC_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"ml-1m not found in .*download\('ml-1m'\)"):
        ds.load("ml-1m", download=False)


def test_download_extracts_atomically_and_load_uses_it(release):
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    path = ds.download("ml-100k", progress=False)
    assert path == cache / "ml-100k"
    assert (path / "u.data").is_file()
    assert _leftovers(cache) == []  # no .part file or staging folder left
    assert ds.locate("ml-100k") == path
    assert ds.load("ml-100k").n_ratings == N_RATINGS
    # A second call finds the cache and does not download.
    assert ds.download("ml-100k") == path
    assert ds.download("ml-100k", force=True, progress=False) == path
    assert _leftovers(cache) == []


def test_load_downloads_when_missing(release):
    r = ds.load("ml-100k")
    assert r.n_ratings == N_RATINGS


def test_checksum_mismatch_keeps_nothing(release, monkeypatch):
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    entry = dataclasses.replace(ds.REGISTRY["ml-100k"], md5="0" * 32)
    monkeypatch.setitem(ds.REGISTRY, "ml-100k", entry)
    with pytest.raises(DownloadError, match=r"checksum mismatch for ml-100k.*expected 0{32}"):
        ds.download("ml-100k", progress=False)
    assert list(cache.iterdir()) == []
    assert ds.locate("ml-100k") is None


def test_known_file_checksum_is_verified(release, monkeypatch):
    entry = dataclasses.replace(ds.REGISTRY["ml-100k"], file_md5={"u.data": "1" * 32})
    monkeypatch.setitem(ds.REGISTRY, "ml-100k", entry)
    with pytest.raises(DownloadError, match=r"u\.data does not match its known md5"):
        ds.download("ml-100k", progress=False)
    assert list(Path(os.environ["RBMREC_CACHE_DIR"]).iterdir()) == []


def test_corrupted_archive(tmp_path, monkeypatch):
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(b"<html>404 not found</html>")
    entry = dataclasses.replace(ds.REGISTRY["ml-1m"], url=bad.as_uri(), md5=_md5(bad))
    monkeypatch.setitem(ds.REGISTRY, "ml-1m", entry)
    with pytest.raises(DownloadError, match="archive is corrupted"):
        ds.download("ml-1m", progress=False)
    assert list(Path(os.environ["RBMREC_CACHE_DIR"]).iterdir()) == []


def test_offline_gives_a_clear_message(monkeypatch):
    def offline(url, timeout=60.0):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(ds, "_urlopen", offline)
    with pytest.raises(DownloadError, match=r"could not download ml-1m .*offline"):
        ds.download("ml-1m", progress=False)
    with pytest.raises(DownloadError, match="could not download"):
        ds.load("ml-1m")
    assert list(Path(os.environ["RBMREC_CACHE_DIR"]).iterdir()) == []


def _failing_response(error: Exception, headers: dict[str, str]) -> type[io.BytesIO]:
    """A response whose first read gives 10 bytes and whose second raises ``error``."""

    class Failing(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.headers = headers

        def read(self, n=-1):
            if self.tell() > 0:
                raise error
            return super().read(10)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    return Failing


def test_interrupted_download_leaves_no_partial_file(release, monkeypatch):
    Broken = _failing_response(
        ConnectionResetError("connection reset by peer"), {"Content-Length": "1000000"}
    )
    monkeypatch.setattr(ds, "_urlopen", lambda url, timeout=60.0: Broken(b"x" * 100))
    with pytest.raises(DownloadError, match="connection reset"):
        ds.download("ml-100k", progress=False)
    assert list(Path(os.environ["RBMREC_CACHE_DIR"]).iterdir()) == []


def test_dropped_connection_mid_transfer_is_a_download_error(release, monkeypatch):
    """http.client raises IncompleteRead (not an OSError) when a chunked transfer stops."""
    Dropped = _failing_response(http.client.IncompleteRead(b"", 1000), {})
    monkeypatch.setattr(ds, "_urlopen", lambda url, timeout=60.0: Dropped(b"x" * 100))
    with pytest.raises(DownloadError, match="could not download ml-100k"):
        ds.download("ml-100k", progress=False)
    assert list(Path(os.environ["RBMREC_CACHE_DIR"]).iterdir()) == []


def test_unpinned_release_uses_the_published_md5(tmp_path, monkeypatch):
    folder = write_csv(tmp_path / "src" / "ml-latest-small")
    z = zip_folder(folder, tmp_path / "ml-latest-small.zip")
    Path(str(z) + ".md5").write_text(f"MD5 (ml-latest-small.zip) = {_md5(z)}\n")
    entry = dataclasses.replace(ds.REGISTRY["ml-latest-small"], url=z.as_uri())
    monkeypatch.setitem(ds.REGISTRY, "ml-latest-small", entry)
    r = ds.load("ml-latest-small")
    assert r.n_ratings == N_RATINGS and r.info["release"] == "ml-latest-small"
    Path(str(z) + ".md5").unlink()
    with pytest.raises(DownloadError, match=r"published checksum .*\.md5"):
        ds.download("ml-latest-small", force=True, progress=False)


def test_mirror_url_still_checked(release, tmp_path):
    other = tmp_path / "other.zip"
    other.write_bytes(release.read_bytes() + b"tampered")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ds.download("ml-100k", url=other.as_uri(), progress=False)
    assert ds.download("ml-100k", url=release.as_uri(), progress=False).is_dir()


# --------------------------------------------------------------------------- hand-placed data


def test_nested_release_folder_and_inner_zip_are_found(monkeypatch, tmp_path):
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    monkeypatch.setenv("RBMREC_DATA_DIR", str(tmp_path / "data"))
    # $RBMREC_DATA_DIR/ml-100k/ml-100k/u.data: the extracted folder put inside ml-100k/.
    nested = write_100k(tmp_path / "data" / "ml-100k" / "ml-100k")
    assert ds.locate("ml-100k") == nested
    assert ds.load("ml-100k", download=False).n_ratings == N_RATINGS
    # <cache>/ml-1m/ml-1m.zip: the zip put inside the folder the message names.
    src = write_100k(tmp_path / "src" / "ml-1m")  # any small release layout will do
    (cache / "ml-1m").mkdir(parents=True)
    z = zip_folder(src, cache / "ml-1m" / "ml-1m.zip")
    assert ds.locate("ml-1m") == z
    assert ds.load("ml-1m", download=False).n_ratings == N_RATINGS


def test_offline_message_names_places_locate_accepts(monkeypatch, tmp_path):
    def offline(url, timeout=60.0):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(ds, "_urlopen", offline)
    with pytest.raises(DownloadError) as err:
        ds.download("ml-1m", progress=False)
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    message = str(err.value)
    assert f"{cache / 'ml-1m'}/" in message and "ml-1m.zip" in message
    # Following the advice literally works: the zip inside the named folder, or beside it.
    src = write_100k(tmp_path / "src" / "ml-1m")
    (cache / "ml-1m").mkdir()
    zip_folder(src, cache / "ml-1m" / "ml-1m.zip")
    assert ds.load("ml-1m", download=False).n_ratings == N_RATINGS


def test_download_never_deletes_files_it_did_not_write(release):
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    folder = cache / "ml-100k"
    write_100k(folder / "ml-100k")  # the user's own extracted copy, one level down
    (folder / "notes.txt").write_text("my notes")
    # Found as placed: no download, nothing touched.
    assert ds.download("ml-100k", progress=False) == folder / "ml-100k"
    with pytest.raises(DownloadError, match=r"did not download \(ml-100k/u\.data.*notes\.txt"):
        ds.download("ml-100k", force=True, progress=False)
    assert (folder / "notes.txt").read_text() == "my notes"
    assert (folder / "ml-100k" / "u.data").is_file()
    assert _leftovers(cache) == []


def test_download_refuses_a_folder_without_ratings_holding_other_files(release):
    cache = Path(os.environ["RBMREC_CACHE_DIR"])
    (cache / "ml-100k").mkdir(parents=True)
    (cache / "ml-100k" / "README.txt").write_text("mine")
    with pytest.raises(DownloadError, match=r"README\.txt"):
        ds.download("ml-100k", progress=False)
    assert (cache / "ml-100k" / "README.txt").read_text() == "mine"


def test_forced_download_replaces_its_own_files(release):
    path = ds.download("ml-100k", progress=False)
    (path / "u.data").write_text("1\t10\t5\t0\n")  # a damaged copy of a file it wrote
    assert ds.download("ml-100k", force=True, progress=False) == path
    assert ds.load("ml-100k").n_ratings == N_RATINGS


def test_forced_download_over_a_cache_without_record(release):
    """A cache folder without a record of its files, holding just the release's files: a
    forced download replaces it, and keeps a user's file."""
    path = ds.download("ml-100k", progress=False)
    (path / ds._MANIFEST).unlink()  # no record of the files
    (path / "u.data").write_text("1\t10\t5\t0\n")
    assert ds.download("ml-100k", force=True, progress=False) == path
    assert ds.load("ml-100k").n_ratings == N_RATINGS
    (path / ds._MANIFEST).unlink()
    (path / "notes.txt").write_text("my notes")
    with pytest.raises(DownloadError, match=r"did not download \(notes\.txt\)"):
        ds.download("ml-100k", force=True, progress=False)
    assert (path / "notes.txt").read_text() == "my notes"


def test_demo_is_built_in_not_unknown():
    for call in (ds.info, ds.download):
        with pytest.raises(DataError, match="'demo' is the built-in synthetic data set") as err:
            call("demo")
        assert "unknown" not in str(err.value)
    with pytest.raises(DataError, match=r"unknown data set 'ml-2m'; known: ml-100k.*'demo'"):
        ds.info("ml-2m")


def test_md5_argument_is_stripped_and_validated(release):
    good = f"  {_md5(release).upper()}\n"
    assert ds.download("ml-100k", md5=good, progress=False).is_dir()
    with pytest.raises(ValueError, match="md5 must be 32 hexadecimal digits"):
        ds.download("ml-100k", md5="not-a-checksum", force=True, progress=False)
