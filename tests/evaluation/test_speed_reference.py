"""The dense NumPy reference (rbmrec.testing.dense_reference) computes the engine's CD-1,
and the report functions of benchmarks/speed.py, which times the engine against it.

The reference is only a fair baseline if it does the same work as the sparse engine: same
hidden probabilities, and a CD-1 gradient with the same expectation (the two draw their
hidden samples from different generators, so they agree in distribution, not bit for bit).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from benchmark_scripts import load_script

from rbmrec.engine import softmax as K
from rbmrec.engine._random import row_states
from rbmrec.testing.dense_reference import (
    DenseSoftmaxRBM,
    dense_cd1_gradients,
    dense_hidden_probs,
    dense_onehot,
)

speed = load_script("speed")

N_USERS, N_ITEMS, N_LEVELS, N_HIDDEN = 5, 6, 3, 3


def _tiny(dtype=np.float64, seed=0):
    """A users x items CSR of 0-based levels (2..4 rated items per user) and parameters."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 5, N_USERS)
    indices = np.concatenate(
        [np.sort(rng.choice(N_ITEMS, n, replace=False)) for n in counts]
    ).astype(np.int32)
    levels = rng.integers(0, N_LEVELS, indices.size).astype(np.int8)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    # Weights of order 1 so the positive and negative statistics differ clearly.
    W = rng.normal(0.0, 1.0, (N_ITEMS, N_LEVELS, N_HIDDEN)).astype(dtype)
    b = rng.normal(0.0, 0.5, (N_ITEMS, N_LEVELS)).astype(dtype)
    c = rng.normal(0.0, 0.5, N_HIDDEN).astype(dtype)
    return indptr, indices, levels, W, b, c


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_hidden_probs_equal_engine(dtype, rtol):
    indptr, indices, levels, W, _b, c = _tiny(dtype)
    rows = np.array([3, 0, 4, 1], dtype=np.int64)
    V, mask = dense_onehot(indptr, indices, levels, rows, N_ITEMS, N_LEVELS, dtype)
    assert V.shape == (4, N_ITEMS, N_LEVELS)
    np.testing.assert_array_equal(mask, V.sum(axis=2))
    np.testing.assert_array_equal(mask.sum(axis=1), indptr[rows + 1] - indptr[rows])
    engine = K.softmax_hidden_probs(
        indptr, indices, levels, rows, W, c, np.zeros((0, N_HIDDEN), dtype)
    )
    np.testing.assert_allclose(dense_hidden_probs(V, W, c), engine, rtol=rtol, atol=1e-7)


def _exact_expected_gradient(V, mask, W, b, c):
    """E over the hidden sample h ~ p(h | v) of the reference's CD-1 statistics, by summing
    over all 2^H hidden states (per user, since each user has its own p(h | v))."""
    states = np.array(list(itertools.product([0.0, 1.0], repeat=N_HIDDEN)))
    hpos = dense_hidden_probs(V, W, c)
    total = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    for u in range(V.shape[0]):
        for s in states:
            weight = np.prod(np.where(s == 1.0, hpos[u], 1.0 - hpos[u]))
            grads = dense_cd1_gradients(
                V[u : u + 1], mask[u : u + 1], W, b, c, hidden_sample=s[None, :]
            )
            for acc, g in zip(total, grads, strict=True):
                acc += weight * g
    return total


def _mean_and_se(draws):
    """Mean and standard error of each entry over independent replicate estimates."""
    a = np.stack(draws)
    return a.mean(axis=0), a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])


