"""``rbmrec recommend``: top-N items for a user of a saved model bundle.

Reads the one-file bundle of ``rbmrec fit`` (:class:`rbmrec.bundle.ModelBundle`) or the three
files of rbmrec 0.1.0 (``MODEL.npz`` + ``.ids.json`` + ``.seen.npz``); a new user is folded
in from a CSV of their ratings (:func:`rbmrec.bundle.read_item_ratings`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.cli._common import EXIT_OK, UsageError, model_path


def load_bundle(path: str) -> Any:
    """The bundle at ``path`` (``path + .npz`` when only that exists: ``fit --out mm`` writes
    ``mm.npz``); the loader's warnings become notes on stderr."""
    from rbmrec.bundle import ModelBundle

    file = Path(path)
    if not file.exists() and file.suffix != ".npz" and model_path(path).is_file():
        file = model_path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = ModelBundle.load(file)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    return bundle


def _fold_in(bundle: Any, args: argparse.Namespace, known_user: bool) -> tuple[Any, Any, str]:
    """Fold the user in from ``--ratings``: ``(items, scores, label)``.

    For a user of the training data the file is merged with their training ratings (the
    file wins where both rate an item).
    """
    from rbmrec.bundle import read_item_ratings

    try:
        bundle.check_fold_in()
    except NotImplementedError as exc:
        raise UsageError(
            f"--ratings: {exc} (command line: `rbmrec fit --model rating-rbm`, orientation "
            "both, or `--orientation user`)"
        ) from None
    given = read_item_ratings(
        Path(args.ratings),
        known=lambda item: bundle.item_index(item) is not None,
        levels=bundle.rating_levels,
        option="--ratings ",
    )
    if given.unknown:
        print(
            f"note: ignoring {len(given.unknown)} unknown item id(s): "
            f"{', '.join(given.unknown[:5])}",
            file=sys.stderr,
        )
    if not given.items:
        raise UsageError(f"{given.source}: no ratings of known items")
    user = args.user.strip()
    label = " (folded in)"
    if known_user:
        stored = bundle.user_items(user)
        cols = [bundle.item_index(item) for item in given.items]
        replaced = int(np.isin(stored.indices, cols).sum())
        label = f" (training ratings + {args.ratings}, folded in)"
        print(
            f"note: user {args.user}: {stored.nnz} training rating(s) merged with "
            f"{args.ratings} ({replaced} replaced by the file)",
            file=sys.stderr,
        )
    items, scores = bundle.fold_in(
        given, N=args.n, user=user if known_user else None, exclude_seen=args.exclude_seen
    )
    return items, scores, label


def run(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.model)
    if args.cluster:
        from rbmrec.cli._cluster import recommend_all

        n = recommend_all(bundle, args)
        print(f"{n} recommendations for every user of {bundle.source} written to {args.out}")
        return EXIT_OK
    if not args.user:
        raise UsageError("--user is required (or --cluster SPEC --out FILE for every user)")
    if args.out:
        raise UsageError("--out writes the lists of every user: it needs --cluster")
    user = args.user.strip()
    known = bundle.user_index(user) is not None
    if args.ratings:
        items, scores, label = _fold_in(bundle, args, known)
    elif not known:
        raise UsageError(
            f"unknown user {args.user!r}: not in the training data of {bundle.source}; "
            "give their ratings with --ratings FILE (CSV item,rating) to fold them in"
        )
    else:
        items, scores = bundle.recommend(user, N=args.n, exclude_seen=args.exclude_seen)
        label = ""
    titles = bundle.titles
    recs = []
    for item, score in zip(items.tolist(), scores.tolist(), strict=True):
        title = titles[bundle.item_index(item)] if titles else None
        recs.append({"item_id": item, "title": title, "score": float(score)})
    if args.json:
        print(json.dumps({"user": args.user, "recommendations": recs}, indent=2))
        return EXIT_OK
    print(f"top {len(recs)} for user {args.user}{label}:")
    for rank, rec in enumerate(recs, 1):
        shown = rec["title"] or f"item {rec['item_id']}"
        extra = f" [{rec['item_id']}]" if rec["title"] else ""
        print(f"{rank:3d}. {shown}{extra}  {rec['score']:.4f}")
    return EXIT_OK
