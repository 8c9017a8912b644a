"""Harness, split functions, writers, and the cross-check against implicit.evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from rbmrec.data.splits import Split, carve_validation, kfold
from rbmrec.errors import DataError
from rbmrec.evaluation import (
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    Popularity,
    cross_validate,
    evaluate,
    grid_search,
    relevant_items,
    to_markdown,
    write_results,
)
from rbmrec.evaluation import metrics as M
from rbmrec.evaluation.harness import METRIC_COLUMNS, recommend_all


def planted_ratings(n_users=300, n_items=120, seed=0) -> sp.csr_matrix:
    """Ratings 1..5 with user/item biases, observed on the ~20% pairs with the highest
    rank-3 affinity (so who-rated-what carries a low-rank signal)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_users, 3))
    v = rng.normal(size=(n_items, 3))
    affinity = u @ v.T
    p = affinity + 0.5 * rng.normal(size=(n_users, n_items)) + rng.normal(size=n_items)
    mask = p > np.quantile(p, 0.8)
    b_u = rng.normal(0, 0.5, size=(n_users, 1))
    b_i = rng.normal(0, 0.7, size=(1, n_items))
    noise = rng.normal(0, 0.5, size=(n_users, n_items))
    r = np.clip(np.rint(3.3 + b_u + b_i + 0.3 * affinity + noise), 1, 5) * mask
    m = sp.csr_matrix(r.astype(np.float32))
    m.sort_indices()
    return m


def holdout(m: sp.csr_matrix, fraction=0.2, seed=1) -> Split:
    rng = np.random.default_rng(seed)
    coo = m.tocoo()
    te = rng.random(coo.nnz) < fraction

    def part(mask):
        out = sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=m.shape)
        out.sort_indices()
        return out

    return Split(part(~te), part(te), name="holdout", info={"seed": seed})


@pytest.fixture(scope="module")
def split() -> Split:
    return holdout(planted_ratings())


class ValidationAware(Popularity):
    """Records what fit received."""

    def fit(self, user_items, validation=None):
        self.seen_validation = validation
        return super().fit(user_items)


# ------------------------------------------------------------------------------- evaluate


def test_evaluate_table(split):
    models = {
        "global-mean": GlobalMean(),
        "bias": BiasBaseline(),
        "popularity": Popularity(),
        "als": ImplicitALS(factors=8, iterations=10, random_state=5),
    }
    df = evaluate(models, split, K=10, relevance_threshold=4.0)
    assert df["model"].to_list() == list(models)
    for c in (*METRIC_COLUMNS, "fit_seconds", "recommend_seconds", "n_users", "seed"):
        assert c in df.columns
    rel = relevant_items(split.test, 4.0)
    n_eval = int((np.diff(rel.indptr) > 0).sum())
    assert df["n_users"].to_list() == [n_eval] * 4
    rows = {r["model"]: r for r in df.iter_rows(named=True)}
    # rating metrics only for models with predict
    assert rows["popularity"]["rmse"] is None and rows["als"]["rmse"] is None
    assert rows["bias"]["rmse"] < rows["global-mean"]["rmse"]
    assert rows["bias"]["predict_seconds"] >= 0
    # a personalised model beats the same list for everyone on planted low-rank data
    assert rows["als"]["ndcg"] > rows["popularity"]["ndcg"]
    assert rows["als"]["seed"] == 5 and rows["popularity"]["seed"] is None
    for r in rows.values():
        assert r["fit_seconds"] >= 0 and r["recommend_seconds"] >= 0
        for k in M.RANKING_METRICS:
            assert 0.0 <= r[k] <= 1.0
    # the table matches metrics computed directly from the model's lists
    users = np.flatnonzero(np.diff(rel.indptr))
    ids = recommend_all(models["als"], split.train, users, 10)
    assert rows["als"]["ndcg"] == pytest.approx(M.ndcg_at_k(ids, rel[users], 10))


