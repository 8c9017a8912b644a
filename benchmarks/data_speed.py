"""Data-layer speed: loading ML-1M into CSR, and generating Netflix-scale synthetic data.

Usage::

    python benchmarks/data_speed.py                  # ML-1M load + 100M synthetic ratings
    python benchmarks/data_speed.py --n-ratings 1e7  # a smaller synthetic run
    python benchmarks/data_speed.py --skip-synthetic --json out.json

ML-1M is read from ``$RBMREC_DATA_DIR/ml-1m`` (the shared copy has the three-field
``ratings_no_timestamps.dat``); the four-field ``ratings.dat`` of a real download is timed on
a copy written with synthetic timestamps, its lines shuffled within each user so the loader
has to sort. Without real data, a file of the same size is generated.

Each measurement of the synthetic generator runs in a fresh process, so its peak resident
memory (``ru_maxrss``) is that of the generation alone.
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

import numpy as np

NETFLIX_USERS, NETFLIX_ITEMS = 480_189, 17_770


def _time(fn, repeats: int) -> tuple[float, float, object]:
    """(first call seconds, best of ``repeats`` seconds, result)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times), result


def _ml1m_dirs(tmp: Path) -> dict[str, Path]:
    """Folders to time: the shared 3-field file, and a 4-field copy (or generated data)."""
    from rbmrec.data import load_movielens, make_ratings

    env = os.environ.get("RBMREC_DATA_DIR")
    shared = Path(env) / "ml-1m" if env else None
    out: dict[str, Path] = {}
    if shared is not None and shared.is_dir():
        out["ml-1m shared (3 fields)"] = shared
        ratings = load_movielens(shared, metadata=False)
        m = ratings.user_items
        users = ratings.user_ids.raw[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))]
        items = ratings.item_ids.raw[m.indices]
        values = m.data.astype(int)
    else:
        r = make_ratings(6_040, 3_706, density=1_000_209 / (6_040 * 3_706), seed=0)
        m = r.user_items
        users = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)) + 1
        items = m.indices + 1
        values = m.data.astype(int)
    rng = np.random.default_rng(0)
    # Real ratings.dat is grouped by user but not sorted by movie within a user.
    order = np.lexsort((rng.random(users.size), users))
    stamps = rng.integers(956_703_932, 1_046_454_590, users.size)
    folder = tmp / "ml-1m"
    folder.mkdir()
    lines = [
        f"{u}::{i}::{v}::{t}\n"
        for u, i, v, t in zip(users[order], items[order], values[order], stamps, strict=True)
    ]
    (folder / "ratings.dat").write_text("".join(lines))
    if shared is not None and (shared / "movies.dat").is_file():
        (folder / "movies.dat").write_bytes((shared / "movies.dat").read_bytes())
        (folder / "users.dat").write_bytes((shared / "users.dat").read_bytes())
    out["ml-1m ratings.dat (4 fields, unsorted)"] = folder
    return out


def bench_ml1m(repeats: int) -> list[dict]:
    from rbmrec.data import load_movielens

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in _ml1m_dirs(Path(tmp)).items():
            for metadata in (False, True):
                first, best, r = _time(
                    lambda folder=folder, metadata=metadata: load_movielens(
                        folder, metadata=metadata
                    ),
                    repeats,
                )
                rows.append(
                    {
                        "what": f"load {label}" + (" + titles/users" if metadata else ""),
                        "ratings": r.n_ratings,
                        "shape": list(r.shape),
                        "first_s": round(first, 3),
                        "best_s": round(best, 3),
                    }
                )
    return rows


def _synthetic_child(n_users: int, n_items: int, n_ratings: int, seed: int) -> None:
    """Run in a fresh process: generate, print one JSON line with time and peak memory."""
    from rbmrec.data import make_ratings

    t0 = time.perf_counter()
    r = make_ratings(n_users, n_items, density=n_ratings / (n_users * n_items), seed=seed)
    elapsed = time.perf_counter() - t0
    m = r.user_items
    result_mb = (m.data.nbytes + m.indices.nbytes + m.indptr.nbytes) / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "what": f"make_ratings {n_users:,} x {n_items:,}",
                "ratings": int(m.nnz),
                "seconds": round(elapsed, 1),
                "ratings_per_s": round(m.nnz / elapsed),
                "peak_rss_mb": round(peak_mb),
                "csr_mb": round(result_mb),
            }
        )
    )


def bench_synthetic(n_ratings: int, seed: int) -> dict:
    n_users = NETFLIX_USERS
    n_items = NETFLIX_ITEMS
    if n_ratings < 100_000_000:
        # Keep Netflix's density, scale the users.
        n_users = max(1_000, round(NETFLIX_USERS * n_ratings / 100_000_000))
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import data_speed as b; "
        f"b._synthetic_child({n_users}, {n_items}, {n_ratings}, {seed})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="ML-1M loads per case")
    parser.add_argument("--n-ratings", type=float, default=1e8, help="synthetic ratings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-ml1m", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    results: dict[str, object] = {"cpus": os.cpu_count()}
    if not args.skip_ml1m:
        rows = bench_ml1m(args.repeats)
        results["ml1m"] = rows
        print(f"{'ML-1M load -> Ratings (CSR)':58s} {'ratings':>10s} {'first':>7s} {'best':>7s}")
        for row in rows:
            print(
                f"{row['what']:58s} {row['ratings']:>10,d} {row['first_s']:>6.3f}s "
                f"{row['best_s']:>6.3f}s"
            )
    if not args.skip_synthetic:
        row = bench_synthetic(int(args.n_ratings), args.seed)
        results["synthetic"] = row
        print(
            f"\n{row['what']}: {row['ratings']:,} ratings in {row['seconds']} s "
            f"({row['ratings_per_s']:,} ratings/s), peak RSS {row['peak_rss_mb']:,} MB "
            f"(CSR itself {row['csr_mb']:,} MB)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
