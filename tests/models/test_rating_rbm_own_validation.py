"""``fit`` without ``validation`` holds out ``validation_fraction`` of the ratings itself."""

import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec import RatingRBM
from rbmrec.models._estimator import side_generator
from rbmrec.models._sparse import held_out_positions

KW = dict(n_hidden=6, n_epochs=4, batch_size=20, num_threads=1)


def ratings(n_users=80, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n_users, n_items, density=0.3, format="csr", random_state=seed)
    X.data[:] = rng.integers(1, 6, X.nnz)
    return X


def test_single_orientation_trains_on_the_rest_and_stops_on_the_held_out_part():
    X = ratings()
    m = RatingRBM(orientation="user", conditional=False, random_state=3, **KW).fit(X)
    n_held = int(np.floor(0.1 * X.nnz + 0.5))
    assert m._train[0][-1] == X.nnz - n_held  # training rows hold the rest only
    assert all("valid_rmse" in h for h in m.history_) and m.best_epoch_ is not None
    # The held-out part is the documented draw: held_out_positions on the stream of the seed.
    pos = held_out_positions(X.nnz, 0.1, side_generator(3, RatingRBM._VALIDATION_STREAM))
    keep = np.ones(X.nnz, bool)
    keep[pos] = False
    u = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    expected = sp.csr_matrix((X.data[keep], (u[keep], X.indices[keep])), shape=X.shape)
    again = RatingRBM(orientation="user", conditional=False, random_state=3, **KW)
    again.fit(expected, validation=sp.csr_matrix((X.data[~keep], (u[~keep], X.indices[~keep])),
                                                 shape=X.shape))  # fmt: skip
    np.testing.assert_array_equal(again.predict(u, X.indices), m.predict(u, X.indices))


def test_zero_fraction_trains_on_everything_without_validation():
    X = ratings()
    m = RatingRBM(orientation="user", validation_fraction=0, random_state=0, **KW).fit(X)
    assert m._train[0][-1] == X.nnz
    assert not any("valid_rmse" in h for h in m.history_) and m.best_epoch_ is None


def test_both_fits_weights_on_the_held_out_part_and_is_reproducible():
    X = ratings()
    a = RatingRBM(random_state=5, **KW).fit(X)
    b = RatingRBM(random_state=5, **KW).fit(X)
    assert a.blend_weight_ == b.blend_weight_ and a.calibration_ == b.calibration_
    assert a.calibration_ != (0.0, 1.0)  # fitted on the held-out ratings
    for member in a.members_.values():
        assert member.validation_fraction == 0  # the parts are drawn once, for both
        assert member._train[0][-1] == a.members_["item"]._train[0][-1]


def test_held_out_pairs_stay_in_the_conditional_pattern():
    X = ratings()
    m = RatingRBM(orientation="user", conditional=True, random_state=0, **KW).fit(X)
    assert m._train[0][-1] < X.nnz
    np.testing.assert_array_equal(m._R.indptr, X.indptr)
    np.testing.assert_array_equal(m._R.indices, X.indices)


def test_a_level_is_never_held_out_entirely():
    X = ratings()
    X.data[:] = 3.0
    X.data[7] = 1.0  # the only rating 1
    X.data[-1] = 5.0  # the only rating 5
    for seed in range(10):
        m = RatingRBM(orientation="user", random_state=seed, **KW).fit(X)
        np.testing.assert_array_equal(m.values_, [1.0, 3.0, 5.0])


def test_explicit_validation_wins_over_the_fraction():
    X = ratings()
    V = ratings(seed=1)
    m = RatingRBM(orientation="user", random_state=0, **KW).fit(X, validation=V)
    assert m._train[0][-1] == X.nnz


@pytest.mark.parametrize("bad, err", [(1.0, ValueError), (-0.1, ValueError),
                                      (float("nan"), ValueError), ("0.1", TypeError)])  # fmt: skip
def test_bad_fraction_is_refused_before_any_work(bad, err):
    with pytest.raises(err, match="validation_fraction"):
        RatingRBM(validation_fraction=bad, **KW).fit(ratings())


def test_refit_trains_again_on_everything_for_the_chosen_epochs():
    X = ratings()
    kw = dict(KW, n_epochs=6, patience=2, random_state=4)
    carved = RatingRBM(orientation="user", **kw).fit(X)
    m = RatingRBM(orientation="user", refit=True, **kw).fit(X)
    assert m._train[0][-1] == X.nnz  # the refit saw every rating
    first = [h for h in m.history_ if not h.get("refit")]
    again = [h for h in m.history_ if h.get("refit")]
    assert [h["valid_rmse"] for h in first] == [h["valid_rmse"] for h in carved.history_]
    assert len(again) == m.best_epoch_ == carved.best_epoch_
    # The refit equals a fit on everything for that many epochs from the same seed.
    ref = RatingRBM(orientation="user", validation_fraction=0, **dict(kw, n_epochs=len(again)))
    ref.fit(X)
    u = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    np.testing.assert_array_equal(m.predict(u, X.indices), ref.predict(u, X.indices))


def test_refit_of_both_keeps_the_weights_fitted_on_the_held_out_part():
    X = ratings()
    kw = dict(KW, random_state=2)
    carved = RatingRBM(**kw).fit(X)
    m = RatingRBM(refit=True, **kw).fit(X)
    assert (m.blend_weight_, m.calibration_) == (carved.blend_weight_, carved.calibration_)
    assert all(member._train[0][-1] == X.nnz for member in m.members_.values())
