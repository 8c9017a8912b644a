"""RatingRBM: prediction formulas against enumeration, learning, determinism, errors."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec import load
from rbmrec.errors import DataError, NotFittedError
from rbmrec.models.mixture import fit_weights
from rbmrec.models.rating import RatingRBM


def planted(n_users=300, n_items=60, n_groups=3, density=0.3, seed=0):
    """Ratings 1..5 where users love their group's items and dislike the others."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(0, n_groups, n_users)
    ig = rng.integers(0, n_groups, n_items)
    mask = rng.random((n_users, n_items)) < density
    base = np.where(ug[:, None] == ig[None, :], 4.6, 1.8)
    bias = rng.normal(0, 0.3, n_items)[None, :]
    r = np.clip(np.rint(base + bias + rng.normal(0, 0.5, (n_users, n_items))), 1, 5)
    full = sp.csr_matrix(np.where(mask, r, 0.0))
    return full, ug, ig


def holdout(X, frac=0.2, seed=1):
    coo = X.tocoo()
    m = np.random.default_rng(seed).random(coo.nnz) < frac
    mk = lambda s: sp.csr_matrix((coo.data[s], (coo.row[s], coo.col[s])), shape=X.shape)  # noqa: E731
    return mk(~m), mk(m)


def tiny_model(prediction):
    """A fitted RatingRBM on a tiny problem, then random parameters put in place."""
    X = sp.csr_matrix(np.array([[1, 2, 0, 3], [3, 0, 1, 2], [0, 3, 2, 1]], dtype=float))
    m = RatingRBM(n_hidden=3, n_epochs=1, batch_size=3, prediction=prediction,
                  orientation="user", conditional=False, random_state=0,
                  dtype=np.float64, validation_fraction=0).fit(X)  # fmt: skip
    rng = np.random.default_rng(7)
    m._params["W"][...] = rng.normal(0, 1.0, m._params["W"].shape)
    m._params["b"][...] = rng.normal(0, 1.0, m._params["b"].shape)
    m._params["c"][...] = rng.normal(0, 1.0, m._params["c"].shape)
    m._set_public()
    return m, X


def brute_force_conditional(m, X, user, item):
    """p(v_item = k | user's observed ratings) by summing exp(-E) over all hidden states."""
    W, b, c = m.weights_, m.visible_bias_, m.hidden_bias_
    lv = np.searchsorted(m.values_, X[user].data)
    obs = list(zip(X[user].indices, lv, strict=True))
    logp = []
    for k in range(W.shape[1]):
        terms = []
        for h in itertools.product([0, 1], repeat=W.shape[2]):
            h = np.array(h, dtype=float)
            e = c @ h + b[item, k] + W[item, k] @ h
            e += sum(b[i, v] + W[i, v] @ h for i, v in obs)
            terms.append(e)
        logp.append(np.logaddexp.reduce(terms))
    logp = np.array(logp)
    return np.exp(logp - np.logaddexp.reduce(logp))


def test_exact_prediction_matches_enumeration():
    m, X = tiny_model("exact")
    for user, item in [(0, 2), (1, 1), (2, 0)]:
        got = m.predict_proba([user], [item])[0]
        want = brute_force_conditional(m, X, user, item)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_mean_field_prediction_matches_formula():
    m, X = tiny_model("mean_field")
    W, b, c = m.weights_, m.visible_bias_, m.hidden_bias_
    for user, item in [(0, 2), (1, 1), (2, 0)]:
        lv = np.searchsorted(m.values_, X[user].data)
        x = c + sum(W[i, v] for i, v in zip(X[user].indices, lv, strict=True))
        p = 1 / (1 + np.exp(-x))
        logits = b[item] + W[item] @ p
        want = np.exp(logits - logits.max())
        want /= want.sum()
        np.testing.assert_allclose(m.predict_proba([user], [item])[0], want, rtol=1e-10)
        np.testing.assert_allclose(m.predict([user], [item])[0], want @ m.values_, rtol=1e-10)


def test_exact_and_mean_field_differ_but_agree_roughly():
    m_exact, _ = tiny_model("exact")
    m_mf, _ = tiny_model("mean_field")
    pe = m_exact.predict_proba([0, 1], [2, 1])
    pm = m_mf.predict_proba([0, 1], [2, 1])
    assert not np.allclose(pe, pm)
    assert np.abs(pe - pm).max() < 0.5


def item_mean_rmse(train, test):
    sums = np.asarray(train.sum(0)).ravel()
    cnt = np.diff(train.tocsc().indptr)
    gm = train.data.mean()
    means = np.where(cnt > 0, sums / np.maximum(cnt, 1), gm)
    tu, ti = test.nonzero()
    return float(np.sqrt(np.mean((means[ti] - np.asarray(test[tu, ti]).ravel()) ** 2)))


def rmse(model, test):
    tu, ti = test.nonzero()
    return float(np.sqrt(np.mean((model.predict(tu, ti) - np.asarray(test[tu, ti]).ravel()) ** 2)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"orientation": "user", "conditional": False},
        {"orientation": "item", "conditional": False},
        {"orientation": "user", "conditional": True},
        {"n_factors": 5},
        {"prediction": "exact"},
        {"persistent": True, "negative": "sample"},
    ],
    ids=["user", "item", "conditional", "factored", "exact", "pcd"],
)
def test_learns_planted_groups_better_than_item_means(kwargs):
    X, _, _ = planted()
    train, test = holdout(X)
    # Constant learning rate: 25 short epochs, not the defaults' 60 decaying ones.
    m = RatingRBM(n_hidden=20, n_epochs=25, batch_size=20, learning_rate=0.05, lr_decay=1.0,
                  random_state=0, validation_fraction=0, **kwargs).fit(train)  # fmt: skip
    base = item_mean_rmse(train, test)
    got = rmse(m, test)
    assert got < 0.85 * base, (got, base)


def test_validation_history_and_early_stopping_keep_best():
    X, _, _ = planted(seed=3)
    train, valid = holdout(X, seed=4)
    m = RatingRBM(n_hidden=10, n_epochs=12, batch_size=30, patience=2, orientation="item",
                  random_state=0)  # fmt: skip
    m.fit(train, validation=valid)
    vals = [h["valid_rmse"] for h in m.history_]
    assert len(vals) >= 1 and all("seconds" in h and "train_recon_rmse" in h for h in m.history_)
    assert m.best_epoch_ == int(np.argmin(vals)) + 1
    assert rmse(m, valid) == pytest.approx(min(vals), rel=1e-6)


