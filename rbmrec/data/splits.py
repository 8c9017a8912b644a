"""Evaluation splits of a ratings matrix: the :class:`Split` type and the functions that make it.

Every function takes a :class:`~rbmrec.data.Ratings` or a CSR users x items matrix and
returns :class:`~rbmrec.data.Split` objects whose parts

- partition the stored ratings exactly (each rating is in exactly one part),
- have the whole data set's shape, float32 data and int32 indices, so indices keep meaning
  the same users and items as in the data set's id maps,
- are reproducible from ``seed``.

``validation_fraction`` moves that fraction of the *training* ratings (chosen uniformly at
random, ``round(fraction * n_train)`` of them) to a validation part; ``carve_validation``
does the same to an existing split, with the same result for the same seed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.data._io import Source
from rbmrec.data.movielens import ML100K_FOLDS, load_movielens, read_fold_part
from rbmrec.data.ratings import (
    _aligned_timestamps,
    as_rating_csr,
    row_of_entries,
)
from rbmrec.errors import DataError
from rbmrec.models._sparse import held_out_positions, keep_entries


@dataclass(frozen=True)
class Split:
    """One evaluation split of a ratings matrix.

    Every part has the shape of the whole data set (n_users, n_items) and int32 indices, so
    indices mean the same thing in each part and in the data set's id maps.

    Attributes
    ----------
    train : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Ratings a model may fit on.
    test : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Held-out ratings, disjoint from ``train`` and ``validation``.
    validation : scipy.sparse.csr_matrix or None, shape (n_users, n_items)
        Ratings carved from the training part for tuning and early stopping.
    name : str
        Human-readable label, e.g. ``"u1"`` or ``"random-0.1-seed0"``.
    info : dict
        How the split was made (kind, fraction, seed, ...), recorded by the harness.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    validation: sp.csr_matrix | None = None
    name: str = "split"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items) of every part."""
        return self.train.shape


TRAIN, TEST, VALIDATION = 0, 1, 2

# Validation draws use their own stream so that they do not repeat the test draws.
_VALIDATION_STREAM = 0x5EED_7A11


def _rng(seed: int, *extra: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng([int(seed), *extra])


def _check_fraction(value: float, name: str, allow_zero: bool = True) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not (0.0 <= f < 1.0) or (f == 0.0 and not allow_zero):
        bounds = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return f


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _matrix(data: Any) -> sp.csr_matrix:
    m = as_rating_csr(data)
    if m.nnz == 0:
        raise DataError("cannot split a data set without ratings")
    return m


def _timestamps(data: Any, timestamps: Any) -> np.ndarray:
    """Timestamps of the stored entries, in CSR order (int64, shape (nnz,))."""
    ts = timestamps if timestamps is not None else getattr(data, "timestamps", None)
    if ts is None:
        raise DataError(
            "temporal_split needs timestamps: this data set has none (e.g. the ML-1M copy "
            "without its timestamp column); pass timestamps= or use a random split"
        )
    return _aligned_timestamps(ts, as_rating_csr(data)).data


def _parts(
    m: sp.csr_matrix,
    part: np.ndarray,
    name: str,
    info: dict[str, Any],
    validation_fraction: float,
    seed: int,
    stream: tuple[int, ...] = (),
) -> Split:
    """Carve validation from the train entries of ``part`` and build the Split."""
    validation_fraction = _check_fraction(validation_fraction, "validation_fraction")
    if validation_fraction > 0:
        _carve(part, validation_fraction, _rng(seed, _VALIDATION_STREAM, *stream))
    train = keep_entries(m, part == TRAIN)
    test = keep_entries(m, part == TEST)
    val = keep_entries(m, part == VALIDATION) if validation_fraction > 0 else None
    info = dict(info)
    info.update(
        seed=int(seed),
        validation_fraction=validation_fraction,
        n_train=int(train.nnz),
        n_test=int(test.nnz),
        n_validation=int(val.nnz) if val is not None else 0,
    )
    return Split(train=train, test=test, validation=val, name=name, info=info)


def _carve(part: np.ndarray, fraction: float, rng: np.random.Generator) -> None:
    """Move ``round(fraction * n_train)`` random train entries of ``part`` to validation."""
    train = np.flatnonzero(part == TRAIN)
    part[train[held_out_positions(train.size, fraction, rng)]] = VALIDATION


def _rank_in_row(
    indptr: np.ndarray, *keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries sorted by row, then by ``keys`` (``np.lexsort`` order: last key first).

    Returns the order, the row of each sorted entry and its 0-based rank inside its row.
    """
    rows = row_of_entries(indptr)
    order = np.lexsort((*keys, rows))
    rows = rows[order]
    rank = np.arange(order.size, dtype=np.int64) - indptr[rows]
    return order, rows, rank


