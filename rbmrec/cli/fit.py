"""``rbmrec fit``: fit a model and save it as one model bundle file (:mod:`rbmrec.bundle`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.cli import _common
from rbmrec.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    check_file_name,
    check_not_data,
    check_output,
    model_path,
)
from rbmrec.cli._data import load_data
from rbmrec.cli._models import CHOICE, RBMS, label, make_model, parse_models


def _check_model_output(out: str, args: argparse.Namespace) -> Path:
    """The model path of ``fit --out``, refused before loading data when it is unusable."""
    if not Path(out).name:
        raise UsageError(f"--out {out!r}: give a file name for the model, e.g. model.npz")
    check_file_name("--out", out)
    final = model_path(out)
    check_not_data("--out", final, args)
    check_output("--out", final)
    return final


def run(args: argparse.Namespace) -> int:
    from rbmrec.bundle import ModelBundle

    key = parse_models(args.model, option="--model")[0]
    if key not in (*RBMS, CHOICE):
        raise UsageError(
            f"--model must be rating-rbm, implicit-rbm or {CHOICE}, got {args.model!r}"
        )
    if key == CHOICE and args.cluster:
        raise UsageError(f"--cluster trains rating-rbm or implicit-rbm, not {CHOICE}")
    if args.orientation is not None and key != "rating-rbm":
        raise UsageError(
            f"--orientation applies only to --model rating-rbm, not to {args.model} (the "
            "implicit RBM has one orientation: one visible unit per item)"
        )
    if args.visible is not None and key != "rating-rbm":
        raise UsageError(f"--visible applies only to --model rating-rbm, not to {args.model}")
    final = _check_model_output(args.out, args)
    data = load_data(args)
    print(f"data: {data!r}")
    if key in ("rating-rbm", CHOICE) and args.visible != "gaussian":
        _check_levels(data.user_items)
        _warn_levels(data.user_items)
    model = make_model(key, args, progress=not args.quiet)
    validation = None
    train = data.user_items
    # rating-rbm and rating-rbm-choice hold out their own part (make_model passes
    # --validation-fraction to them).
    if key == "implicit-rbm" and args.validation_fraction:
        from rbmrec.data import random_split

        split = random_split(data, test_fraction=args.validation_fraction, seed=args.seed)
        train, validation = split.train, split.test
    _common.compile_note([key])
    t0 = time.perf_counter()
    if args.cluster:
        if validation is not None:
            raise UsageError("--validation-fraction is not available with --cluster")
        from rbmrec.cli._cluster import fit_on_cluster

        fit_on_cluster(model, data, args.cluster)
    elif validation is not None:
        model.fit(train, validation=validation)
    else:
        model.fit(train)
    seconds = time.perf_counter() - t0
    stopped = bool(getattr(model, "interrupted_", False)) or _common.CTRL_C.pressed
    try:
        # One file: the model, the raw ids, titles and every training rating (the seen
        # items), written all or nothing.
        ModelBundle.from_ratings(model, data).save(final)
    except OSError as exc:
        raise UsageError(
            f"cannot write the model to {final}: {exc.strerror or exc} (any previous model "
            "there is unchanged)"
        ) from None
    print(f"fitted {label(key)} in {seconds:.1f} s{_stopped_note(model)}")
    print(f"model written to {final}")
    if stopped:
        _common.interrupted("training stopped early; the model trained so far was saved")
        return EXIT_INTERRUPTED
    return EXIT_OK


#: ``fit`` warns about a rating value used by fewer than this share of the ratings.
_RARE_LEVEL = 1e-4
#: ... or farther than this many times the typical spacing from every other value.
_FAR_LEVEL = 1.5


def suspicious_levels(values: np.ndarray) -> list[tuple[float, int, str]]:
    """Rating values that look like typos: ``(value, count, why)`` for each.

    A value is suspicious when fewer than 0.01% of the ratings use it, or when its distance to
    the nearest other value is more than 1.5 times the median of those distances (e.g. 100
    among 1..5, or -1 among 1..5). Needs three distinct values or more.
    """
    levels, counts = np.unique(values, return_counts=True)
    if len(levels) < 3:
        return []
    gaps = np.diff(levels)
    nearest = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    far = nearest > _FAR_LEVEL * np.median(nearest)
    rare = counts < _RARE_LEVEL * counts.sum()
    out = []
    for k in np.flatnonzero(far | rare):
        why = "far from the other values" if far[k] else "used by under 0.01% of the ratings"
        out.append((float(levels[k]), int(counts[k]), why))
    return out


def _check_levels(user_items: Any) -> None:
    """UsageError pointing to ``--visible gaussian`` when the ratings hold more distinct
    values than softmax visibles have levels."""
    from rbmrec.models.rating_infer import MAX_LEVELS

    n = np.unique(sp.csr_matrix(user_items).data).size
    if n > MAX_LEVELS:
        raise UsageError(
            f"the ratings hold {n} distinct values, but softmax visibles take at most "
            f"{MAX_LEVELS} rating levels: for a real-valued or fine-grained scale use "
            "--visible gaussian"
        )


def _warn_levels(user_items: Any) -> None:
    """Warn on stderr when a rating value looks like a typo (it would become a level)."""
    values = np.asarray(sp.csr_matrix(user_items).data)
    odd = suspicious_levels(values)
    if not odd:
        return
    levels = ", ".join(f"{v:g}" for v in np.unique(values))
    what = "; ".join(f"{v:g} ({n} rating{'s' if n != 1 else ''}, {why})" for v, n, why in odd)
    print(
        f"warning: suspicious rating value(s): {what}. Every distinct value becomes a rating "
        f"level of the RatingRBM (levels: {levels}); check the data for typos",
        file=sys.stderr,
        flush=True,
    )


def _stopped_note(model: Any) -> str:
    """The suffix ``" (stopped after N epochs)"`` when early stopping or Ctrl-C ended training.

    A RatingRBM with ``orientation="both"`` tags each ``history_`` record with its member
    ("item", "user"): the note then counts per member.
    """
    history = getattr(model, "history_", None) or []
    n_epochs = getattr(model, "n_epochs", len(history))
    counts: dict[str, int] = {}
    for rec in history:
        key = str(rec.get("member", ""))
        counts[key] = counts.get(key, 0) + 1
    if not counts or all(c >= n_epochs for c in counts.values()):
        return ""
    if list(counts) == [""]:
        return f" (stopped after {counts['']} epochs)"
    parts = ", ".join(f"{c} ({k} member)" for k, c in counts.items())
    return f" (stopped after {parts} epochs)"
