"""One-call comparison of recommenders on the same split: fit, predict, recommend, score.

:func:`evaluate` fits every model on ``split.train`` (passing ``validation=split.validation``
to models whose ``fit`` accepts it), scores rating predictions on every held-out rating
(models with ``predict``) and top-``K`` lists with the training items excluded (models with
``recommend``) for every user with at least one relevant held-out item, and returns one
polars row per model. :func:`cross_validate` repeats it over folds; :func:`grid_search`
tunes a model on a validation part carved from the training data (never the test part).
Splitting itself (random, k-fold, official folds, validation carving) is the data layer's
job: :mod:`rbmrec.data.splits`.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.data.split import Split
from rbmrec.errors import DataError
from rbmrec.evaluation.metrics import (
    RANKING_METRICS,
    check_threshold,
    mae,
    ranking_metrics,
    relevant_items,
    rmse,
)
from rbmrec.models._common import accepts_validation, check_sparse_structure

__all__ = [
    "METRIC_COLUMNS",
    "cross_validate",
    "evaluate",
    "grid_search",
    "recommend_all",
]

logger = logging.getLogger(__name__)

#: Metric columns of :func:`evaluate`'s frame, in order.
METRIC_COLUMNS: tuple[str, ...] = ("rmse", "mae", *RANKING_METRICS)
_TIME_COLUMNS = ("fit_seconds", "predict_seconds", "recommend_seconds")
_SCHEMA: dict[str, Any] = {
    "model": pl.Utf8,
    "split": pl.Utf8,
    **{c: pl.Float64 for c in METRIC_COLUMNS},
    **{c: pl.Float64 for c in _TIME_COLUMNS},
    "n_users": pl.Int64,
    "n_test_ratings": pl.Int64,
    "K": pl.Int64,
    "relevance_threshold": pl.Float64,
    "seed": pl.Int64,
    "params": pl.Utf8,
}


def _check_split(split: Any) -> Split:
    if not isinstance(split, Split):
        raise TypeError(f"split must be an rbmrec.data.Split, got {type(split).__name__}")
    for name in ("train", "test"):
        part = getattr(split, name)
        if not sp.issparse(part):
            raise TypeError(f"split.{name} must be a scipy sparse matrix")
        check_sparse_structure(f"split.{name}", part)
    if split.validation is not None and sp.issparse(split.validation):
        check_sparse_structure("split.validation", split.validation)
    if split.train.shape != split.test.shape:
        raise ValueError(
            f"split.train has shape {split.train.shape} but split.test has {split.test.shape}"
        )
    if split.validation is not None and sp.issparse(split.validation):
        if split.validation.shape != split.train.shape:
            raise ValueError(
                f"split.train has shape {split.train.shape} but split.validation has "
                f"{split.validation.shape}"
            )
    # A held-out rating that is also a training rating is excluded from the model's lists
    # (training items are filtered) and so can never be a hit: the ranking metrics would be
    # silently wrong (all 0 when test == train).
    train_keys = _pair_keys(split.train)
    for name in ("test", "validation"):
        part = getattr(split, name)
        if part is None or not sp.issparse(part):
            continue
        shared = np.intersect1d(train_keys, _pair_keys(part), assume_unique=True).size
        if shared:
            raise DataError(
                f"split.train and split.{name} share {shared} (user, item) pairs: the "
                f"{name} part must be disjoint from the training part"
            )
    return split


def _pair_keys(m: sp.spmatrix) -> np.ndarray:
    """Sorted unique ``row * n_cols + col`` keys of the stored entries of ``m`` (int64)."""
    coo = sp.coo_matrix(m)
    return np.unique(coo.row.astype(np.int64) * m.shape[1] + coo.col.astype(np.int64))


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool | np.bool_) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be a positive int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _warm_up(models: Iterable[Any]) -> None:
    """Pay one-off loading costs before anything is timed, so timings do not depend on
    model order.

    Loads the top-N kernel (Numba's cache load or compile: 50-180x a model's recommend time
    on ML-100K) for both score dtypes the recommenders pass it, and imports ``implicit``
    when one of its wrappers is among ``models`` (else the first wrapper's fit pays it).
    """
    from rbmrec.evaluation import baselines

    exclude = sp.csr_matrix(np.array([[1.0, 0.0]]))
    for dtype in (np.float64, np.float32):
        baselines.top_n(np.zeros((1, 2), dtype=dtype), 1, exclude)
    if any(isinstance(m, baselines._ImplicitWrapper) for m in models):
        _, limiter = baselines._import_implicit()
        limiter.restore_original_limits()


def _seed(model: Any) -> int | None:
    seed = getattr(model, "random_state", None)
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return int(seed)
    return None


#: Constructor arguments the results' ``params`` column leaves out: they change how a fit
#: reports, not what it learns.
_NOT_SHOWN = ("callbacks", "callback", "progress")


def _params(model: Any) -> str:
    getter = getattr(model, "get_params", None) or getattr(model, "_params", None)
    if callable(getter):
        try:
            params = dict(getter())
            for name in _NOT_SHOWN:
                params.pop(name, None)
            return repr(params)
        except Exception:  # a model's own parameter getter failing must not sink a benchmark
            logger.debug("could not read parameters of %r", model, exc_info=True)
    return repr(model)


def recommend_all(
    model: Any, train: sp.csr_matrix, users: np.ndarray, K: int, batch_size: int = 2048
) -> np.ndarray:
    """Top-``K`` ids for ``users`` with their training items excluded.

    Parameters
    ----------
    model : fitted recommender
    train : scipy.sparse.csr_matrix, shape (n_users, n_items)
    users : ndarray of int, shape (n,)
    K : int
    batch_size : int, default 2048
        Users per ``recommend`` call; a positive int.

    Returns
    -------
    ndarray of int32, shape (n, K)
        ``-1`` in empty slots.

    Raises
    ------
    TypeError, ValueError
        ``batch_size`` is not a positive int (bools refused).
    """
    batch_size = _check_batch_size(batch_size)
    out = np.full((users.size, K), -1, dtype=np.int32)
    for start in range(0, users.size, batch_size):
        batch = users[start : start + batch_size].astype(np.int32)
        ids, _ = model.recommend(batch, train[batch], N=K, filter_already_liked_items=True)
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[0] != batch.size:
            raise ValueError(
                f"{type(model).__name__}.recommend returned ids of shape {ids.shape} for "
                f"{batch.size} users; expected ({batch.size}, {K})"
            )
        width = min(K, ids.shape[1])
        out[start : start + batch.size, :width] = ids[:, :width]
    return out


def evaluate(
    models: Mapping[str, Any],
    split: Split,
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    *,
    fit: bool = True,
    batch_size: int = 2048,
) -> pl.DataFrame:
    """Fit and score several recommenders on one split; one row per model.

    Parameters
    ----------
    models : mapping of str to recommender
        Display name -> model following the rbmrec/implicit protocol (see
        :mod:`rbmrec.evaluation.baselines`). Models with ``predict`` get rating metrics,
        models with ``recommend`` get ranking metrics.
    split : rbmrec.data.Split
        ``train`` (fit), ``test`` (score), optional ``validation`` (passed to
        ``fit(train, validation=...)`` when the model's ``fit`` accepts it). ``test`` and
        ``validation`` must share no (user, item) pair with ``train``.
    K : int, default 10
        List length for the ranking metrics.
    relevance_threshold : float or None, default 4.0
        Held-out ratings ``>= relevance_threshold`` are relevant; ``None``: every held-out
        item is.
    fit : bool, default True
        Fit each model first; ``False`` evaluates already fitted models.
    batch_size : int, default 2048
        Users per ``recommend`` call; a positive int.

    Returns
    -------
    polars.DataFrame
        Columns ``model, split, rmse, mae, precision, recall, ndcg, map, mrr, hit_rate,
        coverage, fit_seconds, predict_seconds, recommend_seconds, n_users`` (users with a
        relevant held-out item, those ranked), ``n_test_ratings, K, relevance_threshold,
        seed`` (the model's int ``random_state`` or null) and ``params``. Metrics a model
        cannot produce are null. Times are measured after a warm-up that loads the top-N
        kernel and (when an ``implicit`` wrapper is among the models) imports ``implicit``,
        so they do not depend on the models' order.

    Raises
    ------
    DataError
        ``split.test`` or ``split.validation`` shares (user, item) pairs with
        ``split.train`` (the message says how many).
    TypeError, ValueError
        Bad ``K``, ``relevance_threshold`` or ``batch_size``, named in the message.
    """
    split = _check_split(split)
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of name -> model")
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    relevance_threshold = check_threshold(relevance_threshold, "relevance_threshold")
    batch_size = _check_batch_size(batch_size)
    train = sp.csr_matrix(split.train)
    test = sp.csr_matrix(split.test)
    relevant = relevant_items(test, relevance_threshold)
    users = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int32)
    test_coo = test.tocoo()
    _warm_up(models.values())
    rows = []
    for name, model in models.items():
        if not (hasattr(model, "predict") or hasattr(model, "recommend")):
            raise TypeError(f"model {name!r} has neither predict nor recommend")
        row: dict[str, Any] = {c: None for c in _SCHEMA}
        row.update(
            model=str(name),
            split=split.name,
            K=int(K),
            relevance_threshold=None if relevance_threshold is None else float(relevance_threshold),
            n_test_ratings=int(test.nnz),
        )
        if fit:
            t0 = time.perf_counter()
            if split.validation is not None and accepts_validation(model.fit):
                model.fit(train, validation=split.validation)
            else:
                model.fit(train)
            row["fit_seconds"] = time.perf_counter() - t0
        if hasattr(model, "predict") and test.nnz:
            t0 = time.perf_counter()
            pred = np.asarray(model.predict(test_coo.row, test_coo.col), dtype=np.float64)
            row["predict_seconds"] = time.perf_counter() - t0
            row["rmse"] = rmse(test_coo.data, pred)
            row["mae"] = mae(test_coo.data, pred)
        if hasattr(model, "recommend"):
            t0 = time.perf_counter()
            ids = recommend_all(model, train, users, int(K), batch_size)
            row["recommend_seconds"] = time.perf_counter() - t0
            m = ranking_metrics(ids, relevant[users], int(K), n_items=train.shape[1])
            row.update({k: m[k] for k in RANKING_METRICS})
            row["n_users"] = m["n_users"]
        row["seed"] = _seed(model)
        row["params"] = _params(model)
        logger.info(
            "%s on %s: %s",
            name,
            split.name,
            ", ".join(
                f"{c}={row[c]:.4f}" for c in (*METRIC_COLUMNS, *_TIME_COLUMNS) if row[c] is not None
            ),
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=_SCHEMA)


def cross_validate(
    make_models: Callable[[], Mapping[str, Any]],
    splits: Sequence[Split],
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    **kwargs: Any,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Evaluate fresh models on each fold; per-fold rows and mean/std per model.

    Parameters
    ----------
    make_models : callable returning a mapping of str to recommender
        Called once per fold so no fitted state leaks between folds.
    splits : sequence of rbmrec.data.Split
        Predefined folds (e.g. :func:`rbmrec.data.movielens_folds`, ML-100K ``u1..u5``) or
        k random folds (:func:`rbmrec.data.kfold`).
    K, relevance_threshold :
        As in :func:`evaluate`.
    **kwargs :
        Passed to :func:`evaluate`.

    Returns
    -------
    folds : polars.DataFrame
        :func:`evaluate`'s rows for every fold, plus a ``fold`` column (0-based).
    summary : polars.DataFrame
        One row per model: ``n_folds`` and ``<metric>_mean``, ``<metric>_std`` (sample
        standard deviation, ``ddof=1``; null for one fold) for every metric and time column.
    """
    if not callable(make_models):
        raise TypeError("make_models must be a callable returning a mapping of models")
    splits = list(splits)
    if not splits:
        raise ValueError("splits is empty: need at least one fold")
    frames = []
    for fold, split in enumerate(splits):
        df = evaluate(make_models(), split, K, relevance_threshold, **kwargs)
        frames.append(df.with_columns(pl.lit(fold, dtype=pl.Int64).alias("fold")))
    folds = pl.concat(frames)
    value_cols = [*METRIC_COLUMNS, *_TIME_COLUMNS]
    aggs = [pl.len().alias("n_folds")]
    for c in value_cols:
        aggs += [pl.col(c).mean().alias(f"{c}_mean"), pl.col(c).std(ddof=1).alias(f"{c}_std")]
    summary = folds.group_by("model", maintain_order=True).agg(aggs)
    summary = summary.with_columns(pl.col("n_folds").cast(pl.Int64))
    return folds, summary


def grid_search(
    factory: Callable[..., Any],
    grid: Mapping[str, Iterable[Any]],
    split: Split,
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    metric: str = "ndcg",
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Pick hyperparameters on a validation part carved from ``split.train``.

    The test part is never used: each candidate is fit on ``train`` minus validation and
    scored on the validation ratings (``split.validation`` when present, else a random
    ``validation_fraction`` of the training ratings moved out by
    :func:`rbmrec.data.carve_validation`). Refit the winner on the full ``split.train`` yourself and
    report it on the test part.

    Parameters
    ----------
    factory : callable
        ``factory(**params)`` builds an unfitted model.
    grid : mapping of str to iterable
        Candidate values per parameter; every combination is tried.
    split : rbmrec.data.Split
    K, relevance_threshold :
        As in :func:`evaluate` (used on the validation part).
    metric : str, default "ndcg"
        Column of :func:`evaluate` to maximise (``rmse``/``mae`` are minimised).
    validation_fraction : float, default 0.1
    seed : int, default 0
        Seed of the carve.

    Returns
    -------
    best : dict
        Winning parameters.
    results : polars.DataFrame
        One row per candidate: the parameters (as strings in ``params``) and every metric.
    """
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {METRIC_COLUMNS}, got {metric!r}")
    keys = list(grid)
    values = [list(grid[k]) for k in keys]
    if not keys or any(len(v) == 0 for v in values):
        raise ValueError("grid must map each parameter name to a non-empty list of values")
    split = _check_split(split)
    if split.validation is not None:
        tune_train, tune_val = split.train, split.validation
    else:
        from rbmrec.data.splits import carve_validation

        carved = carve_validation(split, validation_fraction, seed)
        tune_train, tune_val = carved.train, carved.validation
    tuning = Split(tune_train, tune_val, None, name=f"{split.name}-tuning", info=split.info)
    frames = []
    candidates = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
    for params in candidates:
        df = evaluate({repr(params): factory(**params)}, tuning, K, relevance_threshold)
        frames.append(df)
    results = pl.concat(frames)
    scores = results[metric].to_numpy().astype(np.float64)
    lower_is_better = metric in ("rmse", "mae")
    scores = np.where(np.isnan(scores), np.inf if lower_is_better else -np.inf, scores)
    best_i = int(np.argmin(scores) if lower_is_better else np.argmax(scores))
    if not math.isfinite(scores[best_i]):
        raise ValueError(f"no candidate produced a finite {metric} on the validation part")
    return candidates[best_i], results
