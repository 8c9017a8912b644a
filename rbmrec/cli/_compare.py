"""Comparing models on one random split: shared by ``demo``, ``evaluate`` and ``benchmark``.

Models are fitted one at a time, so Ctrl-C stops the comparison with the finished rows in
hand (printed, never written to a result file).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.cli import _common
from rbmrec.cli._common import EXIT_INTERRUPTED, Interrupted, UsageError
from rbmrec.cli._models import Announced, label, make_model

_TABLE_COLUMNS = (
    "model",
    "rmse",
    "mae",
    "ndcg",
    "precision",
    "recall",
    "hit_rate",
    "coverage",
    "fit_seconds",
    "recommend_seconds",
)


def table(df: Any) -> str:
    from rbmrec.evaluation import to_markdown

    cols = [c for c in _TABLE_COLUMNS if c in df.columns]
    return to_markdown(df, columns=cols)


def _split(data: Any, args: argparse.Namespace) -> Any:
    from rbmrec.data import random_split

    return random_split(
        data,
        test_fraction=args.test_fraction,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
    )


def _check_test_split(data: Any, split: Any, args: argparse.Namespace) -> None:
    """Refuse an empty test split; warn when no held-out rating counts as relevant.

    Without test ratings every metric would be nan; without a relevant held-out rating
    (``>= --relevance-threshold``) the ranking metrics are, while rmse/mae stay valid.
    """
    if split.train.nnz == 0:
        vf = getattr(args, "validation_fraction", 0.0)
        raise UsageError(
            f"the training split is empty: --test-fraction {args.test_fraction:g} and "
            f"--validation-fraction {vf:g} leave no training rating of {data.n_ratings:,}; "
            "use smaller fractions or more data"
        )
    if split.test.nnz == 0:
        raise UsageError(
            f"the test split is empty: --test-fraction {args.test_fraction:g} of "
            f"{data.n_ratings:,} ratings holds out none ({split.train.nnz:,} train, "
            f"{0 if split.validation is None else split.validation.nnz:,} validation); use a "
            "larger --test-fraction or more data"
        )
    relevant = np.asarray(split.test.data) >= args.relevance_threshold
    if not relevant.any():
        top = float(np.max(split.test.data))
        print(
            f"warning: no held-out rating is >= --relevance-threshold "
            f"{args.relevance_threshold:g} (highest: {top:g}): the ranking metrics (ndcg, "
            "precision, recall, hit_rate, coverage) are undefined (nan); lower the threshold",
            file=sys.stderr,
            flush=True,
        )


def run_comparison(data: Any, keys: Sequence[str], args: argparse.Namespace) -> Any:
    """Split, fit and score the models; Ctrl-C raises :class:`Interrupted` (finished rows).
    With ``--cluster``, the models the cluster supports are fitted there, the others in
    this process."""
    split = _split(data, args)
    print(
        f"split: {split.train.nnz:,} train, "
        f"{0 if split.validation is None else split.validation.nnz:,} validation, "
        f"{split.test.nnz:,} test ratings",
        flush=True,
    )
    _check_test_split(data, split, args)
    with _maybe_cluster(getattr(args, "cluster", None)) as client:
        models = {label(k): make_model(k, args, not args.quiet) for k in keys}
        if client is not None:
            from rbmrec.cli._cluster import on_cluster

            models = on_cluster(models, client)
        models = {name: Announced(name, model) for name, model in models.items()}
        _common.compile_note(keys)
        return _fit_and_score(models, split, args), split, models


def _maybe_cluster(spec: str | None) -> Any:
    """The Dask client of ``--cluster SPEC`` (closed on exit), or None without it."""
    if not spec:
        return contextlib.nullcontext(None)
    from rbmrec.cli._cluster import cluster_client

    return cluster_client(spec)


def _fit_and_score(models: dict[str, Any], split: Any, args: argparse.Namespace) -> Any:
    """Fit and score ``models`` one after the other: the table of their rows."""
    import polars as pl

    from rbmrec.evaluation import evaluate

    # One model at a time, so Ctrl-C stops the comparison with the finished rows in hand.
    frames: list[Any] = []
    for name, model in models.items():
        try:
            with warnings.catch_warnings():
                # _check_test_split has said so in the command's own terms.
                warnings.filterwarnings("ignore", "no rating of split.test is >=", UserWarning)
                frames.append(
                    evaluate(
                        {name: model}, split, K=args.k, relevance_threshold=args.relevance_threshold
                    )
                )
        except (KeyboardInterrupt, Exception) as exc:
            if not _common.CTRL_C.caused(exc):
                raise
            raise Interrupted(pl.concat(frames) if frames else None, name) from None
    return pl.concat(frames)


def write_outputs(df: Any, args: argparse.Namespace, meta: dict[str, Any]) -> None:
    from rbmrec.evaluation import write_results

    if args.out:
        try:
            path = write_results(df, args.out, metadata=meta)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from None
        print(f"results written to {path}")
    if args.plot:
        try:
            path = _plot(df, Path(args.plot), title=meta.get("data", ""))
        except OSError as exc:
            raise UsageError(f"--plot {args.plot}: cannot write: {exc.strerror or exc}") from None
        print(f"plot written to {path}")


def _plot(df: Any, path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = df["model"].to_list()
    k = df["K"][0] if "K" in df.columns and df.height else 10
    labels = {"rmse": "RMSE (lower is better)", "ndcg": f"NDCG@{k} (higher is better)"}
    panels = [(c, labels[c]) for c in ("rmse", "ndcg") if df[c].null_count() < df.height]
    panels.append(("fit_seconds", "fit seconds"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (col, heading) in zip(axes, panels, strict=True):
        values = [np.nan if v is None else v for v in df[col].to_list()]
        ax.bar(names, values, color="#4477aa")
        ax.set_title(heading)
        ax.tick_params(axis="x", rotation=30)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    from rbmrec.models.persistence import write_atomically

    try:
        # A temporary file renamed into place: a failed write keeps any previous plot.
        fmt = path.suffix[1:].lower() or "png"
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format=fmt))
    finally:
        plt.close(fig)
    return path


def report_partial(stop: Interrupted, keys: Sequence[str], args: argparse.Namespace) -> int:
    """Ctrl-C during a comparison: print the finished models' rows, name the others, write
    no result file (it must not pass off an incomplete comparison as done); exit 130."""
    if stop.done is not None:
        print()
        print(f"## Partial results (interrupted during {stop.during})")
        print()
        print(table(stop.done), end="")
    unfinished = keys[0 if stop.done is None else stop.done.height :]
    _common.interrupted(
        f"stopped during {stop.during}; not finished: "
        f"{', '.join(label(k) for k in unfinished)}"
        + ("; no result files written" if args.out or args.plot else "")
    )
    return EXIT_INTERRUPTED
