"""Rating-prediction benchmark: RMSE/MAE/fit time/epochs of the rating models.

Protocols (5% of each training part is carved out as validation for early stopping and for
the blend's weights; the test part is used once, for the table):

- ``--dataset ml-100k``: the official folds u1..u5, mean and standard deviation over folds.
- ``--dataset ml-1m``: 90/10 random splits of all ratings, one per seed in ``--seeds``
  (default 0..4), mean and standard deviation over seeds.

Rows: global mean, user+item bias, RatingRBM user-based (U-RBM), item-based (I-RBM), the
conditional user-based RBM, the factored conditional I-RBM, the conditional I-RBM (the
default before ``orientation="both"``), ``RatingRBM()`` with defaults (fitted for real: a
convex mixture of a conditional I-RBM and a conditional U-RBM, mixing weight fitted on the
validation ratings), and blends of the single-orientation rows whose weights are ridge least
squares on the validation ratings (``BlendedRatingModel``, see ``BLENDS``; members are the
fitted models of the rows above, so blends cost no extra fit; ``rating-rbm`` is never a
member, since its members duplicate two rows).

Columns: ``valid_rmse_mean`` is the RMSE on the validation ratings (for blends, 5-fold
cross-validated on them, since their weights are fitted there): model choices are made on
it. ``rmse_mean``/``rmse_std``/``mae_mean`` are on the test ratings; ``fit_seconds_mean``
(a blend: its members' fits plus its own) and ``epochs_mean`` (best epoch under early
stopping) are means over splits.

Example::

    RBMREC_DATA_DIR=../shared/datasets python benchmarks/rating_accuracy.py --dataset ml-1m \\
        --seeds 0,1,2,3,4 --out benchmarks/results/rating-ml1m.md
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MODEL_FACTORIES, base_parser, data_folder, machine_info, parse_models, report

from rbmrec.evaluation import registry
from rbmrec.models.blend import BlendedRatingModel
from rbmrec.models.rating import RatingRBM

log = logging.getLogger("benchmarks.rating_accuracy")


def _rbm(seed: int, threads: int, **kw: Any) -> RatingRBM:
    return registry.make("rating-rbm", random_state=seed, num_threads=threads, **kw)


#: name -> (description, factory(seed, threads)). Settings other than the defaults were
#: chosen on validation ratings only (benchmarks/README.md).
RATING_MODELS: dict[str, tuple[str, Any]] = {
    "global-mean": ("global mean", MODEL_FACTORIES["global-mean"]),
    "bias": ("user + item biases", MODEL_FACTORIES["bias"]),
    "rbm-user": (
        "U-RBM (paper): user-based, 100 hidden",
        lambda seed, threads: _rbm(
            seed, threads, orientation="user", conditional=False, n_hidden=100
        ),
    ),
    "rbm-item": (
        "I-RBM: item-based, 100 hidden",
        lambda seed, threads: _rbm(
            seed, threads, orientation="item", conditional=False, n_hidden=100
        ),
    ),
    "rbm-conditional-user": (
        "conditional U-RBM, default settings otherwise",
        lambda seed, threads: _rbm(seed, threads, orientation="user"),
    ),
    "rbm-factored": (
        "factored conditional I-RBM, C=30, 200 hidden",
        lambda seed, threads: _rbm(seed, threads, orientation="item", n_factors=30, n_hidden=200),
    ),
    "rbm-conditional-item": (
        "conditional I-RBM, default settings otherwise (the default before 'both')",
        lambda seed, threads: _rbm(seed, threads, orientation="item"),
    ),
    "rating-rbm": (
        "RatingRBM() defaults: mixture of conditional I-RBM and U-RBM",
        lambda seed, threads: _rbm(seed, threads),
    ),
}

#: Blends: name -> (description, member rows, BlendedRatingModel keyword arguments). Every
#: blend reuses the fitted models of its member rows, so blends cost no extra fit; which
#: blend is "the best combination" is decided on the ``valid_rmse`` column (cross-validated
#: on the validation ratings), never on test.
_ALL_RBMS = [
    "rbm-user", "rbm-item", "rbm-conditional-user", "rbm-factored", "rbm-conditional-item",
]  # fmt: skip
BLENDS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "rbm-blend": (
        "blend of the conditional I-RBM and the conditional U-RBM (weights on validation)",
        ["rbm-conditional-item", "rbm-conditional-user"],
        {},
    ),
    "rbm-blend-all": (
        "blend of the five RBM rows above (weights on validation)",
        _ALL_RBMS,
        {},
    ),
    "rbm-blend-all-bias": (
        "blend of the five RBM rows and the bias baseline (weights on validation)",
        [*_ALL_RBMS, "bias"],
        {},
    ),
    "rbm-blend-support": (
        "as rbm-blend-all-bias, weights varying with log user/item support",
        [*_ALL_RBMS, "bias"],
        {"support": True},
    ),
}

DEFAULT_MODELS = ",".join([*RATING_MODELS, *BLENDS])


class _Fitted:
    """A fitted model whose ``fit`` does nothing (to blend models fitted once already)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, user_items: Any, validation: Any = None) -> _Fitted:
        return self

    def predict(self, userids: Any, itemids: Any) -> np.ndarray:
        return self.model.predict(userids, itemids)


