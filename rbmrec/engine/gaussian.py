"""Kernels for Gaussian visible units with a fixed per-unit standard deviation ``sigma``.

Energy (``docs/architecture.md``)::

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij (v_i / sigma_i) W_ij h_j

so ``p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i)`` and
``p(v_i | h) = N(b_i + sigma_i (W h)_i, sigma_i^2)``.

Two layouts:

- dense (``gaussian_*``): CSR rows in which a missing entry means 0 and the negative phase
  reconstructs every visible unit. These share the kernels of :mod:`rbmrec.engine.bernoulli`
  (``family=GAUSSIAN``).
- masked (``gaussian_masked_*``): like softmax rating rows, only the stored entries of a row are
  visible units (the row's RBM has just those units); unstored units are unobserved and neither
  enter the free energy nor are reconstructed. Signatures mirror :mod:`rbmrec.engine.softmax`,
  with ``data`` float values in place of ``levels`` and ``sigma`` after ``c``.

Determinism follows the same scheme as the binary kernels: ``min(N_CHUNKS, n_batch)`` gradient
buffers reduced in a fixed order, one random state per batch row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import softplus
from rbmrec.engine.bernoulli import (
    GAUSSIAN,
    N_CHUNKS,
    _act,
    _cd_row,
    _gibbs_row,
    _mean,
    _reduce_chunks,
    cd,
    free_energy,
    gibbs,
    hidden_probs,
    visible_mean,
)

# ----------------------------------------------------------------------------- dense layout


def gaussian_hidden_probs(indptr, indices, data, rows, W, c, sigma, hidden_offset):
    """``p(h = 1 | v)`` of CSR rows (missing = 0); (n_batch, n_hidden), dtype of ``W``.

    Parameters
    ----------
    indptr : int32/int64 (n_rows + 1,)
    indices : int32 (nnz,)
    data : float (nnz,)
    rows : int64 (n_batch,)
    W : float32/float64 (n_visible, n_hidden)
    c : (n_hidden,)
    sigma : (n_visible,) positive standard deviations
    hidden_offset : (n_batch, n_hidden) or (0, n_hidden)
    """
    inv = (1.0 / sigma).astype(W.dtype)
    return hidden_probs(indptr, indices, data, rows, W, c, inv, hidden_offset)


def gaussian_free_energy(indptr, indices, data, rows, W, b, c, sigma, hidden_offset):
    """``F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v / sigma).W[:, j])``.

    Returns float64 (n_batch,).
    """
    return free_energy(indptr, indices, data, rows, W, b, c, sigma, GAUSSIAN, hidden_offset)


def gaussian_visible_mean(hprob, W, b, sigma):
    """``E[v | h] = b + sigma * (W h)`` per row of ``hprob``; (n, n_visible)."""
    return visible_mean(hprob, W, b, sigma, GAUSSIAN)


def gaussian_gibbs(indptr, indices, data, rows, W, b, c, sigma, hidden_offset, steps, states):
    """Visible states after ``steps`` Gibbs sweeps from each row; (n_batch, n_visible)."""
    return gibbs(
        indptr, indices, data, rows, W, b, c, sigma, GAUSSIAN, hidden_offset, steps, states
    )


def gaussian_cd(
    indptr,
    indices,
    data,
    rows,
    W,
    b,
    c,
    sigma,
    hidden_offset,
    cd_steps,
    states,
    chain_v,
    use_chain,
    gW,
    gb,
    gc,
    h_diff,
):
    """CD-k / PCD-k statistics with all units reconstructed; see :func:`bernoulli.cd`.

    ``gW`` gets ``(v_i / sigma_i) h_j`` and ``gb`` gets ``v_i / sigma_i^2`` statistics.
    """
    return cd(
        indptr,
        indices,
        data,
        rows,
        W,
        b,
        c,
        sigma,
        GAUSSIAN,
        hidden_offset,
        cd_steps,
        states,
        chain_v,
        use_chain,
        gW,
        gb,
        gc,
        h_diff,
    )


# ----------------------------------------------------------------------------- masked layout
#
# The masked kernels run the chain helpers of :mod:`rbmrec.engine.bernoulli` on the row's
# stored entries only (``units = indices[p0:p1]``), so the chain body is the dense one.


@njit(cache=True)
def _out_offsets(indptr, rows):
    """Start of each batch row's entries in a concatenated per-entry output; (n_batch + 1,)."""
    n = rows.shape[0]
    off = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        off[r + 1] = off[r] + indptr[rows[r] + 1] - indptr[rows[r]]
    return off


@njit(cache=True, parallel=True)
def gaussian_masked_free_energy(indptr, indices, data, rows, W, b, c, sigma, hidden_offset):
    """Free energy of each row's RBM over its stored entries only; float64 (n_batch,)."""
    n_batch = rows.shape[0]
    nh = W.shape[1]
    inv_sigma = 1.0 / sigma.astype(np.float64)
    out = np.empty(n_batch, dtype=np.float64)
    for r in prange(n_batch):
        row = rows[r]
        p0, p1 = indptr[row], indptr[row + 1]
        vals = data[p0:p1].astype(np.float64)
        act = np.empty(nh, dtype=np.float64)
        _act(indices[p0:p1], vals, W, c, inv_sigma, hidden_offset, r, act)
        f = 0.0
        for p in range(p0, p1):
            i = indices[p]
            f += 0.5 * ((vals[p - p0] - b[i]) * inv_sigma[i]) ** 2
        for j in range(nh):
            f -= softplus(act[j])
        out[r] = f
    return out


