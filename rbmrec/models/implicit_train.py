"""Training of one :class:`~rbmrec.models.implicit.ImplicitRBM`: its initial parameters and
the mini-batch CD step the shared trainer (:func:`rbmrec.models.trainer.train`) calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine._random import row_states
from rbmrec.engine.sparse_binary import (
    add_positive_stats,
    batch_item_major,
    csr_hidden_probs,
    csr_hidden_probs_dropout,
    mean_field_negative,
    pcd_negative,
    sample_bernoulli_rows,
    softmax_mean_field_negative,
)


@dataclass
class _TrainData:
    """Parameters (trained in place), training arrays and settings of one RBM's training."""

    indptr: np.ndarray
    indices: np.ndarray
    weight: np.ndarray
    W: np.ndarray
    b: np.ndarray
    c: np.ndarray
    chains: np.ndarray | None
    sample_hidden: bool
    keep: float
    gamma: float
    length_ref: float
    scale_all: np.ndarray
    draws_all: np.ndarray
    softmax: bool
    n_items: int

    @classmethod
    def initial(cls, model: Any, X: sp.csr_matrix, rng: np.random.Generator) -> _TrainData:
        """Initial parameters of ``model`` (an ImplicitRBM) on interactions ``X``.

        Weights ``N(0, init_std^2)``, hidden biases 0, visible biases the log-odds of the
        items' smoothed popularity (Bernoulli) or the log of their share of all
        interactions (softmax); persistent chains start at the popularity.
        """
        n_users, n_items = X.shape
        W = (model.init_std * rng.standard_normal((n_items, model.n_hidden))).astype(np.float32)
        counts = np.diff(sp.csc_matrix(X).indptr).astype(np.float64)
        pop = (counts + 1.0) / (n_users + 2.0)
        if model.visible == "softmax":
            # log of the items' share of all interactions: the softmax of b alone is then
            # the (smoothed) popularity distribution, the counterpart of the log-odds below
            b = np.log((counts + 1.0) / (counts.sum() + n_items)).astype(np.float32)
        else:
            b = np.log(pop / (1.0 - pop)).astype(np.float32)
        c = np.zeros(model.n_hidden, dtype=np.float32)
        chains = None
        if model.negative == "pcd":
            chains = (rng.random((model.n_chains, n_items)) < pop).astype(np.float32)
        return cls.on_rows(model, X, float(np.diff(X.indptr).mean()), (W, b, c), chains)

    @classmethod
    def on_rows(
        cls,
        model: Any,
        X: sp.csr_matrix,
        length_ref: float,
        params: tuple[np.ndarray, np.ndarray, np.ndarray],
        chains: np.ndarray | None = None,
    ) -> _TrainData:
        """The training arrays of ``model`` (an ImplicitRBM) on the users of ``X`` with
        parameters ``params = (W, b, c)`` (used in place) and ``chains``.

        Parameters
        ----------
        X : scipy.sparse.csr_matrix, shape (n_rows, n_items)
            Canonical interactions: every user of the fit, or a shard of them.
        length_ref : float
            The mean number of items per user over the whole training data (the reference
            of ``length_norm`` and of the softmax hidden-bias step).
        params : (ndarray (n_items, n_hidden), ndarray (n_items,), ndarray (n_hidden,))
        chains : ndarray, shape (n_chains, n_items), optional
            Persistent chains (``negative="pcd"``).
        """
        weight = np.ones_like(X.data)
        if model.confidence > 0:
            # A stored value <= 0 is still an interaction, weighted as a value of 0.
            weight = (1.0 + model.confidence * np.log1p(np.maximum(X.data, 0))).astype(np.float32)
        indptr, indices = X.indptr, X.indices
        W, b, c = params
        gamma = float(model.length_norm)
        rows = np.arange(X.shape[0], dtype=np.int64)
        return cls(
            indptr=indptr, indices=indices, weight=weight, W=W, b=b, c=c, chains=chains,
            sample_hidden=bool(model.sample_hidden), keep=1.0 - float(model.input_dropout),
            gamma=gamma, length_ref=float(length_ref),
            scale_all=_row_scale(indptr, rows, gamma, float(length_ref)),
            draws_all=np.diff(indptr).astype(np.float64),  # D of every user (softmax)
            softmax=model.visible == "softmax", n_items=X.shape[1],
        )  # fmt: skip


