"""EASE: the closed form against per-item ridge regressions, its scores, limits and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.errors import DataError
from rbmrec.evaluation import EASE
from rbmrec.evaluation.baselines.ease import ease_fit_bytes, ease_weights


def _interactions(n_users: int = 40, n_items: int = 9, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.4)
    dense[:, 0] = 4  # every user rates something
    return sp.csr_matrix(dense.astype(np.float64))


def _ridge_columns(X: np.ndarray, lam: float) -> np.ndarray:
    """EASE's definition, solved column by column: item j regressed on every other item
    with an L2 penalty lam (no self-weight), in float64 with numpy's dense solver."""
    n = X.shape[1]
    B = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        A = X[:, others]
        B[others, j] = np.linalg.solve(A.T @ A + lam * np.eye(n - 1), A.T @ X[:, j])
    return B


@pytest.mark.parametrize("lam", [0.5, 3.0, 40.0])
def test_weights_match_a_direct_float64_solve(lam):
    X = _interactions()
    binary = (X.toarray() != 0).astype(np.float64)
    want = _ridge_columns(binary, lam)
    got = EASE(regularization=lam).fit(X).weights_
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
    assert np.all(np.diag(got) == 0.0)


def test_rating_weighting_fits_on_the_ratings():
    X = _interactions(seed=1)
    want = _ridge_columns(X.toarray(), 7.0)
    np.testing.assert_allclose(ease_weights(X, 7.0), want, rtol=1e-8, atol=1e-12)
    got = EASE(regularization=7.0, weighting="rating").fit(X).weights_
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def test_scores_are_the_users_rows_times_the_weights():
    X = _interactions(seed=2)
    model = EASE(regularization=2.0).fit(X)
    binary = (X.toarray() != 0).astype(np.float64)
    for u in (0, 5, 17):
        ids, scores = model.recommend(u, X[u], N=3)
        want = binary[u] @ model.weights_
        want[binary[u] != 0] = -np.inf
        order = np.argsort(-want, kind="stable")[:3]
        order = order[np.isfinite(want[order])]  # fewer candidates than N
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_allclose(scores, want[order].astype(np.float32), rtol=1e-6)


def test_a_user_added_after_fit_is_scored_from_their_row():
    X = _interactions(seed=3)
    model = EASE(regularization=2.0).fit(X)
    row = sp.csr_matrix(np.eye(1, X.shape[1], 4))
    ids, _ = model.recommend(0, row, N=2, recalculate_user=True)
    want = model.weights_[4].copy()
    want[4] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-want, kind="stable")[:2])


def test_a_catalogue_over_the_limit_is_refused_naming_its_size():
    X = _interactions(n_items=9)
    with pytest.raises(DataError, match=r"9 x 9 float64 .* max_items=8"):
        EASE(max_items=8).fit(X)
    assert EASE(max_items=9).fit(X).n_items == 9
    assert ease_fit_bytes(30_000) == 2 * 8 * 30_000**2


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"regularization": 0.0}, ValueError),
        ({"regularization": -1.0}, ValueError),
        ({"regularization": float("nan")}, ValueError),
        ({"regularization": "500"}, TypeError),
        ({"weighting": "counts"}, ValueError),
        ({"max_items": 0}, ValueError),
        ({"max_items": 1.5}, TypeError),
        ({"num_threads": -1}, ValueError),
        ({"min_rating": "4"}, TypeError),
    ],
)
def test_bad_parameters_are_named(params, error):
    name = next(iter(params))
    with pytest.raises(error, match=name):
        EASE(**params).fit(_interactions())


def test_min_rating_that_drops_everything_is_refused():
    with pytest.raises(DataError):
        EASE(min_rating=10).fit(_interactions())


def test_saved_model_loads_the_same_and_a_damaged_file_is_refused(tmp_path):
    X = _interactions(seed=4)
    model = EASE(regularization=3.0).fit(X)
    back = rbmrec.load(model.save(tmp_path / "ease"))
    np.testing.assert_array_equal(back.weights_, model.weights_)
    assert back.regularization == 3.0
    state, meta = model._get_state()
    state["weights"] = state["weights"][:, :-1]
    with pytest.raises(rbmrec.errors.ModelFileError, match="weights"):
        type(model)._from_state(state, meta)
