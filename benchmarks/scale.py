"""Cost of the default models as the ratings grow: time per rating, memory, file size.

Usage::

    python benchmarks/scale.py                                  # RatingRBM: ML-1M, 10M synthetic
    python benchmarks/scale.py --datasets ml-1m,synth-100m --cache /tmp/rbmrec-scale
    python benchmarks/scale.py --datasets ml-1m --epochs 2 --threads 2 --json out.json
    python benchmarks/scale.py --models rating,implicit --datasets ml-100k,ml-1m --epochs 0 --cold

Each row fits ``RatingRBM(n_epochs=E, random_state=0)`` (all else default: two members,
500 hidden units, conditional) or ``ImplicitRBM(n_epochs=E, random_state=0)`` in a fresh
Python process, after a warm-up fit on tiny data in that process compiled (or loaded) every
kernel, then saves it. ``--epochs 0`` passes no ``n_epochs``: the default fit, early stopping
on the model's own validation part included (the *warm fit* of the default model). Columns:

- **ratings, users x items**: the training matrix (MovieLens: the 90 % part of the seed-0
  90/10 split; synthetic: ``make_ratings`` of Netflix shape, 17,770 items, users scaled with
  the ratings so that 100M ratings have Netflix's 480,189).
- **epochs**: the epochs each member trained (``history_``), item then user member for
  ``RatingRBM``.
- **fit s**: wall time of ``fit`` (every member, data conversion included); **ns/rating**:
  ``fit s`` per training rating and epoch, the figure that stays flat when an epoch costs in
  proportion to the ratings; **CPU ns/rating**: the same in CPU time of all threads (less
  sensitive to other processes on a shared machine); **s/epoch**: each member's mean epoch
  (``history_``).
- **batch**: each member's ``batch_size_``.
- **cold s** (``--cold``): the first fit + predict + recommend with an empty Numba cache,
  the protocol of ``benchmarks/cold_start.py`` (a fixed 300 x 200 matrix, the same for
  every data set, so it is measured once per model).
- **peak RSS GiB**: ``ru_maxrss`` of the process in GiB (2^30 bytes), data and model
  included.
- **file MB, save s**: size and write time of ``model.save``.

Synthetic matrices are generated once into ``--cache`` (kept, reused by later runs) or a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, cold_start

NETFLIX_USERS, NETFLIX_ITEMS = 480_189, 17_770
SYNTH = {"synth-1m": 1_000_000, "synth-10m": 10_000_000, "synth-100m": 100_000_000}
_TAG = "SCALE_RESULT "


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _synthetic_file(name: str, folder: Path) -> Path:
    """The cached CSR of ``name`` (generated on first use)."""
    import scipy.sparse as sp

    from rbmrec.data import make_ratings

    path = folder / f"{name}.npz"
    if not path.exists():
        n = SYNTH[name]
        n_users = max(50, round(NETFLIX_USERS * n / 100_000_000))
        X = make_ratings(
            n_users, NETFLIX_ITEMS, density=n / (n_users * NETFLIX_ITEMS), seed=0
        ).user_items
        tmp = path.with_name(path.stem + ".part.npz")
        sp.save_npz(tmp, X, compressed=False)
        tmp.replace(path)
    return path


MOVIELENS = ("ml-100k", "ml-1m")
MODELS = ("rating", "implicit")


def _load(spec: dict[str, Any]) -> Any:
    import scipy.sparse as sp

    if spec["dataset"] in MOVIELENS:
        from _common import load_split

        return load_split(spec["dataset"], spec["data_dir"], 0.1, 0).train
    return sp.load_npz(spec["file"]).tocsr()


def _make(model: str, epochs: int, threads: int | None) -> Any:
    """The default model of kind ``model``; ``epochs`` 0 leaves ``n_epochs`` at its default."""
    from rbmrec.models.implicit import ImplicitRBM
    from rbmrec.models.rating import RatingRBM

    kw: dict[str, Any] = {"random_state": 0}
    if epochs:
        kw["n_epochs"] = epochs
    if threads is not None:
        kw["num_threads"] = threads
    return (RatingRBM if model == "rating" else ImplicitRBM)(**kw)


def _members(model: Any) -> dict[str, list[float]]:
    """Epoch seconds of each member, from ``history_`` (item then user for ``RatingRBM``)."""
    out: dict[str, list[float]] = {}
    for r in model.history_:
        key = str(r.get("member", int(r.get("model", 0))))
        out.setdefault(key, []).append(float(r["seconds"]))
    return out


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One row, in this (fresh) process."""
    from rbmrec.data import make_ratings

    tiny = make_ratings(60, 40, density=0.2, seed=1).user_items
    _make(spec["model"], 1, None).set_params(n_hidden=8).fit(tiny)
    X = _load(spec)
    model = _make(spec["model"], spec["epochs"], spec["threads"])
    c0, t0 = time.process_time(), time.perf_counter()
    model.fit(X)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_mb()
    members = _members(model)
    epochs = sum(len(v) for v in members.values())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = model.save(Path(tmp) / "model")
        save_s = time.perf_counter() - t0
        size = path.stat().st_size
    batch = model.batch_size_
    return {
        "model": spec["model"],
        "dataset": spec["dataset"],
        "ratings": int(X.nnz),
        "shape": list(X.shape),
        "epochs": {k: len(v) for k, v in members.items()},
        "fit_s": fit_s,
        "ns_per_rating": fit_s / (X.nnz * epochs) * 1e9,
        "cpu_ns_per_rating": cpu_s / (X.nnz * epochs) * 1e9,
        "s_epoch": {k: sum(v) / len(v) for k, v in members.items()},
        "batch": batch if isinstance(batch, dict) else {"0": batch},
        "peak_rss_gb": peak / 1024.0,
        "file_mb": size / 2**20,
        "save_s": save_s,
    }


