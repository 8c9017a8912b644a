"""Top-N benchmark: every model on the same random 90/10 split, one table.

Protocol: hold out ``--test-fraction`` of the ratings at random (``--seed``); relevant items
are held-out ratings ``>= --threshold``; lists of ``--K`` items exclude the user's training
items; users without relevant held-out items are skipped. ``als-tuned`` picks ALS
hyperparameters on a validation part carved from the training ratings (never the test
part), refits the winner on the whole training part and reports it on the test part.

Example::

    RBMREC_DATA_DIR=/work/shared/datasets python benchmarks/topn.py --dataset ml-1m \\
        --models popularity,bias,als-tuned,bpr --out results/topn-ml1m.md
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ALS_GRIDS,
    MODEL_FACTORIES,
    base_parser,
    load_split,
    machine_info,
    parse_models,
    report,
)

from rbmrec.evaluation import ImplicitALS, evaluate, grid_search, to_markdown

COLUMNS = [
    "model",
    "ndcg",
    "precision",
    "recall",
    "map",
    "mrr",
    "hit_rate",
    "coverage",
    "fit_seconds",
    "recommend_seconds",
    "n_users",
    "seed",
]


def main(argv: list[str] | None = None) -> pl.DataFrame:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--models", default="popularity,bias,als-tuned,bpr")
    p.add_argument("--K", type=int, default=10)
    p.add_argument("--threshold", type=float, default=4.0, help="relevant if rating >= this")
    p.add_argument("--als-grid", default="quick", choices=sorted(ALS_GRIDS))
    p.add_argument("--validation-fraction", type=float, default=0.1)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    names = parse_models(args.models, {*MODEL_FACTORIES, "als-tuned"})
    split = load_split(args.dataset, args.data_dir, args.test_fraction, args.seed)
    meta = machine_info()
    meta["protocol"] = (
        f"{args.dataset}, random {1 - args.test_fraction:.0%}/{args.test_fraction:.0%} split "
        f"seed {args.seed}, relevant = held-out rating >= {args.threshold:g}, K={args.K}, "
        "training items excluded"
    )
    models = {}
    for name in names:
        if name != "als-tuned":
            models[name] = MODEL_FACTORIES[name](seed=args.seed, threads=args.threads)
            continue
        t0 = time.perf_counter()
        best, results = grid_search(
            lambda **kw: ImplicitALS(random_state=args.seed, num_threads=args.threads, **kw),
            ALS_GRIDS[args.als_grid],
            split,
            K=args.K,
            relevance_threshold=args.threshold,
            metric="ndcg",
            validation_fraction=args.validation_fraction,
            seed=args.seed,
        )
        tuning = time.perf_counter() - t0
        print(f"ALS grid ({results.height} candidates, {tuning:.0f} s) on validation:")
        ranked = results.sort("ndcg", descending=True)
        print(to_markdown(ranked, columns=["model", "ndcg", "map", "fit_seconds"]))
        meta["als_tuning"] = (
            f"grid {ALS_GRIDS[args.als_grid]} fit on train minus a random "
            f"{args.validation_fraction:.0%} validation carve (seed {args.seed}), scored on "
            f"that validation part; best by NDCG@{args.K}: {best}; "
            f"{tuning:.0f} s"
        )
        models["als-tuned"] = ImplicitALS(random_state=args.seed, num_threads=args.threads, **best)
    df = evaluate(models, split, K=args.K, relevance_threshold=args.threshold)
    report(df, args.out, COLUMNS, meta)
    return df


if __name__ == "__main__":
    main()
