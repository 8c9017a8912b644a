"""Training quality of :class:`rbmrec.RBM` on tiny synthetic problems with known answers."""

from __future__ import annotations

import numpy as np
import pytest

import rbmrec
from rbmrec.engine import exact as E


def _binary_data():
    rng = np.random.default_rng(0)
    protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]], float)
    X = np.abs(protos[rng.integers(0, 3, 80)] - (rng.random((80, 6)) < 0.1))
    return X


@pytest.fixture(scope="module")
def exact_maximum():
    """Initial and maximal mean log-likelihood by exact full-batch gradient ascent."""
    X = _binary_data()
    init = rbmrec.RBM(n_hidden=3, n_epochs=1, learning_rate=1e-12, momentum=0.0,
                      weight_decay=0.0, dtype="float64", random_state=1,
                      num_threads=1).fit(X)  # fmt: skip
    W, b, c = init.weights_.copy(), init.visible_bias_.copy(), init.hidden_bias_.copy()
    ll0 = E.log_prob("bernoulli", X, W, b, c).mean()
    for _ in range(5000):
        g = E.log_likelihood_gradient("bernoulli", X, W, b, c)
        W += 0.5 * g["W"]
        b += 0.5 * g["b"]
        c += 0.5 * g["c"]
    g = E.log_likelihood_gradient("bernoulli", X, W, b, c)
    assert max(np.abs(v).max() for v in g.values()) < 5e-3  # converged
    return X, ll0, E.log_prob("bernoulli", X, W, b, c).mean()


@pytest.mark.parametrize(
    "kw", [{"persistent": True, "cd_steps": 5}, {"cd_steps": 25}], ids=["pcd5", "cd25"]
)
def test_training_reaches_the_exact_maximum_likelihood(exact_maximum, kw):
    X, ll0, ll_max = exact_maximum
    assert ll_max > ll0 + 1.0  # the problem has something to learn
    rbm = rbmrec.RBM(n_hidden=3, n_epochs=1500, batch_size=40, learning_rate=0.1, momentum=0.5,
                     weight_decay=0.0, random_state=1, num_threads=1, **kw).fit(X)  # fmt: skip
    # Anneal the learning rate to remove most of the stochastic-gradient noise.
    rbm.learning_rate = 0.02
    for _ in range(500):
        rbm.partial_fit(X)
    ll = rbm.log_likelihood(X).mean()
    assert ll > ll0 + 1.0
    assert ll > ll_max - 0.1, (ll, ll_max)
    assert ll <= ll_max + 1e-3  # the exact ascent found (at least) this optimum


def test_gaussian_rbm_reconstructs_two_cluster_means():
    rng = np.random.default_rng(0)
    mu = np.array([[2.0, 2, 2, -1, -1, -1], [-1.0, -1, -1, 2, 2, 2]])
    lab = rng.integers(0, 2, 400)
    X = mu[lab] + rng.normal(0, 0.3, (400, 6))
    rbm = rbmrec.RBM(n_hidden=4, visible="gaussian", sigma=0.3, n_epochs=60, batch_size=20,
                     learning_rate=0.01, momentum=0.5, random_state=0,
                     num_threads=1).fit(X)  # fmt: skip
    R = rbm.reconstruct(X)
    for k in (0, 1):
        assert np.abs(R[lab == k].mean(0) - X[lab == k].mean(0)).max() < 0.15
        # each point is pulled to its own cluster's mean, not to the global mean
        assert np.abs(R[lab == k] - mu[k]).max() < 0.5
    assert rbm.history_[-1]["recon_error"] < rbm.history_[0]["recon_error"]


def test_softmax_rbm_recovers_category_frequencies_and_their_dependence():
    rng = np.random.default_rng(0)
    n, K = 600, 4
    p1 = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1],
                   [0.1, 0.1, 0.1, 0.7], [0.25, 0.25, 0.25, 0.25]])  # fmt: skip
    lab = rng.integers(0, 2, n)
    P = np.where(lab[:, None, None] == 0, p1[None], p1[None, :, ::-1])
    C = (P.cumsum(-1) > rng.random((n, 5, 1))).argmax(-1)
    rbm = rbmrec.RBM(n_hidden=4, visible="softmax", n_epochs=60, batch_size=20,
                     learning_rate=0.05, momentum=0.5, persistent=True, random_state=0,
                     num_threads=1).fit(C)  # fmt: skip
    S = rbm.sample(3000, steps=200)
    freq = lambda A: np.stack([(A == k).mean(0) for k in range(K)], 1)  # noqa: E731
    se = np.sqrt(0.25 / len(S)) + np.sqrt(0.25 / n)
    assert np.abs(freq(C) - freq(S)).max() < 5 * se
    # Groups 0 and 3 are dependent through the latent class; the model reproduces most of
    # that dependence (a model of independent groups would reproduce none of it).
    joint = lambda A: ((A[:, 0] == 0) & (A[:, 3] == 3)).mean()  # noqa: E731
    independent = freq(C)[0, 0] * freq(C)[3, 3]
    assert abs(joint(S) - joint(C)) < 0.5 * abs(joint(C) - independent)
