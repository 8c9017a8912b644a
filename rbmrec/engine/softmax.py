"""Kernels for RBMs with K-way softmax visible units and binary hidden units.

Layout. A CSR matrix ``(indptr, indices, levels)`` lists, for each row (a user in the rating
model), the visible groups it observes (``indices``, int32) and the observed level of each
(``levels``, int8, 0-based). Groups a row does not store are *unobserved*: they are not part
of that row's RBM and are never reconstructed (Salakhutdinov, Mnih & Hinton 2007, sec. 2).
Parameters: ``W`` (n_visible, n_levels, n_hidden), ``b`` (n_visible, n_levels), ``c``
(n_hidden,). ``hidden_offset`` (n_batch, n_hidden) is added to every hidden pre-activation
(the conditional RBM's ``r @ D``); pass an array of shape (0, n_hidden) for none.

Energy of a row with observed one-hot ``v[i, k]`` and hidden ``h``::

    E(v, h) = -sum_ik b_ik v_ik - sum_j c_j h_j - sum_ikj v_ik W_ikj h_j

Determinism. Work on batch row ``r`` draws only from ``states[r]``; gradients are summed per
visible group (parallel over groups, entries in batch order), so results do not depend on the
number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import exp_nonpositive, exp_nonpositive_row, sigmoid, softplus
from rbmrec.engine._random import next_u64, stream_uniform, uniform

#: Floating-point flags of the inner dot products and axpys: reassociation lets LLVM
#: vectorise the sums over hidden units (results change only in the last bits, identically
#: for every thread count); no ``nnan``/``ninf``, so the max-shifted softmax and the
#: divergence checks see infinities and NaNs as usual.
_DOT_MATH = {"reassoc", "contract", "nsz"}

#: Flags of the fused weight update: contraction only. Its loops are element-wise over hidden
#: units and need no reassociation to vectorise; with it, the code LLVM compiled in the
#: process differed in the last bits from the same kernel loaded from Numba's cache (so a
#: first, compiling run trained differently from later ones).
_UPDATE_MATH = {"contract"}

#: Negative-phase modes of :func:`softmax_cd`.
NEG_SAMPLE = 0  # v_k sampled one-hot, statistics from p(h | v_k): the CD-k estimator
NEG_MEAN_FIELD = 1  # last visible step uses the softmax probabilities (lower variance)


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


@njit(cache=True, inline="always")
def _store_shifted5(out, q, o, a0, a1, a2, a3, a4):
    """``out[q, o:o + 5] = (a0, ..., a4)`` minus their maximum."""
    top = max(max(max(a0, a1), max(a2, a3)), a4)
    out[q, o] = a0 - top
    out[q, o + 1] = a1 - top
    out[q, o + 2] = a2 - top
    out[q, o + 3] = a3 - top
    out[q, o + 4] = a4 - top


@njit(cache=True, inline="always", fastmath=_DOT_MATH)
def _shifted_logits5x4(i, h, ra, rb, rc, rd, W, b, out, q, o):
    """:func:`_shifted_logits` of four entries of five-level group ``i`` (rows ``ra``..``rd``
    of ``h``) into ``out[q, o:o + 20]``, in one pass over the hidden units.

    Each ``W[i, k, j]`` is loaded once for the four entries, and the twenty independent
    accumulators keep the FMA units busy while the horizontal sums of the previous entries
    finish (the visible step ran 10-13 % faster than with one entry per pass).
    """
    n_hidden = W.shape[2]
    a0, a1, a2, a3, a4 = b[i, 0], b[i, 1], b[i, 2], b[i, 3], b[i, 4]
    b0, b1, b2, b3, b4 = a0, a1, a2, a3, a4
    c0, c1, c2, c3, c4 = a0, a1, a2, a3, a4
    d0, d1, d2, d3, d4 = a0, a1, a2, a3, a4
    for j in range(n_hidden):
        w0, w1, w2, w3, w4 = W[i, 0, j], W[i, 1, j], W[i, 2, j], W[i, 3, j], W[i, 4, j]
        ha, hb, hc, hd = h[ra, j], h[rb, j], h[rc, j], h[rd, j]
        a0 += w0 * ha
        a1 += w1 * ha
        a2 += w2 * ha
        a3 += w3 * ha
        a4 += w4 * ha
        b0 += w0 * hb
        b1 += w1 * hb
        b2 += w2 * hb
        b3 += w3 * hb
        b4 += w4 * hb
        c0 += w0 * hc
        c1 += w1 * hc
        c2 += w2 * hc
        c3 += w3 * hc
        c4 += w4 * hc
        d0 += w0 * hd
        d1 += w1 * hd
        d2 += w2 * hd
        d3 += w3 * hd
        d4 += w4 * hd
    _store_shifted5(out, q, o, a0, a1, a2, a3, a4)
    _store_shifted5(out, q, o + 5, b0, b1, b2, b3, b4)
    _store_shifted5(out, q, o + 10, c0, c1, c2, c3, c4)
    _store_shifted5(out, q, o + 15, d0, d1, d2, d3, d4)


@njit(cache=True, inline="always", fastmath=_DOT_MATH)
def _shifted_logits5x2(i, h, ra, rb, W, b, out, q, o):
    """:func:`_shifted_logits5x4` for two entries (``out[q, o:o + 10]``)."""
    n_hidden = W.shape[2]
    a0, a1, a2, a3, a4 = b[i, 0], b[i, 1], b[i, 2], b[i, 3], b[i, 4]
    b0, b1, b2, b3, b4 = a0, a1, a2, a3, a4
    for j in range(n_hidden):
        w0, w1, w2, w3, w4 = W[i, 0, j], W[i, 1, j], W[i, 2, j], W[i, 3, j], W[i, 4, j]
        ha, hb = h[ra, j], h[rb, j]
        a0 += w0 * ha
        a1 += w1 * ha
        a2 += w2 * ha
        a3 += w3 * ha
        a4 += w4 * ha
        b0 += w0 * hb
        b1 += w1 * hb
        b2 += w2 * hb
        b3 += w3 * hb
        b4 += w4 * hb
    _store_shifted5(out, q, o, a0, a1, a2, a3, a4)
    _store_shifted5(out, q, o + 5, b0, b1, b2, b3, b4)


@njit(cache=True, inline="always", fastmath=_DOT_MATH)
def _shifted_logits(i, h, r, W, b, out, q, o):
    """``out[q, o + k] = b[i, k] + sum_j W[i, k, j] h[r, j]`` minus their maximum over k.

    Every value is <= 0 before exponentiating. ``h`` and ``out`` are indexed directly (no
    views: see :func:`_visible_step`). The dot products may be reassociated (SIMD). Five
    levels (the 1-5 star scale) take one pass over the hidden units with five accumulators
    instead of five dot products, each with its own horizontal sum (~20% faster).
    """
    n_levels = W.shape[1]
    n_hidden = W.shape[2]
    if n_levels == 5:
        a0, a1, a2, a3, a4 = b[i, 0], b[i, 1], b[i, 2], b[i, 3], b[i, 4]
        for j in range(n_hidden):
            hj = h[r, j]
            a0 += W[i, 0, j] * hj
            a1 += W[i, 1, j] * hj
            a2 += W[i, 2, j] * hj
            a3 += W[i, 3, j] * hj
            a4 += W[i, 4, j] * hj
        _store_shifted5(out, q, o, a0, a1, a2, a3, a4)
        return
    for k in range(n_levels):
        a = b[i, k]
        for j in range(n_hidden):
            a += W[i, k, j] * h[r, j]
        out[q, o + k] = a
    top = out[q, o]
    for k in range(1, n_levels):
        top = max(top, out[q, o + k])
    for k in range(n_levels):
        out[q, o + k] -= top


@njit(cache=True, inline="always", fastmath=_DOT_MATH)
def _visible_softmax(i, h, r, W, b, probs, q):
    """Fill ``probs[q]`` (n_levels,) with p(v_i = k | h[r]) (max-shifted softmax).

    Works in ``probs``' dtype throughout; the dot products may be reassociated (SIMD).
    """
    n_levels = W.shape[1]
    _shifted_logits(i, h, r, W, b, probs, q, 0)
    total = probs[q, 0] - probs[q, 0]  # a zero of probs' dtype
    for k in range(n_levels):
        e = np.exp(probs[q, k])
        probs[q, k] = e
        total += e
    for k in range(n_levels):
        probs[q, k] = probs[q, k] / total


@njit(cache=True, inline="always")
def _draw_level(probs, q, u):
    """Index k with probability probs[q, k], from a uniform ``u`` in [0, 1)."""
    acc = 0.0
    n = probs.shape[1]
    for k in range(n - 1):
        acc += probs[q, k]
        if u < acc:
            return k
    return n - 1


@njit(cache=True)
def _batch_offsets(indptr, rows):
    """Start of each batch row's entries in the concatenated batch entries (n_batch + 1,)."""
    n_batch = rows.shape[0]
    off = np.empty(n_batch + 1, dtype=np.int64)
    off[0] = 0
    for r in range(n_batch):
        u = rows[r]
        off[r + 1] = off[r] + indptr[u + 1] - indptr[u]
    return off


