"""rbmrec.RBM as a scikit-learn estimator: scikit-learn's own estimator checks, its tags,
and its use in a Pipeline and GridSearchCV. scikit-learn is a test dependency only."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec

pytest.importorskip("sklearn", minversion="1.6")

from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_estimator

#: Small and quick: every check fits a few times.
FAST = {"n_hidden": 2, "n_epochs": 2, "batch_size": 8, "random_state": 0}

#: The checks RBM fails on purpose, each with its reason (scikit-learn reports them as
#: expected failures; any other failing check fails the test).
EXPECTED_FAILED_CHECKS = {
    "check_complex_data": (
        "complex X is refused with a TypeError naming its dtype, like every non-numeric "
        "dtype (a wrong type, not a wrong value); scikit-learn expects a ValueError"
    ),
    "check_dtype_object": (
        "an object array is refused with a TypeError naming its dtype rather than converted "
        "element by element (strings and other objects are never guessed into numbers); "
        "scikit-learn expects numbers in an object array to be accepted"
    ),
}


def test_gaussian_rbm_passes_scikit_learns_estimator_checks():
    """Every check but the two named above. The checks feed real-valued data of any range,
    which only Gaussian visible units model (bernoulli units take [0, 1], softmax units
    integer levels); the three families share the code the checks exercise (input checks,
    fitted attributes, cloning, pickling, transform) apart from those value ranges."""
    rbm = rbmrec.RBM(visible="gaussian", **FAST)
    with warnings.catch_warnings():
        # RBM follows the protocol without inheriting scikit-learn's BaseEstimator (no
        # runtime dependency), which check_estimator notes in a warning.
        warnings.filterwarnings("ignore", "Estimator RBM does not inherit", UserWarning)
        warnings.filterwarnings("ignore", "Skipping check check_array_api_input")
        results = check_estimator(rbm, expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    xfail = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfail == set(EXPECTED_FAILED_CHECKS)  # each listed check does fail
    assert sum(r["status"] == "passed" for r in results) > 40


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian", "softmax"])
def test_tags_describe_the_input_each_family_takes(visible):
    tags = get_tags(rbmrec.RBM(visible=visible, dtype="float64"))
    assert tags.input_tags.sparse and not tags.input_tags.allow_nan
    assert tags.input_tags.positive_only == (visible == "bernoulli")
    assert not tags.target_tags.required and tags.transformer_tags is not None
    assert tags.transformer_tags.preserves_dtype == ["float64"]  # the dtype argument
    assert get_tags(rbmrec.RBM(dtype="float16")).transformer_tags.preserves_dtype == []


def test_rbm_module_does_not_import_scikit_learn():
    code = (
        "import sys, numpy as np, rbmrec; "
        "rbmrec.RBM(n_hidden=2, n_epochs=1).fit(np.eye(4)); "
        "assert 'sklearn' not in sys.modules, 'sklearn imported'"
    )
    root = Path(__file__).resolve().parents[2]  # so the child imports this rbmrec
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_unfitted_model_has_no_fitted_attributes():
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    rbm = rbmrec.RBM(**FAST)
    assert not hasattr(rbm, "weights_") and not hasattr(rbm, "n_features_in_")
    with pytest.raises(SkNotFitted):
        check_is_fitted(rbm)
    X = (np.random.default_rng(0).random((30, 5)) < 0.4).astype(np.float32)
    rbm.fit(X)
    check_is_fitted(rbm)
    assert rbm.n_features_in_ == rbm.n_visible_ == 5
    np.testing.assert_array_equal(rbm.fit_transform(X), rbm.transform(X))
    again = pickle.loads(pickle.dumps(rbm))
    np.testing.assert_array_equal(again.transform(X), rbm.transform(X))


@pytest.mark.parametrize("visible", ["bernoulli", "softmax"])
def test_input_errors_use_scikit_learns_wording(visible):
    X = np.zeros((4, 3), dtype=np.int64)
    rbm = rbmrec.RBM(visible=visible, n_levels=2 if visible == "softmax" else None, **FAST)
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(4, 0\)\) while a minimum"):
        rbm.fit(X[:, :0])
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 3\)\)"):
        rbm.fit(X[:0])
    with pytest.raises(ValueError, match="Reshape your data"):
        rbm.fit(X[0])
    rbm.fit(X if visible == "softmax" else X.astype(np.float32))
    with pytest.raises(ValueError, match="X has 2 features, but RBM is expecting 3 features"):
        rbm.transform(X[:, :2])
    with pytest.raises(ValueError, match="X has 2 features"):
        rbm.transform(sp.csr_matrix(X[:, :2]))


def test_pipeline_and_grid_search_on_binarised_digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    X, y = load_digits(return_X_y=True)
    X = (X[:400] > 7).astype(np.float32)
    y = y[:400]
    rbm = rbmrec.RBM(n_hidden=32, n_epochs=10, learning_rate=0.05, batch_size=10, random_state=0)
    pipe = Pipeline([("rbm", rbm), ("clf", LogisticRegression(C=100, max_iter=1000))])
    search = GridSearchCV(pipe, {"rbm__n_hidden": [16, 32]}, cv=2).fit(X, y)
    assert search.best_params_["rbm__n_hidden"] in (16, 32)
    assert search.best_score_ > 0.6  # chance is 0.1; about 0.8 with these settings
    assert search.best_estimator_.named_steps["rbm"].n_features_in_ == 64