def test_callbacks_see_the_reconstruction_rmse_of_the_history():
    X, _, _ = planted(n_users=60, n_items=30)
    seen = []
    m = RatingRBM(n_hidden=6, n_epochs=3, batch_size=20, random_state=0, orientation="user",
                  callbacks=[lambda e, rec: seen.append(dict(rec))]).fit(X)  # fmt: skip
    assert [r["train_recon_rmse"] for r in seen] == [h["train_recon_rmse"] for h in m.history_]
    assert not any({"train_recon_mse", "train_recon_sse"} & set(r) for r in seen)
    assert 0.0 < seen[-1]["train_recon_rmse"] < 4.0  # in rating levels, 1..5 stars


def test_fold_in_equals_in_training_prediction():
    X, _, _ = planted(n_users=60, n_items=30)
    m = RatingRBM(
        n_hidden=8, n_epochs=3, batch_size=20, random_state=0, conditional=True,
        orientation="user", validation_fraction=0,
    )
    m.fit(X)
    items = np.arange(30)
    for u in (0, 5, 17):
        np.testing.assert_allclose(
            m.predict_user(X[u], items), m.predict(np.full(30, u), items), rtol=1e-6
        )


def test_save_load_round_trip(tmp_path):
    X, _, _ = planted(n_users=60, n_items=30)
    for kw in (
        {"orientation": "user", "conditional": False},
        {"orientation": "user", "n_factors": 3},
        {"orientation": "item", "persistent": True},
    ):
        m = RatingRBM(n_hidden=6, n_epochs=2, batch_size=20, random_state=1, **kw).fit(X)
        path = m.save(tmp_path / "m")
        m2 = load(path)
        u, i = X.nonzero()
        np.testing.assert_array_equal(m.predict(u, i), m2.predict(u, i))
        ids, sc = m.recommend(3, X[3], N=5)
        ids2, sc2 = m2.recommend(3, X[3], N=5)
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_array_equal(sc, sc2)


def test_same_seed_same_weights_across_thread_counts():
    X, _, _ = planted(n_users=120, n_items=40)
    kw = dict(n_hidden=8, n_epochs=3, batch_size=30, random_state=42, orientation="user")
    ws = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        ws.append(RatingRBM(num_threads=threads, **kw).fit(X).weights_)
    np.testing.assert_array_equal(ws[0], ws[1])
    other = RatingRBM(**{**kw, "random_state": 43}).fit(X).weights_
    assert not np.array_equal(ws[0], other)


def test_half_star_and_arbitrary_scales():
    X, _, _ = planted(n_users=80, n_items=30)
    half = X.copy()
    half.data = half.data / 2.0  # 0.5 .. 2.5
    m = RatingRBM(n_hidden=5, n_epochs=2, batch_size=40, random_state=0).fit(half)
    np.testing.assert_array_equal(m.values_, np.unique(half.data))
    p = m.predict(*half.nonzero())
    assert p.min() >= 0.5 and p.max() <= 2.5


def test_recommend_contract_basics():
    X, ug, ig = planted(n_users=100, n_items=40, density=0.4)
    # 30 epochs: the default learning rate decays 5% per epoch.
    m = RatingRBM(n_hidden=10, n_epochs=30, batch_size=20, orientation="user", random_state=0).fit(
        X
    )
    ids, scores = m.recommend(0, X[0], N=5)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    assert np.all(np.diff(scores) <= 0)
    assert not set(ids) & set(X[0].indices)
    bids, _ = m.recommend(np.array([0, 1]), X[[0, 1]], N=5)
    np.testing.assert_array_equal(bids[0], ids)
    # Items of the user's own taste group come first.
    assert np.mean(ig[ids] == ug[0]) >= 0.8


