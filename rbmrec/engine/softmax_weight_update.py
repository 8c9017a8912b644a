"""The softmax RBM's weight statistics and their fused momentum step.

Built group by group from the chains' phases (:func:`rbmrec.engine.softmax.softmax_cd_phases`):
:func:`_accumulate` writes the full statistics ``gW``; :func:`softmax_update_weights` applies
``vW = mom vW + scale gW - lr_wd W; W += vW`` one group at a time without materialising
``gW`` (optionally with CF-NADE's ordinal sharing across levels, :func:`_ordinal_levels`);
:func:`softmax_update_then_scatter` also sums the next mini-batch's positive hidden input
while each ``W[i]`` is in cache. Work is split into a fixed number of chunks, so the
results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine.softmax_grouping import _N_TASKS, _task_groups

#: Flags of the fused weight update: contraction only. Its loops are element-wise over hidden
#: units and need no reassociation to vectorise; with it, the code LLVM compiled in the
#: process differed in the last bits from the same kernel loaded from Numba's cache (so a
#: first, compiling run trained differently from later ones).
_UPDATE_MATH = {"contract"}


@njit(cache=True, inline="always", fastmath=_UPDATE_MATH)
def _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, gi):
    """g[gi] (n_levels, n_hidden) = group i's weight statistics, entries taken in batch order.

    ``neg_levels`` (one level per batch entry) gives the one-hot negative visible states of sampled
    CD, so each entry adds two rows without scanning ``vneg``; when it is empty (mean-field
    negatives) every level gets ``vneg[q, k] * hneg[r]``. ``g`` is indexed directly (no row views:
    see :func:`~rbmrec.engine.softmax_chains._visible_step`). With five mean-field levels the
    negative terms of four entries are summed before they reach ``g``: a quarter of the loads and
    stores of ``g`` (the weight update ran 19 % faster).
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


@njit(cache=True, inline="always", fastmath=_UPDATE_MATH)
def _ordinal_levels(g, t):
    """In place, ``g[t]`` (n_levels, n_hidden) becomes ``C C^T g[t]`` along the level axis,
    ``C`` the lower-triangular ones (level ``k``'s row: ``sum_k' (min(k, k') + 1) g[t, k']``):
    a reverse prefix sum, then a prefix sum, each element-wise over hidden units.

    That is the ordinal weight sharing of CF-NADE (Zheng et al. 2016), ``W_k = sum_{j<=k}
    U_j``, trained in ``W``: a momentum step ``v_U = mom v_U + s C^T g - d U`` on ``U`` is
    ``v_W = mom v_W + s C C^T g - d W`` on ``W = C U`` (``v_W = C v_U``).
    """
    n_levels, n_hidden = g.shape[1], g.shape[2]
    for k in range(n_levels - 2, -1, -1):
        for j in range(n_hidden):
            g[t, k, j] += g[t, k + 1, j]
    for k in range(1, n_levels):
        for j in range(n_hidden):
            g[t, k, j] += g[t, k - 1, j]


@njit(cache=True, parallel=True)
def _accumulate(phases, gW):
    """gW[i] = sum over group i's entries of onehot(data) hpos - vneg hneg (parallel over i)."""
    _, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels = phases
    for i in prange(gW.shape[0]):
        _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, gW, i)


@njit(cache=True, inline="always")
def softmax_update_weights(phases, W, vW, scale, mom, lr_wd, ordinal):
    """Fused weight statistics and momentum step: ``vW = mom vW + scale gW - lr_wd W; W += vW``.

    ``gW`` (the batch's positive minus negative statistics, see
    :func:`~rbmrec.engine.softmax.softmax_cd`) is built one group at a time in a small per-task
    buffer and applied at once, so the full gradient array is never written or read: per mini-batch
    the weights and velocities are streamed once. Groups the batch does not observe have
    ``gW[i] = 0`` and only decay. The groups are cut into ``_N_TASKS`` runs of equal length (a
    constant split, so the results never depend on the thread count), and the work is
    :func:`softmax_update_then_scatter`'s with no next batch: one compiled kernel serves both.

    Parameters
    ----------
    phases : tuple
        What :func:`~rbmrec.engine.softmax.softmax_cd_phases` returned for this batch (statistics of
        the chains).
    W, vW : ndarray, shape (n_visible, n_levels, n_hidden)
        Weights and their velocities, updated in place.
    scale, mom, lr_wd : float
        ``learning_rate / batch_size``, momentum and ``learning_rate * weight_decay``.
    ordinal : bool
        Ordinal weight sharing: each observed group's statistics ``gW[i]`` become
        ``C C^T gW[i]`` along the levels first (:func:`_ordinal_levels`). A runtime value
        (not a literal), so one compiled kernel serves both settings.
    """
    n_visible = W.shape[0]
    tg = np.empty(_N_TASKS + 1, dtype=np.int64)
    for t in range(_N_TASKS + 1):
        tg[t] = (n_visible * t) // _N_TASKS
    no_entries = np.zeros(n_visible + 1, dtype=np.int64)
    ge = phases[5]
    no_acc = np.empty((_N_TASKS, 0, W.shape[2]), dtype=W.dtype)
    _update_tasks(
        phases, W, vW, scale, mom, lr_wd, ordinal, tg, no_entries, ge[:0], phases[6][:0], no_acc
    )


