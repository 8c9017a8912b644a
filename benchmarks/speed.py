"""Training and inference speed of the RBM recommenders, against a dense numpy reference.

Usage::

    python benchmarks/speed.py                               # ML-1M and 10M synthetic ratings
    python benchmarks/speed.py --datasets synth-100m --epochs 1 --models rating-user-cd1
    python benchmarks/speed.py --quick                       # tiny smoke run (seconds)
    python benchmarks/speed.py --json out.json --csv out.csv

Every configuration (model x data x threads) runs in a fresh Python process, so its peak
resident memory (``ru_maxrss``: data, model and training together) is its own, and the numba
and BLAS thread counts are set before anything is imported. What is measured:

- **s/epoch**: mean wall time of the trainer's epochs (``model.history_``), after a warm-up
  fit on tiny data in the same process compiled (or loaded) every kernel; **ratings/s** is
  the training ratings divided by it.
- **predict/s**: ``model.predict(users, items)`` for every test rating of the ML-1M 90/10
  split (seed 0), best of three calls; the model is trained on the 90 % part.
- **recommend s**: ``model.recommend(all_user_ids, train, N=10)``, one batch call for every
  user. When a first batch of users shows the full call would exceed ``--recommend-budget``,
  the time is extrapolated from that batch and marked ``~``.
- **1-user ms**: ``model.recommend(u, train[u], N=10)`` for one user at a time (a serving
  loop): the first call after ``fit`` (which builds RatingRBM's scoring cache, e.g. every
  item's hidden states in item orientation) and the median of the next 20 users.
- **cold start**: in a process whose ``NUMBA_CACHE_DIR`` is a fresh temporary folder, the
  first tiny fit + predict + recommend (compilation included) minus the second (warm); then
  the same in a second process that finds the cache filled by the first.
- **rounds** (``--rounds R``): every configuration is measured R times, the models
  interleaved so that the engine and the dense reference share the machine's conditions;
  the table keeps each configuration's fastest round (other tenants of a shared machine
  only ever slow a round down) and shows the spread ``min-max (R)`` of s/epoch.
- **RatingRBM()** (``--models rating-default``): the default model (500 hidden units,
  conditional, item- and user-based members); its s/epoch is one epoch of both members.
- **dense reference**: the textbook CD-1 epoch of the user-based softmax RBM
  (:class:`rbmrec.testing.dense_reference.DenseSoftmaxRBM`: one-hot ``V`` of shape
  (batch, n_items, K), BLAS products over all items, masked softmax), float32, same batch
  size and hyperparameters, timed in the same run on the same data. Large data: a fixed
  number of batches (``--dense-batches``) is timed and the epoch extrapolated (marked
  ``~``). ``vs dense`` = reference s/epoch / engine s/epoch for the RatingRBM user CD-1 rows.

Synthetic data have Netflix's shape (17,770 items; 480,189 users at 100M ratings, users
scaled with the rating count below that) and are generated once per run by
``rbmrec.data.make_ratings`` into a temporary folder that the measuring processes read.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.testing.dense_reference import DenseSoftmaxRBM

NETFLIX_USERS, NETFLIX_ITEMS = 480_189, 17_770
SYNTH_SIZES = {"synth-10m": 10_000_000, "synth-100m": 100_000_000}
_QUICK_DIVISOR = 1_000  # --quick: synthetic sizes / 1000, ML-1M cut to its first 600 users
_QUICK_ML1M_USERS = 600
_RESULT_TAG = "SPEED-RESULT "

#: Model configurations, by command-line name: (class, orientation, CD steps).
MODELS: dict[str, tuple[str, str | None, int]] = {
    "rating-user-cd1": ("RatingRBM", "user", 1),
    "rating-user-cd5": ("RatingRBM", "user", 5),
    "rating-item-cd1": ("RatingRBM", "item", 1),
    "rating-item-cd5": ("RatingRBM", "item", 5),
    "implicit-cd1": ("ImplicitRBM", None, 1),  # defaults (replicated softmax), n_models=1
    # What users get: RatingRBM() (500 hidden, conditional, item- and user-based members);
    # its s/epoch is one epoch of both members.
    "rating-default": ("RatingRBM()", None, 1),
    "dense-user-cd1": ("dense numpy reference", "user", 1),
}
DENSE = "dense-user-cd1"
ENGINE_TWIN = "rating-user-cd1"  # the engine configuration the dense reference reproduces


# --------------------------------------------------------------------------- measuring process


def _peak_mb() -> float:
    """High-water mark of this process's resident memory, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make_model(name: str, spec: dict[str, Any], n_epochs: int) -> Any:
    from rbmrec.evaluation import registry

    kind, orientation, k = MODELS[name]
    if kind == "RatingRBM()":
        return registry.make(
            "rating-rbm",
            n_epochs=n_epochs, patience=None, random_state=0, num_threads=spec["threads"]
        )
    common = {
        "n_hidden": spec["hidden"],
        "n_epochs": n_epochs,
        "random_state": 0,
        "num_threads": spec["threads"],
    }
    if kind == "RatingRBM":
        return registry.make(
            "rating-rbm",
            orientation=orientation,
            conditional=False,
            cd_steps=k,
            patience=None,
            batch_size=spec["batch_size"],
            **common,
        )
    # One RBM (the default averages n_models=2 independently trained ones: twice the work).
    return registry.make("implicit-rbm", cd_steps=k, n_models=1, **common)


