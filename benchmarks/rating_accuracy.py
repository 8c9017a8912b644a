"""Rating-prediction benchmark: RMSE/MAE of the rating models on one split or on folds.

``--folds official`` uses ML-100K's u1..u5 (mean and standard deviation over folds);
otherwise a random hold-out of ``--test-fraction`` (``--seed``).

Example::

    RBMREC_DATA_DIR=/work/shared/datasets python benchmarks/rating_accuracy.py \\
        --dataset ml-100k --folds official --out results/rating-ml100k.md
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MODEL_FACTORIES,
    base_parser,
    data_folder,
    load_split,
    machine_info,
    parse_models,
    report,
)

from rbmrec.evaluation import cross_validate, evaluate

COLUMNS = ["model", "rmse", "mae", "fit_seconds", "predict_seconds", "seed"]
CV_COLUMNS = [
    "model",
    "n_folds",
    "rmse_mean",
    "rmse_std",
    "mae_mean",
    "mae_std",
    "fit_seconds_mean",
    "predict_seconds_mean",
]


def _rating_only(model):
    """Hide ``recommend`` so the harness scores predictions only (faster, no ranking)."""

    class RatingView:
        def __init__(self, inner):
            self._inner = inner
            self.random_state = getattr(inner, "random_state", None)

        def fit(self, user_items, **kwargs):
            self._inner.fit(user_items, **kwargs)
            return self

        def predict(self, userids, itemids):
            return self._inner.predict(userids, itemids)

        def __repr__(self):
            return repr(self._inner)

    return RatingView(model)


def main(argv: list[str] | None = None) -> pl.DataFrame:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--models", default="global-mean,bias")
    p.add_argument("--folds", default="none", choices=["none", "official"])
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    names = parse_models(args.models, set(MODEL_FACTORIES))

    def make():
        out = {}
        for n in names:
            m = MODEL_FACTORIES[n](seed=args.seed, threads=args.threads)
            if not hasattr(m, "predict"):
                raise SystemExit(f"model {n!r} has no predict(): not a rating model")
            out[n] = _rating_only(m)
        return out

    meta = machine_info()
    if args.folds == "official":
        if args.dataset != "ml-100k":
            raise SystemExit("--folds official exists only for ml-100k (u1..u5)")
        from rbmrec.data import movielens_folds

        splits = movielens_folds(data_folder(args.dataset, args.data_dir))
        meta["protocol"] = f"ml-100k official folds {[s.name for s in splits]}"
        _, summary = cross_validate(make, splits, relevance_threshold=None)
        report(summary, args.out, CV_COLUMNS, meta)
        return summary
    split = load_split(args.dataset, args.data_dir, args.test_fraction, args.seed)
    meta["protocol"] = f"{args.dataset}, random hold-out {args.test_fraction:g}, seed {args.seed}"
    df = evaluate(make(), split)
    report(df, args.out, COLUMNS, meta)
    return df


if __name__ == "__main__":
    main()