@njit(cache=True)
def _group_entries(indptr, indices, levels, rows, off, n_visible):
    """Counting sort of the batch entries by visible group.

    Returns ``(gptr, ge, levels_b)``: the entries of group ``i`` are the rows
    ``ge[gptr[i]:gptr[i+1]]`` of ``ge`` (int32, shape (nnz_batch, 2)), in batch order, so
    the per-group sums below always add in the same order; ``ge[e, 0]`` is the entry's
    batch row and ``ge[e, 1]`` its position in the concatenated batch entries.
    ``levels_b[q]`` is the level of batch entry ``q`` (same pass). Row and position sit
    side by side because the scatter writes each entry at a random place: one write per
    entry instead of two (the sort took 5.4 instead of 8.8 ms per ML-1M epoch).
    """
    nnz = off[rows.shape[0]]
    gptr = np.zeros(n_visible + 1, dtype=np.int64)
    ge = np.empty((nnz, 2), dtype=np.int32)
    levels_b = np.empty(nnz, dtype=np.int8)
    _group_entries_into(indptr, indices, levels, rows, off, gptr, ge, levels_b)
    return gptr, ge, levels_b


@njit(cache=True)
def _group_entries_into(indptr, indices, levels, rows, off, gptr, ge, levels_b):
    """:func:`_group_entries` into given arrays: ``gptr`` int64 (n_visible + 1,) of zeros,
    ``ge`` int32 (nnz_batch, 2) and ``levels_b`` int8 (nnz_batch,), all overwritten."""
    n_batch = rows.shape[0]
    n_visible = gptr.shape[0] - 1
    for r in range(n_batch):
        u = rows[r]
        for p in range(indptr[u], indptr[u + 1]):
            gptr[indices[p] + 1] += 1
    for i in range(n_visible):
        gptr[i + 1] += gptr[i]
    fill = gptr[:-1].copy()
    for r in range(n_batch):
        u = rows[r]
        q = off[r]
        for p in range(indptr[u], indptr[u + 1]):
            f = fill[indices[p]]
            ge[f, 0] = r
            ge[f, 1] = q
            fill[indices[p]] = f + 1
            levels_b[q] = levels[p]
            q += 1


