"""Evaluation: metrics, baselines behind the recommender interface, the comparison harness.

``implicit`` is imported only when an implicit baseline is fitted.
"""

from rbmrec.evaluation.baselines import (
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    Popularity,
)
from rbmrec.evaluation.harness import (
    carve_validation,
    cross_validate,
    evaluate,
    grid_search,
    kfold_splits,
)
from rbmrec.evaluation.metrics import (
    mae,
    ranking_metrics,
    relevant_items,
    rmse,
)
from rbmrec.evaluation.report import to_markdown, write_results

__all__ = [
    "BiasBaseline",
    "GlobalMean",
    "ImplicitALS",
    "ImplicitBPR",
    "ImplicitItemKNN",
    "Popularity",
    "carve_validation",
    "cross_validate",
    "evaluate",
    "grid_search",
    "kfold_splits",
    "mae",
    "ranking_metrics",
    "relevant_items",
    "rmse",
    "to_markdown",
    "write_results",
]