# --------------------------------------------------------------------------- splitters


def random_split(
    data: Any, test_fraction: float = 0.1, seed: int = 0, validation_fraction: float = 0.0
) -> Split:
    """Hold out ``round(test_fraction * n_ratings)`` ratings chosen uniformly at random.

    Parameters
    ----------
    data : Ratings or scipy sparse matrix, shape (n_users, n_items)
    test_fraction : float in (0, 1), default 0.1
    seed : int, default 0
    validation_fraction : float in [0, 1), default 0.0
        Fraction of the remaining training ratings moved to ``validation``.

    Returns
    -------
    Split
        ``info``: kind="random", test_fraction, seed, validation_fraction, counts.
    """
    test_fraction = _check_fraction(test_fraction, "test_fraction", allow_zero=False)
    m = _matrix(data)
    rng = _rng(seed)
    n_test = int(np.floor(test_fraction * m.nnz + 0.5))
    part = np.zeros(m.nnz, dtype=np.int8)
    part[rng.choice(m.nnz, size=n_test, replace=False)] = TEST
    info = {"kind": "random", "test_fraction": test_fraction}
    return _parts(m, part, f"random-{test_fraction:g}-seed{seed}", info, validation_fraction, seed)


def user_holdout(
    data: Any,
    test_fraction: float | None = None,
    k: int | None = None,
    min_train: int = 1,
    seed: int = 0,
    validation_fraction: float = 0.0,
) -> Split:
    """Hold out part of each user's ratings (a fraction, or exactly ``k``), chosen at random.

    Parameters
    ----------
    data : Ratings or scipy sparse matrix
    test_fraction : float in (0, 1), optional
        Each user gives ``round(test_fraction * n_u)`` ratings to test, capped so that at
        least ``min_train`` stay in train. Default 0.2 when ``k`` is not given either.
    k : int >= 1, optional
        Leave-k-out: exactly ``k`` test ratings for every user with at least
        ``k + min_train`` ratings; users with fewer keep all their ratings in train.
    min_train : int >= 0, default 1
        Ratings a user always keeps in train (0: a user may have all of their ratings in
        test).
    seed : int, default 0
    validation_fraction : float in [0, 1), default 0.0

    Returns
    -------
    Split
        ``info``: kind="user_holdout", test_fraction or k, min_train, n_eligible_users.
    """
    if test_fraction is not None and k is not None:
        raise ValueError("give test_fraction or k, not both")
    min_train = _check_count(min_train, "min_train", 0)
    m = _matrix(data)
    counts = np.diff(m.indptr).astype(np.int64)
    if k is not None:
        k = _check_count(k, "k", 1)
        n_test = np.where(counts >= k + min_train, k, 0)
        label, info = f"leave-{k}-out", {"k": k}
    else:
        f = 0.2 if test_fraction is None else test_fraction
        f = _check_fraction(f, "test_fraction", allow_zero=False)
        n_test = np.floor(f * counts + 0.5).astype(np.int64)
        n_test = np.clip(np.minimum(n_test, counts - min_train), 0, None)
        label, info = f"user-holdout-{f:g}", {"test_fraction": f}
    rng = _rng(seed)
    # A random permutation, then a stable sort by row: a uniform random order inside each
    # row at the cost of an integer sort.
    perm = rng.permutation(m.nnz)
    rows = row_of_entries(m.indptr)
    order = perm[np.argsort(rows[perm], kind="stable")]
    rows = rows[order]
    rank = np.arange(m.nnz, dtype=np.int64) - m.indptr[rows]
    part = np.zeros(m.nnz, dtype=np.int8)
    part[order[rank < n_test[rows]]] = TEST
    info.update(kind="user_holdout", min_train=min_train, n_eligible_users=int(np.sum(n_test > 0)))
    return _parts(m, part, f"{label}-seed{seed}", info, validation_fraction, seed)