#: Parallel tasks of the item-major passes in :func:`_cd_chains`: the visible groups are cut
#: into this many runs holding about equal numbers of the batch's entries; each task sums
#: the hidden inputs of its run into its own buffer, and the buffers are then added in task
#: order. A constant, so every sum adds its terms in the same order whatever the thread
#: count.
_N_TASKS = 8


@njit(cache=True)
def _task_groups(gptr):
    """Group bounds of the tasks, int64 (_N_TASKS + 1,): task ``t`` takes groups
    ``[tg[t], tg[t+1])``, cut at the first group boundary at or after ``t / _N_TASKS`` of the
    entries. No group is split, so per-group sums need no synchronisation."""
    n_groups = gptr.shape[0] - 1
    n_ent = gptr[n_groups]
    tg = np.empty(_N_TASKS + 1, dtype=np.int64)
    tg[0] = 0
    i = 0
    for t in range(1, _N_TASKS):
        target = (n_ent * t) // _N_TASKS
        while i < n_groups and gptr[i] < target:
            i += 1
        tg[t] = i
    tg[_N_TASKS] = n_groups
    return tg


@njit(cache=True, parallel=True, fastmath=_DOT_MATH)
def _scatter_levels(W, gptr, ge, lv, tg, acc):
    """acc[t, r] = sum of ``W[i, lv[q]]`` over task t's entries of row r (group by group).

    Entries are taken in group (item) order, so ``W[i]`` comes from memory once per batch
    and is reused for every row that observes ``i``. ``acc`` (_N_TASKS, n_batch, n_hidden)
    is overwritten; :func:`_hidden_from_tasks` adds the tasks. The loops index the arrays
    directly: a view such as ``acc[t][r]`` made per entry costs Numba an atomic reference
    count update on the parent array, which both threads contend for.
    """
    n_hidden = W.shape[2]
    n_batch = acc.shape[1]
    for t in prange(_N_TASKS):
        for r in range(n_batch):
            for j in range(n_hidden):
                acc[t, r, j] = 0.0
        for i in range(tg[t], tg[t + 1]):
            for e in range(gptr[i], gptr[i + 1]):
                r = ge[e, 0]
                k = lv[ge[e, 1]]
                for j in range(n_hidden):
                    acc[t, r, j] += W[i, k, j]


@njit(cache=True, parallel=True, fastmath=_DOT_MATH)
def _hidden_from_tasks(base, acc, out, sample, states, hs, keys):
    """``out[r] = sigmoid(base[r] + sum_t acc[t, r])``: p(h | v) from the tasks' sums.

    Tasks are added in order (thread-count independent). The sigmoid is
    ``1 / (1 + z)`` or ``z / (1 + z)`` with ``z = exp(-|x|)``, so one vectorised
    exponential pass per row serves both signs (float32: Cephes polynomial). The scratch
    is allocated once per call, not per row. ``sample``: also draw the binary hidden states
    ``hs[r]`` from ``out[r]`` with row ``r``'s stream ``states[r]``, in unit order, then that
    row's next Gibbs-step key ``keys[r]`` (in the same parallel region: one fewer per step).
    """
    n_batch, n_hidden = out.shape
    z = np.empty((n_batch, n_hidden), dtype=out.dtype)
    bits = np.empty((n_batch, n_hidden), dtype=np.int32)
    for r in prange(n_batch):
        for j in range(n_hidden):
            v = base[r, j]
            for t in range(_N_TASKS):
                v += acc[t, r, j]
            out[r, j] = v
            z[r, j] = -abs(v)
        exp_nonpositive(z[r], bits[r])
        for j in range(n_hidden):
            out[r, j] = (1.0 if out[r, j] >= 0.0 else z[r, j]) / (1.0 + z[r, j])
        if sample:
            for j in range(n_hidden):
                hs[r, j] = 1.0 if uniform(states, r) < out[r, j] else 0.0
            keys[r] = next_u64(states, r)