def test_evaluate_relevance_threshold_none_counts_all_heldout(split):
    df = evaluate({"pop": Popularity()}, split, K=5, relevance_threshold=None)
    assert df["n_users"][0] == int((np.diff(split.test.indptr) > 0).sum())
    assert df["relevance_threshold"][0] is None


def test_validation_passed_to_fit_when_accepted(split):
    carved = carve_validation(split, 0.1, seed=0)  # disjoint from train and test
    val = carved.validation
    with_val = Split(carved.train, split.test, val, name="v")
    m = ValidationAware()
    evaluate({"m": m}, with_val, K=5)
    assert m.seen_validation is val
    m2 = ValidationAware()
    evaluate({"m": m2}, split, K=5)
    assert m2.seen_validation is None


def test_evaluate_prefitted_model(split):
    m = Popularity().fit(split.train)
    df = evaluate({"pop": m}, split, fit=False)
    assert df["fit_seconds"][0] is None and df["ndcg"][0] > 0


def test_evaluate_bad_input(split):
    with pytest.raises(TypeError, match="Split"):
        evaluate({"p": Popularity()}, (split.train, split.test))
    with pytest.raises(ValueError, match="non-empty"):
        evaluate({}, split)
    with pytest.raises(ValueError, match="K"):
        evaluate({"p": Popularity()}, split, K=0)
    with pytest.raises(TypeError, match="neither"):
        evaluate({"x": object()}, split)
    bad = Split(split.train, split.test[:, :5], name="bad")
    with pytest.raises(ValueError, match="shape"):
        evaluate({"p": Popularity()}, bad)


def test_evaluate_ranks_with_a_blend(split):
    """A BlendedRatingModel gets rating and ranking metrics like any model: the harness asks
    for a batch of users at a time."""
    from rbmrec.models.blend import BlendedRatingModel
    from rbmrec.models.rating import RatingRBM

    carved = carve_validation(split, 0.1, seed=0)
    with_val = Split(carved.train, split.test, carved.validation, name="v")
    rbm = RatingRBM(n_hidden=3, n_epochs=1, orientation="user", random_state=0)
    members = [("bias", BiasBaseline()), ("rbm", rbm)]
    blend = BlendedRatingModel(members, cv_folds=0)
    df = evaluate({"blend": blend, "bias": BiasBaseline()}, with_val, K=5, batch_size=50)
    row = df.row(0, named=True)
    assert row["ndcg"] is not None and 0 <= row["ndcg"] <= 1
    assert row["n_users"] == df.row(1, named=True)["n_users"] > 50
    assert row["rmse"] is not None


def test_evaluate_rejects_malformed_split_matrices(split):
    train = split.train.copy()
    train.indices = train.indices.copy()
    train.indices[0] = train.shape[1] + 7
    with pytest.raises(DataError, match=r"split\.train has column index"):
        evaluate({"p": Popularity()}, Split(train, split.test, name="bad"))


# ------------------------------------------------------------------------ grid search


def test_grid_search_never_reads_test(split):
    grid = {"factors": [2, 8], "regularization": [0.05]}

    def factory(**p):
        return ImplicitALS(iterations=5, random_state=0, **p)

    best, results = grid_search(factory, grid, split, K=10)
    assert results.height == 2 and best in (
        {"factors": 2, "regularization": 0.05},
        {"factors": 8, "regularization": 0.05},
    )
    idx = int(np.argmax(results["ndcg"].to_numpy()))
    assert results["model"][idx] == repr(best)
    # an existing validation part is used as is
    carved = carve_validation(split, 0.3, seed=5)
    with_val = Split(carved.train, split.test, carved.validation, name="v")
    _, results_v = grid_search(factory, grid, with_val, K=10)
    assert not np.allclose(results_v["ndcg"].to_numpy(), results["ndcg"].to_numpy())
    # Replacing the test part changes nothing: tuning only sees train.
    blank = Split(split.train, sp.csr_matrix(split.test.shape, dtype=np.float32), name="x")
    best2, results2 = grid_search(factory, grid, blank, K=10)
    assert best2 == best
    np.testing.assert_allclose(results2["ndcg"].to_numpy(), results["ndcg"].to_numpy())
    with pytest.raises(ValueError, match="metric"):
        grid_search(factory, grid, split, metric="auc")