@njit(cache=True, inline="always")
def softmax_update_then_scatter(
    phases, W, vW, scale, mom, lr_wd, ordinal, gptr2, ge2, levels2, acc2
):
    """:func:`softmax_update_weights` of one batch fused with
    :func:`~rbmrec.engine.softmax_chains._scatter_levels` of the next: each row ``W[i]`` is
    updated and, while in cache, added to the next batch's positive hidden input of every entry
    of item ``i``.

    Same numbers as the two calls in turn: every row's update is the same arithmetic, only split by
    the next batch's tasks (:func:`~rbmrec.engine.softmax_grouping._task_groups` of ``gptr2``, which
    cover all groups) instead of equal runs, and each task's sums take the same entries in the
    same order as :func:`~rbmrec.engine.softmax_chains._scatter_levels`. One pass over ``W`` per
    batch less.

    Parameters
    ----------
    phases, W, vW, scale, mom, lr_wd, ordinal
        As :func:`softmax_update_weights`.
    gptr2, ge2, levels2 : ndarray
        The next batch's grouping (:func:`~rbmrec.engine.softmax_grouping._group_entries`) and data
        levels.
    acc2 : ndarray, shape (_N_TASKS, n_batch_next, n_hidden)
        Output: the next batch's per-task positive sums (``softmax_cd_phases_grouped``'s
        ``acc`` with ``scattered=True``).
    """
    tg = _task_groups(gptr2)
    _update_tasks(phases, W, vW, scale, mom, lr_wd, ordinal, tg, gptr2, ge2, levels2, acc2)


@njit(cache=True, parallel=True, fastmath=_UPDATE_MATH)
def _update_tasks(phases, W, vW, scale, mom, lr_wd, ordinal, tg, gptr2, ge2, levels2, acc2):
    """The parallel loop of :func:`softmax_update_then_scatter` over the tasks' group runs
    ``tg`` (both public kernels are inlined wrappers of this one, so a cold start compiles it
    once)."""
    _, hpos, hneg, vneg, gptr, ge, levels_b, neg_levels = phases
    n_levels, n_hidden = W.shape[1], W.shape[2]
    g = np.empty((_N_TASKS, n_levels, n_hidden), dtype=W.dtype)  # one buffer per task
    for t in prange(_N_TASKS):
        _update_scatter_task(
            np.int64(t), W, vW, scale, mom, lr_wd, ordinal, levels_b, neg_levels, gptr, ge, hpos,
            hneg, vneg, g, tg, gptr2, ge2, levels2, acc2,
        )  # fmt: skip


@njit(cache=True, fastmath=_UPDATE_MATH)
def _update_scatter_task(
    t, W, vW, scale, mom, lr_wd, ordinal, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, tg,
    gptr2, ge2, levels2, acc2,
):  # fmt: skip
    """Task ``t``'s groups in :func:`_update_tasks` (statistics in ``g[t]``). A serial
    function called once per task from the parallel loop, not the loop's body: Numba's
    parallel passes on this body took seconds of a cold start."""
    n_levels, n_hidden = W.shape[1], W.shape[2]
    n_batch2 = acc2.shape[1]
    for r in range(n_batch2):
        for j in range(n_hidden):
            acc2[t, r, j] = 0.0
    for i in range(tg[t], tg[t + 1]):
        if gptr[i + 1] > gptr[i]:
            _group_gradient(i, levels_b, neg_levels, gptr, ge, hpos, hneg, vneg, g, t)
            if ordinal:
                _ordinal_levels(g, t)
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