@njit(cache=True, parallel=True, fastmath=_DOT_MATH)
def _visible_step(
    W, b, hs, gptr, ge, off, keys, lv_data, cur, probs, draw, sqe, last, mean_field,
    onehot, tg, acc, gb, xbuf, bits,
):  # fmt: skip
    """One visible half-step of every batch entry, fused with the next hidden input.

    Group by group within each task's run: p(v_i | h) of each entry (the logits of all the
    group's entries first, five-level ones four entries per pass over ``W[i]``
    (:func:`_shifted_logits5x4`), then one vectorised exponential pass over them in ``xbuf[t]``,
    scratch of at least max-entries-per-group x n_levels, with int32 scratch ``bits``),
    optionally its level draw, and its contribution to the next hidden pre-activation in
    ``acc[t]`` (``sum_k probs[q, k] W[i, k]`` when ``mean_field``, else ``W[i, cur[q]]``),
    while ``W[i]`` is still in cache. ``onehot``: replace ``probs[q]`` by the one-hot of
    ``cur[q]`` afterwards. ``last``: also the reconstruction error ``sqe[q]`` and the
    visible-bias statistics ``gb[i] = sum_q onehot(lv_data[q]) - probs[q]`` (entries in
    batch order). Entry ``q`` of row ``r`` (the ``q - off[r]``-th of the row) draws from
    ``stream_uniform(keys[r], q - off[r])``, so draws do not depend on the visiting order.

    The per-entry loops index ``acc``, ``probs``, ``hs`` and ``W`` directly instead of taking
    row views: each view made in a loop costs Numba an atomic reference-count update on the
    parent array, and the two threads contend for that cache line (about 20 % of this step).
    """
    n_levels = W.shape[1]
    n_hidden = W.shape[2]
    n_batch = acc.shape[1]
    scale = bits.view(np.float32)  # the powers of two of the float32 exponentials
    for t in prange(_N_TASKS):
        for r in range(n_batch):
            for j in range(n_hidden):
                acc[t, r, j] = 0.0
        for i in range(tg[t], tg[t + 1]):
            if last:
                for kk in range(n_levels):
                    gb[i, kk] = 0.0
            e0 = gptr[i]
            m = gptr[i + 1] - e0
            if m == 0:
                continue  # (and the zeros below read xbuf[t, 0], written only for entries)
            # Five levels: entries four at a time, then a pair, then one by one.
            n4 = (m // 4) * 4 if n_levels == 5 else 0
            n2 = (m // 2) * 2 if n_levels == 5 else 0
            for u in range(0, n4, 4):
                e = e0 + u
                _shifted_logits5x4(
                    i, hs, ge[e, 0], ge[e + 1, 0], ge[e + 2, 0], ge[e + 3, 0], W, b, xbuf, t, u * 5
                )
            if n2 > n4:
                e = e0 + n4
                _shifted_logits5x2(i, hs, ge[e, 0], ge[e + 1, 0], W, b, xbuf, t, n4 * 5)
            for u in range(n2, m):
                _shifted_logits(i, hs, ge[e0 + u, 0], W, b, xbuf, t, u * n_levels)
            exp_nonpositive_row(xbuf, bits, scale, t, m * n_levels)
            if n_levels == 5:
                # The 1-5 star scale in scalars: one pass per entry, and the group's visible-bias
                # statistics summed in registers (13 % of this step at one thread).
                s0 = s1 = s2 = s3 = s4 = xbuf[t, 0] - xbuf[t, 0]  # zeros of xbuf's dtype
                for u in range(m):
                    e = e0 + u
                    r = ge[e, 0]
                    q = ge[e, 1]
                    o = u * 5
                    x0, x1, x2 = xbuf[t, o], xbuf[t, o + 1], xbuf[t, o + 2]
                    x3, x4 = xbuf[t, o + 3], xbuf[t, o + 4]
                    tot = (((x0 + x1) + x2) + x3) + x4
                    p0, p1, p2, p3, p4 = x0 / tot, x1 / tot, x2 / tot, x3 / tot, x4 / tot
                    probs[q, 0], probs[q, 1], probs[q, 2] = p0, p1, p2
                    probs[q, 3], probs[q, 4] = p3, p4
                    if draw:
                        cur[q] = _draw_level(probs, q, stream_uniform(keys[r], q - off[r]))
                    if mean_field:
                        for j in range(n_hidden):
                            sv = p0 * W[i, 0, j] + p1 * W[i, 1, j] + p2 * W[i, 2, j]
                            sv += p3 * W[i, 3, j]
                            acc[t, r, j] += sv + p4 * W[i, 4, j]
                    else:
                        k = cur[q]
                        for j in range(n_hidden):
                            acc[t, r, j] += W[i, k, j]
                    if last:
                        d = (np.float64(p1) + 2.0 * p2 + 3.0 * p3 + 4.0 * p4) - lv_data[q]
                        sqe[q] = d * d
                    if onehot:
                        probs[q, 0] = probs[q, 1] = probs[q, 2] = probs[q, 3] = probs[q, 4] = 0.0
                        probs[q, cur[q]] = 1.0
                        p0, p1, p2 = probs[q, 0], probs[q, 1], probs[q, 2]
                        p3, p4 = probs[q, 3], probs[q, 4]
                    if last:
                        gb[i, lv_data[q]] += 1.0
                        s0 -= p0
                        s1 -= p1
                        s2 -= p2
                        s3 -= p3
                        s4 -= p4
                if last:
                    gb[i, 0] += s0
                    gb[i, 1] += s1
                    gb[i, 2] += s2
                    gb[i, 3] += s3
                    gb[i, 4] += s4
                continue
            for u in range(m):
                e = e0 + u
                r = ge[e, 0]
                q = ge[e, 1]
                o = u * n_levels
                total = xbuf[t, o] - xbuf[t, o]  # a zero of xbuf's dtype
                for kk in range(n_levels):
                    total += xbuf[t, o + kk]
                for kk in range(n_levels):
                    probs[q, kk] = xbuf[t, o + kk] / total
                if draw:
                    cur[q] = _draw_level(probs, q, stream_uniform(keys[r], q - off[r]))
                if mean_field:
                    for k in range(n_levels):
                        pk = probs[q, k]
                        for j in range(n_hidden):
                            acc[t, r, j] += pk * W[i, k, j]
                else:
                    k = cur[q]
                    for j in range(n_hidden):
                        acc[t, r, j] += W[i, k, j]
                if last:
                    mean = 0.0
                    for kk in range(n_levels):
                        mean += kk * probs[q, kk]
                    d = mean - lv_data[q]
                    sqe[q] = d * d
                if onehot:
                    for kk in range(n_levels):
                        probs[q, kk] = 0.0
                    probs[q, cur[q]] = 1.0
                if last:
                    gb[i, lv_data[q]] += 1.0
                    for kk in range(n_levels):
                        gb[i, kk] -= probs[q, kk]


@njit(cache=True)
def _cd_chains(
    indptr, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels, use_chain, neg_mode,
    off, gptr, ge, levels_b, vneg, hpos, hneg, recon, gb, acc, scattered,
):  # fmt: skip
    """Both phases of every batch row; fills hpos, vneg, hneg, recon, gb (and the chains).

    Returns the levels of the last visible step (int8, one per batch entry). ``acc``
    (_N_TASKS, n_batch, n_hidden) is the tasks' scratch; ``scattered``: it already holds the
    positive phase's sums of :func:`_scatter_levels` (see
    :func:`softmax_update_then_scatter`).

    Item-major: the batch's entries are visited grouped by visible group (``gptr`` and
    ``ge`` from :func:`_group_entries`), so each ``W[i]`` is streamed from memory
    once per phase of a mini-batch instead of once per rating, and each visible step also
    accumulates the next hidden input while ``W[i]`` is in cache. Random numbers: row ``r``
    samples its hidden units from ``states[r]`` in unit order, then draws one 64-bit key per
    Gibbs step from the same stream; its ``t``-th entry's level is output ``t`` of a
    SplitMix64 stream seeded at that key (:func:`rbmrec.engine._random.stream_uniform`).
    """
    n_batch = rows.shape[0]
    n_hidden = W.shape[2]
    nnz_b = off[n_batch]
    base = np.empty((n_batch, n_hidden), dtype=W.dtype)
    has_off = hidden_offset.shape[0] > 0
    for r in range(n_batch):
        for j in range(n_hidden):
            base[r, j] = c[j] + hidden_offset[r, j] if has_off else c[j]
    tg = _task_groups(gptr)
    most = 0  # entries of the largest group: the visible step's per-task scratch
    for i in range(gptr.shape[0] - 1):
        most = max(most, gptr[i + 1] - gptr[i])
    xbuf = np.empty((_N_TASKS, most * W.shape[1]), dtype=W.dtype)
    bits = np.empty((_N_TASKS, most * W.shape[1]), dtype=np.int32)
    hs = np.empty((n_batch, n_hidden), dtype=W.dtype)
    keys = np.empty(n_batch, dtype=np.uint64)
    # Positive phase: p(h | v_data); without a chain the first hidden sample is drawn from it.
    if not scattered:
        _scatter_levels(W, gptr, ge, levels_b, tg, acc)
    _hidden_from_tasks(base, acc, hpos, not use_chain, states, hs, keys)
    if use_chain:
        cur = _gather_levels(indptr, chain_levels, rows, off)
        _scatter_levels(W, gptr, ge, cur, tg, acc)
        _hidden_from_tasks(base, acc, hneg, True, states, hs, keys)
    else:
        cur = levels_b.copy()
        # An element loop, not `hneg[:] = hpos`: array-to-array assignment compiles Numba's
        # shape-mismatch error formatting, several seconds of every cold start.
        for r in range(n_batch):
            for j in range(n_hidden):
                hneg[r, j] = hpos[r, j]
    sqe = np.zeros(nnz_b, dtype=np.float64)
    for step in range(cd_steps):
        last = step == cd_steps - 1
        # hs and keys hold this step's hidden sample, drawn from hneg.
        mean_field = last and neg_mode == NEG_MEAN_FIELD
        # Mean-field CD without a chain discards the last draw: skip it.
        draw = not (mean_field and not use_chain)
        _visible_step(
            W, b, hs, gptr, ge, off, keys, levels_b, cur, vneg, draw, sqe, last,
            mean_field, last and not mean_field, tg, acc, gb, xbuf, bits,
        )  # fmt: skip
        _hidden_from_tasks(base, acc, hneg, not last, states, hs, keys)
    for r in range(n_batch):
        s = 0.0
        for q in range(off[r], off[r + 1]):
            s += sqe[q]
        recon[r] = s
    if use_chain:
        for r in range(n_batch):
            u = rows[r]
            for t in range(indptr[u + 1] - indptr[u]):
                chain_levels[indptr[u] + t] = cur[off[r] + t]
    return cur


@njit(cache=True, inline="always", fastmath=_UPDATE_MATH)
def _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, gi):
    """g[gi] (n_levels, n_hidden) = group i's weight statistics, entries taken in batch order.

    ``neg_levels`` (one level per batch entry) gives the one-hot negative visible states of
    sampled CD, so each entry adds two rows without scanning ``vneg``; when it is empty
    (mean-field negatives) every level gets ``vneg[q, k] * hneg[r]``. ``g`` is indexed
    directly (no row views: see :func:`_visible_step`). With five mean-field levels the
    negative terms of four entries are summed before they reach ``g``: a quarter of the
    loads and stores of ``g`` (the weight update ran 19 % faster).
    """
    n_levels = g.shape[1]
    n_hidden = g.shape[2]
    sampled = neg_levels.shape[0] > 0
    for k in range(n_levels):
        for j in range(n_hidden):
            g[gi, k, j] = 0.0
    e_lo = gptr[i]
    e_hi = gptr[i + 1]
    if not sampled and n_levels == 5:
        for e in range(e_lo, e_hi):  # positive statistics, then the negative ones
            r = ge[e, 0]
            kd = levels_b[ge[e, 1]]
            for j in range(n_hidden):
                g[gi, kd, j] += hpos[r, j]
        e = e_lo
        while e + 4 <= e_hi:
            ra, rb, rc, rd = ge[e, 0], ge[e + 1, 0], ge[e + 2, 0], ge[e + 3, 0]
            qa, qb, qc, qd = ge[e, 1], ge[e + 1, 1], ge[e + 2, 1], ge[e + 3, 1]
            a0, a1, a2, a3, a4 = vneg[qa, 0], vneg[qa, 1], vneg[qa, 2], vneg[qa, 3], vneg[qa, 4]
            b0, b1, b2, b3, b4 = vneg[qb, 0], vneg[qb, 1], vneg[qb, 2], vneg[qb, 3], vneg[qb, 4]
            c0, c1, c2, c3, c4 = vneg[qc, 0], vneg[qc, 1], vneg[qc, 2], vneg[qc, 3], vneg[qc, 4]
            d0, d1, d2, d3, d4 = vneg[qd, 0], vneg[qd, 1], vneg[qd, 2], vneg[qd, 3], vneg[qd, 4]
            for j in range(n_hidden):
                ha, hb, hc, hd = hneg[ra, j], hneg[rb, j], hneg[rc, j], hneg[rd, j]
                g[gi, 0, j] -= a0 * ha + b0 * hb + c0 * hc + d0 * hd
                g[gi, 1, j] -= a1 * ha + b1 * hb + c1 * hc + d1 * hd
                g[gi, 2, j] -= a2 * ha + b2 * hb + c2 * hc + d2 * hd
                g[gi, 3, j] -= a3 * ha + b3 * hb + c3 * hc + d3 * hd
                g[gi, 4, j] -= a4 * ha + b4 * hb + c4 * hc + d4 * hd
            e += 4
        while e < e_hi:
            r = ge[e, 0]
            q = ge[e, 1]
            v0, v1, v2, v3, v4 = vneg[q, 0], vneg[q, 1], vneg[q, 2], vneg[q, 3], vneg[q, 4]
            for j in range(n_hidden):
                hn = hneg[r, j]
                g[gi, 0, j] -= v0 * hn
                g[gi, 1, j] -= v1 * hn
                g[gi, 2, j] -= v2 * hn
                g[gi, 3, j] -= v3 * hn
                g[gi, 4, j] -= v4 * hn
            e += 1
        return
    for e in range(e_lo, e_hi):
        r = ge[e, 0]
        q = ge[e, 1]
        kd = levels_b[q]
        for j in range(n_hidden):
            g[gi, kd, j] += hpos[r, j]
        if sampled:
            kn = neg_levels[q]
            for j in range(n_hidden):
                g[gi, kn, j] -= hneg[r, j]
        else:
            for k in range(n_levels):
                vk = vneg[q, k]
                for j in range(n_hidden):
                    g[gi, k, j] -= vk * hneg[r, j]


@njit(cache=True, parallel=True)
def _accumulate(phases, gW):
    """gW[i] = sum over group i's entries of onehot(data) hpos - vneg hneg (parallel over i)."""
    _, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels = phases
    for i in prange(gW.shape[0]):
        _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, gW, i)


