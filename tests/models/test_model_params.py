"""get_params / set_params / repr of the three models (scikit-learn's conventions)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.evaluation.report_rows import model_params as _params

MODELS = [rbmrec.RBM, rbmrec.RatingRBM, rbmrec.ImplicitRBM]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_get_params_lists_every_constructor_argument_in_order(cls):
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    model = cls()
    params = model.get_params()
    assert list(params) == names
    assert cls(**params).get_params() == params
    assert model.get_params(deep=False) == params
    assert repr(model).startswith(f"{cls.__name__}({names[0]}=")


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_set_params_sets_named_arguments_and_refuses_unknown_ones(cls):
    model = cls()
    assert model.set_params(n_hidden=7, random_state=3) is model
    assert (model.n_hidden, model.random_state) == (7, 3)
    with pytest.raises(ValueError, match=r"invalid parameter\(s\) 'n_hiden'.* n_hidden"):
        model.set_params(n_hidden=9, n_hiden=9)
    assert model.n_hidden == 7  # nothing set


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_harness_params_column_leaves_out_reporting_arguments(cls):
    model = cls(random_state=5)
    shown = _params(model)
    assert "'random_state': 5" in shown and "'n_hidden'" in shown
    assert "progress" not in shown and "callback" not in shown


def _data():
    rng = np.random.default_rng(0)
    mask = rng.random((40, 15)) < 0.4
    return sp.csr_matrix(np.where(mask, rng.integers(1, 6, (40, 15)), 0).astype(float))


def test_set_params_after_fit_rating_rbm():
    X = _data()
    m = rbmrec.RatingRBM(n_hidden=4, n_epochs=1, orientation="user", conditional=False,
                         random_state=0).fit(X)  # fmt: skip
    before = m.predict([0, 1], [2, 3])
    m.set_params(num_threads=1, prediction="exact")  # inference settings: at once
    assert not np.allclose(m.predict([0, 1], [2, 3]), before)
    m.set_params(n_hidden=5)  # structure: refused until the next fit
    with pytest.raises(ValueError, match="n_hidden is 5 but the model was fitted with n_hidden=4"):
        m.predict([0], [1])
    assert m.fit(X).weights_.shape[-1] == 5


def test_set_params_after_fit_rbm(tmp_path):
    X = (np.random.default_rng(0).random((40, 6)) < 0.3).astype(np.float32)
    m = rbmrec.RBM(n_hidden=3, n_epochs=2, random_state=0).fit(X)
    before = m.transform(X)
    m.set_params(num_threads=1, learning_rate=0.1)  # not structural: no effect on scoring
    np.testing.assert_array_equal(m.transform(X), before)
    m.set_params(n_hidden=10, visible="gaussian")  # structure: refused until the next fit
    with pytest.raises(ValueError, match="visible is 'gaussian' but the model was fitted"):
        m.transform(X)
    with pytest.raises(ValueError, match="visible is 'gaussian'"):
        m.sample(2)
    with pytest.raises(ValueError, match="visible is 'gaussian'"):
        m.save(tmp_path / "m")
    assert m.fit(X).weights_.shape == (6, 10)


def test_set_params_after_fit_implicit_rbm():
    X = _data()
    m = rbmrec.ImplicitRBM(n_hidden=4, n_epochs=1, n_models=1, random_state=0).fit(X)
    m.set_params(popularity_weight=0.5, num_threads=1)
    assert np.all(np.isfinite(m.score_items(X[:2])))
    m.set_params(length_norm=0.0)
    with pytest.raises(ValueError, match="length_norm"):
        m.score_items(X[:2])
