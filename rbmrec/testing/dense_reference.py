"""A dense NumPy reference of the user-based softmax RBM and its CD-1 step.

The textbook way to train the model of ``rbmrec.RatingRBM(orientation="user",
conditional=False)``: one-hot ratings ``V`` of shape (batch, n_items, K), BLAS products over
all items and a masked softmax over levels. The speed benchmark (``benchmarks/speed.py``)
times the sparse engine against it, and the tests check that it computes what the engine
computes, so the comparison is like for like. Plain NumPy, like :mod:`numpy.testing`: no
kernel of :mod:`rbmrec.engine` runs here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DenseSoftmaxRBM",
    "dense_cd1_gradients",
    "dense_hidden_probs",
    "dense_onehot",
    "dense_visible_probs",
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in place (float32 stays float32; exp overflow gives exactly 0)."""
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1.0
        np.reciprocal(x, out=x)
    return x


def dense_onehot(
    indptr: np.ndarray,
    indices: np.ndarray,
    levels: np.ndarray,
    rows: np.ndarray,
    n_items: int,
    n_levels: int,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot ratings and the rated-item mask of a mini-batch of users.

    Parameters
    ----------
    indptr, indices, levels : ndarray
        Users x items CSR: (n_users + 1,), (nnz,) item indices, (nnz,) 0-based levels.
    rows : ndarray of int, shape (batch,)
        Users of the batch.
    n_items, n_levels : int
    dtype : numpy dtype, default float32

    Returns
    -------
    V : ndarray, shape (batch, n_items, n_levels)
        ``V[r, i, k] = 1`` when user ``rows[r]`` rated item ``i`` with level ``k``.
    mask : ndarray, shape (batch, n_items)
        1 where the user rated the item.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts, stops = indptr[rows], indptr[rows + 1]
    counts = stops - starts
    # Positions of the batch's entries in the CSR, without a Python loop over users.
    pos = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
    r = np.repeat(np.arange(rows.size), counts)
    V = np.zeros((rows.size, n_items, n_levels), dtype=dtype)
    V[r, indices[pos], levels[pos]] = 1.0
    mask = np.zeros((rows.size, n_items), dtype=dtype)
    mask[r, indices[pos]] = 1.0
    return V, mask


def dense_hidden_probs(V: np.ndarray, W: np.ndarray, c: np.ndarray) -> np.ndarray:
    """p(h = 1 | v) = sigmoid(V @ W + c), shape (batch, n_hidden).

    ``V`` (batch, n_items, K), ``W`` (n_items, K, n_hidden), ``c`` (n_hidden,).
    """
    batch, n_hidden = V.shape[0], W.shape[2]
    x = V.reshape(batch, -1) @ W.reshape(-1, n_hidden)
    x += c
    return _sigmoid(x)


def dense_visible_probs(
    hs: np.ndarray, mask: np.ndarray, W: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Masked softmax over levels of ``hs @ W^T + b``, shape (batch, n_items, K).

    ``hs`` (batch, n_hidden) hidden values, ``mask`` (batch, n_items); unrated items get 0.
    """
    batch = hs.shape[0]
    n_items, n_levels, n_hidden = W.shape
    a = (hs @ W.reshape(-1, n_hidden).T).reshape(batch, n_items, n_levels)
    a += b
    a -= a.max(axis=2, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=2, keepdims=True)
    a *= mask[:, :, None]
    return a


def dense_cd1_gradients(
    V: np.ndarray,
    mask: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    rng: np.random.Generator | None = None,
    hidden_sample: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CD-1 statistics of a batch, summed over its users (positive minus negative phase).

    The negative phase is the engine's default ``negative="mean_field"``: visible softmax
    probabilities of the rated items given a binary hidden sample, then the hidden
    probabilities they induce.

    Parameters
    ----------
    V, mask : ndarray, shapes (batch, n_items, K), (batch, n_items)
        From :func:`dense_onehot`.
    W, b, c : ndarray, shapes (n_items, K, n_hidden), (n_items, K), (n_hidden,)
    rng : numpy.random.Generator, optional
        Draws the hidden sample (needed unless ``hidden_sample`` is given).
    hidden_sample : ndarray, shape (batch, n_hidden), optional
        A given binary hidden sample (for exact expectations in tests).

    Returns
    -------
    gW, gb, gc : ndarray, shapes like W, b, c
    """
    batch = V.shape[0]
    n_hidden = W.shape[2]
    hpos = dense_hidden_probs(V, W, c)
    if hidden_sample is None:
        if rng is None:
            raise ValueError("dense_cd1_gradients needs rng or hidden_sample")
        hs = (rng.random(hpos.shape, dtype=hpos.dtype) < hpos).astype(hpos.dtype)
    else:
        hs = np.asarray(hidden_sample, dtype=hpos.dtype)
    vneg = dense_visible_probs(hs, mask, W, b)
    hneg = dense_hidden_probs(vneg, W, c)
    Vf, vnf = V.reshape(batch, -1), vneg.reshape(batch, -1)
    gW = Vf.T @ hpos
    gW -= vnf.T @ hneg
    gb = V.sum(axis=0) - vneg.sum(axis=0)
    gc = hpos.sum(axis=0) - hneg.sum(axis=0)
    return gW.reshape(W.shape[0], W.shape[1], n_hidden), gb, gc


@dataclass
class DenseSoftmaxRBM:
    """The user-based softmax RBM trained the textbook (dense) way, for speed comparisons.

    Same model, CD-1 estimator (mean-field negative phase) and update rule as
    ``rbmrec.RatingRBM(orientation="user", conditional=False)``: for each parameter,
    ``velocity = momentum * velocity + learning_rate * (g / batch - weight_decay * p)``,
    ``p += velocity`` (weight decay on ``W`` only).

    Parameters
    ----------
    W, b, c : ndarray, shapes (n_items, K, n_hidden), (n_items, K), (n_hidden,)
        Parameters, updated in place.
    learning_rate, momentum, weight_decay : float
    """

    W: np.ndarray
    b: np.ndarray
    c: np.ndarray
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.002

    def __post_init__(self) -> None:
        self._vel = {k: np.zeros_like(getattr(self, k)) for k in ("W", "b", "c")}

    @classmethod
    def init(
        cls, n_items: int, n_levels: int, n_hidden: int, seed: int = 0, **kwargs: float
    ) -> DenseSoftmaxRBM:
        """Random float32 weights N(0, 0.01^2), zero biases."""
        rng = np.random.default_rng(seed)
        W = rng.normal(0.0, 0.01, (n_items, n_levels, n_hidden)).astype(np.float32)
        return cls(
            W, np.zeros((n_items, n_levels), np.float32), np.zeros(n_hidden, np.float32), **kwargs
        )

    def step(self, V: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
        """One CD-1 mini-batch update."""
        grads = dict(
            zip(
                ("W", "b", "c"),
                dense_cd1_gradients(V, mask, self.W, self.b, self.c, rng),
                strict=True,
            )
        )
        scale = self.learning_rate / V.shape[0]
        for name, g in grads.items():
            p, v = getattr(self, name), self._vel[name]
            v *= self.momentum
            g *= scale
            v += g
            if name == "W" and self.weight_decay:
                v -= (self.learning_rate * self.weight_decay) * p
            p += v

    def epoch(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        levels: np.ndarray,
        batch_size: int,
        rng: np.random.Generator,
        max_batches: int | None = None,
    ) -> dict[str, Any]:
        """One CD-1 epoch over shuffled users, or its first ``max_batches`` batches.

        Returns
        -------
        dict
            ``seconds`` (timed part), ``batches`` / ``batches_total``, ``ratings`` in the
            timed batches, ``epoch_seconds`` and ``extrapolated``. A partial epoch is
            extrapolated by batch count: a dense batch costs the same whatever number of
            ratings it holds.
        """
        n_users = indptr.size - 1
        n_items, n_levels = self.W.shape[0], self.W.shape[1]
        order = rng.permutation(n_users)
        total = -(-n_users // batch_size)
        n = total if max_batches is None else min(total, max_batches)
        ratings = 0
        t0 = time.perf_counter()
        for t in range(n):
            rows = order[t * batch_size : (t + 1) * batch_size]
            V, mask = dense_onehot(indptr, indices, levels, rows, n_items, n_levels)
            self.step(V, mask, rng)
            ratings += int((indptr[rows + 1] - indptr[rows]).sum())
        seconds = time.perf_counter() - t0
        return {
            "seconds": seconds,
            "batches": n,
            "batches_total": total,
            "ratings": ratings,
            "epoch_seconds": seconds * total / n,
            "extrapolated": n < total,
        }