#: Groups per parallel chunk of :func:`softmax_update_weights` (a constant, so the work split
#: and hence the results never depend on the thread count).
_GROUP_CHUNK = 64


@njit(cache=True, parallel=True, fastmath=_UPDATE_MATH)
def softmax_update_weights(phases, W, vW, scale, mom, lr_wd):
    """Fused weight statistics and momentum step: ``vW = mom vW + scale gW - lr_wd W; W += vW``.

    ``gW`` (the batch's positive minus negative statistics, see :func:`softmax_cd`) is built
    one group at a time in a small per-chunk buffer and applied at once, so the full gradient
    array is never written or read: per mini-batch the weights and velocities are streamed
    once. Groups the batch does not observe have ``gW[i] = 0`` and only decay.

    Parameters
    ----------
    phases : tuple
        What :func:`softmax_cd_phases` returned for this batch (statistics of the chains).
    W, vW : ndarray, shape (n_visible, n_levels, n_hidden)
        Weights and their velocities, updated in place.
    scale, mom, lr_wd : float
        ``learning_rate / batch_size``, momentum and ``learning_rate * weight_decay``.
    """
    _, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels = phases
    n_visible, n_levels, n_hidden = W.shape
    n_chunks = (n_visible + _GROUP_CHUNK - 1) // _GROUP_CHUNK
    g = np.empty((n_chunks, n_levels, n_hidden), dtype=W.dtype)  # one buffer per chunk
    for ch in prange(n_chunks):
        for i in range(ch * _GROUP_CHUNK, min(n_visible, (ch + 1) * _GROUP_CHUNK)):
            if gptr[i + 1] > gptr[i]:
                _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, ch)
                for k in range(n_levels):
                    for j in range(n_hidden):
                        vt = mom * vW[i, k, j] + scale * g[ch, k, j] - lr_wd * W[i, k, j]
                        vW[i, k, j] = vt
                        W[i, k, j] += vt
            else:
                for k in range(n_levels):
                    for j in range(n_hidden):
                        vt = mom * vW[i, k, j] - lr_wd * W[i, k, j]
                        vW[i, k, j] = vt
                        W[i, k, j] += vt


