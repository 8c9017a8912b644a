"""Linear blends of rating models, weighted on validation data."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError, ModelFileError, NotFittedError
from rbmrec.models import persistence
from rbmrec.models._estimator import accepts_validation
from rbmrec.models._sparse import stored_entries
from rbmrec.models.base import Recommender
from rbmrec.models.ensemble import combine, fit_ridge
from rbmrec.models.validation import check_csr, check_float, check_int, check_pairs

log = logging.getLogger(__name__)


@persistence.register
class BlendedRatingModel(Recommender):
    """Least-squares blend of rating models (e.g. user- and item-based RatingRBM).

    Every member is fitted on the training ratings (members whose ``fit`` accepts
    ``validation`` get it, for early stopping); then ``prediction = w0 + sum_j w_j x_j`` with
    weights from ridge regression of the validation ratings on features ``x`` of the
    members' validation predictions: the predictions ``p_m`` themselves and, with
    ``support=True``, also ``p_m * z_u``, ``p_m * z_i``, ``z_u`` and ``z_i``, where ``z_u``
    and ``z_i`` are the standardised ``log(1 + count)`` of the user's and the item's training
    ratings (so a user-based member can weigh more for users with many ratings, an
    item-based one for well-rated items). The test split is never seen. Salakhutdinov, Mnih
    & Hinton (2007) blend their RBMs with SVD the same way for the Netflix Prize; the
    support features are the Netflix-Prize blending practice (Töscher, Jahrer & Bell 2009).

    Parameters
    ----------
    members : sequence of (str, model)
        Named rating models with ``fit`` and ``predict(userids, itemids)``.
    ridge : float, default 1e-3
        L2 penalty on the feature weights (not the intercept), relative to the number of
        validation ratings.
    support : bool, default False
        Add the support features described above.
    clip : bool, default True
        Clip blended predictions to the range of the training ratings.
    cv_folds : int, default 5
        Folds of the cross-validation on the validation ratings that estimates the blend's
        out-of-sample error (``cv_rmse_``); 0 skips it.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
        Weights of the features, the members' predictions first (in ``members`` order).
    intercept_ : float
    valid_rmse_ : float
        RMSE on the validation ratings the weights were fitted on (optimistic).
    cv_rmse_ : float
        Cross-validated RMSE on the validation ratings: weights fitted on ``cv_folds - 1``
        parts, error measured on the remaining one. Compare blends and single models with
        this, not ``valid_rmse_``. NaN when ``cv_folds=0``.
    fit_seconds_ : dict of str to float

    Notes
    -----
    ``save`` writes every member inside the blend's file (each member's class must be a
    registered rbmrec model); :func:`rbmrec.load` rebuilds them.
    """

    def __init__(
        self,
        members: Sequence[tuple[str, Any]],
        ridge: float = 1e-3,
        *,
        support: bool = False,
        clip: bool = True,
        cv_folds: int = 5,
    ) -> None:
        self.members = members
        self.ridge = ridge
        self.support = support
        self.clip = clip
        self.cv_folds = cv_folds
        self.coef_: np.ndarray | None = None

    def _features(self, P: np.ndarray, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Blend features (n_pairs, n_features) from member predictions P (n_pairs, n_m)."""
        if not self.support:
            return P
        zu = (np.log1p(self._user_count[u]) - self._zu[0]) / self._zu[1]
        zi = (np.log1p(self._item_count[i]) - self._zi[0]) / self._zi[1]
        return np.column_stack([P, P * zu[:, None], P * zi[:, None], zu, zi])

    def _solve(self, F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Ridge weights and intercept of y on F (:func:`~rbmrec.models.ensemble.fit_ridge`)."""
        return fit_ridge(F, y, self.ridge)

    def _output(
        self, F: np.ndarray, coef: np.ndarray, intercept: float, clip: bool | None = None
    ) -> np.ndarray:
        """Blend of features F (n_pairs, n_features), clipped when ``clip`` (default
        ``self.clip``)."""
        out = combine(list(coef), list(F.T), intercept)
        return np.clip(out, *self._range) if (self.clip if clip is None else clip) else out

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
        check_float("ridge", self.ridge, 0.0)
        check_int("cv_folds", self.cv_folds, 0)
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (no cross-validation) or >= 2")
        X = check_csr("user_items", user_items, duplicates="error")
        V = check_csr("validation", validation, duplicates="error")
        if V.shape != X.shape:
            raise DataError(f"validation has shape {V.shape} but user_items has {X.shape}")
        self.n_users_, self.n_items_ = X.shape
        vu, vi, vr = stored_entries(V)
        self._range = (float(X.data.min()), float(X.data.max()))
        self._user_count = np.diff(X.indptr).astype(np.float64)
        self._item_count = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
        lu, li = np.log1p(self._user_count), np.log1p(self._item_count)
        self._zu = (float(lu.mean()), float(lu.std()) or 1.0)
        self._zi = (float(li.mean()), float(li.std()) or 1.0)
        cols = []
        self.fit_seconds_ = {}
        for name, model in self.members:
            t0 = time.perf_counter()
            if accepts_validation(model.fit):
                model.fit(user_items, validation=validation)
            else:
                model.fit(user_items)
            self.fit_seconds_[name] = time.perf_counter() - t0
            cols.append(np.asarray(model.predict(vu, vi), dtype=np.float64))
        F = self._features(np.column_stack(cols), vu, vi)
        self.cv_rmse_ = float("nan")
        if self.cv_folds:
            if len(vr) < self.cv_folds:
                raise DataError(f"{len(vr)} validation ratings cannot make {self.cv_folds} folds")
            # Fixed fold assignment: the estimate is reproducible and the same for every blend
            # fitted on the same validation ratings, so blends compare on equal terms.
            fold = np.random.default_rng(0).permutation(len(vr)) % self.cv_folds
            sse = 0.0
            for k in range(self.cv_folds):
                held = fold == k
                coef, icpt = self._solve(F[~held], vr[~held])
                sse += float(np.sum((self._output(F[held], coef, icpt) - vr[held]) ** 2))
            self.cv_rmse_ = float(np.sqrt(sse / len(vr)))
        self.coef_, self.intercept_ = self._solve(F, vr)
        self.valid_rmse_ = float(
            np.sqrt(np.mean((self._output(F, self.coef_, self.intercept_) - vr) ** 2))
        )
        log.info(
            "blend weights %s, intercept %.4f",
            dict(zip(names, self.coef_, strict=False)),
            self.intercept_,
        )
        return self

    def predict(self, userids: Any, itemids: Any) -> np.ndarray:
        """Blended rating predictions, float64 (n_pairs,), clipped to the training range
        when ``clip``."""
        self._check_fitted()
        u, i = check_pairs(userids, itemids, self.n_users_, self.n_items_)
        return self._blend(u, i, self.clip)

    def _check_fitted(self) -> None:
        if self.coef_ is None:
            raise NotFittedError("this BlendedRatingModel is not fitted yet; call fit() first")

    def _blend(self, u: np.ndarray, i: np.ndarray, clip: bool) -> np.ndarray:
        """Blended scores of checked index arrays ``u``, ``i`` (n_pairs,), clipped or not."""
        P = np.column_stack([np.asarray(m.predict(u, i), np.float64) for _, m in self.members])
        return self._output(self._features(P, u, i), self.coef_, self.intercept_, clip)

    #: Pairs scored per block in :meth:`recommend`: blocks hold this many pairs over
    #: ``n_items`` (bounds the (block * n_items) pair arrays).
    _PAIRS_PER_BLOCK = 1 << 20

    def _block_size(self) -> int:
        return max(1, self._PAIRS_PER_BLOCK // max(self.n_items_, 1))

    def _score_block(
        self, users: np.ndarray, rows: sp.csr_matrix | None, recalculate_user: bool
    ) -> np.ndarray:
        """Blended predicted ratings of every item, float64 (len(users), n_items), not
        clipped (``predict`` clips them when ``clip``): clipping would tie every item
        predicted above the top rating, and the top-N would fall back to item-id order.

        Raises
        ------
        NotImplementedError
            With ``recalculate_user``: the blend has no fold-in.
        """
        if recalculate_user:
            raise NotImplementedError("BlendedRatingModel cannot fold in users (recalculate_user)")
        n_items = self.n_items_
        items = np.arange(n_items, dtype=np.int64)
        S = self._blend(np.repeat(users, n_items), np.tile(items, len(users)), clip=False)
        return S.reshape(len(users), n_items)

    # ------------------------------------------------------------------ files
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Each member's arrays under ``"m<k>__<name>"`` and its class and metadata under
        ``"members"``, with the blend's weights and support statistics."""
        arrays: dict[str, np.ndarray] = {
            "coef": np.asarray(self.coef_, dtype=np.float64),
            "user_count": self._user_count,
            "item_count": self._item_count,
        }
        members = []
        for k, (name, model) in enumerate(self.members):
            cls = type(model)
            key = f"{cls.__module__}:{cls.__qualname__}"
            if persistence.registered_class(key) is not cls:
                raise TypeError(f"member {name!r} ({cls.__name__}) is not a registered model")
            a, mm = model._get_state()
            arrays.update({f"m{k}__{n}": v for n, v in a.items()})
            members.append({"name": name, "class": key, "meta": mm})
        meta = {
            "params": {"ridge": self.ridge, "support": self.support, "clip": self.clip,
                       "cv_folds": self.cv_folds},
            "members": members, "intercept": self.intercept_, "n_users": self.n_users_,
            "n_items": self.n_items_, "range": list(self._range), "zu": list(self._zu),
            "zi": list(self._zi), "valid_rmse": self.valid_rmse_, "cv_rmse": self.cv_rmse_,
            "fit_seconds": self.fit_seconds_,
        }  # fmt: skip
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> BlendedRatingModel:
        members = []
        for k, m in enumerate(meta["members"]):
            member_cls = persistence.registered_class(m["class"])
            if member_cls is None:
                raise ModelFileError(f"member {m['name']!r} has an unknown class {m['class']!r}")
            prefix = f"m{k}__"
            sub = {n[len(prefix) :]: v for n, v in arrays.items() if n.startswith(prefix)}
            members.append((m["name"], member_cls._from_state(sub, m["meta"])))
        model = cls(members, **meta["params"])
        model.n_users_, model.n_items_ = int(meta["n_users"]), int(meta["n_items"])
        n_features = len(members) * (3 if model.support else 1) + (2 if model.support else 0)
        coef = persistence.check_file_array(
            arrays, "coef", (n_features,), dims=("n_features",), kind="f", finite=True
        )
        model.coef_ = np.asarray(coef, dtype=np.float64)
        model.intercept_ = float(meta["intercept"])
        model._user_count = persistence.check_file_array(
            arrays, "user_count", (model.n_users_,), dims=("n_users",), kind="f", finite=True
        )
        model._item_count = persistence.check_file_array(
            arrays, "item_count", (model.n_items_,), dims=("n_items",), kind="f", finite=True
        )
        model._range = tuple(float(x) for x in meta["range"])
        model._zu = tuple(float(x) for x in meta["zu"])
        model._zi = tuple(float(x) for x in meta["zi"])
        model.valid_rmse_, model.cv_rmse_ = float(meta["valid_rmse"]), float(meta["cv_rmse"])
        model.fit_seconds_ = dict(meta["fit_seconds"])
        for name, member in members:
            if (member.n_users, member.n_items) != (model.n_users_, model.n_items_):
                raise ModelFileError(f"member {name!r} does not have the blend's shape")
        return model
