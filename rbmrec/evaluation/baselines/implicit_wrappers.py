"""Wrappers of the ``implicit`` library's models (ALS, BPR, item-item neighbours) behind
rbmrec's recommender interface.

``implicit`` is imported lazily, inside the wrappers, with BLAS limited to one thread.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import TrainingDivergedError
from rbmrec.evaluation.baselines._base import _Base, _check_min_rating, confidence_matrix
from rbmrec.models.persistence import register
from rbmrec.models.validation import (
    check_float,
    check_int,
    check_kept,
    check_seed_int,
)


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

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

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

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

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

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

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
