"""The rows of :func:`rbmrec.evaluation.evaluate`'s result: their columns, the rating
scores of one model (RMSE, MAE and the NLL of its predictive distribution) and the
description of the model (seed, parameters)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.evaluation.metrics import RANKING_METRICS, mae, mean_nll, rmse

logger = logging.getLogger(__name__)

#: Metric columns of :func:`evaluate`'s frame, in order.
METRIC_COLUMNS: tuple[str, ...] = ("rmse", "mae", "nll", *RANKING_METRICS)
#: Metrics where lower is better (the others: higher).
LOWER_IS_BETTER: tuple[str, ...] = ("rmse", "mae", "nll")
TIME_COLUMNS = ("fit_seconds", "predict_seconds", "recommend_seconds")
SCHEMA: dict[str, Any] = {
    "model": pl.Utf8,
    "split": pl.Utf8,
    **{c: pl.Float64 for c in METRIC_COLUMNS},
    **{c: pl.Float64 for c in TIME_COLUMNS},
    "nll_excluded": pl.Int64,
    "n_users": pl.Int64,
    "n_test_ratings": pl.Int64,
    "K": pl.Int64,
    "relevance_threshold": pl.Float64,
    "seed": pl.Int64,
    "params": pl.Utf8,
}


def new_row(name: str, split: str, K: int, threshold: float | None, n_test: int) -> dict[str, Any]:
    """A row of :data:`SCHEMA` with its settings filled in and every score null."""
    row: dict[str, Any] = dict.fromkeys(SCHEMA)
    row.update(
        model=str(name),
        split=split,
        K=int(K),
        relevance_threshold=None if threshold is None else float(threshold),
        n_test_ratings=int(n_test),
    )
    return row


def predictive_levels(model: Any) -> np.ndarray | None:
    """The rating levels of ``model.predict_proba``'s columns (its ``values_``), or None for
    a model without a predictive distribution over levels (no ``predict_proba``, or no
    levels: a gaussian RatingRBM)."""
    if not callable(getattr(model, "predict_proba", None)):
        return None
    levels = getattr(model, "values_", None)
    if levels is None or np.size(levels) < 2:
        return None
    return np.asarray(levels, dtype=np.float64)


def rating_scores(model: Any, test: sp.coo_matrix) -> dict[str, Any]:
    """``predict_seconds``, ``rmse`` and ``mae`` of ``model.predict`` on every stored entry
    of ``test``, and for a model with a predictive distribution (:func:`predictive_levels`)
    ``nll`` (:func:`~rbmrec.evaluation.metrics.mean_nll`) and ``nll_excluded``, the held-out
    ratings that are no level of the model and are left out of ``nll``."""
    t0 = time.perf_counter()
    pred = np.asarray(model.predict(test.row, test.col), dtype=np.float64)
    out: dict[str, Any] = {"predict_seconds": time.perf_counter() - t0}
    out["rmse"] = rmse(test.data, pred)
    out["mae"] = mae(test.data, pred)
    levels = predictive_levels(model)
    if levels is not None:
        score = mean_nll(model.predict_proba(test.row, test.col), levels, test.data)
        out["nll"], out["nll_excluded"] = score.nll, score.n_excluded
        if score.n_excluded:
            logger.warning(
                "%s: %d of %d held-out ratings are no rating level of the model %s and are "
                "left out of nll",
                type(model).__name__,
                score.n_excluded,
                test.nnz,
                levels.tolist() if levels.size <= 20 else f"({levels.size} levels)",
            )
    return out


def model_seed(model: Any) -> int | None:
    """The model's int ``random_state``, or None."""
    seed = getattr(model, "random_state", None)
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return int(seed)
    return None


#: Constructor arguments the results' ``params`` column leaves out: they change how a fit
#: reports, not what it learns.
_NOT_SHOWN = ("callbacks", "callback", "progress")


def model_params(model: Any) -> str:
    """The ``params`` column: the model's parameters as a dict repr, else its repr."""
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


def summary(row: dict[str, Any]) -> str:
    """``rmse=0.9012, ...``: the scores and times of a row that are not null."""
    shown = (*METRIC_COLUMNS, *TIME_COLUMNS)
    return ", ".join(f"{c}={row[c]:.4f}" for c in shown if row[c] is not None)
