"""Ranking quality measured inside the models layer (validation during ``fit``), numpy only.

The evaluation layer has its own metrics; models cannot import it (layers), so the few
measures a model's ``fit`` chooses by live here, once.
"""

from __future__ import annotations

import numpy as np


def ndcg_sum(ids: np.ndarray, rel_indptr: np.ndarray, rel_indices: np.ndarray) -> float:
    """Sum over rows of NDCG of the lists ``ids`` against binary relevant sets.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, k)
        Ranked item ids, best first; ``-1`` pads short lists.
    rel_indptr, rel_indices : ndarray of int, shapes (n_rows + 1,) and (n_relevant,)
        CSR structure of each row's relevant items.

    Returns
    -------
    float
        Sum of the rows' NDCG@k (a row with no relevant item adds 0).
    """
    k = ids.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for r in range(ids.shape[0]):
        rel = rel_indices[rel_indptr[r] : rel_indptr[r + 1]]
        if rel.size:
            hits = np.isin(ids[r], rel)
            total += float(hits @ disc) / float(disc[: min(k, rel.size)].sum())
    return total
