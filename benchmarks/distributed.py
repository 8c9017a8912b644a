"""Data-parallel fit on a local Dask cluster against one process (``rbmrec.distributed``).

The model is ``RatingRBM(orientation="user", conditional=False, n_hidden=100,
n_epochs=20, patience=None)`` (``--n-hidden``, ``--epochs``). The training ratings are
written as parquet files with raw ids; the cluster fits from them, the in-process model
from the same ratings in memory. Reported for each: seconds per epoch (the median epoch: the
first one includes compiling or loading the kernels), test RMSE and NDCG@10
after the same epochs (protocol of ``benchmarks/topn.py``: relevant = held-out ratings >= 4,
lists exclude the training items), and for the cluster the rounds, bytes moved per round
and per epoch (parameters and momentum buffers, to and from every worker), the slowest
worker's compute seconds per epoch and the peak resident memory of each worker process.
The projection for 8 and 64 machines is a model, not a measurement (printed as such).

Data: ``--dataset ml-1m`` (90/10 random split, ``--seed``), or ``--synthetic N``: N
synthetic ratings of 480,189 users x 17,770 items scaled down with N (the Netflix shape at
N = 100M), split 90/10.

Example::

    RBMREC_DATA_DIR=/work/shared/datasets python benchmarks/distributed.py --dataset ml-1m \\
        --workers 2 --out /tmp/distributed-ml1m.md
    python benchmarks/distributed.py --synthetic 100000000 --epochs 1 --skip-topn
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

# This file's folder goes last on the path: first, it would shadow the ``distributed``
# package with this script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from _common import data_folder  # noqa: E402

import rbmrec.distributed as rd  # noqa: E402
from rbmrec import RatingRBM  # noqa: E402
from rbmrec.data import Ratings, load_movielens, make_ratings, random_split  # noqa: E402
from rbmrec.distributed._client import local_cluster  # noqa: E402
from rbmrec.evaluation.metrics import ndcg_at_k, relevant_items  # noqa: E402

#: Assumed network bandwidth of the projection: 10 Gbit/s Ethernet, in bytes per second.
BANDWIDTH = 1.25e9


def _data(args: argparse.Namespace) -> tuple[Ratings, Any]:
    """(whole data, 90/10 split)."""
    if args.synthetic:
        n = int(args.synthetic)
        users = max(100, round(480_189 * (n / 1e8) ** 0.5))
        items = max(50, round(17_770 * (n / 1e8) ** 0.5))
        data = make_ratings(users, items, density=min(1.0, n / (users * items)), seed=args.seed)
    else:
        data = load_movielens(data_folder(args.dataset, args.data_dir), metadata=False)
    return data, random_split(data, test_fraction=0.1, seed=args.seed)


def _entries(m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of a canonical CSR matrix, row by row (no fancy indexing:
    at 100M ratings that costs gigabytes)."""
    m = sp.csr_matrix(m)
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))
    return rows, m.indices, m.data


def _train_frame(data: Ratings, train: Any) -> pl.DataFrame:
    """The training ratings with raw ids."""
    u, i, r = _entries(train)
    frame = pl.DataFrame({
        "user": data.user_ids.to_raw(u),
        "item": data.item_ids.to_raw(i),
        "rating": r.astype(np.float32),
    })  # fmt: skip
    return frame


def _write_parquet(frame: pl.DataFrame, folder: Path, n_files: int) -> str:
    """``frame`` as ``n_files`` parquet files; their glob."""
    step = -(-frame.height // n_files)
    for k in range(n_files):
        frame.slice(k * step, step).write_parquet(folder / f"part{k:03d}.parquet")
    return str(folder / "*.parquet")


def _ndcg(ids: np.ndarray, test: Any) -> float:
    return ndcg_at_k(ids, relevant_items(test, 4.0), 10)


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - y) ** 2)))


def _model(args: argparse.Namespace, callbacks: tuple = ()) -> RatingRBM:
    return RatingRBM(
        orientation="user", conditional=False, n_hidden=args.n_hidden, n_epochs=args.epochs,
        patience=None, random_state=args.seed, callbacks=callbacks,
    )  # fmt: skip


