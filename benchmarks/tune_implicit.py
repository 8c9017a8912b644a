"""Tune ImplicitRBM for top-N on ML-1M with a validation split; report test once.

Protocol: ML-1M, 90/10 random split of all ratings with seed 0; 10 % of the
training ratings are carved out as validation (``random_split(..., validation_fraction)``).
Every training rating is a positive interaction whatever its value; relevant items are
held-out ratings >= 4; training items are excluded from the lists; metric NDCG@10.

1. Each candidate setting is fitted on ``train`` with ``validation`` (early stopping on
   validation NDCG@10, patience 3); the setting with the best validation NDCG@10 wins and
   its best epoch count is kept.
2. The winner is refitted on ``train + validation`` for that many epochs and evaluated on
   ``test`` (NDCG/recall/precision/MAP@10, coverage) exactly once.

Usage::

    RBMREC_DATA_DIR=/work/shared/datasets \\
        .venv/bin/python benchmarks/tune_implicit.py --grid default --out results.json
    # one lever at a time on top of the defaults, then combinations:
    .venv/bin/python benchmarks/tune_implicit.py --grid levers --max-epochs 40 --patience 8
    # only the final test run with given settings ({} = the defaults):
    .venv/bin/python benchmarks/tune_implicit.py --final '{}' --epochs 40

Each fit takes about 1-4 s per epoch on one core (300-500 hidden units).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.data import load_movielens, random_split
from rbmrec.evaluation.metrics import ranking_metrics, relevant_items
from rbmrec.models.implicit import ImplicitRBM

log = logging.getLogger("tune_implicit")

#: A grid is a dict of lists (every combination is a candidate) or a list of candidate dicts.
GRIDS: dict[str, dict[str, list[Any]] | list[dict[str, Any]]] = {
    # small sanity grid
    "quick": {"n_hidden": [100], "learning_rate": [0.01]},
    # the grid behind the shipped defaults (earlier exploratory runs with plain numpy
    # prototypes fixed n_hidden=300, lr=0.01, batch 64 and CD-1 with sampled hidden units)
    "default": {
        "n_hidden": [300],
        "learning_rate": [0.01],
        "input_dropout": [0.3, 0.5],
        "weight_decay": [1e-4, 1e-3],
    },
    # one lever at a time on top of ImplicitRBM()'s defaults, then combinations; run with
    # --max-epochs 40 --patience 8 (slow learning rates keep improving past epoch 25)
    "levers": [
        {},
        {"visible": "softmax"},
        {"visible": "softmax", "learning_rate": 0.005},
        {"lr_decay": 0.9},
        {"n_hidden": 600, "input_dropout": 0.5},
        {"lr_decay": 0.9, "learning_rate": 0.02, "popularity_weight": 0.6},
        {"visible": "softmax", "learning_rate": 0.005, "length_norm": 0.5},
        {"visible": "softmax", "learning_rate": 0.01, "lr_decay": 0.9, "popularity_weight": 1.0},
        {
            "visible": "softmax",
            "learning_rate": 0.01,
            "lr_decay": 0.9,
            "length_norm": 0.5,
            "popularity_weight": 1.0,
        },
        {
            "visible": "softmax",
            "n_hidden": 500,
            "learning_rate": 0.01,
            "lr_decay": 0.9,
            "length_norm": 0.5,
            "popularity_weight": 1.0,
        },
    ],
}


def _candidates(grid: dict[str, list[Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidate settings of a grid (see :data:`GRIDS`)."""
    if isinstance(grid, list):
        return [dict(c) for c in grid]
    keys = sorted(grid)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def _data_dir(arg: str | None) -> Path:
    path = arg or os.environ.get("RBMREC_DATA_DIR")
    if not path:
        sys.exit("set RBMREC_DATA_DIR or pass --data to the folder holding ml-1m/")
    return Path(path) / "ml-1m"


def _metrics(model: ImplicitRBM, train: sp.csr_matrix, relevant: sp.csr_matrix) -> dict:
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    ids, _ = model.recommend(users, train[users], N=10)
    return ranking_metrics(ids, relevant[users], K=10, n_items=train.shape[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder holding ml-1m/ (default: $RBMREC_DATA_DIR)")
    ap.add_argument("--grid", default="default", help=f"one of {sorted(GRIDS)} or a JSON dict")
    ap.add_argument("--max-epochs", type=int, default=25)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    ap.add_argument("--final", help="JSON dict of settings: skip tuning, run the test once")
    ap.add_argument("--epochs", type=int, help="epochs for --final")
    ap.add_argument("--no-test", action="store_true", help="tune only, do not touch test")
    ap.add_argument("--out", help="write all results as JSON here")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads of the RBM")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    t0 = time.perf_counter()
    data = load_movielens(_data_dir(args.data), metadata=False)
    split = random_split(data, test_fraction=0.1, seed=0, validation_fraction=args.valid_fraction)
    train, valid, test = split.train, split.validation, split.test
    log.info(
        "ML-1M loaded and split in %.1fs: train %d, valid %d, test %d",
        time.perf_counter() - t0,
        train.nnz,
        valid.nnz,
        test.nnz,
    )
    valid_rel = relevant_items(valid, 4.0)
    results: dict[str, Any] = {"protocol": split.info, "candidates": []}

    if args.final:
        best_params = json.loads(args.final)
        best_epochs = args.epochs or ImplicitRBM().n_epochs
    else:
        grid = GRIDS.get(args.grid) or json.loads(args.grid)
        best = (-1.0, None, None)
        for params in _candidates(grid):
            t = time.perf_counter()
            # candidates are single RBMs (early stopping and the best epoch are per model);
            # the final model keeps the candidate's n_models or the default (an ensemble)
            model = ImplicitRBM(
                **{
                    "random_state": 0,
                    "num_threads": args.threads,
                    "n_models": 1,
                    **params,
                    "n_epochs": args.max_epochs,
                    "patience": args.patience,
                }
            )
            model.fit(train, validation=valid_rel)
            nd = max(r["valid_ndcg"] for r in model.history_)
            epochs = (model.best_epoch_ or 0) + 1
            rec = {
                "params": params,
                "valid_ndcg10": nd,
                "best_epochs": epochs,
                "seconds": time.perf_counter() - t,
            }
            results["candidates"].append(rec)
            log.info("%s", rec)
            if nd > best[0]:
                best = (nd, params, epochs)
        _, best_params, best_epochs = best
        results["chosen"] = {"params": best_params, "epochs": best_epochs, "valid_ndcg10": best[0]}
        log.info("chosen: %s", results["chosen"])

    if not args.no_test:
        full = (train + valid).tocsr()
        t = time.perf_counter()
        model = ImplicitRBM(
            **{
                "random_state": 0,
                "num_threads": args.threads,
                **best_params,
                "n_epochs": best_epochs,
            }
        )
        model.fit(full)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        test_m = _metrics(model, full, relevant_items(test, 4.0))
        rec_s = time.perf_counter() - t
        results["test"] = {
            "params": best_params,
            "epochs": best_epochs,
            "metrics": test_m,
            "fit_seconds": fit_s,
            "recommend_seconds": rec_s,
        }
        log.info("TEST %s", results["test"])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
