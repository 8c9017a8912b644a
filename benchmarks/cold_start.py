"""Cold start: the first fit + predict + recommend of a fresh install, and where its seconds go.

Usage::

    python benchmarks/cold_start.py                       # both models, cold and warm, once
    python benchmarks/cold_start.py --repeats 3           # three cold/warm pairs per model
    python benchmarks/cold_start.py --breakdown           # + compile seconds per kernel
    python benchmarks/cold_start.py --models rating --breakdown --top 30

Every row runs in a fresh Python process. **cold**: ``NUMBA_CACHE_DIR`` is a new, empty
temporary folder, so every kernel the calls use is compiled (what a new install, machine or
container pays once). **warm**: a second process on the folder the cold one filled, so every
kernel loads from Numba's cache. A process times:

- ``import``: ``import rbmrec``;
- ``fit``: ``RatingRBM(n_epochs=2, random_state=0).fit(X)`` (the default model: both
  orientations, conditional, 500 hidden units) or ``ImplicitRBM(n_epochs=2,
  random_state=0).fit(X)``, on a 300 users x 200 items CSR matrix of 5,000 ratings drawn
  uniformly from 1..5 at distinct random cells (NumPy seed 0);
- ``predict``: ``predict(users, items)`` of 100 random pairs (RatingRBM only);
- ``recommend``: ``recommend(0, X[0], N=10)``;
- ``total``: the sum of the four, the time from ``import`` to the first recommendation;
- ``CPU``: the process's user + system CPU seconds over the same calls (all threads).
  Compilation runs on one thread, so on a shared machine, where other processes stretch the
  wall time, the CPU seconds of a cold run are the steadier measure of its compile work.

``--breakdown`` adds, from the cold processes, the compile seconds of each kernel
signature (Numba's ``numba:compile`` events, which fire only on cache misses): *self* is the
kernel's own seconds, *incl.* includes the callees compiled during its typing. Each
signature is one row, so a kernel compiled for several argument types shows several times.
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

_TAG = "COLD-START "
N_USERS, N_ITEMS, N_RATINGS = 300, 200, 5_000
MODELS = ("rating", "implicit")


def _matrix() -> Any:
    """300 x 200 CSR matrix of 5,000 uniform 1..5 ratings at distinct random cells."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    cells = rng.choice(N_USERS * N_ITEMS, size=N_RATINGS, replace=False)
    ratings = rng.integers(1, 6, size=N_RATINGS).astype(np.float32)
    return sp.csr_matrix((ratings, (cells // N_ITEMS, cells % N_ITEMS)), shape=(N_USERS, N_ITEMS))


def _compile_rows(buffer: list[Any]) -> list[dict[str, Any]]:
    """Self and inclusive seconds per compiled signature, from nested compile events."""
    rows: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for stamp, event in buffer:
        if event.is_start:
            d = event.data["dispatcher"]
            name = f"{d.py_func.__module__.removeprefix('rbmrec.')}.{d.py_func.__qualname__}"
            args = ", ".join(str(a) for a in event.data["args"])
            stack.append({"kernel": name, "args": args, "t0": stamp, "children": 0.0})
        else:
            row = stack.pop()
            incl = stamp - row.pop("t0")
            row["incl_s"] = incl
            row["self_s"] = incl - row.pop("children")
            if stack:
                stack[-1]["children"] += incl
            rows.append(row)
    return rows


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(model_name: str, breakdown: bool) -> dict[str, Any]:
    """Time import, fit, predict and recommend in this process (see the module docstring)."""
    import contextlib

    out: dict[str, Any] = {}
    recorder: Any = contextlib.nullcontext()
    if breakdown:
        from numba.core import event

        recorder = event.install_recorder("numba:compile")
    with recorder as rec:
        cpu0 = _cpu_s()
        t0 = time.perf_counter()
        import rbmrec

        out["import"] = time.perf_counter() - t0
        import numpy as np

        X = _matrix()
        if model_name == "rating":
            model = rbmrec.RatingRBM(n_epochs=2, random_state=0)
        else:
            model = rbmrec.ImplicitRBM(n_epochs=2, random_state=0)
        t0 = time.perf_counter()
        model.fit(X)
        out["fit"] = time.perf_counter() - t0
        out["predict"] = 0.0
        if model_name == "rating":
            rng = np.random.default_rng(1)
            users = rng.integers(0, N_USERS, 100)
            items = rng.integers(0, N_ITEMS, 100)
            t0 = time.perf_counter()
            model.predict(users, items)
            out["predict"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.recommend(0, X[0], N=10)
        out["recommend"] = time.perf_counter() - t0
    out["cpu"] = _cpu_s() - cpu0
    out["total"] = out["import"] + out["fit"] + out["predict"] + out["recommend"]
    if breakdown:
        out["compiles"] = _compile_rows(rec.buffer)
    return out


def _run(model_name: str, cache: str, breakdown: bool, threads: int | None) -> dict[str, Any]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--child", model_name]
    if breakdown:
        cmd.append("--breakdown")
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"{model_name} child failed:\n{run.stderr[-3000:]}")
    line = next(x for x in run.stdout.splitlines() if x.startswith(_TAG))
    return json.loads(line[len(_TAG) :])


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ["import", "fit", "predict", "recommend", "total", "cpu"]
    lines = [
        "| model | cache | run | "
        + " | ".join(f"{c.replace('cpu', 'CPU')} s" for c in cols)
        + " |",
        "|---|---|---:|" + "---:|" * len(cols),
    ]
    for r in rows:
        cells = " | ".join(f"{r[c]:.2f}" for c in cols)
        lines.append(f"| {r['model']} | {r['cache']} | {r['run']} | {cells} |")
    return "\n".join(lines)


def _breakdown_table(compiles: list[dict[str, Any]], top: int) -> str:
    total = sum(c["self_s"] for c in compiles)
    by_kernel: dict[str, list[float]] = {}
    for c in compiles:
        entry = by_kernel.setdefault(c["kernel"], [0.0, 0])
        entry[0] += c["self_s"]
        entry[1] += 1
    lines = [
        f"compiled signatures: {len(compiles)}, compile seconds (self, summed): {total:.1f}",
        "",
        "| kernel | signatures | self s |",
        "|---|---:|---:|",
    ]
    ranked = sorted(by_kernel.items(), key=lambda kv: -kv[1][0])
    lines += [f"| {k} | {n} | {s:.2f} |" for k, (s, n) in ranked[:top]]
    lines += ["", "| kernel | args | self s | incl. s |", "|---|---|---:|---:|"]
    for c in sorted(compiles, key=lambda c: -c["self_s"])[:top]:
        args = c["args"] if len(c["args"]) < 90 else c["args"][:87] + "..."
        lines.append(f"| {c['kernel']} | {args} | {c['self_s']:.2f} | {c['incl_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma list of rating,implicit")
    p.add_argument("--repeats", type=int, default=1, help="cold/warm pairs per model")
    p.add_argument("--breakdown", action="store_true", help="compile seconds per kernel")
    p.add_argument("--top", type=int, default=25, help="rows of the breakdown tables")
    p.add_argument("--threads", type=int, default=None, help="NUMBA_NUM_THREADS of the runs")
    p.add_argument("--json", default=None, help="also write every row to this file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(_TAG + json.dumps(_child(args.child, args.breakdown)), flush=True)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(MODELS)
    if unknown:
        p.error(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    rows: list[dict[str, Any]] = []
    compiles: dict[str, list[dict[str, Any]]] = {}
    for run in range(1, args.repeats + 1):
        for m in models:  # interleaved, so the models share the machine's conditions
            with tempfile.TemporaryDirectory(prefix="rbmrec-cold-") as cache:
                for state in ("cold", "warm"):
                    want = args.breakdown and state == "cold" and run == 1
                    r = _run(m, cache, want, args.threads)
                    if "compiles" in r:
                        compiles[m] = r.pop("compiles")
                    rows.append({"model": m, "cache": state, "run": run, **r})
                    print(
                        f"{m} {state} run {run}: total {r['total']:.2f} s, CPU {r['cpu']:.2f} s",
                        file=sys.stderr,
                    )
    print(_table(rows))
    for m, c in compiles.items():
        print(f"\n### Compile time by kernel, {m} (cold run 1)\n")
        print(_breakdown_table(c, args.top))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "compiles": compiles}, indent=1))


if __name__ == "__main__":
    main()