# ---------------------------------------------------------------------- cross-validation


def test_cross_validate_mean_and_std():
    m = planted_ratings(120, 60)
    folds_in = kfold(m, k=3, seed=0)
    folds, summary = cross_validate(
        lambda: {"bias": BiasBaseline(), "pop": Popularity()}, folds_in, K=5
    )
    assert folds.height == 6 and sorted(set(folds["fold"].to_list())) == [0, 1, 2]
    assert summary["model"].to_list() == ["bias", "pop"]
    assert summary["n_folds"].to_list() == [3, 3]
    vals = folds.filter(pl.col("model") == "bias")["rmse"].to_numpy()
    row = summary.filter(pl.col("model") == "bias").row(0, named=True)
    assert row["rmse_mean"] == pytest.approx(vals.mean())
    assert row["rmse_std"] == pytest.approx(vals.std(ddof=1))
    assert summary.filter(pl.col("model") == "pop")["rmse_mean"][0] is None
    with pytest.raises(ValueError):
        cross_validate(lambda: {"p": Popularity()}, [])


# ------------------------------------------------------------------------------ writers


def test_writers_round_trip(split, tmp_path):
    df = evaluate({"bias": BiasBaseline(), "pop": Popularity()}, split, K=5)
    md = to_markdown(df)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + df.height
    assert "| model |" in lines[0] and "ndcg" in lines[0] and "params" not in lines[0]
    assert lines[2].startswith("| bias |")
    assert to_markdown(df, columns=["model", "ndcg"]).splitlines()[0] == "| model | ndcg |"
    csv = write_results(df, tmp_path / "r.csv")
    back = pl.read_csv(csv)
    np.testing.assert_allclose(back["ndcg"].to_numpy(), df["ndcg"].to_numpy())
    js = write_results(df, tmp_path / "r.json", metadata={"command": "x"})
    doc = json.loads(js.read_text())
    assert doc["metadata"] == {"command": "x"} and len(doc["rows"]) == 2
    assert doc["rows"][1]["ndcg"] == pytest.approx(df["ndcg"][1])
    mdp = write_results(df, tmp_path / "r.md", metadata={"machine": "m"})
    assert mdp.read_text().startswith("- machine: m\n")
    with pytest.raises(ValueError, match="format"):
        write_results(df, tmp_path / "r.xlsx")
    with pytest.raises(ValueError, match="not in the frame"):
        to_markdown(df, columns=["nope"])


# ------------------------------------------------------------- cross-check with implicit


@pytest.fixture(scope="module")
def als_and_relevant(split):
    model = ImplicitALS(factors=8, iterations=10, random_state=0).fit(split.train)
    return model, relevant_items(split.test, 4.0)


def test_ndcg_map_agree_with_implicit_evaluation(split, als_and_relevant):
    from implicit.evaluation import ranking_metrics_at_k

    model, rel = als_and_relevant
    users = np.flatnonzero(np.diff(rel.indptr))
    ids = recommend_all(model, split.train, users, 10)
    ours = M.ranking_metrics(ids, rel[users], 10)
    # rbmrec's wrapper speaks implicit's protocol, so implicit's own evaluation can drive it:
    # identical lists, identical NDCG and MAP.
    theirs = ranking_metrics_at_k(model, split.train, rel, K=10, show_progress=False)
    assert ours["ndcg"] == pytest.approx(theirs["ndcg"], rel=1e-9)
    assert ours["map"] == pytest.approx(theirs["map"], rel=1e-9)
    # The documented difference: implicit's "precision" is pooled hits / min(K, |R|) ...
    assert M.pooled_recall_at_k(ids, rel[users], 10) == pytest.approx(theirs["precision"])
    # ... not hits / K.
    assert ours["precision"] < theirs["precision"] - 0.05


