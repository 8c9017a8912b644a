"""The base of the baselines: fit-input check, fitted check, repr and ``save``, on
:class:`rbmrec.models.base.Recommender` (which implements ``recommend``), and the
scipy-facing top-N adapter."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import top_n as _engine_top_n
from rbmrec.errors import DataError, NotFittedError
from rbmrec.evaluation.metrics import check_threshold
from rbmrec.models.base import Recommender
from rbmrec.models.validation import (
    as_index_array,
    check_training_csr,
)


def _check_min_rating(value: Any) -> float | None:
    """``min_rating``: None or a finite real number (bools and strings refused)."""
    return check_threshold(value, "min_rating")


def top_n(
    scores: np.ndarray,
    N: int,
    exclude: sp.csr_matrix | None = None,
    filter_items: Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``N`` items per row of a dense score matrix, with exclusions.

    A scipy-facing adapter of :func:`rbmrec.engine.topn.top_n`, the one top-N kernel the
    recommenders share.

    Parameters
    ----------
    scores : ndarray of float, shape (n_rows, n_items)
        Higher is better; not modified. NaN and ``-inf`` entries are never returned.
    N : int
        Slots per row.
    exclude : scipy.sparse.csr_matrix, shape (n_rows, n_items), optional
        Stored entries of row ``r`` are excluded from row ``r`` (already-liked items).
    filter_items : array_like of int, optional
        Item ids excluded from every row.

    Returns
    -------
    ids : ndarray of int32, shape (n_rows, N)
        Best first; ties broken by the lower item id; ``-1`` where fewer than ``N`` items
        remain.
    scores : ndarray of float32, shape (n_rows, N)
        Matching scores; :data:`PAD_SCORE` in empty slots.
    """
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    mask = None
    if filter_items is not None and len(filter_items):
        mask = np.zeros(scores.shape[1], dtype=np.bool_)
        mask[as_index_array("filter_items", filter_items, scores.shape[1])] = True
    if exclude is None:
        return _engine_top_n(scores, N, excluded=mask)
    return _engine_top_n(scores, N, exclude.indptr, exclude.indices, mask)


class _Base(Recommender):
    """Fit-input check, fitted check, ``save`` and repr shared by the baselines; each
    subclass supplies ``_score_block`` (``recommend`` is :class:`Recommender`'s)."""

    n_users_: int
    n_items_: int

    def _check_fitted(self) -> None:
        if getattr(self, "n_items_", None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(user_items) first")

    def _fit_input(self, user_items: Any) -> sp.csr_matrix:
        """The checked training matrix (:func:`~rbmrec.models.validation.check_training_csr`);
        every baseline's ``fit`` starts here."""
        return check_training_csr("user_items", user_items)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, Any]:
        """Constructor arguments by name (scikit-learn's ``get_params`` convention).

        Read from the ``__init__`` signature, so every subclass reports (and saves, and is
        rebuilt from) exactly the hyperparameters it takes.
        """
        names = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in names if k != "self"}


def confidence_matrix(
    user_items: sp.csr_matrix,
    weighting: Literal["binary", "rating"] = "binary",
    min_rating: float | None = None,
) -> sp.csr_matrix:
    """Turn raw ratings into the confidence matrix ``implicit`` models fit on.

    Parameters
    ----------
    user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Raw ratings.
    weighting : {"binary", "rating"}, default "binary"
        ``"binary"``: confidence 1 for every stored entry (a rating of 0 or below too);
        ``"rating"``: the rating value, which must then be > 0 (DataError otherwise).
    min_rating : float, optional
        Drop ratings below this value first (default: keep every rated item).

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_users, n_items)
        A new matrix; the input is not modified. It may be empty (every rating below
        ``min_rating``); the wrappers' ``fit`` refuses that with a DataError.

    Raises
    ------
    TypeError
        ``min_rating`` is not a real number (e.g. a string or a bool).
    ValueError
        Unknown ``weighting`` or a non-finite ``min_rating``.
    DataError
        ``weighting="rating"`` with a kept rating <= 0 (no valid confidence).
    """
    if weighting not in ("binary", "rating"):
        raise ValueError(f"weighting must be 'binary' or 'rating', got {weighting!r}")
    min_rating = _check_min_rating(min_rating)
    m = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    m.sum_duplicates()
    if min_rating is not None:
        # A mask, not zeroing and eliminate_zeros(): a kept rating of 0 is an entry too.
        keep = m.data >= min_rating
        m = sp.csr_matrix(
            (m.data[keep], m.indices[keep], np.r_[0, np.cumsum(keep)][m.indptr]), shape=m.shape
        )
    if weighting == "binary":
        m.data[:] = 1.0
    elif m.nnz and m.data.min() <= 0:
        raise DataError(
            f"weighting='rating' uses each rating as its confidence, which must be > 0, but "
            f"a rating of {float(m.data.min()):g} is kept; use weighting='binary' or a "
            "min_rating above 0"
        )
    m.sort_indices()
    return m