def test_cd1_gradient_agrees_with_engine_in_expectation():
    indptr, indices, levels, W, b, c = _tiny()
    users = np.arange(N_USERS, dtype=np.int64)
    V, mask = dense_onehot(indptr, indices, levels, users, N_ITEMS, N_LEVELS, np.float64)
    expected = _exact_expected_gradient(V, mask, W, b, c)

    # Each replicate averages `reps` independent CD-1 runs of every user (the batch repeats
    # users); 30 replicates give an empirical standard error per entry.
    reps, n_rep = 400, 30
    rows = np.repeat(users, reps)
    rng = np.random.default_rng(1)
    engine_draws, ref_draws = [], []
    Vr, maskr = V[rows], mask[rows]
    for _ in range(n_rep):
        gW, gb, gc = np.empty_like(W), np.empty_like(b), np.empty_like(c)
        hd = np.empty((rows.size, N_HIDDEN))
        K.softmax_cd(
            indptr, indices, levels, rows, W, b, c, np.zeros((0, N_HIDDEN)), 1,
            row_states(rng, rows.size), np.zeros(0, np.int8), False, gW, gb, gc, hd,
            K.NEG_MEAN_FIELD,
        )  # fmt: skip
        engine_draws.append(np.concatenate([gW.ravel(), gb.ravel(), gc]) / reps)
        ref = dense_cd1_gradients(Vr, maskr, W, b, c, rng)
        ref_draws.append(np.concatenate([g.ravel() for g in ref]) / reps)

    exact = np.concatenate([g.ravel() for g in expected])
    # Guard against a vacuous comparison: the statistics must be far from zero.
    assert np.abs(exact).max() > 0.5
    for draws in (engine_draws, ref_draws):
        mean, se = _mean_and_se(draws)
        assert se.max() < 0.05  # enough samples for the tolerance to mean something
        # 5 standard errors per entry (~1e-6 two-sided each) plus rounding slack.
        np.testing.assert_array_less(np.abs(mean - exact), 5 * se + 1e-9)


def test_dense_update_is_the_trainer_rule_and_epoch_extrapolates():
    indptr, indices, levels, W, b, c = _tiny(np.float32)
    ref = DenseSoftmaxRBM(W.copy(), b.copy(), c.copy(), 0.05, 0.9, 0.002)
    rows = np.array([0, 2], dtype=np.int64)
    V, mask = dense_onehot(indptr, indices, levels, rows, N_ITEMS, N_LEVELS)
    ref.step(V, mask, np.random.default_rng(7))
    gW, gb, gc = dense_cd1_gradients(V, mask, W, b, c, np.random.default_rng(7))
    # First step from zero velocity: p += lr * (g / batch - weight_decay * p), decay on W only.
    np.testing.assert_allclose(ref.W, W + 0.05 * (gW / 2 - 0.002 * W), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ref.b, b + 0.05 * gb / 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ref.c, c + 0.05 * gc / 2, rtol=1e-5, atol=1e-7)

    out = ref.epoch(indptr, indices, levels, 2, np.random.default_rng(0), max_batches=1)
    assert out["extrapolated"] and out["batches"] == 1 and out["batches_total"] == 3
    assert out["epoch_seconds"] == pytest.approx(3 * out["seconds"])
    full = ref.epoch(indptr, indices, levels, 2, np.random.default_rng(0))
    assert not full["extrapolated"] and full["ratings"] == indices.size
    assert np.all(np.isfinite(ref.W))


def test_vs_dense_ratio_and_bad_arguments():
    common = {"data": "d", "threads": 2, "ratings": 1000, "peak_mb": 10.0, "batch_size": 100}
    dense = {**common, "key": "dense-user-cd1", "s_per_epoch": 5.0, "extrapolated": True}
    rows = speed.table_rows(
        [
            {**common, "key": "rating-user-cd1", "s_per_epoch": 0.5, "cpu_s_per_epoch": 0.9},
            {**common, "key": "rating-item-cd1", "s_per_epoch": 0.25},
            dense,
            {**common, "key": "rating-user-cd1", "s_per_epoch": 0.4, "batch_size": 1000},
        ]
    )
    assert rows[0]["vs dense"] == "~10.0x"  # extrapolated reference -> approximate ratio
    assert rows[1]["vs dense"] == "-"  # only the configuration the reference reproduces
    assert rows[3]["vs dense"] == "-"  # no reference with the same batch size
    assert rows[0]["ratings/s"] == "2,000"
    assert (rows[0]["batch"], rows[3]["batch"]) == ("100", "1000")
    assert (rows[0]["CPU s/epoch"], rows[1]["CPU s/epoch"]) == ("0.9", "-")
    with pytest.raises(SystemExit, match="rounds"):
        speed.main(["--datasets", "synth-10m", "--rounds", "0"])
    with pytest.raises(SystemExit, match="unknown dataset"):
        speed.main(["--datasets", "ml-2m"])
    with pytest.raises(SystemExit, match="threads"):
        speed.main(["--datasets", "synth-10m", "--threads", "0"])