def temporal_split(
    data: Any,
    cut: Any = None,
    last_k: int | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    *,
    test_fraction: float | None = None,
    min_train: int = 1,
    timestamps: Any = None,
) -> Split:
    """Split by time: a global cut, the latest fraction overall, or each user's last ``k``.

    Give exactly one of ``cut``, ``test_fraction`` and ``last_k``. No rating in train is
    later than a test rating of the same user (``last_k``) or of anyone (global cuts).

    Parameters
    ----------
    data : Ratings with timestamps, or a CSR matrix with ``timestamps=``
    cut : int, float, datetime or ISO date string, optional
        Ratings at or after ``cut`` (seconds since the epoch, UTC) go to test.
    last_k : int >= 1, optional
        Each user's ``last_k`` latest ratings go to test, for users with at least
        ``last_k + min_train`` ratings (ties in time are broken by item index).
    validation_fraction : float in [0, 1), default 0.0
        Random over the training ratings.
    seed : int, default 0
        Only used for the validation part.
    test_fraction : float in (0, 1), optional, keyword-only
        The latest ``round(test_fraction * n_ratings)`` ratings overall go to test.
    min_train : int >= 0, default 1, keyword-only
        With ``last_k``: ratings a user always keeps in train (0: a user may have all of
        their ratings in test).
    timestamps : sparse matrix, optional, keyword-only
        Timestamps aligned with ``data`` when ``data`` is a plain matrix.
    """
    given = [x is not None for x in (cut, last_k, test_fraction)]
    if sum(given) != 1:
        raise ValueError("give exactly one of cut, last_k and test_fraction")
    m = _matrix(data)
    ts = _timestamps(data, timestamps)
    part = np.zeros(m.nnz, dtype=np.int8)
    if cut is not None:
        c = _as_epoch(cut)
        part[ts >= c] = TEST
        label, info = f"temporal-cut{c}", {"cut": c}
    elif test_fraction is not None:
        f = _check_fraction(test_fraction, "test_fraction", allow_zero=False)
        n_test = int(np.floor(f * m.nnz + 0.5))
        # Latest n_test entries, ties broken by position (stable), so train <= test in time.
        order = np.argsort(ts, kind="stable")
        part[order[m.nnz - n_test :]] = TEST
        boundary = int(ts[order[m.nnz - n_test]]) if n_test else None
        label, info = f"temporal-last{f:g}", {"test_fraction": f, "cut": boundary}
    else:
        k = _check_count(last_k, "last_k", 1)
        min_train = _check_count(min_train, "min_train", 0)
        counts = np.diff(m.indptr).astype(np.int64)
        eligible = counts >= k + min_train
        # Rank by descending time; among equal times the later position counts as later.
        # ~ts (= -ts - 1) sorts like -ts but cannot overflow at INT64_MIN.
        position = np.arange(m.nnz, dtype=np.int64)
        order, rows, rank = _rank_in_row(m.indptr, -position, ~ts)
        part[order[(rank < k) & eligible[rows]]] = TEST
        label = f"temporal-user-last{k}"
        info = {"last_k": k, "min_train": min_train, "n_eligible_users": int(eligible.sum())}
    info["kind"] = "temporal"
    return _parts(m, part, label, info, validation_fraction, seed)


def kfold(data: Any, k: int = 5, seed: int = 0, validation_fraction: float = 0.0) -> list[Split]:
    """K-fold cross-validation over ratings: the k test parts partition the ratings.

    Fold sizes differ by at most one rating.

    Parameters
    ----------
    data : Ratings or scipy.sparse matrix, shape (n_users, n_items)
        The ratings to split.
    k : int, default 5
        Number of folds (>= 2).
    seed : int, default 0
        Seed of the fold assignment.
    validation_fraction : float, default 0.0
        Fraction of each fold's training part moved to its validation part.

    Returns
    -------
    list of Split
        ``info``: kind="kfold", fold (0-based), k, seed.
    """
    k = _check_count(k, "k", 2)
    m = _matrix(data)
    if m.nnz < k:
        raise DataError(f"kfold with k={k} needs at least {k} ratings, got {m.nnz}")
    fold = np.empty(m.nnz, dtype=np.int64)
    fold[_rng(seed).permutation(m.nnz)] = np.arange(m.nnz) % k
    splits = []
    for i in range(k):
        part = np.where(fold == i, TEST, TRAIN).astype(np.int8)
        info = {"kind": "kfold", "fold": i, "k": k}
        splits.append(
            _parts(m, part, f"kfold-{i + 1}of{k}-seed{seed}", info, validation_fraction, seed, (i,))
        )
    return splits


def carve_validation(split: Split, fraction: float, seed: int = 0) -> Split:
    """Move a random ``fraction`` of ``split.train`` to a validation part.

    Gives the same parts as passing ``validation_fraction=fraction, seed=seed`` to the
    splitter that made ``split`` (except for k-fold, whose folds use per-fold streams).

    Parameters
    ----------
    split : Split
        A split without a validation part.
    fraction : float
        Fraction of the training ratings to move, in (0, 1).
    seed : int, default 0
        Seed of the draw.

    Returns
    -------
    Split
        The same test part; ``info`` gains the validation fraction, seed and part sizes.
    """
    if split.validation is not None:
        raise DataError(f"split {split.name!r} already has a validation part")
    fraction = _check_fraction(fraction, "fraction", allow_zero=False)
    train = as_rating_csr(split.train)
    part = np.zeros(train.nnz, dtype=np.int8)
    _carve(part, fraction, _rng(seed, _VALIDATION_STREAM))
    info = dict(split.info)
    new_train = keep_entries(train, part == TRAIN)
    val = keep_entries(train, part == VALIDATION)
    info.update(
        validation_fraction=fraction,
        validation_seed=int(seed),
        n_train=int(new_train.nnz),
        n_validation=int(val.nnz),
    )
    return Split(train=new_train, test=split.test, validation=val, name=split.name, info=info)