@pytest.mark.parametrize(
    ("matrix", "error", "match"),
    [
        (sp.csr_matrix(np.array([[1.0, np.nan], [2.0, 3.0]])), DataError, "NaN"),
        (sp.csr_matrix((2, 3)), DataError, "no stored ratings"),
        (np.ones((2, 2)), TypeError, "scipy.sparse"),
        (sp.csr_matrix(np.full((2, 2), 3.0)), DataError, "two distinct"),
    ],
)  # fmt: skip
def test_bad_fit_input(matrix, error, match):
    with pytest.raises(error, match=match):
        RatingRBM(n_epochs=1).fit(matrix)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_hidden": 0}, "n_hidden"),
        ({"orientation": "diagonal"}, "orientation"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"momentum": 1.5}, "momentum"),
        ({"cd_steps": 0}, "cd_steps"),
        ({"cd_steps": [(3, 1)]}, "epoch 0"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": "64"}, "batch_size"),
        ({"prediction": "magic"}, "prediction"),
        ({"n_factors": 0}, "n_factors"),
        ({"n_hidden": 4, "n_factors": 4}, "n_factors=4 must be smaller than n_hidden=4"),
        ({"n_hidden": 4, "n_factors": 9, "orientation": "user"}, "n_factors=9 must be smaller"),
        ({"ordinal": 1}, "ordinal must be a bool"),
        ({"ordinal": True, "visible": "gaussian"}, 'ordinal=True needs visible="softmax"'),
        ({"ordinal": True, "n_factors": 2}, "n_factors=None"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    X, _, _ = planted(n_users=20, n_items=10)
    with pytest.raises((ValueError, TypeError), match=match):
        RatingRBM(n_epochs=1, **kwargs).fit(X)


def test_bad_predict_input():
    X, _, _ = planted(n_users=20, n_items=10)
    with pytest.raises(NotFittedError):
        RatingRBM().predict([0], [0])
    m = RatingRBM(n_hidden=3, n_epochs=1, orientation="user").fit(X)
    with pytest.raises(IndexError, match="userids"):
        m.predict([20], [0])
    with pytest.raises(IndexError, match="itemids"):
        m.predict([0], [-1])
    with pytest.raises(ValueError, match="entries"):
        m.predict([0, 1], [0])
    with pytest.raises(DataError, match="shape"):
        m.fit(X, validation=sp.csr_matrix((3, 3)))
    with pytest.raises(DataError, match="levels seen in fit"):
        m.predict_user(sp.csr_matrix(np.r_[[[7.0] + [0.0] * 9]]), [1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"conditional": False},
        {"persistent": True, "cd_steps": 2},
        {"dtype": np.float64, "negative": "sample"},
        {"orientation": "item", "lr_decay": 0.9, "weight_decay": 0.01},
        {"ordinal": False, "negative": "sample"},
        {"ordinal": False, "orientation": "item", "dtype": np.float64},
    ],
)
def test_span_kernel_trains_bitwise_like_the_batch_loop(monkeypatch, kwargs):
    """softmax_train_batches (many batches per call) = step + the trainer's momentum steps,
    batch by batch: same parameters, history and random draws. 233 users in batches of 10
    give spans of 16 and 8 batches, the last one of 3 users."""
    from rbmrec.engine import softmax_batches
    from rbmrec.models import rating_train as rating

    X, _, _ = planted(n_users=233, n_items=30)
    kw = dict(n_hidden=7, n_epochs=3, batch_size=10, random_state=5, patience=None,
              orientation="user", conditional=True)  # fmt: skip
    kw.update(kwargs)
    calls = []
    real = softmax_batches.softmax_train_batches
    monkeypatch.setattr(
        rating.KB, "softmax_train_batches", lambda *a: calls.append(len(a[3])) or real(*a)
    )
    fast = RatingRBM(**kw).fit(X)
    n_rows = X.shape[1] if kw["orientation"] == "item" else X.shape[0]
    spans = [min(160, n_rows - s) for s in range(0, n_rows, 160)]
    assert calls == spans * 3  # every batch went through the span kernel
    slow = RatingRBM(**kw)
    slow._SPANS = False
    slow.fit(X)
    assert len(calls) == 3 * len(spans)  # ... and none of the batch loop's
    assert fast._params.keys() == slow._params.keys()
    for name in fast._params:
        np.testing.assert_array_equal(fast._params[name], slow._params[name], err_msg=name)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(fast.history_) == strip(slow.history_)
    np.testing.assert_array_equal(fast._chain, slow._chain)


def test_divergence_raises_and_leaves_no_nan():
    X, _, _ = planted(n_users=40, n_items=20)
    m = RatingRBM(n_hidden=5, n_epochs=5, learning_rate=1e38, momentum=0.0, orientation="item",
                  random_state=0)  # fmt: skip
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+.*learning_rate=1e\+38"):
        m.fit(X)
    assert np.all(np.isfinite(m.weights_))


def test_defaults_are_the_tuned_conditional_mixture_of_both_orientations():
    m = RatingRBM()
    assert (m.orientation, m.conditional, m.n_hidden) == ("both", True, 500)
    assert (m.lr_decay, m.weight_decay, m.n_epochs) == (0.95, 0.004, 60)
    X, _, _ = planted(n_users=30, n_items=12)
    fitted = RatingRBM(n_hidden=4, n_epochs=1).fit(X)
    assert set(fitted.members_) == {"item", "user"}
    for name, member in fitted.members_.items():
        assert member.orientation == name
        assert (member.conditional, member.n_hidden, member.n_epochs) == (True, 4, 1)
    fitted = RatingRBM(n_hidden=4, n_epochs=1, orientation="item").fit(X)
    with pytest.raises(NotImplementedError, match="orientation"):
        fitted.predict_user(X[0], [1, 2])


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1])
def test_bad_lr_decay_is_rejected_before_training(bad):
    X = sp.csr_matrix(np.array([[1.0, 2.0], [3.0, 0.0]]))
    with pytest.raises(ValueError, match="lr_decay"):
        RatingRBM(lr_decay=bad, num_threads=1).fit(X)


