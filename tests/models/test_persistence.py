"""Model files: NumPy scalar hyperparameters, the fitted state kept by save/load, backward
compatibility with files written before those fields existed, and file permissions."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from test_rating_rbm import planted

import rbmrec
from rbmrec.models import persistence
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.rating import RatingRBM


@pytest.fixture(scope="module")
def data():
    X, _, _ = planted(n_users=40, n_items=16)
    return X


def _binary(n=40, nv=8, seed=0):
    return (np.random.default_rng(seed).random((n, nv)) < 0.3).astype(np.float32)


def _rewrite_meta(path, drop_meta=(), drop_arrays=(), member_drop=()):
    """Rewrite a saved model as a file from before some fields existed."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    for k in drop_meta:
        doc["meta"].pop(k, None)
    for mm in doc["meta"].get("members", {}).values():
        for k in member_drop:
            mm.pop(k, None)
    arrays = {k: v for k, v in arrays.items() if not k.startswith(tuple(drop_arrays) or ("\0",))}
    blob = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    np.savez(path, __meta__=blob, **arrays)


# --------------------------------------------------------------------- NumPy scalars (4)


def test_numpy_scalar_hyperparameters_are_saved_as_python_values(data, tmp_path):
    m = RatingRBM(n_hidden=np.int64(3), n_epochs=np.int64(1), learning_rate=np.float32(0.05),
                  orientation="user", random_state=np.int64(4), high_rating=np.float64(4.0),
                  persistent=np.bool_(True))  # fmt: skip
    back = rbmrec.load(m.fit(data).save(tmp_path / "r"))
    assert type(back.n_hidden) is int and back.n_hidden == 3
    assert type(back.n_epochs) is int
    assert type(back.learning_rate) is float and back.learning_rate == pytest.approx(0.05)
    assert type(back.persistent) is bool and back.persistent
    assert type(back.random_state) is int and back.random_state == 4
    u, i = data.nonzero()
    np.testing.assert_array_equal(back.predict(u, i), m.predict(u, i))

    im = ImplicitRBM(n_hidden=np.int64(3), n_epochs=1, n_models=np.int64(1),
                     init_std=np.float32(0.01), random_state=0).fit(data)  # fmt: skip
    back = rbmrec.load(im.save(tmp_path / "i"))
    assert type(back.n_hidden) is int and type(back.init_std) is float
    np.testing.assert_array_equal(back.score_items(data), im.score_items(data))

    levels = np.random.default_rng(0).integers(-1, 3, (20, 4))
    r = rbmrec.RBM(visible="softmax", n_levels=np.int64(3), n_hidden=np.int64(2), n_epochs=1,
                   random_state=0).fit(levels)  # fmt: skip
    back = rbmrec.load(rbmrec.save(r, tmp_path / "s"))
    assert type(back.n_levels) is int and back.n_levels == 3

    # metadata that is not a number still fails clearly, before any file is written
    m.momentum = object()
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        m.save(tmp_path / "x")
    assert not (tmp_path / "x.npz").exists()


# ------------------------------------------------------------------- fitted state (8)


@pytest.mark.parametrize("orientation", ["user", "both"])
def test_rating_rbm_keeps_seed_and_fit_bookkeeping(data, tmp_path, orientation):
    m = RatingRBM(n_hidden=3, n_epochs=2, orientation=orientation, random_state=7).fit(
        data, validation=data
    )
    back = rbmrec.load(m.save(tmp_path / "m"))
    assert back.random_state == 7
    assert back.batch_size_ == m.batch_size_ and back.batch_size_ is not None
    assert back.best_epoch_ == m.best_epoch_
    assert back.interrupted_ is False
    assert back.fit_seconds_ == pytest.approx(m.fit_seconds_)
    if orientation == "both":  # members keep their spawned seeds: refitting one reproduces it
        member = back.members_["user"]
        assert isinstance(member.random_state, np.random.SeedSequence)
        refit = RatingRBM(**{k: getattr(member, k) for k in RatingRBM._HYPER},
                          random_state=member.random_state).fit(data, validation=data)  # fmt: skip
        np.testing.assert_array_equal(refit.weights_, m.members_["user"].weights_)
    # fitting the loaded model again reproduces the saved one (same seed)
    refit = back.fit(data, validation=data)
    u, i = data.nonzero()
    np.testing.assert_array_equal(refit.predict(u, i), m.predict(u, i))


def test_implicit_rbm_keeps_seed_and_fit_bookkeeping(data, tmp_path):
    m = ImplicitRBM(n_hidden=3, n_epochs=2, n_models=1, patience=1, random_state=7).fit(
        data, validation=data
    )
    back = rbmrec.load(m.save(tmp_path / "i"))
    assert back.random_state == 7
    assert back.batch_size_ == m.batch_size_
    assert back.best_epoch_ == m.best_epoch_ and back.best_epoch_ is not None
    assert back.interrupted_ is False
    refit = back.fit(data, validation=data)
    np.testing.assert_array_equal(refit.weights_, m.weights_)


@pytest.mark.parametrize(
    "kw",
    [
        {"persistent": True, "momentum": 0.9},  # binary persistent chains
        {"momentum": 0.9, "cd_steps": [(0, 1), (2, 2)]},
        {"visible": "gaussian", "momentum": 0.5},
    ],
)
def test_rbm_partial_fit_after_load_continues_exactly(tmp_path, kw):
    X = _binary() if kw.get("visible") != "gaussian" else _binary().astype(np.float32) - 0.3
    r = rbmrec.RBM(n_hidden=3, n_epochs=2, batch_size=16, random_state=1, **kw).fit(X)
    back = rbmrec.load(rbmrec.save(r, tmp_path / "r"))
    for _ in range(2):
        r.partial_fit(X)
        back.partial_fit(X)
    np.testing.assert_array_equal(back.weights_, r.weights_)
    np.testing.assert_array_equal(back.visible_bias_, r.visible_bias_)
    np.testing.assert_array_equal(back.hidden_bias_, r.hidden_bias_)
    assert [h["epoch"] for h in back.history_] == [1.0, 2.0, 3.0, 4.0]
    # the random stream continues too
    np.testing.assert_array_equal(back.sample(3, steps=2), r.sample(3, steps=2))


