"""The pieces of the shared trainer that the RBM relies on."""

from __future__ import annotations

import numpy as np
import pytest

from rbmrec.errors import TrainingDivergedError
from rbmrec.models.trainer import TrainerConfig, cd_steps_at, parse_cd_schedule, train


@pytest.mark.parametrize(
    ("schedule", "exc"),
    [
        (0, ValueError),
        (True, TypeError),
        ("3", TypeError),
        ([(1, 3)], ValueError),
        ([(0, 1), (0, 3)], ValueError),
        ([(0, 1), (5, 0)], ValueError),
        ([], ValueError),
    ],
)
def test_parse_cd_schedule_rejects_bad_schedules(schedule, exc):
    with pytest.raises(exc, match="cd_steps"):
        parse_cd_schedule(schedule)


def test_cd_schedule_lookup():
    sched = parse_cd_schedule([(0, 1), (3, 5)])
    assert [cd_steps_at(sched, e) for e in range(5)] == [1, 1, 1, 5, 5]
    assert parse_cd_schedule(4) == [(0, 4)]


def test_update_rule_momentum_and_decay_on_listed_params_only():
    params = {"W": np.ones(2), "c": np.ones(2)}

    def step(rows, k, rng):
        return {"W": np.full(2, float(len(rows))), "c": np.full(2, float(len(rows)))}, {}

    cfg = TrainerConfig(n_epochs=1, batch_size=4, learning_rate=0.1, momentum=0.0,
                        weight_decay=0.5)  # fmt: skip
    train(params, step, 4, cfg, np.random.default_rng(0), decay=("W",))
    # one batch: g / n_batch = 1; W also gets -lr * decay * W
    np.testing.assert_allclose(params["c"], 1.1)
    np.testing.assert_allclose(params["W"], 1.0 + 0.1 - 0.1 * 0.5)


def test_divergence_names_epoch_and_hyperparameters_and_restores_params():
    params = {"W": np.zeros(3)}
    calls = []

    def step(rows, k, rng):
        calls.append(k)
        bad = np.full(3, np.nan) if len(calls) > 2 else np.ones(3)
        return {"W": bad}, {}

    cfg = TrainerConfig(n_epochs=5, batch_size=10, learning_rate=0.3, momentum=0.2,
                        weight_decay=0.0, cd_steps=2)  # fmt: skip
    with pytest.raises(TrainingDivergedError) as err:
        train(params, step, 10, cfg, np.random.default_rng(0), describe="n_hidden=7, ")
    msg = str(err.value)
    assert "epoch 3" in msg and "learning_rate=0.3" in msg and "n_hidden=7" in msg
    assert "cd_steps=2" in msg and "momentum=0.2" in msg
    assert np.all(np.isfinite(params["W"]))
    assert params["W"][0] > 0  # the two good epochs' updates are kept


@pytest.mark.parametrize("where", ["step", "fused update", "evaluate"])
def test_ctrl_c_inside_a_kernel_callback_stops_training_cleanly(where):
    """A SIGINT landing while a Numba kernel calls back into Python surfaces as a
    SystemError caused by KeyboardInterrupt, wherever in the loop it lands (batch step, a
    fused update, the evaluation): every model's training stops as for Ctrl-C."""
    params = {"W": np.zeros(2)}
    calls = {"n": 0}

    def ctrl_c_on_call(n):
        calls["n"] += 1
        if calls["n"] == n:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise SystemError("returned a result with an exception set") from exc

    def fused(p, v, scale, mom, lr_wd):
        if where == "fused update":
            ctrl_c_on_call(7)
        p += 1.0

    def step(rows, k, rng):
        if where == "step":
            ctrl_c_on_call(7)
        return {"W": fused}, {}

    def evaluate(epoch):
        if where == "evaluate":
            ctrl_c_on_call(3)
        return {"valid_loss": -float(epoch)}

    cfg = TrainerConfig(n_epochs=50, batch_size=5, learning_rate=0.1, momentum=0.0,
                        patience=100, monitor="valid_loss")  # fmt: skip
    res = train(params, step, 10, cfg, np.random.default_rng(0), evaluate=evaluate)
    assert res.interrupted and 1 <= len(res.history) < 50
    assert np.all(params["W"] > 0)


