"""Parameter updates: the momentum / weight-decay step of the shared trainer, in one pass.

NumPy needs four passes over each parameter array (and temporaries) for
``v = mom * v + scale * g - lr_wd * p; p += v``; for the rating RBM's weights (millions of
entries, updated after every mini-batch of 100 users) that memory traffic costs as much as
the CD statistics themselves. This kernel reads ``p``, ``v`` and ``g`` once and writes ``p``
and ``v`` once, in parallel over contiguous blocks (element-wise, so results do not depend on
the thread count); small arrays are updated on the calling thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def momentum_update(p, v, g, scale, mom, lr_wd):
    """In place: ``v = mom * v + scale * g - lr_wd * p`` then ``p += v``.

    Parameters
    ----------
    p, v : ndarray, shape (n,)
        Parameters and their velocities (C-contiguous, same dtype), updated in place.
    g : ndarray, shape (n,)
        Gradient statistics summed over the batch (positive minus negative phase).
    scale, mom, lr_wd : scalar
        ``learning_rate / batch_size``, momentum, ``learning_rate * weight_decay`` (0 for
        parameters without decay). Pass them in ``p``'s dtype so float32 stays float32.
    """
    for t in prange(p.shape[0]):
        vt = mom * v[t] + scale * g[t] - lr_wd * p[t]
        v[t] = vt
        p[t] += vt


#: Arrays shorter than this are updated on the calling thread: a parallel region costs more
#: than the few microseconds of work, and on a busy machine each one may wait a whole
#: scheduler time slice for a descheduled thread (the rating RBM's biases, every batch).
PARALLEL_MIN = 1 << 16


@njit(cache=True)
def momentum_update_serial(p, v, g, scale, mom, lr_wd):
    """:func:`momentum_update` on the calling thread, with identical results (a separate
    function, not a second dispatcher of the same one: Numba's cache keys on the function,
    not on ``parallel``)."""
    for t in range(p.shape[0]):
        vt = mom * v[t] + scale * g[t] - lr_wd * p[t]
        v[t] = vt
        p[t] += vt


def apply_momentum(
    p: np.ndarray, v: np.ndarray, g: np.ndarray, scale: float, mom: float, lr_wd: float
) -> None:
    """Checked wrapper of :func:`momentum_update` for arrays of any (equal) shape.

    Falls back to NumPy when ``p`` or ``v`` is not C-contiguous (a reshaped view would be a
    copy and the update would be lost).

    Parameters
    ----------
    p, v : ndarray
        Parameters and velocities, same shape; updated in place.
    g : ndarray
        Gradient, same shape (any float dtype).
    scale, mom, lr_wd : float
        See :func:`momentum_update`.
    """
    if p.shape != v.shape or p.shape != g.shape:
        raise ValueError(f"shape mismatch: p {p.shape}, v {v.shape}, g {g.shape}")
    if p.flags.c_contiguous and v.flags.c_contiguous and p.dtype == v.dtype:
        dt = p.dtype.type
        gf = np.ascontiguousarray(g).reshape(-1)
        kernel = momentum_update if p.size >= PARALLEL_MIN else momentum_update_serial
        kernel(p.reshape(-1), v.reshape(-1), gf, dt(scale), dt(mom), dt(lr_wd))
        return
    v *= mom
    v += scale * g
    if lr_wd:
        v -= lr_wd * p
    p += v
