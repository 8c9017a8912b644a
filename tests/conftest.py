"""Shared fixtures: real MovieLens data (skipped cleanly when absent) and seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _data_dir() -> Path | None:
    env = os.environ.get("RBMREC_DATA_DIR")
    if not env:
        return None
    path = Path(env)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real MovieLens data named by ``RBMREC_DATA_DIR``, or skip."""
    path = _data_dir()
    if path is None:
        pytest.skip("real MovieLens data not available: set RBMREC_DATA_DIR to its folder")
    return path


@pytest.fixture(scope="session")
def ml100k_dir(data_dir: Path) -> Path:
    """Folder with the ml-100k release files, or skip."""
    path = data_dir / "ml-100k"
    if not (path / "u.data").is_file():
        pytest.skip(f"ml-100k not found under RBMREC_DATA_DIR ({path / 'u.data'} missing)")
    return path


@pytest.fixture(scope="session")
def ml1m_dir(data_dir: Path) -> Path:
    """Folder with the ml-1m release files, or skip."""
    path = data_dir / "ml-1m"
    if not any((path / f).is_file() for f in ("ratings.dat", "ratings_no_timestamps.dat")):
        pytest.skip(f"ml-1m not found under RBMREC_DATA_DIR ({path} has no ratings file)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test."""
    return np.random.default_rng(12345)
