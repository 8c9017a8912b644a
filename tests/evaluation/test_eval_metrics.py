"""Metrics: hand-computed cases, properties, speed, and top-N selection ties."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rbmrec.evaluation import metrics as M
from rbmrec.evaluation.baselines import PAD_SCORE, top_n
from rbmrec.evaluation.metrics import mean_nll


def rel_csr(sets: list[list[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in s]
    return sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(sets), n_items))


# ---------------------------------------------------------------------------- rating


def test_rmse_mae_hand_computed():
    y = [1.0, 2.0, 3.0, 4.0]
    p = [2.0, 2.0, 1.0, 4.0]
    assert M.rmse(y, p) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))
    assert M.mae(y, p) == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert M.rmse(y, y) == 0.0


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([1.0, 2.0], [1.0], "2 values"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
        ([[1.0]], [[1.0]], "1-D"),
    ],
)
def test_rating_metrics_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        M.rmse(y, p)
    with pytest.raises(ValueError, match=match):
        M.mae(y, p)


# ---------------------------------------------------------------------------- relevance


def test_relevant_items_threshold_and_all():
    test = sp.csr_matrix(np.array([[5, 0, 3, 4], [0, 2, 0, 0], [1, 0, 0, 4.5]], np.float32))
    rel = M.relevant_items(test, 4.0)
    np.testing.assert_array_equal(rel.toarray(), [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1]])
    rel_all = M.relevant_items(test, None)
    np.testing.assert_array_equal(rel_all.toarray(), (test.toarray() > 0).astype(np.float32))
    assert test.nnz == 6  # input untouched
    with pytest.raises(TypeError):
        M.relevant_items(test.toarray(), 4.0)


# ---------------------------------------------------------------------------- ranking


def test_hand_computed_case():
    # user 0: relevant {1,3,5}, list [1,2,3]        -> hits 1,0,1
    # user 1: relevant {0},     list [4,0,-1]       -> hits 0,1,0 (short list)
    # user 2: no relevant items: skipped (its item 5 does not count for coverage)
    ids = np.array([[1, 2, 3], [4, 0, -1], [5, 2, 1]], dtype=np.int32)
    rel = rel_csr([[1, 3, 5], [0], []], n_items=6)
    K = 3
    d = M.ranking_metrics(ids, rel, K)
    p0, p1 = 2 / 3, 1 / 3
    r0, r1 = 2 / 3, 1 / 1
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    n0 = (1 + 1 / math.log2(4)) / idcg0
    n1 = (1 / math.log2(3)) / 1.0
    ap0 = (1 / 1 + 2 / 3) / 3
    ap1 = (1 / 2) / 1
    assert d["n_users"] == 2
    assert d["precision"] == pytest.approx((p0 + p1) / 2)
    assert d["recall"] == pytest.approx((r0 + r1) / 2)
    assert d["ndcg"] == pytest.approx((n0 + n1) / 2)
    assert d["map"] == pytest.approx((ap0 + ap1) / 2)
    assert d["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert d["hit_rate"] == pytest.approx(1.0)
    assert d["coverage"] == pytest.approx(5 / 6)
    # the individual functions agree with the combined one
    assert M.precision_at_k(ids, rel, K) == pytest.approx(d["precision"])
    assert M.recall_at_k(ids, rel, K) == pytest.approx(d["recall"])
    assert M.ndcg_at_k(ids, rel, K) == pytest.approx(d["ndcg"])
    assert M.map_at_k(ids, rel, K) == pytest.approx(d["map"])
    assert M.mrr_at_k(ids, rel, K) == pytest.approx(d["mrr"])
    assert M.hit_rate_at_k(ids, rel, K) == pytest.approx(d["hit_rate"])
    # implicit's "precision": pooled hits over pooled min(K, |R|)
    assert M.pooled_recall_at_k(ids, rel, K) == pytest.approx((2 + 1) / (3 + 1))


def test_k_larger_than_list_and_truncation():
    ids = np.array([[2, 0]], dtype=np.int32)
    rel = rel_csr([[0, 2, 4]], n_items=5)
    d5 = M.ranking_metrics(ids, rel, K=5)
    assert d5["precision"] == pytest.approx(2 / 5)  # empty slots are misses
    assert d5["recall"] == pytest.approx(2 / 3)
    idcg = sum(1 / math.log2(j + 1) for j in range(1, 4))
    assert d5["ndcg"] == pytest.approx((1 + 1 / math.log2(3)) / idcg)
    d1 = M.ranking_metrics(ids, rel, K=1)  # only the first slot counts
    assert d1["precision"] == 1.0 and d1["recall"] == 1.0 and d1["coverage"] == 1 / 5


def test_no_user_with_relevant_items_gives_nan():
    ids = np.array([[0, 1]], dtype=np.int32)
    d = M.ranking_metrics(ids, rel_csr([[]], 3), K=2)
    assert d["n_users"] == 0
    assert all(math.isnan(d[k]) for k in M.RANKING_METRICS)


def test_all_misses_give_zero():
    ids = np.array([[0, 1], [2, 3]], dtype=np.int32)
    d = M.ranking_metrics(ids, rel_csr([[4], [5]], 6), K=2)
    for k in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
        assert d[k] == 0.0


@pytest.mark.parametrize(
    ("ids", "exc", "match"),
    [
        (np.array([[0, 0]]), ValueError, "twice"),
        (np.array([[0, 9]]), ValueError, "item indices"),
        (np.array([[0, -2]]), ValueError, "item indices"),
        (np.array([[0.0, 1.0]]), TypeError, "integers"),
        (np.array([[0, 1], [1, 2]]), ValueError, "rows"),
        (np.zeros((1, 1, 1), dtype=int), ValueError, "2-D"),
    ],
)
def test_ranking_bad_input(ids, exc, match):
    with pytest.raises(exc, match=match):
        M.ranking_metrics(ids, rel_csr([[0]], 3), K=2)


@pytest.mark.parametrize("K", [0, -1, 2.5, True])
def test_bad_k(K):
    with pytest.raises(ValueError, match="K"):
        M.ranking_metrics(np.array([[0]]), rel_csr([[0]], 3), K=K)


def test_coverage():
    assert M.catalogue_coverage(np.array([[0, 1, -1], [1, 2, -1]]), 8) == pytest.approx(3 / 8)
    assert M.catalogue_coverage(np.array([[0, 1], [3, 2]]), 4, K=1) == pytest.approx(2 / 4)
    with pytest.raises(ValueError):
        M.catalogue_coverage(np.array([[5]]), 4)
    # Same list checks as the ranking metrics (one shared validator).
    with pytest.raises(ValueError, match="-1 for an empty slot"):
        M.catalogue_coverage(np.array([[-2]]), 4)
    with pytest.raises(TypeError, match="integers"):
        M.catalogue_coverage(np.array([[0.5]]), 4)


# ------------------------------------------------------------------------ properties


@st.composite
def ranking_case(draw):
    n_items = draw(st.integers(2, 25))
    n_users = draw(st.integers(1, 6))
    K = draw(st.integers(1, 12))
    sets, lists = [], []
    for _ in range(n_users):
        sets.append(sorted(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items))))
        perm = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, min(K, n_items)))
        lists.append(list(perm[:length]) + [-1] * (K - length))
    return np.array(lists, dtype=np.int32), rel_csr(sets, n_items), K, sets


@settings(max_examples=150, deadline=None)
@given(ranking_case())
def test_metrics_in_unit_interval(case):
    ids, rel, K, _ = case
    d = M.ranking_metrics(ids, rel, K)
    for k in M.RANKING_METRICS:
        if d["n_users"] == 0 and k != "coverage":
            assert math.isnan(d[k])
        elif not math.isnan(d[k]):
            assert 0.0 <= d[k] <= 1.0 + 1e-12, (k, d[k])


@settings(max_examples=150, deadline=None)
@given(ranking_case())
def test_perfect_list_scores_one(case):
    _, rel, K, sets = case
    n_items = rel.shape[1]
    perfect = []
    for s in sets:
        rest = [i for i in range(n_items) if i not in s]
        row = (list(s) + rest)[:K]
        perfect.append(row + [-1] * (K - len(row)))
    ids = np.array(perfect, dtype=np.int32)
    d = M.ranking_metrics(ids, rel, K)
    if d["n_users"] == 0:
        return
    for k in ("recall", "ndcg", "map", "mrr", "hit_rate"):
        assert d[k] == pytest.approx(1.0), k
    evaluated = [len(s) for s in sets if s]
    assert d["precision"] == pytest.approx(np.mean([min(K, r) / K for r in evaluated]))


@settings(max_examples=150, deadline=None)
@given(ranking_case(), st.data())
def test_adding_a_hit_never_lowers_metrics(case, data):
    ids, rel, K, sets = case
    before = M.ranking_metrics(ids, rel, K)
    ids = ids.copy()
    u = data.draw(st.integers(0, ids.shape[0] - 1))
    unused = [i for i in sets[u] if i not in ids[u]]
    misses = [j for j in range(K) if ids[u, j] not in sets[u]]
    if not unused or not misses:
        return
    ids[u, data.draw(st.sampled_from(misses))] = unused[0]
    after = M.ranking_metrics(ids, rel, K)
    for k in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
        assert after[k] >= before[k] - 1e-12, k
    assert after["precision"] > before["precision"]


def test_batched_speed_6040_users():
    rng = np.random.default_rng(0)
    n_users, n_items, K = 6040, 3706, 10
    # unique ids per row: a random offset plus a stride of 7 (7 * K < n_items)
    offset = rng.integers(0, n_items, size=n_users)
    ids = ((offset[:, None] + 7 * np.arange(K)) % n_items).astype(np.int32)
    nnz = 150_000
    rel = sp.csr_matrix(
        (np.ones(nnz), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
        shape=(n_users, n_items),
    )
    M.ranking_metrics(ids, rel, K)
    best = min(
        (lambda t: (M.ranking_metrics(ids, rel, K), time.perf_counter() - t)[1])(
            time.perf_counter()
        )
        for _ in range(3)
    )
    assert best < 1.0, f"ranking_metrics took {best:.3f} s for 6,040 users"


# ------------------------------------------------------------------------- top-N ties


def test_top_n_ties_go_to_lower_ids():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.0], [3.0] * 5])
    ids, sc = top_n(scores.copy(), 2)
    np.testing.assert_array_equal(ids, [[1, 2], [0, 1]])
    np.testing.assert_array_equal(sc, [[2.0, 2.0], [3.0, 3.0]])


def test_top_n_exclusions_and_padding():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0]], np.float32))
    ids, sc = top_n(scores.copy(), 6, exclude=exclude, filter_items=[2])
    np.testing.assert_array_equal(ids, [[1, 3, -1, -1, -1, -1]])
    assert sc.dtype == np.float32 and np.all(sc[0, 2:] == PAD_SCORE)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=30),
    st.integers(1, 35),
)
def test_top_n_matches_stable_sort(values, N):
    scores = np.array([values], dtype=np.float64)
    ids, _ = top_n(scores.copy(), N)
    expect = np.argsort(-scores[0], kind="stable")[:N]
    np.testing.assert_array_equal(ids[0, : expect.size], expect)
    assert np.all(ids[0, expect.size :] == -1)


def test_ranking_metrics_leave_a_non_canonical_relevant_matrix_alone():
    """ranking_metrics summed the duplicates of the caller's CSR in place (csr_matrix(csr)
    shares its arrays)."""
    data = np.ones(4, np.float32)
    indices = np.array([3, 1, 3, 0], np.int32)  # unsorted, item 3 twice in row 0
    indptr = np.array([0, 3, 4], np.int32)
    relevant = sp.csr_matrix((data, indices, indptr), shape=(2, 5))
    before = (relevant.data.copy(), relevant.indices.copy(), relevant.indptr.copy())
    ids = np.array([[3, 1], [0, 2]])
    out = M.ranking_metrics(ids, relevant, 2)
    for a, b in zip(before, (relevant.data, relevant.indices, relevant.indptr), strict=True):
        np.testing.assert_array_equal(a, b)
    assert out["recall"] == 1.0  # item 3 counts once: 2 hits / min(2, 2 distinct items)


def test_relevant_items_refuses_a_pair_stored_twice():
    from rbmrec.errors import DataError

    t = sp.coo_matrix(([2.0, 3.0], ([0, 0], [1, 1])), shape=(2, 5))
    with pytest.raises(DataError, match="more than once"):
        M.relevant_items(t, 4.0)


@pytest.mark.parametrize("K", [-1, 0, True, 2.5])
def test_catalogue_coverage_checks_K(K):
    with pytest.raises(ValueError, match="K must be a positive integer"):
        M.catalogue_coverage(np.array([[0, 1, 2], [3, 4, -1]]), 5, K=K)
    assert M.catalogue_coverage(np.array([[0, 1, 2], [3, 4, -1]]), 5, K=2) == 0.8


# -------------------------------------------------------------------------- mean_nll


def test_mean_nll_on_a_hand_made_table():
    proba = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    got = mean_nll(proba, [-1.0, 0.0, 2.5], [0.0, 2.5, 1.0, -1.0])
    # 1.0 is no level: excluded; the others score log 4, log 1.25 and log 1.
    assert got.n_scored == 3 and got.n_excluded == 1
    assert got.nll == pytest.approx((np.log(4) + np.log(1.25) + 0.0) / 3)
    # A level stored in float32 is still that level; a zero probability stays finite.
    assert mean_nll(proba[:1], [-1.0, 0.0, 2.5], np.float32([-1.0])).nll == pytest.approx(
        np.log(2)
    )
    assert np.isfinite(mean_nll([[0.0, 1.0]], [1, 2], [1.0]).nll)
    none = mean_nll(proba[:1], [-1.0, 0.0, 2.5], [7.0])
    assert np.isnan(none.nll) and none.n_excluded == 1


@pytest.mark.parametrize(
    ("proba", "levels", "values", "match"),
    [
        ([[0.5, 0.5]], [1.0], [1.0], "at least two"),
        ([[0.5, 0.5]], [2.0, 1.0], [1.0], "sorted"),
        ([[0.5, 0.5, 0.0]], [1.0, 2.0], [1.0], r"expected \(1, 2\)"),
        ([[0.5, 0.5]], [1.0, 2.0], [1.0, 2.0], r"expected \(2, 2\)"),
        ([[np.nan, 0.5]], [1.0, 2.0], [1.0], "probabilities"),
        ([[1.5, -0.5]], [1.0, 2.0], [1.0], "probabilities"),
    ],
)
def test_mean_nll_bad_input(proba, levels, values, match):
    with pytest.raises(ValueError, match=match):
        mean_nll(proba, levels, values)


def test_mean_nll_of_a_tiny_rating_rbm_by_hand():
    """Two levels (0 and 1: a scale with 0), three hidden units, exact prediction:
    p(v_i = k | v_obs) is proportional to exp(b_ik) prod_j (1 + exp(c_j + x_j + W_ikj)),
    x_j summing W over the user's observed ratings."""
    from rbmrec.models.rating import RatingRBM

    X = sp.csr_matrix(
        (np.array([0.0, 1.0, 1.0, 0.0, 0.0]), ([0, 0, 1, 1, 2], [0, 1, 0, 2, 3])), shape=(3, 4)
    )
    m = RatingRBM(n_hidden=3, n_epochs=1, batch_size=3, prediction="exact", orientation="user",
                  validation_fraction=0,
                  conditional=False, random_state=0, dtype=np.float64).fit(X)  # fmt: skip
    rng = np.random.default_rng(5)
    for name in ("W", "b", "c"):
        m._params[name][...] = rng.normal(0, 1.0, m._params[name].shape)
    m._set_public()
    assert m.values_.tolist() == [0.0, 1.0]
    W, b, c = m.weights_, m.visible_bias_, m.hidden_bias_
    users, items = np.array([0, 1, 2, 2]), np.array([2, 1, 0, 1])
    held = np.array([1.0, 0.0, 1.0, 0.5])  # 0.5 is no level
    nll = []
    for u, i, r in zip(users[:3], items[:3], held[:3], strict=True):
        row = X[u]
        x = sum(W[j, int(v)] for j, v in zip(row.indices, row.data, strict=True))
        logp = np.array([b[i, k] + np.sum(np.log1p(np.exp(c + x + W[i, k]))) for k in (0, 1)])
        logp -= np.logaddexp.reduce(logp)
        nll.append(-logp[int(r)])
    got = mean_nll(m.predict_proba(users, items), m.values_, held)
    assert got.n_scored == 3 and got.n_excluded == 1
    assert got.nll == pytest.approx(np.mean(nll), rel=1e-9)