def _in_process(args: argparse.Namespace, train: Ratings, test: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = _model(args).fit(train.user_items)
    fit = time.perf_counter() - t0
    u, i, y = _entries(test)
    row = {
        "run": "one process",
        "s_per_epoch": float(np.median([r["seconds"] for r in model.history_])),
        "fit_s_incl_setup": fit,
        "rmse": _rmse(model.predict(u, i), y),
        "peak_rss_mib": _peak_rss(),
    }
    if not args.skip_topn:
        users = np.arange(train.n_users)
        ids, _ = model.recommend(users, train.user_items, N=10)
        row["ndcg10"] = _ndcg(ids, test)
    return row


def _same_index(data: Ratings, split: Any, frame: pl.DataFrame) -> tuple[Ratings, Any]:
    """The training part as one process reads the parquet frame (ids of rated users and
    items only), and the test ratings of those users and items in its indices."""
    train = Ratings.from_frame(frame, user="user", item="item")
    u, i, y = _entries(split.test)
    tu = train.user_ids.to_index(data.user_ids.to_raw(u), unknown="minus_one")
    ti = train.item_ids.to_index(data.item_ids.to_raw(i), unknown="minus_one")
    keep = (tu >= 0) & (ti >= 0)
    y = y[keep]
    test = sp.csr_matrix((y, (tu[keep], ti[keep])), shape=train.shape)
    print(f"test ratings of users and items without training ratings: {int((~keep).sum())} "
          f"dropped (of {keep.size})", flush=True)  # fmt: skip
    return train, test


def _peak_rss() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` of /proc/self/status (a worker
    process's own; ``ru_maxrss`` keeps the driver's peak from before it was spawned)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _on_cluster(args: argparse.Namespace, train: Ratings, test: Any, path: str) -> dict:
    from distributed import Client

    with local_cluster(args.workers) as cluster, Client(cluster) as client:
        during: list[dict] = []

        def training_rss(epoch: int, record: dict) -> None:  # the workers' RSS after epoch 1
            if not during:
                during.append(client.run(_rss))

        t0 = time.perf_counter()
        model = _model(args, (training_rss,))
        bundle = rd.fit(model, path, client=client, sync_every=args.sync_every)
        fit = time.perf_counter() - t0
        bundle.model.callbacks = ()  # the closure over the client does not travel
        hist = bundle.model.history_
        peaks = client.run(_peak_rss)
        driver_fit_peak = _peak_rss()
        u, i, y = _entries(test)
        pairs = pl.DataFrame({"user": train.user_ids.to_raw(u), "item": train.item_ids.to_raw(i)})
        pred = client.compute(rd.predict(bundle, pairs.to_pandas(), client=client)).result()
        rounds = sum(r["rounds"] for r in hist)
        moved = sum(r["bytes_moved"] for r in hist)
        row = {
            "run": f"{args.workers} workers, sync_every={args.sync_every or 'default'}",
            "s_per_epoch": float(np.median([r["seconds"] for r in hist])),
            "fit_s_incl_setup": fit,
            "worker_s_per_epoch": float(np.median([r["worker_seconds"] for r in hist])),
            "rounds_per_epoch": rounds / len(hist),
            "mb_per_round": moved / rounds / 1e6,
            "mb_per_epoch": moved / len(hist) / 1e6,
            "rmse": _rmse(pred["prediction"].to_numpy(), y),
            "peak_rss_mib_per_worker": "/".join(f"{v:.0f}" for v in peaks.values()),
            "rss_mib_per_worker_after_epoch_1": "/".join(
                f"{v:.0f}" for v in (during[0] if during else {}).values()
            ),
            "driver_peak_rss_mib_after_fit": driver_fit_peak,
        }
        if not args.skip_topn:
            lists = client.compute(rd.recommend(bundle, path, N=10, client=client)).result()
            row["ndcg10"] = _ndcg(_ids_matrix(lists, bundle, train.shape), test)
    return row


def _ids_matrix(lists: Any, bundle: Any, shape: tuple[int, int]) -> np.ndarray:
    """The (n_users, 10) index matrix of ``recommend``'s rows (-1 padding)."""
    ids = np.full((shape[0], 10), -1, dtype=np.int64)
    u = bundle.user_ids.to_index(lists["user"].to_numpy())
    i = bundle.item_ids.to_index(lists["item"].to_numpy())
    ids[u, lists["rank"].to_numpy() - 1] = i
    return ids


def _projection(one: dict | None, dist: dict, workers: int) -> list[str]:
    """Projected epoch time on P machines: compute scales as 1/P (the measured one-process
    epoch; without it, the cluster's slowest worker's compute times the workers), communication
    per epoch is P-independent at a fixed sync_every (rounds per epoch fall as 1/P while each
    round moves 2 P copies of the state through the driver)."""
    if one is not None:
        t1, what = one["s_per_epoch"], "the one-process epoch"
    else:
        t1 = dist["worker_s_per_epoch"] * workers
        what = f"the slowest worker's compute per epoch x {workers} workers"
    comm_local = max(dist["s_per_epoch"] - dist["worker_s_per_epoch"], 0.0)
    comm_net = dist["mb_per_epoch"] * 1e6 / BANDWIDTH
    lines = [
        "Projection (a model, not a measurement): epoch = T1 / P + C, with T1",
        f"{what} ({t1:.2f} s) and C the communication per epoch: measured overhead on this "
        f"machine's loopback with {workers} workers ({comm_local:.2f} s), or "
        f"{dist['mb_per_epoch']:.0f} MB at 10 Gbit/s ({comm_net:.2f} s).",
        "",
        "| P | epoch (s), C measured | speed-up | epoch (s), C = bytes / 10 Gbit/s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for p in (8, 64):
        a, b = t1 / p + comm_local, t1 / p + comm_net
        lines.append(f"| {p} | {a:.2f} | {t1 / a:.1f} | {b:.2f} | {t1 / b:.1f} |")
    return lines


def _table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [f"{r[k]:.4f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--synthetic", type=float, default=None, help="N synthetic ratings")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n-hidden", type=int, default=100)
    p.add_argument("--sync-every", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--files", type=int, default=8, help="parquet files of the training part")
    p.add_argument("--skip-topn", action="store_true", help="no recommend / NDCG@10")
    p.add_argument("--skip-single", action="store_true", help="no one-process fit")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    data, split = _data(args)
    print(f"data: {data!r}; train {split.train.nnz:,}, test {split.test.nnz:,}", flush=True)
    frame = _train_frame(data, split.train)
    train, test = _same_index(data, split, frame)
    del data, split
    rows = []
    one = None
    if not args.skip_single:
        one = _in_process(args, train, test)
        rows.append(one)
        print(one, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_parquet(frame, Path(tmp), args.files)
        del frame
        dist = _on_cluster(args, train, test, path)
    rows.append(dist)
    print(dist, flush=True)
    lines = [f"{train!r}, {args.epochs} epochs, n_hidden={args.n_hidden}, seed {args.seed}", ""]
    lines += _table(rows)
    lines += ["", *_projection(one, dist, args.workers)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return lines


if __name__ == "__main__":
    main()
