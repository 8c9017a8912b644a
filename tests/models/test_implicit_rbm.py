"""Tests of ImplicitRBM and its kernels (rbmrec.engine.sparse_binary)."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from contract import RecommenderContract

import rbmrec
from rbmrec.engine._random import row_states
from rbmrec.engine.sparse_binary import (
    add_positive_stats,
    batch_item_major,
    csr_hidden_probs,
    csr_hidden_probs_dropout,
    mean_field_negative,
    sample_bernoulli_rows,
    softmax_affine_rows,
    softmax_free_energy,
    softmax_mean_field_negative,
)
from rbmrec.engine.topn import topn_select
from rbmrec.errors import DataError, NotFittedError
from rbmrec.models.implicit import ImplicitRBM

PAD = -np.finfo(np.float32).max


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def planted(seed: int = 0, n_groups: int = 3, users_per_group: int = 40, items_per_group: int = 20):
    """Users in ``n_groups`` groups; a group's users consume ~60 % of its items, plus noise.

    Returns (train, held_out, group_of_user, items_of_group) where held_out holds one third
    of every user's in-group items.
    """
    rng = np.random.default_rng(seed)
    n_items = n_groups * items_per_group
    train_rows, train_cols, test_rows, test_cols = [], [], [], []
    group = np.repeat(np.arange(n_groups), users_per_group)
    for u, g in enumerate(group):
        own = np.arange(g * items_per_group, (g + 1) * items_per_group)
        chosen = rng.choice(own, size=12, replace=False)
        held = chosen[:4]
        others = np.setdiff1d(np.arange(n_items), own)
        noise = rng.choice(others, size=1, replace=False)
        for i in np.concatenate([chosen[4:], noise]):
            train_rows.append(u), train_cols.append(i)
        for i in held:
            test_rows.append(u), test_cols.append(i)
    shape = (group.size, n_items)
    train = sp.csr_matrix(
        (np.full(len(train_rows), 5.0, np.float32), (train_rows, train_cols)), shape=shape
    )
    test = sp.csr_matrix(
        (np.full(len(test_rows), 5.0, np.float32), (test_rows, test_cols)), shape=shape
    )
    return train, test, group, items_per_group


#: small and fast, otherwise the model's defaults
FAST_DEFAULTS = dict(n_hidden=12, n_epochs=40, batch_size=10, learning_rate=0.05, random_state=0)
#: the plain Bernoulli RBM (every score-shaping option off) that most tests examine
BERNOULLI = dict(
    visible="bernoulli", lr_decay=1.0, popularity_weight=0.0, length_norm=0.0, n_models=1
)
FAST = {**FAST_DEFAULTS, **BERNOULLI}


# -- contract -----------------------------------------------------------------------------


class TestImplicitRBMContract(RecommenderContract):
    def make_model(self):
        return ImplicitRBM(
            n_hidden=8, n_epochs=20, batch_size=8, learning_rate=0.05, random_state=3, **BERNOULLI
        )


class TestImplicitRBMDefaultsContract(RecommenderContract):
    """The defaults: replicated softmax, length_norm, popularity_weight, lr_decay."""

    def make_model(self):
        return ImplicitRBM(
            n_hidden=8, n_epochs=20, batch_size=8, learning_rate=0.05, random_state=3
        )


# -- kernels against numpy references ----------------------------------------------------


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    X = sp.random(30, 17, density=0.3, format="csr", random_state=2, dtype=np.float32)
    X.data[:] = rng.integers(1, 6, X.nnz)
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int64)
    W = rng.normal(0, 0.5, (17, 5)).astype(np.float32)
    b = rng.normal(0, 0.5, 17).astype(np.float32)
    c = rng.normal(0, 0.5, 5).astype(np.float32)
    return X, W, b, c


def test_csr_hidden_probs_matches_numpy(small):
    X, W, _b, c = small
    rows = np.array([3, 0, 29, 3, 7], dtype=np.int64)
    V = (X[rows].toarray() > 0).astype(np.float64)
    ref = _sig(V @ W.astype(np.float64) + c)
    got = csr_hidden_probs(X.indptr, X.indices, rows, W, c, np.ones(rows.size))
    assert got.dtype == np.float32 and got.shape == (5, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_positive_stats_match_numpy(small):
    X, _W, _b, _c = small
    rows = np.array([5, 1, 2, 28, 11, 5], dtype=np.int64)
    h = np.random.default_rng(0).random((rows.size, 5)).astype(np.float32)
    col_ptr, batch_row, w = batch_item_major(X.indptr, X.indices, X.data, rows, 17)
    assert col_ptr[-1] == X[rows].nnz
    gW = np.ones((17, 5), np.float32)
    gb = np.ones(17, np.float32)
    add_positive_stats(col_ptr, batch_row, w, h, gW, gb)
    D = X[rows].toarray().astype(np.float64)
    np.testing.assert_allclose(gW, 1 + D.T @ h, rtol=1e-5)
    np.testing.assert_allclose(gb, 1 + D.sum(0), rtol=1e-6)


def test_mean_field_negative_matches_numpy(small):
    _X, W, b, c = small
    hs = (np.random.default_rng(4).random((6, 5)) < 0.5).astype(np.float32)
    gW = np.zeros_like(W)
    gb = np.zeros_like(b)
    gc = np.zeros_like(c)
    states = row_states(np.random.default_rng(0), 6)
    v = mean_field_negative(hs, W, b, c, 1, states, gW, gb, gc)
    v_ref = _sig(hs @ W.T + b)
    h_ref = _sig(v_ref @ W + c)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5)
    np.testing.assert_allclose(gW, -v_ref.T @ h_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb, -v_ref.sum(0), rtol=1e-5)
    np.testing.assert_allclose(gc, -h_ref.sum(0), rtol=1e-5)


def test_sample_bernoulli_rows_statistics_and_threads():
    p = np.tile(np.array([0.1, 0.5, 0.9], np.float64), (400, 1))
    states = row_states(np.random.default_rng(7), 400)
    s1 = sample_bernoulli_rows(p, states.copy())
    assert set(np.unique(s1)) <= {0.0, 1.0}
    # 400 draws per column: standard error <= 0.025, so 4 SE = 0.1
    np.testing.assert_allclose(s1.mean(0), [0.1, 0.5, 0.9], atol=0.1)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = sample_bernoulli_rows(p, states.copy())
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = sample_bernoulli_rows(p, states.copy())
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, s1)


def _topn_reference(scores, excl_rows, excluded, n):
    out_ids, out_sc = [], []
    for r in range(scores.shape[0]):
        cand = [i for i in range(scores.shape[1]) if not excluded[i] and i not in excl_rows[r]]
        cand.sort(key=lambda i: (-scores[r, i], i))
        out_ids.append(cand[:n])
        out_sc.append([scores[r, i] for i in cand[:n]])
    return out_ids, out_sc


@pytest.mark.parametrize("n", [0, 1, 4, 30])
def test_topn_select_matches_reference(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 6, (9, 25)).astype(np.float32)  # many ties
    excl = sp.random(9, 25, density=0.3, format="csr", random_state=n)
    excluded = np.zeros(25, np.bool_)
    excluded[[2, 11]] = True
    ids, best, counts = topn_select(scores, excl.indptr, excl.indices, excluded, n)
    excl_rows = [set(excl[r].indices.tolist()) for r in range(9)]
    ref_ids, ref_sc = _topn_reference(scores, excl_rows, excluded, n)
    assert ids.shape == (9, n) and ids.dtype == np.int32 and best.dtype == np.float32
    for r in range(9):
        k = len(ref_ids[r])
        assert counts[r] == k
        assert ids[r, :k].tolist() == ref_ids[r]
        np.testing.assert_array_equal(best[r, :k], ref_sc[r])
        assert np.all(ids[r, k:] == -1) and np.all(best[r, k:] == PAD)


# -- replicated softmax: math against brute-force enumeration ------------------------------


@pytest.fixture(scope="module")
def tiny_rs():
    """A replicated-softmax model with 5 items and 3 hidden units, and its full joint.

    A user's ``D = 3`` items are an ordered sequence ``x`` of draws; the energy is
    ``E(x, h) = -sum_k b[x_k] - D c.h - sum_k W[x_k] . h`` (Salakhutdinov & Hinton 2009).
    Returns the parameters, every sequence, every hidden state and ``-E`` on that grid.
    """
    rng = np.random.default_rng(11)
    K, H, D = 5, 3, 3
    W = rng.normal(0, 0.8, (K, H))
    b = rng.normal(0, 0.8, K)
    c = rng.normal(0, 0.5, H)
    seqs = np.array(list(itertools.product(range(K), repeat=D)))  # (K^D, D)
    hs = np.array(list(itertools.product((0.0, 1.0), repeat=H)))  # (2^H, H)
    neg_e = (
        b[seqs].sum(1)[:, None] + D * (hs @ c)[None, :] + np.einsum("sdj,hj->sh", W[seqs], hs)
    )  # (K^D, 2^H)
    return W, b, c, seqs, hs, neg_e


def _csr_of(rows_items, n_items):
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows_items])]).astype(np.int64)
    indices = np.concatenate([np.sort(r) for r in rows_items]).astype(np.int32)
    return indptr, indices


def test_softmax_hidden_probs_and_free_energy_match_enumeration(tiny_rs):
    W, b, c, seqs, hs, neg_e = tiny_rs
    distinct = [x for x in seqs if len(set(x.tolist())) == x.size]  # binary count vectors
    sets = [np.array(x) for x in distinct[::7]]
    indptr, indices = _csr_of(sets, W.shape[0])
    rows = np.arange(len(sets), dtype=np.int64)
    ones = np.ones(len(sets))
    D = np.full(len(sets), float(seqs.shape[1]))
    got_h = csr_hidden_probs(indptr, indices, rows, W, c, ones, D)
    got_f = softmax_free_energy(indptr, indices, rows, W, b, c, ones)
    index = {tuple(x): n for n, x in enumerate(seqs.tolist())}
    for r, x in enumerate(sets):
        # the joint of any ordering of the set, conditioned on it
        row = neg_e[index[tuple(x.tolist())]]
        p_h = np.exp(row - row.max())
        p_h /= p_h.sum()
        np.testing.assert_allclose(got_h[r], p_h @ hs, rtol=1e-10, atol=1e-12)
        # F(v) = -log sum_h exp(-E(v, h))
        assert got_f[r] == pytest.approx(-np.log(np.exp(row).sum()), rel=1e-10, abs=1e-10)
    # and p(x) ∝ exp(-F(v)): log p(x) + F(v(x)) is the same constant for every x
    log_px = np.log(np.exp(neg_e).sum(1))  # unnormalised
    consts = [log_px[index[tuple(x.tolist())]] + got_f[r] for r, x in enumerate(sets)]
    np.testing.assert_allclose(consts, consts[0], rtol=0, atol=1e-9)
    # the bias scale matters: without D the probabilities differ
    plain = csr_hidden_probs(indptr, indices, rows, W, c, ones)
    assert not np.allclose(plain, got_h)


def test_softmax_visible_conditional_matches_enumeration(tiny_rs):
    W, b, _c, seqs, hs, neg_e = tiny_rs
    K, D = W.shape[0], seqs.shape[1]
    counts = np.stack([np.bincount(x, minlength=K) for x in seqs]).astype(np.float64)
    logits = hs @ W.T  # (2^H, K), without the bias
    got = logits.copy()
    softmax_affine_rows(got, b, np.full(hs.shape[0], float(D)))
    for m in range(hs.shape[0]):
        p_x = np.exp(neg_e[:, m] - neg_e[:, m].max())
        p_x /= p_x.sum()
        # every draw is one softmax over the items, independently of the others
        for k in range(D):
            first = np.bincount(seqs[:, k], weights=p_x, minlength=K)
            soft = np.exp(b + logits[m])
            np.testing.assert_allclose(first, soft / soft.sum(), rtol=1e-10)
        # the mean-field reconstruction is the expected count vector, D times the softmax
        np.testing.assert_allclose(got[m], p_x @ counts, rtol=1e-10, atol=1e-12)
    # float32 logits: rows still sum to D
    small = (np.random.default_rng(0).normal(0, 30, (4, K))).astype(np.float32)
    softmax_affine_rows(small, b.astype(np.float32), np.array([1.0, 2.0, 7.0, 0.0]))
    assert np.all(np.isfinite(small))
    np.testing.assert_allclose(small.sum(1), [1, 2, 7, 0], rtol=1e-5)


@pytest.mark.parametrize("with_scale", [False, True])
def test_softmax_mean_field_negative_matches_formula(small, with_scale):
    _X, W, b, c = small
    rng = np.random.default_rng(5)
    hs = (rng.random((6, 5)) < 0.5).astype(np.float32)
    D = np.array([1.0, 4.0, 9.0, 2.0, 17.0, 3.0])
    s = rng.uniform(0.5, 2.0, 6) if with_scale else None
    sv = np.ones(6) if s is None else s
    gW = np.zeros_like(W)
    gb = np.zeros_like(b)
    gc = np.zeros_like(c)
    states = row_states(np.random.default_rng(0), 6)
    v = softmax_mean_field_negative(hs, W, b, c, 1, states, gW, gb, gc, D, s)
    W64, b64, c64 = W.astype(np.float64), b.astype(np.float64), c.astype(np.float64)
    logit = sv[:, None] * (hs @ W64.T) + b64
    p = np.exp(logit - logit.max(1, keepdims=True))
    v_ref = D[:, None] * p / p.sum(1, keepdims=True)
    h_ref = _sig(D[:, None] * c64 + sv[:, None] * (v_ref @ W64))
    np.testing.assert_allclose(v, v_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v.sum(1), D, rtol=1e-5)
    np.testing.assert_allclose(gW, -v_ref.T @ (sv[:, None] * h_ref), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, -v_ref.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gc, -(D[:, None] * h_ref).sum(0), rtol=1e-5)


def test_softmax_model_scores_are_the_logits(planted_data):
    train, _, _, _ = planted_data
    model = ImplicitRBM(**{**FAST, "n_epochs": 3, "visible": "softmax"}).fit(train)
    X = model.user_items_[:7]
    V = X.toarray() > 0
    D = V.sum(1, keepdims=True)
    h = _sig(D * model.hidden_bias_ + V @ model.weights_)
    np.testing.assert_allclose(model.hidden_probs(X), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        model.score_items(X), h @ model.weights_.T + model.visible_bias_, rtol=1e-5, atol=1e-5
    )
    # the visible biases start at the log of the items' share of all interactions
    init = ImplicitRBM(
        n_hidden=4, visible="softmax", n_epochs=1, learning_rate=1e-8, random_state=0
    ).fit(train)
    counts = np.asarray((train > 0).sum(0)).ravel()
    ref = np.log((counts + 1) / (counts.sum() + counts.size))
    np.testing.assert_allclose(init.visible_bias_, ref, atol=1e-5)


# -- behaviour on planted data -----------------------------------------------------------


@pytest.fixture(scope="module")
def planted_data():
    return planted()


@pytest.fixture(scope="module")
def planted_model(planted_data):
    train, _test, _, _ = planted_data
    return ImplicitRBM(**FAST).fit(train)


def _in_group_precision(model, train, group, per_group, n=5):
    ids, _ = model.recommend(np.arange(train.shape[0]), train, N=n)
    return float(np.mean(ids // per_group == group[:, None]))


def _held_out_recall(model, train, test, n=5):
    ids, _ = model.recommend(np.arange(train.shape[0]), train, N=n)
    hits = [np.isin(ids[u], test[u].indices).sum() / test[u].nnz for u in range(train.shape[0])]
    return float(np.mean(hits))


def test_planted_groups_recovered(planted_model, planted_data):
    train, test, group, per_group = planted_data
    # Chance level is 1/3 in group; a popularity ranking gets about 1/3 too.
    assert _in_group_precision(planted_model, train, group, per_group) > 0.95
    # Held-out: each user has 12 unseen in-group items, 4 of them held out, and ~48 unseen
    # out-of-group items. Items within a group are exchangeable, so the best possible top-5
    # (any 5 in-group items) expects recall 5/12 = 0.42; a random top-5 over all unseen
    # items expects 5/60 = 0.08.
    assert _held_out_recall(planted_model, train, test) > 0.35


def test_planted_groups_recovered_without_input_dropout(planted_data):
    train, test, group, per_group = planted_data
    model = ImplicitRBM(**{**FAST, "input_dropout": 0.0}).fit(train)
    assert _in_group_precision(model, train, group, per_group) > 0.95
    assert _held_out_recall(model, train, test) > 0.35


def test_dropout_hidden_probs_thin_the_input(small):
    X, W, _b, c = small
    rows = np.arange(30, dtype=np.int64)
    states = row_states(np.random.default_rng(3), 30)
    # keep = 1 reproduces the plain kernel exactly
    full = csr_hidden_probs(X.indptr, X.indices, rows, W, c, np.ones(rows.size))
    same = csr_hidden_probs_dropout(
        X.indptr, X.indices, rows, W, c, np.ones(rows.size), 1.0, states.copy()
    )
    np.testing.assert_array_equal(same, full)
    # keep = 0.5: each row's pre-activation is c + 2 * (sum of a subset of its W rows)
    got = csr_hidden_probs_dropout(
        X.indptr, X.indices, rows, W, c, np.ones(rows.size), 0.5, states.copy()
    )
    pre = np.log(got / (1 - got)) - c
    for r in (0, 7, 19):
        items = X[r].indices
        Wr = 2.0 * W[items].astype(np.float64)
        best = min(
            np.abs(pre[r] - Wr[list(sub)].sum(0)).max() if sub else np.abs(pre[r]).max()
            for k in range(len(items) + 1)
            for sub in itertools.combinations(range(len(items)), k)
        )
        assert best < 1e-3
    # and it does not depend on the thread count
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = csr_hidden_probs_dropout(
            X.indptr, X.indices, rows, W, c, np.ones(rows.size), 0.5, states.copy()
        )
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, got)


def test_planted_groups_recovered_with_softmax_visibles(planted_data):
    train, test, group, per_group = planted_data
    model = ImplicitRBM(**{**FAST, "visible": "softmax"}).fit(train)
    assert _in_group_precision(model, train, group, per_group) > 0.95
    assert _held_out_recall(model, train, test) > 0.35


def test_planted_groups_recovered_with_defaults(planted_data):
    train, test, group, per_group = planted_data
    model = ImplicitRBM(**FAST_DEFAULTS).fit(train)
    assert model.visible == "softmax" and model.length_norm > 0 and model.popularity_weight > 0
    assert model.weights_.shape[1] == model.n_models * model.n_hidden
    assert _in_group_precision(model, train, group, per_group) > 0.95
    assert _held_out_recall(model, train, test) > 0.35


def test_planted_groups_recovered_with_pcd(planted_data):
    train, _test, group, per_group = planted_data
    model = ImplicitRBM(**{**FAST, "negative": "pcd", "n_chains": 30}).fit(train)
    assert _in_group_precision(model, train, group, per_group) > 0.9


def test_similar_items_stay_in_group(planted_model, planted_data):
    _, _, _, per_group = planted_data
    ids, scores = planted_model.similar_items(3, N=6)
    assert ids[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(ids // per_group == 0)
    assert np.all(np.diff(scores) <= 0)
    b_ids, _ = planted_model.similar_items(np.array([3, 45]), N=6)
    np.testing.assert_array_equal(b_ids[0], ids)
    assert np.all(b_ids[1] // per_group == 2)
    f_ids, _ = planted_model.similar_items(3, N=6, filter_items=[3])
    assert 3 not in f_ids.tolist()


def test_fold_in_new_user(planted_model, planted_data):
    train, _, _, per_group = planted_data
    # recalculate_user on the training row reproduces the stored user exactly
    a = planted_model.recommend(5, train[5], N=5)
    b = planted_model.recommend(5, train[5], N=5, recalculate_user=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    # a brand-new user (index beyond the fitted ones) who likes group-1 items
    new = sp.csr_matrix((np.ones(5), ([0] * 5, [20, 22, 25, 31, 38])), shape=(1, 60))
    ids, _ = planted_model.recommend(train.shape[0] + 3, new, N=5, recalculate_user=True)
    assert np.all(ids // per_group == 1)
    assert set(ids.tolist()).isdisjoint(new.indices.tolist())
    with pytest.raises(IndexError):
        planted_model.recommend(train.shape[0] + 3, new, N=5)


def test_items_restriction(planted_model, planted_data):
    train, _, _, _ = planted_data
    cand = np.array([50, 1, 7, 33])
    ids, _scores = planted_model.recommend(0, train[0], N=10, items=cand)
    assert set(ids.tolist()) <= set(cand.tolist()) - set(train[0].indices.tolist())
    full, _full_sc = planted_model.recommend(0, train[0], N=60, filter_already_liked_items=True)
    order = [i for i in full.tolist() if i in set(ids.tolist())]
    assert ids.tolist() == order


def test_validation_history_and_early_stopping(planted_data):
    train, test, _, _ = planted_data
    model = ImplicitRBM(**{**FAST, "n_epochs": 30, "patience": 3}).fit(train, validation=test)
    nd = [r["valid_ndcg"] for r in model.history_]
    assert all(0.0 <= x <= 1.0 for x in nd)
    assert max(nd) > 0.3
    # the kept parameters are the best epoch's: recomputing validation NDCG gives its value
    got = ImplicitRBM._ndcg_at_10(
        model.user_items_,
        model_valid(test),
        model.weights_,
        model.visible_bias_,
        model.hidden_bias_,
    )
    assert got == pytest.approx(max(nd), abs=1e-12)
    assert "recon_error" in model.history_[0]


def model_valid(test):
    v = sp.csr_matrix(test, dtype=np.float32)
    v.indices = v.indices.astype(np.int32)
    v.indptr = v.indptr.astype(np.int64)
    return v


def test_same_weights_for_one_and_two_threads(planted_data):
    train, _, _, _ = planted_data
    kw = {**FAST, "n_epochs": 3}
    a = ImplicitRBM(**kw, num_threads=1).fit(train)
    b = ImplicitRBM(**kw, num_threads=2).fit(train)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.visible_bias_, b.visible_bias_)
    np.testing.assert_array_equal(a.hidden_bias_, b.hidden_bias_)


def test_softmax_same_weights_for_one_and_two_threads(planted_data):
    train, _, _, _ = planted_data
    kw = {**FAST, "n_epochs": 3, "visible": "softmax", "length_norm": 0.5}
    a = ImplicitRBM(**kw, num_threads=1).fit(train)
    b = ImplicitRBM(**kw, num_threads=2).fit(train)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.hidden_bias_, b.hidden_bias_)


def test_confidence_weights_change_the_fit(planted_data):
    train, _, _, _ = planted_data
    counts = train.copy()
    counts.data = np.random.default_rng(0).integers(1, 50, counts.nnz).astype(np.float32)
    kw = {**FAST, "n_epochs": 2}
    plain = ImplicitRBM(**kw).fit(counts)
    binary_same = ImplicitRBM(**kw).fit(train)
    weighted = ImplicitRBM(**kw, confidence=1.0).fit(counts)
    # without confidence only the pattern matters, not the values
    np.testing.assert_array_equal(plain.weights_, binary_same.weights_)
    assert not np.allclose(plain.weights_, weighted.weights_)


def test_visible_bias_starts_at_popularity_log_odds(planted_data):
    train, _, _, _ = planted_data
    model = ImplicitRBM(
        n_hidden=4, n_epochs=1, learning_rate=1e-8, random_state=0, **BERNOULLI
    ).fit(train)
    counts = np.asarray((train > 0).sum(0)).ravel()
    pop = (counts + 1) / (train.shape[0] + 2)
    np.testing.assert_allclose(model.visible_bias_, np.log(pop / (1 - pop)), atol=1e-5)


def test_lr_decay_shrinks_the_learning_rate_each_epoch(planted_data):
    train, _, _, _ = planted_data
    model = ImplicitRBM(**{**FAST, "n_epochs": 3, "lr_decay": 0.5}).fit(train)
    rates = [r["learning_rate"] for r in model.history_]
    assert rates == pytest.approx([0.05, 0.025, 0.0125])


def test_popularity_weight_scales_the_visible_bias_in_scores(planted_model, planted_data):
    train, _, _, _ = planted_data
    import copy

    boosted = copy.copy(planted_model)
    boosted.popularity_weight = 0.5
    h = planted_model.hidden_probs(train[:5])
    expected = h @ planted_model.weights_.T + 1.5 * planted_model.visible_bias_
    np.testing.assert_allclose(boosted.score_items(train[:5]), expected, rtol=1e-5, atol=1e-5)
    # a huge weight turns the lists into the visible-bias (popularity-like) order
    boosted.popularity_weight = 1e6
    ids, _ = boosted.recommend(0, train[0], N=5)
    bias = planted_model.visible_bias_
    assert np.all(np.diff(bias[ids]) <= 1e-5)
    rest = np.setdiff1d(np.flatnonzero(train[0].toarray().ravel() == 0), ids)
    assert bias[ids].min() >= bias[rest].max() - 1e-5


def test_n_models_averages_member_scores(planted_data):
    train, _, _, _ = planted_data
    kw = {**FAST, "n_epochs": 3, "popularity_weight": 0.3, "length_norm": 0.5}
    single = ImplicitRBM(**kw).fit(train)
    pair = ImplicitRBM(**{**kw, "n_models": 2}).fit(train)
    H = FAST["n_hidden"]
    assert pair.weights_.shape == (train.shape[1], 2 * H)
    # the first member is the single model (same random stream)
    np.testing.assert_array_equal(pair.weights_[:, :H], single.weights_)
    second = ImplicitRBM(**kw)
    second.fit(train)
    second.weights_ = pair.weights_[:, H:].copy()
    second.hidden_bias_ = pair.hidden_bias_[H:].copy()
    second.visible_bias_ = 2 * pair.visible_bias_ - single.visible_bias_
    mean = (single.score_items(train) + second.score_items(train)) / 2
    np.testing.assert_allclose(pair.score_items(train), mean, rtol=1e-4, atol=1e-4)
    assert {r["model"] for r in pair.history_} == {0.0, 1.0}


def test_length_norm_scales_the_input_of_heavy_users(planted_data):
    train, _, _, _ = planted_data
    # planted users all have 9 items: thin every other user to 3 so the lengths differ
    train = sp.lil_matrix(train)
    for u in range(0, train.shape[0], 2):
        for i in train.rows[u][3:]:
            train[u, i] = 0
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    model = ImplicitRBM(**{**FAST, "n_epochs": 2, "length_norm": 1.0}).fit(train)
    # with length_norm=1 a user's summed input is scaled by s = (n_u / mean n) ** -1
    X = model.user_items_
    n = np.diff(X.indptr)
    assert model.length_ref_ == pytest.approx(n.mean())
    u = 0
    v = (X[u] > 0).astype(np.float32)
    pre = v @ model.weights_ * (n[u] / n.mean()) ** -1.0 + model.hidden_bias_
    np.testing.assert_allclose(model.hidden_probs(train[u]), _sig(pre), rtol=1e-5, atol=1e-6)
    path_model = ImplicitRBM(**{**FAST, "n_epochs": 2}).fit(train)
    assert not np.allclose(path_model.hidden_probs(train[u]), model.hidden_probs(train[u]))


def test_save_load_keeps_schedule_and_params(planted_model, tmp_path):
    path = planted_model.save(tmp_path / "m")
    loaded = rbmrec.load(path)
    assert loaded.get_params() == planted_model.get_params()
    np.testing.assert_array_equal(loaded.weights_, planted_model.weights_)


def test_softmax_model_save_load(planted_data, tmp_path):
    train, _, _, _ = planted_data
    model = ImplicitRBM(**{**FAST, "n_epochs": 2, "visible": "softmax"}).fit(train)
    loaded = rbmrec.load(model.save(tmp_path / "rs"))
    assert loaded.visible == "softmax"
    np.testing.assert_array_equal(loaded.score_items(train), model.score_items(train))


def test_files_without_visible_load_as_bernoulli(planted_model, planted_data, tmp_path):
    import json

    train, _, _, _ = planted_data
    path = planted_model.save(tmp_path / "old")
    # rewrite the metadata as a file from before the `visible` parameter existed
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = "__meta__"
    doc = json.loads(arrays[key].tobytes().decode("utf-8"))
    del doc["meta"]["params"]["visible"]
    arrays[key] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    old = tmp_path / "older.npz"
    np.savez(old, **arrays)
    loaded = rbmrec.load(old)
    assert loaded.visible == "bernoulli"
    np.testing.assert_array_equal(loaded.score_items(train), planted_model.score_items(train))


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"n_hidden": 0}, ValueError),
        ({"n_hidden": 2.5}, TypeError),
        ({"n_epochs": 0}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"batch_size": 2.5}, TypeError),
        ({"learning_rate": -1.0}, ValueError),
        ({"momentum": 1.0}, ValueError),
        ({"weight_decay": -0.1}, ValueError),
        ({"cd_steps": 0}, ValueError),
        ({"negative": "sampled"}, ValueError),
        ({"visible": "gaussian"}, ValueError),
        ({"visible": 1}, TypeError),
        ({"visible": "softmax", "negative": "pcd"}, ValueError),
        ({"n_chains": 0}, ValueError),
        ({"confidence": -1.0}, ValueError),
        ({"init_std": 0.0}, ValueError),
        ({"input_dropout": 1.0}, ValueError),
        ({"input_dropout": -0.1}, ValueError),
        ({"lr_decay": 0.0}, ValueError),
        ({"lr_decay": 1.5}, ValueError),
        ({"lr_decay": "fast"}, TypeError),
        ({"popularity_weight": -1.5}, ValueError),
        ({"popularity_weight": float("nan")}, ValueError),
        ({"popularity_weight": "high"}, TypeError),
        ({"length_norm": -0.5}, ValueError),
        ({"length_norm": 1.5}, ValueError),
        ({"length_norm": 0.5, "negative": "pcd"}, ValueError),
        ({"n_models": 0}, ValueError),
        ({"n_models": 1.5}, TypeError),
        ({"sample_hidden": "yes"}, TypeError),
        ({"patience": 0}, ValueError),
        ({"num_threads": -1}, ValueError),
        ({"random_state": "seed"}, TypeError),
    ],
)
def test_bad_parameters_raise(kwargs, exc, planted_data):
    train, test, _, _ = planted_data
    with pytest.raises(exc):
        ImplicitRBM(**{**FAST, "n_epochs": 1, **kwargs}).fit(train, validation=test)


def test_bad_fit_input_raises(planted_data):
    train, _, _, _ = planted_data
    model = ImplicitRBM(**{**FAST, "n_epochs": 1})
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        model.fit(train.toarray())
    with pytest.raises(DataError):
        model.fit(sp.csr_matrix((4, 5), dtype=np.float32))
    bad = train.copy()
    bad.data[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        model.fit(bad)
    with pytest.raises(ValueError, match="columns"):
        model.fit(train, validation=train[:, :10])
    with pytest.raises(ValueError, match="patience"):
        ImplicitRBM(**{**FAST, "n_epochs": 1, "patience": 2}).fit(train)


def test_unfitted_similar_items_raises():
    with pytest.raises(NotFittedError):
        ImplicitRBM().similar_items(0)


def test_bad_recommend_arguments(planted_model, planted_data):
    train, _, _, _ = planted_data
    with pytest.raises(IndexError):
        planted_model.recommend(0, train[0], filter_items=[1000])
    with pytest.raises(ValueError, match="items and filter_items"):
        planted_model.recommend(0, train[0], filter_items=[1], items=[2])
    with pytest.raises(ValueError):
        planted_model.recommend(0, train[0], N=-1)
    with pytest.raises(TypeError):
        planted_model.recommend(0, train[0].toarray())
    with pytest.raises(IndexError):
        planted_model.similar_items(1000)


# -- real data ---------------------------------------------------------------------------


@pytest.mark.realdata
def test_ml100k_u1_beats_popularity(ml100k_dir):
    from rbmrec.data import movielens_folds
    from rbmrec.evaluation.baselines import Popularity
    from rbmrec.evaluation.metrics import ranking_metrics, relevant_items

    split = movielens_folds(ml100k_dir, folds=("u1",))[0]
    rel = relevant_items(split.test, 4.0)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    model = ImplicitRBM(n_hidden=100, n_epochs=15, random_state=0).fit(split.train)
    ids, _ = model.recommend(users, split.train[users], N=10)
    rbm = ranking_metrics(ids, rel[users], K=10)
    pop = Popularity().fit(split.train)
    p_ids, _ = pop.recommend(users, split.train[users], N=10)
    base = ranking_metrics(p_ids, rel[users], K=10)
    # Popularity is a strong top-N baseline on ML-100K; the RBM must clearly beat it.
    assert rbm["ndcg"] > 1.1 * base["ndcg"]
    assert rbm["coverage"] > base["coverage"]


def test_default_batch_gives_every_epoch_fifty_updates(planted_data):
    train, _, _, _ = planted_data
    n_users = train.shape[0]
    quick = {**FAST, "n_epochs": 1}
    quick.pop("batch_size", None)
    m = ImplicitRBM(**quick).fit(train)
    assert m.batch_size is None
    assert m.batch_size_ == min(64, -(-n_users // 50))
    assert ImplicitRBM(**{**quick, "batch_size": 7}).fit(train).batch_size_ == 7
    big = sp.random(6400, 40, density=0.05, format="csr", random_state=1)
    assert ImplicitRBM(**{**quick, "n_hidden": 3}).fit(big).batch_size_ == 64  # 100 updates


def test_ctrl_c_ends_the_whole_fit_and_keeps_the_members(planted_data, monkeypatch, tmp_path):
    """KeyboardInterrupt in member 1 of n_models=2 must not start member 2 (an interactive
    Ctrl-C would otherwise only skip to the next model) and the kept model scores as one RBM."""
    import rbmrec.models.implicit as mod

    train, _, _, _ = planted_data
    real_train = mod.train

    def interrupted_train(params, step, n_rows, config, rng, **kw):
        def ctrl_c(epoch, metrics):
            if epoch == 2:
                raise KeyboardInterrupt

        config.callbacks = (ctrl_c,)
        return real_train(params, step, n_rows, config, rng, **kw)

    monkeypatch.setattr(mod, "train", interrupted_train)
    m = ImplicitRBM(**{**FAST, "n_models": 2}).fit(train)
    monkeypatch.setattr(mod, "train", real_train)
    assert m.interrupted_ and m.n_models_ == 1
    assert len(m.history_) == 3 and {h["model"] for h in m.history_} == {0.0}
    assert m.weights_.shape[1] == FAST["n_hidden"]
    one = ImplicitRBM(**{**FAST, "n_models": 1, "n_epochs": 3}).fit(train)
    users = np.arange(train.shape[0])
    np.testing.assert_allclose(m.recommend(users, train)[1], one.recommend(users, train)[1],
                               rtol=1e-5)  # fmt: skip
    m.save(tmp_path / "m.npz")
    again = rbmrec.load(tmp_path / "m.npz")
    assert again.n_models_ == 1
    np.testing.assert_array_equal(again.recommend(users, train)[0], m.recommend(users, train)[0])


def test_callbacks_see_each_members_epochs_and_can_stop_training():
    from rbmrec.data import demo_ratings

    X = sp.csr_matrix(demo_ratings().user_items)[:100, :80]
    seen = []

    def stop_after_two(epoch, metrics):
        seen.append((epoch, dict(metrics)))
        return epoch >= 1

    m = ImplicitRBM(n_hidden=4, n_epochs=5, n_models=2, random_state=0, callbacks=[stop_after_two])
    m.fit(X)
    assert [e for e, _ in seen] == [0, 1, 0, 1] and len(m.history_) == 4
    assert all("seconds" in mt for _, mt in seen)
    with pytest.raises(TypeError, match="sequence of callables"):
        ImplicitRBM(callbacks=print).fit(X)
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be callable"):
        ImplicitRBM(callbacks=[1]).fit(X)


@pytest.mark.parametrize(("name", "value"), [("visible", "bernoulli"), ("length_norm", 0.0),
                                             ("n_hidden", 9)])  # fmt: skip
def test_structural_hyperparameters_changed_after_fit_are_refused(tmp_path, name, value):
    """Scores after ``visible`` or ``length_norm`` changed came silently from another model
    (and ``n_hidden`` made a saved file describe its arrays wrongly): refused now, until the
    value is set back or the model is refit with it."""
    from rbmrec.data import demo_ratings

    X = sp.csr_matrix(demo_ratings().user_items)[:100, :80]
    m = ImplicitRBM(n_hidden=4, n_epochs=2, n_models=1, random_state=0).fit(X)
    before = m.score_items(X[:3])
    old = getattr(m, name)
    setattr(m, name, value)
    for call in (lambda: m.score_items(X[:3]), lambda: m.recommend(0, X[0], N=3),
                 lambda: m.hidden_probs(X[:3]), lambda: m.save(tmp_path / "m")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"{name} is .* fitted with {name}="):
            call()
    setattr(m, name, old)
    np.testing.assert_array_equal(m.score_items(X[:3]), before)
    setattr(m, name, value)
    m.fit(X)  # a refit adopts the new value
    assert m.score_items(X[:3]).shape == before.shape
    m.popularity_weight = 0.0  # a scoring setting, free to change
    assert np.all(np.isfinite(m.score_items(X[:3])))


def test_values_beyond_float32_are_still_interactions():
    """1e-50 became 0 in float32 and the interaction vanished (a liked item was recommended);
    1e39 became inf and was refused as "NaN or infinite"."""
    from rbmrec.data import demo_ratings

    X = sp.csr_matrix(demo_ratings().user_items)[:100, :80]
    m = ImplicitRBM(n_hidden=4, n_epochs=1, n_models=1, random_state=0).fit(X)
    row = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 80))
    liked = int(m.recommend(0, row, N=1, recalculate_user=True)[0][0])
    tiny = sp.csr_matrix(([1.0, 1e-50], ([0, 0], [0, liked])), shape=(1, 80))
    assert liked not in m.recommend(0, tiny, N=5, recalculate_user=True)[0]
    assert not np.array_equal(m.hidden_probs(tiny), m.hidden_probs(row))
    big = X.astype(np.float64)
    big.data[0] = 1e39
    fitted = ImplicitRBM(n_hidden=4, n_epochs=1, n_models=1, confidence=1.0, random_state=0)
    assert np.all(np.isfinite(fitted.fit(big).score_items(big[:3])))


@pytest.mark.parametrize(
    ("name", "value"),
    [("popularity_weight", float("nan")), ("popularity_weight", -7.0), ("num_threads", -1)],
)
def test_invalid_scoring_settings_set_after_fit_are_refused(name, value):
    """popularity_weight=nan gave NaN scores and -7 inverted them, silently."""
    from rbmrec.data import demo_ratings

    X = sp.csr_matrix(demo_ratings().user_items)[:60, :40]
    m = ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1, random_state=0).fit(X)
    setattr(m, name, value)
    with pytest.raises(ValueError, match=name):
        m.score_items(X[:2])


def test_stored_zero_and_negative_values_are_interactions(small):
    X = small[0]
    Z = X.copy()
    Z.data[::3] = 0.0  # the same pattern, some values 0 or negative
    Z.data[1::3] = -2.0
    a = ImplicitRBM(n_hidden=4, n_epochs=2, random_state=0).fit(X)
    b = ImplicitRBM(n_hidden=4, n_epochs=2, random_state=0).fit(Z)
    assert b.user_items_.nnz == X.nnz
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.hidden_probs(X[:3]), b.hidden_probs(Z[:3]))


def test_recommend_excludes_every_stored_entry_whatever_its_value(small):
    X = small[0]
    m = ImplicitRBM(n_hidden=4, n_epochs=1, random_state=0).fit(X)
    top = int(m.recommend(0, X[0], N=1)[0][0])
    for value in (0.0, -1.0):
        row = X[0].tolil()
        row[0, top] = 1.0
        row = row.tocsr()
        row.data[row.indices == top] = value  # stored: an interaction, whatever its value
        ids, _ = m.recommend(0, row, N=5)
        assert top not in ids.tolist(), value
