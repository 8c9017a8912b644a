"""Model files whose arrays are inconsistent are refused at load time (ModelFileError naming
the array) instead of crashing the kernels or predicting garbage; RBM keeps a SeedSequence
``random_state`` through save/load; RBM has a ``save`` method like the other models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rbmrec
from rbmrec.data import make_ratings
from rbmrec.errors import ModelFileError, NotFittedError
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.rating import RatingRBM
from rbmrec.models.rbm import RBM

Arrays = dict[str, np.ndarray]
Tamper = Callable[[Arrays, dict[str, Any]], None]


def _ratings():
    return make_ratings(30, 12, density=0.35, seed=0).user_items


def _rbm_data(visible: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if visible == "bernoulli":
        return (rng.random((30, 6)) < 0.3).astype(np.float32)
    if visible == "gaussian":
        return rng.normal(size=(30, 6))
    return rng.integers(-1, 3, (30, 6))


def _fit(key: str) -> Any:
    """A tiny fitted model of each kind the checks cover."""
    kw = {"n_hidden": 3, "n_epochs": 1, "random_state": 0}
    X = _ratings()
    if key.startswith("rating_"):
        variants = {
            "rating_user": {"orientation": "user"},
            "rating_item": {"orientation": "item", "conditional": False},
            "rating_both": {"orientation": "both"},
            "rating_factored": {"orientation": "user", "conditional": False, "n_factors": 2},
            "rating_gaussian": {"orientation": "user", "visible": "gaussian"},
        }
        return RatingRBM(**kw, **variants[key]).fit(X)
    if key == "implicit":
        return ImplicitRBM(**kw, n_models=2).fit(X)
    if key == "rbm_bernoulli":
        return RBM(**kw, persistent=True, batch_size=8).fit(_rbm_data("bernoulli"))
    if key == "rbm_gaussian":
        sigma = np.linspace(0.5, 2.0, 6)
        return RBM(**kw, visible="gaussian", sigma=sigma).fit(_rbm_data("gaussian"))
    return RBM(**kw, visible="softmax", n_levels=3).fit(_rbm_data("softmax"))


KEYS = (
    "rating_user", "rating_item", "rating_both", "rating_factored", "rating_gaussian",
    "implicit", "rbm_bernoulli", "rbm_gaussian", "rbm_softmax",
)  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple[Any, Path]]:
    """Each fitted model and the file it was saved to (fitted once per module)."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for key in KEYS:
        model = _fit(key)
        out[key] = (model, rbmrec.save(model, folder / key))
    return out