def _scores(model: Any, test: Any) -> tuple[float, float]:
    u, i = test.nonzero()
    truth = np.asarray(test[u, i]).ravel()
    pred = np.asarray(model.predict(u, i), dtype=np.float64)
    err = pred - truth
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def _epochs(model: Any) -> float:
    """Early-stopping best epoch (its epoch count without one); a "both" model: the mean of
    its members'."""
    members = getattr(model, "members_", None)
    if members is not None:
        return float(np.mean([_epochs(m) for m in members.values()]))
    hist = getattr(model, "history_", None)
    best = getattr(model, "best_epoch_", None)
    return float(best if best is not None else len(hist)) if hist else float("nan")


def _affine_note(model: Any, split: Any) -> str:
    """For the log: validation RMSE of a "both" model, of its plain convex mixture (no
    calibration) and of the least-squares blend with intercept of the same two members
    (``BlendedRatingModel``, ridge 1e-3, with its 5-fold cross-validated RMSE)."""
    if split.validation is None or split.validation.nnz == 0 or len(model.members_) < 2:
        return ""
    u, i = split.validation.nonzero()
    truth = np.asarray(split.validation[u, i]).ravel()
    w = model.blend_weight_
    mix = w * model.members_["item"].predict(u, i) + (1 - w) * model.members_["user"].predict(u, i)
    blend = BlendedRatingModel([(k, _Fitted(m)) for k, m in model.members_.items()])
    blend.fit(split.train, validation=split.validation)
    return (
        f"; validation RMSE {_scores(model, split.validation)[0]:.4f} (calibration "
        f"{np.round(model.calibration_, 4).tolist()}), convex mixture alone "
        f"{float(np.sqrt(np.mean((mix - truth) ** 2))):.4f}, affine blend {blend.valid_rmse_:.4f} "
        f"(cross-validated {blend.cv_rmse_:.4f})"
    )


def run_split(split: Any, names: list[str], seed: int, threads: int) -> list[dict[str, Any]]:
    """Fit every requested row on one split; one result dict per row."""
    rows: list[dict[str, Any]] = []
    fitted: dict[str, tuple[Any, float]] = {}
    need = set(names)
    for blend in names:
        if blend in BLENDS:
            need.update(BLENDS[blend][1])
    for name in [n for n in RATING_MODELS if n in need]:
        model = RATING_MODELS[name][1](seed, threads)
        t0 = time.perf_counter()
        try:
            model.fit(split.train, validation=split.validation)
        except TypeError:
            model.fit(split.train)
        fitted[name] = (model, time.perf_counter() - t0)
    has_valid = split.validation is not None and split.validation.nnz > 0
    for name in names:
        if name in BLENDS:
            _, members, kwargs = BLENDS[name]
            model = BlendedRatingModel([(m, _Fitted(fitted[m][0])) for m in members], **kwargs)
            t0 = time.perf_counter()
            model.fit(split.train, validation=split.validation)
            secs = sum(fitted[m][1] for m in members) + time.perf_counter() - t0
            epochs = float("nan")
            # The blend's weights were fitted on the validation ratings: its in-sample RMSE
            # there is optimistic, the cross-validated one is comparable with the members'.
            valid = model.cv_rmse_
        else:
            model, secs = fitted[name]
            epochs = _epochs(model)
            valid = _scores(model, split.validation)[0] if has_valid else float("nan")
            if getattr(model, "members_", None) is not None:
                log.info(
                    "%s %s: item weight %.4f, best epochs %s%s",
                    split.name,
                    name,
                    model.blend_weight_,
                    model.best_epoch_,
                    _affine_note(model, split),
                )
        rmse, mae = _scores(model, split.test)
        rows.append(
            {
                "model": name,
                "split": split.name,
                "valid_rmse": valid,
                "rmse": rmse,
                "mae": mae,
                "fit_seconds": secs,
                "best_epoch": epochs,
            }
        )
        log.info("%s %s: valid %.4f test %.4f (%.0f s)", split.name, name, valid, rmse, secs)
    return rows