def test_rbm_with_a_generator_seed_saves_its_position(tmp_path):
    X = _binary()
    r = rbmrec.RBM(n_hidden=3, n_epochs=1, random_state=np.random.default_rng(5)).fit(X)
    back = rbmrec.load(rbmrec.save(r, tmp_path / "r"))
    np.testing.assert_array_equal(back.sample(2, steps=2), r.sample(2, steps=2))


# ---------------------------------------------------------------- older files still load


def test_files_without_the_new_fields_load_with_defaults(data, tmp_path):
    m = RatingRBM(n_hidden=3, n_epochs=1, orientation="both", random_state=7).fit(data)
    path = m.save(tmp_path / "m")
    old = ("random_state", "interrupted", "fit_seconds", "fitted_batch_size")
    _rewrite_meta(path, drop_meta=old, member_drop=old)
    back = rbmrec.load(path)
    assert back.random_state is None and back.interrupted_ is False and back.fit_seconds_ is None
    u, i = data.nonzero()
    np.testing.assert_array_equal(back.predict(u, i), m.predict(u, i))

    im = ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1, random_state=7).fit(data)
    path = im.save(tmp_path / "i")
    _rewrite_meta(path, drop_meta=("random_state", "batch_size_", "best_epoch_", "interrupted_"))
    back = rbmrec.load(path)
    assert back.random_state is None and back.best_epoch_ is None and not back.interrupted_
    np.testing.assert_array_equal(back.score_items(data), im.score_items(data))

    X = _binary()
    r = rbmrec.RBM(n_hidden=3, n_epochs=1, persistent=True, random_state=1).fit(X)
    path = rbmrec.save(r, tmp_path / "r")
    _rewrite_meta(path, drop_meta=("rng_state",), drop_arrays=("velocity_", "chains"))
    back = rbmrec.load(path)
    np.testing.assert_array_equal(back.transform(X), r.transform(X))
    back.partial_fit(X)  # restarts momentum and the chains, as files of that version did
    assert len(back.history_) == 2


# -------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_saved_files_get_the_permissions_of_a_normal_file(data, tmp_path, umask):
    m = rbmrec.RBM(n_hidden=2, n_epochs=1, random_state=0).fit(_binary())
    old = os.umask(umask)
    try:
        path = rbmrec.save(m, tmp_path / "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_overwriting_keeps_the_existing_files_permissions(tmp_path):
    m = rbmrec.RBM(n_hidden=2, n_epochs=1, random_state=0).fit(_binary())
    path = rbmrec.save(m, tmp_path / "m")
    path.chmod(0o640)
    rbmrec.save(m, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_umask_is_read_without_changing_it():
    old = os.umask(0o027)
    try:
        assert persistence._umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)


# ---- saving unfitted models, persistent chains, model files with NaN metrics


def test_saving_an_unfitted_model_through_rbmrec_save_is_not_fitted_error(tmp_path):
    from rbmrec.errors import NotFittedError

    for model in (RatingRBM(), ImplicitRBM()):
        with pytest.raises(NotFittedError, match="not fitted"):
            rbmrec.save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_files_that_are_not_model_archives_are_model_file_errors(data, tmp_path):
    from rbmrec.errors import ModelFileError

    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(3))
    with pytest.raises(ModelFileError, match=r"not an \.npz archive"):
        rbmrec.load(npy)
    p = tmp_path / "m.npz"
    RatingRBM(n_hidden=3, n_epochs=1, orientation="user", random_state=0).fit(data).save(p)
    with np.load(p, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    for field, value, match in (
        ("class", ["x"], "malformed model class"),
        ("meta", [1], "malformed model metadata"),
    ):
        bad = {**doc, field: value}
        arrays["__meta__"] = np.frombuffer(json.dumps(bad).encode(), dtype=np.uint8)
        q = tmp_path / f"bad_{field}.npz"
        np.savez(q, **arrays)
        with pytest.raises(ModelFileError, match=match):
            rbmrec.load(q)


def test_an_rbm_file_with_a_malformed_generator_state_is_a_model_file_error(tmp_path):
    from rbmrec.errors import ModelFileError

    p = tmp_path / "r.npz"
    rbm = rbmrec.RBM(n_hidden=3, n_epochs=1, random_state=np.random.default_rng(0))
    rbmrec.save(rbm.fit(_binary()), p)
    with np.load(p, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    assert "rng_state" in doc["meta"]
    doc["meta"]["rng_state"] = "x"
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    np.savez(p, **arrays)
    with pytest.raises(ModelFileError, match="malformed"):
        rbmrec.load(p)


def test_saving_to_a_symbolic_link_writes_through_it(data, tmp_path):
    a = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", random_state=0).fit(data)
    b = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", random_state=1).fit(data)
    target = tmp_path / "keep.npz"
    a.save(target)
    link = tmp_path / "link.npz"
    link.symlink_to(target.name)
    assert b.save(link) == link
    assert link.is_symlink()
    np.testing.assert_array_equal(
        rbmrec.load(target).predict([0, 1], [2, 3]), b.predict([0, 1], [2, 3])
    )
