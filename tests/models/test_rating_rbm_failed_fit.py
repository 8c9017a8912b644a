"""RatingRBM: a fit that fails its checks changes nothing; high_rating and callbacks checks.

A refit used to write ``values_``, ``n_users_`` and ``n_items_`` before its later checks, so
a failed refit left the old parameters with new metadata: wrong or random predictions, and
out-of-bounds reads in the kernels.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from test_rating_rbm import planted

from rbmrec.errors import DataError
from rbmrec.models.rating import RatingRBM

KW = {"n_hidden": 3, "n_epochs": 1, "random_state": 0, "validation_fraction": 0}


@pytest.fixture(scope="module")
def data():
    X, _, _ = planted(n_users=40, n_items=16)
    return X


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted model per orientation; tests work on deep copies."""
    return {o: RatingRBM(orientation=o, **KW).fit(data) for o in ("user", "item", "both")}


def _snapshot(m, X):
    u, i = np.divmod(np.arange(X.shape[0] * X.shape[1]), X.shape[1])
    return {
        "predict": m.predict(u, i),
        "recommend": m.recommend(np.arange(5), X[:5], N=4),
        "values_": m.values_.copy(),
        "shape": (m.n_users_, m.n_items_),
        "history_": [{k: v for k, v in r.items() if k != "seconds"} for r in m.history_],
        "batch_size_": m.batch_size_,
        "members_": None if m.members_ is None else dict(m.members_),
    }


def _assert_same(a, b, same_members=True):
    np.testing.assert_array_equal(a["predict"], b["predict"])
    for x, y in zip(a["recommend"], b["recommend"], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["values_"], b["values_"])
    assert a["shape"] == b["shape"]
    assert a["history_"] == b["history_"]
    assert a["batch_size_"] == b["batch_size_"]
    if same_members:  # the very same member objects
        assert a["members_"] == b["members_"]
    else:
        assert (a["members_"] is None) == (b["members_"] is None)


def _bigger():
    X, _, _ = planted(n_users=60, n_items=24, seed=3)
    return X


def _failing_refits(X):
    """(label, change to the model, fit arguments, error, pattern)."""
    one_level = X.copy()
    one_level.data[:] = 5.0
    dup = sp.csr_matrix(
        (np.r_[X.data, 5.0], np.r_[X.indices, X.indices[0]], np.r_[0, X.indptr[1:] + 1]),
        shape=X.shape,
    )
    dup.indices[: X.indptr[1] + 1] = np.sort(dup.indices[: X.indptr[1] + 1])
    big = _bigger()
    far = sp.csr_matrix((np.array([4.0, 2.0]), np.array([10**6, 1]), np.r_[0, 1, [2] * 59]),
                        shape=(60, 24))  # fmt: skip
    # A "both" model fits new members and adopts them only at the end, so checks that its
    # first member runs were already safe there; every other case failed in all orientations.
    single = ("user", "item")
    every = ("user", "item", "both")
    return [
        ("one rating level", single, {}, (one_level,), {}, DataError, "two distinct"),
        ("known_pairs shape", single, {}, (big,), {"known_pairs": sp.csr_matrix((3, 3))},
         DataError, "known_pairs"),
        ("duplicate ratings", every, {}, (dup,), {}, DataError, "duplicate"),
        ("malformed csr", every, {}, (far,), {}, DataError, "column index"),
        ("callback not callable", every, {"callbacks": [1]}, (big,), {}, TypeError, "callbacks"),
        ("high_rating above the levels", every, {"high_rating": 6.0, "recommend_score": "p_high"},
         (big,), {}, ValueError, "high_rating"),
        ("high_rating not a number", every, {"high_rating": "4"}, (big,), {}, TypeError,
         "high_rating"),
    ]  # fmt: skip


CASES = [
    pytest.param(o, label, *rest, id=f"{label}-{o}")
    for label, orientations, *rest in _failing_refits(planted(n_users=40, n_items=16)[0])
    for o in orientations
]


@pytest.mark.parametrize(("orientation", "label", "change", "args", "kwargs", "exc", "match"),
                         CASES)  # fmt: skip
def test_failed_refit_leaves_the_model_unchanged(
    fitted, data, orientation, label, change, args, kwargs, exc, match
):
    m = copy.deepcopy(fitted[orientation])
    before = _snapshot(m, data)
    old = {k: getattr(m, k) for k in change}
    for k, v in change.items():
        setattr(m, k, v)
    with pytest.raises(exc, match=match):
        m.fit(*args, **kwargs)
    for k, v in old.items():
        setattr(m, k, v)
    _assert_same(before, _snapshot(m, data))


