""":class:`rbmrec.RBM`: arguments changed after ``fit``, thread counts, values beyond the
parameter dtype, COO duplicates, the parameters API, the persisted ``sigma`` argument and
float16 input."""

from __future__ import annotations

import json

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from test_rbm_estimator import _data as _estimator_data

import rbmrec

FAST = {"n_hidden": 3, "n_epochs": 2, "batch_size": 16, "random_state": 0}


def _data(visible, n=40, nv=6, seed=0):
    """test_rbm_estimator's data, with float64 Gaussian values (the tests here write 1e39
    into them, which a float32 array would turn into inf)."""
    return _estimator_data(visible, n, nv, seed, gaussian_dtype=np.float64)


def _snapshot(model):
    return {k: v.copy() for k, v in vars(model).items() if isinstance(v, np.ndarray)}


def _assert_unchanged(model, before):
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(model, k), v, err_msg=k)


def _set(model, params):
    """Set constructor arguments (by hand: the tests of other fixes do not need set_params)."""
    for k, v in params.items():
        setattr(model, k, v)
    return model


# ----------------------------------------------------------------- 1. arguments changed after fit

CHANGED = [
    ("bernoulli", {"n_hidden": 2}, "bernoulli", "n_hidden"),  # crashed the process
    ("bernoulli", {"n_hidden": 400}, "bernoulli", "n_hidden"),  # wrote past h_diff
    ("bernoulli", {"visible": "gaussian"}, "bernoulli", "visible"),  # trained silently
    ("bernoulli", {"visible": "softmax"}, "softmax", "visible"),  # Numba TypingError
    ("bernoulli", {"dtype": "float64"}, "bernoulli", "dtype"),
    ("softmax", {"n_levels": 4}, "softmax", "n_levels"),
    ("gaussian", {"sigma": 0.5}, "gaussian", "sigma"),
]


@pytest.mark.parametrize(("visible", "change", "data_kind", "name"), CHANGED)
def test_partial_fit_refuses_arguments_changed_after_fit(visible, change, data_kind, name):
    rbm = rbmrec.RBM(visible=visible, **{**FAST, "n_hidden": 40}).fit(_data(visible))
    before = _snapshot(rbm)
    saved = {k: getattr(rbm, k) for k in change}
    _set(rbm, change)
    with pytest.raises(ValueError, match=rf"^{name} is .* fitted with {name}"):
        rbm.partial_fit(_data(data_kind))
    _assert_unchanged(rbm, before)
    # Back to the fitted values, partial_fit continues; fit trains a model with the new ones.
    _set(rbm, saved).partial_fit(_data(visible))
    assert len(rbm.history_) == FAST["n_epochs"] + 1
    _set(rbm, change).fit(_data(data_kind))
    if name == "n_hidden":
        assert rbm.weights_.shape == (6, change["n_hidden"])


INFERENCE = {
    "transform": lambda m, X: m.transform(X),
    "free_energy": lambda m, X: m.free_energy(X),
    "reconstruct": lambda m, X: m.reconstruct(X),
    "gibbs": lambda m, X: m.gibbs(X, steps=2),
    "sample": lambda m, X: m.sample(3, steps=2),
    "log_partition": lambda m, X: m.log_partition(),
    "log_likelihood": lambda m, X: m.log_likelihood(X),
}


@pytest.mark.parametrize(("visible", "change", "data_kind", "name"), CHANGED)
def test_inference_and_save_refuse_arguments_changed_after_fit(
    tmp_path, visible, change, data_kind, name
):
    """After a structural argument changes, every inference method refuses (like
    partial_fit and save, RatingRBM, ImplicitRBM and the set_params docstring) rather than
    follow the fitted parameters silently, until the argument is set back."""
    X = _data(visible)
    rbm = rbmrec.RBM(visible=visible, **FAST).fit(X)
    before = {k: f(rbm, X) for k, f in INFERENCE.items() if k not in ("gibbs", "sample")}
    saved = {k: getattr(rbm, k) for k in change}
    rbm.set_params(**change)
    for action, call in INFERENCE.items():
        with pytest.raises(ValueError, match=rf"^{name} is .*{action} needs the fitted"):
            call(rbm, X)
    with pytest.raises(ValueError, match=rf"^{name} is .*save"):
        rbmrec.save(rbm, tmp_path / "m")
    assert not (tmp_path / "m.npz").exists()
    rbm.set_params(**saved)  # the fitted values back: the same model again
    for k, want in before.items():
        np.testing.assert_array_equal(INFERENCE[k](rbm, X), want, err_msg=k)