def summarise(df: pl.DataFrame) -> pl.DataFrame:
    """Mean and standard deviation over splits, in the order the rows were requested."""
    order = {n: k for k, n in enumerate(dict.fromkeys(df["model"].to_list()))}
    desc = {**{k: v[0] for k, v in RATING_MODELS.items()}, **{k: v[0] for k, v in BLENDS.items()}}
    out = (
        df.group_by("model")
        .agg(
            pl.len().alias("n_splits"),
            pl.col("valid_rmse").mean().alias("valid_rmse_mean"),
            pl.col("rmse").mean().alias("rmse_mean"),
            pl.col("rmse").std().alias("rmse_std"),
            pl.col("mae").mean().alias("mae_mean"),
            pl.col("fit_seconds").mean().alias("fit_seconds_mean"),
            pl.col("best_epoch").mean().alias("epochs_mean"),
        )
        .with_columns(
            pl.col("model").replace_strict(desc, default="").alias("settings"),
            pl.col("model").replace_strict(order, default=0).alias("_order"),
        )
        .sort("_order")
        .drop("_order")
    )
    return out


def main(argv: list[str] | None = None) -> pl.DataFrame:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"default: {DEFAULT_MODELS}")
    p.add_argument("--seeds", default="0,1,2,3,4", help="ML-1M split seeds")
    p.add_argument(
        "--folds", default="official",
        help="ML-100K folds: 'official' (u1..u5) or a comma list such as u1,u2",
    )  # fmt: skip
    p.add_argument("--validation-fraction", type=float, default=0.05)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    names = parse_models(args.models, set(RATING_MODELS) | set(BLENDS))
    from rbmrec.data import load_movielens, movielens_folds, random_split

    meta = machine_info()
    results: list[dict[str, Any]] = []
    if args.dataset == "ml-100k":
        folds = [f.strip() for f in args.folds.split(",") if f.strip()]
        if folds == ["official"]:
            folds = ["u1", "u2", "u3", "u4", "u5"]
        splits = movielens_folds(
            data_folder("ml-100k", args.data_dir), folds=folds,
            validation_fraction=args.validation_fraction, seed=args.seed,
        )  # fmt: skip
        meta["protocol"] = (
            f"ml-100k official folds {folds}, {args.validation_fraction:g} of each base "
            f"as validation; mean over folds"
        )
        for split in splits:
            results += run_split(split, names, args.seed, args.threads)
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        data = load_movielens(data_folder(args.dataset, args.data_dir), metadata=False)
        meta["protocol"] = (
            f"{args.dataset}, random {1 - args.test_fraction:g}/{args.test_fraction:g} "
            f"splits, seeds {seeds}, {args.validation_fraction:g} of train as validation; "
            f"mean over seeds"
        )
        for seed in seeds:
            split = random_split(
                data, test_fraction=args.test_fraction, seed=seed,
                validation_fraction=args.validation_fraction,
            )  # fmt: skip
            split = dataclasses.replace(split, name=f"seed{seed}")
            results += run_split(split, names, seed, args.threads)
            # Partial tables as the (long) run goes.
            print(summarise(pl.DataFrame(results)), flush=True)
    df = pl.DataFrame(results)
    summary = summarise(df)
    report(summary, args.out, ["model", "settings", "n_splits", "valid_rmse_mean", "rmse_mean",
                               "rmse_std", "mae_mean", "fit_seconds_mean", "epochs_mean"],
           meta)  # fmt: skip
    print()
    print(df)
    return summary


if __name__ == "__main__":
    main()