def test_agree_with_implicit_on_raw_implicit_model(split, als_and_relevant):
    """The same factors inside implicit's own model give the same metrics (its top-k)."""
    from implicit.evaluation import ranking_metrics_at_k

    model, rel = als_and_relevant
    raw = model._model  # the fitted implicit AlternatingLeastSquares
    users = np.flatnonzero(np.diff(rel.indptr))
    ids = recommend_all(model, split.train, users, 10)
    ours = M.ranking_metrics(ids, rel[users], 10)
    theirs = ranking_metrics_at_k(raw, split.train, rel, K=10, show_progress=False)
    # implicit ranks in float32; near-ties may swap, so allow a small difference.
    assert ours["ndcg"] == pytest.approx(theirs["ndcg"], abs=2e-3)
    assert ours["map"] == pytest.approx(theirs["map"], abs=2e-3)


def test_bpr_through_implicit_evaluation(split):
    from implicit.evaluation import ranking_metrics_at_k

    model = ImplicitBPR(factors=8, iterations=30, random_state=0).fit(split.train)
    rel = relevant_items(split.test, 4.0)
    theirs = ranking_metrics_at_k(model, split.train, rel, K=10, show_progress=False)
    df = evaluate({"bpr": model}, split, K=10, fit=False)
    assert df["ndcg"][0] == pytest.approx(theirs["ndcg"], rel=1e-9)
    assert not math.isnan(df["map"][0])


# ------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_ml100k_u1_baselines(ml100k_dir):
    def read(name):
        a = np.loadtxt(ml100k_dir / name, dtype=np.int64)
        return sp.csr_matrix(
            (a[:, 2].astype(np.float32), (a[:, 0] - 1, a[:, 1] - 1)), shape=(943, 1682)
        )

    split = Split(read("u1.base"), read("u1.test"), name="u1")
    df = evaluate({"mean": GlobalMean(), "bias": BiasBaseline(), "pop": Popularity()}, split, K=10)
    rows = {r["model"]: r for r in df.iter_rows(named=True)}
    # Published BaselineOnly RMSE on ML-100K is about 0.94-0.95; the global mean about 1.15.
    assert 0.92 < rows["bias"]["rmse"] < 0.97
    assert rows["mean"]["rmse"] > 1.1
    assert rows["pop"]["ndcg"] > 0.05


# ------------------------------------------------------------ input checks and timings


def _with_train_pairs(split: Split, n_shared: int) -> sp.csr_matrix:
    """``split.test`` plus ``n_shared`` of the training (user, item) pairs."""
    coo = split.train.tocoo()
    extra = sp.csr_matrix(
        (np.full(n_shared, 5.0, np.float32), (coo.row[:n_shared], coo.col[:n_shared])),
        shape=split.train.shape,
    )
    out = sp.csr_matrix(split.test + extra)
    out.sort_indices()
    return out


def test_evaluate_refuses_test_or_validation_overlapping_train(split):
    """A held-out rating that is also a training rating is filtered from every list and can
    never be a hit: evaluate returned ranking metrics of 0 instead of an error."""
    with pytest.raises(DataError, match=rf"share {split.train.nnz} \(user, item\).*test"):
        evaluate({"p": Popularity()}, Split(split.train, split.train, name="same"))
    leaky_test = Split(split.train, _with_train_pairs(split, 7), name="leaky")
    with pytest.raises(DataError, match=r"split\.train and split\.test share 7 "):
        evaluate({"p": Popularity()}, leaky_test)
    first_rows = sp.diags((np.arange(split.train.shape[0]) < 3).astype(np.float32))
    val = sp.csr_matrix(first_rows @ split.train)
    leaky_val = Split(split.train, split.test, val, name="leaky-val")
    n_val = val.nnz
    with pytest.raises(DataError, match=rf"split\.train and split\.validation share {n_val} "):
        evaluate({"p": Popularity()}, leaky_val)
    # a validation part disjoint from train and test is fine
    carved = carve_validation(split, 0.1, seed=0)
    ok = Split(carved.train, split.test, carved.validation)
    assert evaluate({"p": Popularity()}, ok).height == 1


