"""Data-parallel training of a RatingRBM by synchronous model averaging.

Every round, each worker trains ``sync_every`` mini-batches of its shard's rows, in the
epoch's shuffled order, from the same broadcast parameters and momentum buffers. The driver
then averages the workers' updates of the parameters, weighted by the rows each trained,
and applies that mean update times the number of workers (the linear scaling rule, Goyal et
al. 2017: a round moves the parameters as far as its batches would in one process); the
momentum buffers become the rows-weighted mean of the workers'. Sums run in worker-rank
order in float64 (local SGD: Zinkevich et al. 2010; Stich 2018).
All replicas start from the driver's initial weights, so averaging never mixes replicas
whose hidden units are permuted against each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine._random import row_states
from rbmrec.errors import TrainingDivergedError
from rbmrec.models import replica as R
from rbmrec.models.rating_train import recon_rmse
from rbmrec.models.trainer import SPAN_BATCHES, cd_steps_at

log = logging.getLogger("rbmrec.distributed")

#: Mini-batches per worker between two averages when ``sync_every=None`` (see
#: docs/distributed.md, "Choosing sync_every").
DEFAULT_SYNC_EVERY = SPAN_BATCHES


def check_sync_every(sync_every: Any) -> int:
    """``sync_every`` checked (a positive int, or None for the default)."""
    if sync_every is None:
        return DEFAULT_SYNC_EVERY
    if isinstance(sync_every, bool) or not isinstance(sync_every, int | np.integer):
        raise TypeError(f"sync_every must be a positive int or None, got {sync_every!r}")
    if sync_every < 1:
        raise ValueError(f"sync_every must be >= 1, got {sync_every}")
    return int(sync_every)


@dataclass
class Cluster:
    """The client and the workers of a fit, in rank order."""

    client: Any
    workers: list[str]

    @property
    def n(self) -> int:
        return len(self.workers)


def _make_replica(
    shard: sp.csr_matrix, cls: type, params: dict, values: np.ndarray
) -> Any:  # runs on a worker
    return R.make_replica(cls, params, shard, values)


def _train_round(
    replica: Any, state: dict, rows: np.ndarray, rng_state: dict, batch_size: int, k: int,
    rates: tuple,
) -> dict:  # fmt: skip  # runs on a worker
    t0 = time.perf_counter()
    bit_generator = getattr(np.random, rng_state["bit_generator"])()
    bit_generator.state = rng_state
    rng = np.random.Generator(bit_generator)
    params, velocity, stats = R.train_rows(
        replica, state["params"], state["velocity"], rows, batch_size, k, rng, rates
    )
    return {
        "params": params,
        "velocity": velocity,
        "stats": stats,
        "seconds": time.perf_counter() - t0,
    }


def _combine(
    target: dict[str, np.ndarray],
    results: Sequence[dict[str, np.ndarray]],
    weights: list[float],
    scale: float = 1.0,
) -> None:
    """``target += scale * sum_w weights[w] * (results[w] - target)`` in float64, summed in
    rank order: with ``scale = 1`` the rows-weighted average of the results. A single
    result is copied exactly (one worker trains bitwise as one process)."""
    for name, p in target.items():
        if len(results) == 1:
            p[...] = results[0][name]
            continue
        base = p.astype(np.float64)
        acc = np.zeros(p.shape, dtype=np.float64)
        for res, wt in zip(results, weights, strict=True):
            acc += wt * (res[name].astype(np.float64) - base)
        p[...] = base + scale * acc


def _nbytes(arrays: dict[str, np.ndarray]) -> int:
    return int(sum(a.nbytes for a in arrays.values()))


class _Rounds:
    """The epoch loop of one single-orientation model on the cluster."""

    def __init__(self, cluster: Cluster, model: Any, replicas: list[Any], n_rows: int,
                 config: Any, sync_every: int) -> None:  # fmt: skip
        self.cluster, self.model, self.replicas = cluster, model, replicas
        self.params, self.decay, self.rng = R.driver_state(model)
        self.velocity = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.n_rows, self.config, self.sync_every = n_rows, config, sync_every
        self.schedule = config.validate()

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train 0-based ``epoch``; its history record."""
        t0 = time.perf_counter()
        cfg, n = self.config, self.cluster.n
        rates = R.epoch_rates(cfg, self.decay, list(self.params), epoch)
        k = cd_steps_at(self.schedule, epoch)
        snapshot = {name: p.copy() for name, p in self.params.items()}
        order = self.rng.permutation(self.n_rows)
        local = [order[order % n == w] // n for w in range(n)]
        span = cfg.batch_size * self.sync_every
        n_rounds = -(-max(len(o) for o in local) // span)
        sums: dict[str, float] = {}
        moved = 0
        busy = 0.0
        for r in range(n_rounds):
            chunks = [o[r * span : (r + 1) * span].astype(np.int64) for o in local]
            out = self._round(chunks, rates, k, epoch, r)
            for key, val in out["stats"].items():
                sums[key] = sums.get(key, 0.0) + val
            moved += out["bytes"]
            busy += out["seconds"]
        bad = [name for name, p in self.params.items() if not np.all(np.isfinite(p))]
        if bad:
            for name, p in self.params.items():
                p[...] = snapshot[name]
            raise TrainingDivergedError(
                f"training diverged at epoch {epoch + 1}: non-finite values in {', '.join(bad)}"
                f" (learning_rate={cfg.learning_rate}); lower the learning rate. Parameters "
                "were restored to their values before that epoch."
            )
        count = sums.pop("count", float(self.n_rows))
        record = {"epoch": float(epoch + 1), "cd_steps": float(k), "learning_rate": rates[0]}
        record.update({key: val / max(count, 1.0) for key, val in sums.items()})
        recon_rmse(record)
        record.update(rounds=float(n_rounds), bytes_moved=float(moved), worker_seconds=busy)
        record["seconds"] = time.perf_counter() - t0
        return record

    def _round(self, chunks: list[np.ndarray], rates: tuple, k: int, epoch: int,
               r: int) -> dict:  # fmt: skip
        """One round: the active workers' batches from the current state, then the
        average. Returns the summed stats, the bytes moved and the slowest worker's
        seconds."""
        client = self.cluster.client
        active = [w for w in range(self.cluster.n) if len(chunks[w])]
        rng_states = {}
        for w in active:  # rank order: each worker's stream continues the driver's
            rng_states[w] = self.rng.bit_generator.state
            row_states(self.rng, len(chunks[w]))
        state = {"params": self.params, "velocity": self.velocity}
        [future] = client.scatter(
            [state], broadcast=True, hash=False, workers=[self.cluster.workers[w] for w in active]
        )
        futures = [
            client.submit(
                _train_round, self.replicas[w], future, chunks[w], rng_states[w],
                self.config.batch_size, k, rates, workers=[self.cluster.workers[w]],
                allow_other_workers=True, pure=False,
            )
            for w in active
        ]  # fmt: skip
        results = _gather(client, futures, epoch, r)
        trained = [len(chunks[w]) for w in active]
        total = float(sum(trained))
        weights = [t / total for t in trained]
        # The parameters move by the workers' rows-weighted mean update times the number of
        # workers: as far as the round's batches would move them in one process.
        _combine(self.params, [res["params"] for res in results], weights, float(len(active)))
        _combine(self.velocity, [res["velocity"] for res in results], weights)
        stats: dict[str, float] = {}
        for res in results:
            for key, val in res["stats"].items():
                stats[key] = stats.get(key, 0.0) + float(val)
        per_worker = _nbytes(self.params) + _nbytes(self.velocity)
        return {
            "stats": stats,
            "bytes": 2 * per_worker * len(active),
            "seconds": max(res["seconds"] for res in results),
        }


def _gather(client: Any, futures: list[Any], epoch: int, r: int) -> list[dict]:
    """The results in rank order; a clear error when a worker was lost for good."""
    from distributed.scheduler import KilledWorker

    try:
        return client.gather(futures)
    except (KilledWorker, OSError) as exc:
        raise RuntimeError(
            f"a Dask worker failed during round {r + 1} of epoch {epoch + 1} and the round "
            f"could not be retried ({type(exc).__name__}: {exc}); the fit is abandoned and "
            "no averaged parameters of that round were kept"
        ) from exc


def fit_single(cluster: Cluster, model: Any, data: Any, sync_every: int) -> None:
    """Fit a single-orientation RatingRBM ``model`` on the cluster (``data``: the
    ratings prepared on it, :class:`rbmrec.distributed._fit.Prepared`)."""
    by_item = model.orientation == "item"
    X = data.X
    config, values = R.start_fit(model, X)
    shards = data.shards(by_item)
    params = R.replica_params(model)
    replicas = [
        cluster.client.submit(
            _make_replica, shards[w], type(model), params, values,
            workers=[cluster.workers[w]], allow_other_workers=True, pure=False,
        )
        for w in range(cluster.n)
    ]  # fmt: skip
    n_rows = X.shape[1] if by_item else X.shape[0]
    loop = _Rounds(cluster, model, replicas, n_rows, config, sync_every)
    history = model.history_
    t0 = time.perf_counter()
    for epoch in range(config.n_epochs):
        record = loop.epoch(epoch)
        history.append(record)
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in record.items() if k != "epoch")
        log.info("epoch %d/%d: %s", epoch + 1, config.n_epochs, metrics)
        if any([cb(epoch, record) for cb in config.callbacks]):
            break
    del replicas
    R.finish_fit(model, history, time.perf_counter() - t0)
