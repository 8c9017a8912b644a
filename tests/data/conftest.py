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
