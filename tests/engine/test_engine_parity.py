"""Parallel kernels against plain-NumPy references, and thread-count independence."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.engine import bernoulli as B
from rbmrec.engine import exact as E
from rbmrec.engine import gaussian as G
from rbmrec.engine import softmax as S
from rbmrec.engine import softmax_chains as SC
from rbmrec.engine import softmax_grouping as SG
from rbmrec.engine._random import row_states

_M = (1 << 64) - 1


class _SplitMix:
    """Pure-Python mirror of ``rbmrec.engine._random`` for one row's stream."""

    def __init__(self, state: int) -> None:
        self.s = int(state)

    def u64(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & _M
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.u64() >> 11) * 2.0**-53

    def normal(self) -> float:
        u1, u2 = self.uniform(), self.uniform()
        return float(np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_cd(V, W, b, c, sigma, gaussian, k, states, chain):
    """Plain-NumPy CD-k/PCD-k drawing the same random numbers in the same order."""
    gW, gb, gc = np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)
    err = 0.0
    for r, v0 in enumerate(V):
        rs = _SplitMix(states[r])
        hp0 = _sigmoid(c + (v0 / sigma) @ W)
        hs = np.array([1.0 if rs.uniform() < p else 0.0 for p in hp0])
        gW += np.outer(v0 / sigma, hp0)
        gb += v0 / sigma**2
        gc += hp0
        act = W @ hp0
        mean = b + sigma * act if gaussian else _sigmoid(b + act)
        err += ((v0 - mean) ** 2).sum()
        if chain is not None:
            hp = _sigmoid(c + (chain[r] / sigma) @ W)
            hs = np.array([1.0 if rs.uniform() < p else 0.0 for p in hp])
        for step in range(k):
            act = W @ hs
            if gaussian:
                v = np.array(
                    [m + s * rs.normal() for m, s in zip(b + sigma * act, sigma, strict=True)]
                )
            else:
                v = np.array([1.0 if rs.uniform() < m else 0.0 for m in _sigmoid(b + act)])
            hp = _sigmoid(c + (v / sigma) @ W)
            if step < k - 1:
                hs = np.array([1.0 if rs.uniform() < p else 0.0 for p in hp])
        gW -= np.outer(v / sigma, hp)
        gb -= v / sigma**2
        gc -= hp
        if chain is not None:
            chain[r] = v
    return gW, gb, gc, err


def _problem(gaussian: bool, n=23, nv=9, nh=4, seed=0):
    rng = np.random.default_rng(seed)
    if gaussian:
        V = rng.normal(0, 1, (n, nv)) * (rng.random((n, nv)) < 0.6)
        sigma = rng.uniform(0.5, 1.5, nv)
    else:
        V = (rng.random((n, nv)) < 0.4).astype(float)
        sigma = np.ones(nv)
    W = rng.normal(0, 0.7, (nv, nh))
    return V, W, rng.normal(0, 1, nv), rng.normal(0, 1, nh), sigma