def test_failed_refit_after_an_orientation_change_keeps_the_members(fitted, data):
    """A "both" model switched to one orientation keeps its members when the refit fails."""
    m = copy.deepcopy(fitted["both"])
    before = _snapshot(m, data)
    m.orientation = "user"
    one_level = data.copy()
    one_level.data[:] = 5.0
    with pytest.raises(DataError):
        m.fit(one_level)
    assert set(m.members_) == {"item", "user"}
    m.orientation = "both"  # inference refuses the changed orientation until it is set back
    _assert_same(before, _snapshot(m, data))
    # and it still refits normally afterwards, to the same model as a fresh fit
    m.fit(data)
    _assert_same(before, _snapshot(m, data), same_members=False)


def test_divergence_still_leaves_a_consistent_new_model(data):
    """Errors during training (not checks) leave the new model's state, never a mix."""
    big = _bigger()
    m = RatingRBM(orientation="user", **KW).fit(data)
    m.learning_rate, m.momentum = 1e38, 0.0
    with pytest.raises(FloatingPointError):
        m.fit(big)
    assert (m.n_users_, m.n_items_) == big.shape
    assert m.weights_.shape[0] == big.shape[1] and np.all(np.isfinite(m.weights_))
    assert m.history_ == []
    assert np.all(np.isfinite(m.predict([59, 0], [23, 1])))


# --------------------------------------------------------------------------- high_rating


@pytest.mark.parametrize(
    ("high_rating", "exc", "match"),
    [
        ("4", TypeError, "high_rating must be a number"),
        (True, TypeError, "high_rating must be a number"),
        (np.nan, ValueError, "high_rating must be finite"),
        (np.inf, ValueError, "high_rating must be finite"),
        (6.0, ValueError, r"high_rating=6.0 must be .* \(1.0 and 5.0\)"),
        (1, ValueError, "above the lowest"),
        (0.5, ValueError, "above the lowest"),
    ],
)
@pytest.mark.parametrize("orientation", ["user", "both"])
def test_bad_high_rating_is_rejected_before_training(data, orientation, high_rating, exc, match):
    epochs = []
    m = RatingRBM(orientation=orientation, recommend_score="p_high", high_rating=high_rating,
                  callbacks=[lambda e, rec: epochs.append(e)], **KW)  # fmt: skip
    with pytest.raises(exc, match=match):
        m.fit(data)
    assert epochs == []  # no epoch was trained
    assert m.weights_ is None


def test_high_rating_is_only_checked_when_the_ranking_uses_it(data):
    """With recommend_score="expected" a threshold outside the data's levels is unused."""
    low = data.copy()
    low.data = np.minimum(low.data, 3.0)
    m = RatingRBM(orientation="user", high_rating=4.5, **KW).fit(low)
    np.testing.assert_array_equal(m.values_, [1.0, 2.0, 3.0])
    assert m.recommend(0, low[0], N=3)[0].shape == (3,)


def test_valid_high_rating_ranks_by_probability_of_high_ratings(data):
    m = RatingRBM(orientation="user", recommend_score="p_high", high_rating=4.5, **KW).fit(data)
    ids, scores = m.recommend(0, data[0], N=5)
    assert np.all(scores > 0) and np.all(scores < 1)
    np.testing.assert_allclose(scores, m.predict_proba([0] * 5, ids)[:, -1], rtol=1e-5)
    np.testing.assert_array_equal(m.values_, [1.0, 2.0, 3.0, 4.0, 5.0])
    m.high_rating = "4"  # changed after fit: a clear error, not numpy's ufunc error
    with pytest.raises(TypeError, match="high_rating"):
        m.recommend(0, data[0], N=5)
    m.high_rating = 9
    with pytest.raises(ValueError, match="high_rating"):
        m.score_items(0)


# ----------------------------------------------------------------------------- callbacks


@pytest.mark.parametrize(
    ("callbacks", "match"),
    [
        ([1], r"callbacks\[0\] must be callable, got int"),
        ([print, "x"], r"callbacks\[1\] must be callable"),
        (lambda e, rec: None, "wrap a single callback in a list"),
        (3, "callbacks must be a sequence"),
        ((cb for cb in [print]), "callbacks must be a sequence"),  # a generator is used up
    ],
)
def test_callbacks_are_checked_before_training(data, callbacks, match):
    m = RatingRBM(orientation="user", callbacks=callbacks, **KW)
    with pytest.raises(TypeError, match=match):
        m.fit(data)
    assert m.weights_ is None


