"""Inference of a single-orientation :class:`~rbmrec.models.rating.RatingRBM`: the data
layout of its kernels, hidden states, predictive distributions and ranking scores.

:class:`RatingInference` is the part of ``RatingRBM`` that computes from fitted
parameters (``_params``, ``_train``, ``_R``, ``values_``); ``RatingRBM`` adds the
hyperparameters, ``fit``, the public API and files.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine import conditional as CR
from rbmrec.engine import gaussian as G
from rbmrec.engine import softmax as K
from rbmrec.errors import DataError
from rbmrec.models._estimator import num_threads, one_blas_thread
from rbmrec.models.validation import as_index_array, check_high_rating, check_high_threshold

#: Most softmax levels (levels are stored as int8).
MAX_LEVELS = 127


class RatingInference:
    """Kernel layout and inference of one rating RBM (user- or item-based)."""

    def _orient(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """users x items -> rows x groups of the RBM (transposed in item orientation)."""
        return X if self.orientation == "user" else sp.csr_matrix(X.T)

    def _to_levels(
        self, X: sp.csr_matrix, values: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel CSR arrays (indptr int64, indices int32, levels int8) of a ratings CSR.

        ``values``: the rating levels (default ``values_``).
        """
        values = self.values_ if values is None else values
        return (
            X.indptr.astype(np.int64),
            X.indices.astype(np.int32),
            level_index(values, X.data),
        )

    def _to_kernel(
        self,
        X: sp.csr_matrix,
        values: np.ndarray | None = None,
        scale: tuple[float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel CSR arrays: levels (softmax) or standardised float values (gaussian).

        ``values`` and ``scale`` default to the fitted ``values_`` and ``_scale``.
        """
        if self.visible == "softmax":
            return self._to_levels(X, values)
        mu, sd = self._scale if scale is None else scale
        dtype = np.dtype(self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            z = (np.asarray(X.data, dtype=np.float64) - mu) / sd
            data = z.astype(dtype)
        bad = ~np.isfinite(data)
        if bad.any():
            raise DataError(
                f"rating {float(X.data[bad][0])} is out of range for this gaussian model: "
                f"standardised by the training mean {mu:g} and spread {sd:g} it exceeds "
                f"{dtype.name}'s range"
            )
        return X.indptr.astype(np.int64), X.indices.astype(np.int32), data

    def _weights(self) -> np.ndarray:
        """The full W (n_groups, n_levels, n_hidden), materialised for factored models."""
        if self.n_factors is None:
            return self._params["W"]
        A, B = self._params["A"], self._params["B"]
        return (A.reshape(-1, A.shape[-1]) @ B).reshape(*A.shape[:-1], B.shape[1])

    def _value_bounds(self) -> tuple[float, float]:
        """Smallest and largest training rating."""
        if self.visible == "gaussian":
            return self.value_range_
        return float(self.values_[0]), float(self.values_[-1])

    def _set_public(self) -> None:
        self._infer = {}  # inference caches derived from the parameters: rebuilt on demand
        self._fitted_structure = self._structure()
        self.weights_ = self._weights()
        self.visible_bias_ = self._params["b"]
        self.hidden_bias_ = self._params["c"]
        self.conditional_weights_ = self._params.get("D")

    def _offset(self, rows: np.ndarray) -> np.ndarray:
        """Per-row hidden offset r @ D (n_batch, n_hidden), or an empty (0, n_hidden)."""
        H = self.n_hidden
        dtype = self._params["c"].dtype
        if self._R is None:
            return np.zeros((0, H), dtype=dtype)
        out = np.empty((len(rows), H), dtype=dtype)
        D = self._params["D"]
        rows = np.asarray(rows, dtype=np.int64)
        with num_threads(self.num_threads):
            CR.pattern_offset(self._R.indptr, self._R.indices, rows, D, out)  # = R[rows] @ D
        return out

    def _pair_probs(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        levels: np.ndarray,
        rows: np.ndarray,
        pair_row: np.ndarray,
        pair_group: np.ndarray,
        offset: np.ndarray,
    ) -> np.ndarray:
        """Level distributions (n_pairs, n_levels) for pairs given per-row observations."""
        W = self._weights()
        p = self._params
        with num_threads(self.num_threads):
            x = K.softmax_hidden_input(indptr, indices, levels, rows, W, p["c"], offset)
            if self.prediction == "mean_field":
                x = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow
            return K.softmax_pair_probs(
                x, pair_row, pair_group, W, p["b"], self.prediction == "exact"
            )

    def _pairs(self, userids: Any, itemids: Any, fn: Callable[..., np.ndarray]) -> np.ndarray:
        """Run ``fn`` (``_pair_probs`` or ``_pair_values``) on checked (user, item) pairs."""
        u = as_index_array("userids", userids, self.n_users_)
        i = as_index_array("itemids", itemids, self.n_items_)
        if len(u) != len(i):
            raise ValueError(f"userids has {len(u)} entries but itemids has {len(i)}")
        rows, groups = (u, i) if self.orientation == "user" else (i, u)
        uniq, pair_row = np.unique(rows, return_inverse=True)
        indptr, indices, levels = self._train
        return fn(
            indptr, indices, levels, uniq, pair_row.astype(np.int64), groups, self._offset(uniq)
        )

    def _gauss_hidden(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
        offset: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Gaussian model: p(h | observed values) per row, shape (len(rows), n_hidden)."""
        sigma = np.ones(self._params["b"].shape[0], dtype=self._params["c"].dtype)
        with num_threads(self.num_threads):
            return G.gaussian_masked_hidden_probs(
                indptr, indices, data, rows, self._weights(), self._params["c"], sigma, offset
            )

    def _to_scale(self, z: np.ndarray) -> np.ndarray:
        """Standardised conditional means -> values on the training scale, clipped to it."""
        mu, sd = self._scale
        return np.clip(mu + sd * np.asarray(z, dtype=np.float64), *self.value_range_)

    def _pair_values(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
        pair_row: np.ndarray, pair_group: np.ndarray, offset: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Gaussian model: mean-field E[v | h] for pairs, original scale, (n_pairs,)."""
        h = self._gauss_hidden(indptr, indices, data, rows, offset)
        W = self._weights()
        z = self._params["b"][pair_group] + np.einsum("ph,ph->p", W[pair_group], h[pair_row])
        return self._to_scale(z)

    def _fold_in_scores(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Ranking scores (gaussian: predicted values) of ``items`` for a folded-in row."""
        if self.visible == "softmax":
            return self._score(self._fold_in_probs(row, items))
        return self._fold_in_probs(row, items)

    def _fold_in_probs(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Level distributions (softmax) or predicted values (gaussian) for a new row."""
        if self.orientation == "item":
            raise NotImplementedError(
                'fold-in of new users needs orientation="user": an item-based RBM has no '
                "hidden state for a user (refit with the user's ratings instead)"
            )
        indptr, indices, levels = self._to_kernel(row)
        off = np.zeros((0, self.n_hidden), dtype=self._params["c"].dtype)
        if self._R is not None:
            r = row.copy()
            r.data[:] = 1.0
            off = np.asarray(r @ self._params["D"], dtype=off.dtype)
        rows = np.zeros(1, dtype=np.int64)
        fn = self._pair_probs if self.visible == "softmax" else self._pair_values
        return fn(indptr, indices, levels, rows, np.zeros(len(items), np.int64), items, off)

    def _level_weights(self) -> np.ndarray:
        """Per-level weights of the ranking score, shape (n_levels,): values or a 0/1 mask."""
        if self.recommend_score == "expected":
            return np.asarray(self.values_, dtype=np.float64)
        return (self.values_ >= self.high_threshold()).astype(np.float64)

    def high_threshold(self) -> float:
        """The lowest rating value that counts as high (``p_high``'s threshold).

        ``high_rating`` when set (checked against the levels); else the second-highest
        level, or the highest when there are only two levels (with two levels the
        second-highest is the lowest: ``P(rating >= it) = 1`` for every item, and the list
        would fall into id order).
        """
        if self.high_rating is None:
            return float(self.values_[-2] if len(self.values_) > 2 else self.values_[-1])
        return check_high_threshold(check_high_rating(self.high_rating), self.values_)

    def _score(self, probs: np.ndarray) -> np.ndarray:
        return probs @ self._level_weights()

    #: Users scored together by :meth:`_score_users` (bounds the (block, n_items, n_levels)
    #: temporaries to a few tens of MB on MovieLens-sized catalogues).
    _SCORE_BLOCK = 256

    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept in the scoring cache under ``name`` after the first call.

        The cache holds arrays derived from the fitted parameters (level-major weights, every
        item's hidden probabilities) until the parameters change (each training step and
        :meth:`_set_public` reset it), so one-user calls do not pay for them again.
        """
        cache = getattr(self, "_infer", None)
        if cache is None:
            cache = self._infer = {}
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """Ranking scores of all items for fitted users, shape (len(users), n_items), float64.

        Mean-field prediction is a matrix product: the hidden probabilities of the rows
        (users, or every item in item orientation) times the weights, then a softmax over
        levels, for a block of users at a time. The exact prediction has no such form and
        goes through the per-pair kernel.
        """
        n_items = self.n_items_
        if self.prediction == "exact":
            out = np.empty((len(users), n_items))
            items = np.arange(n_items, dtype=np.int64)
            for r, u in enumerate(users):
                out[r] = self._score(self.predict_proba(np.full(n_items, u), items))
            return out
        W = self._weights()
        b = self._params["b"]
        if self.visible == "gaussian":
            return self._gauss_score_users(users)
        n_g, n_l, H = W.shape
        hidden = self._hidden_mean_field
        # Level-major weights (n_l, n_g, H): the products below then give level-major
        # logits, the layout softmax_level_scores vectorises over.
        Wl = self._cached("W_levels", lambda: np.ascontiguousarray(W.transpose(1, 0, 2)))
        bl = self._cached("b_levels", lambda: np.ascontiguousarray(b.T))
        weights = self._level_weights().astype(W.dtype)
        out = np.empty((len(users), n_items), dtype=W.dtype)
        with num_threads(self.num_threads), one_blas_thread():
            if self.orientation == "user":
                W2 = Wl.reshape(n_l * n_g, H)
                for lo in range(0, len(users), self._SCORE_BLOCK):
                    blk = users[lo : lo + self._SCORE_BLOCK]
                    logits = (hidden(blk) @ W2.T).reshape(len(blk), n_l, n_g)
                    K.softmax_level_scores(logits, bl, weights, out[lo : lo + len(blk)])
                return out
            # Hidden state of every item's RBM, (n_items, H): shared by all user blocks and
            # calls through the scoring cache.
            h_items = self._cached("h_items", lambda: hidden(np.arange(n_items, dtype=np.int64)))
            for lo in range(0, len(users), self._SCORE_BLOCK):
                blk = users[lo : lo + self._SCORE_BLOCK]
                # (n_items, H) @ (H, n_l * blk) -> (n_items, n_l, blk)
                Wb = Wl[:, blk].reshape(n_l * len(blk), H)
                logits = (h_items @ Wb.T).reshape(n_items, n_l, len(blk))
                tmp = np.empty((n_items, len(blk)), dtype=W.dtype)
                K.softmax_level_scores(logits, np.ascontiguousarray(bl[:, blk]), weights, tmp)
                out[lo : lo + len(blk)] = tmp.T
        return out

    def _hidden_mean_field(self, rows: np.ndarray) -> np.ndarray:
        """Softmax model: p(h | training ratings) of fitted ``rows``, (len(rows), n_hidden)."""
        indptr, indices, levels = self._train
        with num_threads(self.num_threads):
            x = K.softmax_hidden_input(
                indptr, indices, levels, rows, self._weights(), self._params["c"],
                self._offset(rows),
            )  # fmt: skip
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow

    def _gauss_score_users(self, users: np.ndarray) -> np.ndarray:
        """Gaussian model: predicted values of all items for fitted users, (len(users), n_items)."""
        W, b = self._weights(), self._params["b"]
        indptr, indices, data = self._train

        hidden = partial(self._gauss_hidden, indptr, indices, data)
        if self.orientation == "user":
            z = hidden(users, self._offset(users)) @ W.T + b
        else:
            every = np.arange(self.n_items_, dtype=np.int64)
            h_items = self._cached("h_items", lambda: hidden(every, self._offset(every)))
            z = (h_items @ W[users].T).T
            z += b[users][:, None]
        return self._to_scale(z)


#: A rating maps to its nearest level when within this fraction of the level's magnitude
#: (or of the smallest gap between levels, for a level at or near 0): float32 input rounds
#: a level by at most 6e-8 of it.
_LEVEL_RTOL = 1e-6


def level_match(values: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(level, is_level)``: the nearest level of each rating in ``data`` (0-based int64)
    and whether the rating counts as that level, both shape (n,).

    A rating counts as a level when it lies within ``_LEVEL_RTOL`` of it relative to the
    level's magnitude (at least the smallest gap between levels), and never farther than a
    thousandth of that gap. So a level stored in float32 (rounded up or down) maps to its
    level at any scale, and a value between levels (or NaN) does not, at any scale.
    ``values`` are sorted, distinct and at least two.
    """
    values = np.asarray(values, dtype=np.float64)
    x = np.asarray(data, dtype=np.float64)
    hi = np.clip(np.searchsorted(values, x), 1, len(values) - 1)
    lo = hi - 1
    lv = np.where(np.abs(x - values[lo]) <= np.abs(values[hi] - x), lo, hi)
    gap = float(np.min(np.diff(values)))
    tol = np.minimum(_LEVEL_RTOL * np.maximum(np.abs(values), gap), 1e-3 * gap)
    return lv, np.abs(x - values[lv]) <= tol[lv]  # NaN compares False


def level_index(values: np.ndarray, data: np.ndarray) -> np.ndarray:
    """0-based level (int8) of each rating in ``data``: its nearest value in ``values``, by
    the rule of :func:`level_match`.

    Parameters
    ----------
    values : ndarray, shape (n_levels,)
        The sorted, distinct rating levels seen in fit.
    data : ndarray, shape (nnz,)
        Ratings to map.

    Returns
    -------
    ndarray of int8, shape (nnz,)

    Raises
    ------
    DataError
        If a rating is not one of the levels.
    """
    out = np.empty(len(data), dtype=np.int8)
    values = np.asarray(values, dtype=np.float64)
    # In blocks: level_match's float64 and int64 temporaries are 40 bytes per rating (4 GB
    # at 100M ratings), and blocks that stay in cache are also faster.
    for a in range(0, len(data), _LEVEL_BLOCK):
        part = data[a : a + _LEVEL_BLOCK]
        # Ratings that equal a level exactly (all of them in fit) need no nearest-level rule.
        lv = np.minimum(np.searchsorted(values, part), len(values) - 1)
        if np.array_equal(values[lv], part):
            out[a : a + len(part)] = lv
            continue
        lv, ok = level_match(values, part)
        if not ok.all():
            x = np.asarray(part, dtype=np.float64)
            raise DataError(
                f"rating {float(x[~ok][0])} is not one of the levels seen in fit: "
                f"{np.asarray(values, dtype=np.float64).tolist()}"
            )
        out[a : a + len(part)] = lv
    return out


#: Ratings per block of :func:`level_index`.
_LEVEL_BLOCK = 1 << 20