def _csr(V):
    A = sp.csr_matrix(V)
    return A.indptr.astype(np.int64), A.indices.astype(np.int32), A.data


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("persistent", [False, True])
def test_cd_kernel_matches_numpy_reference(gaussian, persistent):
    V, W, b, c, sigma = _problem(gaussian)
    n, nv = V.shape
    nh = W.shape[1]
    rng = np.random.default_rng(4)
    states = row_states(rng, n)
    chain = rng.normal(0, 1, (n, nv)) if gaussian else (rng.random((n, nv)) < 0.5) * 1.0
    ref_chain = chain.copy() if persistent else None
    want = _reference_cd(V, W, b, c, sigma, gaussian, 3, states, ref_chain)
    gW, gb, gc = np.empty_like(W), np.empty_like(b), np.empty_like(c)
    h_diff = np.empty((n, nh))
    fam = B.GAUSSIAN if gaussian else B.BERNOULLI
    ch = chain if persistent else np.zeros((0, nv))
    res = B.cd(
        *_csr(V), np.arange(n, dtype=np.int64), W, b, c, sigma, fam, np.zeros((0, nh)), 3,
        states.copy(), ch, persistent, gW, gb, gc, h_diff,
    )  # fmt: skip
    for got, ref in zip((gW, gb, gc), want[:3], strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    assert res[0] == pytest.approx(want[3], rel=1e-10)
    assert res[1] == n * nv
    if persistent:
        np.testing.assert_allclose(chain, ref_chain, rtol=1e-12, atol=1e-12)
    # h_diff rows sum to the hidden-bias statistics.
    np.testing.assert_allclose(h_diff.sum(0), gc, rtol=1e-10, atol=1e-10)


def test_inference_kernels_match_numpy_with_hidden_offset_and_row_subset():
    V, W, b, c, sigma = _problem(True, n=30)
    rows = np.array([5, 0, 29, 5, 17], dtype=np.int64)
    off = np.random.default_rng(2).normal(0, 1, (len(rows), W.shape[1]))
    csr = _csr(V)
    x = V[rows]
    act = c + off + (x / sigma) @ W
    np.testing.assert_allclose(
        G.gaussian_hidden_probs(*csr, rows, W, c, sigma, off), _sigmoid(act), rtol=1e-12
    )
    want_f = (((x - b) / sigma) ** 2).sum(1) / 2 - np.logaddexp(0, act).sum(1)
    np.testing.assert_allclose(
        G.gaussian_free_energy(*csr, rows, W, b, c, sigma, off), want_f, rtol=1e-12
    )
    xb = (x != 0).astype(float)
    csr_b = _csr(xb)
    r5 = np.arange(5, dtype=np.int64)
    act_b = c + off + xb @ W
    np.testing.assert_allclose(
        B.bernoulli_free_energy(*csr_b, r5, W, b, c, off),
        -xb @ b - np.logaddexp(0, act_b).sum(1),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        B.bernoulli_free_energy(*csr_b, r5, W, b, c, np.zeros((0, W.shape[1]))),
        E.free_energy("bernoulli", xb, W, b, c),
        rtol=1e-12,
    )


def test_float32_kernels_agree_with_float64():
    V, W, b, c, _ = _problem(False, n=40)
    csr = _csr(V)
    rows = np.arange(40, dtype=np.int64)
    off = np.zeros((0, W.shape[1]))
    f64 = B.bernoulli_free_energy(*csr, rows, W, b, c, off)
    f32 = B.bernoulli_free_energy(
        csr[0], csr[1], csr[2].astype(np.float32), rows, W.astype(np.float32),
        b.astype(np.float32), c.astype(np.float32), off.astype(np.float32),
    )  # fmt: skip
    assert f32.dtype == np.float64
    np.testing.assert_allclose(f32, f64, rtol=1e-5, atol=1e-5)


def _all_cd_runs():
    """Run every CD kernel (binary, Gaussian, masked Gaussian, softmax) once; return outputs."""
    out = []
    n, nv, nh, nl = 70, 11, 5, 4
    rng = np.random.default_rng(9)
    V = (rng.random((n, nv)) < 0.3).astype(np.float32)
    W = rng.normal(0, 0.5, (nv, nh)).astype(np.float32)
    b = rng.normal(0, 1, nv).astype(np.float32)
    c = rng.normal(0, 1, nh).astype(np.float32)
    rows = rng.permutation(n).astype(np.int64)
    off = np.zeros((0, nh), np.float32)
    st = row_states(np.random.default_rng(1), n)
    for fam in (B.BERNOULLI, B.GAUSSIAN):
        g = [np.empty_like(W), np.empty_like(b), np.empty_like(c), np.empty((n, nh), np.float32)]
        chain = np.ones((n, nv), np.float32)
        r = B.cd(*_csr(V), rows, W, b, c, np.ones(nv, np.float32), fam, off, 2, st.copy(),
                 chain, True, *g)  # fmt: skip
        out += [*g, chain, r]
    A = sp.csr_matrix(V)
    g = [np.empty_like(W), np.empty_like(b), np.empty_like(c), np.empty((n, nh), np.float32)]
    chain = A.data.copy()
    r = G.gaussian_masked_cd(
        A.indptr.astype(np.int64), A.indices.astype(np.int32), A.data, rows, W, b, c,
        np.full(nv, 0.8, np.float32), off, 2, st.copy(), chain, True, *g,
    )  # fmt: skip
    out += [*g, chain, r]
    levels = rng.integers(0, nl, A.nnz).astype(np.int8)
    Ws = rng.normal(0, 0.5, (nv, nl, nh)).astype(np.float32)
    bs = rng.normal(0, 1, (nv, nl)).astype(np.float32)
    g = [np.empty_like(Ws), np.empty_like(bs), np.empty_like(c), np.empty((n, nh), np.float32)]
    chain = levels.copy()
    r = S.softmax_cd(A.indptr.astype(np.int64), A.indices.astype(np.int32), levels, rows, Ws, bs,
                     c, off, 2, st.copy(), chain, True, *g)  # fmt: skip
    out += [*g, chain, r]
    out.append(
        B.gibbs(*_csr(V), rows, W, b, c, np.ones(nv, np.float32), B.BERNOULLI, off, 3, st.copy())
    )
    return out


def test_results_identical_for_one_and_two_threads():
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _all_cd_runs()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _all_cd_runs()
    finally:
        numba.set_num_threads(old)
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    # The chains really were sampled (the comparison above is not of untouched arrays).
    assert not np.array_equal(one[4], np.ones_like(one[4]))


def _reference_softmax_cd(levels_rows, W, b, c, k, states, chains, mean_field):
    """Plain-NumPy softmax CD-k/PCD-k drawing the kernel's random numbers.

    Row ``r`` samples its hidden units from its own stream, then takes one 64-bit key per
    Gibbs step; its ``t``-th entry's level draw is output ``t`` of a stream seeded at that key.
    """
    n_levels = W.shape[1]
    gW, gb, gc = np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)
    err = 0.0
    for r, (groups, lv) in enumerate(levels_rows):
        rs = _SplitMix(states[r])
        hpos = _sigmoid(c + W[groups, lv].sum(0))
        cur = lv.copy() if chains is None else chains[r].copy()
        hprob = hpos if chains is None else _sigmoid(c + W[groups, cur].sum(0))
        for step in range(k):
            last = step == k - 1
            hs = np.array([1.0 if rs.uniform() < p else 0.0 for p in hprob])
            keyed = _SplitMix(rs.u64())
            logits = b[groups] + np.einsum("tkj,j->tk", W[groups], hs)
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            if not (last and mean_field and chains is None):
                for t in range(len(groups)):
                    u, acc, pick = keyed.uniform(), 0.0, n_levels - 1
                    for kk in range(n_levels - 1):
                        acc += probs[t, kk]
                        if u < acc:
                            pick = kk
                            break
                    cur[t] = pick
            vneg = probs if (last and mean_field) else np.eye(n_levels)[cur]
            hprob = _sigmoid(c + np.einsum("tk,tkj->j", vneg, W[groups]))
        err += ((probs @ np.arange(n_levels) - lv) ** 2).sum()
        gW[groups, lv] += hpos
        gW[groups] -= vneg[:, :, None] * hprob[None, None, :]
        gb[groups, lv] += 1.0
        gb[groups] -= vneg
        gc += hpos - hprob
        if chains is not None:
            chains[r] = cur
    return gW, gb, gc, err


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("mean_field", [False, True])
@pytest.mark.parametrize(
    ("nl", "nh"),
    # 5 levels take the kernels' unrolled 1-5 star path; the hidden sizes give a vector loop
    # with no full vector (1, 6), full vectors and a tail (17), and whole vectors only (16).
    [(4, 6), (5, 6), (5, 1), (5, 16), (5, 17)],
)
def test_softmax_cd_kernel_matches_numpy_reference(persistent, mean_field, nl, nh):
    """Item-major softmax CD (rows observing different groups) equals the row-by-row reference."""
    rng = np.random.default_rng(5)
    n, ng = 31, 11
    A = sp.random(n, ng, density=0.45, format="csr", random_state=6)
    A.data = rng.integers(0, nl, A.nnz).astype(np.float64) + 1.0
    A.sort_indices()
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    levels = (A.data - 1).astype(np.int8)
    W = rng.normal(0, 0.8, (ng, nl, nh))
    b, c = rng.normal(0, 1, (ng, nl)), rng.normal(0, 1, nh)
    rows = np.array([3, 0, 7, 12, 30, 5, 19, 22, 8], dtype=np.int64)
    # Group sizes 3-8: the five-level logits take four entries, a pair and single entries.
    sizes = np.bincount(A[rows].indices, minlength=ng)
    assert (sizes >= 4).any() and (sizes % 4 >= 2).any() and (sizes % 2 == 1).any()
    states = row_states(rng, len(rows))
    chain = rng.integers(0, nl, A.nnz).astype(np.int8)
    row_data = [(indices[indptr[u] : indptr[u + 1]], levels[indptr[u] : indptr[u + 1]].astype(int))
                for u in rows]  # fmt: skip
    ref_chains = (
        [chain[indptr[u] : indptr[u + 1]].astype(int) for u in rows] if persistent else None
    )
    want = _reference_softmax_cd(row_data, W, b, c, 3, states, ref_chains, mean_field)
    gW, gb, gc = np.empty_like(W), np.empty_like(b), np.empty_like(c)
    mode = S.NEG_MEAN_FIELD if mean_field else S.NEG_SAMPLE
    ch = chain.copy() if persistent else np.zeros(0, np.int8)
    res = S.softmax_cd(
        indptr, indices, levels, rows, W, b, c, np.zeros((0, nh)), 3, states.copy(), ch,
        persistent, gW, gb, gc, np.empty((len(rows), nh)), mode,
    )  # fmt: skip
    for got, ref in zip((gW, gb, gc), want[:3], strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    assert res[0] == pytest.approx(want[3], rel=1e-10)
    if persistent:
        for u, ref in zip(rows, ref_chains, strict=True):
            np.testing.assert_array_equal(ch[indptr[u] : indptr[u + 1]], ref)
        assert not np.array_equal(ch, chain)  # the chains moved


def test_vectorised_float32_exp_is_accurate():
    from rbmrec.engine._math import exp_nonpositive_f32

    x = -np.linspace(0.0, 100.0, 200_001).astype(np.float32)
    x[:3] = [0.0, -1e-30, -0.5]
    got = x.copy()
    exp_nonpositive_f32(got, np.empty(len(got), np.int32))
    want = np.exp(np.maximum(x.astype(np.float64), -87.0))  # documented floor at -87
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want) / want) < 3e-7
    assert got[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inlined_row_exp_matches_the_vectorised_one(dtype):
    """exp_nonpositive_row (inlined into the softmax kernel, with its reassociating
    flags) keeps the accuracy of exp_nonpositive and touches only x[t, :n]."""
    from numba import njit

    from rbmrec.engine._math import exp_nonpositive_row

    @njit(fastmath={"reassoc", "contract", "nsz"})
    def rows_exp(x, bits, n):
        scale = bits.view(np.float32)
        for t in range(x.shape[0]):
            exp_nonpositive_row(x, bits, scale, t, n)

    x = -np.linspace(0.0, 100.0, 3 * 40_001).astype(dtype).reshape(3, -1)
    x[0, :3] = [0.0, -1e-30, -0.5]
    got = x.copy()
    n = x.shape[1] - 1  # the last column stays as it was
    rows_exp(got, np.empty(x.shape, np.int32), n)
    want = np.exp(np.maximum(x[:, :n].astype(np.float64), -87.0 if dtype == np.float32 else -1e9))
    assert got.dtype == dtype
    assert np.max(np.abs(got[:, :n] - want) / want) < (3e-7 if dtype == np.float32 else 1e-15)
    assert got[0, 0] == 1.0
    np.testing.assert_array_equal(got[:, n], x[:, n])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_level_scores_match_numpy(dtype):
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (9, 40, 5)).astype(dtype)
    logits[0, 0] = [300.0, -300.0, 0.0, 1.0, 2.0]  # far outside exp's range before the shift
    bias = rng.normal(0, 1, (40, 5)).astype(dtype)
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=dtype)
    out = np.empty((9, 40), dtype=dtype)
    # The kernel takes level-major logits (n_a, n_levels, n_c) and biases (n_levels, n_c).
    S.softmax_level_scores(
        np.ascontiguousarray(logits.transpose(0, 2, 1)), np.ascontiguousarray(bias.T), weights, out
    )
    z = (logits + bias).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    want = (p / p.sum(-1, keepdims=True)) @ weights.astype(np.float64)
    np.testing.assert_allclose(out, want, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("nl", [4, 5])
def test_visible_step_ignores_stale_scratch_and_empty_groups(nl):
    """The visible step's scratch may hold anything (it is np.empty): groups the batch does
    not observe must not read it, and the statistics must equal those from clean scratch."""
    rng = np.random.default_rng(8)
    n, ng, nh = 12, 9, 5
    A = sp.random(n, ng, density=0.4, format="csr", random_state=9)
    A.data = rng.integers(0, nl, A.nnz).astype(np.float64) + 1.0
    A.sort_indices()
    A.data[np.isin(A.indices, [0, 4])] = 0.0  # two groups nobody observes, one of them first
    A.eliminate_zeros()
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    levels = (A.data - 1).astype(np.int8)
    rows = np.arange(n, dtype=np.int64)
    off = SG._batch_offsets(indptr, rows)
    gptr, ge, lv = SG._group_entries(indptr, indices, levels, rows, off, ng)
    assert gptr[1] == gptr[0] and gptr[5] == gptr[4]
    tg = SG._task_groups(gptr)
    W = rng.normal(0, 0.5, (ng, nl, nh)).astype(np.float32)
    b = rng.normal(0, 0.5, (ng, nl)).astype(np.float32)
    hs = (rng.random((n, nh)) < 0.5).astype(np.float32)
    keys = rng.integers(0, 2**63, n).astype(np.uint64)
    most = int(np.diff(gptr).max())
    results = []
    for fill in (0.0, np.nan):
        acc = np.full((SG._N_TASKS, n, nh), fill, np.float32)
        probs = np.full((off[-1], nl), fill, np.float32)
        gb = np.full((ng, nl), fill, np.float32)
        xbuf = np.full((SG._N_TASKS, most * nl), fill, np.float32)
        bits = np.zeros(xbuf.shape, np.int32)
        sqe = np.zeros(off[-1])
        SC._visible_step(W, b, hs, gptr, ge, off, keys, lv, lv.copy(), probs, False, sqe,
                         True, True, False, tg, acc, gb, xbuf, bits)  # fmt: skip
        results.append((acc.copy(), probs.copy(), gb.copy(), sqe.copy()))
    for clean, stale in zip(*results, strict=True):
        assert np.all(np.isfinite(stale))
        np.testing.assert_array_equal(stale, clean)
    assert np.all(results[0][2][[0, 4]] == 0.0)  # unobserved groups: zero bias statistics