# ------------------------------------------------------------------- changed after fit
@pytest.mark.parametrize("orientation", ["user", "both"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n_hidden", 7),
        ("orientation", "item"),
        ("conditional", False),
        ("n_factors", 2),
        ("visible", "gaussian"),
        ("dtype", "float64"),
    ],
)
def test_structural_hyperparameters_changed_after_fit_are_refused(
    data, fitted, tmp_path, orientation, name, value
):
    """n_hidden changed after fit sized the conditional offset wrongly (reads past D), visible
    gave a Numba typing error, n_factors a KeyError: inference and save now refuse a changed
    structural hyperparameter and work again once it is set back."""
    m = copy.deepcopy(fitted[orientation])
    before = m.predict([0, 1], [2, 3])
    old = getattr(m, name)
    setattr(m, name, value)
    calls = {
        "predict": lambda: m.predict([0, 1], [2, 3]),
        "predict_proba": lambda: m.predict_proba([0], [2]),
        "recommend": lambda: m.recommend(0, data[0], N=3),
        "score_items": lambda: m.score_items(0),
        "save": lambda: m.save(tmp_path / "m"),
    }
    for call, fn in calls.items():
        with pytest.raises(ValueError, match=rf"{name} is .* fitted with {name}="):
            fn()
            pytest.fail(f"{call} ran with {name} changed")
    setattr(m, name, old)
    np.testing.assert_array_equal(m.predict([0, 1], [2, 3]), before)


def test_inference_settings_may_change_after_fit(data, fitted):
    m = copy.deepcopy(fitted["user"])
    m.prediction = "exact"
    m.recommend_score = "p_high"
    m.num_threads = 1
    assert np.all(np.isfinite(m.predict([0, 1], [2, 3])))
    assert m.recommend(0, data[0], N=3)[0].size == 3


def test_both_model_scores_with_its_inference_settings_changed_after_fit(data, fitted):
    """A "both" model kept its members' settings: prediction="exact" or
    recommend_score="p_high" set after fit changed nothing."""
    m = copy.deepcopy(fitted["both"])
    u, i = np.array([0, 1, 2]), np.array([3, 4, 5])
    mean_field = m.predict(u, i)
    expected = m.recommend(0, data[0], N=4)[1]
    m.prediction = "exact"
    m.recommend_score = "p_high"
    exact = m.predict(u, i)
    assert not np.allclose(exact, mean_field)
    item, user = m.members_["item"], m.members_["user"]
    assert item.prediction == user.prediction == "exact"
    assert not np.allclose(m.recommend(0, data[0], N=4)[1], expected)
    assert np.all((0.0 <= m.recommend(0, data[0], N=4)[1]) & (m.recommend(0, data[0], N=4)[1] <= 1))


@pytest.mark.parametrize(
    ("name", "value"), [("prediction", "exact "), ("recommend_score", "expectd"),
                        ("high_rating", "4"), ("num_threads", -1)],
)  # fmt: skip
def test_invalid_inference_settings_set_after_fit_are_refused(data, fitted, name, value):
    """A typo in prediction ran the exact kernel on pre-sigmoid inputs, and any
    recommend_score but "expected" meant p_high: every scoring call now checks them."""
    for orientation in ("user", "both"):
        m = copy.deepcopy(fitted[orientation])
        setattr(m, name, value)
        with pytest.raises((ValueError, TypeError), match=name):
            m.predict([0], [1])
        with pytest.raises((ValueError, TypeError), match=name):
            m.recommend(0, data[0], N=3)


def test_numpy_integer_cd_steps_saves(data, tmp_path):
    import rbmrec

    m = RatingRBM(orientation="user", cd_steps=np.int64(2), **KW).fit(data)
    back = rbmrec.load(m.save(tmp_path / "m"))
    assert back.cd_steps == 2 and type(back.cd_steps) is int


def test_recommend_recalculate_user_refuses_duplicate_pairs(data, fitted):
    """A COO row with one item stored twice (2 and 3 stars) was summed into a 5 and folded in;
    score_items and predict_user already refused it."""
    from rbmrec.errors import DataError

    m = fitted["user"]
    dup = sp.coo_matrix(([2.0, 3.0], ([0, 0], [7, 7])), shape=(1, data.shape[1]))
    with pytest.raises(DataError, match="duplicate"):
        m.recommend(0, dup, N=3, recalculate_user=True)
    assert m.recommend(0, dup, N=3)[0].size == 3  # only filters: the sum is still "seen"
