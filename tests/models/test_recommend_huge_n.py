"""A single user's ``recommend`` with a huge N costs no more than N = the number of items
(it allocated N slots: 2**62 failed with "array is too big"). Batches keep N columns, the
``implicit`` contract (tests/contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

HUGE = 2**62


def _ratings(n_users: int = 30, n_items: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, size=(n_users, n_items)).astype(np.float32)
    dense[rng.random(dense.shape) < 0.5] = 0
    dense[:, 0] = 3  # every user rates something
    return sp.csr_matrix(dense)


def _models(X: sp.csr_matrix) -> dict:
    from rbmrec import ImplicitRBM, RatingRBM
    from rbmrec.evaluation import BiasBaseline
    from rbmrec.models.blend import BlendedRatingModel

    fast = {"n_hidden": 3, "n_epochs": 1, "random_state": 0, "num_threads": 1}
    blend = BlendedRatingModel(
        [("bias", BiasBaseline()), ("rbm", RatingRBM(orientation="user", **fast))], cv_folds=0
    )
    return {
        "rating": RatingRBM(orientation="user", **fast).fit(X),
        "implicit": ImplicitRBM(**fast).fit(X),
        "blend": blend.fit(X, validation=X),
    }


@pytest.fixture(scope="module")
def fitted() -> tuple[sp.csr_matrix, dict]:
    X = _ratings()
    return X, _models(X)


@pytest.mark.parametrize("which", ["rating", "implicit", "blend"])
def test_single_user_recommend_with_huge_n(fitted, which: str) -> None:
    X, models = fitted
    model = models[which]
    ref_ids, ref_scores = model.recommend(np.arange(X.shape[0]), X, N=X.shape[1])
    for u in (3, 7):
        ids, scores = model.recommend(u, X[u], N=HUGE)
        keep = ref_ids[u] >= 0
        np.testing.assert_array_equal(ids, ref_ids[u][keep])
        # Batch and single scores agree to the contract's tolerance (tests/contract.py): a
        # BLAS product of one row may round differently from the same row in a block.
        np.testing.assert_allclose(scores, ref_scores[u][keep], rtol=1e-5, atol=1e-6)
