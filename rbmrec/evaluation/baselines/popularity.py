"""Popularity: the same most-rated items for everyone."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rbmrec.evaluation.baselines._base import _Base, _check_min_rating
from rbmrec.models.persistence import register
from rbmrec.models.validation import (
    check_kept,
)


def _item_counts(m: sp.csr_matrix) -> np.ndarray:
    return np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)


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

    #: The module path model files store (the package that exports the class).
    __module__ = "rbmrec.evaluation.baselines"

    def __init__(self, min_rating: float | None = None) -> None:
        self.min_rating = min_rating
        self.n_items_ = None  # type: ignore[assignment]

    def fit(self, user_items: sp.csr_matrix) -> Popularity:
        """Fit on raw ratings.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Raw ratings; every stored entry is a rating.

        Returns
        -------
        Popularity
            ``self``.
        """
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
