"""Accuracy metrics for rating prediction and top-N recommendation.

Rating metrics compare predicted with held-out ratings. Ranking metrics take a matrix of
recommended item ids, one row per user (``-1`` marks an empty slot, e.g. when a model had
fewer than ``K`` candidate items), and a CSR matrix whose stored entries in row ``u`` are the
items relevant to that user (held-out items, usually those rated at or above a threshold:
see :func:`relevant_items`).

Notation for one user ``u``: ``R_u`` is the set of relevant items, ``L_u = (l_1, .., l_K)``
the recommended list truncated to ``K`` slots, ``h_j = 1`` if ``l_j`` is in ``R_u`` (an empty
slot is never a hit) and ``m_u = min(K, |R_u|)``, the largest number of hits a list of
length ``K`` can have.

Every ranking metric is computed per user and averaged (macro average) over the users with
at least one relevant item; users without relevant items are skipped and not counted, as in
``implicit.evaluation``. All functions are vectorised over users: evaluating thousands of
users takes milliseconds.

Differences from ``implicit.evaluation.ranking_metrics_at_k`` (implicit 0.7.3):

- implicit's ``"precision"`` is ``sum_u hits_u / sum_u m_u``: it divides by ``min(K, |R_u|)``
  and pools over users (a micro average). It is therefore neither :func:`precision_at_k`
  (``hits / K``) nor exactly :func:`recall_at_k` (``hits / m_u`` averaged per user); it
  equals :func:`pooled_recall_at_k`.
- implicit's ``"ndcg"`` and ``"map"`` use the same definitions as ours (binary gains,
  ideal DCG over ``m_u`` positions, AP normalised by ``m_u``) and agree to float rounding
  when given the same lists.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError
from rbmrec.models._sparse import repeated_entry

__all__ = [
    "NLL",
    "RANKING_METRICS",
    "catalogue_coverage",
    "hit_matrix",
    "hit_rate_at_k",
    "mae",
    "map_at_k",
    "mean_nll",
    "mrr_at_k",
    "ndcg_at_k",
    "pooled_recall_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "relevant_items",
    "rmse",
]

#: Keys of the dictionary returned by :func:`ranking_metrics`, in table order.
RANKING_METRICS: tuple[str, ...] = (
    "precision",
    "recall",
    "ndcg",
    "map",
    "mrr",
    "hit_rate",
    "coverage",
)


# --------------------------------------------------------------------------- rating metrics


def _check_pair(y_true: Sequence[float], y_pred: Sequence[float]) -> tuple[np.ndarray, ...]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty: no ratings to score")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("y_true and y_pred must be finite (found NaN or inf)")
    return t, p


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))``.

    Parameters
    ----------
    y_true, y_pred : array_like of float, shape (n,)
        Held-out and predicted ratings; ``n >= 1``, all finite.

    Returns
    -------
    float
    """
    t, p = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


class NLL(NamedTuple):
    """:func:`mean_nll`'s result."""

    nll: float  # mean negative log-likelihood (nats) of the scored ratings; NaN if none
    n_scored: int  # held-out ratings that are levels
    n_excluded: int  # held-out ratings that are no level, left out of the mean


