"""The one way rbmrec combines models: a weighted sum of members' predictions or scores,
with the weights fitted on validation ratings.

:func:`combine` is the combination; :func:`fit_convex_pair` and :func:`fit_ridge` fit its
weights. :class:`~rbmrec.models.mixture.RatingMixture` (``RatingRBM(orientation="both")``)
and :class:`~rbmrec.models.blend.BlendedRatingModel` use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def combine(
    weights: Sequence[float] | np.ndarray,
    parts: Sequence[np.ndarray],
    intercept: float | None = None,
) -> np.ndarray:
    """``intercept + sum_k weights[k] * parts[k]``, summed in member order.

    Parameters
    ----------
    weights : sequence of float, length n_members
    parts : sequence of ndarray, length n_members
        The members' predictions or scores, all of one shape (any); the result keeps
        their dtype (float32 scores stay float32: the weights are Python floats).
    intercept : float, optional
        Added last; None adds nothing.

    Returns
    -------
    ndarray, the shape of ``parts[k]``
    """
    if len(weights) != len(parts) or not len(parts):
        raise ValueError(f"{len(weights)} weights for {len(parts)} members")
    out = weights[0] * parts[0]
    for w, p in zip(weights[1:], parts[1:], strict=True):
        out = out + w * p
    return out if intercept is None else out + intercept


def fit_line(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares intercept and slope (clipped to >= 0) of ``y`` on ``p``, both (n,)."""
    dp = p - p.mean()
    var = float(dp @ dp)
    slope = max(float(dp @ (y - y.mean())) / var, 0.0) if var > 0 else 1.0
    return float(y.mean() - slope * p.mean()), slope


def fit_convex_pair(p0: np.ndarray, p1: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Weight ``w`` in [0, 1] and line ``(a, s)``, ``s >= 0``, minimising the squared error
    of ``a + s * (w * p0 + (1 - w) * p1)`` against ``y`` (all shape (n,)).

    The same family as an unconstrained least-squares blend ``a + c0 p0 + c1 p1`` with
    non-negative coefficients (``s = c0 + c1``, ``w = c0 / s``). Closed form: the
    unconstrained least squares when both coefficients are >= 0, else the better member
    alone with its own line (the optimum of the convex problem is then on that face).

    Returns
    -------
    (w, a, s) : tuple of float
    """
    F = np.column_stack([np.ones_like(y), p0, p1])
    (a, c0, c1), *_ = np.linalg.lstsq(F, y, rcond=None)
    if c0 >= 0 and c1 >= 0 and c0 + c1 > 0:
        return float(c0 / (c0 + c1)), float(a), float(c0 + c1)
    best: tuple[float, float, float, float] | None = None  # (sse, w, a, s)
    for w, p in ((1.0, p0), (0.0, p1)):
        a, slope = fit_line(p, y)
        sse = float(np.sum((a + slope * p - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, w, a, slope)
    assert best is not None
    return best[1], best[2], best[3]


def fit_ridge(F: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """Ridge weights and intercept of ``y`` (n,) on features ``F`` (n, n_features).

    Features are centred and the intercept is not penalised; the L2 penalty is
    ``ridge * n``. Solved with ``lstsq``: with ``ridge=0`` and collinear members (two
    copies of a model, a constant prediction) the system is singular, and the
    minimum-norm solution splits the weight.

    Returns
    -------
    coef : ndarray of float64, shape (n_features,)
    intercept : float
    """
    mean = F.mean(0)
    Fc = F - mean
    lam = ridge * len(y)
    A = Fc.T @ Fc + lam * np.eye(F.shape[1])
    coef = np.linalg.lstsq(A, Fc.T @ (y - y.mean()), rcond=None)[0]
    return coef, float(y.mean() - mean @ coef)