def _cd_step(
    data: _TrainData, rows: np.ndarray, k: int, rng_: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One mini-batch of CD-``k`` (or PCD) on ``rows``: gradients and batch statistics."""
    indptr, indices, weight = data.indptr, data.indices, data.weight
    W, b, c, chains = data.W, data.b, data.c, data.chains
    keep, gamma, softmax, n_items = data.keep, data.gamma, data.softmax, data.n_items
    scale_all, draws_all, sample_hidden = data.scale_all, data.draws_all, data.sample_hidden
    length_ref = data.length_ref
    gW = np.zeros_like(W)
    gb = np.zeros_like(b)
    gc = np.zeros_like(c)
    states = row_states(rng_, len(rows))
    s = scale_all[rows]
    d = draws_all[rows] if softmax else None
    if keep < 1.0:
        h0 = csr_hidden_probs_dropout(indptr, indices, rows, W, c, s, keep, states, d)
    else:
        h0 = csr_hidden_probs(indptr, indices, rows, W, c, s, d)
    col_ptr, batch_row, w = batch_item_major(indptr, indices, weight, rows, n_items)
    # d(-E)/dW_ij = s v_i h_j: the positive statistics carry the row scale
    add_positive_stats(col_ptr, batch_row, w, h0 if gamma == 0 else h0 * s[:, None], gW, gb)
    if softmax:  # d(-E)/dc_j = D h_j
        gc += (d @ h0.astype(np.float64)).astype(np.float32)
    else:
        gc += h0.sum(axis=0, dtype=np.float64).astype(np.float32)
    hs = sample_bernoulli_rows(h0, states) if sample_hidden else h0
    grads = {"W": gW, "b": gb, "c": gc}
    if chains is not None:
        cstates = row_states(rng_, chains.shape[0])
        scale = len(rows) / chains.shape[0]
        pcd_negative(chains, W, b, c, k, cstates, gW, gb, gc, scale)
        return grads, {}
    s_neg = None if gamma == 0 else s
    if softmax:
        v1 = softmax_mean_field_negative(hs, W, b, c, k, states, gW, gb, gc, d, s_neg)
    else:
        v1 = mean_field_negative(hs, W, b, c, k, states, gW, gb, gc, s_neg)
    # squared reconstruction error over all items: |v1|^2 - 2 v1.v0 + |v0|^2
    sq = float(np.einsum("ij,ij->", v1, v1, dtype=np.float64))
    item_of = np.repeat(np.arange(n_items), np.diff(col_ptr))
    hit = float(v1[batch_row, item_of].sum(dtype=np.float64))
    nnz = float(batch_row.size)
    if softmax:
        # the hidden-bias statistics are D times larger than the weights' (D c.h in
        # the energy); a step of the same size made c swing by several units per
        # epoch on ML-1M (mean D = 134) and froze the hidden units. Dividing by the
        # mean D lowers c's step size only, not the gradient's direction or zero.
        gc /= np.float32(length_ref)
    return grads, {"recon_error": (sq - 2.0 * hit + nnz) / n_items}


def _draws(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Number of stored items of each CSR row, float64 of shape (len(rows),)."""
    return (indptr[rows + 1] - indptr[rows]).astype(np.float64)


def _row_scale(indptr: np.ndarray, rows: np.ndarray, gamma: float, ref: float) -> np.ndarray:
    """Input scale ``(n_r / ref) ** -gamma`` of each row (``n_r`` = its number of items).

    Returns float64 ones when ``gamma == 0``; rows without items get scale 1.

    Parameters
    ----------
    indptr : int array, shape (n_users + 1,)
    rows : int64 array, shape (n,)
    gamma : float
    ref : float
        Reference length (the mean number of items per training user).

    Returns
    -------
    float64 array, shape (n,)
    """
    if gamma == 0:
        return np.ones(rows.size, dtype=np.float64)
    n = (indptr[rows + 1] - indptr[rows]).astype(np.float64)
    return (np.maximum(n, 1.0) / ref) ** -gamma
