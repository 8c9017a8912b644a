"""Baseline recommenders behind the same interface as rbmrec's RBMs and ``implicit``.

Every class here follows one protocol, so :func:`rbmrec.evaluation.evaluate` drives them
and the RBM models alike:

``fit(user_items)``
    ``user_items`` is a CSR matrix (n_users, n_items) of RAW ratings (e.g. 1..5). It is
    never modified. A matrix with no stored rating is refused (``DataError``, "user_items has
    no ratings") by every baseline: fitted on nothing, a model would score every item alike.
    Wrappers of ``implicit`` models turn it into confidences themselves (see
    :func:`confidence_matrix`).
``recommend(userid, user_items, N=10, filter_already_liked_items=True, filter_items=None,
recalculate_user=False)``
    Same signature and conventions as ``implicit`` 0.7.3. ``user_items`` holds the rows of
    the requested users (``train[userid]`` for one user, ``train[userids]`` for a batch); its
    stored entries are the items filtered by ``filter_already_liked_items``.

    - single user (``userid`` an int): 1-D ``int32`` ids and ``float32`` scores of length
      ``min(N, number of candidate items)``, best first, no padding;
    - batch (``userid`` array-like): 2-D arrays ``(n_users, N)``; rows with fewer than ``N``
      candidates are padded with id ``-1`` and score ``-np.finfo(np.float32).max``, exactly
      as ``implicit.utils._batch_call`` pads, so ``implicit.evaluation`` works unchanged.

    Ties in score are broken by the lower item id, so results are deterministic and a batch
    row equals the single-user result.
``predict(userids, itemids)`` (rating models only)
    float64 predicted ratings, same length as the inputs.
``save(path)`` / :func:`rbmrec.load`
    Through :mod:`rbmrec.models.persistence` (npz + JSON, no pickle).

``implicit`` is imported lazily, inside the wrappers, with BLAS limited to one thread
(``threadpoolctl``), which is what ``implicit`` asks for; its models get ``num_threads``
(default 1, for reproducible results) and an ``int`` seed (``implicit`` 0.7.3 crashes on a
``RandomState``).
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import PAD_SCORE
from rbmrec.engine.topn import top_n as _engine_top_n
from rbmrec.errors import DataError, NotFittedError, TrainingDivergedError
from rbmrec.evaluation.metrics import check_threshold
from rbmrec.models._common import as_index_array, check_sparse_structure
from rbmrec.models.persistence import register
from rbmrec.models.persistence import save as _save

__all__ = [
    "BiasBaseline",
    "GlobalMean",
    "ImplicitALS",
    "ImplicitBPR",
    "ImplicitItemKNN",
    "Popularity",
    "confidence_matrix",
    "top_n",
]

logger = logging.getLogger(__name__)

# Users scored at once in batch recommend: bounds the dense (batch, n_items) score matrix.
_CHUNK = 1024


# ----------------------------------------------------------------------------- helpers


def _check_csr(m: Any, name: str, n_cols: int | None = None) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise TypeError(f"{name} must be a scipy sparse CSR matrix, got {type(m).__name__}")
    if m.format != "csr":
        raise TypeError(f"{name} must be a CSR matrix, got format {m.format!r}")
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {m.shape}")
    # Malformed index arrays would reach scipy's C++ routines and the top-N kernel unchecked.
    check_sparse_structure(name, m)
    if n_cols is not None and m.shape[1] != n_cols:
        raise ValueError(f"{name} has {m.shape[1]} columns but the model was fit on {n_cols} items")
    if m.nnz and not np.isfinite(m.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return m


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_nonneg_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_min_rating(value: Any) -> float | None:
    """``min_rating``: None or a finite real number (bools and strings refused)."""
    return check_threshold(value, "min_rating")


def _check_kept(n_kept: int, n_ratings: int, min_rating: Any, model: str) -> None:
    """DataError when ``min_rating`` dropped every one of ``n_ratings`` training ratings.

    The model would fit on nothing and score every item 0 without complaint.
    """
    if n_kept == 0 and n_ratings > 0 and min_rating is not None:
        raise DataError(
            f"{model}: min_rating={min_rating!r} drops all {n_ratings} training ratings "
            f"(none is >= {min_rating!r}); nothing is left to fit on"
        )


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise TypeError(
            f"random_state must be a non-negative int (implicit 0.7.3 cannot take a "
            f"RandomState), got {value!r}"
        )
    return int(value)


def _userids(userid: Any, n_users: int) -> tuple[np.ndarray, bool]:
    """Return (int64 ids (n,), is_single) after range checks."""
    single = np.ndim(userid) == 0
    arr = np.atleast_1d(np.asarray(userid))
    if arr.ndim != 1:
        raise ValueError(f"userid must be an int or a 1-D array of ints, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"userid must be an int or integer array, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n_users)
    if bad.any():
        raise ValueError(
            f"userid {int(arr[bad][0])} is out of range: the model knows users 0..{n_users - 1}"
        )
    return arr, single


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
        ``"binary"``: confidence 1 for every rated item; ``"rating"``: the rating value.
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
    """
    if weighting not in ("binary", "rating"):
        raise ValueError(f"weighting must be 'binary' or 'rating', got {weighting!r}")
    min_rating = _check_min_rating(min_rating)
    m = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    if min_rating is not None:
        m.data[m.data < min_rating] = 0.0
        m.eliminate_zeros()
    if weighting == "binary":
        m.data[:] = 1.0
    m.sort_indices()
    return m


