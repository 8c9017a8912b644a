"""BlendedRatingModel: weights from validation never do worse there than any member."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_rating_rbm import holdout, planted

from rbmrec.errors import DataError, NotFittedError
from rbmrec.models.blend import BlendedRatingModel
from rbmrec.models.rating import RatingRBM


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def test_blend_beats_members_on_validation_and_predicts():
    X, _, _ = planted(n_users=150, n_items=40)
    train, valid = holdout(X, seed=2)
    members = [
        ("user", RatingRBM(n_hidden=8, n_epochs=6, batch_size=20, random_state=0)),
        ("item", RatingRBM(n_hidden=8, n_epochs=6, batch_size=20, orientation="item",
                           random_state=0)),
    ]  # fmt: skip
    blend = BlendedRatingModel(members, ridge=1e-6).fit(train, validation=valid)
    vu, vi = valid.nonzero()
    vr = np.asarray(valid[vu, vi]).ravel()
    member_rmse = [_rmse(m.predict(vu, vi), vr) for _, m in members]
    assert blend.valid_rmse_ <= min(member_rmse) + 1e-9
    assert blend.valid_rmse_ == pytest.approx(_rmse(blend.predict(vu, vi), vr))
    ids, scores = blend.recommend(0, train[0], N=5)
    assert ids.dtype == np.int32 and np.all(np.diff(scores) <= 0)
    assert not set(ids) & set(train[0].indices)


def test_blend_errors():
    X, _, _ = planted(n_users=30, n_items=10)
    with pytest.raises(ValueError, match="validation"):
        BlendedRatingModel([("a", RatingRBM(n_epochs=1))]).fit(X)
    with pytest.raises(ValueError, match="at least one"):
        BlendedRatingModel([]).fit(X, validation=X)
    with pytest.raises(ValueError, match="unique"):
        BlendedRatingModel([("a", RatingRBM()), ("a", RatingRBM())]).fit(X, validation=X)
    with pytest.raises(NotFittedError):
        BlendedRatingModel([("a", RatingRBM())]).predict([0], [0])
    with pytest.raises(DataError, match="no stored ratings"):
        BlendedRatingModel([("a", RatingRBM())]).fit(X, validation=sp.csr_matrix((2, 2)))
    with pytest.raises(DataError, match="shape"):
        BlendedRatingModel([("a", RatingRBM())]).fit(X, validation=X[:5])


class _Fixed:
    """A 'model' whose predictions are a fixed dense matrix (fit does nothing)."""

    def __init__(self, M):
        self.M = M

    def fit(self, user_items, validation=None):
        return self

    def predict(self, userids, itemids):
        return self.M[np.asarray(userids), np.asarray(itemids)]


def _noisy_members(seed=0, n_users=120, n_items=50):
    """Ratings 1..5 and two members: one good for heavy users, one good for light users."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(1, 5, (n_users, n_items))
    heavy = np.arange(n_users) < n_users // 2
    density = np.where(heavy, 0.6, 0.08)[:, None]
    train = sp.csr_matrix(np.where(rng.random((n_users, n_items)) < density, 3.0, 0.0))
    train.data[:] = rng.integers(1, 6, train.nnz)
    noise_a = np.where(heavy, 0.1, 1.5)[:, None]  # member a: accurate on heavy users
    noise_b = np.where(heavy, 1.5, 0.1)[:, None]  # member b: accurate on light users
    a = truth + rng.normal(0, 1, truth.shape) * noise_a
    b = truth + rng.normal(0, 1, truth.shape) * noise_b
    mask = (rng.random(truth.shape) < 0.5) & (train.toarray() == 0)
    valid = sp.csr_matrix(np.where(mask, truth, 0.0))
    return train, valid, a, b


def test_cv_rmse_is_out_of_sample_and_support_features_help():
    train, valid, a, b = _noisy_members()
    members = [("a", _Fixed(a)), ("b", _Fixed(b))]
    plain = BlendedRatingModel(members).fit(train, validation=valid)
    # Fitted on the validation ratings themselves: in-sample error is the smaller one.
    assert plain.valid_rmse_ <= plain.cv_rmse_
    assert plain.cv_rmse_ < 1.5 * plain.valid_rmse_
    support = BlendedRatingModel(members, support=True).fit(train, validation=valid)
    assert support.coef_.shape == (2 * 3 + 2,)
    # Member a is good for users with many training ratings, b for the others: weights that
    # vary with user support beat one global weight by a wide margin, out of sample too.
    assert support.cv_rmse_ < 0.8 * plain.cv_rmse_
    vu, vi = valid.nonzero()
    vr = np.asarray(valid[vu, vi]).ravel()
    assert support.valid_rmse_ == pytest.approx(_rmse(support.predict(vu, vi), vr))
    no_cv = BlendedRatingModel(members, cv_folds=0).fit(train, validation=valid)
    assert np.isnan(no_cv.cv_rmse_)
    np.testing.assert_allclose(no_cv.coef_, plain.coef_)