def _load(spec: dict[str, Any]) -> tuple[Any, Any]:
    """(train CSR, test CSR or None) of the spec's data set."""
    import scipy.sparse as sp

    if spec["dataset"] == "ml-1m":
        from rbmrec.data import load_movielens, random_split

        m = load_movielens(Path(spec["data_dir"]) / "ml-1m", metadata=False).user_items
        if spec["quick"]:
            m = sp.csr_matrix(m[:_QUICK_ML1M_USERS])
        split = random_split(m, test_fraction=0.1, seed=0)
        return sp.csr_matrix(split.train), sp.csr_matrix(split.test)
    with np.load(spec["data_file"]) as z:
        m = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return m, None


def _warm_up(name: str, spec: dict[str, Any]) -> None:
    """Compile (or load from the cache) every kernel the measured calls use, on tiny data."""
    from rbmrec.data import make_ratings

    tiny = make_ratings(60, 40, density=0.2, seed=1).user_items
    model = _make_model(name, spec, 1).fit(tiny)
    users = np.arange(tiny.shape[0])
    if hasattr(model, "predict"):
        model.predict(users, users % tiny.shape[1])
    model.recommend(users, tiny, N=10)


def _time_recommend(model: Any, train: Any, budget: float) -> tuple[float, bool]:
    """Seconds of ``recommend(all users, train, N=10)``; extrapolated from a first batch
    when the full call would take longer than ``budget``."""
    n_users = train.shape[0]
    first = min(n_users, 256)
    users = np.arange(first)
    t0 = time.perf_counter()
    model.recommend(users, train[:first], N=10)
    t_first = time.perf_counter() - t0
    estimate = t_first * n_users / first
    if first == n_users:
        return t_first, False
    if estimate > budget:
        return estimate, True
    users = np.arange(n_users)
    _forget_scoring_caches(model)
    t0 = time.perf_counter()
    model.recommend(users, train, N=10)
    return time.perf_counter() - t0, False


def _time_recommend_one(model: Any, train: Any, n: int = 20) -> tuple[float, float]:
    """Milliseconds of one-user ``recommend`` calls: the first (fresh scoring caches) and
    the median of the next ``n`` users."""
    _forget_scoring_caches(model)
    times = []
    for u in range(min(n + 1, train.shape[0])):
        t0 = time.perf_counter()
        model.recommend(u, train[u], N=10)
        times.append(1e3 * (time.perf_counter() - t0))
    return times[0], float(np.median(times[1:] or times))


def _forget_scoring_caches(model: Any) -> None:
    """Drop what RatingRBM caches for scoring after the first call (level-major weights,
    every item's hidden states), so the timed call pays for all of it, like a first call."""
    members = getattr(model, "members_", None) or {}  # RatingRBM "both"; None elsewhere
    for m in [model, *members.values()]:
        if hasattr(m, "_infer"):
            m._infer = {}