@pytest.mark.parametrize(
    ("batch_size", "error"),
    [(-1, ValueError), (0, ValueError), (True, TypeError), (2.0, TypeError)],
)
def test_batch_size_is_validated(split, batch_size, error):
    """batch_size=-1 gave all-zero metrics silently; 0 crashed inside range()."""
    with pytest.raises(error, match="batch_size"):
        evaluate({"p": Popularity()}, split, batch_size=batch_size)
    pop = Popularity().fit(split.train)
    with pytest.raises(error, match="batch_size"):
        recommend_all(pop, split.train, np.arange(5), 3, batch_size=batch_size)


@pytest.mark.parametrize("threshold", ["4", True, b"4", [4.0]])
def test_relevance_threshold_type_is_named(split, threshold):
    """relevance_threshold="4" crashed in numpy's isfinite without naming the argument."""
    with pytest.raises(TypeError, match="relevance_threshold"):
        evaluate({"p": Popularity()}, split, relevance_threshold=threshold)
    with pytest.raises(TypeError, match="threshold"):
        relevant_items(split.test, threshold)
    with pytest.raises(ValueError, match="relevance_threshold"):
        evaluate({"p": Popularity()}, split, relevance_threshold=float("nan"))


class _Recorded(Popularity):
    """Popularity that logs its timed fit into a shared event list."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def fit(self, user_items):
        self.events.append("fit")
        return super().fit(user_items)


def _spy_kernel(monkeypatch, events: list[str]) -> None:
    import rbmrec.engine.topn as topn

    kernel = topn.topn_kernel

    def spy(scores, *args):
        events.append(f"topn-{scores.dtype}")
        return kernel(scores, *args)

    monkeypatch.setattr(topn, "topn_kernel", spy)


def test_evaluate_loads_the_topn_kernel_before_timing(split, monkeypatch):
    """The first model's recommend time included loading the Numba top-N kernel (50-180x
    its own recommend time): both score dtypes are loaded before any timed call."""
    events: list[str] = []
    _spy_kernel(monkeypatch, events)
    evaluate({"a": _Recorded(events), "b": _Recorded(events)}, split, K=5)
    first_fit = events.index("fit")
    assert {"topn-float64", "topn-float32"} <= set(events[:first_fit])


def test_evaluate_imports_implicit_before_timing(split, monkeypatch):
    """The first implicit wrapper's fit time included importing implicit."""
    from rbmrec.evaluation import baselines

    events: list[str] = []
    original = baselines._import_implicit

    def spy():
        events.append("import-implicit")
        return original()

    monkeypatch.setattr(baselines, "_import_implicit", spy)
    evaluate({"pop": _Recorded(events), "bias": BiasBaseline()}, split, K=5)
    assert "import-implicit" not in events  # no implicit model: implicit stays unimported
    events.clear()
    als = ImplicitALS(factors=2, iterations=1, random_state=0)
    evaluate({"pop": _Recorded(events), "als": als}, split, K=5)
    assert events.index("import-implicit") < events.index("fit")


def test_json_results_are_strict_json(tmp_path):
    """NaN was written as a bare NaN token, which strict JSON parsers reject."""
    df = pl.DataFrame({"model": ["a", "b"], "ndcg": [0.5, float("nan")], "mrr": [None, 1.0]})
    path = write_results(df, tmp_path / "r.json", metadata={"score": float("inf")})

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    doc = json.loads(path.read_text(), parse_constant=refuse)
    assert [r["ndcg"] for r in doc["rows"]] == [0.5, None]
    assert [r["mrr"] for r in doc["rows"]] == [None, 1.0]
    assert doc["metadata"] == {"score": None}


def test_markdown_cells_keep_one_row_per_line():
    """A newline in a model name ended the table row in the middle of the cell."""
    df = pl.DataFrame({"model": ["two\nlines", "cr\r\nlf", "pipe|name"], "ndcg": [0.1, 0.2, 0.3]})
    lines = to_markdown(df).strip().splitlines()
    assert len(lines) == 2 + df.height
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[2:])
    assert lines[2].startswith("| two<br>lines |") and lines[3].startswith("| cr<br>lf |")
    assert lines[4].startswith("| pipe\\|name |")