def mean_nll(proba: Any, levels: Any, values: Any) -> NLL:
    """Mean negative log-likelihood of held-out ratings under a predictive distribution.

    ``-mean_k log proba[k, level(values[k])]`` in nats: a proper score of the whole
    predictive distribution (lower is better; a uniform guess over ``L`` levels scores
    ``log L``). A held-out value that is not one of ``levels`` (by the rating model's own
    level rule, :func:`rbmrec.models.rating_infer.level_match`) has no probability under
    the model: it is left out of the mean and counted in ``n_excluded``. A probability
    below the smallest normal float64 counts as that value, so the score stays finite.

    Parameters
    ----------
    proba : array_like of float, shape (n, n_levels)
        Predictive distribution of each held-out rating over ``levels`` (e.g.
        ``RatingRBM.predict_proba``); rows sum to 1.
    levels : array_like of float, shape (n_levels,)
        The rating levels of the columns, sorted and distinct, at least two (``values_``).
    values : array_like of float, shape (n,)
        The held-out ratings.

    Returns
    -------
    NLL
        ``(nll, n_scored, n_excluded)``; ``nll`` is NaN when no value is a level.

    Raises
    ------
    ValueError
        Shapes that do not match, fewer than two levels, or probabilities that are not
        finite numbers in [0, 1].
    """
    from rbmrec.models.rating_infer import level_match

    p = np.asarray(proba, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if lv.size < 2 or not np.all(np.diff(lv) > 0):
        raise ValueError(f"levels must be at least two sorted distinct values, got {lv.tolist()}")
    if p.ndim != 2 or p.shape != (y.size, lv.size):
        raise ValueError(
            f"proba has shape {p.shape}; expected ({y.size}, {lv.size}) for {y.size} values "
            f"and {lv.size} levels"
        )
    if p.size and not (np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1 + 1e-9):
        raise ValueError("proba must hold probabilities: finite numbers in [0, 1]")
    k, ok = level_match(lv, y)
    n = int(ok.sum())
    if n == 0:
        return NLL(float("nan"), 0, int(y.size))
    picked = p[np.flatnonzero(ok), k[ok]]
    nll = float(-np.mean(np.log(np.maximum(picked, np.finfo(np.float64).tiny))))
    return NLL(nll, n, int(y.size - n))


def mae(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``.

    Parameters
    ----------
    y_true, y_pred : array_like of float, shape (n,)
        Held-out and predicted ratings; ``n >= 1``, all finite.

    Returns
    -------
    float
    """
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


# -------------------------------------------------------------------------- relevance


def check_threshold(value: object, name: str = "threshold") -> float | None:
    """Validated relevance threshold: ``None`` or a finite real number (not a bool).

    Raises
    ------
    TypeError
        ``value`` is a bool, a string or another non-real object.
    ValueError
        ``value`` is NaN or infinite.
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or None, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite or None, got {value}")
    return float(value)


def relevant_items(test: sp.spmatrix, threshold: float | None = 4.0) -> sp.csr_matrix:
    """Binary CSR of relevant held-out items.

    Parameters
    ----------
    test : scipy sparse matrix, shape (n_users, n_items)
        Held-out ratings.
    threshold : float or None, default 4.0
        An item is relevant when its held-out rating is ``>= threshold``; ``None`` makes
        every stored held-out entry relevant (whatever its value).

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_users, n_items)
        1.0 at relevant (user, item) pairs, sorted indices, no other stored entries.

    Raises
    ------
    DataError
        If ``test`` stores a (user, item) pair more than once (CSR conversion would add the
        ratings up).
    """
    if not sp.issparse(test):
        raise TypeError(f"test must be a scipy sparse matrix, got {type(test).__name__}")
    threshold = check_threshold(threshold, "threshold")
    rep = repeated_entry(test)
    if rep is not None:
        # Summing them (what CSR conversion does) would turn 2 + 3 stars into a relevant 5.
        raise DataError(
            f"test stores (user {rep.row}, item {rep.col}) {rep.count} times, a pair more than "
            "once; merge or drop the duplicates first"
        )
    m = sp.csr_matrix(test, copy=True)
    m.sum_duplicates()
    if threshold is None:
        keep = np.ones(m.nnz, dtype=bool)
    else:
        keep = m.data >= threshold
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    out = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, m.indices[keep])), shape=m.shape
    )
    out.sort_indices()
    return out


# -------------------------------------------------------------------------- hit matrix