@njit(cache=True, parallel=True, fastmath=_UPDATE_MATH)
def softmax_update_then_scatter(phases, W, vW, scale, mom, lr_wd, gptr2, ge2, levels2, acc2):
    """:func:`softmax_update_weights` of one batch fused with :func:`_scatter_levels` of the
    next: each row ``W[i]`` is updated and, while in cache, added to the next batch's
    positive hidden input of every entry of item ``i``.

    Same numbers as the two calls in turn: every row's update is the same arithmetic, only
    split by the next batch's tasks (:func:`_task_groups` of ``gptr2``, which cover all
    groups) instead of fixed chunks, and each task's sums take the same entries in the same
    order as :func:`_scatter_levels`. One pass over ``W`` per batch less.

    Parameters
    ----------
    phases, W, vW, scale, mom, lr_wd
        As :func:`softmax_update_weights`.
    gptr2, ge2, levels2 : ndarray
        The next batch's grouping (:func:`_group_entries`) and data levels.
    acc2 : ndarray, shape (_N_TASKS, n_batch_next, n_hidden)
        Output: the next batch's per-task positive sums (``softmax_cd_phases_grouped``'s
        ``acc`` with ``scattered=True``).
    """
    _, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels = phases
    n_levels, n_hidden = W.shape[1], W.shape[2]
    n_batch2 = acc2.shape[1]
    tg = _task_groups(gptr2)
    # The row update below repeats softmax_update_weights' on purpose: shared as an inlined
    # helper (taking the phases tuple), the span kernel's epoch was 6 % slower (median of 20
    # alternations, 134.3 against 123.8 ms).
    g = np.empty((_N_TASKS, n_levels, n_hidden), dtype=W.dtype)  # one buffer per task
    for t in prange(_N_TASKS):
        for r in range(n_batch2):
            for j in range(n_hidden):
                acc2[t, r, j] = 0.0
        for i in range(tg[t], tg[t + 1]):
            if gptr[i + 1] > gptr[i]:
                _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, t)
                for k in range(n_levels):
                    for j in range(n_hidden):
                        vt = mom * vW[i, k, j] + scale * g[t, k, j] - lr_wd * W[i, k, j]
                        vW[i, k, j] = vt
                        W[i, k, j] += vt
            else:
                for k in range(n_levels):
                    for j in range(n_hidden):
                        vt = mom * vW[i, k, j] - lr_wd * W[i, k, j]
                        vW[i, k, j] = vt
                        W[i, k, j] += vt
            for e in range(gptr2[i], gptr2[i + 1]):
                r = ge2[e, 0]
                k = levels2[ge2[e, 1]]
                for j in range(n_hidden):
                    acc2[t, r, j] += W[i, k, j]


