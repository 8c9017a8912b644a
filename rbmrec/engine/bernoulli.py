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


# ----------------------------------------------------------------------------- chain helpers
#
# Each helper works on a list of visible units ``units`` (int array) with values ``vals`` (one
# per unit, same order). The dense layout passes the stored entries of a CSR row for the
# positive phase and ``arange(n_visible)`` for the negative phase; the masked layout of
# :mod:`rbmrec.engine.gaussian` passes the row's stored entries for both. So the CD chain,
# the Gibbs sweep and the gradient statistics exist once, for both layouts and both families.
# The small ones are inlined. _gibbs_row and _cd_row are ordinary calls (once per row): inlining
# them into the prange bodies made cold compilation ~20% slower for no measurable speed-up.


@njit(cache=True, inline="always")
def _act(units, vals, W, c, inv_sigma, hidden_offset, r, act):
    """Hidden pre-activation ``c + offset[r] + sum_q (vals[q] / sigma_i) W[units[q]]``, float64."""
    nh = act.shape[0]
    for j in range(nh):
        act[j] = c[j]
    if hidden_offset.shape[0] > 0:
        for j in range(nh):
            act[j] += hidden_offset[r, j]
    for q in range(units.shape[0]):
        i = units[q]
        x = vals[q] * inv_sigma[i]
        if x != 0.0:
            for j in range(nh):
                act[j] += x * W[i, j]


@njit(cache=True, inline="always")
def _mean(units, h, W, b, sigma, family, out):
    """``E[v_i | h]`` of the listed units into ``out`` (one per unit) for hidden vector ``h``."""
    nh = W.shape[1]
    for q in range(units.shape[0]):
        i = units[q]
        s = 0.0
        for j in range(nh):
            if h[j] != 0.0:
                s += W[i, j] * h[j]
        if family == GAUSSIAN:
            out[q] = b[i] + sigma[i] * s
        else:
            out[q] = sigmoid(b[i] + s)


@njit(cache=True, inline="always")
def _sample_visible(units, mean, sigma, family, states, r, v):
    """Draw ``v ~ p(v | h)`` from its mean: Bernoulli trials or ``N(mean, sigma^2)``."""
    for q in range(units.shape[0]):
        if family == GAUSSIAN:
            v[q] = mean[q] + sigma[units[q]] * normal(states, r)
        else:
            v[q] = 1.0 if uniform(states, r) < mean[q] else 0.0


@njit(cache=True, inline="always")
def _sample_hidden(act, states, r, hp, hs):
    """Hidden probabilities ``hp = sigmoid(act)`` and a binary sample ``hs`` of them."""
    for j in range(act.shape[0]):
        hp[j] = sigmoid(act[j])
        hs[j] = 1.0 if uniform(states, r) < hp[j] else 0.0


@njit(cache=True)
def _gibbs_row(units, v, steps, W, b, c, sigma, inv_sigma, family, hidden_offset, states, r,
               act, hp, hs, m):  # fmt: skip
    """``steps`` sweeps ``h ~ p(h|v), v ~ p(v|h)`` on the listed units; ``v`` updated in place."""
    for _ in range(steps):
        _act(units, v, W, c, inv_sigma, hidden_offset, r, act)
        _sample_hidden(act, states, r, hp, hs)
        _mean(units, hs, W, b, sigma, family, m)
        _sample_visible(units, m, sigma, family, states, r, v)


@njit(cache=True, inline="always")
def _add_stats(units, vals, hp, inv_sigma, sign, ch, bufW, bufb, bufc):
    """Add ``sign`` times the statistics ``(v_i / sigma_i) h_j``, ``v_i / sigma_i^2``, ``h_j``."""
    nh = hp.shape[0]
    for q in range(units.shape[0]):
        i = units[q]
        # Negating is exact, so sign = -1 subtracts exactly what sign = 1 would add.
        x = sign * (vals[q] * inv_sigma[i])
        if x != 0.0:
            for j in range(nh):
                bufW[ch, i, j] += x * hp[j]
            bufb[ch, i] += x * inv_sigma[i]
    for j in range(nh):
        bufc[ch, j] += sign * hp[j]


