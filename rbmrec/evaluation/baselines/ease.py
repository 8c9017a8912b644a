"""EASE: the closed-form item-item top-N model of Steck (2019)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from rbmrec.errors import DataError
from rbmrec.evaluation.baselines._base import _Base, _check_min_rating, confidence_matrix
from rbmrec.models._estimator import blas_threads
from rbmrec.models.persistence import check_file_array, register
from rbmrec.models.validation import check_float, check_int, check_kept

#: Default ``max_items``: 30,000 items need 14.4 GB for the two dense matrices of the fit.
MAX_ITEMS = 30_000


def ease_fit_bytes(n_items: int) -> int:
    """Peak memory of :class:`EASE`'s fit beyond the training matrix, in bytes.

    Two dense float64 ``(n_items, n_items)`` matrices: the Gram matrix ``X^T X + lambda I``,
    factored in place, and its inverse, which becomes the weights ``B`` in place. The fitted
    model keeps one of them (``n_items^2 x 8`` bytes).

    Parameters
    ----------
    n_items : int

    Returns
    -------
    int
    """
    return 2 * 8 * int(n_items) ** 2


def ease_weights(X: sp.csr_matrix, regularization: float) -> np.ndarray:
    """EASE's item-item weights ``B = I - P diag(1 / diag(P))``, ``P = (X^T X + lambda I)^-1``.

    ``B`` is the least-squares solution of ``X ~ X B`` under ``diag(B) = 0`` with an L2
    penalty ``lambda ||B||^2`` (Steck 2019, eq. 8).

    Parameters
    ----------
    X : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Interaction weights (1 per interaction, or confidences).
    regularization : float
        ``lambda > 0``.

    Returns
    -------
    ndarray of float64, shape (n_items, n_items)
        ``B``, zero on the diagonal; a user's scores are ``x_u @ B``.
    """
    G = np.asarray((X.T @ X).toarray(), dtype=np.float64)
    G[np.diag_indices_from(G)] += regularization
    # G is symmetric positive definite: invert it through its Cholesky factor, in place.
    factor = scipy.linalg.cho_factor(G, lower=True, overwrite_a=True, check_finite=False)
    P = scipy.linalg.cho_solve(factor, np.eye(G.shape[0]), overwrite_b=True, check_finite=False)
    del factor, G
    P /= -np.diag(P).copy()[None, :]
    P[np.diag_indices_from(P)] = 0.0
    return P


@register
class EASE(_Base):
    """Embarrassingly Shallow Autoencoder (Steck, "Embarrassingly Shallow Autoencoders for
    Sparse Data", WWW 2019): a closed-form item-item model for top-N recommendation.

    Fits the item-item weights ``B`` of :func:`ease_weights` on the interaction matrix ``X``
    (every rated item counts 1 with ``weighting="binary"``); a user's score for item ``j``
    is ``sum_i x_ui B_ij`` over their rated items. Scores come from the ``user_items`` rows
    given to :meth:`recommend`, so users added after ``fit`` are scored from their rows too.

    Parameters
    ----------
    regularization : float, default 500.0
        ``lambda`` of the L2 penalty (> 0). MovieLens-sized data take values in the hundreds
        to thousands; the evaluation benchmarks tune it on a validation carve.
    weighting : {"binary", "rating"}, default "binary"
        Entries of ``X``: 1 per rated item, or the rating (:func:`confidence_matrix`).
    min_rating : float, optional
        Ignore ratings below this value (default: every rated item is an interaction).
    max_items : int, default 30000
        Largest catalogue ``fit`` accepts. The fit holds two dense float64 item x item
        matrices (:func:`ease_fit_bytes`: 14.4 GB at 30,000 items) and the model keeps
        one; a larger catalogue is refused with an error naming the memory it would need.
    num_threads : int, default 0
        BLAS threads for the fit (0: BLAS's own setting).

    Attributes
    ----------
    weights_ : ndarray of float64, shape (n_items, n_items)
        ``B``, zero on the diagonal.
    """

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"
    _SCORES_FROM_ROWS = True

    def __init__(
        self,
        regularization: float = 500.0,
        weighting: Literal["binary", "rating"] = "binary",
        min_rating: float | None = None,
        max_items: int = MAX_ITEMS,
        num_threads: int = 0,
    ) -> None:
        self.regularization = regularization
        self.weighting = weighting
        self.min_rating = min_rating
        self.max_items = max_items
        self.num_threads = num_threads
        self.n_items_ = None  # type: ignore[assignment]

    def _check_params(self) -> None:
        check_float("regularization", self.regularization, 0.0, strict=True)
        if self.weighting not in ("binary", "rating"):
            raise ValueError(f"weighting must be 'binary' or 'rating', got {self.weighting!r}")
        _check_min_rating(self.min_rating)
        check_int("max_items", self.max_items, 1)
        check_int("num_threads", self.num_threads, 0)

    def fit(self, user_items: sp.spmatrix) -> EASE:
        """Fit on raw ratings.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Raw ratings; every stored entry is an interaction (see ``min_rating``).

        Returns
        -------
        EASE
            ``self``.

        Raises
        ------
        DataError
            No ratings, ``min_rating`` drops every one, or more than ``max_items`` items.
        """
        self._check_params()
        m = self._fit_input(user_items)
        n_items = m.shape[1]
        if n_items > self.max_items:
            gb = ease_fit_bytes(n_items) / 1e9
            raise DataError(
                f"EASE needs two dense {n_items:,} x {n_items:,} float64 matrices ({gb:.1f} GB) "
                f"for {n_items:,} items, over max_items={self.max_items:,}; raise max_items if "
                "the machine has the memory"
            )
        X = confidence_matrix(m, self.weighting, self.min_rating)
        check_kept(X.nnz, m.nnz, self.min_rating, type(self).__name__)
        with blas_threads(int(self.num_threads)):
            self.weights_ = ease_weights(X, float(self.regularization))
        self.n_users_, self.n_items_ = m.shape
        return self

    def _score_block(self, users, user_items, recalc):
        X = confidence_matrix(user_items, self.weighting, self.min_rating)
        return np.asarray(X @ self.weights_, dtype=np.float64)

    def _get_state(self):
        return {"weights": self.weights_}, {"params": self._params(), "n_users": self.n_users_}

    @classmethod
    def _from_state(cls, arrays, meta):
        obj = cls(**meta["params"])
        n_items = np.shape(arrays.get("weights", ()))[0] if np.ndim(arrays.get("weights")) else 0
        obj.weights_ = check_file_array(
            arrays, "weights", (n_items, n_items), dims=("n_items", "n_items"),
            dtype=np.float64, finite=True,
        )  # fmt: skip
        obj.n_users_, obj.n_items_ = int(meta["n_users"]), n_items
        return obj
