"""Shared pieces of the benchmark scripts: the models' settings, data loading, machine info.

``MODEL_FACTORIES`` maps a command-line model name to a callable building an unfitted model
with the benchmark's settings; ``factory(seed=..., threads=...)`` is how the scripts call
them (factories may ignore either). Models are built by name through the model registry
(:mod:`rbmrec.evaluation.registry`); ``BENCHMARK_SETTINGS`` says which registry model each
row is and with which arguments. Extend it here, or at run time with :func:`register_model`.
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
from rbmrec.evaluation import registry, to_markdown, write_results

logger = logging.getLogger("benchmarks")

ModelFactory = Callable[..., Any]

#: Benchmark row -> (registry name, constructor arguments, whether it takes ``threads``).
#: The RBMs keep their own thread default (numba's); the scripts pass their own counts.
BENCHMARK_SETTINGS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "global-mean": ("global-mean", {}, True),
    "bias": ("bias", {}, True),
    "popularity": ("popularity", {}, True),
    "als": ("als", {"factors": 64, "regularization": 0.05, "iterations": 15}, True),
    "bpr": ("bpr", {"factors": 64, "iterations": 100}, True),
    "item-knn-cosine": ("itemknn", {"kind": "cosine", "K": 50}, True),
    "item-knn-bm25": ("itemknn", {"kind": "bm25", "K": 50}, True),
    "rating-rbm": ("rating-rbm", {}, False),
    "implicit-rbm": ("implicit-rbm", {}, False),
}


def _factory(name: str, params: dict[str, Any], takes_threads: bool) -> ModelFactory:
    def factory(seed: int = 0, threads: int = 1) -> Any:
        return registry.make(
            name, random_state=seed, num_threads=threads if takes_threads else None, **params
        )

    return factory


MODEL_FACTORIES: dict[str, ModelFactory] = {
    row: _factory(*settings) for row, settings in BENCHMARK_SETTINGS.items()
}
# Every other registry model with its defaults, so a model added to the registry is
# available here too.
for _name in registry.names():
    MODEL_FACTORIES.setdefault(_name, _factory(_name, {}, True))


def register_model(name: str, factory: ModelFactory) -> None:
    """Add (or replace) a registry entry."""
    MODEL_FACTORIES[name] = factory


#: ALS hyperparameter grid for ``als-tuned`` (factors fixed at 64 in the quick grid, a common
#: reference point; the full grid also varies factors).
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
