"""Numerically stable scalar helpers shared by the kernels (inlined by Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit


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
