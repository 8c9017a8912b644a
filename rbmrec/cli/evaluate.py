"""``rbmrec evaluate`` and ``rbmrec benchmark``: compare models on one random split."""

from __future__ import annotations

import argparse
import sys

from rbmrec.cli._common import EXIT_OK, Interrupted, check_result_outputs
from rbmrec.cli._compare import report_partial, run_comparison, table, write_outputs
from rbmrec.cli._data import load_data
from rbmrec.cli._models import parse_models


def run(args: argparse.Namespace) -> int:
    keys = parse_models(args.models)
    check_result_outputs(args)
    data = load_data(args)
    print(f"data: {data!r}")
    try:
        df, _, _ = run_comparison(data, keys, args)
    except Interrupted as stop:
        return report_partial(stop, keys, args)
    print()
    print(table(df), end="")
    meta = {
        "command": " ".join(["rbmrec", *getattr(args, "argv", sys.argv[1:])]),
        "data": data.name,
        "seed": args.seed,
        "test_fraction": args.test_fraction,
        "validation_fraction": args.validation_fraction,
    }
    write_outputs(df, args, meta)
    return EXIT_OK
