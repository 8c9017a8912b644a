"""Kernels for RBMs with K-way softmax visible units and binary hidden units: the entry points.

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

This module holds the CD-k statistics of a mini-batch (:func:`softmax_cd`, and its phases
for the fused weight update) and is where the models take every softmax kernel from. The
phases live in modules of their own:

- :mod:`rbmrec.engine.softmax_grouping`: the counting sort of a batch's entries by visible
  group and its split into tasks;
- :mod:`rbmrec.engine.softmax_logits`: one group's level logits, softmax and level draw;
- :mod:`rbmrec.engine.softmax_chains`: the item-major Gibbs chains (hidden passes, visible
  steps);
- :mod:`rbmrec.engine.softmax_weight_update`: the weight statistics and the fused momentum
  step (:func:`softmax_update_weights`, :func:`softmax_update_then_scatter`), with optional
  ordinal sharing across levels;
- :mod:`rbmrec.engine.softmax_inference`: the row-by-row kernels of a trained model (hidden
  probabilities, free energy, Gibbs sampling, visible and predictive level distributions,
  level scores for ranking);
- :mod:`rbmrec.engine.softmax_batches`: spans of consecutive mini-batches in one call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rbmrec.engine.softmax_chains import NEG_MEAN_FIELD, NEG_SAMPLE, _cd_chains
from rbmrec.engine.softmax_grouping import _N_TASKS, _batch_offsets, _group_entries
from rbmrec.engine.softmax_inference import (
    softmax_free_energy,
    softmax_gibbs,
    softmax_hidden_input,
    softmax_hidden_probs,
    softmax_level_scores,
    softmax_pair_probs,
    softmax_visible_probs,
)
from rbmrec.engine.softmax_weight_update import (
    _accumulate,
    softmax_update_then_scatter,
    softmax_update_weights,
)

__all__ = [
    "NEG_MEAN_FIELD",
    "NEG_SAMPLE",
    "softmax_cd",
    "softmax_cd_phases",
    "softmax_cd_phases_grouped",
    "softmax_free_energy",
    "softmax_gibbs",
    "softmax_hidden_input",
    "softmax_hidden_probs",
    "softmax_level_scores",
    "softmax_pair_probs",
    "softmax_update_then_scatter",
    "softmax_update_weights",
    "softmax_visible_probs",
]


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
    # ``cd_steps < 0`` is a False typed bool, as in the span kernel: a literal False would
    # compile the chains' kernel tree a second time.
    return softmax_cd_phases_grouped(
        indptr, rows, off, gptr, ge, levels_b, W, b, c, hidden_offset, cd_steps, states,
        chain_levels, use_chain, gb, gc, h_diff, neg_mode, acc, cd_steps < 0,
    )  # fmt: skip


@njit(cache=True, inline="always")
def softmax_cd_phases_grouped(
    indptr, rows, off, gptr, ge, levels_b, W, b, c, hidden_offset, cd_steps, states,
    chain_levels, use_chain, gb, gc, h_diff, neg_mode, acc, scattered,
):  # fmt: skip
    """:func:`softmax_cd_phases` of a batch already grouped: ``off`` from
    :func:`~rbmrec.engine.softmax_grouping._batch_offsets` and ``(gptr, ge, levels_b)`` from
    :func:`~rbmrec.engine.softmax_grouping._group_entries` (or
    :func:`~rbmrec.engine.softmax_grouping._group_entries_into`) for these ``rows``; ``acc``
    scratch of shape (_N_TASKS, n_batch, n_hidden), already holding the positive phase's sums
    when ``scattered`` (:func:`softmax_update_then_scatter`)."""
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