@njit(cache=True)
def _cd_row(r, ch, pos_units, pos_vals, neg_units, v, restart, cd_steps, W, b, c, sigma,
            inv_sigma, family, hidden_offset, states, act, hp0, hp, hs, m, bufW, bufb, bufc,
            h_diff):  # fmt: skip
    """One batch row of CD-k / PCD-k into chunk ``ch``'s gradient buffers.

    Positive phase: ``hp0 = p(h | data)`` from ``pos_units`` / ``pos_vals`` and a hidden
    sample. Negative phase on ``neg_units``: when ``restart`` the chain starts from the
    visible state already in ``v`` (persistent CD), else from the positive hidden sample;
    ``cd_steps`` down-up sweeps, the last one keeping ``hp = p(h | v_k)``. On return ``v``
    holds ``v_k`` and ``hp0`` is intact (callers compute the reconstruction error from it).
    """
    nh = act.shape[0]
    _act(pos_units, pos_vals, W, c, inv_sigma, hidden_offset, r, act)
    _sample_hidden(act, states, r, hp0, hs)
    _add_stats(pos_units, pos_vals, hp0, inv_sigma, 1.0, ch, bufW, bufb, bufc)
    if restart:
        _act(neg_units, v, W, c, inv_sigma, hidden_offset, r, act)
        _sample_hidden(act, states, r, hp, hs)
    for step in range(cd_steps):
        _mean(neg_units, hs, W, b, sigma, family, m)
        _sample_visible(neg_units, m, sigma, family, states, r, v)
        _act(neg_units, v, W, c, inv_sigma, hidden_offset, r, act)
        if step < cd_steps - 1:
            _sample_hidden(act, states, r, hp, hs)
        else:
            for j in range(nh):
                hp[j] = sigmoid(act[j])
    _add_stats(neg_units, v, hp, inv_sigma, -1.0, ch, bufW, bufb, bufc)
    for j in range(nh):
        h_diff[r, j] = hp0[j] - hp[j]


@njit(cache=True, inline="always")
def _reduce_chunks(bufW, bufb, bufc, n_chunks, gW, gb, gc):
    """Sum the chunk buffers into ``gW``, ``gb``, ``gc`` in chunk order (thread-independent)."""
    nv, nh = gW.shape
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
        p0, p1 = indptr[rows[r]], indptr[rows[r] + 1]
        act = np.empty(nh, dtype=np.float64)
        _act(indices[p0:p1], data[p0:p1], W, c, inv_sigma, hidden_offset, r, act)
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
        p0, p1 = indptr[row], indptr[row + 1]
        act = np.empty(nh, dtype=np.float64)
        _act(indices[p0:p1], data[p0:p1], W, c, inv_sigma, hidden_offset, r, act)
        f = base
        for p in range(p0, p1):
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
    units = np.arange(nv)
    out = np.empty((n, nv), dtype=W.dtype)
    for r in prange(n):
        m = np.empty(nv, dtype=np.float64)
        _mean(units, hprob[r], W, b, sigma, family, m)
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
    units = np.arange(nv)
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
        _gibbs_row(units, v, steps, W, b, c, sigma, inv_sigma, family, hidden_offset, states, r,
                   act, hp, hs, m)  # fmt: skip
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
    units = np.arange(nv)
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
            p0, p1 = indptr[row], indptr[row + 1]
            if use_chain:
                for i in range(nv):
                    v[i] = chain_v[r, i]
            _cd_row(r, ch, indices[p0:p1], data[p0:p1], units, v, use_chain, cd_steps, W, b, c,
                    sigma, inv_sigma, family, hidden_offset, states, act, hp0, hp, hs, m, bufW,
                    bufb, bufc, h_diff)  # fmt: skip
            if use_chain:
                for i in range(nv):
                    chain_v[r, i] = v[i]
            # Squared error of the mean-field reconstruction (a monitoring metric) over every
            # unit: missing entries are zeros, so they contribute m_i^2.
            _mean(units, hp0, W, b, sigma, family, m)
            e = 0.0
            for i in range(nv):
                e += m[i] * m[i]
            for p in range(p0, p1):
                i = indices[p]
                e += (data[p] - m[i]) ** 2 - m[i] * m[i]
            err[ch] += e
    _reduce_chunks(bufW, bufb, bufc, n_chunks, gW, gb, gc)
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
