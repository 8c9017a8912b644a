"""Consecutive mini-batches of the softmax RBM's training, in compiled code.

The trainer's loop (:func:`rbmrec.models.trainer.train`) calls a model's batch step and
then the momentum step of every parameter from Python, once per mini-batch. For the rating
RBM on ML-1M (61 batches of 100 users, about 1.7 ms of kernels each) the Python between
the kernels, including boxing the arrays the kernels return and unboxing them again, is
several percent of an epoch. :func:`softmax_train_batches` runs a span of batches in one
call, with exactly the arithmetic of that loop: the same kernels in the same order, the
momentum step's scalars rounded to the parameters' dtype the same way, and the rows' random
states taken in order from one array drawn for the whole span (a generator's raw outputs
drawn at once equal the same outputs drawn batch by batch). So both paths train bitwise the
same model (a test checks it).

Two things differ from the batch loop, without changing any number: the counting sorts that
group each batch's entries by item (serial within a batch) run for all the span's batches
at once, in parallel (they depend on the data only, not on the parameters); and each
batch's weight update is fused with the next batch's positive pass over ``W``
(:func:`~rbmrec.engine.softmax_weight_update.softmax_update_then_scatter`), one pass over
``W`` per batch less. The span's last update is a plain one, so ``W`` is up to date when the
call returns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine.conditional import pattern_momentum_update, pattern_offset
from rbmrec.engine.softmax import softmax_cd_phases_grouped
from rbmrec.engine.softmax_grouping import _N_TASKS, _batch_offsets, _group_entries_into
from rbmrec.engine.softmax_weight_update import (
    softmax_update_then_scatter,
    softmax_update_weights,
)
from rbmrec.engine.update import momentum_update_serial


@njit(cache=True, parallel=True)
def _group_span(indptr, indices, levels, order, batch_size, n_visible):
    """The entries of every batch of ``order`` grouped by visible group, in parallel over
    the batches: returns ``(starts, gptr, ge, levels_b)`` where batch ``t``'s grouping (as
    :func:`rbmrec.engine.softmax_grouping._group_entries` returns it) is ``gptr[t]`` and the rows
    ``starts[t]:starts[t + 1]`` of ``ge`` and ``levels_b``."""
    n = order.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    starts = np.zeros(n_batches + 1, dtype=np.int64)
    for t in range(n_batches):
        m = 0
        for s in range(t * batch_size, min(n, (t + 1) * batch_size)):
            m += indptr[order[s] + 1] - indptr[order[s]]
        starts[t + 1] = starts[t] + m
    gptr = np.zeros((n_batches, n_visible + 1), dtype=np.int64)
    ge = np.empty((starts[n_batches], 2), dtype=np.int32)
    levels_b = np.empty(starts[n_batches], dtype=np.int8)
    for t in prange(n_batches):
        rows = order[t * batch_size : min(n, (t + 1) * batch_size)]
        a, z = starts[t], starts[t + 1]
        _group_entries_into(
            indptr, indices, levels, rows, _batch_offsets(indptr, rows), gptr[t], ge[a:z],
            levels_b[a:z],
        )  # fmt: skip
    return starts, gptr, ge, levels_b


@njit(cache=True)
def softmax_train_batches(
    indptr, indices, levels, order, batch_size, states, W, b, c, vW, vb, vc,
    r_indptr, r_indices, D, vD, lr, mom, lr_wd_W, lr_wd_D, cd_steps, chain_levels,
    use_chain, neg_mode, stats, ordinal, ordinal_gain,
):  # fmt: skip
    """CD-k statistics and momentum steps of the mini-batches ``order[s:s + batch_size]``.

    For each batch in turn: the conditional offset ``R[rows] @ D``
    (:func:`~rbmrec.engine.conditional.pattern_offset`, when ``D`` has rows), the chains
    (:func:`~rbmrec.engine.softmax.softmax_cd_phases`), then
    ``v = mom v + scale g - lr_wd p; p += v`` with ``scale = lr / len(rows)`` for ``W``
    (fused with its statistics), ``b`` and ``c`` (no decay) and ``D``.

    Parameters
    ----------
    indptr, indices, levels : ndarray
        CSR of observed groups: (n_rows + 1,), int32 (nnz,), int8 (nnz,) 0-based levels.
    order : ndarray of int64, shape (n,)
        Rows in training order; batch ``t`` is ``order[t * batch_size:(t + 1) * batch_size]``.
    batch_size : int
        Rows per mini-batch (the last one may be shorter).
    states : ndarray of uint64, shape (n,)
        Random state of each entry of ``order`` (advanced in place).
    W, vW : ndarray, shape (n_visible, n_levels, n_hidden)
        Weights and velocities, updated in place.
    b, vb : ndarray, shape (n_visible, n_levels)
        Visible biases and velocities (C-contiguous), updated in place.
    c, vc : ndarray, shape (n_hidden,)
        Hidden biases and velocities, updated in place.
    r_indptr, r_indices : ndarray
        CSR structure of the conditional pattern ``R`` (n_rows + 1,), (nnz_r,); ignored
        when ``D`` has no rows.
    D, vD : ndarray, shape (n_cols, n_hidden) or (0, n_hidden)
        Conditional weights and velocities, updated in place; (0, n_hidden) for none.
    lr, mom : float
        Learning rate and momentum of this epoch.
    lr_wd_W, lr_wd_D : float
        ``lr * weight_decay`` of ``W`` and ``D`` (0 for no decay).
    cd_steps : int
        Gibbs steps k >= 1.
    chain_levels : ndarray of int8, shape (nnz,) or (0,)
        Persistent fantasy levels (read and written when ``use_chain``).
    use_chain : bool
        Persistent CD.
    neg_mode : int
        :data:`~rbmrec.engine.softmax.NEG_SAMPLE` or
        :data:`~rbmrec.engine.softmax.NEG_MEAN_FIELD`.
    stats : ndarray of float64, shape (n_batches, 2)
        Output: per batch, what :func:`~rbmrec.engine.softmax.softmax_cd` returns (squared
        reconstruction error summed over the batch's entries, number of entries).
    ordinal : bool
        Ordinal sharing of ``W``'s statistics across levels
        (:func:`~rbmrec.engine.softmax_weight_update.softmax_update_weights`), whose step
        then uses ``scale * ordinal_gain``.
    ordinal_gain : float
        Factor of the ordinal step's ``scale`` (unused without ordinal sharing).
    """
    n = order.shape[0]
    n_hidden = c.shape[0]
    conditional = D.shape[0] > 0
    no_offset = np.empty((0, n_hidden), dtype=W.dtype)
    gb = np.empty_like(b)
    gc = np.empty_like(c)
    b1, vb1, gb1 = b.reshape(-1), vb.reshape(-1), gb.reshape(-1)
    # The scalars of the momentum steps in the parameters' dtype, rounded from float64 as
    # the Python loop rounds them (``dtype.type(lr / len(rows))``).
    sc = np.empty(6, dtype=W.dtype)
    sc[1] = mom
    sc[2] = lr_wd_W
    sc[3] = lr_wd_D
    sc[4] = 0.0
    starts, gptr, ge, levels_b = _group_span(indptr, indices, levels, order, batch_size, W.shape[0])
    n_batches = starts.shape[0] - 1
    acc = np.empty((_N_TASKS, min(n, batch_size), n_hidden), dtype=W.dtype)
    # acc holds this batch's positive sums (fused into the last update). A computed False:
    # typed from the literal ``False``, Numba compiles the whole chain kernel tree twice
    # (for Literal[bool](False) and for bool) on a cold start.
    scattered = n < 0
    t = 0
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        rows = order[s:e]
        n_batch = e - s
        offset = no_offset
        if conditional:
            offset = np.empty((n_batch, n_hidden), dtype=W.dtype)
            pattern_offset(r_indptr, r_indices, rows, D, offset)
        h_diff = np.empty((n_batch, n_hidden), dtype=W.dtype)
        a, z = starts[t], starts[t + 1]
        phases = softmax_cd_phases_grouped(
            indptr, rows, _batch_offsets(indptr, rows), gptr[t], ge[a:z], levels_b[a:z], W, b,
            c, offset, cd_steps, states[s:e], chain_levels, use_chain, gb, gc, h_diff, neg_mode,
            acc, scattered,
        )  # fmt: skip
        sc[0] = lr / n_batch
        # W's scale, rounded from float64 as the Python loop rounds ``scale * gain``.
        sc[5] = lr / n_batch * ordinal_gain if ordinal else lr / n_batch
        momentum_update_serial(b1, vb1, gb1, sc[0], sc[1], sc[4])
        momentum_update_serial(c, vc, gc, sc[0], sc[1], sc[4])
        if t + 1 < n_batches:
            a, z = starts[t + 1], starts[t + 2]
            # The next batch's positive sums, sized for it (the last batch may be shorter).
            acc = np.empty((_N_TASKS, min(n, e + batch_size) - e, n_hidden), dtype=W.dtype)
            softmax_update_then_scatter(
                phases, W, vW, sc[5], sc[1], sc[2], ordinal, gptr[t + 1], ge[a:z],
                levels_b[a:z], acc,
            )  # fmt: skip
            scattered = True
        else:
            softmax_update_weights(phases, W, vW, sc[5], sc[1], sc[2], ordinal)
        if conditional:
            pattern_momentum_update(r_indptr, r_indices, rows, h_diff, D, vD, sc[0], sc[1], sc[3])
        stats[t, 0] = phases[0][0]
        stats[t, 1] = phases[0][1]
        t += 1