def test_lr_decay_is_recorded_and_saved(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(30, 12, density=0.4, random_state=1, format="csr")
    X.data = rng.integers(1, 6, X.nnz).astype(float)
    m = RatingRBM(n_hidden=4, n_epochs=3, lr_decay=0.5, learning_rate=0.04, num_threads=1,
                  random_state=0).fit(X)  # fmt: skip
    # The default "both" model: the item member's epochs, then the user member's.
    assert [h["learning_rate"] for h in m.history_] == pytest.approx([0.04, 0.02, 0.01] * 2)
    assert [h["member"] for h in m.history_] == ["item"] * 3 + ["user"] * 3
    again = load(m.save(tmp_path / "m.npz"))
    assert again.lr_decay == 0.5


def planted_real(n_users=200, n_items=60, seed=0):
    """Real-valued ratings in [-10, 10]: +6 inside a user's taste group, -4 outside, noise 1.5."""
    rng = np.random.default_rng(seed)
    ug, ig = rng.integers(0, 3, n_users), rng.integers(0, 3, n_items)
    val = np.where(ug[:, None] == ig[None, :], 6.0, -4.0) + rng.normal(0, 1.5, (n_users, n_items))
    val = np.clip(val, -10, 10)
    val[np.abs(val) < 1e-3] = 0.5  # no explicit zeros (they would read as missing)
    seen = rng.random((n_users, n_items)) < 0.3
    held = (rng.random((n_users, n_items)) < 0.1) & ~seen
    return sp.csr_matrix(np.where(seen, val, 0.0)), np.nonzero(held), val


@pytest.mark.parametrize(
    "kwargs",
    [{"orientation": "user"}, {"orientation": "item"}, {"orientation": "user", "n_factors": 5}],
    ids=["user", "item", "factored"],
)
def test_gaussian_visible_learns_real_valued_ratings(kwargs):
    X, (tu, ti), val = planted_real()
    truth = val[tu, ti]
    col_mean = np.asarray(X.sum(0)).ravel() / np.maximum(X.getnnz(0), 1)
    base = np.sqrt(np.mean((col_mean[ti] - truth) ** 2))
    m = RatingRBM(visible="gaussian", n_hidden=20, n_epochs=30, batch_size=20,
                  learning_rate=0.01, lr_decay=1.0, random_state=0, num_threads=1,
                  validation_fraction=0, **kwargs).fit(X)  # fmt: skip
    pred = m.predict(tu, ti)
    got = np.sqrt(np.mean((pred - truth) ** 2))
    assert got < 0.6 * base, (got, base)
    assert X.data.min() <= pred.min() and pred.max() <= X.data.max()  # clipped to the range


def test_gaussian_fold_in_save_load_and_errors(tmp_path):
    X, (tu, ti), _ = planted_real(n_users=60, n_items=30)
    m = RatingRBM(visible="gaussian", orientation="user", n_hidden=6, n_epochs=3,
                  learning_rate=0.01, random_state=0, num_threads=1).fit(X)  # fmt: skip
    np.testing.assert_allclose(m.predict_user(X[4], [1, 2, 3]), m.predict([4, 4, 4], [1, 2, 3]))
    again = load(m.save(tmp_path / "g.npz"))
    np.testing.assert_array_equal(again.predict(tu, ti), m.predict(tu, ti))
    with pytest.raises(ValueError, match="predict_proba"):
        m.predict_proba([0], [0])
    with pytest.raises(ValueError, match="exact"):
        RatingRBM(visible="gaussian", prediction="exact").fit(X)
    with pytest.raises(ValueError, match="p_high"):
        RatingRBM(visible="gaussian", recommend_score="p_high").fit(X)
    with pytest.raises(ValueError, match="visible"):
        RatingRBM(visible="poisson").fit(X)


def test_gaussian_negative_phase_is_always_sampled_as_documented():
    """The Gaussian kernel has no mean-field negative phase: both ``negative`` values train
    it with sampled visible values, which the docstring now says (it used to list only
    prediction="exact" and p_high as Gaussian limitations)."""
    X, _, _ = planted_real(n_users=40, n_items=20)
    kw = dict(visible="gaussian", orientation="user", n_hidden=3, n_epochs=2,
              learning_rate=0.01, random_state=0)  # fmt: skip
    a, b = (RatingRBM(negative=n, **kw).fit(X) for n in ("mean_field", "sample"))
    np.testing.assert_array_equal(a.weights_, b.weights_)
    doc = " ".join(RatingRBM.__doc__.split())
    assert "the Gaussian model's negative statistics always come from sampled visible" in doc


def test_factored_steps_scale_like_a_full_step_with_a_capped_gain():
    """With evenly spread factors the steps are the plain gradients divided by the mean
    squared singular values (C / ||B||^2, C / ||A||^2); once one direction dominates, that
    scaling moved W up to ~C times farther than the full model's step gW along it, and the
    gain is now capped at _MAX_GAIN."""
    from rbmrec.models.rating_train import MAX_GAIN as _MAX_GAIN
    from rbmrec.models.rating_train import factored_steps as _factored_steps

    rng = np.random.default_rng(0)
    gW = rng.normal(size=(40, 30))
    A, B = rng.normal(size=(40, 3)), rng.normal(size=(3, 30))
    dA, dB = _factored_steps(gW, A, B)
    assert dA.shape == A.shape and dB.shape == B.shape and dA.dtype == gW.dtype
    np.testing.assert_allclose(dA, 3 / np.vdot(B, B) * (gW @ B.T), rtol=1e-12)
    np.testing.assert_allclose(dB, 3 / np.vdot(A, A) * (A.T @ gW), rtol=1e-12)
    gW = gW[:, :8]
    for C in (3, 7):
        A, B = rng.normal(size=(40, C)), rng.normal(size=(C, 8))
        A[:, 0] *= 100.0
        B[0] *= 100.0
        dA, dB = _factored_steps(gW.astype(np.float32), A.astype(np.float32), B.astype(np.float32))
        assert dA.dtype == np.float32 and np.all(np.isfinite(dA)) and np.all(np.isfinite(dB))
        old_gain = np.linalg.norm((C / np.vdot(B, B)) * (B.T @ B), 2)
        assert old_gain > 0.9 * C  # the uncapped scaling's gain along the big direction
        for move in (dA @ B, A @ dB):
            assert np.linalg.norm(move) <= 1.001 * _MAX_GAIN * np.linalg.norm(gW)


@pytest.mark.parametrize("visible", ["gaussian", "softmax"])
def test_factored_model_trains_like_the_full_model(visible):
    """With n_factors=31 of n_hidden=32, the factored Gaussian and softmax models stay
    finite and keep their weights within a few times the full model's (an uncapped step
    diverged at epoch 3 on this data, and grew the softmax weights 16x)."""
    rng = np.random.default_rng(0)
    mask = rng.random((100, 30)) < 0.3
    X = sp.csr_matrix(mask * rng.integers(1, 6, (100, 30)).astype(float))
    kw = dict(n_hidden=32, visible=visible, orientation="user", conditional=False, n_epochs=5,
              random_state=0)  # fmt: skip
    full = np.abs(RatingRBM(**kw).fit(X).weights_).max()
    factored = RatingRBM(n_factors=31, **kw).fit(X)
    assert np.all(np.isfinite(factored.weights_))
    assert np.abs(factored.weights_).max() < 10 * full


def test_default_batch_gives_every_epoch_ten_updates():
    X, _, _ = planted(n_users=40, n_items=12)  # item-based: 12 rows
    assert RatingRBM(n_hidden=3, n_epochs=1, orientation="item").fit(X).batch_size_ == 2
    # "both": each member's own size (12 item rows, 40 user rows).
    assert RatingRBM(n_hidden=3, n_epochs=1).fit(X).batch_size_ == {"item": 2, "user": 4}
    user = RatingRBM(n_hidden=3, n_epochs=1, orientation="user").fit(X)
    assert user.batch_size_ == 4  # ceil(40 / 10)
    assert (
        RatingRBM(n_hidden=3, n_epochs=1, batch_size=7, orientation="user").fit(X).batch_size_ == 7
    )
    big = sp.random(2500, 30, density=0.05, format="csr", random_state=0)
    big.data = np.ceil(big.data * 5)
    m = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", conditional=False).fit(big)
    assert m.batch_size_ == 200  # large data: the tuned batch
    g = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", conditional=False,
                  visible="gaussian").fit(big)  # fmt: skip
    assert g.batch_size_ == 100  # the Gaussian model's own default


def test_default_learning_rate_follows_the_visible_type():
    X, _, _ = planted(n_users=40, n_items=12)
    for visible, rate in (("softmax", 0.1), ("gaussian", 0.05)):
        m = RatingRBM(n_hidden=3, n_epochs=2, orientation="user", visible=visible).fit(X)
        assert m.learning_rate is None
        assert [h["learning_rate"] for h in m.history_] == pytest.approx([rate, rate * 0.95])
    m = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", learning_rate=0.02).fit(X)
    assert m.history_[0]["learning_rate"] == pytest.approx(0.02)


@pytest.mark.slow
def test_defaults_leave_the_initial_plateau_on_small_data():
    """On the demo data (500 item rows) a batch of 100 gave 5 updates per epoch: the learning
    rate decayed before training left the bias-level plateau (validation RMSE 0.874 after 60
    epochs, 1.55 when early stopping ran out first). Ten updates per epoch fix it."""
    from rbmrec.data import demo_ratings
    from rbmrec.data.splits import random_split

    split = random_split(demo_ratings(), test_fraction=0.1, seed=0, validation_fraction=0.1)
    # The item-based member (500 rows) is the one the batch rule is for.
    m = RatingRBM(n_hidden=100, orientation="item", random_state=0, num_threads=1)
    m.fit(split.train, validation=split.validation)
    first = m.history_[0]["valid_rmse"]
    best = min(h["valid_rmse"] for h in m.history_)
    assert first > 1.4  # starts at the plateau (about the bias baseline's 1.55)
    assert best < 0.85, [round(h["valid_rmse"], 3) for h in m.history_]


