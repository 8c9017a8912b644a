"""Conditional RBM kernels: the offset r D and the fused D step equal the scipy.sparse
products and the trainer's momentum rule, bit for bit, for any thread count."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.engine import conditional as CR
from rbmrec.engine.update import apply_momentum


def _pattern(n_rows, n_cols, density, seed, unsorted=False):
    rng = np.random.default_rng(seed)
    R = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng)
    R.data[:] = 1.0
    R.data[R.indptr[0] : R.indptr[1]] = 0.0  # row 0 empty
    R.eliminate_zeros()
    if unsorted:  # storage order differs from column order: both sides must follow it
        for u in range(n_rows):
            lo, hi = R.indptr[u], R.indptr[u + 1]
            R.indices[lo:hi] = R.indices[lo:hi][::-1].copy()
        R.has_sorted_indices = False
    return R


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("unsorted", [False, True])
def test_offset_is_the_sparse_product(dtype, unsorted):
    R = _pattern(50, 30, 0.3, 0, unsorted).astype(dtype)
    D = np.random.default_rng(1).normal(size=(30, 7)).astype(dtype)
    rows = np.array([3, 0, 49, 3, 17], dtype=np.int64)  # an empty row and a repeat
    out = np.full((5, 7), np.nan, dtype=dtype)
    CR.pattern_offset(R.indptr, R.indices, rows, D, out)
    np.testing.assert_array_equal(out, R[rows] @ D)
    np.testing.assert_array_equal(out[1], 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("unsorted", [False, True])
def test_fused_update_is_the_sparse_gradient_and_momentum_step(dtype, unsorted):
    rng = np.random.default_rng(2)
    n_cols = 200  # > one parallel chunk of columns
    R = _pattern(80, n_cols, 0.1, 3, unsorted).astype(dtype)
    rows = rng.permutation(80)[:25].astype(np.int64)
    h_diff = rng.normal(size=(25, 9)).astype(dtype)
    D0 = rng.normal(size=(n_cols, 9)).astype(dtype)
    v0 = rng.normal(size=(n_cols, 9)).astype(dtype)
    t = np.dtype(dtype).type
    want_D, want_v = D0.copy(), v0.copy()
    apply_momentum(want_D, want_v, np.asarray(R[rows].T @ h_diff), 0.002, 0.9, 1e-4)
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        D, v = D0.copy(), v0.copy()
        CR.pattern_momentum_update(
            R.indptr, R.indices, rows, h_diff, D, v, t(0.002), t(0.9), t(1e-4)
        )
        np.testing.assert_array_equal(D, want_D)
        np.testing.assert_array_equal(v, want_v)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    # Columns no batch row holds only decay: v = mom v - lr_wd D.
    untouched = np.asarray(R[rows].sum(axis=0)).ravel() == 0
    assert untouched.any()
    v_decay = 0.9 * v0[untouched] - 1e-4 * D0[untouched]
    np.testing.assert_allclose(D[untouched], D0[untouched] + v_decay, rtol=1e-5)