# ------------------------------------------------------------------------ split checks


def _tiny_split() -> Split:
    train = sp.csr_matrix(np.array([[0, 4.0, 0, 5.0], [4.0, 0, 2.0, 0], [0, 3.0, 5.0, 0]]))
    test = sp.csr_matrix(np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 0, 4.0]]))
    return Split(train, test, name="tiny")


@pytest.mark.parametrize("part", ["train", "test", "validation"])
def test_evaluate_refuses_a_pair_stored_twice(part):
    """The CSR conversion added repeated pairs up: a test pair rated 2 and 3 became one
    relevant 5 (hit_rate 1.0), and a training pair rated 2 and 3 moved GlobalMean to 4.5."""
    s = _tiny_split()
    parts = {"train": s.train, "test": s.test, "validation": sp.csr_matrix(s.shape)}
    coo = parts[part].tocoo()
    # (2, 0) is in no part: stored twice (ratings 2 and 3) it breaks no other check
    parts[part] = sp.coo_matrix(
        (np.r_[coo.data, 2.0, 3.0], (np.r_[coo.row, 2, 2], np.r_[coo.col, 0, 0])),
        shape=s.shape,
    )
    gm = GlobalMean()
    with pytest.raises(DataError, match=rf"^split\.{part} stores \(user 2, item 0\) 2 times"):
        evaluate({"gm": gm}, Split(parts["train"], parts["test"], parts["validation"]))
    assert gm.mean_ is None  # refused before anything was fitted


def test_evaluate_refuses_validation_overlapping_test():
    """validation=test would hand the test ratings to early stopping, and grid_search would
    tune on them: both refuse it."""
    s = _tiny_split()
    leaky = Split(s.train, s.test, s.test.copy(), name="leaky")
    with pytest.raises(DataError, match=r"split\.test and split\.validation share 3 \(user"):
        evaluate({"bias": BiasBaseline()}, leaky)
    with pytest.raises(DataError, match=r"split\.test and split\.validation share 3 "):
        grid_search(lambda **p: BiasBaseline(**p), {"reg_user": [0.0, 15.0]}, leaky)


class _MeanOnly:
    """A rating model without recommend."""

    def fit(self, user_items):
        self.mean_ = float(user_items.data.mean())
        return self

    def predict(self, userids, itemids):
        return np.full(len(userids), self.mean_)


def test_an_empty_test_part_is_an_error(split):
    """An empty test part raises rather than give rows with rmse None, ndcg NaN and n_users
    0."""
    empty = Split(split.train, sp.csr_matrix(split.shape, dtype=np.float32), name="empty")
    with pytest.raises(DataError, match=r"^split\.test has no ratings"):
        evaluate({"pop": Popularity(), "bias": BiasBaseline()}, empty)
    with pytest.raises(DataError, match=r"^fold 0 \(empty\): split\.test has no ratings"):
        cross_validate(lambda: {"pop": Popularity()}, [empty])
    no_val = Split(split.train, split.test, sp.csr_matrix(split.shape), name="no-val")
    with pytest.raises(DataError, match=r"^the validation part has no ratings"):
        grid_search(lambda **p: Popularity(**p), {"min_rating": [None]}, no_val)


