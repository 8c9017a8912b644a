"""Evaluation: metrics, baselines behind the recommender interface, the comparison harness.

``implicit`` is imported only when an implicit baseline is fitted.
"""

from rbmrec.evaluation.baselines import (
    EASE,
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    Popularity,
)
from rbmrec.evaluation.harness import cross_validate, evaluate, grid_search
from rbmrec.evaluation.metrics import (
    mae,
    mean_nll,
    ranking_metrics,
    relevant_items,
    rmse,
)
from rbmrec.evaluation.report import to_markdown, write_results

__all__ = [
    "EASE",
    "BiasBaseline",
    "GlobalMean",
    "ImplicitALS",
    "ImplicitBPR",
    "ImplicitItemKNN",
    "Popularity",
    "cross_validate",
    "evaluate",
    "grid_search",
    "mae",
    "mean_nll",
    "ranking_metrics",
    "relevant_items",
    "rmse",
    "to_markdown",
    "write_results",
]
