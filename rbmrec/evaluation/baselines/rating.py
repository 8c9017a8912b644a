"""Rating baselines: the global mean and the user + item bias model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from rbmrec.evaluation.baselines._base import _Base
from rbmrec.models.persistence import register
from rbmrec.models.validation import (
    check_float,
    check_int,
    check_pairs,
)


@register
class GlobalMean(_Base):
    """Predicts the mean training rating for every pair.

    ``recommend`` scores every item with that mean, so lists are items in id order: a floor
    for ranking metrics, not a ranking model.
    """

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

    def __init__(self) -> None:
        self.mean_: float | None = None
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> GlobalMean:
        """Fit on raw ratings.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Raw ratings; every stored entry is a rating.

        Returns
        -------
        GlobalMean
            ``self``.
        """
        m = self._fit_input(user_items)
        self.mean_ = float(np.mean(m.data, dtype=np.float64))
        self.n_users_, self.n_items_ = m.shape
        return self

    def predict(self, userids: Sequence[int], itemids: Sequence[int]) -> np.ndarray:
        """Predicted ratings of the pairs ``(userids[k], itemids[k])``.

        Parameters
        ----------
        userids, itemids : array_like of int, shape (n,)
            User and item indices.

        Returns
        -------
        ndarray of float64, shape (n,)
        """
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

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

    def __init__(
        self, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10, clip: bool = True
    ) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter
        self.clip = clip
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> BiasBaseline:
        """Fit on raw ratings.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Raw ratings; every stored entry is a rating.

        Returns
        -------
        BiasBaseline
            ``self``.
        """
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
        """Predicted ratings of the pairs ``(userids[k], itemids[k])``.

        Parameters
        ----------
        userids, itemids : array_like of int, shape (n,)
            User and item indices.

        Returns
        -------
        ndarray of float64, shape (n,)
        """
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