def _check_ids(ids: np.ndarray, n_items: int, K: int | None) -> np.ndarray:
    """Validated recommendation lists: int64 (n_users, min(n_slots, K)), ``-1`` = empty."""
    ids = np.asarray(ids)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2:
        raise ValueError(f"ids must be a 2-D array (n_users, n_slots), got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must hold integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if K is not None:
        ids = ids[:, :K]
    if np.any(ids >= n_items) or np.any(ids < -1):
        raise ValueError(f"ids must be item indices in [0, {n_items}) or -1 for an empty slot")
    return ids


def _check_K(K: Any) -> int:
    """``K`` as an int, or ValueError unless it is a positive integer (not a bool)."""
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    return int(K)


def _prepare(
    ids: np.ndarray, relevant: sp.spmatrix, K: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs; return (ids truncated/padded to K, hits (n, K) bool, n_relevant (n,))."""
    K = _check_K(K)
    if not sp.issparse(relevant):
        raise TypeError(f"relevant must be a scipy sparse matrix, got {type(relevant).__name__}")
    # A copy: csr_matrix(csr) shares the caller's arrays, and sum_duplicates() below would
    # rewrite a non-canonical input in place.
    rel = sp.csr_matrix(relevant, copy=True)
    n_users, n_items = rel.shape
    ids = _check_ids(ids, n_items, K)
    if ids.shape[0] != n_users:
        raise ValueError(
            f"ids has {ids.shape[0]} rows but relevant has {n_users}: one row per user needed"
        )
    if ids.shape[1] < K:
        pad = np.full((n_users, K - ids.shape[1]), -1, dtype=np.int64)
        ids = np.concatenate([ids, pad], axis=1)
    valid = ids >= 0
    # A repeated item would be counted twice as a hit.
    srt = np.sort(ids, axis=1)
    if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
        raise ValueError("ids contain the same item twice in one user's list")
    hits = np.zeros(ids.shape, dtype=bool)
    if rel.nnz and valid.any():
        rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
        rel_keys = np.unique(rel_rows * n_items + rel.indices.astype(np.int64))
        keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + ids
        pos = np.searchsorted(rel_keys, keys[valid])
        pos = np.minimum(pos, rel_keys.size - 1)
        hits[valid] = rel_keys[pos] == keys[valid]
    # Count distinct relevant items per row (duplicates in `relevant` are summed by csr).
    rel.sum_duplicates()
    n_rel = np.diff(rel.indptr).astype(np.int64)
    return ids, hits, n_rel


def hit_matrix(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> np.ndarray:
    """Which recommended slots are hits.

    Parameters
    ----------
    ids : ndarray of int, shape (n_users, n_slots)
        Recommended item ids, best first; ``-1`` marks an empty slot. Truncated to ``K``
        columns or padded with ``-1`` to ``K``.
    relevant : scipy sparse matrix, shape (n_users, n_items)
        Stored entries are the relevant items of each row's user.
    K : int
        List length.

    Returns
    -------
    ndarray of bool, shape (n_users, K)
    """
    return _prepare(ids, relevant, K)[1]


def _per_user(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> dict[str, np.ndarray]:
    ids, hits, n_rel = _prepare(ids, relevant, K)
    users = n_rel > 0
    hits = hits[users].astype(np.float64)
    n_rel = n_rel[users]
    K = hits.shape[1]
    m = np.minimum(K, n_rel).astype(np.float64)
    n_hits = hits.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, K + 2, dtype=np.float64))
    ideal = np.cumsum(discount)[m.astype(np.int64) - 1] if m.size else np.zeros(0)
    ranks = np.arange(1, K + 1, dtype=np.float64)
    first = np.argmax(hits > 0, axis=1)
    out = {
        "precision": n_hits / K,
        "recall": n_hits / m,
        "ndcg": (hits @ discount) / ideal,
        "map": (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1) / m,
        "mrr": np.where(n_hits > 0, 1.0 / (first + 1.0), 0.0),
        "hit_rate": (n_hits > 0).astype(np.float64),
        "n_hits": n_hits,
        "m": m,
        "ids": ids[users],
    }
    return out


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def precision_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """Precision@K: ``mean_u (sum_j h_j) / K``.

    The denominator is always ``K``, also for users with fewer than ``K`` relevant items or
    lists shorter than ``K`` (empty slots count as misses). ``implicit.evaluation`` calls
    ``sum_u hits_u / sum_u min(K, |R_u|)`` "precision"; see :func:`pooled_recall_at_k`.

    Parameters
    ----------
    ids : ndarray of int, shape (n_users, n_slots)
        Recommended item ids, best first, ``-1`` for empty slots.
    relevant : scipy sparse matrix, shape (n_users, n_items)
        Relevant items per user (stored entries).
    K : int
        Cut-off.

    Returns
    -------
    float
        NaN when no user has a relevant item.
    """
    return _mean(_per_user(ids, relevant, K)["precision"])


def recall_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """Recall@K: ``mean_u (sum_j h_j) / min(K, |R_u|)``.

    Dividing by ``min(K, |R_u|)`` rather than ``|R_u|`` makes a perfect list score 1 even
    for users with more than ``K`` relevant items. Parameters as :func:`precision_at_k`.
    """
    return _mean(_per_user(ids, relevant, K)["recall"])


def pooled_recall_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """``sum_u hits_u / sum_u min(K, |R_u|)``: what ``implicit.evaluation`` calls precision.

    A micro average of :func:`recall_at_k`: users with more relevant items weigh more.
    Parameters as :func:`precision_at_k`.
    """
    d = _per_user(ids, relevant, K)
    total = d["m"].sum()
    return float(d["n_hits"].sum() / total) if total > 0 else float("nan")


def ndcg_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """NDCG@K with binary gains: ``mean_u DCG_u / IDCG_u``.

    ``DCG_u = sum_{j=1}^{K} h_j / log2(j + 1)`` and ``IDCG_u = sum_{j=1}^{m_u} 1 / log2(j + 1)``
    with ``m_u = min(K, |R_u|)`` (the DCG of a list whose first ``m_u`` items are relevant).
    Same definition as ``implicit.evaluation``. Parameters as :func:`precision_at_k`.
    """
    return _mean(_per_user(ids, relevant, K)["ndcg"])


def map_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """MAP@K: ``mean_u AP_u`` with ``AP_u = sum_j h_j * (sum_{i<=j} h_i / j) / min(K, |R_u|)``.

    Precision at each hit position, summed and normalised by the largest possible number of
    hits. Same definition as ``implicit.evaluation``. Parameters as :func:`precision_at_k`.
    """
    return _mean(_per_user(ids, relevant, K)["map"])


def mrr_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """Mean reciprocal rank within the first K: ``mean_u 1 / rank_u``.

    ``rank_u`` is the 1-based position of the first hit; a user without a hit in the first
    ``K`` slots contributes 0. Parameters as :func:`precision_at_k`.
    """
    return _mean(_per_user(ids, relevant, K)["mrr"])


def hit_rate_at_k(ids: np.ndarray, relevant: sp.spmatrix, K: int) -> float:
    """Hit rate@K: fraction of users with at least one hit in the first K slots.

    Parameters as :func:`precision_at_k`.
    """
    return _mean(_per_user(ids, relevant, K)["hit_rate"])


def catalogue_coverage(ids: np.ndarray, n_items: int, K: int | None = None) -> float:
    """Catalogue coverage: ``|union_u L_u| / n_items``.

    Parameters
    ----------
    ids : ndarray of int, shape (n_users, n_slots)
        Recommended item ids; ``-1`` (empty slot) is ignored.
    n_items : int
        Catalogue size.
    K : int, optional
        Only the first ``K`` slots count (default: all columns).

    Returns
    -------
    float
        In [0, 1].
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    ids = _check_ids(ids, int(n_items), None if K is None else _check_K(K))
    return float(np.unique(ids[ids >= 0]).size / n_items)


def ranking_metrics(
    ids: np.ndarray, relevant: sp.spmatrix, K: int, n_items: int | None = None
) -> dict[str, float]:
    """All ranking metrics at once (one pass over the hit matrix).

    Parameters
    ----------
    ids : ndarray of int, shape (n_users, n_slots)
        Recommended item ids, best first, one row per row of ``relevant``; ``-1`` marks an
        empty slot. Only the first ``K`` slots are used; fewer columns are padded with ``-1``.
    relevant : scipy sparse matrix, shape (n_users, n_items)
        Stored entries are each user's relevant held-out items (see :func:`relevant_items`).
    K : int
        Cut-off.
    n_items : int, optional
        Catalogue size for coverage; default ``relevant.shape[1]``.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``ndcg``, ``map``, ``mrr``, ``hit_rate`` (macro averages
        over users with at least one relevant item, NaN if there is none), ``coverage``
        (distinct items recommended to those users / ``n_items``) and ``n_users`` (how many
        users were evaluated). ``recall`` is :func:`recall_at_k`: hits / ``min(K, |R_u|)``,
        not hits / ``|R_u|`` (the normalisation of Liang et al. 2018, so a perfect list
        scores 1 also for users with more than ``K`` relevant items).
    """
    d = _per_user(ids, relevant, K)
    n_items = relevant.shape[1] if n_items is None else n_items
    out = {k: _mean(d[k]) for k in RANKING_METRICS if k != "coverage"}
    out["coverage"] = catalogue_coverage(d["ids"], n_items) if d["ids"].size else float("nan")
    out["n_users"] = int(d["n_hits"].size)
    return {k: out[k] for k in (*RANKING_METRICS, "n_users")}