def _measure_model(spec: dict[str, Any]) -> dict[str, Any]:
    name = spec["model"]
    _warm_up(name, spec)
    train, test = _load(spec)
    gc.collect()
    rss_data = _peak_mb()
    model = _make_model(name, spec, spec["epochs"])
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    fit_cpu = _cpu_s() - cpu0
    epochs = epoch_seconds(model.history_)
    batch = getattr(model, "batch_size_", None) or model.batch_size
    if isinstance(batch, dict):  # members' batch sizes
        batch = max(batch.values())
    out: dict[str, Any] = {
        "ratings": int(train.nnz),
        "shape": list(train.shape),
        "fit_s": fit_s,
        "batch_size": int(batch),
        "fit_cpu_s": fit_cpu,
        "cpu_s_per_epoch": fit_cpu / len(epochs),
        "epoch_s": epochs,
        "s_per_epoch": float(np.mean(epochs)),
        "peak_mb_after_load": rss_data,
    }
    if test is not None:
        tu, ti = test.nonzero()
        if hasattr(model, "predict"):
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                model.predict(tu, ti)
                best = min(best, time.perf_counter() - t0)
            out.update(n_predictions=int(tu.size), predict_s=best, predictions_per_s=tu.size / best)
        out["recommend_s"], out["recommend_extrapolated"] = _time_recommend(
            model, train, spec["recommend_budget"]
        )
        out["recommend_one_first_ms"], out["recommend_one_ms"] = _time_recommend_one(model, train)
    out["peak_mb"] = _peak_mb()
    return out


def epoch_seconds(history: list[dict[str, Any]]) -> list[float]:
    """Wall seconds of each training epoch from a model's ``history_``.

    A two-member model (``RatingRBM()``, orientation "both") trains its members one after
    the other, so its epoch ``e`` is the sum of the members' epochs ``e``.
    """
    per_epoch: dict[float, float] = {}
    for h in history:
        per_epoch[h["epoch"]] = per_epoch.get(h["epoch"], 0.0) + float(h["seconds"])
    return list(per_epoch.values())


def _cpu_s() -> float:
    """CPU seconds used so far by this process, all threads (user + system)."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _measure_dense(spec: dict[str, Any]) -> dict[str, Any]:
    train, _ = _load(spec)
    train.sort_indices()
    values = np.unique(train.data)
    levels = np.searchsorted(values, train.data).astype(np.int8)
    from rbmrec import RatingRBM

    defaults = RatingRBM()  # same hyperparameters as the engine run
    ref = DenseSoftmaxRBM.init(
        train.shape[1],
        values.size,
        spec["hidden"],
        seed=0,
        learning_rate=defaults.learning_rate,
        momentum=defaults.momentum,
        weight_decay=defaults.weight_decay,
    )
    rng = np.random.default_rng(0)
    indptr, indices = train.indptr.astype(np.int64), train.indices
    # One untimed batch: first-touch page faults and BLAS start-up are not epoch costs.
    ref.epoch(indptr, indices, levels, spec["batch_size"], rng, max_batches=1)
    max_b = spec["dense_batches"] or None
    cpu0 = _cpu_s()
    r = ref.epoch(indptr, indices, levels, spec["batch_size"], rng, max_batches=max_b)
    cpu = (_cpu_s() - cpu0) * r["batches_total"] / r["batches"]  # per full epoch
    if not np.all(np.isfinite(ref.W)):
        raise RuntimeError("dense reference diverged (non-finite weights)")
    return {
        "ratings": int(train.nnz),
        "shape": list(train.shape),
        "batch_size": spec["batch_size"],
        "s_per_epoch": r["epoch_seconds"],
        "cpu_s_per_epoch": cpu,
        "epoch_s": [r["epoch_seconds"]],
        "dense_batches": r["batches"],
        "dense_batches_total": r["batches_total"],
        "extrapolated": r["extrapolated"],
        "peak_mb": _peak_mb(),
    }


def _measure_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """Import time and first-call (compile or cache-load) time of each model, tiny data."""
    t0 = time.perf_counter()
    import rbmrec
    import rbmrec.data  # noqa: F401

    out: dict[str, Any] = {"import_s": time.perf_counter() - t0}
    for name in ("rating-user-cd1", "implicit-cd1"):
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            _warm_up(name, spec)
            times.append(time.perf_counter() - t0)
        out[name] = {"first_s": times[0], "second_s": times[1], "compile_s": times[0] - times[1]}
    return out


def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Generate synthetic ratings of Netflix shape and save the CSR arrays (uncompressed)."""
    from rbmrec.data import make_ratings

    n = spec["n_ratings"]
    n_items = NETFLIX_ITEMS
    n_users = max(50, round(NETFLIX_USERS * n / 100_000_000))
    t0 = time.perf_counter()
    m = make_ratings(n_users, n_items, density=n / (n_users * n_items), seed=0).user_items
    seconds = time.perf_counter() - t0
    np.savez(
        spec["data_file"], data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape)
    )
    return {
        "ratings": int(m.nnz),
        "shape": list(m.shape),
        "seconds": seconds,
        "peak_mb": _peak_mb(),
    }


