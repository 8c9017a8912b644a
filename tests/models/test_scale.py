"""What keeps the rating RBM's memory and time in proportion at scale: parameter copies the
trainer may skip, the batch size that grows with sparsity, and the data conversions that
work in blocks or share arrays, each checked against the plain computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.errors import TrainingDivergedError
from rbmrec.models import rating_train as T
from rbmrec.models.rating import RatingRBM
from rbmrec.models.rating_infer import level_index, level_match
from rbmrec.models.trainer import TrainerConfig, train
from rbmrec.models.validation import check_ratings


def _step(fail_on=None, grad=1.0):
    """A step whose gradient is ``grad``; raises ``fail_on(call)``'s exception if any."""
    calls = {"n": 0}

    def step(rows, k, rng):
        calls["n"] += 1
        if fail_on is not None and (exc := fail_on(calls["n"])) is not None:
            raise exc
        return {"W": np.full(2, grad)}, {}

    return step


def _cfg(**kw):
    base = dict(n_epochs=4, batch_size=5, learning_rate=0.1, momentum=0.5, weight_decay=0.0)
    return TrainerConfig(**{**base, **kw})


def test_without_copies_training_is_the_same():
    a, b = {"W": np.zeros(2)}, {"W": np.zeros(2)}
    train(a, _step(), 10, _cfg(), np.random.default_rng(0))
    train(b, _step(), 10, _cfg(max_copy_bytes=0), np.random.default_rng(0))
    np.testing.assert_array_equal(a["W"], b["W"])


def test_without_copies_a_divergence_says_the_parameters_are_not_restored():
    params = {"W": np.zeros(2)}
    calls = {"n": 0}

    def mixed(rows, k, rng):
        calls["n"] += 1
        return {"W": np.full(2, np.inf if calls["n"] == 3 else 1.0)}, {}

    with pytest.raises(TrainingDivergedError, match="no copy was kept"):
        train(params, mixed, 10, _cfg(max_copy_bytes=8), np.random.default_rng(0))
    assert not np.all(np.isfinite(params["W"]))


def test_without_copies_ctrl_c_keeps_the_parameters_the_epoch_reached():
    """Ctrl-C in epoch 2's second batch: the first batch of epoch 2 stays applied."""
    params = {"W": np.zeros(2)}
    step = _step(lambda n: KeyboardInterrupt() if n == 4 else None)
    res = train(params, step, 10, _cfg(max_copy_bytes=0), np.random.default_rng(0))
    assert res.interrupted and len(res.history) == 1
    ref = {"W": np.zeros(2)}
    train(ref, _step(), 10, _cfg(n_epochs=1), np.random.default_rng(0))
    assert np.all(params["W"] > ref["W"])


@pytest.mark.parametrize("cap", [None, 0])
def test_early_stopping_keeps_the_best_epoch_only_when_it_may_copy(cap):
    scores = iter([3.0, 1.0, 2.0, 2.5, 2.7, 2.9])
    seen = []

    def evaluate(epoch):
        seen.append(1)
        return {"valid_rmse": next(scores)}

    params = {"W": np.zeros(2)}
    cfg = _cfg(n_epochs=6, patience=2, max_copy_bytes=cap)
    res = train(params, _step(), 10, cfg, np.random.default_rng(0), evaluate=evaluate)
    assert res.stopped_early and len(res.history) == 4
    ref = {"W": np.zeros(2)}
    kept = 2 if cap is None else 4  # the best epoch, or the last one without a copy
    train(ref, _step(), 10, _cfg(n_epochs=kept), np.random.default_rng(0))
    np.testing.assert_array_equal(params["W"], ref["W"])
    assert res.best_epoch == kept - 1


def test_a_best_last_epoch_is_kept_without_a_copy_and_a_shared_snapshot_undoes_an_epoch():
    """Epoch 1 is the best; its copy is epoch 2's start, which a Ctrl-C in epoch 2 goes
    back to; the result equals one epoch of training."""
    params = {"W": np.zeros(2)}
    step = _step(lambda n: KeyboardInterrupt() if n == 3 else None)

    def evaluate(epoch):
        return {"valid_rmse": 1.0}

    cfg = _cfg(n_epochs=3, patience=2)
    res = train(params, step, 10, cfg, np.random.default_rng(0), evaluate=evaluate)
    ref = {"W": np.zeros(2)}
    train(ref, _step(), 10, _cfg(n_epochs=1), np.random.default_rng(0))
    np.testing.assert_array_equal(params["W"], ref["W"])
    assert res.interrupted and res.best_epoch == 0


def test_dense_batch_keeps_ml_1m_and_grows_with_sparsity():
    assert T.dense_batch(100, 900_188 / (6_040 * 3_706)) == 100
    assert T.dense_batch(100, 100e6 / (480_189 * 17_770)) == 299
    assert T.dense_batch(100, None) == 100
    m = RatingRBM()
    assert m._batch_for(17_770, 0.0117) == 300
    assert RatingRBM(batch_size=100)._batch_for(17_770, 0.0117) == 100
    assert m._batch_for(200, 0.0117) == 20  # still at least 10 updates per epoch