def test_no_relevant_rating_names_the_threshold(split):
    """0/1 interaction data with the default threshold 4.0 gave NaN ranking metrics for
    every model (n_users 0), and grid_search failed later with "no finite ndcg"."""
    ones = Split(split.train.sign(), split.test.sign(), name="ones")
    message = r"relevance_threshold=4\.0 .*all 1\).*relevance_threshold <= 1, or relevance_th"
    # evaluate warns (its RMSE column is still valid, as the command line does) ...
    with pytest.warns(UserWarning, match=r"^no rating of split\.test is >= " + message):
        row = evaluate({"pop": Popularity()}, ones).row(0, named=True)
    assert row["n_users"] == 0 and math.isnan(row["ndcg"])
    with pytest.warns(UserWarning, match=r"^no rating of split\.test"):
        cross_validate(lambda: {"pop": Popularity()}, [ones])
    # ... and a search on a ranking metric, which would compare NaNs, is refused.
    with pytest.raises(DataError, match=r"^no rating of the validation part is >= " + message):
        grid_search(lambda **p: Popularity(**p), {"min_rating": [None]}, ones)
    # The suggested fixes work, and a model without recommend still gets its RMSE.
    row = evaluate({"pop": Popularity()}, ones, relevance_threshold=None).row(0, named=True)
    assert row["n_users"] > 0 and 0 <= row["ndcg"] <= 1
    assert evaluate({"pop": Popularity()}, ones, relevance_threshold=1).height == 1
    rating_only = evaluate({"mean": _MeanOnly()}, ones).row(0, named=True)
    assert rating_only["rmse"] == 0.0 and rating_only["ndcg"] is None


# ------------------------------------------------------------------------ model errors


class _DuplicateIds(Popularity):
    def recommend(self, userid, user_items, N=10, **kwargs):
        ids, scores = super().recommend(userid, user_items, N=N, **kwargs)
        ids[:, 1] = ids[:, 0]
        return ids, scores


class _ShortPredict(BiasBaseline):
    def predict(self, userids, itemids):
        return super().predict(userids, itemids)[:-1]


class _FitError(RuntimeError):
    pass


class _FailingFit(Popularity):
    def fit(self, user_items):
        raise _FitError("the disk is full")


class _OddError(Exception):
    def __init__(self, code: int, detail: str) -> None:  # not buildable from one message
        super().__init__(code, detail)


class _OddFit(Popularity):
    def fit(self, user_items):
        raise _OddError(3, "odd")


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (_DuplicateIds(), ValueError, r"model 'bad' \(recommend\): ids contain the same item"),
        (_ShortPredict(), ValueError, r"model 'bad' \(predict\): y_true has \d+ values but"),
        (_FailingFit(), _FitError, r"model 'bad' \(fit\): the disk is full"),
    ],
)
def test_model_errors_name_the_model(split, model, error, message):
    """An error such as "ids contain the same item twice in one user's list" did not say
    which of several models produced it."""
    with pytest.raises(error, match="^" + message) as info:
        evaluate({"fine": Popularity(), "bad": model, "also-fine": GlobalMean()}, split, K=5)
    assert type(info.value) is error
    assert type(info.value.__cause__) is error  # the original, chained with `from`


def test_an_error_type_that_takes_no_message_is_kept_with_a_note(split):
    with pytest.raises(_OddError) as info:
        evaluate({"odd": _OddFit()}, split)
    assert info.value.args == (3, "odd")
    assert "raised by model 'odd' (fit)" in info.value.__notes__


class _Quota(Exception):
    def __init__(self, retry_after=None):
        self.retry_after = retry_after
        super().__init__(f"over quota, retry after {retry_after}s")


class _RaisingFit(Popularity):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def fit(self, user_items):
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [FileNotFoundError(2, "No such file", "/data/x.npz"), _Quota(30), StopIteration(7)],
    ids=["oserror", "custom", "stopiteration"],
)
def test_errors_with_their_own_arguments_keep_them_and_get_a_note(split, exc):
    """Rebuilt from one message, FileNotFoundError lost errno and filename, a custom error
    garbled its text and StopIteration became a RuntimeError."""
    with pytest.raises(type(exc)) as info:
        evaluate({"odd": _RaisingFit(exc)}, split)
    assert info.value is exc and "raised by model 'odd' (fit)" in exc.__notes__


