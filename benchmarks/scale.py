"""Cost of the default ``RatingRBM()`` as the ratings grow: time per rating, memory, file size.

Usage::

    python benchmarks/scale.py                                  # ML-1M and 10M synthetic
    python benchmarks/scale.py --datasets ml-1m,synth-100m --cache /tmp/rbmrec-scale
    python benchmarks/scale.py --datasets ml-1m --epochs 2 --threads 2 --json out.json

Each row fits ``RatingRBM(n_epochs=E, random_state=0)`` (all else default: two members,
500 hidden units, conditional) in a fresh Python process, after a warm-up fit on tiny data
in that process compiled (or loaded) every kernel, then saves it. Columns:

- **ratings, users x items**: the training matrix (ML-1M: the 90 % part of the seed-0
  90/10 split; synthetic: ``make_ratings`` of Netflix shape, 17,770 items, users scaled with
  the ratings so that 100M ratings have Netflix's 480,189).
- **fit s**: wall time of ``fit`` (both members, data conversion included); **ns/rating**:
  ``fit s`` per training rating and epoch, the figure that stays flat when an epoch costs in
  proportion to the ratings; **CPU ns/rating**: the same in CPU time of all threads (less
  sensitive to other processes on a shared machine); **item, user s/epoch**: each member's
  mean epoch (``history_``).
- **batch**: each member's ``batch_size_``.
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


def _load(spec: dict[str, Any]) -> Any:
    import scipy.sparse as sp

    if spec["dataset"] == "ml-1m":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _common import load_split

        return load_split("ml-1m", spec["data_dir"], 0.1, 0).train
    return sp.load_npz(spec["file"]).tocsr()


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One row, in this (fresh) process."""
    import numpy as np

    from rbmrec.data import make_ratings
    from rbmrec.models.rating import RatingRBM

    tiny = make_ratings(60, 40, density=0.2, seed=1).user_items
    RatingRBM(n_hidden=8, n_epochs=1, random_state=0).fit(tiny)
    X = _load(spec)
    model = RatingRBM(n_epochs=spec["epochs"], random_state=0, num_threads=spec["threads"])
    c0, t0 = time.process_time(), time.perf_counter()
    model.fit(X)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_mb()
    per_member = {
        name: float(np.mean([r["seconds"] for r in model.history_ if r["member"] == name]))
        for name in ("item", "user")
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = model.save(Path(tmp) / "model")
        save_s = time.perf_counter() - t0
        size = path.stat().st_size
    return {
        "dataset": spec["dataset"],
        "ratings": int(X.nnz),
        "shape": list(X.shape),
        "epochs": spec["epochs"],
        "fit_s": fit_s,
        "ns_per_rating": fit_s / (X.nnz * spec["epochs"]) * 1e9,
        "cpu_ns_per_rating": cpu_s / (X.nnz * spec["epochs"]) * 1e9,
        "item_s_epoch": per_member["item"],
        "user_s_epoch": per_member["user"],
        "batch": model.batch_size_,
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


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | ratings | users x items | epochs | fit s | ns/rating | CPU ns/rating "
        "| item s/epoch "
        "| user s/epoch | batch (item, user) | peak RSS GiB | file MB | save s |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        b = r["batch"]
        lines.append(
            f"| {r['dataset']} | {r['ratings']:,} | {r['shape'][0]:,} x {r['shape'][1]:,} "
            f"| {r['epochs']} | {r['fit_s']:.1f} | {r['ns_per_rating']:.0f} "
            f"| {r['cpu_ns_per_rating']:.0f} "
            f"| {r['item_s_epoch']:.2f} | {r['user_s_epoch']:.2f} "
            f"| {b.get('item')}, {b.get('user')} | {r['peak_rss_gb']:.2f} "
            f"| {r['file_mb']:.1f} | {r['save_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="ml-1m,synth-10m",
                   help=f"comma list of ml-1m, {', '.join(SYNTH)}")  # fmt: skip
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None, help="MovieLens folder (default RBMREC_DATA_DIR)")
    p.add_argument("--cache", default=None, help="folder keeping the synthetic matrices")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child is not None:
        print(_TAG + json.dumps(_measure(json.loads(args._child))), flush=True)
        return []
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d != "ml-1m" and d not in SYNTH]
    if unknown:
        p.error(f"unknown data sets {unknown}; choose from ml-1m, {', '.join(SYNTH)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache) if args.cache else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            spec = {"dataset": name, "epochs": args.epochs, "threads": args.threads,
                    "data_dir": args.data_dir}  # fmt: skip
            if name in SYNTH:
                spec["file"] = str(_synthetic_file(name, folder))
            rows.append(_run(spec, args.threads))
            print(_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