def test_normal_rows_draws_the_numbers_of_one_call(monkeypatch):
    monkeypatch.setattr(T, "_DRAW_CHUNK", 7)
    got = T.normal_rows(np.random.default_rng(3), 0.01, (5, 3, 4), np.dtype(np.float32))
    want = np.random.default_rng(3).normal(0.0, 0.01, (5, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_level_index_in_blocks_equals_the_nearest_level_rule(monkeypatch):
    import rbmrec.models.rating_infer as RI

    monkeypatch.setattr(RI, "_LEVEL_BLOCK", 4)
    values = np.array([0.5, 1.0, 1.5, 2.0])
    exact = np.array([0.5, 2.0, 1.0, 1.5, 1.5, 0.5, 2.0, 1.0, 0.5], dtype=np.float32)
    rounded = exact.astype(np.float64) * (1 + 1e-9)
    for data in (exact, rounded):
        lv, ok = level_match(values, data)
        assert ok.all()
        np.testing.assert_array_equal(level_index(values, data), lv)


def test_check_ratings_shares_a_canonical_float64_matrix_and_copies_others():
    X = sp.random(30, 20, density=0.3, random_state=0, format="csr", dtype=np.float64)
    X.data = np.ceil(X.data * 5)
    same = check_ratings("x", X)
    assert np.shares_memory(same.data, X.data)
    f32 = check_ratings("x", X.astype(np.float32))
    assert f32.dtype == np.float64 and not np.shares_memory(f32.data, X.data)
    unsorted = sp.csr_matrix(
        (np.array([2.0, 1.0]), np.array([1, 0]), np.array([0, 2])), shape=(1, 2)
    )
    fixed = check_ratings("x", unsorted)
    assert not np.shares_memory(fixed.data, unsorted.data)
    np.testing.assert_array_equal(fixed.indices, [0, 1])
    np.testing.assert_array_equal(fixed.data, [1.0, 2.0])


def test_rated_pattern_is_the_union_of_ratings_and_known_pairs():
    X = sp.csr_matrix(np.array([[1, 0, 3, 0], [0, 2, 0, 0], [0, 0, 0, 5]], dtype=np.float64))
    K = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float64))
    arrays = (X.indptr.astype(np.int64), X.indices.astype(np.int32), np.zeros(4, np.int8))
    alone = T.rated_pattern(arrays, None, lambda m: m, X.shape)
    assert alone.indptr is arrays[0] and alone.indices is arrays[1]
    both = T.rated_pattern(arrays, K, lambda m: m, X.shape)
    want = sp.csr_matrix(((X + K) != 0).astype(np.float64))
    np.testing.assert_array_equal(both.indptr, want.indptr)
    np.testing.assert_array_equal(both.indices, want.indices)
    assert both.indptr.dtype == np.int64 and both.indices.dtype == np.int32


def _tiny_ratings(seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(40, 25, density=0.3, random_state=seed, format="csr", dtype=np.float64)
    X.data = rng.integers(1, 6, X.nnz).astype(np.float64)
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_are_stored_in_float16_only_when_that_loses_nothing(tmp_path, dtype):
    from rbmrec import load
    from rbmrec.models.persistence import read_npz

    X = _tiny_ratings()
    m = RatingRBM(n_hidden=6, n_epochs=2, orientation="user", random_state=0, dtype=dtype)
    m.fit(X)
    arrays = read_npz(m.save(tmp_path / "m"))
    half = dtype == np.float32
    for name in ("param_W", "param_D"):
        assert (arrays[name].dtype == np.float16) == half
    assert arrays["param_b"].dtype == np.dtype(dtype)
    back = load(tmp_path / "m.npz")
    for name in ("W", "D", "b", "c"):
        assert back._params[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(back._params[name], m._params[name])
    u, i = X.nonzero()
    np.testing.assert_array_equal(back.predict(u, i), m.predict(u, i))


def test_round_weights_moves_each_weight_to_its_nearest_float16():
    from rbmrec.models import rating_files as F

    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.05, (7, 3, 5)).astype(np.float32)
    big = np.array([1.0, 7e4], dtype=np.float32)
    params = {"W": W.copy(), "D": big.copy(), "b": W[:, :, 0].copy()}
    F.round_weights(params)
    np.testing.assert_array_equal(params["W"], W.astype(np.float16).astype(np.float32))
    assert np.max(np.abs(params["W"] - W) / np.abs(W)) <= 2.0**-11
    np.testing.assert_array_equal(params["D"], big)  # beyond float16's range: unchanged
    np.testing.assert_array_equal(params["b"], W[:, :, 0])  # biases are not rounded
    assert F._half_if_exact("W", W) is W  # not float16 values: stored as they are
    assert F._half_if_exact("W", params["W"]).dtype == np.float16