def _tampered(path: Path, tamper: Tamper, dest: Path) -> Path:
    """A copy of the model file ``path`` with ``tamper(arrays, meta)`` applied."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    doc = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    tamper(arrays, doc["meta"])
    blob = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    np.savez(dest, __meta__=blob, **arrays)
    return dest


def _set(name: str, index: Any, value: Any) -> Tamper:
    def f(a: Arrays, meta: dict[str, Any]) -> None:
        a[name][index] = value

    return f


def _replace(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Tamper:
    def f(a: Arrays, meta: dict[str, Any]) -> None:
        a[name] = fn(a[name])

    return f


def _drop(name: str) -> Tamper:
    def f(a: Arrays, meta: dict[str, Any]) -> None:
        del a[name]

    return f


def _meta(path: tuple[str, ...], value: Any) -> Tamper:
    def f(a: Arrays, meta: dict[str, Any]) -> None:
        d = meta
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return f


def _nan_at_0(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.flat[0] = np.nan
    return x


def _short(x: np.ndarray) -> np.ndarray:
    return x[:-1]


def _first_slice(x: np.ndarray) -> np.ndarray:
    return x[..., 0]


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def _f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def _decreasing(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[2] = x[3] + 1
    return x


BIG = 10**6
CASES = [
    # RatingRBM, user orientation, conditional
    ("rating_user", _set("train_indices", 0, BIG), "train_indices"),
    ("rating_user", _set("train_indices", 0, -1), "train_indices"),
    ("rating_user", _set("r_indices", 0, BIG), "r_indices"),
    ("rating_user", _set("train_levels", 0, 100), "train_levels"),
    ("rating_user", _set("train_indptr", 5, BIG), "train_indptr"),
    ("rating_user", _replace("train_indptr", _decreasing), "train_indptr"),
    ("rating_user", _set("r_indptr", -1, 3), "r_indptr"),
    ("rating_user", _replace("train_indices", _f64), "train_indices"),
    ("rating_user", _replace("param_b", _short), "param_b"),
    ("rating_user", _replace("param_W", _nan_at_0), "param_W"),
    ("rating_user", _replace("param_W", _first_slice), "param_W"),
    ("rating_user", _replace("param_W", _f64), "param_W"),
    ("rating_user", _replace("param_b", _f16), "param_b"),  # float16 only for W and D
    ("rating_user", _replace("param_c", _f64), "param_c"),
    ("rating_user", _replace("param_D", _short), "param_D"),
    ("rating_user", _drop("param_D"), "param_D"),
    ("rating_user", _replace("values", lambda v: v[::-1].copy()), "values"),
    ("rating_user", _meta(("n_hidden",), 99), "n_hidden"),
    ("rating_user", _meta(("n_items",), 13), "n_items"),
    # item orientation: groups are users
    ("rating_item", _set("train_indices", 0, 30), "train_indices"),
    ("rating_item", _replace("param_b", _short), "param_b"),
    ("rating_item", _replace("param_W", _f64), "param_W"),
    # both: the members' arrays carry their prefix
    ("rating_both", _replace("user__param_W", _nan_at_0), "user__param_W"),
    ("rating_both", _set("item__train_indices", 0, BIG), "item__train_indices"),
    ("rating_both", _set("user__r_indices", 0, BIG), "user__r_indices"),
    ("rating_both", _replace("item__param_b", _short), "item__param_b"),
    ("rating_both", _meta(("members", "user", "n_hidden"), 99), "n_hidden"),
    ("rating_both", _meta(("blend_weight",), 2.0), "blend_weight"),
    # factored
    ("rating_factored", _replace("param_B", _short), "param_B"),
    ("rating_factored", _replace("param_A", _nan_at_0), "param_A"),
    ("rating_factored", _meta(("n_factors",), 5), "param_A"),
    # gaussian: standardised values instead of levels
    ("rating_gaussian", _replace("train_levels", _nan_at_0), "train_levels"),
    ("rating_gaussian", _replace("param_b", _short), "param_b"),
    ("rating_gaussian", _meta(("scale",), [3.0, 0.0]), "scale"),
    # ImplicitRBM
    ("implicit", _set("user_indices", 0, BIG), "user_indices"),
    ("implicit", _set("user_indptr", 5, BIG), "user_indptr"),
    ("implicit", _replace("user_indptr", _short), "user_indptr"),
    ("implicit", _set("user_data", 0, -1.0), "user_data"),
    ("implicit", _replace("weights", _nan_at_0), "weights"),
    ("implicit", _replace("weights", _f64), "weights"),
    ("implicit", _replace("visible_bias", _short), "visible_bias"),
    ("implicit", _replace("hidden_bias", _short), "hidden_bias"),
    ("implicit", _meta(("params", "n_hidden"), 99), "n_hidden"),
    # RBM
    ("rbm_bernoulli", _replace("weights", _nan_at_0), "weights"),
    ("rbm_bernoulli", _replace("weights", _f16), "weights"),
    ("rbm_bernoulli", _replace("visible_bias", _short), "visible_bias"),
    ("rbm_bernoulli", _replace("hidden_bias", lambda x: x.astype(np.int64)), "hidden_bias"),
    ("rbm_bernoulli", _replace("chains", _nan_at_0), "chains"),
    ("rbm_bernoulli", _replace("velocity_W", _nan_at_0), "velocity_W"),
    ("rbm_bernoulli", _meta(("params", "n_hidden"), 99), "n_hidden"),
    ("rbm_gaussian", _replace("sigma", _short), "sigma"),
    ("rbm_gaussian", _set("sigma", 0, 0.0), "sigma"),
    ("rbm_softmax", _replace("visible_bias", _first_slice), "visible_bias"),
    ("rbm_softmax", _meta(("n_levels_",), 200), "n_levels_"),
]


@pytest.mark.parametrize(
    "key, tamper, match", CASES, ids=[f"{k}-{m}-{i}" for i, (k, _, m) in enumerate(CASES)]
)
def test_inconsistent_model_file_is_refused_at_load(saved, tmp_path, key, tamper, match):
    _, path = saved[key]
    bad = _tampered(path, tamper, tmp_path / "bad.npz")
    with pytest.raises(ModelFileError, match=match):
        rbmrec.load(bad)


def _outputs(model: Any) -> list[np.ndarray]:
    """Everything the checks must leave unchanged: predictions, scores, transforms."""
    if isinstance(model, RatingRBM):
        X = _ratings()
        u, i = np.nonzero(np.ones(X.shape))
        ids, scores = model.recommend(np.arange(5), X[:5], N=4)
        return [model.predict(u, i), ids, scores]
    if isinstance(model, ImplicitRBM):
        X = _ratings()
        ids, scores = model.recommend(np.arange(X.shape[0]), X, N=4)
        return [model.score_items(X), ids, scores]
    X = _rbm_data(model.visible)
    return [model.transform(X), model.log_likelihood(X), model.weights_]


@pytest.mark.parametrize("key", KEYS)
def test_untampered_file_loads_and_predicts_bit_identically(saved, tmp_path, key):
    model, path = saved[key]
    back = rbmrec.load(path)
    for got, want in zip(_outputs(back), _outputs(model), strict=True):
        np.testing.assert_array_equal(got, want)
    # and it saves again to a file that loads
    rbmrec.load(rbmrec.save(back, tmp_path / "again"))


def _same_seed(a: Any, b: Any) -> bool:
    return (
        isinstance(a, np.random.SeedSequence)
        and isinstance(b, np.random.SeedSequence)
        and (a.entropy, a.spawn_key, a.pool_size) == (b.entropy, b.spawn_key, b.pool_size)
    )


def test_rbm_keeps_a_seed_sequence_random_state(tmp_path):
    X = _rbm_data("bernoulli")
    ss = np.random.SeedSequence(1234, spawn_key=(3,))
    model = RBM(n_hidden=3, n_epochs=1, random_state=ss).fit(X)
    back = rbmrec.load(rbmrec.save(model, tmp_path / "m"))
    assert _same_seed(back.get_params()["random_state"], ss)
    assert back.get_params().keys() == model.get_params().keys()
    # a refit of the loaded model reproduces a refit of the original
    a = RBM(**model.get_params()).fit(X)
    b = RBM(**back.get_params()).fit(X)
    np.testing.assert_array_equal(a.weights_, b.weights_)

    # files from before SeedSequences were saved (an int or None) still load
    for old in (7, None):
        p = _tampered(
            tmp_path / "m.npz", _meta(("params", "random_state"), old), tmp_path / "old.npz"
        )
        assert rbmrec.load(p).random_state == old


def test_rbm_save_method(tmp_path):
    X = _rbm_data("bernoulli")
    model = RBM(n_hidden=3, n_epochs=1, random_state=0).fit(X)
    path = model.save(tmp_path / "sub" / "model")
    assert isinstance(path, Path) and path == tmp_path / "sub" / "model.npz" and path.is_file()
    back = rbmrec.load(path)
    assert isinstance(back, RBM)
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
    with pytest.raises(NotFittedError):
        RBM(n_hidden=3).save(tmp_path / "unfitted")
    assert not (tmp_path / "unfitted.npz").exists()
