"""The benchmark scripts' registry and a tiny real-data run of each script."""

from __future__ import annotations

import json

import pytest
from benchmark_scripts import load_script

_common = load_script("_common")


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
    topn = load_script("topn")

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
    rating_accuracy = load_script("rating_accuracy")

    summary = rating_accuracy.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--folds", "official",
         "--models", "global-mean,bias"]
    )  # fmt: skip
    rows = {r["model"]: r for r in summary.iter_rows(named=True)}
    assert rows["bias"]["n_splits"] == 5
    assert rows["bias"]["rmse_mean"] < rows["global-mean"]["rmse_mean"]
    assert rows["bias"]["rmse_std"] > 0


def test_rating_script_blends_reuse_fitted_members(monkeypatch):
    """run_split on synthetic data: blend rows reuse member fits, valid_rmse is recorded."""
    import numpy as np
    import polars as pl
    import scipy.sparse as sp

    from rbmrec.data.splits import Split
    from rbmrec.evaluation import BiasBaseline

    rating_accuracy = load_script("rating_accuracy")

    rng = np.random.default_rng(0)
    n_users, n_items = 80, 30
    ug, ig = rng.integers(0, 2, n_users), rng.integers(0, 2, n_items)
    full = np.where(ug[:, None] == ig[None, :], 5.0, 1.0) + rng.integers(0, 2, (n_users, n_items))
    part = rng.choice(4, size=(n_users, n_items), p=[0.5, 0.3, 0.1, 0.1])
    mk = lambda k: sp.csr_matrix(np.where(part == k, full, 0.0))  # noqa: E731
    split = Split(train=mk(1), test=mk(2), validation=mk(3), name="toy")
    fits = []

    class Counting(BiasBaseline):
        def fit(self, user_items):
            fits.append(1)
            return super().fit(user_items)

    monkeypatch.setattr(rating_accuracy, "RATING_MODELS", {
        "bias": ("bias", lambda seed, threads: Counting()),
        "rbm": ("tiny", lambda seed, threads: rating_accuracy._rbm(
            seed, threads, n_hidden=4, n_epochs=3, batch_size=10, orientation="item")),
        "mix": ("tiny, both orientations", lambda seed, threads: rating_accuracy._rbm(
            seed, threads, n_hidden=4, n_epochs=3, batch_size=10)),
    })  # fmt: skip
    monkeypatch.setattr(rating_accuracy, "BLENDS", {
        "both": ("b", ["bias", "rbm"], {}),
        "both-support": ("s", ["bias", "rbm"], {"support": True}),
    })  # fmt: skip
    rows = rating_accuracy.run_split(split, ["bias", "rbm", "mix", "both", "both-support"], 0, 1)
    assert len(fits) == 1  # the bias model was fitted once, for its row and both blends
    by = {r["model"]: r for r in rows}
    for r in rows:
        assert np.isfinite(r["valid_rmse"]) and np.isfinite(r["rmse"]), r
    assert by["rbm"]["best_epoch"] >= 1 and np.isnan(by["both"]["best_epoch"])
    assert 1 <= by["mix"]["best_epoch"] <= 3  # a "both" model: mean of its members' epochs
    assert by["both"]["fit_seconds"] >= by["bias"]["fit_seconds"] + by["rbm"]["fit_seconds"]
    summary = rating_accuracy.summarise(pl.DataFrame([*rows, {**by["bias"], "split": "toy2"}]))
    assert summary["model"].to_list() == ["bias", "rbm", "mix", "both", "both-support"]
    assert summary.filter(summary["model"] == "bias")["n_splits"].item() == 2
    assert "valid_rmse_mean" in summary.columns


@pytest.mark.realdata
def test_tune_rating_reports_validation_only(data_dir, ml100k_dir, capsys):
    import re

    tune_rating = load_script("tune_rating")

    tune_rating.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--folds", "u1,u2", "--params",
         "n_hidden=8, n_epochs=2", "n_hidden=8, n_epochs=2, orientation='user'"]
    )  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("over 2 split(s)" in line for line in lines)
    assert not any("test" in line for line in lines)
    for line in lines:
        rmse = float(re.search(r"valid_rmse=([0-9.]+)", line).group(1))
        assert 0.85 < rmse < 1.2, line


@pytest.mark.realdata
def test_tune_rating_nested_protocol_scores_the_outer_carve(data_dir, ml100k_dir, capsys):
    """``--protocol nested``: fit(train) alone per setting, interleaved, one summary line
    per setting with the fit-time ratio to the first setting (1.00 for itself)."""
    import re

    tune_rating = load_script("tune_rating")
    tune_rating.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--folds", "u1",
         "--protocol", "nested", "--params", "n_hidden=8, n_epochs=2",
         "n_hidden=8, n_epochs=2, ordinal=True"]
    )  # fmt: skip
    out = capsys.readouterr().out
    summary = [line for line in out.splitlines() if line.startswith("ml-100k nested")]
    assert len(summary) == 2 and "test" not in out
    assert "fit_time_ratio=1.00" in summary[0]
    for line in summary:
        rmse = float(re.search(r"valid_rmse=([0-9.]+)", line).group(1))
        assert 0.85 < rmse < 1.2, line


@pytest.mark.realdata
@pytest.mark.slow
def test_rating_script_rbm_rows_on_u1(data_dir, ml100k_dir):
    """RatingRBM() ("both") on fold u1 reaches the documented accuracy: better than the
    conditional I-RBM alone, level with the two-RBM blend."""
    rating_accuracy = load_script("rating_accuracy")

    summary = rating_accuracy.main(
        ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--folds", "u1",
         "--models", "rbm-conditional-item,rating-rbm,rbm-blend"]
    )  # fmt: skip
    rows = {r["model"]: r for r in summary.iter_rows(named=True)}
    # benchmarks/README.md: u1 test 0.903 for RatingRBM(), 0.913 for the I-RBM alone.
    both, item, blend = rows["rating-rbm"], rows["rbm-conditional-item"], rows["rbm-blend"]
    assert both["rmse_mean"] < 0.91
    assert both["rmse_mean"] < item["rmse_mean"] - 0.005
    assert both["valid_rmse_mean"] < item["valid_rmse_mean"] - 0.005
    assert abs(both["rmse_mean"] - blend["rmse_mean"]) < 0.005