def test_other_system_errors_are_not_taken_for_ctrl_c():
    def step(rows, k, rng):
        raise SystemError("a real failure")

    cfg = TrainerConfig(n_epochs=2, batch_size=5)
    with pytest.raises(SystemError, match="real failure"):
        train({"W": np.zeros(2)}, step, 10, cfg, np.random.default_rng(0))


def test_lr_decay_scales_each_epoch_step_geometrically():
    # A constant gradient of 1 and no momentum moves p by exactly lr * decay**epoch per epoch.
    params = {"p": np.zeros(1)}

    def step(rows, k, rng):
        return {"p": np.full(1, float(len(rows)))}, {}

    cfg = TrainerConfig(
        n_epochs=3, batch_size=4, learning_rate=0.5, momentum=0.0, weight_decay=0.0, lr_decay=0.5
    )
    res = train(params, step, 4, cfg, np.random.default_rng(0))
    assert [r["learning_rate"] for r in res.history] == [0.5, 0.25, 0.125]
    assert params["p"][0] == pytest.approx(0.875)


@pytest.mark.parametrize("bad,exc", [(0.0, ValueError), (1.5, ValueError), ("x", TypeError)])
def test_lr_decay_rejects_bad_values(bad, exc):
    with pytest.raises(exc, match="lr_decay"):
        TrainerConfig(lr_decay=bad).validate()


@pytest.mark.parametrize("callbacks", [print, (cb for cb in [print]), "abc", 3])
def test_config_callbacks_must_be_a_sequence(callbacks):
    """The one check every model relies on: a generator would be used up by the check."""
    with pytest.raises(TypeError, match="callbacks must be a sequence of callables"):
        TrainerConfig(callbacks=callbacks).validate()
    assert TrainerConfig(callbacks=[print]).validate() == [(0, 1)]


def test_derive_edits_the_record_every_consumer_sees():
    params = {"W": np.zeros(2)}

    def step(rows, k, rng):
        return {"W": np.zeros(2)}, {"sq": 4.0 * len(rows), "count": float(len(rows))}

    def derive(record):
        record["root"] = float(np.sqrt(record.pop("sq")))

    seen = []
    cfg = TrainerConfig(n_epochs=2, batch_size=3, callbacks=[lambda e, rec: seen.append(dict(rec))])
    result = train(params, step, 7, cfg, np.random.default_rng(0), derive=derive)
    assert [r["root"] for r in seen] == [2.0, 2.0] and all("sq" not in r for r in seen)
    assert [r["root"] for r in result.history] == [2.0, 2.0]


@pytest.mark.parametrize("schedule", [[(0, 1.5)], [(0.9, 2)], [(0, 1), (3, True)], [(0, 2.0)]])
def test_schedule_entries_must_be_ints_not_truncated(schedule):
    with pytest.raises(TypeError, match="cd_steps schedule entries must be ints"):
        parse_cd_schedule(schedule)


@pytest.mark.parametrize(
    ("patience", "exc", "match"),
    [(2.5, ValueError, "must be a whole"), (True, TypeError, "must be an"), ("3", TypeError, "")],
)
def test_patience_must_be_a_whole_number(patience, exc, match):
    with pytest.raises(exc, match="patience " + match):
        TrainerConfig(patience=patience).validate()
    TrainerConfig(patience=5.0).validate()  # model files of earlier versions hold such floats