def _run(spec: dict[str, Any], threads: int) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith(_TAG):
            return json.loads(line[len(_TAG) :])
    raise RuntimeError(f"{spec['dataset']}: the measuring process failed:\n{proc.stderr[-3000:]}")


def _cold(model: str, threads: int) -> float:
    """Seconds of ``cold_start.py``'s first fit + predict + recommend on an empty cache."""
    from cold_start import _run as cold_run

    with tempfile.TemporaryDirectory() as cache:
        return float(cold_run(model, cache, False, threads)["total"])


def _joined(values: dict[str, Any], fmt: str) -> str:
    return ", ".join(format(v, fmt) for v in values.values())


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | data | ratings | users x items | epochs | cold s | fit s | ns/rating "
        "| CPU ns/rating | s/epoch | batch | peak RSS GiB | file MB | save s |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        cold = f"{r['cold_s']:.1f}" if r.get("cold_s") is not None else "-"
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['ratings']:,} "
            f"| {r['shape'][0]:,} x {r['shape'][1]:,} | {_joined(r['epochs'], 'd')} | {cold} "
            f"| {r['fit_s']:.1f} | {r['ns_per_rating']:.0f} | {r['cpu_ns_per_rating']:.0f} "
            f"| {_joined(r['s_epoch'], '.2f')} | {_joined(r['batch'], 'd')} "
            f"| {r['peak_rss_gb']:.2f} | {r['file_mb']:.1f} | {r['save_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="rating", help="comma list of rating, implicit")
    p.add_argument("--datasets", default="ml-1m,synth-10m",
                   help=f"comma list of {', '.join(MOVIELENS + tuple(SYNTH))}")  # fmt: skip
    p.add_argument("--epochs", type=int, default=1, help="0: the model's default fit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cold", action="store_true", help="also time each model's cold start")
    p.add_argument("--data-dir", default=None, help="MovieLens folder (default RBMREC_DATA_DIR)")
    p.add_argument("--cache", default=None, help="folder keeping the synthetic matrices")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child is not None:
        print(_TAG + json.dumps(_measure(json.loads(args._child))), flush=True)
        return []
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [d for d in names if d not in MOVIELENS and d not in SYNTH]
    unknown += [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown {unknown}; models: {', '.join(MODELS)}; "
                f"data sets: {', '.join(MOVIELENS + tuple(SYNTH))}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache) if args.cache else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for model in models:
            cold = _cold(model, args.threads) if args.cold else None
            for name in names:
                spec = {"model": model, "dataset": name, "epochs": args.epochs,
                        "threads": args.threads, "data_dir": args.data_dir}  # fmt: skip
                if name in SYNTH:
                    spec["file"] = str(_synthetic_file(name, folder))
                rows.append({**_run(spec, args.threads), "cold_s": cold})
                print(_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
