"""Kernels of RBMs over a sparse binary user-item matrix: sparse positive, dense negative phase.

Why these differ from the generic Bernoulli kernels in :mod:`rbmrec.engine.bernoulli`:
in top-N recommendation (:class:`rbmrec.ImplicitRBM`) *every* item is a visible unit, so
the data are a very sparse binary matrix (ML-1M: 4 % of the 6,040 x 3,706 entries are 1)
while the negative phase (the model's reconstruction) is dense by nature. The kernels here
are split accordingly:

- positive phase, sparse: :func:`csr_hidden_probs` computes ``p(h | v)`` from a user's
  interacted items only (sum of their weight rows), and :func:`add_positive_stats`
  accumulates ``v^T h`` item by item from an item-major copy of the batch
  (:func:`batch_item_major`), so its cost is proportional to the number of interactions;
- negative phase, dense: a mean-field (or sampled) reconstruction of all items for a batch
  is a pair of dense matrix products, which BLAS performs an order of magnitude faster than
  any hand-written loop (measured on ML-1M, 300 hidden units: about 1 s per epoch for the
  whole negative phase). :func:`mean_field_negative` and :func:`pcd_negative` therefore use
  numpy's BLAS-backed ``@`` for the products and Numba only for the element-wise parts;
- replicated softmax (Salakhutdinov & Hinton 2009): the same sparse positive phase with
  the hidden bias scaled by each user's number of items ``D`` (``bias_scale``), and a dense
  negative phase whose reconstruction is ``D * softmax(b + h W^T)`` over all items
  (:func:`softmax_affine_rows`, :func:`softmax_mean_field_negative`);
  :func:`softmax_free_energy` gives its free energy.

Every parallel kernel runs ``prange`` over rows (users or items) and writes only its own
row, so results do not depend on the number of threads. Randomness comes from one
SplitMix64 state per batch row (:mod:`rbmrec.engine._random`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rbmrec.engine._math import sigmoid, softplus
from rbmrec.engine._random import uniform

__all__ = [
    "add_positive_stats",
    "batch_item_major",
    "csr_hidden_probs",
    "csr_hidden_probs_dropout",
    "mean_field_negative",
    "pcd_negative",
    "sample_bernoulli_rows",
    "sigmoid_affine_rows",
    "sigmoid_scaled_bias_rows",
    "softmax_affine_rows",
    "softmax_free_energy",
    "softmax_mean_field_negative",
]


@njit(cache=True, parallel=True)
def csr_hidden_probs(indptr, indices, rows, W, c, row_scale, bias_scale=None):
    """Hidden probabilities ``p(h_j = 1 | v) = sigmoid(d_r c_j + s_r * sum_{i in v} W[i, j])``.

    Parameters
    ----------
    indptr : int32 or int64 array, shape (n_users + 1,)
    indices : int32 array, shape (nnz,)
        CSR structure of the binary visible matrix (values are not read: every stored
        entry is a visible unit equal to 1).
    rows : int64 array, shape (n_batch,)
        Rows (users) of the CSR matrix to process.
    W : float array, shape (n_items, n_hidden)
    c : float array, shape (n_hidden,)
    row_scale : float array, shape (n_batch,)
        Scale ``s_r`` of each row's visible-to-hidden input (all ones for a plain RBM; see
        ``length_norm`` of :class:`rbmrec.ImplicitRBM`).
    bias_scale : float array, shape (n_batch,), optional
        Multiplier ``d_r`` of the hidden bias of each row. None: 1 (Bernoulli visibles). The
        replicated softmax passes the row's number of items ``D``, since its energy carries
        ``D c.h`` (Salakhutdinov & Hinton 2009).

    Returns
    -------
    float array (dtype of ``W``), shape (n_batch, n_hidden)
    """
    n_batch = rows.shape[0]
    n_hidden = W.shape[1]
    out = np.empty((n_batch, n_hidden), dtype=W.dtype)
    for r in prange(n_batch):
        u = rows[r]
        acc = np.zeros(n_hidden, dtype=np.float64)
        for p in range(indptr[u], indptr[u + 1]):
            i = indices[p]
            for j in range(n_hidden):
                acc[j] += W[i, j]
        s = row_scale[r]
        d = 1.0 if bias_scale is None else bias_scale[r]
        for j in range(n_hidden):
            out[r, j] = sigmoid(d * c[j] + s * acc[j])
    return out


@njit(cache=True, parallel=True)
def csr_hidden_probs_dropout(indptr, indices, rows, W, c, row_scale, keep, states, bias_scale=None):
    """Hidden probabilities from a randomly thinned copy of each user's items.

    Each stored item of row ``rows[r]`` is kept with probability ``keep`` (drawn from
    ``states[r]``) and a kept item contributes ``W[i] / keep``, so the expected
    pre-activation equals that of :func:`csr_hidden_probs`. Used for denoising training:
    the hidden units must explain the user's items from a subset of them, which is the
    top-N task (predict unseen items from seen ones).

    Parameters
    ----------
    indptr, indices : arrays
        CSR structure, shape (n_users, n_items).
    rows : int64 array, shape (n_batch,)
    W : float array, shape (n_items, n_hidden)
    c : float array, shape (n_hidden,)
    row_scale : float array, shape (n_batch,)
        Scale of each row's input, as in :func:`csr_hidden_probs`.
    keep : float
        Probability of keeping an item, in (0, 1].
    states : uint64 array, shape (n_batch,)
        One random state per batch row; advanced in place.
    bias_scale : float array, shape (n_batch,), optional
        Hidden-bias multiplier of each row, as in :func:`csr_hidden_probs` (the replicated
        softmax passes the full item count: the thinned input is rescaled to it).

    Returns
    -------
    float array (dtype of ``W``), shape (n_batch, n_hidden)
    """
    n_batch = rows.shape[0]
    n_hidden = W.shape[1]
    out = np.empty((n_batch, n_hidden), dtype=W.dtype)
    for r in prange(n_batch):
        u = rows[r]
        acc = np.zeros(n_hidden, dtype=np.float64)
        for p in range(indptr[u], indptr[u + 1]):
            if uniform(states, r) >= keep:
                continue
            i = indices[p]
            for j in range(n_hidden):
                acc[j] += W[i, j]
        s = row_scale[r] / keep
        d = 1.0 if bias_scale is None else bias_scale[r]
        for j in range(n_hidden):
            out[r, j] = sigmoid(d * c[j] + s * acc[j])
    return out


@njit(cache=True, parallel=True)
def sample_bernoulli_rows(p, states):
    """Binary samples ``x[r, j] = 1 if u < p[r, j]`` with row ``r`` drawing from ``states[r]``.

    Parameters
    ----------
    p : float array, shape (n_rows, n_units)
        Probabilities.
    states : uint64 array, shape (n_rows,)
        One random state per row; advanced in place.

    Returns
    -------
    float array (dtype of ``p``), shape (n_rows, n_units)
    """
    n, m = p.shape
    out = np.empty_like(p)
    for r in prange(n):
        for j in range(m):
            out[r, j] = 1.0 if uniform(states, r) < p[r, j] else 0.0
    return out


@njit(cache=True, parallel=True)
def sigmoid_affine_rows(a, bias):
    """In place ``a[r, j] = sigmoid(a[r, j] + bias[j])``.

    Parameters
    ----------
    a : float array, shape (n_rows, n_units)
        Pre-activations without bias (e.g. the output of a matrix product).
    bias : float array, shape (n_units,)
    """
    n, m = a.shape
    for r in prange(n):
        for j in range(m):
            a[r, j] = sigmoid(a[r, j] + bias[j])


@njit(cache=True, parallel=True)
def sigmoid_scaled_bias_rows(a, bias, bias_scale):
    """In place ``a[r, j] = sigmoid(a[r, j] + bias_scale[r] * bias[j])``.

    Parameters
    ----------
    a : float array, shape (n_rows, n_units)
        Pre-activations without bias.
    bias : float array, shape (n_units,)
    bias_scale : float array, shape (n_rows,)
        Per-row multiplier of the bias (the replicated softmax's item count ``D``).
    """
    n, m = a.shape
    for r in prange(n):
        d = bias_scale[r]
        for j in range(m):
            a[r, j] = sigmoid(a[r, j] + d * bias[j])


@njit(cache=True, parallel=True)
def softmax_affine_rows(a, bias, total):
    """In place ``a[r] = total[r] * softmax(a[r] + bias)``: expected counts of ``total[r]`` draws.

    The replicated-softmax visible layer (Salakhutdinov & Hinton 2009): given the hidden
    units, each of a user's ``D`` items is an independent draw from one softmax over all
    items, so the mean-field reconstruction is ``D`` times that softmax. Max-shifted and
    accumulated in float64, so no logit overflows and the rows sum to ``total`` up to the
    output dtype's rounding.

    Parameters
    ----------
    a : float array, shape (n_rows, n_items)
        Logits without bias (``h W^T``); overwritten by the expected counts.
    bias : float array, shape (n_items,)
    total : float array, shape (n_rows,)
        Number of draws ``D`` of each row.
    """
    n, m = a.shape
    for r in prange(n):
        top = -np.inf
        for i in range(m):
            x = np.float64(a[r, i]) + bias[i]
            if x > top:
                top = x
        z = 0.0
        for i in range(m):
            z += np.exp(np.float64(a[r, i]) + bias[i] - top)
        f = total[r] / z
        for i in range(m):
            a[r, i] = f * np.exp(np.float64(a[r, i]) + bias[i] - top)


@njit(cache=True, parallel=True)
def softmax_free_energy(indptr, indices, rows, W, b, c, row_scale):
    """Free energy of binary count vectors under the replicated softmax.

    ``F(v) = -b.v - sum_j log(1 + exp(D c_j + s (v W)_j))`` with ``D = sum_i v_i`` the
    row's number of items and ``s`` its input scale, so that ``p(v) ∝ exp(-F(v))`` among
    ordered draw sequences of length ``D`` (Salakhutdinov & Hinton 2009, Eq. 3 without the
    multinomial coefficient).

    Parameters
    ----------
    indptr, indices : arrays
        CSR structure, shape (n_users, n_items); every stored entry is a 1.
    rows : int64 array, shape (n_batch,)
    W : float array, shape (n_items, n_hidden)
    b : float array, shape (n_items,)
    c : float array, shape (n_hidden,)
    row_scale : float array, shape (n_batch,)

    Returns
    -------
    float64 array, shape (n_batch,)
    """
    n_batch = rows.shape[0]
    n_hidden = W.shape[1]
    out = np.empty(n_batch, dtype=np.float64)
    for r in prange(n_batch):
        u = rows[r]
        acc = np.zeros(n_hidden, dtype=np.float64)
        vb = 0.0
        for p in range(indptr[u], indptr[u + 1]):
            i = indices[p]
            vb += b[i]
            for j in range(n_hidden):
                acc[j] += W[i, j]
        d = np.float64(indptr[u + 1] - indptr[u])
        s = row_scale[r]
        f = -vb
        for j in range(n_hidden):
            f -= softplus(d * c[j] + s * acc[j])
        out[r] = f
    return out


@njit(cache=True)
def batch_item_major(indptr, indices, data, rows, n_items):
    """Item-major (CSC-like) copy of the batch rows of a CSR matrix (counting sort).

    Parameters
    ----------
    indptr, indices, data : arrays
        CSR matrix, shape (n_users, n_items); ``data`` holds the positive-phase weight of
        each stored entry (1 for plain binary visibles).
    rows : int64 array, shape (n_batch,)
    n_items : int

    Returns
    -------
    col_ptr : int64 array, shape (n_items + 1,)
    batch_row : int64 array, shape (nnz_batch,)
        Position in ``rows`` (0..n_batch-1) of each entry, increasing within an item.
    weight : array (dtype of ``data``), shape (nnz_batch,)
    """
    col_ptr = np.zeros(n_items + 1, dtype=np.int64)
    for r in range(rows.shape[0]):
        u = rows[r]
        for p in range(indptr[u], indptr[u + 1]):
            col_ptr[indices[p] + 1] += 1
    for i in range(n_items):
        col_ptr[i + 1] += col_ptr[i]
    nnz = col_ptr[n_items]
    batch_row = np.empty(nnz, dtype=np.int64)
    weight = np.empty(nnz, dtype=data.dtype)
    fill = col_ptr[:-1].copy()
    for r in range(rows.shape[0]):
        u = rows[r]
        for p in range(indptr[u], indptr[u + 1]):
            i = indices[p]
            batch_row[fill[i]] = r
            weight[fill[i]] = data[p]
            fill[i] += 1
    return col_ptr, batch_row, weight


@njit(cache=True, parallel=True)
def add_positive_stats(col_ptr, batch_row, weight, h, gW, gb):
    """Add the positive-phase statistics of a batch, item by item.

    ``gW[i] += sum_r weight[r, i] * h[r]`` and ``gb[i] += sum_r weight[r, i]`` over the batch
    rows ``r`` that contain item ``i``. Parallel over items, so each thread writes its own
    rows of ``gW`` (deterministic for any thread count).

    Parameters
    ----------
    col_ptr, batch_row, weight : arrays
        Output of :func:`batch_item_major`.
    h : float array, shape (n_batch, n_hidden)
        Hidden probabilities of the batch rows.
    gW : float array, shape (n_items, n_hidden)
        Updated in place.
    gb : float array, shape (n_items,)
        Updated in place.
    """
    n_items = col_ptr.shape[0] - 1
    n_hidden = h.shape[1]
    for i in prange(n_items):
        start = col_ptr[i]
        stop = col_ptr[i + 1]
        if start == stop:
            continue
        s = 0.0
        for p in range(start, stop):
            r = batch_row[p]
            w = weight[p]
            s += w
            for j in range(n_hidden):
                gW[i, j] += w * h[r, j]
        gb[i] += s


def mean_field_negative(hs, W, b, c, k, states, gW, gb, gc, row_scale=None):
    """CD-k negative phase with a mean-field visible reconstruction over all items.

    For ``k`` steps: ``v = sigmoid(s * h W^T + b)`` (every item, mean field), then
    ``h = p(h | v) = sigmoid(c + s * v W)``; between steps the hidden units are sampled.
    Subtracts the negative statistics ``s v^T h``, ``sum v`` and ``sum h`` of the final step
    from the gradients. The two dense products per step run in BLAS.

    Parameters
    ----------
    hs : float array, shape (n_batch, n_hidden)
        Hidden states (sampled or probabilities) from the positive phase.
    W : float array, shape (n_items, n_hidden)
    b : float array, shape (n_items,)
    c : float array, shape (n_hidden,)
    k : int
        Number of Gibbs steps (>= 1).
    states : uint64 array, shape (n_batch,)
        Per-row random states, used when ``k > 1``.
    gW, gb, gc : float arrays
        Gradient accumulators of shapes ``W``, ``b``, ``c``; updated in place.
    row_scale : float array, shape (n_batch,), optional
        Per-row scale ``s`` of the interaction term (None: all ones, a plain RBM).

    Returns
    -------
    v : float array, shape (n_batch, n_items)
        The final mean-field reconstruction.
    """
    return _mean_field_chain(hs, W, b, c, k, states, gW, gb, gc, row_scale, None)


def softmax_mean_field_negative(hs, W, b, c, k, states, gW, gb, gc, n_draws, row_scale=None):
    """CD-k negative phase of the replicated softmax, mean field over all items.

    For ``k`` steps: ``v = D * softmax(b + s * h W^T)`` (expected item counts of the row's
    ``D`` draws), then ``h = p(h | v) = sigmoid(D c + s * v W)``; between steps the hidden
    units are sampled. Subtracts the negative statistics ``s v^T h``, ``sum v`` and
    ``sum D h`` (the hidden bias enters the energy as ``D c.h``) of the final step from the
    gradients. The two dense products per step run in BLAS.

    Parameters
    ----------
    hs : float array, shape (n_batch, n_hidden)
        Hidden states (sampled or probabilities) from the positive phase.
    W : float array, shape (n_items, n_hidden)
    b : float array, shape (n_items,)
    c : float array, shape (n_hidden,)
    k : int
        Number of Gibbs steps (>= 1).
    states : uint64 array, shape (n_batch,)
        Per-row random states, used when ``k > 1``.
    gW, gb, gc : float arrays
        Gradient accumulators of shapes ``W``, ``b``, ``c``; updated in place.
    n_draws : float array, shape (n_batch,)
        Number of items ``D`` of each row.
    row_scale : float array, shape (n_batch,), optional
        Per-row scale ``s`` of the interaction term (None: all ones).

    Returns
    -------
    v : float array, shape (n_batch, n_items)
        The final mean-field reconstruction (expected counts; row ``r`` sums to ``D_r``).
    """
    d = np.ascontiguousarray(n_draws, dtype=np.float64)
    return _mean_field_chain(hs, W, b, c, k, states, gW, gb, gc, row_scale, d)


def _mean_field_chain(hs, W, b, c, k, states, gW, gb, gc, row_scale, n_draws):
    """The Gibbs loop and negative statistics shared by both mean-field negative phases.

    ``n_draws`` None: Bernoulli visibles (``sigmoid``, hidden bias ``c``, statistic
    ``sum h``); float64 (n_batch,): replicated softmax (``D * softmax``, hidden bias
    ``D c``, statistic ``sum D h``).
    """
    s = None if row_scale is None else row_scale.astype(W.dtype)[:, None]
    h = hs
    v = None
    for step in range(k):
        v = h @ W.T
        if s is not None:
            v *= s
        if n_draws is None:
            sigmoid_affine_rows(v, b)
        else:
            softmax_affine_rows(v, b, n_draws)
        h = v @ W
        if s is not None:
            h *= s
        if n_draws is None:
            sigmoid_affine_rows(h, c)
        else:
            sigmoid_scaled_bias_rows(h, c, n_draws)
        if step < k - 1:
            h = sample_bernoulli_rows(h, states)
    gW -= v.T @ (h if s is None else h * s)
    gb -= v.sum(axis=0, dtype=np.float64).astype(gb.dtype)
    if n_draws is None:
        gc -= h.sum(axis=0, dtype=np.float64).astype(gc.dtype)
    else:
        gc -= (n_draws @ h.astype(np.float64)).astype(gc.dtype)
    return v


def pcd_negative(chains, W, b, c, k, states, gW, gb, gc, scale):
    """Persistent-CD negative phase (Tieleman 2008) on binary fantasy chains.

    Runs ``k`` full Gibbs steps (sampled hidden and visible units) on each chain, stores
    the new binary visible states in ``chains`` and subtracts ``scale`` times the
    negative statistics (visible probabilities of the last step and the hidden
    probabilities given the sampled visibles).

    Parameters
    ----------
    chains : float array, shape (n_chains, n_items)
        Binary visible states of the persistent chains; updated in place.
    W, b, c : float arrays
        Parameters, shapes (n_items, n_hidden), (n_items,), (n_hidden,).
    k : int
        Gibbs steps per update (>= 1).
    states : uint64 array, shape (n_chains,)
        One random state per chain.
    gW, gb, gc : float arrays
        Gradient accumulators; updated in place.
    scale : float
        ``n_batch / n_chains``, so the negative statistics are on the batch's scale.
    """
    v = chains
    for _ in range(k):
        h = v @ W
        sigmoid_affine_rows(h, c)
        hs = sample_bernoulli_rows(h, states)
        vp = hs @ W.T
        sigmoid_affine_rows(vp, b)
        v = sample_bernoulli_rows(vp, states)
    chains[...] = v
    h = v @ W
    sigmoid_affine_rows(h, c)
    gW -= scale * (vp.T @ h)
    gb -= (scale * vp.sum(axis=0, dtype=np.float64)).astype(gb.dtype)
    gc -= (scale * h.sum(axis=0, dtype=np.float64)).astype(gc.dtype)
