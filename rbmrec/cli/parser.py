"""The argument parser of the ``rbmrec`` command: one function per sub-command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from rbmrec.cli import datasets, demo, evaluate, fit, recommend
from rbmrec.cli._cluster import add_cluster_arg

#: What ``fit --model`` accepts (canonical names and the short spellings).
FIT_MODELS = ("rating-rbm", "implicit-rbm", "rating-rbm-choice", "rbm", "irbm", "choose-and-like")
#: ``evaluate``'s default models, and ``benchmark``'s (every model of the first releases).
EVALUATE_MODELS = "rating-rbm,implicit-rbm,bias,als"
BENCHMARK_MODELS = "rating-rbm,implicit-rbm,als,bpr,popularity,bias"


def _arg_type(
    convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, refused unless ``ok``, naming ``what``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _arg_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _arg_type(int, lambda v: v >= 0, "a non-negative integer")
_seed = _arg_type(int, lambda v: 0 <= v < 2**63, "an integer in [0, 2**63)")
_finite_float = _arg_type(float, lambda v: bool(np.isfinite(v)), "a finite number")
_positive_float = _arg_type(float, lambda v: v > 0 and np.isfinite(v), "a positive number")
_fraction = _arg_type(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
#: The test split must hold something out.
_open_fraction = _arg_type(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="MovieLens folder/zip, CSV/TSV/parquet of ratings, or 'demo' (synthetic)",
    )
    g.add_argument("--dataset", metavar="NAME", help="named data set: demo, ml-100k, ml-1m, ...")
    g.add_argument(
        "--user-col", help="user column of a table (user_id; with --no-header a number, 0)"
    )
    g.add_argument(
        "--item-col", help="item column of a table (item_id; with --no-header a number, 1)"
    )
    g.add_argument(
        "--rating-col", help="rating column of a table (rating; with --no-header a number, 2)"
    )
    g.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV/TSV file has no header line: columns are given by 0-based position "
        "(default user 0, item 1, rating 2)",
    )
    g.add_argument(
        "--duplicates",
        choices=("error", "last", "mean"),
        default="error",
        help="a user rating the same item twice: refuse the data (error, the default), keep "
        "the last rating, or average them",
    )


def _add_hyper_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("RBM hyperparameters (defaults: the model's)")
    g.add_argument("--n-hidden", type=_positive_int, help="hidden units")
    g.add_argument("--epochs", type=_positive_int, help="training epochs")
    g.add_argument("--learning-rate", type=_positive_float, help="learning rate")
    g.add_argument("--batch-size", type=_positive_int, help="rows per mini-batch")
    g.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    g.add_argument(
        "--threads",
        type=_non_negative_int,
        default=None,
        help="numba threads for the RBMs (0: numba's default; demo default 1, which is "
        "fastest for small data and on busy machines)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_eval_args(p: argparse.ArgumentParser, models: str) -> None:
    from rbmrec.evaluation import registry

    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--models",
        default=models,
        help=f"comma-separated: {','.join(registry.names())}, or aliases ({models})",
    )
    g.add_argument(
        "--test-fraction", type=_open_fraction, default=0.1, help="held out, in (0, 1) (0.1)"
    )
    g.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.1,
        help="of train, for early stopping (0.1)",
    )
    g.add_argument("-k", "--k", type=_positive_int, default=10, help="list length K (10)")
    g.add_argument(
        "--relevance-threshold",
        type=_finite_float,
        default=4.0,
        help="held-out ratings >= this are relevant (4)",
    )
    g.add_argument(
        "--out",
        metavar="FILE",
        help="write the table (.csv, .json or .md); checked before any work, not written "
        "when Ctrl-C stops the run",
    )
    g.add_argument(
        "--plot", metavar="PNG", help="write a bar chart of the metrics (.png, .pdf, .svg, ...)"
    )


def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="fit RBMs and baselines on demo data, compare, recommend",
        description="Fit RatingRBM, ImplicitRBM, the bias baseline and ALS on one split of "
        "the embedded synthetic data (or ML-100K when RBMREC_DATA_DIR has it), print the "
        "comparison and top-10 recommendations for a sample user.",
    )
    _add_data_args(p)
    _add_hyper_args(p)
    _add_eval_args(p, EVALUATE_MODELS)
    p.set_defaults(func=demo.run)


def _add_fit(sub: Any) -> None:
    p = sub.add_parser(
        "fit",
        help="fit a model and save it",
        description="Fit a model and save it as one model bundle file (rbmrec.bundle."
        "ModelBundle: the model, the raw user and item ids, the item titles and the training "
        "ratings). Ctrl-C stops training: the model trained so far is saved and the exit "
        "code is 130. A rating value that looks like a typo (used by under 0.01% of the "
        "ratings, or far from the other values, e.g. 100 among 1..5) gets a warning on "
        "stderr: for the rating RBM every distinct value is a rating level.",
    )
    _add_data_args(p)
    p.add_argument(
        "--model",
        default="rating-rbm",
        choices=FIT_MODELS,
        help="model to fit (rating-rbm); rating-rbm-choice ranks the rating RBM's items by an "
        "implicit RBM's probability that the user picks them (better top-N lists, both fits' "
        "time; --n-hidden and --epochs apply to both RBMs)",
    )
    _add_hyper_args(p)
    p.add_argument(
        "--orientation",
        choices=("both", "user", "item"),
        help="rating-rbm: 'both' (the model's default) mixes an item-based and a user-based "
        "RBM; 'user' is one RBM per user, 'item' one per item (no fold-in of new users)",
    )
    p.add_argument(
        "--visible",
        choices=("softmax", "gaussian"),
        help="rating-rbm: 'softmax' (the model's default) makes each distinct rating value a "
        "level (at most 127); 'gaussian' reads ratings as real values, for a real-valued or "
        "fine-grained scale (e.g. -10..10 in steps of 0.01)",
    )
    p.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=None,
        help="hold out this fraction of the ratings for early stopping (0: fit on "
        "everything); rating-rbm: its validation_fraction (default 0.1, also the mixing "
        "weights); implicit-rbm: default 0",
    )
    add_cluster_arg(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="MODEL.npz",
        help="where to save the model bundle: one file (.npz appended when missing) with the "
        "model, the raw ids, titles and training ratings; replaced all or nothing",
    )
    p.set_defaults(func=fit.run)


def _add_recommend(sub: Any) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-N items for a user of a saved model",
        description="Top-N items for a user of a model written by `rbmrec fit` (one bundle "
        "file; the three files MODEL.npz, MODEL.npz.ids.json and MODEL.npz.seen.npz of "
        "rbmrec 0.1.0 are read too).",
    )
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="written by rbmrec fit")
    p.add_argument(
        "--user", metavar="RAW_ID", help="user id as in the data (required without --cluster)"
    )
    p.add_argument(
        "-n", type=_positive_int, default=10, help="how many items (10; at most all items)"
    )
    seen = p.add_mutually_exclusive_group()
    seen.add_argument(
        "--exclude-seen",
        dest="exclude_seen",
        action="store_true",
        default=True,
        help="skip items the user rated (default)",
    )
    seen.add_argument(
        "--include-seen",
        dest="exclude_seen",
        action="store_false",
        help="list rated items too (a three-file model's MODEL.npz.seen.npz is then not "
        "needed, unless --ratings is given for a user of the training data)",
    )
    p.add_argument(
        "--ratings",
        metavar="CSV",
        help="fold in the user from a UTF-8 CSV of 'item,rating' lines, '-' for stdin "
        "(optional header; comma or tab separated, CSV quoting; blank and '#' lines "
        "skipped; each item once; ratings among the model's levels). For a user of "
        "the training data the file is merged with their training ratings (the file wins "
        "where both rate an item), and all of them are excluded unless --include-seen",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_cluster_arg(p)
    p.add_argument(
        "--out",
        metavar="FILE",
        help="with --cluster: write the lists of every user of the training data (columns "
        "user, rank, item, score) to this .parquet or .csv file",
    )
    p.set_defaults(func=recommend.run)


def _add_comparisons(sub: Any) -> None:
    for name, models, help_text in (
        ("evaluate", EVALUATE_MODELS, "compare models on one random split"),
        ("benchmark", BENCHMARK_MODELS, "compare models (default: all) on a data set"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_data_args(p)
        _add_hyper_args(p)
        _add_eval_args(p, models)
        add_cluster_arg(p)
        p.set_defaults(func=evaluate.run)


def _add_datasets(sub: Any) -> None:
    p = sub.add_parser("datasets", help="list, download or describe data sets")
    p.add_argument("action", choices=("list", "download", "describe"))
    p.add_argument("name", nargs="?", help="data set name (download, describe)")
    p.set_defaults(func=datasets.run)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rbmrec`` command."""
    from rbmrec import __version__

    parser = argparse.ArgumentParser(
        prog="rbmrec",
        description="Collaborative filtering with restricted Boltzmann machines.",
    )
    parser.add_argument("--version", action="version", version=f"rbmrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_fit, _add_recommend, _add_comparisons, _add_datasets):
        add(sub)
    return parser
