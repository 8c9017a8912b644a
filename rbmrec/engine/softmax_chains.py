"""The item-major Gibbs chains of the softmax CD kernel: hidden passes and visible steps.

:func:`_cd_chains` runs the positive phase and the ``k`` Gibbs steps of every row of a
mini-batch whose entries are grouped by visible group (:mod:`rbmrec.engine.softmax_grouping`).
Each pass walks the entries group by group within :data:`~rbmrec.engine.softmax_grouping._N_TASKS`
runs, so ``W[i]`` is read from memory once per pass: :func:`_scatter_levels` sums the hidden
input of the given levels, :func:`_hidden_from_tasks` adds the runs' sums in order and
takes the sigmoid (and the hidden sample), and :func:`_visible_step` computes every entry's
p(v_i | h), its level draw and its contribution to the next hidden input while ``W[i]`` is
in cache. Row ``r`` draws only from ``states[r]``, so results do not depend on the thread
count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import exp_nonpositive, exp_nonpositive_row
from rbmrec.engine._random import next_u64, stream_uniform, uniform
from rbmrec.engine.softmax_grouping import _N_TASKS, _gather_levels, _task_groups
from rbmrec.engine.softmax_logits import (
    _DOT_MATH,
    _draw_level,
    _shifted_logits,
    _shifted_logits5x2,
    _shifted_logits5x4,
)

#: Negative-phase modes of :func:`~rbmrec.engine.softmax.softmax_cd`.
NEG_SAMPLE = 0  # v_k sampled one-hot, statistics from p(h | v_k): the CD-k estimator
NEG_MEAN_FIELD = 1  # last visible step uses the softmax probabilities (lower variance)


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
        _hidden_row(np.int64(r), base, acc, out, sample, states, hs, keys, z, bits)


@njit(cache=True, fastmath=_DOT_MATH)
def _hidden_row(r, base, acc, out, sample, states, hs, keys, z, bits):
    """Row ``r`` of :func:`_hidden_from_tasks` (scratch ``z``, ``bits``). A serial function
    called from the parallel loop, not the loop's body: Numba's parallel passes on the
    inlined exponential and random draws took seconds of a cold start."""
    n_hidden = out.shape[1]
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


@njit(cache=True, fastmath=_DOT_MATH)
def _visible_task(
    t, W, b, hs, gptr, ge, off, keys, lv_data, cur, probs, draw, sqe, last, mean_field,
    onehot, tg, acc, gb, xbuf, bits, scale,
):  # fmt: skip
    """Task ``t``'s run of groups in :func:`_visible_step` (``scale``: ``bits`` viewed as
    float32). A serial function called once per task from the parallel loop, not the loop's
    body: Numba's parallel passes on a body this large took about 15 s of a cold start."""
    n_levels = W.shape[1]
    n_hidden = W.shape[2]
    n_batch = acc.shape[1]
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


@njit(cache=True, parallel=True, fastmath=_DOT_MATH)
def _visible_step(
    W, b, hs, gptr, ge, off, keys, lv_data, cur, probs, draw, sqe, last, mean_field,
    onehot, tg, acc, gb, xbuf, bits,
):  # fmt: skip
    """One visible half-step of every batch entry, fused with the next hidden input.

    Group by group within each task's run: p(v_i | h) of each entry (the logits of all the group's
    entries first, five-level ones four entries per pass over ``W[i]``
    (:func:`~rbmrec.engine.softmax_logits._shifted_logits5x4`), then one vectorised exponential pass
    over them in ``xbuf[t]``, scratch of at least max-entries-per-group x n_levels, with int32
    scratch ``bits``), optionally its level draw, and its contribution to the next hidden
    pre-activation in ``acc[t]`` (``sum_k probs[q, k] W[i, k]`` when ``mean_field``, else
    ``W[i, cur[q]]``), while ``W[i]`` is still in cache. ``onehot``: replace ``probs[q]`` by the
    one-hot of ``cur[q]`` afterwards. ``last``: also the reconstruction error ``sqe[q]`` and the
    visible-bias statistics ``gb[i] = sum_q onehot(lv_data[q]) - probs[q]`` (entries in batch
    order). Entry ``q`` of row ``r`` (the ``q - off[r]``-th of the row) draws from
    ``stream_uniform(keys[r], q - off[r])``, so draws do not depend on the visiting order.

    The per-entry loops index ``acc``, ``probs``, ``hs`` and ``W`` directly instead of taking
    row views: each view made in a loop costs Numba an atomic reference-count update on the
    parent array, and the two threads contend for that cache line (about 20 % of this step).
    """
    scale = bits.view(np.float32)  # the powers of two of the float32 exponentials
    for t in prange(_N_TASKS):
        _visible_task(
            np.int64(t), W, b, hs, gptr, ge, off, keys, lv_data, cur, probs, draw, sqe, last,
            mean_field, onehot, tg, acc, gb, xbuf, bits, scale,
        )  # fmt: skip


@njit(cache=True, inline="always")
def _cd_chains(
    indptr, rows, W, b, c, hidden_offset, cd_steps, states, chain_levels, use_chain, neg_mode,
    off, gptr, ge, levels_b, vneg, hpos, hneg, recon, gb, acc, scattered,
):  # fmt: skip
    """Both phases of every batch row; fills hpos, vneg, hneg, recon, gb (and the chains).

    Returns the levels of the last visible step (int8, one per batch entry). ``acc``
    (_N_TASKS, n_batch, n_hidden) is the tasks' scratch; ``scattered``: it already holds the
    positive phase's sums of :func:`_scatter_levels` (see
    :func:`~rbmrec.engine.softmax_weight_update.softmax_update_then_scatter`).

    Item-major: the batch's entries are visited grouped by visible group (``gptr`` and ``ge`` from
    :func:`~rbmrec.engine.softmax_grouping._group_entries`), so each ``W[i]`` is streamed from
    memory once per phase of a mini-batch instead of once per rating, and each visible step also
    accumulates the next hidden input while ``W[i]`` is in cache. Random numbers: row ``r`` samples
    its hidden units from ``states[r]`` in unit order, then draws one 64-bit key per Gibbs step from
    the same stream; its ``t``-th entry's level is output ``t`` of a SplitMix64 stream seeded at
    that key (:func:`rbmrec.engine._random.stream_uniform`).
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
        # use_chain (True here), not a literal True: one compiled specialisation, not two.
        _hidden_from_tasks(base, acc, hneg, use_chain, states, hs, keys)
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
