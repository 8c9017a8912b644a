"""Baseline specifics beyond the contract: formulas, confidence weighting, validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.errors import DataError, ModelFileError, NotFittedError
from rbmrec.evaluation.baselines import (
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    Popularity,
    confidence_matrix,
)


@pytest.fixture(scope="module")
def small() -> sp.csr_matrix:
    dense = np.array(
        [
            [5, 3, 0, 1, 0],
            [4, 0, 0, 1, 2],
            [1, 1, 0, 5, 0],
            [0, 0, 5, 4, 0],
            [0, 1, 5, 4, 3],
        ],
        dtype=np.float32,
    )
    return sp.csr_matrix(dense)


def test_global_mean(small):
    m = GlobalMean().fit(small)
    assert m.mean_ == pytest.approx(small.data.mean())
    np.testing.assert_allclose(m.predict([0, 4], [2, 0]), [small.data.mean()] * 2)


def test_bias_baseline_matches_direct_alternating_solution(small):
    reg_u, reg_i, n_iter = 2.0, 3.0, 4
    m = BiasBaseline(reg_user=reg_u, reg_item=reg_i, n_iter=n_iter, clip=False).fit(small)
    dense = small.toarray()
    obs = dense > 0
    mu = dense[obs].mean()
    bu, bi = np.zeros(5), np.zeros(5)
    for _ in range(n_iter):  # plain loops, as in Surprise's BaselineOnly (ALS variant)
        for i in range(5):
            us = np.flatnonzero(obs[:, i])
            bi[i] = sum(dense[u, i] - mu - bu[u] for u in us) / (reg_i + len(us))
        for u in range(5):
            its = np.flatnonzero(obs[u])
            bu[u] = sum(dense[u, i] - mu - bi[i] for i in its) / (reg_u + len(its))
    np.testing.assert_allclose(m.user_bias_, bu, rtol=1e-6)
    np.testing.assert_allclose(m.item_bias_, bi, rtol=1e-6)
    np.testing.assert_allclose(m.predict([1, 3], [2, 0]), [mu + bu[1] + bi[2], mu + bu[3] + bi[0]])


def test_bias_baseline_reduces_training_error_and_clips(small):
    m = BiasBaseline(reg_user=0.1, reg_item=0.1, n_iter=20).fit(small)
    coo = small.tocoo()
    pred = m.predict(coo.row, coo.col)
    assert np.sqrt(np.mean((pred - coo.data) ** 2)) < np.std(coo.data)
    all_u, all_i = np.meshgrid(np.arange(5), np.arange(5))
    p = m.predict(all_u.ravel(), all_i.ravel())
    assert p.min() >= 1.0 and p.max() <= 5.0


def test_bias_recommend_ranks_by_item_bias_and_recalculates(small):
    m = BiasBaseline().fit(small)
    ids, scores = m.recommend(0, small[0], N=5, filter_already_liked_items=False)
    np.testing.assert_array_equal(ids, np.argsort(-m.item_bias_, kind="stable"))
    # recalculate_user from the same row gives the stored user bias: identical scores
    ids2, scores2 = m.recommend(0, small[0], N=5, filter_already_liked_items=False,
                                recalculate_user=True)  # fmt: skip
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(scores2, scores, rtol=1e-5)


def test_popularity_counts_and_min_rating(small):
    m = Popularity().fit(small)
    np.testing.assert_array_equal(m.item_counts_, [3, 3, 2, 5, 2])
    ids, _ = m.recommend(3, small[3], N=3)
    np.testing.assert_array_equal(ids, [0, 1, 4])  # 2 and 3 already rated; 0 before 1 (tie)
    high = Popularity(min_rating=4).fit(small)
    np.testing.assert_array_equal(high.item_counts_, [2, 0, 2, 3, 0])


def test_confidence_matrix(small):
    before = small.data.copy()
    b = confidence_matrix(small)
    assert np.all(b.data == 1.0) and b.nnz == small.nnz and b.dtype == np.float32
    r = confidence_matrix(small, "rating", min_rating=3)
    assert r.nnz == int((small.data >= 3).sum())
    np.testing.assert_array_equal(np.sort(r.data), np.sort(small.data[small.data >= 3]))
    np.testing.assert_array_equal(small.data, before)
    with pytest.raises(ValueError, match="weighting"):
        confidence_matrix(small, "log")


def test_zero_and_negative_ratings_are_interactions_of_the_top_n_baselines():
    X = sp.csr_matrix(
        (np.array([0.0, -2.0, 3.0, 0.0]), ([0, 0, 1, 2], [0, 1, 1, 2])), shape=(3, 3)
    )
    b = confidence_matrix(X)
    assert b.nnz == 4 and np.all(b.data == 1.0)
    kept = confidence_matrix(X, min_rating=0)
    assert kept.nnz == 3 and sorted(kept.data.tolist()) == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(Popularity().fit(X).item_counts_, [1, 2, 1])
    with pytest.raises(DataError, match=r"weighting='rating'.*> 0.*weighting='binary'"):
        confidence_matrix(X, "rating")
    assert confidence_matrix(X, "rating", min_rating=1).data.tolist() == [3.0]


def test_als_recalculate_user_matches_stored_factors(small):
    m = ImplicitALS(factors=3, regularization=0.1, iterations=30, random_state=0).fit(small)
    users = np.array([0, 2])
    _, sa = m.recommend(users, small[users], N=3)
    _, sb = m.recommend(users, small[users], N=3, recalculate_user=True)
    # after convergence, re-solving a user against fixed item factors changes little
    np.testing.assert_allclose(sb, sa, atol=0.05)
    with pytest.raises(NotImplementedError):
        ImplicitBPR(factors=3, iterations=5).fit(small).recommend(
            0, small[0], recalculate_user=True
        )


def test_als_rating_weighting_changes_the_model(small):
    a = ImplicitALS(factors=3, iterations=5, random_state=0).fit(small)
    b = ImplicitALS(factors=3, iterations=5, random_state=0, weighting="rating").fit(small)
    assert not np.allclose(a.user_factors_, b.user_factors_)


def test_implicit_random_state_must_be_int(small):
    with pytest.raises(TypeError, match="RandomState"):
        ImplicitALS(random_state=np.random.RandomState(0)).fit(small)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (ImplicitALS(factors=0), "factors"),
        (ImplicitALS(regularization=-1.0), "regularization"),
        (ImplicitALS(alpha=0.0), "alpha"),
        (ImplicitALS(iterations=0), "iterations"),
        (ImplicitBPR(learning_rate=0.0), "learning_rate"),
        (ImplicitItemKNN(kind="jaccard"), "kind"),
        (ImplicitItemKNN(K=0), "K"),
        (BiasBaseline(reg_user=-1.0), "reg_user"),
        (BiasBaseline(n_iter=0), "n_iter"),
    ],
)
def test_bad_parameters(small, model, match):
    with pytest.raises(ValueError, match=match):
        model.fit(small)


@pytest.mark.parametrize("cls", [GlobalMean, BiasBaseline, Popularity, ImplicitALS])
def test_bad_fit_input(cls):
    with pytest.raises(TypeError, match=r"CSR|sparse"):
        cls().fit(np.ones((3, 3)))
    with pytest.raises(TypeError, match="CSR"):
        cls().fit(sp.coo_matrix(np.ones((3, 3))))
    bad = sp.csr_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(bad)


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        BiasBaseline().predict([0], [0])
    with pytest.raises(NotFittedError):
        Popularity().save("x")


@pytest.mark.filterwarnings("ignore::implicit.utils.ParameterWarning")
def test_knn_scores_equal_implicit_recommend(small):
    """Our dense scoring of implicit's similarity matrix reproduces implicit's own scores."""
    from implicit.nearest_neighbours import CosineRecommender

    ours = ImplicitItemKNN(kind="cosine", K=3).fit(small)
    theirs = CosineRecommender(K=3, num_threads=1)
    theirs.fit(confidence_matrix(small), show_progress=False)
    for u in range(5):
        row = confidence_matrix(small[u])
        t_ids, t_scores = theirs.recommend(u, row, N=5)
        o_ids, o_scores = ours.recommend(u, small[u], N=5)
        got = dict(zip(o_ids.tolist(), o_scores.tolist(), strict=True))
        for i, s in zip(t_ids.tolist(), t_scores.tolist(), strict=True):
            if i in row.indices:  # implicit 0.7.3 may list liked items with score 0
                continue
            assert got[i] == pytest.approx(s, rel=1e-5)


def test_load_rejects_a_foreign_file(tmp_path):
    p = tmp_path / "foreign.npz"
    np.savez(p, x=np.arange(3))
    with pytest.raises(ModelFileError):
        rbmrec.load(p)


def test_numpy_scalar_parameters_save_and_load_as_python_values(small, tmp_path):
    m = BiasBaseline(reg_user=np.float32(15), n_iter=np.int64(3)).fit(small)
    back = rbmrec.load(m.save(tmp_path / "b"))
    assert type(back.reg_user) is float and back.reg_user == 15.0
    assert type(back.n_iter) is int and back.n_iter == 3
    np.testing.assert_array_equal(back.predict([0, 1], [1, 2]), m.predict([0, 1], [1, 2]))
    pop = Popularity(min_rating=np.int64(4)).fit(small)
    assert type(rbmrec.load(pop.save(tmp_path / "p")).min_rating) is int


@pytest.mark.parametrize(
    ("filter_items", "exc", "match"),
    [([1.9], TypeError, "filter_items must be integers"),
     ([np.nan], TypeError, "filter_items must be integers"),
     ([-1], IndexError, "filter_items contains -1"),
     ([5], IndexError, "filter_items contains 5, outside")],
)  # fmt: skip
@pytest.mark.parametrize("cls", [Popularity, BiasBaseline, GlobalMean])
def test_filter_items_must_be_item_ids(small, cls, filter_items, exc, match):
    """106.9 used to be truncated to item 106 (and -1 to wrap to the last item)."""
    m = cls().fit(small)
    with pytest.raises(exc, match=match):
        m.recommend(0, small[0], N=2, filter_items=filter_items)
    with pytest.raises(exc, match=match):
        m.recommend([0, 1], small[[0, 1]], N=2, filter_items=filter_items)


def test_malformed_csr_is_rejected(small):
    bad = small.copy()
    bad.indices = bad.indices.copy()
    bad.indices[0] = 10**6
    for cls in (GlobalMean, BiasBaseline, Popularity, ImplicitALS):
        with pytest.raises(DataError, match="column index 1000000 >= 5"):
            cls().fit(bad)
    m = Popularity().fit(small)
    with pytest.raises(DataError, match="column index"):
        m.recommend(np.arange(5), bad, N=2)


_MIN_RATING_MODELS = [
    lambda r: ImplicitALS(factors=2, iterations=1, min_rating=r),
    lambda r: ImplicitBPR(factors=2, iterations=1, min_rating=r),
    lambda r: ImplicitItemKNN(K=2, min_rating=r),
    lambda r: Popularity(min_rating=r),
]


@pytest.mark.parametrize("make", _MIN_RATING_MODELS)
@pytest.mark.parametrize(
    ("value", "error"), [("3", TypeError), (True, TypeError), (float("nan"), ValueError)]
)
def test_min_rating_must_be_a_finite_real(small, make, value, error):
    """min_rating="3" crashed inside numpy (UFuncTypeError) without naming the parameter."""
    with pytest.raises(error, match="min_rating"):
        make(value).fit(small)


@pytest.mark.parametrize("make", _MIN_RATING_MODELS)
def test_min_rating_dropping_every_rating_is_an_error(small, make):
    """A min_rating above every rating fitted a model on nothing that scored every item 0."""
    too_high = float(small.data.max()) + 1
    with pytest.raises(DataError, match=rf"min_rating={too_high}.* all {small.nnz} "):
        make(too_high).fit(small)
    make(float(small.data.max())).fit(small)  # keeping a few ratings is fine


def test_confidence_matrix_names_a_bad_min_rating(small):
    with pytest.raises(TypeError, match="min_rating"):
        confidence_matrix(small, min_rating="3")


def test_bias_recommend_scores_are_the_unclipped_estimate():
    """recommend reports the unclipped mu + b_u + b_i (as its docstring now says), which
    exceeds the top rating for a strong user and item; predict clips."""
    # users 0-1 rate everything 5, users 2-3 only item 0: mu + b_0 + b_item0 is above 5
    dense = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [5, 1, 1, 1], [5, 1, 1, 1]], np.float32)
    m = BiasBaseline(reg_user=0.0, reg_item=0.0).fit(sp.csr_matrix(dense))
    empty = sp.csr_matrix((1, 4), dtype=np.float32)
    ids, scores = m.recommend(0, empty, N=4)
    raw = m.mean_ + m.user_bias_[0] + m.item_bias_[ids]
    np.testing.assert_allclose(scores, raw, rtol=1e-6)
    assert scores[0] > 5.0 >= m.predict([0], [int(ids[0])])[0]


_EVERY_BASELINE = [
    GlobalMean,
    BiasBaseline,
    Popularity,
    lambda: ImplicitALS(factors=2, iterations=2),
    lambda: ImplicitBPR(factors=2, iterations=2),
    lambda: ImplicitItemKNN(K=2),
]


@pytest.mark.parametrize("make", _EVERY_BASELINE)
def test_every_baseline_refuses_an_empty_training_matrix(make):
    """Popularity and the implicit wrappers fitted a matrix without ratings and recommended
    items in id order with score 0; GlobalMean and BiasBaseline refused it."""
    empty = sp.csr_matrix((4, 3), dtype=np.float32)
    with pytest.raises(DataError, match=r"^user_items has no ratings$"):
        make().fit(empty)


def test_bias_baseline_handles_cold_users_and_items_without_warnings():
    """With reg 0, a user or item without ratings gives 0/0, set to bias 0 on purpose: that
    used to emit 'RuntimeWarning: invalid value encountered in divide'."""
    X = sp.csr_matrix(np.array([[5.0, 0, 3], [0, 0, 0]]))  # user 1 and item 1 are cold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = BiasBaseline(reg_user=0.0, reg_item=0.0).fit(X)
        ids, _ = m.recommend([0, 1], sp.csr_matrix((2, 3)), N=3, recalculate_user=True)
    assert m.user_bias_[1] == 0.0 and m.item_bias_[1] == 0.0
    assert np.isfinite(m.user_bias_).all() and np.isfinite(m.item_bias_).all()
    assert ids.shape == (2, 3)
