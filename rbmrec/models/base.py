"""The recommender base: the one ``recommend`` every rbmrec recommender shares.

``recommend`` follows the contract of the ``implicit`` library (0.7.3), so
``implicit.evaluation`` and users' code drive rbmrec's models and baselines alike:

- ``recommend(userid, user_items, N=10, filter_already_liked_items=True, filter_items=None,
  recalculate_user=False, items=None)``;
- a single user (``userid`` an int or a numpy integer): 1-D ``int32`` ids and ``float32``
  scores of length ``min(N, number of candidate items)``, best first, no padding;
- a batch (``userid`` a 1-D array-like): 2-D arrays ``(n_users, N)``; rows with fewer than
  ``N`` candidates are padded with id ``-1`` and score :data:`PAD_SCORE`
  (``-finfo(float32).max``, what ``implicit.utils._batch_call`` pads with);
- ties in score go to the lower item id, so a batch row equals the single-user result.

A model supplies only the scores of a block of users (:meth:`Recommender._score_block`)
and its ``n_users`` / ``n_items``; the base checks the arguments, scores blocks of
:attr:`Recommender._SCORE_BLOCK` users at a time and selects with
:func:`rbmrec.engine.topn.top_n`. Every fault has one exception class, the same in every
model:

=====================================================  ==========================================
fault                                                  exception
=====================================================  ==========================================
model not fitted                                       :class:`~rbmrec.errors.NotFittedError`
``N`` not an int                                       ``TypeError``
``N < 1``                                              ``ValueError``
``userid`` not integer                                 ``TypeError``
``userid`` 2-D or more                                 ``ValueError``
user index out of range                                :class:`~rbmrec.errors.UnknownUserError`
``user_items`` not scipy sparse, or not numbers        ``TypeError``
``user_items`` malformed, NaN or infinite              :class:`~rbmrec.errors.DataError`
``user_items`` wrong number of rows or columns         ``ValueError``
``filter_items`` / ``items`` not integer               ``TypeError``
``filter_items`` / ``items`` out of range              ``IndexError``
both ``filter_items`` and ``items``                    ``ValueError``
``recalculate_user`` on a model without fold-in        ``NotImplementedError``
=====================================================  ==========================================
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import PAD_SCORE, top_n
from rbmrec.models import persistence
from rbmrec.models.validation import check_n, check_user_rows, check_userids, excluded_items

__all__ = ["PAD_SCORE", "Recommender"]


class Recommender:
    """Base class of every rbmrec recommender: ``recommend`` (``implicit``'s contract) and
    ``save``.

    Subclasses define ``n_users_`` and ``n_items_`` (or override :attr:`n_users` /
    :attr:`n_items`), ``_check_fitted`` (raising :class:`~rbmrec.errors.NotFittedError`) and
    :meth:`_score_block`, and may set the class attributes below.
    """

    #: Users scored per block: bounds the dense (block, n_items) score matrix.
    _SCORE_BLOCK: int = 1024
    #: With ``recalculate_user=True``, any non-negative ``userid`` is accepted (the user is
    #: folded in from ``user_items``; users added after ``fit``). Otherwise user indices
    #: must lie in ``[0, n_users)`` whatever ``recalculate_user`` is.
    _FOLDS_IN_NEW_USERS: bool = False
    #: Scores always come from the ``user_items`` rows (item-based neighbour models), so
    #: ``user_items`` is needed even without filtering or fold-in.
    _SCORES_FROM_ROWS: bool = False

    n_users_: int
    n_items_: int

    @property
    def n_users(self) -> int:
        """Number of users seen in ``fit``."""
        self._check_fitted()
        return int(self.n_users_)

    @property
    def n_items(self) -> int:
        """Number of items of the fitted model."""
        self._check_fitted()
        return int(self.n_items_)

    def _check_fitted(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score_block(
        self, users: np.ndarray, rows: sp.csr_matrix | None, recalculate_user: bool
    ) -> np.ndarray:  # pragma: no cover - overridden
        """Scores of every item for a block of users (higher is better).

        Parameters
        ----------
        users : ndarray of int64, shape (n,)
            Checked user indices.
        rows : scipy.sparse.csr_matrix, shape (n, n_items), or None
            The block's rows of ``user_items`` (a copy, never the caller's matrix), or None
            when ``recommend`` got none and needs none.
        recalculate_user : bool
            Score from ``rows`` instead of the stored training data.

        Returns
        -------
        ndarray of float32 or float64, shape (n, n_items)
            NaN and ``-inf`` scores are never recommended.
        """
        raise NotImplementedError

    def _check_rows(self, user_items: Any, recalculate_user: bool) -> None:
        """Model-specific checks of ``user_items`` as given, before its CSR conversion.

        Called after the base's checks; the default checks nothing more.
        """

    def _block_size(self) -> int:
        """Users per scoring block (:attr:`_SCORE_BLOCK` unless a model derives it)."""
        return self._SCORE_BLOCK

    def recommend(
        self,
        userid: Any,
        user_items: sp.spmatrix | None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Any = None,
        recalculate_user: bool = False,
        items: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one user or a batch of users (``implicit``'s contract).

        Parameters
        ----------
        userid : int or array-like of int, shape (n,)
            User index, or indices, in ``[0, n_users)`` (any non-negative index with
            ``recalculate_user`` on models that fold in new users).
        user_items : scipy.sparse matrix, shape (1, n_items) or (n, n_items)
            The requested users' rows (``train[userid]``), one per requested user, in order.
            Their stored entries (whatever their values) are excluded when
            ``filter_already_liked_items``; with ``recalculate_user`` the scores come from
            them. May be None when neither needs it (and the model does not score from
            rows).
        N : int, default 10
            Number of items, ``>= 1``.
        filter_already_liked_items : bool, default True
            Exclude the items stored in each user's row of ``user_items``.
        filter_items : array-like of int, optional
            Items never recommended.
        recalculate_user : bool, default False
            Compute the users' scores from ``user_items`` instead of the stored training
            data (models without fold-in raise NotImplementedError).
        items : array-like of int, optional
            Restrict the candidates to these items (not together with ``filter_items``).

        Returns
        -------
        ids : ndarray of int32, shape (k,) or (n, N)
            Best first, ties by the lower item id. A single user gets
            ``k = min(N, candidates)`` ids (a huge ``N`` costs no more than the number of
            items); a batch gets ``N`` columns padded with ``-1``.
        scores : ndarray of float32, same shape as ids
            Descending; batch padding is :data:`PAD_SCORE`.

        Raises
        ------
        NotFittedError, TypeError, ValueError, UnknownUserError, DataError,
        NotImplementedError
            As listed in :mod:`rbmrec.models.base`.
        """
        self._check_fitted()
        n_users, n_items = self.n_users, self.n_items
        N = check_n(N)
        fold_in_any = bool(recalculate_user) and self._FOLDS_IN_NEW_USERS
        users, single = check_userids(userid, n_users, fold_in_any)
        rows = None
        needed = filter_already_liked_items or recalculate_user or self._SCORES_FROM_ROWS
        if needed or user_items is not None:
            rows = check_user_rows("user_items", user_items, users.size, n_items)
            self._check_rows(user_items, bool(recalculate_user))
        excluded = excluded_items(n_items, filter_items, items)
        n_cols = min(N, n_items) if single else N
        ids = np.full((users.size, n_cols), -1, dtype=np.int32)
        scores = np.full((users.size, n_cols), PAD_SCORE, dtype=np.float32)
        block = self._block_size()
        for lo in range(0, users.size, block):
            sl = slice(lo, lo + block)
            sub = rows[sl] if rows is not None else None
            S = np.asarray(self._score_block(users[sl], sub, bool(recalculate_user)))
            if S.dtype not in (np.float32, np.float64):
                S = S.astype(np.float64)
            if filter_already_liked_items:
                ids[sl], scores[sl] = top_n(S, n_cols, sub.indptr, sub.indices, excluded)
            else:
                ids[sl], scores[sl] = top_n(S, n_cols, excluded=excluded)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def save(self, path: str | os.PathLike) -> Any:
        """Save the fitted model (``.npz`` + JSON metadata, no pickle); load it with
        :func:`rbmrec.load`."""
        self._check_fitted()
        return persistence.save(self, path)