def _child(spec: dict[str, Any]) -> None:
    fn = {
        "model": _measure_model,
        "dense": _measure_dense,
        "cold": _measure_cold,
        "generate": _generate,
    }[spec["mode"]]
    print(_RESULT_TAG + json.dumps(fn(spec)), flush=True)


def _run_child(
    spec: dict[str, Any],
    threads: int,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter with ``threads`` numba and BLAS threads."""
    env = dict(os.environ)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"measurement {spec} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(_RESULT_TAG) :])


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, str]:
    """CPU, cores, memory, load and library versions."""
    import numba
    import scipy

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        info = cfg["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # the BLAS name is informative only
        pass
    return {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": f"{cpu}, {os.cpu_count()} logical cores, {mem} RAM, {platform.system()}",
        "versions": (
            f"Python {platform.python_version()}, numpy {np.__version__} ({blas}), "
            f"scipy {scipy.__version__}, numba {numba.__version__}"
        ),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _fmt(value: Any, spec: str, approx: bool = False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return ("~" if approx else "") + format(value, spec)


COLUMNS = [
    "model",
    "data",
    "ratings",
    "CD-k",
    "batch",
    "threads",
    "s/epoch",
    "rounds",
    "CPU s/epoch",
    "ratings/s",
    "peak MB",
    "vs dense",
    "predict/s",
    "recommend s",
    "1-user ms (first)",
]


def best_rounds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per configuration: the round with the fastest epoch (``--rounds``).

    On a shared machine, other tenants slow some rounds down (never up), so the fastest of
    several rounds is the best estimate of the code's speed (as ``timeit`` takes the
    minimum). Each kept result gets ``rounds_s_per_epoch``, every round's seconds per
    epoch, so the spread stays visible. Order: first appearance of each configuration.
    """
    best: dict[tuple, dict[str, Any]] = {}
    seen: dict[tuple, list[float]] = {}
    for r in results:
        key = (r["key"], r["data"], r["threads"], r["batch_size"])
        seen.setdefault(key, []).append(r["s_per_epoch"])
        if key not in best or r["s_per_epoch"] < best[key]["s_per_epoch"]:
            best[key] = r
    return [{**r, "rounds_s_per_epoch": sorted(seen[k])} for k, r in best.items()]


def paired_ratios(results: list[dict[str, Any]]) -> dict[tuple, list[float]]:
    """Dense-reference epoch over engine epoch, round by round, for each (data, threads,
    batch) measured with both :data:`DENSE` and :data:`ENGINE_TWIN`.

    Within a round the two run back to back, so each ratio compares them under nearly the
    same load from other tenants; the table's ``vs dense`` divides the two fastest rounds,
    which may come from different moments. Rounds appear in order; a round missing either
    side is skipped.
    """
    per: dict[tuple, dict[int, dict[str, float]]] = {}
    for r in results:
        if r["key"] in (DENSE, ENGINE_TWIN):
            cfg = (r["data"], r["threads"], r["batch_size"])
            per.setdefault(cfg, {}).setdefault(r.get("round", 0), {})[r["key"]] = r["s_per_epoch"]
    out: dict[tuple, list[float]] = {}
    for cfg, rounds in per.items():
        ratios = [
            sides[DENSE] / sides[ENGINE_TWIN]
            for _, sides in sorted(rounds.items())
            if DENSE in sides and ENGINE_TWIN in sides
        ]
        if ratios:
            out[cfg] = ratios
    return out


def paired_ratio_lines(results: list[dict[str, Any]]) -> list[str]:
    """One line per configuration: the per-round ratios of :func:`paired_ratios` and their
    median, e.g. ``ml-1m, 2 threads, batch 100: 24.6x, 29.6x, 28.0x (median 28.0x)``."""
    lines = []
    for (data, threads, batch), ratios in paired_ratios(results).items():
        each = ", ".join(f"{x:.1f}x" for x in ratios)
        lines.append(
            f"{data}, {threads} threads, batch {batch}: {each} (median {np.median(ratios):.1f}x)"
        )
    return lines


def _spread(r: dict[str, Any]) -> str:
    """``min-max`` seconds per epoch over the rounds, or ``-`` for a single round."""
    rs = r.get("rounds_s_per_epoch") or []
    return f"{rs[0]:.3g}-{rs[-1]:.3g} ({len(rs)})" if len(rs) > 1 else "-"


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Formatted rows of the main table."""
    dense = {(r["data"], r["threads"], r["batch_size"]): r for r in results if r["key"] == DENSE}
    rows = []
    for r in results:
        kind, orientation, k = MODELS[r["key"]]
        label = kind + (f" {orientation}" if kind == "RatingRBM" else "")
        approx = bool(r.get("extrapolated"))
        ratio = None
        ref = dense.get((r["data"], r["threads"], r["batch_size"]))
        if r["key"] == ENGINE_TWIN and ref is not None:
            ratio = ref["s_per_epoch"] / r["s_per_epoch"]
        rows.append(
            {
                "model": label,
                "data": r["data"],
                "ratings": f"{r['ratings']:,}",
                "CD-k": str(k),
                "batch": str(r["batch_size"]),
                "threads": str(r["threads"]),
                "s/epoch": _fmt(r["s_per_epoch"], ".3g", approx),
                "rounds": _spread(r),
                "CPU s/epoch": _fmt(r.get("cpu_s_per_epoch"), ".3g", approx),
                "ratings/s": _fmt(r["ratings"] / r["s_per_epoch"], ",.0f", approx),
                "peak MB": _fmt(r["peak_mb"], ",.0f"),
                "vs dense": _fmt(ratio, ".1f", bool(ref and ref.get("extrapolated")))
                + ("x" if ratio else ""),
                "predict/s": _fmt(r.get("predictions_per_s"), ",.0f"),
                "recommend s": _fmt(
                    r.get("recommend_s"), ".3g", bool(r.get("recommend_extrapolated"))
                ),
                "1-user ms (first)": _one_user(r),
            }
        )
    return rows


def _one_user(r: dict[str, Any]) -> str:
    """``median (first)`` one-user recommend milliseconds, or ``-``."""
    if r.get("recommend_one_ms") is None:
        return "-"
    return f"{r['recommend_one_ms']:.3g} ({r['recommend_one_first_ms']:.3g})"


def markdown(rows: list[dict[str, str]], columns: list[str]) -> str:
    right = {c for c in columns if c not in ("model", "data")}
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if c in right else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _parse_list(text: str, allowed: list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise SystemExit(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", default="ml-1m,synth-10m", help="comma list of ml-1m, synth-10m, synth-100m"
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}"
    )
    parser.add_argument(
        "--threads",
        default=str(os.cpu_count() or 1),
        help="comma list of thread counts (numba and BLAS)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per configuration")
    parser.add_argument("--hidden", type=int, default=100, help="hidden units of every model")
    parser.add_argument("--batch-size", type=int, default=100, help="RatingRBM and dense batch")
    parser.add_argument(
        "--dense-batches",
        type=int,
        default=64,
        help="time at most this many dense batches and extrapolate (0: all)",
    )
    parser.add_argument(
        "--recommend-budget",
        type=float,
        default=60.0,
        help="extrapolate recommend-all-users beyond this many seconds",
    )
    parser.add_argument("--skip-cold", action="store_true", help="no cold-start measurement")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (synthetic / 1000, 600 ML-1M users), 1 epoch",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("RBMREC_DATA_DIR"),
        help="folder holding ml-1m/ (default $RBMREC_DATA_DIR)",
    )
    parser.add_argument("--json", type=Path, help="also write all results as JSON")
    parser.add_argument("--csv", type=Path, help="also write the main table as CSV")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every configuration this many times (models interleaved) and report "
        "the fastest round, with the spread in the 'rounds' column",
    )
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        _child(json.loads(args._child))
        return 0

    datasets = _parse_list(args.datasets, ["ml-1m", *SYNTH_SIZES], "dataset")
    models = _parse_list(args.models, list(MODELS), "model")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        raise SystemExit(f"--threads must be a comma list of ints, got {args.threads!r}") from None
    if any(t < 1 for t in threads):
        raise SystemExit(f"--threads must be >= 1, got {args.threads!r}")
    for name in ("epochs", "hidden", "batch_size", "rounds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1")
    if args.dense_batches < 0:
        raise SystemExit("--dense-batches must be >= 0")
    epochs = 1 if args.quick else args.epochs
    if "ml-1m" in datasets and not (args.data_dir and (Path(args.data_dir) / "ml-1m").is_dir()):
        raise SystemExit("ml-1m needs --data-dir or RBMREC_DATA_DIR holding ml-1m/")

    meta = machine_info()
    print("\n".join(f"- {k}: {v}" for k, v in meta.items()), flush=True)
    base = {
        "hidden": args.hidden,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "data_dir": args.data_dir,
        "epochs": epochs,
        "recommend_budget": args.recommend_budget,
        "dense_batches": 4 if args.quick else args.dense_batches,
    }
    report: dict[str, Any] = {"meta": meta, "settings": {**base, "threads": threads}}

    cold = []
    if not args.skip_cold:
        with tempfile.TemporaryDirectory(prefix="rbmrec_speed_numba_") as cache:
            for state in ("empty", "warm"):
                for t in threads:
                    r = _run_child(
                        {**base, "mode": "cold", "threads": t}, t, {"NUMBA_CACHE_DIR": cache}
                    )
                    cold.append({"numba cache": state, "threads": t, **r})
                    print(f"cold start, cache {state}, {t} threads: {json.dumps(r)}", flush=True)
    report["cold_start"] = cold

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rbmrec_speed_data_") as tmp:
        for data in datasets:
            spec = {**base, "dataset": data}
            label = data
            if data in SYNTH_SIZES:
                n = SYNTH_SIZES[data] // (_QUICK_DIVISOR if args.quick else 1)
                spec["data_file"] = str(Path(tmp) / f"{data}.npz")
                g = _run_child({**spec, "mode": "generate", "n_ratings": n}, max(threads))
                print(f"generated {data}: {json.dumps(g)}", flush=True)
            if args.quick:
                label += " (quick)"
            for rnd in range(args.rounds):
                for t in threads:
                    for name in models:
                        mode = "dense" if name == DENSE else "model"
                        t0 = time.perf_counter()
                        r = _run_child({**spec, "mode": mode, "model": name, "threads": t}, t)
                        r.update(key=name, data=label, threads=t, round=rnd)
                        r["wall_s"] = time.perf_counter() - t0
                        results.append(r)
                        print(f"{label} {name} {t} threads: {json.dumps(r)}", flush=True)
            if data in SYNTH_SIZES:
                Path(spec["data_file"]).unlink(missing_ok=True)
    meta["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report["all_rounds"] = results
    paired = paired_ratio_lines(results)
    report["paired_ratios"] = paired
    results = best_rounds(results)
    report["results"] = results

    rows = table_rows(results)
    print()
    print("\n".join(f"- {k}: {v}" for k, v in meta.items()))
    print()
    print(markdown(rows, COLUMNS))
    if paired:
        print(
            "\nvs dense, round by round (the dense reference and RatingRBM user CD-1 run back to"
            " back in each round):"
        )
        print("\n".join(f"- {line}" for line in paired))
    if any(r.get("extrapolated") for r in results):
        print(
            "\n~ dense reference: epoch extrapolated from the first "
            f"{base['dense_batches']} batches (cost per dense batch is constant)."
        )
    if any(r.get("recommend_extrapolated") for r in results):
        print(
            f"~ recommend: extrapolated from 256 users (full call over "
            f"{args.recommend_budget:g} s budget)."
        )
    if cold:
        print()
        crow = [
            {
                "numba cache": c["numba cache"],
                "threads": str(c["threads"]),
                "import s": f"{c['import_s']:.2f}",
                "RatingRBM first call s": f"{c['rating-user-cd1']['first_s']:.2f}",
                "ImplicitRBM first call s": f"{c['implicit-cd1']['first_s']:.2f}",
                "warm call s": f"{c['rating-user-cd1']['second_s']:.2f} / "
                f"{c['implicit-cd1']['second_s']:.2f}",
            }
            for c in cold
        ]
        print(
            "Cold start (tiny fit + predict + recommend; first call includes compilation "
            "or cache loading; NUMBA_CACHE_DIR = fresh temporary folder):"
        )
        print(markdown(crow, list(crow[0])))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    if args.csv:
        with args.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
