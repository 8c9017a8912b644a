"""ChooseAndLike: log P_choose + beta * rating score, beta chosen on a held-out part."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

import rbmrec
from rbmrec.data import make_ratings
from rbmrec.errors import DataError, NotFittedError
from rbmrec.models._estimator import side_generator
from rbmrec.models._ranking import ndcg_sum
from rbmrec.models.choice import ChooseAndLike, log_softmax
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.rating import RatingRBM
from rbmrec.models.rating_train import own_validation

BETAS = (0.0, 0.5, 1.0, 3.0)


def _ratings() -> sp.csr_matrix:
    return make_ratings(120, 40, density=0.25, seed=0).user_items


def _model(**kw) -> ChooseAndLike:
    return ChooseAndLike(
        RatingRBM(n_hidden=8, n_epochs=4, random_state=0),
        ImplicitRBM(n_hidden=8, n_epochs=4, n_models=1, random_state=0),
        betas=BETAS,
        random_state=3,
        **kw,
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[ChooseAndLike, sp.csr_matrix]:
    X = _ratings()
    return _model().fit(X), X


def _held_out(X: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The training and held-out parts drawn independently of the model's code path."""
    rng = side_generator(3, ChooseAndLike._VALIDATION_STREAM)
    train, V, _ = own_validation(X, None, 0.1, rng, keep_levels=True, conditional=True)
    return train, V


def test_score_is_log_choice_probability_plus_beta_times_rating_score(fitted):
    model, X = fitted
    train, _ = _held_out(X)
    for u in (0, 7, 55):
        logits = model.chooser_.score_items(train[u]).astype(np.float64)[0]
        hand = logits - logsumexp(logits) + model.beta_ * model.rating_model_.score_items(u)
        np.testing.assert_allclose(model.score_items(u), hand, rtol=1e-9, atol=1e-9)


def test_beta_is_the_best_of_the_grid_on_the_held_out_part(fitted):
    model, X = fitted
    train, V = _held_out(X)
    # neither member trained on the held-out ratings
    assert model.chooser_.user_items_.multiply(V).nnz == 0
    assert model.chooser_.user_items_.nnz + V.nnz == X.nnz
    thr = model.rating_model_.high_threshold()
    users = [u for u in range(X.shape[0]) if np.any(V[u].data >= thr)]
    assert users
    chosen = model.beta_
    brute = []
    for beta in BETAS:
        model.beta_ = beta
        ids, _ = model.recommend(np.asarray(users), train[users], N=10)
        total = 0.0
        for r, u in enumerate(users):
            rel = set(V[u].indices[V[u].data >= thr].tolist())
            dcg = sum(1 / np.log2(p + 2) for p, i in enumerate(ids[r]) if i in rel)
            ideal = sum(1 / np.log2(p + 2) for p in range(min(10, len(rel))))
            total += dcg / ideal
        brute.append(total / len(users))
    model.beta_ = chosen
    np.testing.assert_allclose(model.validation_ndcg_, brute, rtol=1e-12)
    assert chosen == BETAS[int(np.argmax(brute))]


def test_log_softmax_and_ndcg_against_brute_force():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 7)).astype(np.float32) * 30
    brute = s - logsumexp(s.astype(np.float64), axis=1)[:, None]
    np.testing.assert_allclose(log_softmax(s), brute, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(s)).sum(axis=1), 1.0, rtol=1e-12)
    ids = np.array([[3, 1, 2], [0, -1, -1], [4, 5, 6]])
    rel = sp.csr_matrix((np.ones(4), np.array([1, 2, 0, 9]), np.array([0, 2, 3, 4])), shape=(3, 10))
    d = 1 / np.log2([2, 3, 4])
    expected = (d[1] + d[2]) / (d[0] + d[1]) + 1.0 + 0.0
    assert ndcg_sum(ids, rel.indptr, rel.indices) == pytest.approx(expected)