def test_best_rounds_keeps_the_fastest_round_of_each_configuration():
    common = {"data": "d", "threads": 2, "ratings": 1000, "peak_mb": 10.0, "batch_size": 100}
    runs = [
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.5, "round": 0},
        {**common, "key": "dense-user-cd1", "s_per_epoch": 5.0, "round": 0},
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.3, "round": 1},
        {**common, "key": "dense-user-cd1", "s_per_epoch": 6.0, "round": 1},
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.4, "threads": 1, "round": 1},
    ]
    best = speed.best_rounds(runs)
    assert [(r["key"], r["threads"], r["round"]) for r in best] == [
        ("rating-user-cd1", 2, 1),
        ("dense-user-cd1", 2, 0),
        ("rating-user-cd1", 1, 1),
    ]
    assert best[0]["rounds_s_per_epoch"] == [0.3, 0.5]
    rows = speed.table_rows(best)
    assert rows[0]["vs dense"] == "16.7x"  # best engine round against best dense round
    assert (rows[0]["rounds"], rows[2]["rounds"]) == ("0.3-0.5 (2)", "-")


def test_paired_ratios_divide_within_each_round():
    common = {"data": "d", "threads": 2, "ratings": 1000, "peak_mb": 10.0, "batch_size": 100}
    runs = [
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.5, "round": 0},
        {**common, "key": "dense-user-cd1", "s_per_epoch": 5.0, "round": 0},
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.3, "round": 1},
        {**common, "key": "dense-user-cd1", "s_per_epoch": 6.0, "round": 1},
        {**common, "key": "rating-user-cd5", "s_per_epoch": 0.1, "round": 1},  # not paired
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.4, "round": 2},  # no dense
        {**common, "key": "rating-user-cd1", "s_per_epoch": 0.4, "threads": 1, "round": 0},
    ]
    assert speed.paired_ratios(runs) == {("d", 2, 100): pytest.approx([10.0, 20.0])}
    assert speed.paired_ratio_lines(runs) == [
        "d, 2 threads, batch 100: 10.0x, 20.0x (median 15.0x)"
    ]
    # The table's ratio divides the fastest rounds instead: 5.0 / 0.3.
    assert speed.table_rows(speed.best_rounds(runs))[0]["vs dense"] == "16.7x"


def test_one_user_recommend_timing_starts_from_empty_scoring_caches():
    from rbmrec import RatingRBM
    from rbmrec.data import make_ratings

    X = make_ratings(40, 25, density=0.3, seed=2).user_items
    m = RatingRBM(n_hidden=4, n_epochs=1, random_state=0).fit(X)  # "both": two members
    m.recommend(0, X[0], N=3)
    assert all(member._infer for member in m.members_.values())
    speed._forget_scoring_caches(m)
    assert not any(member._infer for member in m.members_.values())
    first, median = speed._time_recommend_one(m, X, n=3)
    assert first > 0 and median > 0
    assert all(member._infer for member in m.members_.values())  # the calls filled them
    common = {"data": "d", "threads": 2, "ratings": 1000, "peak_mb": 10.0, "batch_size": 100}
    run = {**common, "key": "rating-user-cd1", "s_per_epoch": 0.5}
    rows = speed.table_rows([{**run, "recommend_one_ms": 1.234, "recommend_one_first_ms": 56.7}])
    assert rows[0]["1-user ms (first)"] == "1.23 (56.7)"
    assert speed.table_rows([run])[0]["1-user ms (first)"] == "-"
    speed._forget_scoring_caches(SimpleNamespace(members_=None))  # ImplicitRBM: no members


def test_epoch_seconds_adds_the_members_of_a_two_member_model():
    one = [{"epoch": 1.0, "seconds": 0.5}, {"epoch": 2.0, "seconds": 0.25}]
    assert speed.epoch_seconds(one) == [0.5, 0.25]
    both = [{**h, "member": "item"} for h in one] + [
        {"epoch": 1.0, "seconds": 1.0, "member": "user"},
        {"epoch": 2.0, "seconds": 2.0, "member": "user"},
    ]
    assert speed.epoch_seconds(both) == [1.5, 2.25]
    label = speed.table_rows(
        [
            {
                "key": "rating-default",
                "data": "d",
                "threads": 2,
                "ratings": 10,
                "peak_mb": 1.0,
                "batch_size": 100,
                "s_per_epoch": 2.0,
            }
        ]
    )[0]["model"]
    assert label == "RatingRBM()"
