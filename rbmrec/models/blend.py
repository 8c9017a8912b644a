"""Linear blends of rating models, weighted on validation data."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import top_n
from rbmrec.errors import DataError, NotFittedError
from rbmrec.models._common import as_index_array, check_csr, check_int

log = logging.getLogger(__name__)


class BlendedRatingModel:
    """Least-squares blend of rating models (e.g. user- and item-based RatingRBM).

    Every member is fitted on the training ratings (members whose ``fit`` accepts
    ``validation`` get it, for early stopping); then ``prediction = w0 + sum_m w_m p_m`` with
    weights from ridge regression of the validation ratings on the members' validation
    predictions. The test split is never seen. Salakhutdinov, Mnih & Hinton (2007) blend
    their RBMs with SVD the same way for the Netflix Prize.

    Parameters
    ----------
    members : sequence of (str, model)
        Named rating models with ``fit`` and ``predict(userids, itemids)``.
    ridge : float, default 1e-3
        L2 penalty on the member weights (not the intercept), relative to the number of
        validation ratings.

    Attributes
    ----------
    coef_ : ndarray, shape (n_members,)
    intercept_ : float
    fit_seconds_ : dict of str to float
    """

    def __init__(self, members: Sequence[tuple[str, Any]], ridge: float = 1e-3) -> None:
        self.members = members
        self.ridge = ridge
        self.coef_: np.ndarray | None = None

    def fit(self, user_items: sp.spmatrix, validation: sp.spmatrix | None = None):
        """Fit every member on ``user_items`` and the blend weights on ``validation``.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
        validation : scipy.sparse matrix, shape (n_users, n_items)
            Required: the blend weights are learned on it.
        """
        if not self.members:
            raise ValueError("members must name at least one model")
        names = [n for n, _ in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique, got {names}")
        if validation is None:
            raise ValueError("a blend learns its weights on validation ratings: pass validation")
        X = check_csr("user_items", user_items)
        V = check_csr("validation", validation)
        if V.shape != X.shape:
            raise DataError(f"validation has shape {V.shape} but user_items has {X.shape}")
        self.n_users_, self.n_items_ = X.shape
        vu, vi = V.nonzero()
        vr = np.asarray(V[vu, vi]).ravel()
        cols = []
        self.fit_seconds_ = {}
        for name, model in self.members:
            t0 = time.perf_counter()
            try:
                model.fit(user_items, validation=validation)
            except TypeError:
                model.fit(user_items)
            self.fit_seconds_[name] = time.perf_counter() - t0
            cols.append(np.asarray(model.predict(vu, vi), dtype=np.float64))
        P = np.column_stack(cols)
        mean = P.mean(0)
        Pc = P - mean
        lam = self.ridge * len(vr)
        self.coef_ = np.linalg.solve(Pc.T @ Pc + lam * np.eye(P.shape[1]), Pc.T @ (vr - vr.mean()))
        self.intercept_ = float(vr.mean() - mean @ self.coef_)
        self.valid_rmse_ = float(np.sqrt(np.mean((P @ self.coef_ + self.intercept_ - vr) ** 2)))
        log.info(
            "blend weights %s, intercept %.4f",
            dict(zip(names, self.coef_, strict=True)),
            self.intercept_,
        )
        return self

    def predict(self, userids: Any, itemids: Any) -> np.ndarray:
        """Blended rating predictions, float64 (n_pairs,)."""
        if self.coef_ is None:
            raise NotFittedError("this BlendedRatingModel is not fitted yet; call fit() first")
        u = as_index_array("userids", userids, self.n_users_)
        i = as_index_array("itemids", itemids, self.n_items_)
        if len(u) != len(i):
            raise ValueError(f"userids has {len(u)} entries but itemids has {len(i)}")
        out = np.full(len(u), self.intercept_)
        for w, (_, model) in zip(self.coef_, self.members, strict=True):
            out += w * model.predict(u, i)
        return out

    def recommend(self, userid: Any, user_items: sp.spmatrix, N: int = 10, **kwargs: Any):
        """Rank by the blended predicted rating (delegates filtering to the first member).

        Only a single user id is supported; see :meth:`RatingRBM.recommend` for arguments.
        """
        check_int("N", N, 1)
        if np.ndim(userid) > 0:
            raise TypeError("BlendedRatingModel.recommend takes a single userid")
        items = np.arange(self.n_items_)
        s = self.predict(np.full(self.n_items_, int(userid)), items)
        excluded = np.zeros(self.n_items_, dtype=np.bool_)
        if kwargs.get("filter_already_liked_items", True):
            excluded[sp.csr_matrix(user_items).indices] = True
        if kwargs.get("filter_items") is not None:
            excluded[as_index_array("filter_items", kwargs["filter_items"], self.n_items_)] = True
        ids, scores = top_n(s[None, :], N, excluded=excluded)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]