# ---------------------------------------------------------------------- orientation="both"
def _both(**kw):
    """A small "both" model fitted on planted data with a validation part; (model, splits)."""
    X, _, _ = planted(n_users=120, n_items=40, seed=5)
    train, rest = holdout(X, frac=0.3, seed=6)
    valid, test = holdout(rest, frac=0.5, seed=7)
    args = dict(n_hidden=8, n_epochs=6, batch_size=20, random_state=3, num_threads=1)
    m = RatingRBM(**{**args, **kw}).fit(train, validation=valid)
    return m, train, valid, test


def _mixed(m, fn):
    w = m.blend_weight_
    return w * fn(m.members_["item"]) + (1 - w) * fn(m.members_["user"])


def _calibrated(m, mean, lo=1.0, hi=5.0):
    a, s = m.calibration_
    return np.clip(a + s * mean, lo, hi)


def _grid_best(pi, pu, y, n=2001):
    """Brute force: min over a grid of w of the squared error of the best line (slope >= 0)
    through the mixture w * pi + (1 - w) * pu; returns (sse, w)."""
    best = (np.inf, None)
    for w in np.linspace(0.0, 1.0, n):
        p = w * pi + (1 - w) * pu
        dp = p - p.mean()
        slope = max(dp @ (y - y.mean()) / (dp @ dp), 0.0)
        sse = np.sum((y.mean() + slope * dp - y) ** 2)
        if sse < best[0]:
            best = (sse, w)
    return best


@pytest.mark.parametrize(
    "kw", [{}, {"prediction": "exact"}, {"recommend_score": "p_high"}, {"n_factors": 3}],
    ids=["default", "exact", "p_high", "factored"],
)  # fmt: skip
def test_both_is_the_convex_mixture_of_its_members(kw):
    m, train, _valid, _ = _both(**kw)
    assert 0.0 < m.blend_weight_ < 1.0  # both members matter on this data
    u, i = train.nonzero()
    u, i = u[::7], i[::7]
    P = m.predict_proba(u, i)
    np.testing.assert_allclose(P, _mixed(m, lambda x: x.predict_proba(u, i)), rtol=1e-12)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-9)
    assert np.all(P >= 0)
    # predict: the affine calibration of the mixture's expected rating, clipped to 1..5.
    assert m.calibration_[1] > 0
    np.testing.assert_allclose(m.predict(u, i), _calibrated(m, P @ m.values_), rtol=1e-12)
    mixed = _mixed(m, lambda x: x.predict(u, i))
    np.testing.assert_allclose(m.predict(u, i), _calibrated(m, mixed), rtol=1e-12)
    users = np.array([0, 5, 17])
    for user in users:
        want = _mixed(m, lambda x, user=user: x.score_items(user))
        np.testing.assert_allclose(m.score_items(user), want, rtol=1e-5)
    ids, scores = m.recommend(users, train[users], N=6)
    for r, user in enumerate(users):
        want = _mixed(m, lambda x, user=user: x.score_items(user).astype(np.float64))
        want[train[user].indices] = -np.inf
        np.testing.assert_allclose(scores[r], want[ids[r]], rtol=1e-5)
        assert set(ids[r]) == set(np.argsort(-want, kind="stable")[:6])
        single_ids, _ = m.recommend(user, train[user], N=6)
        np.testing.assert_array_equal(single_ids, ids[r])


def test_both_weight_is_the_validation_least_squares_optimum():
    m, _train, valid, _ = _both()
    vu, vi = valid.nonzero()
    vr = np.asarray(valid[vu, vi]).ravel()
    pi = m.members_["item"].predict(vu, vi)
    pu = m.members_["user"].predict(vu, vi)
    a, s = m.calibration_
    got = np.sum((a + s * (m.blend_weight_ * pi + (1 - m.blend_weight_) * pu) - vr) ** 2)
    best, w = _grid_best(pi, pu, vr)
    assert got <= best + 1e-9
    assert m.blend_weight_ == pytest.approx(w, abs=1e-3)
    # The same as an unconstrained least-squares blend with intercept (BlendedRatingModel's
    # family) when its coefficients are non-negative, as here.
    F = np.column_stack([np.ones_like(pi), pi, pu])
    coef = np.linalg.lstsq(F, vr, rcond=None)[0]
    assert np.all(coef[1:] > 0)
    assert got == pytest.approx(np.sum((F @ coef - vr) ** 2), rel=1e-9)
    # At least as good as the better member on validation (both endpoints are candidates).
    assert rmse(m, valid) <= min(rmse(x, valid) for x in m.members_.values()) + 1e-12


def test_both_weight_without_validation_is_one_half():
    X, _, _ = planted(n_users=60, n_items=20)
    kw = dict(n_hidden=4, n_epochs=2, batch_size=20, random_state=0, num_threads=1,
              validation_fraction=0)  # fmt: skip
    m = RatingRBM(**kw).fit(X)
    assert (m.blend_weight_, m.calibration_) == (0.5, (0.0, 1.0))
    u, i = X.nonzero()
    np.testing.assert_allclose(m.predict(u, i), m.predict_proba(u, i) @ m.values_, rtol=1e-12)
    empty = sp.csr_matrix(X.shape)
    assert RatingRBM(**kw).fit(X, validation=empty).blend_weight_ == 0.5


@pytest.mark.parametrize("target", ["beyond_item", "beyond_user", "against_both"])
def test_both_weight_stays_in_the_unit_interval(target):
    # Validation ratings an unconstrained blend would fit with a negative coefficient.
    m, _train, valid, _ = _both()
    vu, vi = valid.nonzero()
    pi = m.members_["item"].predict(vu, vi)
    pu = m.members_["user"].predict(vu, vi)
    y = {"beyond_item": 3 * pi - 2 * pu, "beyond_user": 3 * pu - 2 * pi,
         "against_both": 8 - pi - pu}[target]  # fmt: skip
    w, a, s = fit_weights(m.members_, sp.csr_matrix((y, (vu, vi)), shape=valid.shape))
    assert 0.0 <= w <= 1.0 and s >= 0.0
    got = np.sum((a + s * (w * pi + (1 - w) * pu) - y) ** 2)
    assert got <= _grid_best(pi, pu, y)[0] + 1e-9