@njit(cache=True)
def _gather_levels(indptr, levels, rows, off):
    out = np.empty(off[-1], dtype=np.int8)
    for r in range(rows.shape[0]):
        u = rows[r]
        q = off[r]
        for p in range(indptr[u], indptr[u + 1]):
            out[q] = levels[p]
            q += 1
    return out


@njit(cache=True)
def softmax_cd_phases(
    indptr, indices, levels, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels,
    use_chain, gb, gc, h_diff, neg_mode=NEG_SAMPLE,
):  # fmt: skip
    """The chains of :func:`softmax_cd` and the small statistics, without the weight statistics.

    Same arguments as :func:`softmax_cd` minus ``gW``. Fills ``gb``, ``gc`` and ``h_diff``
    and returns ``(stats, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels)``:
    ``stats`` as returned by :func:`softmax_cd`, then what :func:`softmax_update_weights`
    needs (``neg_levels``: the sampled negative levels, empty for mean-field negatives).
    """
    off = _batch_offsets(indptr, rows)
    gptr, ge, levels_b = _group_entries(indptr, indices, levels, rows, off, W.shape[0])
    acc = np.empty((_N_TASKS, rows.shape[0], c.shape[0]), dtype=W.dtype)
    return softmax_cd_phases_grouped(
        indptr, rows, off, gptr, ge, levels_b, W, b, c, hidden_offset, cd_steps, states,
        chain_levels, use_chain, gb, gc, h_diff, neg_mode, acc, False,
    )  # fmt: skip


