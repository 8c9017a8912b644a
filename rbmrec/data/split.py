"""The train/validation/test split shared by the data layer, models and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import scipy.sparse as sp


@dataclass(frozen=True)
class Split:
    """One evaluation split of a ratings matrix.

    Every part has the shape of the whole data set (n_users, n_items) and int32 indices, so
    indices mean the same thing in each part and in the data set's id maps.

    Attributes
    ----------
    train : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Ratings a model may fit on.
    test : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Held-out ratings, disjoint from ``train`` and ``validation``.
    validation : scipy.sparse.csr_matrix or None, shape (n_users, n_items)
        Ratings carved from the training part for tuning and early stopping.
    name : str
        Human-readable label, e.g. ``"u1"`` or ``"random-0.1-seed0"``.
    info : dict
        How the split was made (kind, fraction, seed, ...), recorded by the harness.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    validation: sp.csr_matrix | None = None
    name: str = "split"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items) of every part."""
        return self.train.shape