def gaussian_masked_hidden_probs(indptr, indices, data, rows, W, c, sigma, hidden_offset):
    """``p(h = 1 | observed entries)``; identical to the dense layout's positive phase."""
    return gaussian_hidden_probs(indptr, indices, data, rows, W, c, sigma, hidden_offset)


@njit(cache=True, parallel=True)
def gaussian_masked_visible_mean(indptr, indices, rows, W, b, sigma, hprob):
    """``E[v_i | h]`` of the stored entries of each row, in CSR order; (nnz of rows,)."""
    off = _out_offsets(indptr, rows)
    out = np.empty(off[-1], dtype=W.dtype)
    for r in prange(rows.shape[0]):
        row = rows[r]
        p0, p1 = indptr[row], indptr[row + 1]
        m = np.empty(p1 - p0, dtype=np.float64)
        _mean(indices[p0:p1], hprob[r], W, b, sigma, GAUSSIAN, m)
        for q in range(m.shape[0]):
            out[off[r] + q] = m[q]
    return out


@njit(cache=True, parallel=True)
def gaussian_masked_gibbs(
    indptr, indices, data, rows, W, b, c, sigma, hidden_offset, steps, states
):
    """Values of the stored entries after ``steps`` Gibbs sweeps; (nnz of rows,), CSR order."""
    off = _out_offsets(indptr, rows)
    nh = W.shape[1]
    inv_sigma = 1.0 / sigma.astype(np.float64)
    out = np.empty(off[-1], dtype=W.dtype)
    for r in prange(rows.shape[0]):
        row = rows[r]
        p0, p1 = indptr[row], indptr[row + 1]
        v = data[p0:p1].astype(np.float64)
        m = np.empty(v.shape[0], dtype=np.float64)
        act = np.empty(nh, dtype=np.float64)
        hp = np.empty(nh, dtype=np.float64)
        hs = np.empty(nh, dtype=np.float64)
        _gibbs_row(indices[p0:p1], v, steps, W, b, c, sigma, inv_sigma, GAUSSIAN, hidden_offset,
                   states, r, act, hp, hs, m)  # fmt: skip
        for q in range(v.shape[0]):
            out[off[r] + q] = v[q]
    return out


@njit(cache=True, parallel=True)
def gaussian_masked_cd(
    indptr,
    indices,
    data,
    rows,
    W,
    b,
    c,
    sigma,
    hidden_offset,
    cd_steps,
    states,
    chain_data,
    use_chain,
    gW,
    gb,
    gc,
    h_diff,
):
    """CD-k / PCD-k statistics when only each row's stored entries are visible units.

    The negative phase reconstructs the stored entries only. With ``use_chain`` the chain
    starts at ``chain_data[p]`` (float, (nnz,), one value per stored entry of the whole CSR
    matrix: persistent chains per row) and its final state is written back.

    Fills ``gW``, ``gb``, ``gc`` (positive minus negative statistics summed over the batch)
    and ``h_diff`` (n_batch, n_hidden) = ``p(h | v_data) - p(h | v_k)``. Returns float64 (2,):
    the squared error between the data and the mean-field reconstruction of the stored
    entries, summed, and the number of stored entries.
    """
    n_batch = rows.shape[0]
    nv, nh = W.shape
    inv_sigma = 1.0 / sigma.astype(np.float64)
    n_chunks = min(N_CHUNKS, n_batch)
    bufW = np.zeros((max(n_chunks, 1), nv, nh), dtype=gW.dtype)
    bufb = np.zeros((max(n_chunks, 1), nv), dtype=np.float64)
    bufc = np.zeros((max(n_chunks, 1), nh), dtype=np.float64)
    err = np.zeros(max(n_chunks, 1), dtype=np.float64)
    cnt = np.zeros(max(n_chunks, 1), dtype=np.float64)
    for ch in prange(n_chunks):
        lo = ch * n_batch // n_chunks
        hi = (ch + 1) * n_batch // n_chunks
        act = np.empty(nh, dtype=np.float64)
        hp0 = np.empty(nh, dtype=np.float64)
        hp = np.empty(nh, dtype=np.float64)
        hs = np.empty(nh, dtype=np.float64)
        for r in range(lo, hi):
            row = rows[r]
            p0, p1 = indptr[row], indptr[row + 1]
            units = indices[p0:p1]
            vd = data[p0:p1].astype(np.float64)
            m = np.empty(p1 - p0, dtype=np.float64)
            v = chain_data[p0:p1].astype(np.float64) if use_chain else vd.copy()
            _cd_row(r, ch, units, vd, units, v, use_chain, cd_steps, W, b, c, sigma, inv_sigma,
                    GAUSSIAN, hidden_offset, states, act, hp0, hp, hs, m, bufW, bufb, bufc,
                    h_diff)  # fmt: skip
            if use_chain:
                for q in range(p1 - p0):
                    chain_data[p0 + q] = v[q]
            # Squared error of the mean-field reconstruction of the stored entries.
            _mean(units, hp0, W, b, sigma, GAUSSIAN, m)
            for q in range(p1 - p0):
                err[ch] += (vd[q] - m[q]) ** 2
            cnt[ch] += p1 - p0
    _reduce_chunks(bufW, bufb, bufc, n_chunks, gW, gb, gc)
    res = np.zeros(2, dtype=np.float64)
    for ch in range(n_chunks):
        res[0] += err[ch]
        res[1] += cnt[ch]
    return res
