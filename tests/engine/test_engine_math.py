"""The engine's math against exact enumeration on tiny models, for every visible family.

Each test computes a quantity two independent ways: by the Numba kernels, and by summing
``exp(-E(v, h))`` over all states (``rbmrec.engine.exact``, plain NumPy) or by numerical
integration / finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp
from scipy.stats import chisquare

from rbmrec.engine import bernoulli as B
from rbmrec.engine import exact as E
from rbmrec.engine import gaussian as G
from rbmrec.engine import softmax as S
from rbmrec.engine._random import row_states

NV, NH, NL = 5, 3, 3  # bernoulli / gaussian visible units, hidden units, softmax levels
NG = 3  # softmax groups


def _params(family: str, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    if family == "softmax":
        W = rng.normal(0, scale, (NG, NL, NH))
        b = rng.normal(0, 1, (NG, NL))
        sigma = None
    else:
        n = NV if family == "bernoulli" else 3
        W = rng.normal(0, scale, (n, NH))
        b = rng.normal(0, 1, n)
        sigma = np.array([0.7, 1.0, 1.6])[:n] if family == "gaussian" else None
    c = rng.normal(0, 1, NH)
    return W, b, c, sigma


def _csr(V):
    A = sp.csr_matrix(np.asarray(V, dtype=np.float64))
    return A.indptr.astype(np.int64), A.indices.astype(np.int32), A.data


def _full_rows(V):
    """Softmax CSR observing every group, levels from the (n, n_groups) int array ``V``."""
    V = np.asarray(V)
    n, g = V.shape
    indptr = np.arange(0, (n + 1) * g, g, dtype=np.int64)
    return indptr, np.tile(np.arange(g, dtype=np.int32), n), V.ravel().astype(np.int8)


def _rows(n):
    return np.arange(n, dtype=np.int64)


def _kernel_free_energy(family, V, W, b, c, sigma):
    off = np.zeros((0, W.shape[-1]))
    if family == "softmax":
        return S.softmax_free_energy(*_full_rows(V), _rows(len(V)), W, b, c, off)
    if family == "gaussian":
        return G.gaussian_free_energy(*_csr(V), _rows(len(V)), W, b, c, sigma, off)
    return B.bernoulli_free_energy(*_csr(V), _rows(len(V)), W, b, c, off)


def _kernel_hidden_probs(family, V, W, c, sigma):
    off = np.zeros((0, W.shape[-1]))
    if family == "softmax":
        return S.softmax_hidden_probs(*_full_rows(V), _rows(len(V)), W, c, off)
    if family == "gaussian":
        return G.gaussian_hidden_probs(*_csr(V), _rows(len(V)), W, c, sigma, off)
    return B.bernoulli_hidden_probs(*_csr(V), _rows(len(V)), W, c, off)


def _some_visible(family, W, n=40, seed=1):
    if family == "gaussian":
        return np.random.default_rng(seed).normal(0, 1.5, (n, W.shape[0]))
    return E.visible_states(family, W)


FAMILIES = ["bernoulli", "gaussian", "softmax"]


# ----------------------------------------------------------------------------- free energy


@pytest.mark.parametrize("family", FAMILIES)
def test_free_energy_equals_minus_log_sum_over_hidden(family):
    W, b, c, sigma = _params(family)
    V = _some_visible(family, W)
    got = _kernel_free_energy(family, V, W, b, c, sigma)
    want = E.free_energy_by_enumeration(family, V, W, b, c, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_partially_observed_rows_use_the_rbm_of_their_observed_units():
    # Softmax and masked Gaussian rows: F of the sub-RBM over the stored units only.
    W, b, c, _ = _params("softmax")
    indptr = np.array([0, 2, 3], dtype=np.int64)
    indices = np.array([0, 2, 1], dtype=np.int32)
    levels = np.array([2, 0, 1], dtype=np.int8)
    off = np.zeros((0, NH))
    got = S.softmax_free_energy(indptr, indices, levels, _rows(2), W, b, c, off)
    want = [
        E.free_energy_by_enumeration("softmax", [[2, 0]], W[[0, 2]], b[[0, 2]], c)[0],
        E.free_energy_by_enumeration("softmax", [[1]], W[[1]], b[[1]], c)[0],
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    Wg, bg, cg, sg = _params("gaussian")
    data = np.array([0.5, -1.0, 2.0])
    got = G.gaussian_masked_free_energy(indptr, indices, data, _rows(2), Wg, bg, cg, sg, off)
    fe = E.free_energy_by_enumeration
    want = [
        fe("gaussian", [[0.5, -1.0]], Wg[[0, 2]], bg[[0, 2]], cg, sg[[0, 2]])[0],
        fe("gaussian", [[2.0]], Wg[[1]], bg[[1]], cg, sg[[1]])[0],
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("family", ["bernoulli", "softmax"])
def test_visible_probabilities_sum_to_one(family):
    W, b, c, sigma = _params(family)
    V = E.visible_states(family, W)
    log_z = E.joint_log_partition(family, W, b, c)  # brute force over (v, h)
    assert E.log_partition(family, W, b, c) == pytest.approx(log_z, abs=1e-12)
    p = np.exp(-_kernel_free_energy(family, V, W, b, c, sigma) - log_z)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(p > 0)


def test_gaussian_density_integrates_to_one():
    # Two visible units: integrate exp(-F(v) - log Z) over a fine grid.
    rng = np.random.default_rng(3)
    W, b, c = rng.normal(0, 0.8, (2, NH)), rng.normal(0, 1, 2), rng.normal(0, 1, NH)
    sigma = np.array([0.6, 1.3])
    log_z = E.log_partition("gaussian", W, b, c, sigma)
    g1 = np.linspace(b[0] - 12 * sigma[0] - 6, b[0] + 12 * sigma[0] + 6, 301)
    g2 = np.linspace(b[1] - 12 * sigma[1] - 6, b[1] + 12 * sigma[1] + 6, 301)
    V = np.array(np.meshgrid(g1, g2, indexing="ij")).reshape(2, -1).T
    dens = np.exp(-_kernel_free_energy("gaussian", V, W, b, c, sigma) - log_z).reshape(301, 301)
    total = np.trapezoid(np.trapezoid(dens, g2, axis=1), g1)
    assert total == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- conditionals


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_conditional_is_a_ratio_of_joint_probabilities(family):
    W, b, c, sigma = _params(family)
    V = _some_visible(family, W)
    H = E.binary_states(NH)
    logj = -E.energy(family, V, H, W, b, c, sigma)  # (n_v, n_h)
    norm = logsumexp(logj, axis=1)
    want = np.stack(
        [np.exp(logsumexp(logj[:, H[:, j] == 1], axis=1) - norm) for j in range(NH)], axis=1
    )
    got = _kernel_hidden_probs(family, V, W, c, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", ["bernoulli", "softmax", "softmax-5"])
def test_visible_conditional_is_a_ratio_of_joint_probabilities(family):
    W, b, c, _ = _params(family.split("-")[0])
    NL = W.shape[1]
    if family == "softmax-5":  # 5 levels take the kernels' unrolled 1-5 star path
        family, NL = "softmax", 5
        rng = np.random.default_rng(8)
        W, b = rng.normal(0, 1, (NG, NL, NH)), rng.normal(0, 1, (NG, NL))
    V = E.visible_states(family, W)
    H = E.binary_states(NH)
    logj = -E.energy(family, V, H, W, b, c)  # (n_v, n_h)
    cond = np.exp(logj - logsumexp(logj, axis=0))  # p(v | h), columns sum to 1
    if family == "bernoulli":
        want = (V.T @ cond).T  # p(v_i = 1 | h): (n_h, nv)
        got = B.bernoulli_visible_probs(H, W, b)
    else:
        oh = (V[..., None] == np.arange(NL)).astype(float)  # (n_v, ng, nl)
        want = np.einsum("aik,ah->hik", oh, cond).reshape(-1, NL)
        n = len(H)
        indptr = np.arange(0, (n + 1) * NG, NG, dtype=np.int64)
        got = S.softmax_visible_probs(
            indptr, np.tile(np.arange(NG, dtype=np.int32), n), _rows(n), W, b, H
        )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gaussian_visible_mean_matches_numerical_integration():
    W, b, c, sigma = _params("gaussian")
    H = E.binary_states(NH)
    got = G.gaussian_visible_mean(H, W, b, sigma)
    grid = np.linspace(-25, 25, 20001)
    for hi, h in enumerate(H):
        for i in range(W.shape[0]):
            V = np.zeros((len(grid), W.shape[0]))
            V[:, i] = grid  # p(v_i | h, v_-i) = p(v_i | h): the other units may stay at 0
            logp = -E.energy("gaussian", V, h[None], W, b, c, sigma)[:, 0]
            w = np.exp(logp - logp.max())
            mean = np.trapezoid(w * grid, grid) / np.trapezoid(w, grid)
            var = np.trapezoid(w * (grid - mean) ** 2, grid) / np.trapezoid(w, grid)
            assert got[hi, i] == pytest.approx(mean, abs=1e-8)
            assert var == pytest.approx(sigma[i] ** 2, rel=1e-6)


# ----------------------------------------------------------------------------- gradients


def _data(family, W, n=30, seed=5):
    rng = np.random.default_rng(seed)
    if family == "softmax":
        return rng.integers(0, NL, (n, W.shape[0]))
    if family == "gaussian":
        return rng.normal(0.5, 1.2, (n, W.shape[0]))
    return (rng.random((n, W.shape[0])) < 0.35).astype(float)


@pytest.mark.parametrize("family", FAMILIES)
def test_exact_gradient_is_data_minus_model_expectation(family):
    """E_data - E_model by enumeration equals central differences of the exact mean log p."""
    W, b, c, sigma = _params(family)
    V = _data(family, W)
    grad = E.log_likelihood_gradient(family, V, W, b, c, sigma)
    params = {"W": W, "b": b, "c": c}
    eps = 1e-5
    for name, p in params.items():
        fd = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = E.log_prob(family, V, W, b, c, sigma).mean()
            p[idx] = old - eps
            down = E.log_prob(family, V, W, b, c, sigma).mean()
            p[idx] = old
            fd[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad[name], fd, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("family", FAMILIES)
def test_free_energy_gradient_by_finite_differences(family):
    """-dF/dtheta of the kernel's F equals the sufficient statistics with h = p(h|v)."""
    W, b, c, sigma = _params(family)
    V = _data(family, W, n=4)
    ph = _kernel_hidden_probs(family, V, W, c, sigma)
    if family == "softmax":
        oh = (V[..., None] == np.arange(NL)).astype(float)
        analytic = {"W": np.einsum("aik,aj->ikj", oh, ph), "b": oh.sum(0)}
    else:
        s = sigma if sigma is not None else np.ones(W.shape[0])
        analytic = {"W": (V / s).T @ ph}
        analytic["b"] = (((V - b) / s**2) if family == "gaussian" else V).sum(0)
    analytic["c"] = ph.sum(0)
    params = {"W": W, "b": b, "c": c}
    eps = 1e-6
    for name, p in params.items():
        fd = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = _kernel_free_energy(family, V, W, b, c, sigma).sum()
            p[idx] = old - eps
            down = _kernel_free_energy(family, V, W, b, c, sigma).sum()
            p[idx] = old
            fd[idx] = -(up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[name], fd, atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------- CD and PCD


def _run_cd(family, V, W, b, c, sigma, k, seed, chain=None):
    """The kernel's (positive - negative) statistics summed over the rows of V."""
    n = len(V)
    gW, gb, gc = np.empty_like(W), np.empty_like(b), np.empty_like(c)
    h_diff = np.empty((n, NH))
    off = np.zeros((0, NH))
    states = row_states(np.random.default_rng(seed), n)
    use = chain is not None
    if family == "softmax":
        ch = chain if use else np.zeros(0, np.int8)
        S.softmax_cd(*_full_rows(V), _rows(n), W, b, c, off, k, states, ch, use, gW, gb, gc, h_diff)
    elif family == "gaussian":
        ch = chain if use else np.zeros((0, W.shape[0]))
        G.gaussian_cd(
            *_csr(V), _rows(n), W, b, c, sigma, off, k, states, ch, use, gW, gb, gc, h_diff
        )
    elif family == "gaussian_masked":
        ch = chain if use else np.zeros(0)
        A = sp.csr_matrix(V)  # V has no zeros: every unit is stored
        assert A.nnz == V.size
        G.gaussian_masked_cd(
            A.indptr.astype(np.int64), A.indices.astype(np.int32), A.data, _rows(n), W, b, c,
            sigma, off, k, states, ch, use, gW, gb, gc, h_diff,
        )  # fmt: skip
    else:
        ch = chain if use else np.zeros((0, W.shape[0]))
        B.bernoulli_cd(*_csr(V), _rows(n), W, b, c, off, k, states, ch, use, gW, gb, gc, h_diff)
    return {"W": gW, "b": gb, "c": gc}


@pytest.mark.parametrize("family", ["bernoulli", "softmax"])
def test_cd_statistics_equal_the_exact_cd_k_expectation(family):
    """The kernel's CD-k negative statistics match their exact expectation (Gibbs transition
    matrix by enumeration) for k = 1, 3, 30, within a tolerance from the sample count; the
    exact CD-k bias against E_model falls with k."""
    W, b, c, sigma = _params(family, seed=7, scale=1.5)
    n = 20000
    if family == "softmax":
        v0 = [[0, 1, 2]]
    else:
        v0 = [[1.0, 1.0, 0.0, 0.0, 1.0]]
    V = np.tile(v0, (n, 1))
    data = E.data_expectations(family, V[:1], W, b, c, sigma)
    model = E.model_expectations(family, W, b, c, sigma)
    bias = {}
    for k in (1, 3, 30):
        exact = E.cd_expectations(family, v0, W, b, c, k)
        g = _run_cd(family, V, W, b, c, sigma, k, seed=k)
        neg = data["W"] - g["W"] / n  # the kernel's estimate of the negative statistics
        # Each row's statistic lies in [0, 1]: its standard deviation is at most 1/2.
        tol = 5 * 0.5 / np.sqrt(n)
        np.testing.assert_allclose(neg, exact["W"], atol=tol, err_msg=f"CD-{k}")
        bias[k] = np.abs(exact["W"] - model["W"]).max()
    # CD-1 is biased towards the data; the bias shrinks geometrically with k.
    assert bias[1] > 3 * tol, bias  # the bias is well above what this test resolves
    assert bias[1] > bias[3] > bias[30], bias
    assert bias[30] < 1e-3, bias


@pytest.mark.parametrize("family", ["gaussian", "gaussian_masked"])
def test_cd_negative_statistics_approach_model_expectation_as_k_grows(family):
    W, b, c, sigma = _params("gaussian", seed=7, scale=1.5)
    n = 4000
    V = np.tile([[2.5, -2.0, 1.5]], (n, 1))
    data = E.data_expectations("gaussian", V[:1], W, b, c, sigma)
    model = E.model_expectations("gaussian", W, b, c, sigma)
    errors = {}
    for k in (1, 3, 100):
        g = _run_cd(family, V, W, b, c, sigma, k, seed=k)
        neg = data["W"] - g["W"] / n  # estimate of E_model[v h]
        errors[k] = np.abs(neg - model["W"]).max()
    # CD-1 is biased towards the data; the bias falls with k to Monte-Carlo noise (~1/sqrt(n)).
    assert errors[1] > 3 * errors[100], errors
    assert errors[3] > errors[100], errors
    assert errors[100] < 0.05 * max(1.0, np.abs(model["W"]).max()), errors


def _pcd_chains(family, W, b, c, sigma, n_chains, sweeps, seed):
    """Run persistent chains (zero learning rate) and return their final states."""
    if family == "softmax":
        chain = np.zeros(n_chains * NG, dtype=np.int8)
        V = np.zeros((n_chains, NG), dtype=np.int64)
    else:
        chain = np.zeros((n_chains, W.shape[0]))
        V = np.ones((n_chains, W.shape[0]))
    for s in range(sweeps):
        _run_cd(family, V, W, b, c, sigma, 1, seed=1000 * seed + s, chain=chain)
    return chain.reshape(n_chains, -1)


@pytest.mark.parametrize("family", ["bernoulli", "softmax"])
def test_pcd_chains_sample_the_model_distribution(family):
    W, b, c, _ = _params(family, seed=11)
    states, p = E.visible_distribution(family, W, b, c)
    chains = _pcd_chains(family, W, b, c, None, n_chains=3000, sweeps=25, seed=1)
    base = NL if family == "softmax" else 2
    code = chains.astype(np.int64) @ (base ** np.arange(chains.shape[1] - 1, -1, -1))
    scode = states.astype(np.int64) @ (base ** np.arange(states.shape[1] - 1, -1, -1))
    counts = np.bincount(code, minlength=len(p))[scode]
    expected = p * len(chains)
    big = expected >= 5  # pool the rare states so the chi-square approximation holds
    obs, exp = counts[big], expected[big]
    if not big.all():
        obs, exp = np.append(obs, counts[~big].sum()), np.append(exp, expected[~big].sum())
    assert chisquare(obs, exp).pvalue > 1e-3
    # Total variation within the sum of 3-standard-error deviations of exact sampling; the
    # chains' starting point (a point mass) is far outside that bound.
    m = len(chains)
    bound = 0.5 * np.sum(3 * np.sqrt(p * (1 - p) / m))
    assert 0.5 * np.abs(counts / m - p).sum() < bound
    start = np.zeros_like(p)
    start[np.argmin(scode)] = 1.0
    assert 0.5 * np.abs(start - p).sum() > 3 * bound


def test_pcd_gaussian_chains_match_model_moments():
    W, b, c, sigma = _params("gaussian", seed=11)
    chains = _pcd_chains("gaussian", W, b, c, sigma, n_chains=4000, sweeps=25, seed=2)
    model = E.model_expectations("gaussian", W, b, c, sigma)
    mean_v = model["b"] * sigma**2  # E[v_i / sigma_i^2] * sigma_i^2
    se = chains.std(axis=0) / np.sqrt(len(chains))
    assert np.all(np.abs(chains.mean(axis=0) - mean_v) < 4.5 * se)
