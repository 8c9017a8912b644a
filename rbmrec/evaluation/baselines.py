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
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import top_n as _engine_top_n
from rbmrec.errors import NotFittedError, TrainingDivergedError
from rbmrec.evaluation.metrics import check_threshold
from rbmrec.models.base import Recommender
from rbmrec.models.persistence import register
from rbmrec.models.validation import (
    as_index_array,
    check_float,
    check_int,
    check_kept,
    check_pairs,
    check_seed_int,
    check_training_csr,
)

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
        u, _ = check_pairs(userids, itemids, self.n_users_, self.n_items_)
        return np.full(u.size, self.mean_, dtype=np.float64)

    def _score_block(self, users, user_items, recalc):
        return np.full((users.size, self.n_items_), self.mean_, dtype=np.float64)

    def _get_state(self):
        return {}, {"mean": self.mean_, "n_users": self.n_users_, "n_items": self.n_items_}

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls()
        obj.mean_ = float(meta["mean"])
        obj.n_users_, obj.n_items_ = int(meta["n_users"]), int(meta["n_items"])
        return obj


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
        reg_u = check_float("reg_user", self.reg_user, 0.0)
        reg_i = check_float("reg_item", self.reg_item, 0.0)
        n_iter = check_int("n_iter", self.n_iter, 1)
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
        u, i = check_pairs(userids, itemids, self.n_users_, self.n_items_)
        return self._clip(self.mean_ + self.user_bias_[u] + self.item_bias_[i])

    def _score_block(self, users, user_items, recalc):
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
            check_kept(int(data.sum()), m.nnz, self.min_rating, type(self).__name__)
            counts = np.bincount(m.indices, data.astype(np.float64), minlength=m.shape[1])
        else:
            counts = _item_counts(m)
        self.item_counts_ = counts
        self.n_users_, self.n_items_ = m.shape
        return self

    def _score_block(self, users, user_items, recalc):
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
        check_kept(conf.nnz, m.nnz, self.min_rating, type(self).__name__)
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

    def _score_block(self, users, user_items, recalc):
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
        check_int("factors", self.factors, 1)
        check_float("regularization", self.regularization, 0.0)
        if check_float("alpha", self.alpha, 0.0) == 0:
            raise ValueError("alpha must be > 0")
        check_int("iterations", self.iterations, 1)
        check_seed_int(self.random_state)
        check_int("num_threads", self.num_threads, 0)
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
        check_int("factors", self.factors, 1)
        if check_float("learning_rate", self.learning_rate, 0.0) == 0:
            raise ValueError("learning_rate must be > 0")
        check_float("regularization", self.regularization, 0.0)
        check_int("iterations", self.iterations, 1)
        check_seed_int(self.random_state)
        check_int("num_threads", self.num_threads, 0)
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
        check_int("K", self.K, 1)
        check_float("K1", self.K1, 0.0)
        check_float("B", self.B, 0.0)
        check_int("num_threads", self.num_threads, 0)
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

    #: Scores come from the users' rows (``user_items``), needed even without filtering.
    _SCORES_FROM_ROWS = True

    def _score_block(self, users, user_items, recalc):
        conf = confidence_matrix(user_items, self.weighting, self.min_rating)
        return np.asarray((conf @ self.similarity_).todense(), dtype=np.float64)

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