def test_both_fold_in_uses_the_user_member():
    m, train, _, _ = _both()
    user = m.members_["user"]
    items = np.arange(train.shape[1])
    for u in (0, 3, 11):
        row = train[u]
        np.testing.assert_array_equal(m.predict_user(row, items), user.predict_user(row, items))
        np.testing.assert_array_equal(
            m.score_items(u, user_items=row), user.score_items(u, user_items=row)
        )
        got = m.recommend(10_000, row, N=5, recalculate_user=True)
        want = user.recommend(10_000, row, N=5, recalculate_user=True)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_both_attributes_history_and_errors():
    m, train, valid, _ = _both(patience=2)
    assert (m.n_users_, m.n_items_) == train.shape
    np.testing.assert_array_equal(m.values_, np.unique(train.data))
    assert [h["member"] for h in m.history_] == sorted(
        (h["member"] for h in m.history_), key=["item", "user"].index
    )
    for name, member in m.members_.items():
        own = [{k: v for k, v in h.items() if k != "member"} for h in m.history_
               if h["member"] == name]  # fmt: skip
        assert own == member.history_
        assert m.best_epoch_[name] == member.best_epoch_
    assert m.interrupted_ is False and m.fit_seconds_ > 0
    for attr in ("weights_", "visible_bias_", "hidden_bias_", "conditional_weights_"):
        with pytest.raises(AttributeError, match=r"members_\['item'\]"):
            getattr(m, attr)
    # An item-based RBM's visible units are users; a user-based one's are items.
    assert m.members_["item"].weights_.shape == (train.shape[0], 5, 8)
    assert m.members_["user"].weights_.shape == (train.shape[1], 5, 8)
    with pytest.raises(NotFittedError):
        RatingRBM().predict([0], [0])
    with pytest.raises(TypeError, match="random_state"):
        RatingRBM(n_epochs=1, random_state="seven").fit(train)
    with pytest.raises(DataError, match="shape"):
        RatingRBM(n_epochs=1).fit(train, validation=valid[:5])


def test_both_members_get_distinct_reproducible_seeds():
    X, _, _ = planted(n_users=60, n_items=20)
    kw = dict(n_hidden=4, n_epochs=2, batch_size=20, num_threads=1)
    for seed in (0, np.random.SeedSequence(5)):
        a = RatingRBM(random_state=seed, **kw).fit(X)
        b = RatingRBM(random_state=seed, **kw).fit(X)
        for name in ("item", "user"):
            np.testing.assert_array_equal(a.members_[name].weights_, b.members_[name].weights_)
    single = RatingRBM(random_state=0, orientation="item", **kw).fit(X)
    assert not np.array_equal(single.weights_, a.members_["item"].weights_)


def test_both_same_results_across_thread_counts():
    X, _, _ = planted(n_users=120, n_items=40)
    train, valid = holdout(X)
    kw = dict(n_hidden=8, n_epochs=3, batch_size=30, random_state=42)
    fits = [
        RatingRBM(num_threads=t, **kw).fit(train, validation=valid)
        for t in (1, min(2, numba.config.NUMBA_NUM_THREADS))
    ]
    assert fits[0].blend_weight_ == fits[1].blend_weight_
    u, i = valid.nonzero()
    np.testing.assert_array_equal(fits[0].predict(u, i), fits[1].predict(u, i))
    for name in ("item", "user"):
        np.testing.assert_array_equal(
            fits[0].members_[name].weights_, fits[1].members_[name].weights_
        )


def test_both_save_load_round_trip(tmp_path):
    m, train, valid, _ = _both(recommend_score="p_high")
    m2 = load(m.save(tmp_path / "both"))
    assert m2.orientation == "both" and m2.blend_weight_ == m.blend_weight_
    assert m2.history_ == m.history_ and m2.best_epoch_ == m.best_epoch_
    assert {k: x.orientation for k, x in m2.members_.items()} == {"item": "item", "user": "user"}
    u, i = valid.nonzero()
    np.testing.assert_array_equal(m.predict(u, i), m2.predict(u, i))
    np.testing.assert_array_equal(m.predict_proba(u, i), m2.predict_proba(u, i))
    users = np.arange(10)
    for a, b in zip(m.recommend(users, train[users], N=5), m2.recommend(users, train[users], N=5),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.predict_user(train[2], i[:9]), m2.predict_user(train[2], i[:9]))


def test_both_gaussian_mixes_predicted_values():
    m, train, valid, _ = _both(visible="gaussian", learning_rate=0.01)
    u, i = valid.nonzero()
    want = _calibrated(m, _mixed(m, lambda x: x.predict(u, i)), *m.value_range_)
    np.testing.assert_allclose(m.predict(u, i), want, rtol=1e-12)
    with pytest.raises(ValueError, match="softmax"):
        m.predict_proba(u, i)
    np.testing.assert_array_equal(
        m.predict_user(train[1], i[:4]), m.members_["user"].predict_user(train[1], i[:4])
    )


def test_both_beats_item_means_on_planted_groups():
    X, _, _ = planted()
    train, rest = holdout(X, frac=0.3)
    valid, test = holdout(rest, frac=0.5, seed=2)
    m = RatingRBM(n_hidden=20, n_epochs=25, batch_size=20, learning_rate=0.05, lr_decay=1.0,
                  random_state=0, num_threads=1).fit(train, validation=valid)  # fmt: skip
    assert rmse(m, test) < 0.85 * item_mean_rmse(train, test)
    worse = max(rmse(x, valid) for x in m.members_.values())
    assert rmse(m, valid) <= worse


