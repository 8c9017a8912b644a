"""``rbmrec datasets``: list, download or describe data sets."""

from __future__ import annotations

import argparse

from rbmrec.cli._common import EXIT_OK, SYNTHETIC_WORDS, UsageError
from rbmrec.cli._data import demo_ratings


def run(args: argparse.Namespace) -> int:
    from rbmrec.data import datasets

    action = args.action
    if action == "list":
        for name in datasets.list_datasets():
            if name == datasets.DEMO:
                print(f"{name:16s} embedded synthetic data (rbmrec.data.demo_ratings)")
                continue
            entry = datasets.info(name)
            path = datasets.locate(name)
            status = f"available at {path}" if path else f"not downloaded (~{entry.size_mb:g} MB)"
            print(f"{name:16s} {entry.n_ratings:>11,} ratings  {status}")
        return EXIT_OK
    if not args.name:
        raise UsageError(f"datasets {action} needs a data set name, e.g. ml-100k")
    name = args.name.lower()
    if action == "download":
        if name in SYNTHETIC_WORDS:
            print(f"{name} is embedded; nothing to download")
            return EXIT_OK
        datasets.info(name)  # unknown names fail here
        found = datasets.locate(name)  # $RBMREC_DATA_DIR, then the cache: no network
        if found is not None:
            print(f"{name} is already at {found}; nothing to download")
            return EXIT_OK
        path = datasets.download(name, progress=True)
        print(f"{name} is at {path}")
        return EXIT_OK
    if name in SYNTHETIC_WORDS:
        data = demo_ratings()
    else:
        datasets.info(name)  # unknown names fail here, before any download
        data = datasets.load(name, download=False)
    print(data.describe())
    return EXIT_OK
