"""Model files written by rbmrec 0.1.0 still load and give the outputs they gave then."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
EXPECTED = np.load(LEGACY / "expected.npz", allow_pickle=False)
NAMES = sorted({k.split(".")[0] for k in EXPECTED.files if "." in k})


def _X() -> sp.csr_matrix:
    return sp.csr_matrix(
        (EXPECTED["X_data"], EXPECTED["X_indices"], EXPECTED["X_indptr"]),
        shape=tuple(EXPECTED["X_shape"]),
    )


def test_every_model_class_has_a_legacy_file():
    assert len(NAMES) >= 16
    assert {"rating_both", "implicit_default", "rbm_bernoulli", "itemknn"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_legacy_file_loads_and_gives_the_same_outputs(name):
    model = rbmrec.load(LEGACY / f"{name}.npz")
    X = _X()
    if name.startswith("rbm_"):
        got = model.transform(EXPECTED[f"{name}.input"])
        np.testing.assert_allclose(got, EXPECTED[f"{name}.transform"], atol=1e-5)
        return
    if f"{name}.predict" in EXPECTED.files:
        n_users, n_items = X.shape
        u, i = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
        got = model.predict(u.ravel().astype(np.int32), i.ravel().astype(np.int32))
        np.testing.assert_allclose(got, EXPECTED[f"{name}.predict"], atol=1e-5)
    data = X
    if name.startswith("implicit"):
        data = X.copy()
        data.data[:] = 1.0
    ids, scores = model.recommend(np.arange(X.shape[0]), data, N=5)
    np.testing.assert_allclose(scores, EXPECTED[f"{name}.rec_scores"], atol=1e-5)
    np.testing.assert_array_equal(ids, EXPECTED[f"{name}.rec_ids"])


@pytest.mark.parametrize("model", ["cli_rating", "cli_irbm"])
@pytest.mark.parametrize("user", ["u0", "u7"])
def test_legacy_cli_model_recommends_the_same(model, user, capsys):
    from rbmrec.cli import main

    assert main(["recommend", "--model", str(LEGACY / f"{model}.npz"), "--user", user,
                 "-n", "5", "--json"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    want = json.loads((LEGACY / f"{model}.{user}.json").read_text())
    assert [r["item_id"] for r in got["recommendations"]] == [
        r["item_id"] for r in want["recommendations"]
    ]
    np.testing.assert_allclose(
        [r["score"] for r in got["recommendations"]],
        [r["score"] for r in want["recommendations"]],
        atol=1e-5,
    )