class _StopAt:
    """A callback raising KeyboardInterrupt (as Ctrl-C would) at its ``n``-th call."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, epoch, metrics):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt


def test_both_interrupted_in_first_member_keeps_it_alone(tmp_path):
    X, _, _ = planted(n_users=60, n_items=20)
    train, valid = holdout(X)
    stop = _StopAt(2)
    m = RatingRBM(n_hidden=4, n_epochs=5, batch_size=10, random_state=0, num_threads=1,
                  callbacks=[stop]).fit(train, validation=valid)  # fmt: skip
    assert m.interrupted_ and list(m.members_) == ["item"] and m.blend_weight_ == 1.0
    assert stop.calls == 2  # the user member was never trained
    u, i = valid.nonzero()
    item = m.members_["item"].predict(u, i)
    np.testing.assert_allclose(m.predict(u, i), _calibrated(m, item), rtol=1e-12)
    np.testing.assert_allclose(m.predict_proba(u, i), m.members_["item"].predict_proba(u, i))
    assert {h["member"] for h in m.history_} == {"item"}
    with pytest.raises(NotImplementedError, match="user-based member"):
        m.predict_user(train[0], [1])
    m2 = load(m.save(tmp_path / "half"))
    np.testing.assert_array_equal(m2.predict(u, i), m.predict(u, i))
    assert m2.recommend(0, train[0], N=3)[0].size == 3


def test_both_interrupted_in_second_member_keeps_both():
    X, _, _ = planted(n_users=60, n_items=20)
    train, valid = holdout(X)
    stop = _StopAt(7)  # the item member runs its 5 epochs (no early stop with patience None)
    m = RatingRBM(n_hidden=4, n_epochs=5, batch_size=10, random_state=0, num_threads=1,
                  patience=None, callbacks=[stop]).fit(train, validation=valid)  # fmt: skip
    assert m.interrupted_ and set(m.members_) == {"item", "user"}
    assert 0.0 <= m.blend_weight_ <= 1.0
    assert 1 <= sum(h["member"] == "user" for h in m.history_) < 5  # stopped early


def test_interrupt_inside_a_kernel_callback_counts_as_ctrl_c(monkeypatch):
    """A SIGINT landing while a numba kernel calls back into Python surfaces as SystemError
    caused by KeyboardInterrupt; training must still stop cleanly with a usable model."""
    import rbmrec.models.rating_train as rating

    X, _, _ = planted(n_users=60, n_items=20)
    calls = {"n": 0}
    real = rating.KB.softmax_train_batches  # the kernel fit calls, many batches a call

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 8:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise SystemError("returned a result with an exception set") from exc
        return real(*args)

    monkeypatch.setattr(rating.KB, "softmax_train_batches", flaky)
    m = RatingRBM(n_hidden=4, n_epochs=50, batch_size=10, orientation="item",
                  validation_fraction=0, random_state=0, num_threads=1).fit(X)  # fmt: skip
    assert m.interrupted_ and 1 <= len(m.history_) < 50
    assert np.all(np.isfinite(m.predict(*X.nonzero())))
    # Other SystemErrors are not swallowed.
    monkeypatch.setattr(rating.KB, "softmax_train_batches", lambda *a: (_ for _ in ()).throw(
        SystemError("a real failure")))  # fmt: skip
    with pytest.raises(SystemError, match="real failure"):
        RatingRBM(n_hidden=4, n_epochs=2, orientation="item", num_threads=1).fit(X)


# ---------------------------------------------------------------- scoring cache
@pytest.mark.parametrize("visible", ["softmax", "gaussian"])
@pytest.mark.parametrize("orientation", ["item", "user", "both"])
def test_scoring_cache_matches_batch_and_is_rebuilt_after_refit(orientation, visible):
    """One-user scores reuse the cached level-major weights / item hidden states, agree with
    the batched scores, and a refit on other data never serves the old model's arrays."""
    X, _, _ = planted(n_users=60, n_items=30)
    X2, _, _ = planted(n_users=60, n_items=30, seed=5)
    kw = dict(n_hidden=6, n_epochs=2, orientation=orientation, visible=visible, random_state=0)
    m = RatingRBM(**kw).fit(X)
    first = m.score_items(3)
    np.testing.assert_array_equal(m.score_items(3), first)
    ids, _ = m.recommend(np.arange(60), X, N=5, filter_already_liked_items=False)
    np.testing.assert_array_equal(ids[3], np.argsort(-first, kind="stable")[:5].astype(np.int32))
    m.fit(X2)
    fresh = RatingRBM(**kw).fit(X2)
    np.testing.assert_array_equal(m.score_items(3), fresh.score_items(3))
    assert not np.allclose(m.score_items(3), first)


def test_item_hidden_states_computed_once_across_calls(monkeypatch):
    from rbmrec.models import rating_infer as rating

    X, _, _ = planted(n_users=40, n_items=20)
    m = RatingRBM(n_hidden=5, n_epochs=1, orientation="item", random_state=0).fit(X)
    calls = []
    real = rating.K.softmax_hidden_input

    def counted(*a):
        calls.append(len(a[3]))  # rows scored
        return real(*a)

    monkeypatch.setattr(rating.K, "softmax_hidden_input", counted)
    for u in range(5):
        m.score_items(u)
        m.recommend(u, X[u], N=3)
    assert calls == [X.shape[1]]  # every item's RBM once, then reused


def test_scoring_cache_reset_by_training_steps():
    """A callback scoring during fit sees each epoch's parameters, not the first cached ones."""
    X, _, _ = planted(n_users=40, n_items=20)
    seen = []
    m = RatingRBM(n_hidden=5, n_epochs=3, orientation="item", random_state=0,
                  validation_fraction=0)  # fmt: skip
    m.callbacks = [lambda epoch, metrics: seen.append(m.score_items(0).copy())]
    m.fit(X)
    assert len(seen) == 3
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])
    # fit ends with the weights rounded to float16 values (a relative change under 2^-11).
    np.testing.assert_allclose(seen[-1], m.score_items(0), rtol=1e-4)


def test_get_params_and_repr_rebuild_the_model():
    """get_params gives the constructor arguments (the harness's ``params`` column)."""
    from rbmrec.evaluation.report_rows import model_params

    m = RatingRBM(n_hidden=7, orientation="user", learning_rate=0.02, cd_steps=[(0, 1), (5, 3)])
    params = m.get_params()
    assert params["n_hidden"] == 7 and params["orientation"] == "user"
    assert RatingRBM(**params).get_params() == params
    assert repr(m).startswith("RatingRBM(n_hidden=7, orientation='user', conditional=True,")
    assert "'learning_rate': 0.02" in model_params(m)


# ------------------------------------------------------------------ ratings -> levels
def test_level_index_is_scale_free_and_accepts_float32_rounding():
    from rbmrec.models.rating import level_index

    for scale in (1e-9, 0.1, 1.0, 1e6):
        values = scale * np.arange(1.0, 6.0)
        exact = level_index(values, values[[4, 0, 2]])
        np.testing.assert_array_equal(exact, [4, 0, 2])
        # float32 rounds some levels up and some down: each still maps to its own level
        rounded = values.astype(np.float32).astype(np.float64)
        assert np.any(rounded > values) or np.all(rounded == values)
        np.testing.assert_array_equal(level_index(values, rounded), np.arange(5))
        # halfway between levels is refused at every scale (atol 1e-8 accepted it at 1e-9)
        with pytest.raises(DataError, match="not one of the levels"):
            level_index(values, np.array([scale * 1.5]))
        with pytest.raises(DataError, match="not one of the levels"):
            level_index(values, np.array([scale * 1.01]))
    with pytest.raises(DataError, match="nan"):
        level_index(np.arange(1.0, 6.0), np.array([np.nan]))
    # a level at 0 needs an absolute tolerance: the smallest gap sets it
    np.testing.assert_array_equal(level_index(np.array([0.0, 1.0]), np.array([1e-12])), [0])
    with pytest.raises(DataError, match="not one of the levels"):
        level_index(np.array([0.0, 1.0]), np.array([1e-3]))


