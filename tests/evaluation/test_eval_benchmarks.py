"""The benchmark scripts' registry and a tiny real-data run of each script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _common


def test_registry_builds_unfitted_models():
    for name in ("global-mean", "bias", "popularity", "als", "bpr", "item-knn-cosine"):
        model = _common.MODEL_FACTORIES[name](seed=3, threads=1)
        assert hasattr(model, "fit") and hasattr(model, "recommend"), name
    assert _common.MODEL_FACTORIES["als"](seed=3).random_state == 3


def test_parse_models_rejects_unknown_names():
    assert _common.parse_models("bias, popularity", {"bias", "popularity"}) == [
        "bias",
        "popularity",
    ]
    with pytest.raises(SystemExit, match="nope"):
        _common.parse_models("bias,nope", {"bias"})


@pytest.mark.realdata
def test_topn_script_on_ml100k(data_dir, ml100k_dir, tmp_path):
    import topn

    out = tmp_path / "topn.json"
    df = topn.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--models", "popularity,bias",
         "--out", str(out)]
    )  # fmt: skip
    assert df["model"].to_list() == ["popularity", "bias"]
    doc = json.loads(out.read_text())
    assert "ml-100k" in doc["metadata"]["protocol"] and len(doc["rows"]) == 2
    assert doc["rows"][0]["ndcg"] > doc["rows"][1]["ndcg"]


@pytest.mark.realdata
def test_rating_script_official_folds(data_dir, ml100k_dir):
    import rating_accuracy

    summary = rating_accuracy.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--folds", "official",
         "--models", "global-mean,bias"]
    )  # fmt: skip
    rows = {r["model"]: r for r in summary.iter_rows(named=True)}
    assert rows["bias"]["n_splits"] == 5
    assert rows["bias"]["rmse_mean"] < rows["global-mean"]["rmse_mean"]
    assert rows["bias"]["rmse_std"] > 0