# ----------------------------------------------------------------- 2. num_threads above the cores


def test_num_threads_above_the_available_threads_is_capped(tmp_path):
    many = numba.config.NUMBA_NUM_THREADS + 3
    before = numba.get_num_threads()
    X = _data("bernoulli")
    rbm = rbmrec.RBM(num_threads=many, **FAST).fit(X)
    assert numba.get_num_threads() == before
    ref = rbmrec.RBM(num_threads=1, **FAST).fit(X)
    np.testing.assert_array_equal(rbm.weights_, ref.weights_)
    # A model saved on a machine with more threads loads and runs here.
    back = rbmrec.load(rbmrec.save(rbm, tmp_path / "m"))
    assert back.num_threads == many
    back.partial_fit(X)
    with pytest.raises(ValueError, match="num_threads"):
        rbmrec.RBM(num_threads=-1, **FAST).fit(X)


# ----------------------------------------------------------------- 3. values beyond float32


def test_finite_values_beyond_the_parameter_dtype_are_named():
    X = _data("gaussian")
    big = X.copy()
    big[0, 0] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"X holds 1e\+39, beyond the range .* float32"):
        rbmrec.RBM(visible="gaussian", **FAST).fit(big)
    rbm = rbmrec.RBM(visible="gaussian", **FAST).fit(X)
    for method in (rbm.transform, rbm.free_energy, rbm.reconstruct, rbm.log_likelihood):
        with pytest.raises(ValueError, match="X holds"):
            method(big)
    with pytest.raises(ValueError, match="validation holds"):
        rbmrec.RBM(visible="gaussian", **FAST).fit(X, validation=big)
    f64 = rbmrec.RBM(visible="gaussian", dtype="float64", **FAST).fit(X)
    assert np.all(np.isfinite(f64.transform(big)))


# ----------------------------------------------------------------- 4. sigma / init_scale in dtype


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"visible": "gaussian", "sigma": 1e-50}, "sigma"),  # 0 in float32
        ({"visible": "gaussian", "sigma": 1e39}, "sigma"),  # inf in float32
        ({"visible": "gaussian", "sigma": 1e-39}, "sigma"),  # 1 / sigma is inf in float32
        ({"visible": "gaussian", "sigma": [1.0, 1.0, 1.0, 1.0, 1.0, 1e39]}, "sigma"),
        ({"init_scale": 1e39}, "init_scale"),  # inf in float32
        ({"init_scale": 3e38}, "init_scale"),  # finite, but draws inf weights
    ],
)
def test_sigma_and_init_scale_are_checked_in_the_parameter_dtype(params, name):
    visible = params.get("visible", "bernoulli")
    X = _data(visible)
    with pytest.raises(ValueError, match=name):
        rbmrec.RBM(**{**FAST, **params}).fit(X)
    with pytest.raises(ValueError, match=name):
        rbmrec.RBM(**{**FAST, **params}).partial_fit(X)
    # A failed refit leaves the fitted model as it was (no inf weights left behind).
    rbm = rbmrec.RBM(visible=visible, **FAST).fit(X)
    before = _snapshot(rbm)
    with pytest.raises(ValueError, match=name):
        _set(rbm, params).fit(X)
    _assert_unchanged(rbm, before)
    # float64 parameters hold these values.
    if name == "sigma" and np.ndim(params["sigma"]) == 0:
        ok = rbmrec.RBM(**{**FAST, **params, "dtype": "float64"})
        ok._init_params(ok._check_X(X, fitting=True), 6, np.random.default_rng(0))
        assert np.all(ok.sigma_ == params["sigma"])


# ----------------------------------------------------------------- 5. COO duplicates (softmax)


def test_softmax_duplicates_in_coo_input_are_refused_not_summed():
    rbm = rbmrec.RBM(visible="softmax", **FAST).fit(_data("softmax"))
    # levels 0 and 1 (stored + 1) of group 1 in row 0: scipy would sum them into level 2
    coo = sp.coo_matrix((np.array([1.0, 2.0]), ([0, 0], [1, 1])), shape=(1, 6))
    csr = sp.csr_matrix((np.array([1.0, 2.0]), np.array([1, 1]), np.array([0, 2])), shape=(1, 6))
    csc = sp.csc_matrix(
        (np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 0, 2, 2, 2, 2, 2])), shape=(1, 6)
    )
    for X in (coo, csr, csc):
        with pytest.raises(ValueError, match=r"duplicate .*\(row 0, column 1\) is stored 2"):
            rbm.free_energy(X)
    train = sp.vstack([sp.coo_matrix(_data("softmax") + 1), coo]).tocoo()
    with pytest.raises(ValueError, match="duplicate"):
        rbmrec.RBM(visible="softmax", **FAST).fit(train)