def movielens_folds(
    path: str | Path,
    folds: Sequence[str] = ("u1", "u2", "u3", "u4", "u5"),
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> list[Split]:
    """The official ML-100K folds (``u1..u5``, ``ua``, ``ub`` ``.base``/``.test`` files).

    Indices come from the id maps of the full ``u.data``, so every fold has the shape
    (943, 1682) and index ``i`` is the same item in every fold and in
    ``load_movielens(path)``.

    Parameters
    ----------
    path : str or Path
        The ml-100k folder or zip.
    folds : sequence of str, default u1..u5
    validation_fraction : float, default 0.0
    seed : int, default 0
        For the validation part only.
    """
    if isinstance(folds, str):
        folds = (folds,)
    unknown = [f for f in folds if f not in ML100K_FOLDS]
    if unknown:
        raise ValueError(f"unknown fold(s) {unknown}; ML-100K has {list(ML100K_FOLDS)}")
    full = load_movielens(path, metadata=False)
    if full.info.get("format") != "100k":
        raise DataError(f"{path}: official folds exist only for ML-100K (found {full.name})")
    splits = []
    with Source(path) as source:
        source.descend(("u.data",))
        for fold in folds:
            missing = [f"{fold}.{p}" for p in ("base", "test") if not source.has(f"{fold}.{p}")]
            if missing:
                raise DataError(f"{path}: fold file(s) {missing} not found")
            base = read_fold_part(source, f"{fold}.base", full.user_ids, full.item_ids)
            test = read_fold_part(source, f"{fold}.test", full.user_ids, full.item_ids)
            # Compared and joined by pattern: arithmetic on the matrices would drop a stored 0.
            n_both = int(_pattern_mask(base.user_items, test.user_items).sum())
            if n_both:
                raise DataError(f"{path}: {fold}.base and {fold}.test share {n_both} ratings")
            m = _union(base.user_items, test.user_items)
            part = _pattern_mask(m, test.user_items).astype(np.int8)
            info = {"kind": "movielens_fold", "fold": fold, "path": str(path)}
            splits.append(_parts(m, part, fold, info, validation_fraction, seed))
    return splits


def _union(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """The stored entries of ``a`` and of ``b`` (no pair in both) as one canonical CSR;
    every stored entry, a 0 included, stays an entry."""
    rows = np.concatenate([row_of_entries(a.indptr), row_of_entries(b.indptr)])
    cols = np.concatenate([a.indices, b.indices])
    data = np.concatenate([a.data, b.data])
    return as_rating_csr(sp.coo_matrix((data, (rows, cols)), shape=a.shape))


def _pattern_mask(m: sp.csr_matrix, sub: sp.csr_matrix) -> np.ndarray:
    """For each stored entry of ``m`` (CSR order): is it stored in ``sub``?"""
    n_items = m.shape[1]
    key_m = row_of_entries(m.indptr).astype(np.int64) * n_items + m.indices
    key_s = row_of_entries(sub.indptr).astype(np.int64) * n_items + sub.indices
    return np.isin(key_m, key_s, assume_unique=True)


def _as_epoch(cut: Any) -> int:
    if isinstance(cut, str):
        try:
            cut = dt.datetime.fromisoformat(cut)
        except ValueError:
            raise ValueError(f"cut {cut!r} is not an ISO date or datetime") from None
    # Timestamps are whole seconds, so "at or after cut" means at or after ceil(cut): a cut
    # of 100.5 s (a float or a datetime) keeps the ratings at 100 s in train.
    if isinstance(cut, dt.datetime):
        if cut.tzinfo is None:
            cut = cut.replace(tzinfo=dt.UTC)
        # Exact ceiling: timedelta floor division is integer arithmetic on microseconds.
        return -((dt.datetime(1970, 1, 1, tzinfo=dt.UTC) - cut) // dt.timedelta(seconds=1))
    if isinstance(cut, dt.date):
        return int(dt.datetime(cut.year, cut.month, cut.day, tzinfo=dt.UTC).timestamp())
    if isinstance(cut, np.datetime64):
        if np.isnat(cut):
            raise ValueError("cut is NaT (not a time)")
        ns = int(cut.astype("datetime64[ns]").astype(np.int64))
        return -(-ns // 1_000_000_000)
    if isinstance(cut, int | float | np.integer | np.floating) and np.isfinite(cut):
        return int(np.ceil(cut))
    raise ValueError(f"cut must be a timestamp, a datetime or an ISO date, got {cut!r}")
