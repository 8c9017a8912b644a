"""The shared top-N kernel against a plain-NumPy (argsort) reference."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.engine.topn import PAD_SCORE, top_n, topn_kernel


def reference(scores, n, excl=None, excluded=None):
    """Stable argsort of ``-scores`` per row, dropping excluded, NaN and -inf entries."""
    n_rows = scores.shape[0]
    ids = np.full((n_rows, n), -1, dtype=np.int32)
    out = np.full((n_rows, n), PAD_SCORE, dtype=np.float32)
    for r in range(n_rows):
        s = scores[r].astype(np.float64)
        keep = s > -np.inf
        if excl is not None:
            keep[excl[r].indices] = False
        if excluded is not None:
            keep &= ~excluded
        cand = np.flatnonzero(keep)
        # A stable sort of the negated scores puts equal scores in increasing id order.
        order = cand[np.argsort(-s[cand], kind="stable")][:n]
        ids[r, : order.size] = order
        out[r, : order.size] = s[order]
    return ids, out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 5, 30])
def test_matches_reference_with_ties_and_exclusions(dtype, n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 5, (70, 25)).astype(dtype)  # many ties; > one row chunk
    excl = sp.random(70, 25, density=0.3, format="csr", random_state=n)
    excluded = np.zeros(25, np.bool_)
    excluded[[2, 11]] = True
    ids, best = top_n(scores, n, excl.indptr, excl.indices, excluded)
    ref_ids, ref_best = reference(scores, n, excl, excluded)
    assert ids.dtype == np.int32 and best.dtype == np.float32
    assert ids.shape == best.shape == (70, n)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(best, ref_best)


def test_ranks_in_input_precision_before_casting():
    # Distinct in float64, equal once cast to float32: the float64 order must win.
    scores = np.array([[1.0, 1.0 + 1e-12, 0.5]])
    ids, best = top_n(scores, 2)
    np.testing.assert_array_equal(ids, [[1, 0]])
    assert best[0, 0] == best[0, 1] == np.float32(1.0)


def test_n_larger_than_items_pads():
    scores = np.array([[0.1, 0.3, 0.2]], np.float32)
    ids, best = top_n(scores, 5)
    np.testing.assert_array_equal(ids, [[1, 2, 0, -1, -1]])
    assert np.all(best[0, 3:] == PAD_SCORE) and best[0, 0] == np.float32(0.3)


def test_all_excluded_row_is_all_padding():
    scores = np.ones((2, 4))
    excl = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0]], np.float32))
    excluded = np.array([False, False, True, True])
    ids, best = top_n(scores, 3, excl.indptr, excl.indices, excluded)
    assert np.all(ids[0] == -1) and np.all(best[0] == PAD_SCORE)
    np.testing.assert_array_equal(ids[1], [0, 1, -1])


def test_nan_and_minus_inf_are_never_returned():
    scores = np.array([[np.nan, 2.0, -np.inf, np.inf, np.nan, 1.0]])
    ids, best = top_n(scores, 6)
    np.testing.assert_array_equal(ids, [[3, 1, 5, -1, -1, -1]])
    assert best[0, 0] == np.inf
    ref_ids, _ = reference(scores, 6)
    np.testing.assert_array_equal(ids, ref_ids)


def test_input_not_modified_and_strided_input_accepted():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 10))
    snap = base.copy()
    ids, _ = top_n(base[:, ::2], 3)  # non-contiguous view
    np.testing.assert_array_equal(base, snap)
    np.testing.assert_array_equal(ids, reference(base[:, ::2], 3)[0])


def test_thread_count_independent():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 3, (200, 40)).astype(np.float64)
    excl = sp.random(200, 40, density=0.2, format="csr", random_state=3)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = topn_kernel(scores, excl.indptr, excl.indices, np.zeros(0, np.bool_), 7)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = topn_kernel(scores, excl.indptr, excl.indices, np.zeros(0, np.bool_), 7)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"scores": np.ones((2, 3), np.int64)}, TypeError, "float32 or float64"),
        ({"scores": np.ones(3)}, ValueError, "2-D"),
        ({"n": -1}, ValueError, "n must be"),
        ({"excl_indptr": np.array([0, 1, 1])}, ValueError, "both"),
        ({"excl_indptr": np.array([0, 1]), "excl_indices": np.array([0])}, ValueError, "rows"),
        (
            {"excl_indptr": np.array([0, 1, 1]), "excl_indices": np.array([3])},
            ValueError,
            "item ids",
        ),
        ({"excluded": np.zeros(3, np.int8)}, TypeError, "boolean"),
        ({"excluded": np.zeros(4, np.bool_)}, ValueError, "shape"),
    ],
)
def test_bad_input_raises(kwargs, err, match):
    args = {"scores": np.ones((2, 3)), "n": 2, **kwargs}
    with pytest.raises(err, match=match):
        top_n(**args)
