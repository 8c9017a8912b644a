"""The :class:`rbmrec.RBM` estimator: API, determinism, divergence, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.errors import NotFittedError, TrainingDivergedError

FAST = {"n_hidden": 3, "n_epochs": 3, "batch_size": 16, "random_state": 0}


def _data(visible, n=40, nv=6, seed=0, gaussian_dtype=np.float32):
    rng = np.random.default_rng(seed)
    if visible == "softmax":
        return rng.integers(-1, 3, (n, nv))
    if visible == "gaussian":
        return rng.normal(0, 1, (n, nv)).astype(gaussian_dtype)
    return (rng.random((n, nv)) < 0.4).astype(np.float32)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian", "softmax"])
def test_fitted_attributes_and_methods(visible):
    X = _data(visible)
    rbm = rbmrec.RBM(visible=visible, persistent=True, **FAST).fit(X)
    nl = (3,) if visible == "softmax" else ()
    assert rbm.weights_.shape == (6, *nl, 3)
    assert rbm.visible_bias_.shape == (6, *nl)
    assert rbm.hidden_bias_.shape == (3,)
    assert rbm.weights_.dtype == np.float32
    assert [h["epoch"] for h in rbm.history_] == [1.0, 2.0, 3.0]
    assert {"recon_error", "free_energy", "seconds"} <= set(rbm.history_[0])
    H = rbm.transform(X)
    assert H.shape == (40, 3) and np.all((H > 0) & (H < 1))
    F = rbm.free_energy(X)
    assert F.shape == (40,) and F.dtype == np.float64
    # exact log-likelihood = -F - log Z (softmax: of fully observed rows)
    full = np.clip(X[:5], 0, None)
    np.testing.assert_allclose(
        rbm.log_likelihood(full), -rbm.free_energy(full) - rbm.log_partition(), rtol=1e-6
    )
    G = rbm.gibbs(X, steps=2)
    assert G.shape == X.shape
    S = rbm.sample(7, steps=3)
    assert S.shape == (7, 6)
    if visible == "softmax":
        assert np.array_equal(G < 0, X < 0)  # unobserved groups stay unobserved
        assert S.min() >= 0 and S.max() < 3
    elif visible == "bernoulli":
        assert set(np.unique(S)) <= {0.0, 1.0}
    n_before = len(rbm.history_)
    rbm.partial_fit(X)
    assert len(rbm.history_) == n_before + 1 and rbm.history_[-1]["epoch"] == n_before + 1


def test_log_likelihood_is_normalised_for_binary_model():
    X = _data("bernoulli", nv=5)
    rbm = rbmrec.RBM(**FAST).fit(X)
    allv = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(np.float32)
    assert np.exp(rbm.log_likelihood(allv)).sum() == pytest.approx(1.0, abs=1e-5)


def test_dense_and_sparse_input_give_the_same_model():
    X = _data("bernoulli")
    a = rbmrec.RBM(**FAST).fit(X)
    b = rbmrec.RBM(**FAST).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(a.weights_, b.weights_)
    L = _data("softmax")
    c = rbmrec.RBM(visible="softmax", **FAST).fit(L)
    d = rbmrec.RBM(visible="softmax", **FAST).fit(sp.csr_matrix(np.where(L >= 0, L + 1, 0)))
    np.testing.assert_array_equal(c.weights_, d.weights_)


def test_input_is_not_mutated():
    X = _data("gaussian")
    before = X.copy()
    rbmrec.RBM(visible="gaussian", persistent=True, **FAST).fit(X)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian", "softmax"])
def test_same_seed_same_weights_across_thread_counts_and_seeds_differ(visible):
    X = _data(visible, n=70)
    kw = dict(FAST, visible=visible, persistent=True, cd_steps=2)
    one = rbmrec.RBM(num_threads=1, **kw).fit(X)
    two = rbmrec.RBM(num_threads=2, **kw).fit(X)
    again = rbmrec.RBM(num_threads=2, **kw).fit(X)
    np.testing.assert_array_equal(one.weights_, two.weights_)
    np.testing.assert_array_equal(one.visible_bias_, two.visible_bias_)
    np.testing.assert_array_equal(two.hidden_bias_, again.hidden_bias_)
    other = rbmrec.RBM(num_threads=1, **{**kw, "random_state": 1}).fit(X)
    assert not np.array_equal(one.weights_, other.weights_)


def test_num_threads_is_restored():
    import numba

    before = numba.get_num_threads()
    rbmrec.RBM(num_threads=1, **FAST).fit(_data("bernoulli"))
    assert numba.get_num_threads() == before


def test_divergence_raises_a_clear_error_and_leaves_no_nan():
    X = _data("gaussian") * 100
    rbm = rbmrec.RBM(visible="gaussian", n_hidden=3, n_epochs=20, learning_rate=1e30,
                     momentum=0.9, random_state=0)  # fmt: skip
    with pytest.raises(TrainingDivergedError) as err:
        rbm.fit(X)
    msg = str(err.value)
    assert "epoch" in msg and "learning_rate=1e+30" in msg and "visible='gaussian'" in msg
    for p in (rbm.weights_, rbm.visible_bias_, rbm.hidden_bias_):
        assert np.all(np.isfinite(p))


def test_callback_can_stop_training_and_sees_metrics():
    seen = []

    def cb(epoch, metrics):
        seen.append((epoch, metrics["recon_error"]))
        return epoch == 1

    rbm = rbmrec.RBM(callback=cb, **{**FAST, "n_epochs": 10}).fit(_data("bernoulli"))
    assert [e for e, _ in seen] == [0, 1]
    assert len(rbm.history_) == 2


def test_validation_adds_free_energy_gap():
    X = _data("bernoulli")
    rbm = rbmrec.RBM(**FAST).fit(X[:30], validation=X[30:])
    gap = rbm.history_[-1]["free_energy_gap"]
    want = rbm.free_energy(X[30:]).mean() - rbm.free_energy(X[:30]).mean()
    # the monitor set is the whole training set when it has at most 256 rows
    assert gap == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert "pseudo_log_likelihood" in rbm.history_[-1]


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian", "softmax"])
def test_save_load_round_trip(tmp_path, visible):
    X = _data(visible)
    kw = {"sigma": 0.5} if visible == "gaussian" else {}
    rbm = rbmrec.RBM(visible=visible, **FAST, **kw).fit(X)
    path = rbmrec.save(rbm, tmp_path / "m")
    back = rbmrec.load(path)
    assert isinstance(back, rbmrec.RBM) and back.visible == visible
    np.testing.assert_array_equal(back.transform(X), rbm.transform(X))
    np.testing.assert_array_equal(back.free_energy(X), rbm.free_energy(X))
    assert back.history_ == rbm.history_


def test_exact_methods_refuse_large_models():
    X = (np.random.default_rng(0).random((10, 30)) < 0.5).astype(np.float32)
    rbm = rbmrec.RBM(n_hidden=25, n_epochs=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="limit"):
        rbm.log_partition()
    with pytest.raises(ValueError, match="limit"):
        rbm.log_likelihood(X)


def test_methods_need_a_fitted_model():
    rbm = rbmrec.RBM()
    for call in (lambda: rbm.transform(np.zeros((1, 2))), lambda: rbm.sample(2),
                 rbm.log_partition):  # fmt: skip
        with pytest.raises(NotFittedError):
            call()


BAD_PARAMS = [
    ({"n_hidden": 0}, ValueError, "n_hidden"),
    ({"n_hidden": 2.5}, TypeError, "n_hidden"),
    ({"visible": "poisson"}, ValueError, "visible"),
    ({"n_levels": 3}, ValueError, "n_levels"),
    ({"visible": "softmax", "n_levels": 1}, ValueError, "n_levels"),
    ({"sigma": 1.0}, ValueError, "sigma"),
    ({"visible": "gaussian", "sigma": -1.0}, ValueError, "sigma"),
    ({"visible": "gaussian", "sigma": [1.0, 2.0]}, ValueError, "sigma"),
    ({"cd_steps": 0}, ValueError, "cd_steps"),
    ({"cd_steps": "many"}, TypeError, "cd_steps"),
    ({"persistent": "yes"}, TypeError, "persistent"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
    ({"momentum": 1.0}, ValueError, "momentum"),
    ({"weight_decay": -1.0}, ValueError, "weight_decay"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"n_epochs": 0}, ValueError, "n_epochs"),
    ({"init_scale": float("inf")}, ValueError, "init_scale"),
    ({"dtype": "int32"}, ValueError, "dtype"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"num_threads": -1}, ValueError, "num_threads"),
    ({"callback": 3}, TypeError, "callback"),
]


@pytest.mark.parametrize(("params", "exc", "name"), BAD_PARAMS)
def test_invalid_hyperparameters_are_named(params, exc, name):
    X = _data("gaussian") if params.get("visible") == "gaussian" else _data("bernoulli")
    with pytest.raises(exc, match=name):
        rbmrec.RBM(**params).fit(X)


def _bad_inputs():
    ok = _data("bernoulli")
    nan = ok.copy()
    nan[0, 0] = np.nan
    inf = ok.copy()
    inf[1, 1] = np.inf
    return [
        ("bernoulli", nan, ValueError, "NaN"),
        ("gaussian", inf, ValueError, "NaN or infinite"),
        ("bernoulli", ok[0], ValueError, "2-D"),
        ("bernoulli", ok * 2, ValueError, r"\[0, 1\]"),
        ("bernoulli", ok.astype(str), TypeError, "dtype"),
        ("bernoulli", ok.astype(complex), TypeError, "dtype"),
        ("bernoulli", np.zeros((0, 6)), ValueError, "empty"),
        ("bernoulli", "data", TypeError, "array"),
        ("softmax", _data("softmax").astype(float), TypeError, "integer level"),
        ("softmax", np.full((3, 4), -2), ValueError, "level indices"),
        ("softmax", np.full((3, 4), -1), ValueError, "observes no"),
        ("softmax", sp.csr_matrix(np.array([[0.5, 1.0]])), ValueError, "integer level"),
    ]


@pytest.mark.parametrize(("visible", "X", "exc", "pattern"), _bad_inputs())
def test_invalid_input_is_named(visible, X, exc, pattern):
    with pytest.raises(exc, match=pattern):
        rbmrec.RBM(visible=visible, **FAST).fit(X)


def test_invalid_input_after_fit():
    rbm = rbmrec.RBM(visible="softmax", n_levels=3, **FAST).fit(_data("softmax"))
    with pytest.raises(ValueError, match="columns"):
        rbm.transform(np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="level indices"):
        rbm.free_energy(np.full((2, 6), 3))
    with pytest.raises(ValueError, match=r"\+ 1"):
        rbm.transform(sp.csr_matrix(np.full((2, 6), 4)))
    with pytest.raises(ValueError, match="steps"):
        rbm.gibbs(_data("softmax"), steps=0)
    with pytest.raises(ValueError, match="n_samples"):
        rbm.sample(0)


def test_softmax_rows_observing_nothing_are_scored_alone_and_in_a_batch():
    """A row observing no group is the RBM over no visible units: p(h | v) = sigmoid(c),
    F = -log sum_h exp(c.h) = -sum softplus(c), log p(v) = 0, alone as in a batch."""
    X = _data("softmax")
    rbm = rbmrec.RBM(visible="softmax", dtype="float64", **FAST).fit(X)
    c = rbm.hidden_bias_
    states = np.array(list(itertools.product([0.0, 1.0], repeat=len(c))))
    F_brute = -np.logaddexp.reduce(states @ c)
    empty = np.full((1, 6), -1)
    for E in (empty, sp.csr_matrix((1, 6))):
        np.testing.assert_allclose(rbm.transform(E), [1.0 / (1.0 + np.exp(-c))], rtol=1e-12)
        np.testing.assert_allclose(rbm.free_energy(E), [F_brute], rtol=1e-12)
        np.testing.assert_allclose(rbm.log_likelihood(E), [0.0], atol=1e-12)
        np.testing.assert_array_equal(rbm.gibbs(E, steps=2), empty)
        assert rbm.reconstruct(E).shape == (1, 6, 3)
    # The same answers as part of a batch, and the other rows' answers are unchanged.
    batch = np.vstack([empty, X[:3], empty])
    for method in (rbm.transform, rbm.free_energy, rbm.log_likelihood):
        got, alone = method(batch), method(empty)[0]
        np.testing.assert_array_equal(got[0], alone)
        np.testing.assert_array_equal(got[-1], alone)
        np.testing.assert_array_equal(got[1:4], method(X[:3]))


def test_softmax_training_refuses_data_observing_nothing():
    """Nothing to learn: fit, a first partial_fit and a later partial_fit refuse it, and a
    fitted model stays unchanged."""
    nothing = np.full((4, 6), -1)
    with pytest.raises(ValueError, match="observes no visible group in any row"):
        rbmrec.RBM(visible="softmax", n_levels=3, **FAST).fit(nothing)
    with pytest.raises(ValueError, match="observes no visible group in any row"):
        rbmrec.RBM(visible="softmax", n_levels=3, **FAST).partial_fit(sp.csr_matrix((4, 6)))
    rbm = rbmrec.RBM(visible="softmax", **FAST).fit(_data("softmax"))
    W = rbm.weights_.copy()
    with pytest.raises(ValueError, match="nothing to learn"):
        rbm.partial_fit(nothing)
    np.testing.assert_array_equal(rbm.weights_, W)
    assert len(rbm.history_) == FAST["n_epochs"]


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian", "softmax"])
def test_failed_refit_leaves_the_fitted_model_unchanged(visible):
    """Bad data (or bad validation data) in a second fit raises and changes nothing."""
    X = _data(visible)
    rbm = rbmrec.RBM(visible=visible, **FAST).fit(X)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(rbm).items()}
    H = rbm.transform(X)
    bad = np.full((4, 6), np.nan)
    wrong_width = _data(visible, nv=5)
    for kwargs in ({"X": bad}, {"X": X, "validation": bad}, {"X": X, "validation": wrong_width}):
        with pytest.raises((ValueError, TypeError)):
            rbm.fit(kwargs.pop("X"), **kwargs)
        assert set(vars(rbm)) == set(before)
        for k, v in before.items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(getattr(rbm, k), v), k
        np.testing.assert_array_equal(rbm.transform(X), H)
    # A refit on data of another width is still allowed.
    assert rbmrec.RBM(visible=visible, **FAST).fit(X).fit(wrong_width).n_visible_ == 5