def test_clip_keeps_predictions_in_training_range():
    train, valid, a, _ = _noisy_members(seed=3)
    wild = 3.0 + 4.0 * (a - 3.0)  # far outside 1..5, perfectly correlated with a
    members = [("wild", _Fixed(wild))]
    u, i = np.nonzero(np.ones_like(a))
    clipped = BlendedRatingModel(members).fit(train, validation=valid).predict(u, i)
    raw = BlendedRatingModel(members, clip=False).fit(train, validation=valid).predict(u, i)
    lo, hi = train.data.min(), train.data.max()
    assert clipped.min() >= lo and clipped.max() <= hi
    assert raw.min() < lo or raw.max() > hi
    np.testing.assert_allclose(clipped, np.clip(raw, lo, hi))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"ridge": -1.0}, "ridge"), ({"ridge": float("nan")}, "ridge"), ({"cv_folds": 1}, "cv_folds"),
     ({"cv_folds": -2}, "cv_folds"), ({"ridge": True}, "ridge"), ({"ridge": "1"}, "ridge")],
)  # fmt: skip
def test_blend_bad_parameters(kwargs, match):
    train, valid, a, _ = _noisy_members()
    with pytest.raises((ValueError, TypeError), match=match):
        BlendedRatingModel([("a", _Fixed(a))], **kwargs).fit(train, validation=valid)


@pytest.fixture(scope="module")
def fixed_blend():
    train, valid, a, b = _noisy_members(n_users=30, n_items=12)
    blend = BlendedRatingModel([("a", _Fixed(a)), ("b", _Fixed(b))], cv_folds=0)
    return blend.fit(train, validation=valid), train


def test_blend_recommend_follows_the_batch_protocol(fixed_blend):
    """The evaluation harness calls recommend with a batch of users, like every model."""
    blend, train = fixed_blend
    users = np.array([0, 3, 17, 29], dtype=np.int32)
    ids, scores = blend.recommend(users, train[users], N=5)
    assert ids.shape == scores.shape == (4, 5)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    for r, u in enumerate(users):
        one_ids, one_scores = blend.recommend(int(u), train[u], N=5)
        k = len(one_ids)  # a single user's list is not padded
        np.testing.assert_array_equal(ids[r, :k], one_ids)
        np.testing.assert_array_equal(scores[r, :k], one_scores)
        assert np.all(ids[r, k:] == -1) and k == min(5, 12 - train[u].nnz)
        assert not set(one_ids) & set(train[u].indices)
        full = blend.predict(np.full(12, u), np.arange(12))
        np.testing.assert_allclose(one_scores, full[one_ids], rtol=1e-6)
    # rows with fewer candidates than N are padded like implicit's batch calls
    ids, scores = blend.recommend(users, train[users], N=12)
    n_liked = np.diff(train[users].indptr)
    assert np.all((ids == -1).sum(axis=1) == n_liked)
    assert np.all(scores[ids == -1] == -np.finfo(np.float32).max)
    ids, _ = blend.recommend(users, train[users], N=12, filter_already_liked_items=False)
    assert np.all(ids >= 0)
    ids, _ = blend.recommend(0, train[0], N=12, filter_items=[0, 1])
    assert not {0, 1} & set(ids)


@pytest.mark.parametrize(
    ("userid", "exc", "match"),
    [(1.9, TypeError, "userid must be integers"), (np.nan, TypeError, "userid must be integers"),
     ([1.0, 2.0], TypeError, "userid must be integers"), (True, TypeError, "userid"),
     (30, IndexError, "userid contains 30"), (-1, IndexError, "userid contains -1")],
)  # fmt: skip
def test_blend_recommend_rejects_bad_user_ids(fixed_blend, userid, exc, match):
    blend, train = fixed_blend
    with pytest.raises(exc, match=match):
        blend.recommend(userid, train[1 : 1 + max(1, np.size(userid))], N=3)


def test_blend_recommend_argument_errors(fixed_blend):
    blend, train = fixed_blend
    with pytest.raises(ValueError, match="one row per requested user"):
        blend.recommend([0, 1], train[0], N=3)
    with pytest.raises(TypeError, match="filter_items must be integers"):
        blend.recommend(0, train[0], N=3, filter_items=[1.5])
    with pytest.raises(NotImplementedError, match="recalculate_user"):
        blend.recommend(0, train[0], N=3, recalculate_user=True)
    with pytest.raises(NotFittedError):
        BlendedRatingModel([("a", _Fixed(None))]).recommend(0, train[0])