def test_a_ctrl_c_in_a_callback_keeps_a_best_epoch_it_lands_in():
    """Early stopping notes the best epoch before the callbacks run."""

    def evaluate(epoch):
        return {"valid_loss": -float(epoch)}  # every epoch is the best so far

    def callback(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    cfg = TrainerConfig(n_epochs=5, batch_size=5, patience=3, monitor="valid_loss",
                        callbacks=[callback])  # fmt: skip
    params = {"W": np.zeros(2)}
    res = train(params, _ones_step(), 10, cfg, np.random.default_rng(0), evaluate=evaluate)
    assert res.interrupted and res.best_epoch == 1 and len(res.history) == 2
    ref = {"W": np.zeros(2)}
    cfg2 = TrainerConfig(n_epochs=2, batch_size=5)
    train(ref, _ones_step(), 10, cfg2, np.random.default_rng(0))
    np.testing.assert_array_equal(params["W"], ref["W"])


def test_a_numpy_float32_learning_rate_steps_float64_parameters_in_float64():
    """The step scale lr / len(rows) is a Python float whatever the learning rate's type."""
    got = {}
    cfg = TrainerConfig(n_epochs=1, batch_size=3, learning_rate=np.float32(0.1), momentum=0.0,
                        weight_decay=0.0)  # fmt: skip

    def step(rows, k, rng):
        return {"W": lambda p, v, scale, mom, lr_wd: got.update(scale=scale)}, {}

    train({"W": np.zeros(2)}, step, 3, cfg, np.random.default_rng(0))
    assert type(got["scale"]) is float and got["scale"] == float(np.float32(0.1)) / 3


def _ones_step(fail_on=None):
    """A step whose gradient is all ones; raises ``fail_on(call)``'s exception if any."""
    calls = {"n": 0}

    def step(rows, k, rng):
        calls["n"] += 1
        if fail_on is not None and (exc := fail_on(calls["n"])) is not None:
            raise exc
        return {"W": np.ones(2)}, {}

    return step


def test_divergence_resets_the_momentum_so_training_can_go_on():
    """The parameters go back to the start of the failing epoch and the momentum to zero:
    a NaN velocity would make every later step NaN, even at a tiny learning rate."""
    params = {"W": np.zeros(2)}
    velocity: dict[str, np.ndarray] = {}

    def step(rows, k, rng):
        step.n = getattr(step, "n", 0) + 1
        return {"W": np.full(2, np.inf if step.n == 3 else 1.0)}, {}

    cfg = TrainerConfig(n_epochs=4, batch_size=10, learning_rate=0.1, momentum=0.5,
                        weight_decay=0.0)  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="momentum reset to zero"):
        train(params, step, 10, cfg, np.random.default_rng(0), velocity=velocity)
    np.testing.assert_array_equal(velocity["W"], 0.0)
    w = params["W"].copy()
    train(params, step, 10, cfg, np.random.default_rng(0), velocity=velocity)
    assert np.all(np.isfinite(params["W"])) and np.all(params["W"] > w)