class _Base:
    """Shared recommend/validation machinery; subclasses implement ``_scores``."""

    n_users_: int
    n_items_: int

    def _check_fitted(self) -> None:
        if getattr(self, "n_items_", None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(user_items) first")

    def _fit_input(self, user_items: Any) -> sp.csr_matrix:
        """The checked training matrix; every baseline's ``fit`` starts here.

        Raises
        ------
        TypeError
            Not a scipy CSR matrix.
        ValueError
            An empty dimension, NaN or infinite values, or malformed index arrays.
        DataError
            No stored rating: the model would fit on nothing and score every item alike
            without complaint.
        """
        m = _check_csr(user_items, "user_items")
        if m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"user_items has an empty dimension: shape {m.shape}")
        if m.nnz == 0:
            raise DataError("user_items has no ratings")
        return m

    def _scores(self, users: np.ndarray, user_items: sp.csr_matrix | None, recalc: bool):
        raise NotImplementedError

    def recommend(
        self,
        userid: int | Sequence[int] | np.ndarray,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Sequence[int] | np.ndarray | None = None,
        recalculate_user: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one user or a batch of users (``implicit`` conventions).

        Parameters
        ----------
        userid : int or array_like of int, shape (n,)
            User index or indices in ``[0, n_users)``.
        user_items : scipy.sparse.csr_matrix, shape (1, n_items) or (n, n_items)
            The users' rows of the training matrix (raw ratings), one row per requested
            user, in order. Needed when filtering liked items or recalculating users.
        N : int, default 10
            Number of items.
        filter_already_liked_items : bool, default True
            Exclude the items stored in the user's row of ``user_items``.
        filter_items : array_like of int, optional
            Items excluded for every user.
        recalculate_user : bool, default False
            Compute the user's representation from ``user_items`` instead of the stored one
            (only models that support it; others raise ``NotImplementedError``).

        Returns
        -------
        ids : ndarray of int32, shape (k,) or (n, N)
            Single user: ``k = min(N, candidates)`` ids, no padding. Batch: ``-1`` pads.
        scores : ndarray of float32, same shape
            Descending; batch padding is ``-np.finfo(np.float32).max``.
        """
        self._check_fitted()
        N = _check_positive_int(N, "N")
        users, single = _userids(userid, self.n_users_)
        need_rows = filter_already_liked_items or recalculate_user
        rows = None
        if need_rows:
            rows = _check_csr(user_items, "user_items", self.n_items_)
            if rows.shape[0] != users.size:
                raise ValueError(
                    f"user_items must have one row per requested user: {users.size} users "
                    f"but {rows.shape[0]} rows (pass train[userid], not the whole matrix)"
                )
        if filter_items is not None:
            # Integer ids in range: 106.9 is an error, not item 106; -1 not the last item.
            filter_items = as_index_array("filter_items", filter_items, self.n_items_)
        ids = np.full((users.size, N), -1, dtype=np.int32)
        scores = np.full((users.size, N), PAD_SCORE, dtype=np.float32)
        for start in range(0, users.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            chunk_rows = rows[sl] if rows is not None else None
            s = np.asarray(self._scores(users[sl], chunk_rows, recalculate_user), np.float64)
            exclude = chunk_rows if filter_already_liked_items else None
            ids[sl], scores[sl] = top_n(s, N, exclude, filter_items)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def save(self, path: str | os.PathLike) -> Any:
        """Save the fitted model (npz + JSON); reload with :func:`rbmrec.load`."""
        self._check_fitted()
        return _save(self, path)

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


def _item_counts(m: sp.csr_matrix) -> np.ndarray:
    return np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)


# ---------------------------------------------------------------------- rating baselines


@register
class GlobalMean(_Base):
    """Predicts the mean training rating for every pair.

    ``recommend`` scores every item with that mean, so lists are items in id order: a floor
    for ranking metrics, not a ranking model.
    """

    def __init__(self) -> None:
        self.mean_: float | None = None
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> GlobalMean:
        """Fit on raw ratings, CSR shape (n_users, n_items)."""
        m = self._fit_input(user_items)
        self.mean_ = float(np.mean(m.data, dtype=np.float64))
        self.n_users_, self.n_items_ = m.shape
        return self

    def predict(self, userids: Sequence[int], itemids: Sequence[int]) -> np.ndarray:
        """Predicted ratings, float64 shape (n,), for pairs ``(userids[k], itemids[k])``."""
        self._check_fitted()
        u, _ = _check_pairs(userids, itemids, self.n_users_, self.n_items_)
        return np.full(u.size, self.mean_, dtype=np.float64)

    def _scores(self, users, user_items, recalc):
        return np.full((users.size, self.n_items_), self.mean_, dtype=np.float64)

    def _get_state(self):
        return {}, {"mean": self.mean_, "n_users": self.n_users_, "n_items": self.n_items_}

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls()
        obj.mean_ = float(meta["mean"])
        obj.n_users_, obj.n_items_ = int(meta["n_users"]), int(meta["n_items"])
        return obj


def _check_pairs(userids, itemids, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(userids)
    i = np.asarray(itemids)
    if u.ndim != 1 or i.ndim != 1:
        raise ValueError(f"userids and itemids must be 1-D, got shapes {u.shape} and {i.shape}")
    if u.shape != i.shape:
        raise ValueError(f"userids has {u.size} entries but itemids has {i.size}")
    for a, name, n in ((u, "userids", n_users), (i, "itemids", n_items)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"{name} must be in [0, {n}), got values in [{a.min()}, {a.max()}]")
    return u.astype(np.int64), i.astype(np.int64)


@register
class BiasBaseline(_Base):
    """User + item bias baseline ``r_ui = mu + b_u + b_i`` ("BaselineOnly").

    Biases minimise ``sum (r_ui - mu - b_u - b_i)^2 + reg_user sum b_u^2 + reg_item sum b_i^2``
    by alternating least squares, as Surprise's ``BaselineOnly`` (Koren 2010, "Factor in the
    neighbors", section 2.1): ``b_i = sum_u (r_ui - mu - b_u) / (reg_item + |U(i)|)``, then
    ``b_u = sum_i (r_ui - mu - b_i) / (reg_user + |I(u)|)``.

    Parameters
    ----------
    reg_user : float, default 15.0
        Shrinkage of user biases (Surprise's default).
    reg_item : float, default 10.0
        Shrinkage of item biases.
    n_iter : int, default 10
        Alternating sweeps.
    clip : bool, default True
        Clip predictions to the training rating range.

    Notes
    -----
    ``recommend`` ranks by ``b_i`` (the user's bias shifts all scores equally) and reports
    the unclipped ``mu + b_u + b_i`` as the score: it equals ``predict`` inside the training
    rating range but, unlike ``predict`` with ``clip=True``, may fall outside it (e.g. above
    5), because clipping would tie the best items. ``recalculate_user=True`` recomputes
    ``b_u`` from the given rows with the fitted item biases.
    """

    def __init__(
        self, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10, clip: bool = True
    ) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter
        self.clip = clip
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> BiasBaseline:
        """Fit on raw ratings, CSR shape (n_users, n_items)."""
        reg_u = _check_nonneg_float(self.reg_user, "reg_user")
        reg_i = _check_nonneg_float(self.reg_item, "reg_item")
        n_iter = _check_positive_int(self.n_iter, "n_iter")
        m = self._fit_input(user_items)
        n_users, n_items = m.shape
        r = m.data.astype(np.float64)
        rows = np.repeat(np.arange(n_users), np.diff(m.indptr))
        cols = m.indices
        mu = float(r.mean())
        n_u = np.bincount(rows, minlength=n_users).astype(np.float64)
        n_i = np.bincount(cols, minlength=n_items).astype(np.float64)
        bu = np.zeros(n_users)
        bi = np.zeros(n_items)
        # reg 0 and no ratings gives 0/0 (NaN, set to bias 0 below): intended, not a warning
        with np.errstate(invalid="ignore"):
            for _ in range(n_iter):
                bi = np.bincount(cols, r - mu - bu[rows], minlength=n_items) / (reg_i + n_i)
                bu = np.bincount(rows, r - mu - bi[cols], minlength=n_users) / (reg_u + n_u)
        self.user_bias_ = np.nan_to_num(bu)
        self.item_bias_ = np.nan_to_num(bi)
        self.mean_ = mu
        self.rating_range_ = (float(r.min()), float(r.max()))
        self.n_users_, self.n_items_ = n_users, n_items
        return self

    def _clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, *self.rating_range_) if self.clip else x

    def predict(self, userids: Sequence[int], itemids: Sequence[int]) -> np.ndarray:
        """Predicted ratings, float64 shape (n,), for pairs ``(userids[k], itemids[k])``."""
        self._check_fitted()
        u, i = _check_pairs(userids, itemids, self.n_users_, self.n_items_)
        return self._clip(self.mean_ + self.user_bias_[u] + self.item_bias_[i])

    def _scores(self, users, user_items, recalc):
        if recalc:
            rows = np.repeat(np.arange(users.size), np.diff(user_items.indptr))
            resid = user_items.data - self.mean_ - self.item_bias_[user_items.indices]
            n = np.diff(user_items.indptr)
            with np.errstate(invalid="ignore"):  # reg 0 and an empty row: 0/0 -> bias 0
                bu = np.bincount(rows, resid, minlength=users.size) / (float(self.reg_user) + n)
            bu = np.nan_to_num(bu)
        else:
            bu = self.user_bias_[users]
        # Rank by the unclipped value: clipping would create ties among the best items.
        return self.mean_ + bu[:, None] + self.item_bias_[None, :]

    def _get_state(self):
        arrays = {"user_bias": self.user_bias_, "item_bias": self.item_bias_}
        meta = {
            "params": self._params(),
            "mean": self.mean_,
            "rating_range": list(self.rating_range_),
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls(**meta["params"])
        obj.user_bias_ = np.asarray(arrays["user_bias"], dtype=np.float64)
        obj.item_bias_ = np.asarray(arrays["item_bias"], dtype=np.float64)
        obj.mean_ = float(meta["mean"])
        obj.rating_range_ = tuple(float(x) for x in meta["rating_range"])
        obj.n_users_, obj.n_items_ = obj.user_bias_.size, obj.item_bias_.size
        return obj


@register
class Popularity(_Base):
    """Recommends the items with the most training ratings (the same list for everyone).

    Score of item ``i``: the number of users who rated it (``min_rating`` counts only
    ratings at or above it). Ties go to the lower item id.

    Parameters
    ----------
    min_rating : float, optional
        Count only ratings ``>= min_rating`` (default: every rating).
    """

    def __init__(self, min_rating: float | None = None) -> None:
        self.min_rating = min_rating
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> Popularity:
        """Fit on raw ratings, CSR shape (n_users, n_items)."""
        m = self._fit_input(user_items)
        if self.min_rating is not None:
            min_rating = _check_min_rating(self.min_rating)
            data = m.data >= min_rating
            _check_kept(int(data.sum()), m.nnz, self.min_rating, type(self).__name__)
            counts = np.bincount(m.indices, data.astype(np.float64), minlength=m.shape[1])
        else:
            counts = _item_counts(m)
        self.item_counts_ = counts
        self.n_users_, self.n_items_ = m.shape
        return self

    def _scores(self, users, user_items, recalc):
        return np.broadcast_to(self.item_counts_, (users.size, self.n_items_))

    def _get_state(self):
        meta = {"params": self._params(), "n_users": self.n_users_}
        return {"item_counts": self.item_counts_}, meta

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls(**meta["params"])
        obj.item_counts_ = np.asarray(arrays["item_counts"], dtype=np.float64)
        obj.n_users_, obj.n_items_ = int(meta["n_users"]), obj.item_counts_.size
        return obj


# --------------------------------------------------------------------- implicit wrappers


def _import_implicit():
    """Import ``implicit`` and limit BLAS to one thread (what implicit asks for).

    Returns the package and the ``threadpoolctl`` limiter; call
    ``limiter.restore_original_limits()`` when done. The limit is applied after the import
    so that BLAS libraries loaded by the import are limited too.
    """
    import threadpoolctl

    try:
        import implicit.cpu.als
        import implicit.cpu.bpr
        import implicit.nearest_neighbours
    except ImportError as exc:  # pragma: no cover - implicit is a hard dependency
        raise ImportError("the implicit baselines need the 'implicit' package") from exc
    limiter = threadpoolctl.threadpool_limits(1, "blas")
    return implicit, limiter


class _ImplicitWrapper(_Base):
    """Fit code shared by the wrappers of ``implicit`` models.

    ``fit`` checks the hyperparameters, turns the raw ratings into confidences, fits the
    ``implicit`` model with BLAS limited to one thread and keeps what scoring needs.
    Subclasses define ``_check_params``, ``_make(implicit)`` (the unfitted model) and
    ``_store(model)`` (copy its fitted arrays).
    """

    weighting: Literal["binary", "rating"]
    min_rating: float | None

    def _check_params(self) -> None:
        raise NotImplementedError

    def _make(self, implicit: Any) -> Any:
        raise NotImplementedError

    def _store(self, model: Any) -> None:
        raise NotImplementedError

    def _fit_model(self, implicit: Any, model: Any, conf: sp.csr_matrix) -> None:
        model.fit(conf, show_progress=False)

    def fit(self, user_items: sp.csr_matrix):
        """Fit on raw ratings, CSR shape (n_users, n_items), via :func:`confidence_matrix`.

        Raises
        ------
        TypeError, ValueError
            A bad hyperparameter (e.g. ``min_rating="3"``), named in the message.
        DataError
            ``user_items`` has no ratings, or ``min_rating`` drops every one of them.
        """
        self._check_params()
        m = self._fit_input(user_items)
        conf = confidence_matrix(m, self.weighting, self.min_rating)
        # An empty matrix would fit a model whose scores are all 0 (or NaN), silently.
        _check_kept(conf.nnz, m.nnz, self.min_rating, type(self).__name__)
        implicit, limiter = _import_implicit()
        try:
            model = self._make(implicit)
            self._fit_model(implicit, model, conf)
        finally:
            limiter.restore_original_limits()
        self._store(model)
        self.n_users_, self.n_items_ = m.shape
        return self


class _ImplicitMF(_ImplicitWrapper):
    """Shared code of the matrix-factorisation wrappers: scores = U V^T."""

    def _store(self, model: Any) -> None:
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        if not (np.isfinite(self.user_factors_).all() and np.isfinite(self.item_factors_).all()):
            raise TrainingDivergedError(
                f"{type(self).__name__} produced non-finite factors with {self._params()}"
            )
        self._model = model

    def _user_vectors(self, users, user_items, recalc):
        if recalc:
            raise NotImplementedError(f"recalculate_user is not supported by {type(self).__name__}")
        return self.user_factors_[users]

    def _scores(self, users, user_items, recalc):
        u = self._user_vectors(users, user_items, recalc)
        return u.astype(np.float64) @ self.item_factors_.T.astype(np.float64)

    def _get_state(self):
        arrays = {"user_factors": self.user_factors_, "item_factors": self.item_factors_}
        return arrays, {"params": self._params()}

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls(**meta["params"])
        obj.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        obj.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        obj.n_users_, obj.n_items_ = obj.user_factors_.shape[0], obj.item_factors_.shape[0]
        obj._model = None
        return obj


@register
class ImplicitALS(_ImplicitMF):
    """``implicit``'s alternating least squares for implicit feedback (Hu, Koren & Volinsky
    2008), behind rbmrec's recommender interface.

    Fit on confidences ``C = alpha * w`` where ``w`` is 1 for every rated item
    (``weighting="binary"``, default) or the rating (``"rating"``); implicit multiplies by
    ``alpha`` itself. Scores are ``user_factors @ item_factors.T`` computed here (float64),
    so single and batch results agree exactly.

    Parameters
    ----------
    factors : int, default 64
    regularization : float, default 0.05
    alpha : float, default 1.0
        Confidence scale (implicit's ``alpha``).
    iterations : int, default 15
    random_state : int, default 0
        Seed passed to implicit (an int: implicit 0.7.3 crashes on a ``RandomState``).
    weighting : {"binary", "rating"}, default "binary"
    min_rating : float, optional
        Ignore ratings below this when fitting (default: use every rated item).
    num_threads : int, default 1
        implicit's thread count (0 = all cores).

    Notes
    -----
    ``recalculate_user=True`` solves the user's factors from the given rows (implicit's
    ``recalculate_user``), e.g. for users added after ``fit``.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int = 0,
        weighting: Literal["binary", "rating"] = "binary",
        min_rating: float | None = None,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.weighting = weighting
        self.min_rating = min_rating
        self.num_threads = num_threads
        self.n_items_ = None  # type: ignore[assignment]

    def _check_params(self):
        _check_positive_int(self.factors, "factors")
        _check_nonneg_float(self.regularization, "regularization")
        if _check_nonneg_float(self.alpha, "alpha") == 0:
            raise ValueError("alpha must be > 0")
        _check_positive_int(self.iterations, "iterations")
        _check_seed(self.random_state)
        _check_positive_int(self.num_threads, "num_threads", minimum=0)
        _check_min_rating(self.min_rating)

    def _make(self, implicit):
        return implicit.cpu.als.AlternatingLeastSquares(
            factors=int(self.factors),
            regularization=float(self.regularization),
            alpha=float(self.alpha),
            iterations=int(self.iterations),
            random_state=int(self.random_state),
            num_threads=int(self.num_threads),
        )

    def _user_vectors(self, users, user_items, recalc):
        if not recalc:
            return self.user_factors_[users]
        implicit, limiter = _import_implicit()
        try:
            model = getattr(self, "_model", None)
            if model is None:
                model = self._make(implicit)
                model.user_factors = self.user_factors_
                model.item_factors = self.item_factors_
                self._model = model
            conf = confidence_matrix(user_items, self.weighting, self.min_rating)
            return np.atleast_2d(model.recalculate_user(users, conf))
        finally:
            limiter.restore_original_limits()


@register
class ImplicitBPR(_ImplicitMF):
    """``implicit``'s Bayesian personalised ranking (Rendle et al. 2009) behind rbmrec's
    recommender interface.

    Positive items are the rated items (``weighting`` is ignored by BPR beyond which entries
    are stored; ``min_rating`` drops low ratings from the positives). Scores are
    ``user_factors @ item_factors.T`` (implicit appends an item-bias column).

    Parameters
    ----------
    factors : int, default 64
    learning_rate : float, default 0.01
    regularization : float, default 0.01
    iterations : int, default 100
    random_state : int, default 0
    min_rating : float, optional
    num_threads : int, default 1
        1 keeps SGD reproducible (several threads update factors Hogwild-style).
    verify_negative_samples : bool, default True
    """

    weighting = "binary"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 0,
        min_rating: float | None = None,
        num_threads: int = 1,
        verify_negative_samples: bool = True,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.min_rating = min_rating
        self.num_threads = num_threads
        self.verify_negative_samples = verify_negative_samples
        self.n_items_ = None  # type: ignore[assignment]

    def _check_params(self):
        _check_positive_int(self.factors, "factors")
        if _check_nonneg_float(self.learning_rate, "learning_rate") == 0:
            raise ValueError("learning_rate must be > 0")
        _check_nonneg_float(self.regularization, "regularization")
        _check_positive_int(self.iterations, "iterations")
        _check_seed(self.random_state)
        _check_positive_int(self.num_threads, "num_threads", minimum=0)
        _check_min_rating(self.min_rating)

    def _make(self, implicit):
        return implicit.cpu.bpr.BayesianPersonalizedRanking(
            factors=int(self.factors),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            random_state=int(self.random_state),
            num_threads=int(self.num_threads),
            verify_negative_samples=bool(self.verify_negative_samples),
        )


@register
class ImplicitItemKNN(_ImplicitWrapper):
    """``implicit``'s item-item nearest-neighbour models behind rbmrec's interface.

    ``implicit`` computes the item-item similarity matrix ``S`` (each item keeps its ``K``
    nearest neighbours); a user's score for item ``j`` is ``sum_i c_ui S_ij`` over the
    user's rated items ``i`` with confidence ``c_ui`` (:func:`confidence_matrix`). The scores
    are computed here for every item (items no neighbour reaches score 0), so lists are
    always complete, unlike implicit's own ``recommend``, which returns only reached items.

    Parameters
    ----------
    kind : {"cosine", "bm25", "tfidf"}, default "cosine"
    K : int, default 50
        Neighbours kept per item.
    K1, B : float, default 1.2, 0.75
        BM25 parameters (``kind="bm25"`` only).
    weighting : {"binary", "rating"}, default "binary"
    min_rating : float, optional
    num_threads : int, default 1
    """

    def __init__(
        self,
        kind: Literal["cosine", "bm25", "tfidf"] = "cosine",
        K: int = 50,
        K1: float = 1.2,
        B: float = 0.75,
        weighting: Literal["binary", "rating"] = "binary",
        min_rating: float | None = None,
        num_threads: int = 1,
    ) -> None:
        self.kind = kind
        self.K = K
        self.K1 = K1
        self.B = B
        self.weighting = weighting
        self.min_rating = min_rating
        self.num_threads = num_threads
        self.n_items_ = None  # type: ignore[assignment]

    def _check_params(self):
        if self.kind not in ("cosine", "bm25", "tfidf"):
            raise ValueError(f"kind must be 'cosine', 'bm25' or 'tfidf', got {self.kind!r}")
        _check_positive_int(self.K, "K")
        _check_nonneg_float(self.K1, "K1")
        _check_nonneg_float(self.B, "B")
        _check_positive_int(self.num_threads, "num_threads", minimum=0)
        _check_min_rating(self.min_rating)

    def _make(self, implicit):
        nn = implicit.nearest_neighbours
        if self.kind == "cosine":
            return nn.CosineRecommender(K=int(self.K), num_threads=int(self.num_threads))
        if self.kind == "bm25":
            return nn.BM25Recommender(
                K=int(self.K), K1=float(self.K1), B=float(self.B), num_threads=int(self.num_threads)
            )
        return nn.TFIDFRecommender(K=int(self.K), num_threads=int(self.num_threads))

    def _fit_model(self, implicit, model, conf):
        with warnings.catch_warnings():
            # implicit's BM25/TF-IDF weighting converts COO to CSR and warns about it
            warnings.simplefilter("ignore", implicit.utils.ParameterWarning)
            model.fit(conf, show_progress=False)

    def _store(self, model):
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float64)

    def _scores(self, users, user_items, recalc):
        if user_items is None:
            raise ValueError(
                "ImplicitItemKNN scores users from their rows: pass user_items "
                "(the users' training rows)"
            )
        conf = confidence_matrix(user_items, self.weighting, self.min_rating)
        return np.asarray((conf @ self.similarity_).todense(), dtype=np.float64)

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True,
                  filter_items=None, recalculate_user=False):  # fmt: skip
        # Scores always come from user_items, so it is needed even without filtering.
        if not filter_already_liked_items and not recalculate_user:
            return super().recommend(userid, user_items, N, False, filter_items, True)
        return super().recommend(
            userid, user_items, N, filter_already_liked_items, filter_items, recalculate_user
        )

    recommend.__doc__ = _Base.recommend.__doc__

    def _get_state(self):
        s = self.similarity_
        arrays = {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr}
        return arrays, {"params": self._params(), "n_users": self.n_users_, "shape": s.shape}

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls(**meta["params"])
        shape = tuple(int(x) for x in meta["shape"])
        obj.similarity_ = sp.csr_matrix(
            (arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=shape
        )
        obj.n_users_, obj.n_items_ = int(meta["n_users"]), shape[1]
        return obj
