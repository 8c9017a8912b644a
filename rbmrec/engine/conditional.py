"""Conditional RBM kernels: the hidden offset ``r D`` of batch rows and the fused ``D`` step.

In the conditional RBM (Salakhutdinov, Mnih & Hinton 2007, section 4) a binary pattern
``r`` (which groups a row has rated, or is known to have seen) adds ``r D`` to the hidden
input, and ``D`` learns from ``r^T (p(h | v_data) - p(h | v_model))``. The pattern is
sparse and binary, so both reduce to sums of rows: of ``D`` for the offset, of the batch's
hidden differences for the gradient. These kernels add them in the same order as
``scipy.sparse`` products (pattern entries in CSR order; for the gradient, batch rows in
batch order), so they give bitwise the same numbers, in parallel and without the dense
(n_cols, n_hidden) gradient array of ``R[rows].T @ h_diff``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine.sparse_binary import batch_item_major

#: Pattern columns per parallel chunk of :func:`pattern_momentum_update` (a constant, so
#: the work split, and hence the results, never depend on the thread count).
_COL_CHUNK = 64


@njit(cache=True, parallel=True)
def pattern_offset(indptr, indices, rows, D, out):
    """``out[r] = sum of D[indices[p]]`` over the stored entries of pattern row ``rows[r]``.

    That is ``R[rows] @ D`` for a binary pattern ``R``, entries added in CSR order.

    Parameters
    ----------
    indptr, indices : ndarray
        CSR structure of the pattern: (n_rows + 1,), (nnz,) column indices.
    rows : ndarray of int64, shape (n_batch,)
    D : ndarray, shape (n_cols, n_hidden)
    out : ndarray, shape (n_batch, n_hidden), D's dtype
        Overwritten.
    """
    n_hidden = D.shape[1]
    for r in prange(rows.shape[0]):
        o = out[r]
        for j in range(n_hidden):
            o[j] = 0.0
        u = rows[r]
        for p in range(indptr[u], indptr[u + 1]):
            d = D[indices[p]]
            for j in range(n_hidden):
                o[j] += d[j]


@njit(cache=True, parallel=True)
def _column_momentum(cptr, crow, h_diff, D, vD, scale, mom, lr_wd):
    n_cols, n_hidden = D.shape
    n_chunks = (n_cols + _COL_CHUNK - 1) // _COL_CHUNK
    for ch in prange(n_chunks):
        g = np.empty(n_hidden, dtype=D.dtype)
        for i in range(ch * _COL_CHUNK, min(n_cols, (ch + 1) * _COL_CHUNK)):
            for j in range(n_hidden):
                g[j] = 0.0
            for e in range(cptr[i], cptr[i + 1]):
                h = h_diff[crow[e]]
                for j in range(n_hidden):
                    g[j] += h[j]
            for j in range(n_hidden):
                vt = mom * vD[i, j] + scale * g[j] - lr_wd * D[i, j]
                vD[i, j] = vt
                D[i, j] += vt


@njit(cache=True)
def pattern_momentum_update(indptr, indices, rows, h_diff, D, vD, scale, mom, lr_wd):
    """Fused gradient and momentum step of ``D``: ``g = R[rows]^T h_diff``, then
    ``vD = mom vD + scale g - lr_wd D; D += vD`` (the trainer's rule, see
    :func:`rbmrec.engine.update.momentum_update`).

    Each column's gradient row is summed over the batch rows in batch order in a small
    buffer and applied at once; columns the batch does not hold only decay.

    Parameters
    ----------
    indptr, indices : ndarray
        CSR structure of the binary pattern ``R``: (n_rows + 1,), (nnz,).
    rows : ndarray of int64, shape (n_batch,)
    h_diff : ndarray, shape (n_batch, n_hidden)
        ``p(h | v_data) - p(h | v_model)`` per batch row.
    D, vD : ndarray, shape (n_cols, n_hidden)
        Conditional weights and their velocities, updated in place.
    scale, mom, lr_wd : scalar of D's dtype
        ``learning_rate / batch_size``, momentum, ``learning_rate * weight_decay``.
    """
    # Batch rows of each column in batch order (the pattern has no values: its indices
    # stand in for the data argument, and the copied "weights" are not used).
    cptr, crow, _ = batch_item_major(indptr, indices, indices, rows, D.shape[0])
    _column_momentum(cptr, crow, h_diff, D, vD, scale, mom, lr_wd)