def test_blend_recommend_ranks_by_the_unclipped_blend():
    """Clipped scores tied every item predicted above the top rating, and the top-N then
    fell back to item-id order."""
    rng = np.random.default_rng(0)
    M = rng.uniform(1, 5, (20, 12))
    valid_mask = rng.random(M.shape) < 0.5
    valid = sp.csr_matrix(np.where(valid_mask, M, 0.0))  # the blend is the identity on M
    train = sp.csr_matrix(np.where(~valid_mask & (rng.random(M.shape) < 0.3), 3.0, 0.0))
    train.data[:] = np.arange(train.nnz) % 5 + 1  # ratings 1..5
    free = np.flatnonzero(~valid_mask[0] & (train[0].toarray()[0] == 0))
    assert len(free) >= 3
    M[0, free[:3]] = [5.5, 6.5, 7.5]  # above the top rating, the best last in id order
    blend = BlendedRatingModel([("m", _Fixed(M))], ridge=0).fit(train, validation=valid)
    np.testing.assert_allclose(blend.coef_, [1.0])
    ids, scores = blend.recommend(0, train[0], N=3)
    np.testing.assert_array_equal(ids, free[:3][::-1])
    np.testing.assert_allclose(scores, [7.5, 6.5, 5.5], rtol=1e-6)
    assert blend.predict([0], [free[2]])[0] == 5.0  # predict still clips


class _Raising(_Fixed):
    def fit(self, user_items, validation=None):
        self.calls.append(validation is not None)
        raise TypeError("a bug inside the member's fit")


class _NoValidation(_Fixed):
    def fit(self, user_items):
        self.fitted = True
        return self


def test_blend_fit_passes_validation_by_signature_and_keeps_members_errors():
    """A TypeError inside a member's fit was taken for 'fit takes no validation': the member
    was fitted a second time, silently without early stopping."""
    train, valid, a, b = _noisy_members()
    raising = _Raising(a)
    raising.calls = []
    with pytest.raises(TypeError, match="a bug inside"):
        BlendedRatingModel([("r", raising)]).fit(train, validation=valid)
    assert raising.calls == [True]
    plain = _NoValidation(b)
    BlendedRatingModel([("a", _Fixed(a)), ("p", plain)]).fit(train, validation=valid)
    assert plain.fitted


def test_blend_ridge_zero_with_collinear_members():
    """ridge=0 and two identical members: the least-squares system is singular (numpy raised
    LinAlgError); the minimum-norm weights split the weight between the copies."""
    train, valid, a, _ = _noisy_members()
    one = BlendedRatingModel([("a", _Fixed(a))], ridge=0).fit(train, validation=valid)
    two = BlendedRatingModel([("a", _Fixed(a)), ("b", _Fixed(a))], ridge=0).fit(
        train, validation=valid
    )
    np.testing.assert_allclose(two.coef_, [one.coef_[0] / 2] * 2)
    u, i = valid.nonzero()
    np.testing.assert_allclose(two.predict(u, i), one.predict(u, i))


def test_blend_with_support_features_saves_and_loads(tmp_path):
    import rbmrec
    from rbmrec.evaluation import BiasBaseline
    from rbmrec.models.implicit import ImplicitRBM

    X, _, _ = planted(n_users=40, n_items=12)
    train, valid = holdout(X, seed=1)
    blend = BlendedRatingModel(
        [("bias", BiasBaseline()), ("rbm", RatingRBM(n_hidden=4, n_epochs=2, random_state=0))],
        support=True, cv_folds=2,
    ).fit(train, validation=valid)  # fmt: skip
    back = rbmrec.load(blend.save(tmp_path / "blend"))
    assert type(back) is BlendedRatingModel and [n for n, _ in back.members] == ["bias", "rbm"]
    u, i = X.nonzero()
    np.testing.assert_array_equal(back.predict(u, i), blend.predict(u, i))
    assert (back.cv_rmse_, back.valid_rmse_) == (blend.cv_rmse_, blend.valid_rmse_)
    users = np.arange(X.shape[0])
    for a, b in zip(back.recommend(users, train[users], N=4),
                    blend.recommend(users, train[users], N=4), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    unregistered = BlendedRatingModel([("m", ImplicitRBM(n_hidden=2, n_epochs=1))], cv_folds=0)
    with pytest.raises(NotFittedError):
        unregistered.save(tmp_path / "x")