# ----------------------------------------------------------------- 6. get_params / set_params


def test_get_params_set_params_and_repr():
    rbm = rbmrec.RBM(visible="gaussian", sigma=0.5, n_hidden=5, random_state=3)
    params = rbm.get_params()
    assert params["sigma"] == 0.5 and params["n_hidden"] == 5 and params["random_state"] == 3
    assert list(params) == list(rbmrec.RBM().get_params())
    assert rbmrec.RBM(**params).get_params() == params
    assert repr(rbm).startswith("RBM(n_hidden=5, visible='gaussian', n_levels=None, sigma=0.5,")
    assert eval(repr(rbmrec.RBM(n_epochs=3)), {"RBM": rbmrec.RBM}).get_params() == (
        rbmrec.RBM(n_epochs=3).get_params()
    )
    assert rbm.set_params(n_hidden=7, learning_rate=0.1) is rbm
    assert (rbm.n_hidden, rbm.learning_rate) == (7, 0.1)
    with pytest.raises(ValueError, match="'n_hiden'"):
        rbm.set_params(n_hidden=8, n_hiden=8)
    assert rbm.n_hidden == 7  # nothing set


# ----------------------------------------------------------------- 7. sigma argument persisted


@pytest.mark.parametrize("sigma", [None, 0.5, np.linspace(0.5, 1.0, 6)])
def test_loaded_gaussian_model_keeps_its_sigma_argument(tmp_path, sigma):
    X = _data("gaussian")
    rbm = rbmrec.RBM(visible="gaussian", sigma=sigma, **FAST).fit(X)
    back = rbmrec.load(rbmrec.save(rbm, tmp_path / "m"))
    if sigma is None or np.ndim(sigma) == 0:
        assert back.sigma == sigma
    else:
        np.testing.assert_array_equal(back.sigma, sigma)
    np.testing.assert_array_equal(back.sigma_, rbm.sigma_)
    np.testing.assert_array_equal(back.partial_fit(X).weights_, rbm.partial_fit(X).weights_)
    if np.ndim(sigma) == 0:  # refits on data of another width, like the saved model
        again = rbmrec.RBM(visible="gaussian", sigma=back.sigma, **FAST).fit(X[:, :4])
        assert again.sigma_.shape == (4,)
        assert back.fit(X[:, :4]).n_visible_ == 4


def _drop_sigma_argument(path):
    """Rewrite ``path`` as a file of the previous layout (no saved sigma argument)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays["__meta__"].tobytes().decode("utf-8"))
    del doc["meta"]["params"]["sigma"]
    arrays.pop("sigma_param", None)
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("sigma", "restored"), [(None, None), (1.0, None), (0.5, 0.5), ([0.5, 1, 1, 1, 1, 1], "array")]
)
def test_files_without_the_sigma_argument_still_load(tmp_path, sigma, restored):
    X = _data("gaussian")
    rbm = rbmrec.RBM(visible="gaussian", sigma=sigma, **FAST).fit(X)
    path = rbmrec.save(rbm, tmp_path / "m")
    _drop_sigma_argument(path)
    back = rbmrec.load(path)
    if restored == "array":
        np.testing.assert_array_equal(back.sigma, rbm.sigma_)
    else:
        assert back.sigma == restored
    np.testing.assert_array_equal(back.free_energy(X), rbm.free_energy(X))
    np.testing.assert_array_equal(back.partial_fit(X).weights_, rbm.partial_fit(X).weights_)
    if restored != "array":
        assert back.fit(X[:, :4]).n_visible_ == 4


# ----------------------------------------------------------------- 8. float16 input


def test_float16_input_is_accepted_as_float32():
    X = _data("bernoulli")
    rbm = rbmrec.RBM(**FAST).fit(X.astype(np.float16))
    ref = rbmrec.RBM(**FAST).fit(X)
    np.testing.assert_array_equal(rbm.weights_, ref.weights_)
    np.testing.assert_array_equal(rbm.transform(X.astype(np.float16)), ref.transform(X))
    g = rbmrec.RBM(visible="gaussian", **FAST).fit(_data("gaussian"))
    assert np.all(np.isfinite(g.free_energy(np.full((2, 6), 60000, dtype=np.float16))))
