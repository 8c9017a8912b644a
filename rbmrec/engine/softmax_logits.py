"""One softmax visible group's level logits, probabilities and level draw (inlined helpers).

p(v_i = k | h) of group ``i`` given a hidden vector: the max-shifted logits
``b[i, k] + sum_j W[i, k, j] h_j`` (five-level groups, the 1-5 star scale, in one pass over
the hidden units, optionally for two or four entries of the group at once), their softmax,
and the draw of a level from it. Every helper is ``inline="always"``: it is compiled into
the kernels that call it (the item-major chains of :mod:`rbmrec.engine.softmax_chains`
and the row-by-row kernels of :mod:`rbmrec.engine.softmax_inference`), so after editing
this file the callers' cached machine code must be cleared.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Floating-point flags of the inner dot products and axpys: reassociation lets LLVM
#: vectorise the sums over hidden units (results change only in the last bits, identically
#: for every thread count); no ``nnan``/``ninf``, so the max-shifted softmax and the
#: divergence checks see infinities and NaNs as usual.
_DOT_MATH = {"reassoc", "contract", "nsz"}


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

    Every value is <= 0 before exponentiating. ``h`` and ``out`` are indexed directly (no views: see
    :func:`~rbmrec.engine.softmax_chains._visible_step`). The dot products may be reassociated
    (SIMD). Five levels (the 1-5 star scale) take one pass over the hidden units with five
    accumulators instead of five dot products, each with its own horizontal sum (~20% faster).
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
