"""The fused momentum step equals the textbook NumPy update."""

from __future__ import annotations

import numpy as np
import pytest

from rbmrec.engine.update import apply_momentum


def _reference(p, v, g, scale, mom, lr_wd):
    v = mom * v + scale * g - lr_wd * p
    return p + v, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr_wd", [0.0, 1e-3])
def test_fused_step_matches_reference(dtype, lr_wd):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(7, 3, 5)).astype(dtype)
    v = rng.normal(size=p.shape).astype(dtype)
    g = rng.normal(size=p.shape).astype(dtype)
    want_p, want_v = _reference(p.astype(np.float64), v, g, 0.01, 0.9, lr_wd)
    apply_momentum(p, v, g, 0.01, 0.9, lr_wd)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(p, want_p, rtol=tol, atol=tol)
    np.testing.assert_allclose(v, want_v, rtol=tol, atol=tol)
    assert p.dtype == dtype and v.dtype == dtype


def test_non_contiguous_parameters_are_updated_in_place():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 8))
    p = base[:, ::2]  # a strided view: a reshape would copy and lose the update
    v = np.zeros_like(p)
    g = np.ones_like(p)
    want, _ = _reference(p.copy(), v.copy(), g, 0.5, 0.0, 0.0)
    apply_momentum(p, v, g, 0.5, 0.0, 0.0)
    np.testing.assert_allclose(base[:, ::2], want)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        apply_momentum(np.zeros(3), np.zeros(3), np.zeros(4), 0.1, 0.9, 0.0)