def test_save_load_round_trip_gives_identical_lists(fitted, tmp_path):
    model, X = fitted
    path = model.save(tmp_path / "choice.npz")
    loaded = rbmrec.load(path)
    assert isinstance(loaded, ChooseAndLike)
    assert loaded.beta_ == model.beta_
    np.testing.assert_array_equal(loaded.validation_ndcg_, model.validation_ndcg_)
    users = np.arange(X.shape[0])
    for a, b in zip(loaded.recommend(users, X), model.recommend(users, X), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict([0, 5], [1, 2]), model.predict([0, 5], [1, 2]))


def test_predict_is_the_rating_models(fitted):
    model, _ = fitted
    u, i = np.array([0, 3, 9]), np.array([4, 0, 39])
    np.testing.assert_array_equal(model.predict(u, i), model.rating_model_.predict(u, i))


def test_fold_in_scores_both_members_from_the_rows(fitted):
    model, X = fitted
    row = X[[4]]
    got = model.score_items(0, row)
    logits = model.chooser_.score_items(row).astype(np.float64)[0]
    rate = model.rating_model_.score_items(0, row)
    np.testing.assert_allclose(got, logits - logsumexp(logits) + model.beta_ * rate, rtol=1e-9)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"betas": ()}, ValueError, "at least one"),
        ({"betas": (1.0, -0.5)}, ValueError, "betas"),
        ({"betas": "1"}, TypeError, "betas"),
        ({"betas": (1.0, float("nan"))}, ValueError, "betas"),
        ({"validation_fraction": 0.0}, ValueError, "validation_fraction"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
        ({"rating_model": ImplicitRBM()}, TypeError, "rating_model must be a RatingRBM"),
        ({"chooser": RatingRBM()}, TypeError, "chooser must be a ImplicitRBM instance"),
        ({"rating_model": RatingRBM(visible="gaussian")}, ValueError, "softmax"),
    ],
)
def test_bad_parameters_are_named(kw, exc, match):
    with pytest.raises(exc, match=match):
        ChooseAndLike(**kw).fit(_ratings())


def test_bad_data_and_unfitted_model():
    X = _ratings()
    dup = sp.csr_matrix((np.array([4.0, 5.0]), np.array([1, 1]), np.array([0, 2])), shape=(1, 3))
    with pytest.raises(DataError, match="user_items"):
        _model().fit(dup)
    four = sp.csr_matrix(np.array([[1.0, 5.0], [5.0, 1.0]]))
    with pytest.raises(DataError, match="too few"):
        _model().fit(four)
    with pytest.raises(NotFittedError):
        _model().recommend(0, X[0])
    with pytest.raises(NotFittedError):
        _model().save("unused.npz")


def test_registry_model_is_the_default_with_threads_and_the_same_member_seeds():
    from rbmrec.evaluation import registry
    from rbmrec.models.mixture import spawn_seeds

    model = registry.make("choose-and-like", random_state=5, num_threads=1)
    assert isinstance(model, ChooseAndLike) and model.random_state == 5
    members = (model.rating_model, model.chooser)
    assert [type(m) for m in members] == [RatingRBM, ImplicitRBM]
    assert all(m.num_threads == 1 for m in members)
    for member, seed in zip(members, spawn_seeds(5, 2), strict=True):
        assert member.random_state.entropy == seed.entropy
        assert member.random_state.spawn_key == seed.spawn_key


def test_seeded_keeps_member_settings_and_gives_the_default_members_seeds():
    from rbmrec.models.choice import seeded
    from rbmrec.models.mixture import spawn_seeds

    rating = RatingRBM(n_hidden=8, n_epochs=4, random_state=99)
    chooser = ImplicitRBM(n_hidden=6, n_models=1, random_state=99)
    model = seeded(rating, chooser, 7, betas=(0.0, 2.0), validation_fraction=0.2)
    assert model.rating_model is rating and model.chooser is chooser
    assert (rating.n_hidden, rating.n_epochs, chooser.n_hidden) == (8, 4, 6)
    assert model.betas == (0.0, 2.0) and model.validation_fraction == 0.2
    for member, seed in zip((rating, chooser), spawn_seeds(7, 2), strict=True):
        assert member.random_state.spawn_key == seed.spawn_key
        assert member.random_state.entropy == seed.entropy