def test_float32_ratings_at_a_fine_scale_score_like_float64():
    X, _, _ = planted(n_users=30, n_items=12)
    X = X.astype(np.float64)
    X.data = X.data / 10.0  # levels 0.1 .. 0.5: 0.1, 0.3 round up in float32
    m = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", conditional=False,
                  random_state=0).fit(X)  # fmt: skip
    row = X[:1]
    items = [0, 1, 2]
    ref = m.predict_user(row, items)
    np.testing.assert_allclose(m.predict_user(row.astype(np.float32), items), ref)


# ------------------------------------------------------------------ gaussian value range
def _gauss_data():
    X, _, _ = planted(n_users=30, n_items=12)
    return X.astype(np.float64)


@pytest.mark.parametrize("orientation", ["user", "both"])
def test_gaussian_fold_in_beyond_float32_is_refused_not_nan(orientation):
    X = _gauss_data()
    m = RatingRBM(visible="gaussian", orientation=orientation, conditional=False, n_hidden=3,
                  n_epochs=1, random_state=0).fit(X)  # fmt: skip
    row = X[:1].copy()
    row.data[:] = 3e38  # still finite in float32 after standardising: scored
    assert np.all(np.isfinite(m.predict_user(row, [0, 1, 2])))
    row.data[0] = 1e39  # was cast to inf, and every prediction was NaN
    with pytest.raises(DataError, match=r"rating 1e\+39 is out of range .* float32"):
        m.predict_user(row, [0, 1, 2])


def test_gaussian_fit_refuses_ratings_whose_spread_overflows():
    X = _gauss_data()
    X.data *= 1e200  # the spread overflowed to inf: the model learnt nothing, silently
    m = RatingRBM(visible="gaussian", orientation="user", conditional=False, n_hidden=3,
                  n_epochs=1, random_state=0)  # fmt: skip
    with pytest.raises(DataError, match="spread overflows float64"):
        m.fit(X)
    assert not hasattr(m, "values_")
    X.data /= 1e162  # 1e38-scale ratings standardise fine
    assert np.all(np.isfinite(m.fit(X).predict([0, 1], [1, 2])))


# ---- score_items and recommend arguments, p_high


def test_score_items_checks_its_user_and_row():
    X, _, _ = planted(n_users=40, n_items=20)
    m = RatingRBM(n_hidden=4, n_epochs=1, orientation="user", conditional=False, random_state=0)
    m.fit(X)
    wide = sp.csr_matrix(([5.0, 4.0, 3.0], ([0, 0, 0], [0, 1, 99999])), shape=(1, 100000))
    for row in (wide, X[0][:, :19], X[:2]):  # an index past W, too narrow, two rows
        with pytest.raises(DataError, match=r"must have shape \(1, 20\)"):
            m.score_items(0, row)
    with pytest.raises(ValueError, match="single id"):
        m.score_items([1, 2])
    with pytest.raises(ValueError, match="1-D array of ids"):
        m.recommend([[0, 1]], X[:1])
    np.testing.assert_array_equal(m.score_items(0, X[0]), m.score_items(0, X[0]))


def test_p_high_by_default_separates_items_with_two_rating_levels():
    X, _, _ = planted(n_users=60, n_items=30)
    X = X.copy()
    X.data = np.where(X.data >= 4, 2.0, 1.0).astype(X.dtype)  # a like / dislike scale
    m = RatingRBM(n_hidden=4, n_epochs=2, orientation="user", conditional=False,
                  recommend_score="p_high", random_state=0).fit(X)  # fmt: skip
    _, scores = m.recommend(0, X[0], N=8)
    assert len(np.unique(scores)) > 1  # P(rating >= 2), not P(rating >= 1) = 1 for all
    probs = m.predict_proba(np.zeros(30, np.int64), np.arange(30))
    np.testing.assert_allclose(m.score_items(0), probs[:, 1], rtol=1e-5)


@pytest.mark.parametrize("orientation", ["user", "both"])
def test_fit_leaves_the_callers_known_pairs_alone(orientation):
    """A float64 CSR known_pairs (e.g. the validation ratings) had its ratings set to 1."""
    X, _, _ = planted(n_users=40, n_items=15)
    train, probe = holdout(X)
    before = probe.data.copy()
    RatingRBM(n_hidden=3, n_epochs=1, orientation=orientation, random_state=0).fit(
        train, validation=probe, known_pairs=probe
    )
    np.testing.assert_array_equal(probe.data, before)


def test_a_factored_model_whose_fit_raises_shows_the_weights_it_predicts_with():
    X, _, _ = planted(n_users=40, n_items=15)

    def boom(epoch, record):
        if epoch == 2:
            raise RuntimeError("callback failed")

    m = RatingRBM(n_hidden=6, n_factors=2, n_epochs=5, orientation="user", random_state=0,
                  callbacks=[boom])  # fmt: skip
    with pytest.raises(RuntimeError):
        m.fit(X)
    np.testing.assert_allclose(m.weights_, m._weights(), rtol=1e-6)


def test_ordinal_option_trains_other_weights_and_is_saved(tmp_path):
    """ordinal=True changes training (same seed, other weights), is passed to both
    members, and a saved model loads with it and predicts the same; the default (None)
    trains as True with softmax visibles and the full W."""
    X, _, _ = planted(n_users=60, n_items=15)
    kw = dict(n_hidden=6, n_epochs=3, random_state=2)
    plain = RatingRBM(ordinal=False, **kw).fit(X)
    ordinal = RatingRBM(ordinal=True, **kw).fit(X)
    default = RatingRBM(**kw).fit(X)
    np.testing.assert_array_equal(default.members_["user"].weights_,
                                  ordinal.members_["user"].weights_)  # fmt: skip
    assert all(m.ordinal for m in ordinal.members_.values())
    w_plain, w_ord = plain.members_["user"].weights_, ordinal.members_["user"].weights_
    assert np.all(np.isfinite(w_ord)) and not np.array_equal(w_plain, w_ord)
    loaded = load(ordinal.save(tmp_path / "ordinal.npz"))
    assert loaded.ordinal is True and loaded.members_["item"].ordinal is True
    u, i = X.nonzero()
    np.testing.assert_array_equal(loaded.predict(u, i), ordinal.predict(u, i))
