"""Fixtures: small files in every real MovieLens layout, written by the tests themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlfiles import write_100k, write_csv, write_dat, zip_folder


@pytest.fixture
def ml100k_small(tmp_path: Path) -> Path:
    return write_100k(tmp_path / "ml-100k")


@pytest.fixture
def ml1m_small(tmp_path: Path) -> Path:
    return write_dat(tmp_path / "ml-1m")


@pytest.fixture
def writer() -> dict[str, Callable[..., Path]]:
    return {"100k": write_100k, "dat": write_dat, "csv": write_csv, "zip": zip_folder}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path_factory):
    """Tests never download: only file:// URLs open, and the cache is a temporary folder."""
    import rbmrec.data.datasets as ds

    real = ds._urlopen

    def guarded(url: str, timeout: float = 60.0):
        if not url.startswith("file:"):
            raise AssertionError(f"a test tried to download {url}")
        return real(url, timeout)

    monkeypatch.setattr(ds, "_urlopen", guarded)
    monkeypatch.setenv("RBMREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
