"""Exact quantities of tiny RBMs by enumeration, in plain float64 NumPy.

These helpers are the reference the kernels are proven against and what
:meth:`rbmrec.RBM.log_partition` / :meth:`rbmrec.RBM.log_likelihood` use. They work for the three
visible families of ``docs/architecture.md``:

- ``"bernoulli"``: ``W`` (n_visible, n_hidden), ``b`` (n_visible,), states ``v`` in {0, 1};
- ``"gaussian"``: same shapes plus ``sigma`` (n_visible,); ``v`` real, so sums over ``v`` become
  Gaussian integrals done in closed form: for fixed ``h`` the visible units are independent
  ``N(b + sigma * (W h), sigma^2)``, which gives ``log Z = logsumexp_h [c.h + sum_i (b_i a_i /
  sigma_i + a_i^2 / 2 + log(sqrt(2 pi) sigma_i))]`` with ``a = W h``;
- ``"softmax"``: ``W`` (n_visible, n_levels, n_hidden), ``b`` (n_visible, n_levels), ``v`` an
  integer array of 0-based levels, one per visible group (a fully observed row; for a row that
  observes a subset of the groups, pass ``W[groups]`` and ``b[groups]``).

Sufficient statistics follow the kernels' convention (derivatives of ``-E``): ``(v_i / sigma_i)
h_j`` for ``W`` (one-hot ``v_ik h_j`` for softmax), ``v_i / sigma_i^2`` for ``b`` and ``h_j`` for
``c``, so ``d mean log p(v) / d theta = data_expectations - model_expectations``.

Everything is refused with a ``ValueError`` when the number of states to enumerate exceeds
``max_states`` (default :data:`MAX_STATES`).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import expit, logsumexp

FAMILIES = ("bernoulli", "gaussian", "softmax")
#: Default upper bound on the number of states any helper enumerates.
MAX_STATES = 2**20

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _check_count(n_states: float, what: str, max_states: int) -> None:
    if n_states > max_states:
        raise ValueError(
            f"exact enumeration needs {n_states:.3g} {what} states, above the limit of "
            f"{max_states}; it is only for tiny models"
        )


def binary_states(n: int, max_states: int = MAX_STATES) -> np.ndarray:
    """All binary vectors of length ``n``; float64 (2**n, n), lexicographic order."""
    _check_count(2.0**n, "binary", max_states)
    if n == 0:
        return np.zeros((1, 0))
    codes = np.arange(2**n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.float64)


def level_states(n_groups: int, n_levels: int, max_states: int = MAX_STATES) -> np.ndarray:
    """All level vectors of ``n_groups`` groups; int64 (n_levels**n_groups, n_groups)."""
    _check_count(float(n_levels) ** n_groups, "softmax", max_states)
    return np.array(list(itertools.product(range(n_levels), repeat=n_groups)), dtype=np.int64)


def _as(W, b, c, sigma):
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if sigma is None:
        sigma = np.ones(W.shape[0])
    return W, b, c, np.asarray(sigma, dtype=np.float64)


def _onehot(levels: np.ndarray, n_levels: int) -> np.ndarray:
    levels = np.asarray(levels, dtype=np.int64)
    return (levels[..., None] == np.arange(n_levels)).astype(np.float64)


def visible_states(family: str, W, max_states: int = MAX_STATES) -> np.ndarray:
    """Every visible configuration of a discrete family (binary vectors or level vectors)."""
    _check_family(family)
    W = np.asarray(W)
    if family == "gaussian":
        raise ValueError("gaussian visible units are continuous: they cannot be enumerated")
    if family == "softmax":
        return level_states(W.shape[0], W.shape[1], max_states)
    return binary_states(W.shape[0], max_states)


def energy(family: str, V, H, W, b, c, sigma=None) -> np.ndarray:
    """Joint energies ``E(v, h)`` for every pair; float64 (n_v, n_h).

    Parameters
    ----------
    V : (n_v, n_visible) visible states (levels for softmax)
    H : (n_h, n_hidden) binary hidden states
    """
    _check_family(family)
    W, b, c, sigma = _as(W, b, c, sigma)
    H = np.asarray(H, dtype=np.float64)
    if family == "softmax":
        oh = _onehot(V, W.shape[1])  # (n_v, nv, nl)
        vis = -np.einsum("aik,ik->a", oh, b)
        inter = -np.einsum("aik,ikj,bj->ab", oh, W, H)
    else:
        V = np.asarray(V, dtype=np.float64)
        if family == "gaussian":
            vis = (((V - b) / sigma) ** 2).sum(axis=1) / 2.0
            inter = -((V / sigma) @ W @ H.T)
        else:
            vis = -(V @ b)
            inter = -(V @ W @ H.T)
    return vis[:, None] - (H @ c)[None, :] + inter


def free_energy_by_enumeration(family: str, V, W, b, c, sigma=None, max_states=MAX_STATES):
    """``F(v) = -log sum_h exp(-E(v, h))`` summing over all hidden states; float64 (n_v,)."""
    H = binary_states(np.asarray(W).shape[-1], max_states)
    return -logsumexp(-energy(family, V, H, W, b, c, sigma), axis=1)


def free_energy(family: str, V, W, b, c, sigma=None) -> np.ndarray:
    """Closed-form free energy (hidden units summed out analytically); float64 (n_v,)."""
    _check_family(family)
    W, b, c, sigma = _as(W, b, c, sigma)
    if family == "softmax":
        oh = _onehot(V, W.shape[1])
        act = c + np.einsum("aik,ikj->aj", oh, W)
        vis = -np.einsum("aik,ik->a", oh, b)
    else:
        V = np.asarray(V, dtype=np.float64)
        act = c + (V / sigma) @ W
        vis = (((V - b) / sigma) ** 2).sum(1) / 2.0 if family == "gaussian" else -(V @ b)
    return vis - np.logaddexp(0.0, act).sum(axis=1)


def _hidden_side_log_weights(family: str, H, W, b, c, sigma) -> np.ndarray:
    """``log sum_v exp(-E(v, h))`` for each hidden state (visible units summed out)."""
    if family == "softmax":
        act = b[None] + np.einsum("ikj,hj->hik", W, H)
        vis = logsumexp(act, axis=2).sum(axis=1)
    elif family == "gaussian":
        a = H @ W.T  # (n_h, nv)
        vis = (b / sigma * a + a**2 / 2.0).sum(axis=1) + (_LOG_SQRT_2PI + np.log(sigma)).sum()
    else:
        vis = np.logaddexp(0.0, b[None] + H @ W.T).sum(axis=1)
    return H @ c + vis


def hidden_marginal(family: str, W, b, c, sigma=None, max_states=MAX_STATES):
    """All hidden states and their model probabilities ``p(h)``.

    Returns
    -------
    H : float64 (2**n_hidden, n_hidden)
    p : float64 (2**n_hidden,)
    """
    _check_family(family)
    W, b, c, sigma = _as(W, b, c, sigma)
    H = binary_states(W.shape[-1], max_states)
    lw = _hidden_side_log_weights(family, H, W, b, c, sigma)
    return H, np.exp(lw - logsumexp(lw))


def log_partition(family: str, W, b, c, sigma=None, max_states: int = MAX_STATES) -> float:
    """``log Z``, summing over whichever layer has fewer states (Gaussian: over ``h``)."""
    _check_family(family)
    W, b, c, sigma = _as(W, b, c, sigma)
    n_h = 2.0 ** W.shape[-1]
    if family == "gaussian":
        n_v = np.inf
    elif family == "softmax":
        n_v = float(W.shape[1]) ** W.shape[0]
    else:
        n_v = 2.0 ** W.shape[0]
    if n_h <= n_v:
        H = binary_states(W.shape[-1], max_states)
        return float(logsumexp(_hidden_side_log_weights(family, H, W, b, c, sigma)))
    V = visible_states(family, W, max_states)
    return float(logsumexp(-free_energy(family, V, W, b, c, sigma)))


def joint_log_partition(family: str, W, b, c, max_states: int = MAX_STATES) -> float:
    """``log Z`` by brute force over every joint state ``(v, h)`` (discrete families only)."""
    W = np.asarray(W)
    V = visible_states(family, W, max_states)
    H = binary_states(W.shape[-1], max_states)
    _check_count(float(len(V)) * len(H), "joint", max_states)
    return float(logsumexp(-energy(family, V, H, W, b, c)))


def log_prob(family: str, V, W, b, c, sigma=None, max_states: int = MAX_STATES) -> np.ndarray:
    """Exact ``log p(v)`` (a log density for Gaussian units); float64 (n_v,)."""
    return free_energy(family, V, W, b, c, sigma) * -1.0 - log_partition(
        family, W, b, c, sigma, max_states
    )


def visible_distribution(family: str, W, b, c, max_states: int = MAX_STATES):
    """All visible states of a discrete family and their probabilities ``p(v)``."""
    V = visible_states(family, W, max_states)
    lp = -free_energy(family, V, W, b, c)
    return V, np.exp(lp - logsumexp(lp))


def _stats(family: str, V, Ph, weights, W, sigma):
    """Weighted sums of the sufficient statistics over visible rows ``V`` with ``p(h|v)``."""
    if family == "softmax":
        oh = _onehot(V, W.shape[1])
        gW = np.einsum("a,aik,aj->ikj", weights, oh, Ph)
        gb = np.einsum("a,aik->ik", weights, oh)
    else:
        V = np.asarray(V, dtype=np.float64)
        gW = np.einsum("a,ai,aj->ij", weights, V / sigma, Ph)
        gb = weights @ (V / sigma**2)
    return {"W": gW, "b": gb, "c": weights @ Ph}


def hidden_probs(family: str, V, W, c, sigma=None) -> np.ndarray:
    """``p(h_j = 1 | v)`` in closed form; float64 (n_v, n_hidden)."""
    _check_family(family)
    W, _, c, sigma = _as(W, np.zeros(1), c, sigma)
    if family == "softmax":
        act = c + np.einsum("aik,ikj->aj", _onehot(V, W.shape[1]), W)
    else:
        act = c + (np.asarray(V, dtype=np.float64) / sigma) @ W
    return expit(act)


def data_expectations(family: str, V, W, b, c, sigma=None) -> dict[str, np.ndarray]:
    """``E_data`` of the sufficient statistics (mean over the rows of ``V``, ``h ~ p(h|v)``)."""
    W, b, c, sigma = _as(W, b, c, sigma)
    n = len(V)
    if n == 0:
        raise ValueError("data_expectations needs at least one row")
    Ph = hidden_probs(family, V, W, c, sigma)
    return _stats(family, V, Ph, np.full(n, 1.0 / n), W, sigma)


def model_expectations(
    family: str, W, b, c, sigma=None, max_states: int = MAX_STATES
) -> dict[str, np.ndarray]:
    """``E_model`` of the sufficient statistics, exactly.

    Discrete families sum over all visible states; Gaussian units sum over hidden states
    using ``E[v | h] = b + sigma * (W h)``.
    """
    _check_family(family)
    W, b, c, sigma = _as(W, b, c, sigma)
    if family == "gaussian":
        H, ph = hidden_marginal(family, W, b, c, sigma, max_states)
        mean_v = b + sigma * (H @ W.T)  # (n_h, nv)
        return {
            "W": np.einsum("a,ai,aj->ij", ph, mean_v / sigma, H),
            "b": ph @ (mean_v / sigma**2),
            "c": ph @ H,
        }
    V, pv = visible_distribution(family, W, b, c, max_states)
    Ph = hidden_probs(family, V, W, c, sigma)
    return _stats(family, V, Ph, pv, W, sigma)


def gibbs_transition(
    family: str, W, b, c, max_states: int = MAX_STATES
) -> tuple[np.ndarray, np.ndarray]:
    """One block-Gibbs sweep ``v -> h -> v'`` as a transition matrix (discrete families).

    Returns
    -------
    V : ndarray, shape (n_states, n_visible)
        Every visible state (levels for softmax), in :func:`visible_states` order.
    T : ndarray of float64, shape (n_states, n_states)
        ``T[a, b] = sum_h p(h | V[a]) p(V[b] | h)``; rows sum to 1.
    """
    if family == "gaussian":
        raise ValueError("gaussian visible units are continuous: no finite transition matrix")
    V = visible_states(family, W, max_states)
    H = binary_states(np.asarray(W).shape[-1], max_states)
    neg = -energy(family, V, H, W, b, c)  # (n_v, n_h)
    p_h_given_v = np.exp(neg - logsumexp(neg, axis=1, keepdims=True))
    p_v_given_h = np.exp(neg - logsumexp(neg, axis=0, keepdims=True))
    return V, p_h_given_v @ p_v_given_h.T


def cd_expectations(
    family: str, V0, W, b, c, k: int, max_states: int = MAX_STATES
) -> dict[str, np.ndarray]:
    """Exact expectation of CD-k's negative statistics started from the rows ``V0``.

    The chain runs ``k`` Gibbs sweeps from each data row; the statistics are those of the
    final visible sample ``v_k`` with ``p(h | v_k)`` (the sampled CD-k estimator, Hinton
    2002), averaged over the rows. As ``k`` grows they approach :func:`model_expectations`.
    """
    W, b, c, sigma = _as(W, b, c, None)
    V, T = gibbs_transition(family, W, b, c, max_states)
    index = {tuple(v): a for a, v in enumerate(np.asarray(V).tolist())}
    dist = np.zeros(len(V))
    for row in np.asarray(V0).tolist():
        dist[index[tuple(row)]] += 1.0 / len(V0)
    dist = dist @ np.linalg.matrix_power(T, int(k))
    return _stats(family, V, hidden_probs(family, V, W, c, sigma), dist, W, sigma)


def log_likelihood_gradient(
    family: str, V, W, b, c, sigma=None, max_states: int = MAX_STATES
) -> dict[str, np.ndarray]:
    """Exact gradient of the mean log-likelihood of rows ``V``: ``E_data - E_model``."""
    d = data_expectations(family, V, W, b, c, sigma)
    m = model_expectations(family, W, b, c, sigma, max_states)
    return {k: d[k] - m[k] for k in d}