@njit(cache=True)
def softmax_cd_phases_grouped(
    indptr, rows, off, gptr, ge, levels_b, W, b, c, hidden_offset, cd_steps, states,
    chain_levels, use_chain, gb, gc, h_diff, neg_mode, acc, scattered,
):  # fmt: skip
    """:func:`softmax_cd_phases` of a batch already grouped: ``off`` from
    :func:`_batch_offsets` and ``(gptr, ge, levels_b)`` from :func:`_group_entries` (or
    :func:`_group_entries_into`) for these ``rows``; ``acc`` scratch of shape
    (_N_TASKS, n_batch, n_hidden), already holding the positive phase's sums when
    ``scattered`` (:func:`softmax_update_then_scatter`)."""
    n_batch = rows.shape[0]
    n_hidden = c.shape[0]
    n_levels = W.shape[1]
    nnz_b = off[n_batch]
    hpos = np.empty((n_batch, n_hidden), dtype=W.dtype)
    hneg = np.empty((n_batch, n_hidden), dtype=W.dtype)
    vneg = np.empty((nnz_b, n_levels), dtype=W.dtype)
    recon = np.empty(n_batch, dtype=np.float64)
    cur = _cd_chains(
        indptr, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels, use_chain,
        neg_mode, off, gptr, ge, levels_b, vneg, hpos, hneg, recon, gb, acc, scattered,
    )  # fmt: skip
    # Sampled negatives are one-hot: their levels let the weight statistics skip vneg.
    neg_levels = cur if neg_mode == NEG_SAMPLE else cur[:0]
    for j in range(n_hidden):
        gc[j] = 0.0
    for r in range(n_batch):
        for j in range(n_hidden):
            d = hpos[r, j] - hneg[r, j]
            h_diff[r, j] = d
            gc[j] += d
    stats = np.empty(2, dtype=np.float64)
    stats[0] = recon.sum()
    stats[1] = nnz_b
    return stats, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels


@njit(cache=True)
def softmax_cd(
    indptr, indices, levels, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels,
    use_chain, gW, gb, gc, h_diff, neg_mode=NEG_SAMPLE,
):  # fmt: skip
    """CD-k / PCD statistics of a mini-batch (Hinton 2002; Tieleman 2008).

    Parameters
    ----------
    indptr, indices, levels : ndarray
        CSR of observed groups: (n_rows + 1,), int32 (nnz,), int8 (nnz,) 0-based levels.
    rows : ndarray of int64, shape (n_batch,)
        Batch rows.
    W, b, c : ndarray
        Parameters, shapes (n_visible, n_levels, n_hidden), (n_visible, n_levels),
        (n_hidden,).
    hidden_offset : ndarray, shape (n_batch, n_hidden) or (0, n_hidden)
        Extra hidden input per row (conditional RBM), or none.
    cd_steps : int
        Gibbs steps k >= 1.
    states : ndarray of uint64, shape (n_batch,)
        Per-row random states (advanced in place).
    chain_levels : ndarray of int8, shape (nnz,) or (0,)
        Persistent fantasy levels, one per stored entry; read and written when ``use_chain``.
    use_chain : bool
        Persistent CD: start the negative chain from ``chain_levels`` instead of the data.
    gW, gb, gc : ndarray
        Outputs (overwritten): positive minus negative statistics summed over the batch,
        shapes like W, b, c.
    h_diff : ndarray, shape (n_batch, n_hidden)
        Output: p(h | v_data) - p(h | v_k) per row (for the conditional RBM's D gradient).
    neg_mode : int
        ``NEG_SAMPLE`` (0): negative statistics from the sampled one-hot ``v_k`` and
        ``p(h | v_k)``, the CD-k estimator whose bias vanishes as k grows.
        ``NEG_MEAN_FIELD`` (1): the last visible step uses the softmax probabilities and the
        hidden probabilities they induce (common in practice: less noise, some bias).

    Returns
    -------
    ndarray of float64, shape (2,)
        [sum of squared differences between data level and the reconstruction's expected
        level (last step), number of entries].
    """
    phases = softmax_cd_phases(
        indptr, indices, levels, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels,
        use_chain, gb, gc, h_diff, neg_mode,
    )  # fmt: skip
    _accumulate(phases, gW)
    return phases[0]


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


@njit(cache=True, parallel=True)
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
    """
    n_pairs = pair_row.shape[0]
    n_levels = W.shape[1]
    n_hidden = W.shape[2]
    out = np.empty((n_pairs, n_levels), dtype=np.float64)
    for t in prange(n_pairs):
        r = pair_row[t]
        i = pair_item[t]
        if exact:
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
        else:
            _visible_softmax(i, hidden, r, W, b, out, t)
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
    n_a, n_levels, n_c = logits.shape
    n_chunks = (n_a + _SCORE_CHUNK - 1) // _SCORE_CHUNK
    for ch in prange(n_chunks):
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
