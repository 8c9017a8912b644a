"""Row-by-row kernels of a softmax RBM: hidden units, free energy, sampling, level scores.

Each kernel runs ``prange`` over the batch rows (or pairs, or users) of the CSR layout of
:mod:`rbmrec.engine.softmax` and writes only its own outputs, so results do not depend on
the number of threads: the hidden input and probabilities of rows, their free energy,
Gibbs sampling from the data, the visible probabilities of observed groups, and, for
prediction and ranking, the predictive distribution over the levels of unobserved groups
(:func:`softmax_pair_probs`) and the score of every cell's level distribution
(:func:`softmax_level_scores`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import exp_nonpositive, sigmoid, softplus
from rbmrec.engine._random import uniform
from rbmrec.engine.softmax_grouping import _batch_offsets
from rbmrec.engine.softmax_logits import _DOT_MATH, _draw_level, _visible_softmax


@njit(cache=True, parallel=True)
def softmax_hidden_input(indptr, indices, levels, rows, W, c, hidden_offset):
    """Hidden pre-activations ``c + offset + sum_i W[i, v_i, :]`` of each batch row.

    Parameters
    ----------
    indptr, indices, levels : ndarray
        CSR of observed groups, shapes (n_rows + 1,), (nnz,), (nnz,) int8.
    rows : ndarray of int64, shape (n_batch,)
        Rows to process.
    W : ndarray, shape (n_visible, n_levels, n_hidden)
    c : ndarray, shape (n_hidden,)
    hidden_offset : ndarray, shape (n_batch, n_hidden) or (0, n_hidden)

    Returns
    -------
    ndarray of W.dtype, shape (n_batch, n_hidden)
    """
    n_batch = rows.shape[0]
    n_hidden = c.shape[0]
    out = np.empty((n_batch, n_hidden), dtype=W.dtype)
    has_off = hidden_offset.shape[0] > 0
    for r in prange(n_batch):
        u = rows[r]
        for j in range(n_hidden):
            out[r, j] = c[j]
        if has_off:
            for j in range(n_hidden):
                out[r, j] += hidden_offset[r, j]
        for p in range(indptr[u], indptr[u + 1]):
            i = indices[p]
            k = levels[p]
            for j in range(n_hidden):
                out[r, j] += W[i, k, j]
    return out


@njit(cache=True, parallel=True)
def softmax_hidden_probs(indptr, indices, levels, rows, W, c, hidden_offset):
    """p(h_j = 1 | v) for each batch row, shape (n_batch, n_hidden).

    Same arguments as :func:`softmax_hidden_input`.
    """
    x = softmax_hidden_input(indptr, indices, levels, rows, W, c, hidden_offset)
    for r in prange(x.shape[0]):
        for j in range(x.shape[1]):
            x[r, j] = sigmoid(x[r, j])
    return x


@njit(cache=True, parallel=True)
def softmax_free_energy(indptr, indices, levels, rows, W, b, c, hidden_offset):
    """Free energy ``F(v) = -sum_i b[i, v_i] - sum_j softplus(x_j)`` per batch row.

    ``x`` is the hidden pre-activation of :func:`softmax_hidden_input`. Accumulated in
    float64.

    Returns
    -------
    ndarray of float64, shape (n_batch,)
    """
    x = softmax_hidden_input(indptr, indices, levels, rows, W, c, hidden_offset)
    n_batch = rows.shape[0]
    out = np.empty(n_batch, dtype=np.float64)
    for r in prange(n_batch):
        u = rows[r]
        f = 0.0
        for p in range(indptr[u], indptr[u + 1]):
            f -= b[indices[p], levels[p]]
        for j in range(x.shape[1]):
            f -= softplus(np.float64(x[r, j]))
        out[r] = f
    return out


@njit(cache=True, parallel=True)
def softmax_gibbs(indptr, indices, levels, rows, W, b, c, hidden_offset, steps, states):
    """Sampled levels after ``steps`` Gibbs sweeps from the data, for the observed groups.

    Returns
    -------
    ndarray of int8, shape (nnz of the batch rows,)
        In CSR order of ``rows``.
    """
    n_batch = rows.shape[0]
    n_hidden = c.shape[0]
    n_levels = W.shape[1]
    off = _batch_offsets(indptr, rows)
    out = np.empty(off[n_batch], dtype=np.int8)
    has_off = hidden_offset.shape[0] > 0
    for r in prange(n_batch):
        u = rows[r]
        start = indptr[u]
        n_obs = indptr[u + 1] - start
        probs = np.empty((1, n_levels), dtype=np.float64)
        x = np.empty(n_hidden, dtype=np.float64)
        h = np.empty((1, n_hidden), dtype=np.float64)
        q0 = off[r]
        for t in range(n_obs):
            out[q0 + t] = levels[start + t]
        for _ in range(steps):
            for j in range(n_hidden):
                x[j] = c[j] + (hidden_offset[r, j] if has_off else 0.0)
            for t in range(n_obs):
                i = indices[start + t]
                k = out[q0 + t]
                for j in range(n_hidden):
                    x[j] += W[i, k, j]
            for j in range(n_hidden):
                h[0, j] = 1.0 if uniform(states, r) < sigmoid(x[j]) else 0.0
            for t in range(n_obs):
                _visible_softmax(indices[start + t], h, 0, W, b, probs, 0)
                out[q0 + t] = _draw_level(probs, 0, uniform(states, r))
    return out


@njit(cache=True, parallel=True)
def softmax_visible_probs(indptr, indices, rows, W, b, hprob):
    """p(v_i = k | h) for each observed group of each batch row, h given per row.

    Parameters
    ----------
    hprob : ndarray, shape (n_batch, n_hidden)
        Hidden values (probabilities for a mean-field pass, or a binary sample).

    Returns
    -------
    ndarray of float64, shape (nnz of the batch rows, n_levels)
    """
    n_batch = rows.shape[0]
    off = _batch_offsets(indptr, rows)
    out = np.empty((off[n_batch], W.shape[1]), dtype=np.float64)
    for r in prange(n_batch):
        u = rows[r]
        q = off[r]
        for p in range(indptr[u], indptr[u + 1]):
            _visible_softmax(indices[p], hprob, r, W, b, out, q)
            q += 1
    return out


def softmax_pair_probs(hidden, pair_row, pair_item, W, b, exact):
    """Predictive distribution over levels of unobserved groups.

    Parameters
    ----------
    hidden : ndarray, shape (n_rows, n_hidden)
        Per-row hidden *probabilities* (mean field) or hidden *pre-activations* (exact).
    pair_row : ndarray of int64, shape (n_pairs,)
        Row of ``hidden`` for each pair.
    pair_item : ndarray of int64, shape (n_pairs,)
        Visible group whose level distribution is wanted.
    W, b : ndarray
        Parameters, shapes (n_visible, n_levels, n_hidden), (n_visible, n_levels).
    exact : bool
        False: one mean-field pass, ``p_k ∝ exp(b_ik + sum_j p_j W_ikj)``.
        True: the exact marginal with the hidden units summed out (Salakhutdinov et al.
        2007, Eq. 7), ``p_k ∝ exp(b_ik) prod_j (1 + exp(x_j + W_ikj))`` where ``x`` is the
        hidden pre-activation given the observed groups.

    Returns
    -------
    ndarray of float64, shape (n_pairs, n_levels)

    Notes
    -----
    A Python function choosing one of two compiled kernels, so a model compiles only the
    prediction it makes (a cold start of the default, mean-field model skips the exact one).
    """
    kernel = _pair_probs_exact if exact else _pair_probs_mean_field
    return kernel(hidden, pair_row, pair_item, W, b)


@njit(cache=True, parallel=True)
def _pair_probs_mean_field(hidden, pair_row, pair_item, W, b):
    """:func:`softmax_pair_probs` with ``exact=False``."""
    n_pairs = pair_row.shape[0]
    out = np.empty((n_pairs, W.shape[1]), dtype=np.float64)
    for t in prange(n_pairs):
        _visible_softmax(pair_item[t], hidden, pair_row[t], W, b, out, t)
    return out


@njit(cache=True, parallel=True)
def _pair_probs_exact(hidden, pair_row, pair_item, W, b):
    """:func:`softmax_pair_probs` with ``exact=True``."""
    n_pairs = pair_row.shape[0]
    n_levels = W.shape[1]
    n_hidden = W.shape[2]
    out = np.empty((n_pairs, n_levels), dtype=np.float64)
    for t in prange(n_pairs):
        r = pair_row[t]
        i = pair_item[t]
        top = -np.inf
        for k in range(n_levels):
            a = np.float64(b[i, k])
            for j in range(n_hidden):
                a += softplus(np.float64(hidden[r, j]) + W[i, k, j])
            out[t, k] = a
            if a > top:
                top = a
        total = 0.0
        for k in range(n_levels):
            e = np.exp(out[t, k] - top)
            out[t, k] = e
            total += e
        for k in range(n_levels):
            out[t, k] /= total
    return out


#: Rows per parallel chunk of :func:`softmax_level_scores` (each chunk allocates its
#: scratch once).
_SCORE_CHUNK = 16


@njit(cache=True, parallel=True, fastmath=_DOT_MATH)
def softmax_level_scores(logits, bias, weights, out):
    """Score of each cell's level distribution: ``sum_k p_k weights_k``, p a softmax over k.

    Used for ranking every item of a block of users at once: ``logits`` holds
    ``sum_j h_j W[group, k, j]`` from one matrix product, so the expected rating
    (``weights = values``) or the probability of a high rating (``weights`` a 0/1 mask) of
    every cell costs a few exponentials. Level-major layout: every step (max over levels,
    exponentials, sums) is a loop over contiguous cells, so all of it vectorises.

    Parameters
    ----------
    logits : ndarray, shape (n_a, n_levels, n_c)
        Hidden contributions to the level logits.
    bias : ndarray, shape (n_levels, n_c)
        Visible biases of the group of each column ``c``.
    weights : ndarray, shape (n_levels,)
    out : ndarray, shape (n_a, n_c)
        Filled with the scores.
    """
    n_a = logits.shape[0]
    n_chunks = (n_a + _SCORE_CHUNK - 1) // _SCORE_CHUNK
    for ch in prange(n_chunks):
        _score_chunk(np.int64(ch), logits, bias, weights, out)


@njit(cache=True, fastmath=_DOT_MATH)
def _score_chunk(ch, logits, bias, weights, out):
    """Rows ``ch * _SCORE_CHUNK`` onwards of :func:`softmax_level_scores`. A serial function
    called from the parallel loop, not the loop's body: Numba's parallel passes cost seconds
    of a cold start."""
    n_a, n_levels, n_c = logits.shape
    top = np.empty(n_c, dtype=logits.dtype)
    x = np.empty(n_c, dtype=logits.dtype)
    tot = np.empty(n_c, dtype=logits.dtype)
    wsum = np.empty(n_c, dtype=logits.dtype)
    bits = np.empty(n_c, dtype=np.int32)
    for a in range(ch * _SCORE_CHUNK, min(n_a, (ch + 1) * _SCORE_CHUNK)):
        la = logits[a]
        for c in range(n_c):
            top[c] = la[0, c] + bias[0, c]
        for k in range(1, n_levels):
            for c in range(n_c):
                v = la[k, c] + bias[k, c]
                top[c] = v if v > top[c] else top[c]
        tot[:] = 0.0
        wsum[:] = 0.0
        for k in range(n_levels):
            wk = weights[k]
            for c in range(n_c):
                x[c] = la[k, c] + bias[k, c] - top[c]
            # float32: a vectorised Cephes polynomial; float64: np.exp.
            exp_nonpositive(x, bits)
            for c in range(n_c):
                tot[c] += x[c]
                wsum[c] += wk * x[c]
        for c in range(n_c):
            out[a, c] = wsum[c] / tot[c]