def test_ctrl_c_mid_epoch_goes_back_to_the_epoch_start_and_resets_the_momentum():
    """Ctrl-C in epoch 2's second batch: the model is that of epoch 1, as its history says."""
    cfg = TrainerConfig(n_epochs=5, batch_size=5, learning_rate=0.1, momentum=0.5,
                        weight_decay=0.0)  # fmt: skip
    params, velocity = {"W": np.zeros(2)}, {}
    step = _ones_step(lambda n: KeyboardInterrupt() if n == 4 else None)
    res = train(params, step, 10, cfg, np.random.default_rng(0), velocity=velocity)
    assert res.interrupted and len(res.history) == 1
    ref = {"W": np.zeros(2)}
    cfg.n_epochs = 1
    train(ref, _ones_step(), 10, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(params["W"], ref["W"])
    np.testing.assert_array_equal(velocity["W"], 0.0)


def test_a_nan_monitored_metric_never_counts_as_best_and_patience_still_runs():
    def evaluate(epoch):
        return {"valid_loss": float("nan")}

    cfg = TrainerConfig(n_epochs=10, batch_size=5, patience=2, monitor="valid_loss")
    res = train({"W": np.zeros(2)}, _ones_step(), 10, cfg, np.random.default_rng(0),
                evaluate=evaluate)  # fmt: skip
    assert res.stopped_early and res.best_epoch is None and len(res.history) == 2


def test_the_callers_history_keeps_the_epochs_before_a_raising_callback():
    history: list[dict[str, float]] = []

    def callback(epoch, record):
        if epoch == 2:
            raise RuntimeError("callback failed")

    cfg = TrainerConfig(n_epochs=10, batch_size=5, callbacks=[callback])
    with pytest.raises(RuntimeError, match="callback failed"):
        train({"W": np.zeros(2)}, _ones_step(), 10, cfg, np.random.default_rng(0),
              history=history)  # fmt: skip
    assert [r["epoch"] for r in history] == [1.0, 2.0, 3.0]


def test_rbm_after_a_divergence_saves_and_loads(tmp_path):
    """The file of a model that diverged loads: its momentum was reset, not left NaN."""
    import rbmrec

    G = (np.random.default_rng(0).normal(size=(60, 8)) * 100).astype(np.float32)
    m = rbmrec.RBM(n_hidden=4, visible="gaussian", sigma=0.01, n_epochs=30, learning_rate=0.9,
                   momentum=0.9, random_state=0)  # fmt: skip
    with pytest.raises(TrainingDivergedError):
        m.fit(G)
    assert m._velocity and all(np.all(v == 0.0) for v in m._velocity.values())
    assert not np.all(np.isfinite([v for r in m.history_ for v in r.values()]))
    m.save(tmp_path / "m.npz")  # its history's infinite metrics were refused as JSON
    loaded = rbmrec.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.weights_, m.weights_)
    assert str(loaded.history_) == str(m.history_)  # (NaN != NaN, so compare the text)


def test_rbm_history_and_epoch_count_survive_a_raising_callback():
    import rbmrec

    X = (np.random.default_rng(0).random((60, 8)) < 0.3).astype(np.float32)

    def stop_badly(epoch, metrics):
        if epoch == 2:
            raise RuntimeError("callback failed")

    kw = dict(n_hidden=4, cd_steps=[(0, 1), (3, 5)], random_state=0)
    m = rbmrec.RBM(n_epochs=10, callback=stop_badly, **kw)
    with pytest.raises(RuntimeError):
        m.fit(X)
    assert [r["epoch"] for r in m.history_] == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(m.weights_, rbmrec.RBM(n_epochs=3, **kw).fit(X).weights_)
    m.callback = None
    m.partial_fit(X)
    assert m.history_[-1]["epoch"] == 4.0 and m.history_[-1]["cd_steps"] == 5.0
    assert m.interrupted_ is False


def test_rating_rbm_keeps_the_history_before_a_raising_callback():
    import scipy.sparse as sp

    from rbmrec.models.rating import RatingRBM

    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((40, 12)) < 0.4) * rng.integers(1, 6, (40, 12)).astype(float))

    def stop_badly(epoch, metrics):
        if epoch == 1:
            raise RuntimeError("callback failed")

    m = RatingRBM(n_hidden=4, n_epochs=5, orientation="user", random_state=0,
                  callbacks=[stop_badly])  # fmt: skip
    with pytest.raises(RuntimeError):
        m.fit(X)
    assert [r["epoch"] for r in m.history_] == [1.0, 2.0]


def test_a_persistent_rbm_that_diverged_draws_new_chains_and_its_file_loads(tmp_path):
    import rbmrec

    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    m = rbmrec.RBM(n_hidden=4, visible="gaussian", persistent=True, learning_rate=1e3,
                   momentum=0.0, batch_size=16, random_state=0, num_threads=1)  # fmt: skip
    with pytest.raises(TrainingDivergedError):
        for _ in range(20):
            m.partial_fit(X)
    assert m._chains is None  # NaN chains are dropped; the next fit draws them from the data
    m.save(tmp_path / "m.npz")  # a NaN 'chains' array was refused by load
    np.testing.assert_array_equal(rbmrec.load(tmp_path / "m.npz").weights_, m.weights_)