def test_grid_search_names_the_failing_parameters(split):
    """One failing candidate aborted the search without saying which parameters failed."""
    grid = {"reg_user": [15.0, -1.0]}
    with pytest.raises(ValueError, match=r"^grid_search parameters \{'reg_user': -1\.0\} \(fit\)"):
        grid_search(lambda **p: BiasBaseline(**p), grid, split, metric="rmse")
    with pytest.raises(TypeError, match=r"^grid_search parameters \{'reg_usr': 1\} \(factory\)"):
        grid_search(lambda **p: BiasBaseline(**p), {"reg_usr": [1]}, split)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"reg_user": 4}, r"grid\['reg_user'\] must be a list of candidate values, got int 4"),
        ({"reg_user": "15"}, r"grid\['reg_user'\] must be a list .*got str"),
        ([("reg_user", [4])], r"grid must be a mapping"),
    ],
)
def test_grid_search_refuses_a_scalar_grid_value(split, grid, message):
    """{"p": 4} failed with "'int' object is not iterable"."""
    with pytest.raises(TypeError, match=message):
        grid_search(lambda **p: BiasBaseline(**p), grid, split)


def test_evaluate_documents_the_default_thread_counts():
    """fit_seconds compare implicit's 1 thread with the RBMs' all cores by default."""
    doc = " ".join(evaluate.__doc__.split())
    assert "``num_threads=1``" in doc and "``num_threads=0``" in doc


# ------------------------------------------------------------------------------- nll


def test_evaluate_reports_nll_for_models_with_a_predictive_distribution(split, caplog):
    from rbmrec.models.rating import RatingRBM

    rbm = RatingRBM(n_hidden=8, n_epochs=3, orientation="user", random_state=0, num_threads=1)
    gauss = RatingRBM(visible="gaussian", n_hidden=8, n_epochs=3, orientation="user",
                      random_state=0, num_threads=1)  # fmt: skip
    models = {"rbm": rbm, "gauss": gauss, "bias": BiasBaseline(), "pop": Popularity()}
    df = evaluate(models, split, K=5)
    assert "nll" in METRIC_COLUMNS and "nll_excluded" in df.columns
    rows = {r["model"]: r for r in df.iter_rows(named=True)}
    for name in ("gauss", "bias", "pop"):
        assert rows[name]["nll"] is None and rows[name]["nll_excluded"] is None, name
    test = split.test.tocoo()
    want = M.mean_nll(rbm.predict_proba(test.row, test.col), rbm.values_, test.data)
    assert rows["rbm"]["nll"] == pytest.approx(want.nll)
    assert rows["rbm"]["nll_excluded"] == 0 and 0 < want.nll < math.log(5)
    # A held-out value that is no training level is counted and left out, with a warning.
    off = split.test.copy()
    off.data[:3] = 3.5
    with caplog.at_level("WARNING", logger="rbmrec"):
        again = evaluate({"rbm": rbm}, Split(split.train, off), K=5, fit=False)
    assert again["nll_excluded"].to_list() == [3]
    assert any("3 of" in r.getMessage() and "nll" in r.getMessage() for r in caplog.records)
    kept = np.flatnonzero(off.tocoo().data != 3.5)
    sub = M.mean_nll(rbm.predict_proba(test.row[kept], test.col[kept]), rbm.values_,
                     test.data[kept])  # fmt: skip
    assert again["nll"].to_list()[0] == pytest.approx(sub.nll)


def test_evaluate_keeps_explicit_zero_ratings_of_every_part():
    """A 0..4 scale: a held-out 0 is scored (n_test_ratings, rmse) and a trained 0 is a
    level of the softmax model, so no held-out 0 is excluded from nll."""
    from rbmrec.data import make_ratings, random_split
    from rbmrec.models.rating import RatingRBM

    data = make_ratings(150, 40, density=0.3, levels=range(5), seed=3)
    split = random_split(data, 0.2, seed=0)
    assert np.count_nonzero(split.test.data == 0) > 0
    rbm = RatingRBM(n_hidden=8, n_epochs=2, orientation="user", random_state=0, num_threads=1)
    df = evaluate({"rbm": rbm, "bias": BiasBaseline()}, split, K=5, relevance_threshold=3)
    assert df["n_test_ratings"].to_list() == [split.test.nnz] * 2
    assert rbm.values_.tolist() == [0, 1, 2, 3, 4]
    assert df["nll_excluded"].to_list() == [0, None] and df["nll"][0] > 0
