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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_serial_and_parallel_steps_are_identical(dtype):
    """Arrays below PARALLEL_MIN are stepped on the calling thread: same bits as the
    parallel kernel, on both sides of the threshold."""
    from rbmrec.engine import update as U

    rng = np.random.default_rng(2)
    for n in (U.PARALLEL_MIN - 1, U.PARALLEL_MIN):
        p, v, g = (rng.normal(size=n).astype(dtype) for _ in range(3))
        args = (dtype(0.01), dtype(0.9), dtype(1e-3))
        p1, v1, p2, v2 = p.copy(), v.copy(), p.copy(), v.copy()
        U.momentum_update(p1, v1, g, *args)
        U.momentum_update_serial(p2, v2, g, *args)
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(v1, v2)
        p3, v3 = p.copy(), v.copy()
        apply_momentum(p3, v3, g, 0.01, 0.9, 1e-3)  # whichever kernel it picks
        np.testing.assert_array_equal(p3, p1)
        np.testing.assert_array_equal(v3, v1)


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


def test_fused_softmax_update_equals_gradient_then_momentum_step():
    """softmax_cd_phases + softmax_update_weights == softmax_cd's gW + the textbook step."""
    import scipy.sparse as sp

    from rbmrec.engine import softmax as S
    from rbmrec.engine._random import row_states

    rng = np.random.default_rng(3)
    n, nv, nl, nh = 40, 150, 5, 7  # 150 groups: several update tasks, some groups untouched
    A = sp.random(n, nv, density=0.05, random_state=4, format="csr")
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    levels = rng.integers(0, nl, A.nnz).astype(np.int8)
    W = rng.normal(0, 0.3, (nv, nl, nh))
    b = rng.normal(0, 1, (nv, nl))
    c = rng.normal(0, 1, nh)
    vW = rng.normal(0, 0.01, W.shape)
    rows = rng.permutation(n)[:25].astype(np.int64)
    off = np.zeros((0, nh))
    no_chain = np.zeros(0, np.int8)
    scale, mom, lr_wd = 0.01, 0.9, 1e-4
    for mode in (S.NEG_SAMPLE, S.NEG_MEAN_FIELD):
        gW, gb, gc, hd = np.empty_like(W), np.empty_like(b), np.empty_like(c), np.empty((25, nh))
        st = row_states(np.random.default_rng(5), 25)
        S.softmax_cd(indptr, indices, levels, rows, W, b, c, off, 2, st, no_chain, False,
                     gW, gb, gc, hd, mode)  # fmt: skip
        want_p, want_v = _reference(W, vW, gW, scale, mom, lr_wd)
        gb2, gc2, hd2 = np.empty_like(b), np.empty_like(c), np.empty((25, nh))
        st = row_states(np.random.default_rng(5), 25)
        p, v = W.copy(), vW.copy()
        phases = S.softmax_cd_phases(indptr, indices, levels, rows, p, b, c, off, 2, st,
                                     no_chain, False, gb2, gc2, hd2, mode)  # fmt: skip
        S.softmax_update_weights(phases, p, v, scale, mom, lr_wd, False)
        assert np.abs(gW).max() > 0  # the batch really produced statistics
        np.testing.assert_allclose(p, want_p, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(v, want_v, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb2, gb, atol=1e-12)
        np.testing.assert_allclose(gc2, gc, atol=1e-12)
        np.testing.assert_allclose(hd2, hd, atol=1e-12)


def _u_space_steps(W, vW, grads, scale, mom, lr_wd):
    """The textbook momentum steps on ``U`` with ``W = C U`` (``C`` lower-triangular ones
    over the levels, CF-NADE's ``W_k = sum_{j<=k} U_j``), mapped back to ``W``."""
    L = W.shape[1]
    C = np.tril(np.ones((L, L)))
    Ci = np.linalg.inv(C)
    U = np.einsum("kl,ilh->ikh", Ci, W)
    vU = np.einsum("kl,ilh->ikh", Ci, vW)
    for gW in grads:
        gU = np.einsum("lk,ilh->ikh", C, gW)  # chain rule: dL/dU = C^T dL/dW
        vU = mom * vU + scale * gU - lr_wd * U
        U = U + vU
    return np.einsum("kl,ilh->ikh", C, U), np.einsum("kl,ilh->ikh", C, vU)


def test_ordinal_update_is_a_momentum_step_on_the_cumulative_parameterisation():
    """softmax_update_weights(ordinal=True), three batches in turn == momentum SGD with
    weight decay on U where W = C U: the gradient becomes C C^T gW along the levels, the
    velocity is C vU and the decay stays lr_wd W."""
    import scipy.sparse as sp

    from rbmrec.engine import softmax as S
    from rbmrec.engine._random import row_states

    rng = np.random.default_rng(6)
    n, nv, nl, nh = 30, 60, 5, 6
    A = sp.random(n, nv, density=0.1, random_state=7, format="csr")
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    levels = rng.integers(0, nl, A.nnz).astype(np.int8)
    W0 = rng.normal(0, 0.3, (nv, nl, nh))
    vW0 = rng.normal(0, 0.01, W0.shape)
    b, c = rng.normal(0, 1, (nv, nl)), rng.normal(0, 1, nh)
    off, no_chain = np.zeros((0, nh)), np.zeros(0, np.int8)
    scale, mom, lr_wd = 0.02, 0.9, 1e-3
    W, vW, grads = W0.copy(), vW0.copy(), []
    for step in range(3):
        rows = rng.permutation(n)[:12].astype(np.int64)
        args = (indptr, indices, levels, rows)
        gW, gb, gc, hd = np.empty_like(W), np.empty_like(b), np.empty_like(c), np.empty((12, nh))
        S.softmax_cd(*args, W, b, c, off, 1, row_states(np.random.default_rng(step), 12),
                     no_chain, False, gW, gb, gc, hd, S.NEG_MEAN_FIELD)  # fmt: skip
        phases = S.softmax_cd_phases(
            *args, W, b, c, off, 1, row_states(np.random.default_rng(step), 12), no_chain,
            False, gb, gc, hd, S.NEG_MEAN_FIELD,
        )  # fmt: skip
        # The reference's gradient at this step's W (the statistics depend on W).
        ref_W, ref_vW = _u_space_steps(W, vW, [gW], scale, mom, lr_wd)
        S.softmax_update_weights(phases, W, vW, scale, mom, lr_wd, True)
        grads.append(gW)
        np.testing.assert_allclose(W, ref_W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(vW, ref_vW, rtol=1e-10, atol=1e-12)
    # The same three steps from the start in U alone (momentum carried in U-space).
    ref_W, ref_vW = _u_space_steps(W0, vW0, grads, scale, mom, lr_wd)
    np.testing.assert_allclose(W, ref_W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vW, ref_vW, rtol=1e-10, atol=1e-12)
    assert not np.allclose(W, W0 + 0.0)  # the steps moved the weights

