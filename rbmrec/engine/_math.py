"""Numerically stable scalar helpers shared by the kernels (inlined by Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload


@njit(cache=True, inline="always")
def sigmoid(x):
    """Logistic function that never overflows: 1 / (1 + exp(-x))."""
    if x >= 0.0:
        return 1.0 / (1.0 + np.exp(-x))
    z = np.exp(x)
    return z / (1.0 + z)


@njit(cache=True, inline="always")
def softplus(x):
    """log(1 + exp(x)) computed as max(x, 0) + log1p(exp(-|x|))."""
    return max(x, 0.0) + np.log1p(np.exp(-abs(x)))


# Cephes ``expf`` (S. Moshier): exp(x) = 2**n * exp(r) with n = round(x / ln 2) and
# |r| <= ln(2) / 2, ln 2 split in two parts so r is exact, exp(r) by a degree-6 polynomial.
# Pure arithmetic, so LLVM vectorises the loop (no SVML here: numba's llvmlite is not built
# with it, and a scalar libm call per element was 70% of recommend-all time).
_F32 = np.float32
_LOG2E = _F32(1.44269504088896341)
_LN2_HI = _F32(0.693359375)
_LN2_LO = _F32(-2.12194440e-4)
_EXP_P0 = _F32(1.9875691500e-4)
_EXP_P1 = _F32(1.3981999507e-3)
_EXP_P2 = _F32(8.3334519073e-3)
_EXP_P3 = _F32(4.1665795894e-2)
_EXP_P4 = _F32(1.6666665459e-1)
_EXP_P5 = _F32(5.0000001201e-1)
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_EXP_MIN = _F32(-87.0)  # exp(-87) ~ 1.6e-38: still a normal float32


@njit(cache=True, inline="always")
def _exp_parts_f32(v):
    """``exp(v) = poly * 2**n`` for float32 ``v <= 0``: returns ``poly`` and the float32 bit
    pattern of ``2**n`` (values below -87 give exp(-87)). Branch-free, so loops vectorise."""
    v = max(v, _EXP_MIN)
    fx = np.floor(v * _LOG2E + _HALF)
    r = v - fx * _LN2_HI - fx * _LN2_LO
    p = _EXP_P0 * r + _EXP_P1
    p = p * r + _EXP_P2
    p = p * r + _EXP_P3
    p = p * r + _EXP_P4
    p = p * r + _EXP_P5
    return p * (r * r) + r + _ONE, (np.int32(fx) + np.int32(127)) << np.int32(23)


@njit(cache=True, fastmath={"contract"})
def exp_nonpositive_f32(x, bits):
    """``x[i] = exp(x[i])`` in place for float32 ``x <= 0`` (values below -87 give exp(-87)).

    Parameters
    ----------
    x : ndarray of float32, shape (n,)
        Non-positive inputs (max-shifted logits), overwritten by their exponentials.
        Relative error below 3e-7 (checked against float64 ``np.exp`` in the tests).
    bits : ndarray of int32, shape (n,)
        Scratch: the float32 bit patterns of the powers of two.
    """
    n = x.shape[0]
    for i in range(n):
        x[i], bits[i] = _exp_parts_f32(x[i])
    scale = bits.view(np.float32)
    for i in range(n):
        x[i] *= scale[i]


def exp_nonpositive(x, bits):
    """``x[i] = exp(x[i])`` in place for ``x <= 0``: :func:`exp_nonpositive_f32` for float32,
    ``np.exp`` for float64 (keeps its full precision). Callable from jitted code only."""
    raise NotImplementedError("exp_nonpositive is a Numba intrinsic: call it from @njit code")


@overload(exp_nonpositive)
def _exp_nonpositive_impl(x, bits):
    if x.dtype == types.float32:
        return lambda x, bits: exp_nonpositive_f32(x, bits)

    def impl(x, bits):
        for i in range(x.shape[0]):
            x[i] = np.exp(x[i])

    return impl


def exp_nonpositive_row(x, bits, scale, t, n):
    """``x[t, :n] = exp(x[t, :n])`` in place for ``x <= 0``, inlined into the caller.

    Same values as :func:`exp_nonpositive` on ``x[t, :n]`` up to the caller's floating-point
    flags, but without a call or a view per use: for a short run inside a parallel loop
    (the five levels of a handful of ratings), the call and the views' atomic reference
    counts cost more than the exponentials. ``x`` (m, >= n) float32 or float64; ``bits``
    int32 scratch of ``x``'s shape and ``scale = bits.view(np.float32)``, made once by the
    caller (both unused for float64). Callable from jitted code only.
    """
    raise NotImplementedError("exp_nonpositive_row is a Numba intrinsic: call it from @njit code")


@overload(exp_nonpositive_row, inline="always")
def _exp_nonpositive_row_impl(x, bits, scale, t, n):
    if x.dtype == types.float32:

        def impl_f32(x, bits, scale, t, n):
            for i in range(n):
                x[t, i], bits[t, i] = _exp_parts_f32(x[t, i])
            for i in range(n):
                x[t, i] *= scale[t, i]

        return impl_f32

    def impl(x, bits, scale, t, n):
        for i in range(n):
            x[t, i] = np.exp(x[t, i])

    return impl
