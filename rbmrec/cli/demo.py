"""``rbmrec demo``: fit RBMs and baselines on demo data, compare them, recommend."""

from __future__ import annotations

import argparse
import time

import numpy as np

from rbmrec.cli._common import EXIT_OK, Interrupted, check_result_outputs
from rbmrec.cli._compare import report_partial, run_comparison, table, write_outputs
from rbmrec.cli._data import load_data
from rbmrec.cli._models import RBMS, label, parse_models


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.dataset is None and args.data is None:
        from rbmrec.data import datasets

        if datasets.locate("ml-100k") is not None:
            args.dataset = "ml-100k"
    keys = parse_models(args.models)
    check_result_outputs(args)
    data = load_data(args)
    print(f"data: {data!r}")
    # Modest settings so the demo takes well under two minutes on two busy cores; the
    # rating RBM is cheap per epoch, the implicit one (all items per user) is not.
    real = data.n_ratings > 50_000
    epochs = (30, 10) if real else (60, 12)
    args.model_epochs = dict(zip(RBMS, epochs, strict=True))
    if args.n_hidden is None:
        args.n_hidden = 64 if real else 50
    if args.threads is None:
        args.threads = 1
    try:
        df, split, models = run_comparison(data, keys, args)
    except Interrupted as stop:
        return report_partial(stop, keys, args)
    print()
    print(f"## Comparison on {data.name or 'the data'} (K={args.k})")
    print()
    print(table(df), end="")
    print(
        f"\nrmse/mae: held-out ratings; ndcg, precision, recall, hit_rate: top-{args.k} lists "
        f"with training items excluded, held-out ratings >= {args.relevance_threshold:g} "
        "relevant; coverage: share of items ever recommended; times in seconds."
    )
    # Sample user: the one with most training ratings, so the lists are personal.
    counts = np.diff(split.train.indptr)
    user = int(np.argmax(counts))
    raw_user = data.user_ids.to_raw(np.array([user]))[0]
    row = split.train[user]
    top = row.indices[np.argsort(-row.data, kind="stable")[:5]]
    print()
    print(f"## Sample user {raw_user} ({counts[user]} training ratings)")
    print()
    print("rated highly: " + "; ".join(data.item_titles(top)))
    for key in RBMS:
        if key not in keys:
            continue
        model = models[label(key)]
        ids, scores = model.recommend(user, row, N=10)
        print()
        print(f"Top-10 from {label(key)} (score):")
        for rank, (i, s) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True), 1):
            print(f"{rank:3d}. {data.item_titles([i])[0]}  ({s:.3f})")
    write_outputs(df, args, {"command": "demo", "data": data.name})
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s")
    return EXIT_OK
