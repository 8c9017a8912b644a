"""Kernels for RBMs whose visible units are all reconstructed: binary and Gaussian.

Input rows arrive as CSR ``(indptr, indices, data)`` in which a missing entry means the value
0. The positive phase touches only the stored entries of a row (its hidden pre-activation is
``c + sum over stored entries of (v_i / sigma_i) W[i]``); the negative phase reconstructs every
visible unit, densely.

Binary (Bernoulli) and Gaussian visible units share every kernel: with the per-unit standard
deviation ``sigma`` fixed to 1 the Gaussian hidden conditional equals the binary one, and the two
families differ only in ``p(v|h)`` and in the free energy's visible term. The ``family`` argument
(:data:`BERNOULLI` or :data:`GAUSSIAN`) selects them, so Numba compiles one kernel per dtype, not
two. The public wrappers below (``bernoulli_*``) and those in :mod:`rbmrec.engine.gaussian` fix
the family and validate nothing: the model layer checks shapes and dtypes once.

Energies (``docs/architecture.md``)::

    bernoulli:  E(v, h) = -b.v - c.h - v^T W h
    gaussian:   E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h
                          - sum_ij (v_i / sigma_i) W_ij h_j

Gradient statistics (positive minus negative phase, summed over the batch rows) are the
derivatives of ``-E`` that ``d log p(v) / d theta = E_data[-dE/dtheta] - E_model[-dE/dtheta]``
needs: ``(v_i / sigma_i) h_j`` for ``W``, ``v_i / sigma_i^2`` for ``b`` (the ``-b_i / sigma_i^2``
part cancels between the phases) and ``h_j`` for ``c``.

Determinism: a CD kernel splits the batch into ``min(N_CHUNKS, n_batch)`` contiguous chunks, each
with its own gradient buffer, processes the chunks in a ``prange`` and reduces the buffers in
chunk order, so the result does not depend on the number of threads. Row ``r`` of the batch
draws its random numbers only from ``states[r]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import sigmoid, softplus
from rbmrec.engine._random import normal, uniform

BERNOULLI = 0
GAUSSIAN = 1
#: Number of gradient buffers a CD kernel reduces (fixed so results ignore the thread count).
N_CHUNKS = 16


# ----------------------------------------------------------------------------- helpers


@njit(cache=True, inline="always")
def _act_sparse(indptr, indices, data, row, W, c, inv_sigma, hidden_offset, r, act):
    """Hidden pre-activation of CSR row ``row`` (batch position ``r``) into float64 ``act``."""
    nh = act.shape[0]
    for j in range(nh):
        act[j] = c[j]
    if hidden_offset.shape[0] > 0:
        for j in range(nh):
            act[j] += hidden_offset[r, j]
    for p in range(indptr[row], indptr[row + 1]):
        i = indices[p]
        x = data[p] * inv_sigma[i]
        if x != 0.0:
            for j in range(nh):
                act[j] += x * W[i, j]


@njit(cache=True, inline="always")
def _act_dense(v, W, c, inv_sigma, hidden_offset, r, act):
    """Hidden pre-activation of a dense visible vector ``v`` into float64 ``act``."""
    nh = act.shape[0]
    for j in range(nh):
        act[j] = c[j]
    if hidden_offset.shape[0] > 0:
        for j in range(nh):
            act[j] += hidden_offset[r, j]
    for i in range(v.shape[0]):
        x = v[i] * inv_sigma[i]
        if x != 0.0:
            for j in range(nh):
                act[j] += x * W[i, j]


@njit(cache=True, inline="always")
def _visible_mean_row(h, W, b, sigma, family, out):
    """``E[v | h]`` of every visible unit for hidden vector ``h`` (states or probabilities)."""
    nv, nh = W.shape
    for i in range(nv):
        s = 0.0
        for j in range(nh):
            if h[j] != 0.0:
                s += W[i, j] * h[j]
        if family == GAUSSIAN:
            out[i] = b[i] + sigma[i] * s
        else:
            out[i] = sigmoid(b[i] + s)


@njit(cache=True, inline="always")
def _sample_visible_row(mean, sigma, family, states, r, v):
    """Draw ``v ~ p(v | h)`` from its mean: Bernoulli trials or ``N(mean, sigma^2)``."""
    for i in range(mean.shape[0]):
        if family == GAUSSIAN:
            v[i] = mean[i] + sigma[i] * normal(states, r)
        else:
            v[i] = 1.0 if uniform(states, r) < mean[i] else 0.0


@njit(cache=True, inline="always")
def _sample_hidden_row(act, states, r, hp, hs):
    """Hidden probabilities ``hp = sigmoid(act)`` and a binary sample ``hs`` of them."""
    for j in range(act.shape[0]):
        hp[j] = sigmoid(act[j])
        hs[j] = 1.0 if uniform(states, r) < hp[j] else 0.0


# ----------------------------------------------------------------------------- kernels


@njit(cache=True, parallel=True)
def hidden_probs(indptr, indices, data, rows, W, c, inv_sigma, hidden_offset):
    """``p(h_j = 1 | v)`` for CSR rows ``rows``; shape (n_batch, n_hidden), dtype of ``W``.

    ``inv_sigma`` (n_visible,) is ``1 / sigma`` (ones for binary units).
    """
    n_batch = rows.shape[0]
    nh = W.shape[1]
    out = np.empty((n_batch, nh), dtype=W.dtype)
    for r in prange(n_batch):
        act = np.empty(nh, dtype=np.float64)
        _act_sparse(indptr, indices, data, rows[r], W, c, inv_sigma, hidden_offset, r, act)
        for j in range(nh):
            out[r, j] = sigmoid(act[j])
    return out


@njit(cache=True, parallel=True)
def free_energy(indptr, indices, data, rows, W, b, c, sigma, family, hidden_offset):
    """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of CSR rows; float64 (n_batch,).

    Missing entries are zeros, so for Gaussian units every visible unit contributes its
    quadratic term.
    """
    n_batch = rows.shape[0]
    nv, nh = W.shape
    inv_sigma = 1.0 / sigma.astype(np.float64)
    base = 0.0
    if family == GAUSSIAN:
        for i in range(nv):
            base += 0.5 * (b[i] * inv_sigma[i]) ** 2
    out = np.empty(n_batch, dtype=np.float64)
    for r in prange(n_batch):
        row = rows[r]
        act = np.empty(nh, dtype=np.float64)
        _act_sparse(indptr, indices, data, row, W, c, inv_sigma, hidden_offset, r, act)
        f = base
        for p in range(indptr[row], indptr[row + 1]):
            i = indices[p]
            x = float(data[p])
            if family == GAUSSIAN:
                f += 0.5 * ((x - b[i]) ** 2 - float(b[i]) ** 2) * inv_sigma[i] ** 2
            else:
                f -= x * b[i]
        for j in range(nh):
            f -= softplus(act[j])
        out[r] = f
    return out


@njit(cache=True, parallel=True)
def visible_mean(hprob, W, b, sigma, family):
    """Mean-field reconstruction ``E[v | h]`` with ``h`` given per row; (n, n_visible)."""
    n = hprob.shape[0]
    nv = W.shape[0]
    out = np.empty((n, nv), dtype=W.dtype)
    for r in prange(n):
        m = np.empty(nv, dtype=np.float64)
        _visible_mean_row(hprob[r], W, b, sigma, family, m)
        for i in range(nv):
            out[r, i] = m[i]
    return out


@njit(cache=True, parallel=True)
def gibbs(indptr, indices, data, rows, W, b, c, sigma, family, hidden_offset, steps, states):
    """Run ``steps`` Gibbs sweeps ``h ~ p(h|v), v ~ p(v|h)`` from each CSR row.

    Returns the final visible states, dense, shape (n_batch, n_visible), dtype of ``W``.
    """
    n_batch = rows.shape[0]
    nv, nh = W.shape
    inv_sigma = 1.0 / sigma.astype(np.float64)
    out = np.zeros((n_batch, nv), dtype=W.dtype)
    for r in prange(n_batch):
        row = rows[r]
        v = np.zeros(nv, dtype=np.float64)
        for p in range(indptr[row], indptr[row + 1]):
            v[indices[p]] = data[p]
        act = np.empty(nh, dtype=np.float64)
        hp = np.empty(nh, dtype=np.float64)
        hs = np.empty(nh, dtype=np.float64)
        m = np.empty(nv, dtype=np.float64)
        for _ in range(steps):
            _act_dense(v, W, c, inv_sigma, hidden_offset, r, act)
            _sample_hidden_row(act, states, r, hp, hs)
            _visible_mean_row(hs, W, b, sigma, family, m)
            _sample_visible_row(m, sigma, family, states, r, v)
        for i in range(nv):
            out[r, i] = v[i]
    return out


@njit(cache=True, parallel=True)
def cd(
    indptr,
    indices,
    data,
    rows,
    W,
    b,
    c,
    sigma,
    family,
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
    """CD-k / PCD-k gradient statistics of a batch of CSR rows.

    Positive phase: ``p(h | v_data)`` over the stored entries. Negative phase: a Gibbs chain
    started at ``v_data`` (CD) or, when ``use_chain``, at ``chain_v[r]`` (persistent CD; the
    final state is written back), run for ``cd_steps`` sweeps; its statistics use the sampled
    ``v_k`` and ``p(h | v_k)``.

    Fills ``gW`` (n_visible, n_hidden), ``gb`` (n_visible,), ``gc`` (n_hidden,) with positive
    minus negative statistics summed over the batch, and ``h_diff`` (n_batch, n_hidden) with
    ``p(h | v_data) - p(h | v_k)`` per row. ``chain_v`` has shape (>= n_batch, n_visible) when
    ``use_chain`` (chains are matched to batch positions), else may be empty.

    Returns float64 (2,): the summed squared error between the data and its mean-field
    reconstruction ``E[v | p(h | v_data)]`` over all visible units, and ``n_batch * n_visible``.
    """
    n_batch = rows.shape[0]
    nv, nh = W.shape
    inv_sigma = 1.0 / sigma.astype(np.float64)
    n_chunks = min(N_CHUNKS, n_batch)
    bufW = np.zeros((max(n_chunks, 1), nv, nh), dtype=gW.dtype)
    bufb = np.zeros((max(n_chunks, 1), nv), dtype=np.float64)
    bufc = np.zeros((max(n_chunks, 1), nh), dtype=np.float64)
    err = np.zeros(max(n_chunks, 1), dtype=np.float64)
    for ch in prange(n_chunks):
        lo = ch * n_batch // n_chunks
        hi = (ch + 1) * n_batch // n_chunks
        act = np.empty(nh, dtype=np.float64)
        hp0 = np.empty(nh, dtype=np.float64)
        hp = np.empty(nh, dtype=np.float64)
        hs = np.empty(nh, dtype=np.float64)
        v = np.empty(nv, dtype=np.float64)
        m = np.empty(nv, dtype=np.float64)
        for r in range(lo, hi):
            row = rows[r]
            # Positive phase over the stored entries only.
            _act_sparse(indptr, indices, data, row, W, c, inv_sigma, hidden_offset, r, act)
            _sample_hidden_row(act, states, r, hp0, hs)
            for p in range(indptr[row], indptr[row + 1]):
                i = indices[p]
                x = data[p] * inv_sigma[i]
                if x != 0.0:
                    for j in range(nh):
                        bufW[ch, i, j] += x * hp0[j]
                    bufb[ch, i] += x * inv_sigma[i]
            for j in range(nh):
                bufc[ch, j] += hp0[j]
            # Reconstruction error of the mean-field reconstruction (a monitoring metric).
            _visible_mean_row(hp0, W, b, sigma, family, m)
            e = 0.0
            for i in range(nv):
                e += m[i] * m[i]
            for p in range(indptr[row], indptr[row + 1]):
                i = indices[p]
                e += (data[p] - m[i]) ** 2 - m[i] * m[i]
            err[ch] += e
            # Negative phase: a chain from the data (CD) or from the persistent state (PCD).
            if use_chain:
                for i in range(nv):
                    v[i] = chain_v[r, i]
                _act_dense(v, W, c, inv_sigma, hidden_offset, r, act)
                _sample_hidden_row(act, states, r, hp, hs)
            for step in range(cd_steps):
                _visible_mean_row(hs, W, b, sigma, family, m)
                _sample_visible_row(m, sigma, family, states, r, v)
                _act_dense(v, W, c, inv_sigma, hidden_offset, r, act)
                if step < cd_steps - 1:
                    _sample_hidden_row(act, states, r, hp, hs)
                else:
                    for j in range(nh):
                        hp[j] = sigmoid(act[j])
            for i in range(nv):
                x = v[i] * inv_sigma[i]
                if x != 0.0:
                    for j in range(nh):
                        bufW[ch, i, j] -= x * hp[j]
                    bufb[ch, i] -= x * inv_sigma[i]
            for j in range(nh):
                bufc[ch, j] -= hp[j]
                h_diff[r, j] = hp0[j] - hp[j]
            if use_chain:
                for i in range(nv):
                    chain_v[r, i] = v[i]
    # Fixed-order reduction of the chunk buffers, parallel over visible units.
    for i in prange(nv):
        for j in range(nh):
            sw = 0.0
            for ch in range(n_chunks):
                sw += bufW[ch, i, j]
            gW[i, j] = sw
        sb = 0.0
        for ch in range(n_chunks):
            sb += bufb[ch, i]
        gb[i] = sb
    for j in range(nh):
        sc = 0.0
        for ch in range(n_chunks):
            sc += bufc[ch, j]
        gc[j] = sc
    total = 0.0
    for ch in range(n_chunks):
        total += err[ch]
    res = np.empty(2, dtype=np.float64)
    res[0] = total
    res[1] = float(n_batch * nv)
    return res


# ----------------------------------------------------------------------------- binary wrappers


def _ones(W: np.ndarray) -> np.ndarray:
    return np.ones(W.shape[0], dtype=W.dtype)


def bernoulli_hidden_probs(indptr, indices, data, rows, W, c, hidden_offset):
    """``p(h = 1 | v)`` of binary-visible CSR rows; (n_batch, n_hidden), dtype of ``W``.

    Parameters
    ----------
    indptr : int32/int64 (n_rows + 1,)
    indices : int32 (nnz,)
    data : float (nnz,)
        Visible values (0/1, or probabilities); missing entries are 0.
    rows : int64 (n_batch,)
        CSR rows to process.
    W : float32/float64 (n_visible, n_hidden)
    c : (n_hidden,)
    hidden_offset : (n_batch, n_hidden) or (0, n_hidden) for none
    """
    return hidden_probs(indptr, indices, data, rows, W, c, _ones(W), hidden_offset)


def bernoulli_free_energy(indptr, indices, data, rows, W, b, c, hidden_offset):
    """``F(v) = -b.v - sum_j softplus(c_j + v.W[:, j])``; float64 (n_batch,)."""
    return free_energy(indptr, indices, data, rows, W, b, c, _ones(W), BERNOULLI, hidden_offset)


def bernoulli_visible_probs(hprob, W, b):
    """``p(v_i = 1 | h)`` with ``h`` given per row (states or probabilities); (n, n_visible)."""
    return visible_mean(hprob, W, b, _ones(W), BERNOULLI)


def bernoulli_gibbs(indptr, indices, data, rows, W, b, c, hidden_offset, steps, states):
    """Binary visible states after ``steps`` Gibbs sweeps from each row; (n_batch, n_visible)."""
    return gibbs(
        indptr, indices, data, rows, W, b, c, _ones(W), BERNOULLI, hidden_offset, steps, states
    )


def bernoulli_cd(
    indptr,
    indices,
    data,
    rows,
    W,
    b,
    c,
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
    """CD-k / PCD-k statistics of binary-visible rows; see :func:`cd` for the contract."""
    return cd(
        indptr,
        indices,
        data,
        rows,
        W,
        b,
        c,
        _ones(W),
        BERNOULLI,
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
