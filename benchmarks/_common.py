"""Shared pieces of the benchmark scripts: the model registry, data loading, machine info.

``MODEL_FACTORIES`` maps a command-line model name to a callable building an unfitted model
with the benchmark's settings; ``factory(seed=..., threads=...)`` is how the scripts call
them (factories may ignore either). The RBM entries are registered only when
``rbmrec.RatingRBM`` / ``rbmrec.ImplicitRBM`` exist; model owners extend the registry here
(or at run time with :func:`register_model`).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.data.splits import Split
from rbmrec.evaluation import (
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    Popularity,
    to_markdown,
    write_results,
)

logger = logging.getLogger("benchmarks")

ModelFactory = Callable[..., Any]

MODEL_FACTORIES: dict[str, ModelFactory] = {
    "global-mean": lambda seed=0, threads=1: GlobalMean(),
    "bias": lambda seed=0, threads=1: BiasBaseline(),
    "popularity": lambda seed=0, threads=1: Popularity(),
    "als": lambda seed=0, threads=1: ImplicitALS(
        factors=64, regularization=0.05, iterations=15, random_state=seed, num_threads=threads
    ),
    "bpr": lambda seed=0, threads=1: ImplicitBPR(
        factors=64, iterations=100, random_state=seed, num_threads=threads
    ),
    "item-knn-cosine": lambda seed=0, threads=1: ImplicitItemKNN(
        kind="cosine", K=50, num_threads=threads
    ),
    "item-knn-bm25": lambda seed=0, threads=1: ImplicitItemKNN(
        kind="bm25", K=50, num_threads=threads
    ),
}


def register_model(name: str, factory: ModelFactory) -> None:
    """Add (or replace) a registry entry."""
    MODEL_FACTORIES[name] = factory


def _register_rbms() -> None:
    """RBM models, constructed with default arguments, when the package provides them."""
    import rbmrec

    for name, attr in (("rating-rbm", "RatingRBM"), ("implicit-rbm", "ImplicitRBM")):
        try:
            cls = getattr(rbmrec, attr)
        except (ImportError, AttributeError) as exc:
            logger.debug("%s not available yet: %s", attr, exc)
            continue

        def factory(seed: int = 0, threads: int = 1, _cls: type = cls) -> Any:
            try:
                return _cls(random_state=seed)
            except TypeError:
                return _cls()

        MODEL_FACTORIES.setdefault(name, factory)


_register_rbms()

#: ALS hyperparameter grid for ``als-tuned`` (factors fixed at 64 in the quick grid, the
#: reference point of the issue; the full grid also varies factors).
ALS_GRIDS: dict[str, dict[str, list[Any]]] = {
    "quick": {
        "factors": [64],
        "regularization": [1.0, 10.0, 30.0],
        "alpha": [1.0, 5.0],
        "iterations": [15],
    },
    "full": {
        "factors": [32, 64, 128],
        "regularization": [1.0, 10.0, 30.0, 100.0],
        "alpha": [1.0, 5.0],
        "iterations": [15],
    },
}


def data_folder(dataset: str, data_dir: str | None) -> Path:
    """The release folder of ``dataset`` under ``data_dir`` (default ``$RBMREC_DATA_DIR``)."""
    base = data_dir or os.environ.get("RBMREC_DATA_DIR")
    if not base:
        raise SystemExit("no data: pass --data-dir or set RBMREC_DATA_DIR")
    path = Path(base) / dataset
    if not path.is_dir():
        raise SystemExit(f"{path} does not exist (expected the {dataset} release folder)")
    return path


def load_split(dataset: str, data_dir: str | None, test_fraction: float, seed: int) -> Split:
    """Load a MovieLens release and hold out ``test_fraction`` of ratings at random."""
    from rbmrec.data import load_movielens, random_split

    t0 = time.perf_counter()
    data = load_movielens(data_folder(dataset, data_dir), metadata=False)
    split = random_split(data, test_fraction=test_fraction, seed=seed)
    logger.info(
        "%s: %d users x %d items, %d train / %d test ratings (%.1f s)",
        dataset,
        *split.shape,
        split.train.nnz,
        split.test.nnz,
        time.perf_counter() - t0,
    )
    return split


def machine_info() -> dict[str, str]:
    """Command, machine and library versions for the results' metadata."""
    import implicit
    import numba
    import polars
    import scipy

    return {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, {platform.system()}",
        "processor": platform.processor() or "unknown",
        "python": platform.python_version(),
        "versions": (
            f"numpy {np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}, "
            f"polars {polars.__version__}, implicit {implicit.__version__}"
        ),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", default="ml-1m", choices=["ml-100k", "ml-1m"])
    p.add_argument("--data-dir", default=None, help="folder holding ml-1m/ (or RBMREC_DATA_DIR)")
    p.add_argument("--seed", type=int, default=0, help="split and model seed")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1, help="threads for implicit models")
    p.add_argument("--out", default=None, help="write results: .md, .csv or .json (by suffix)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def parse_models(text: str, allowed: set[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; available: {sorted(allowed)}")
    return names


def report(df: Any, out: str | None, columns: list[str], meta: dict[str, Any]) -> None:
    """Print the markdown table (with metadata) and write ``out`` if given."""
    print("\n".join(f"- {k}: {v}" for k, v in meta.items()))
    print()
    print(to_markdown(df, columns=[c for c in columns if c in df.columns]))
    if out:
        path = write_results(df, out, metadata=meta)
        print(f"wrote {path}")
