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

from rbmrec.distributed._client import worker_ranks
from rbmrec.engine._random import row_states
from rbmrec.errors import TrainingDivergedError
from rbmrec.models import replica as R
from rbmrec.models.rating_train import recon_rmse
from rbmrec.models.trainer import SPAN_BATCHES, cd_steps_at

log = logging.getLogger("rbmrec.distributed")

#: Tries of a round that loses workers before the fit gives up.
MAX_ROUND_ATTEMPTS = 3
#: Seconds a round waits to hand the parameters to its workers before it counts one lost.
SCATTER_TIMEOUT = 20

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


def _make_replica(shard: sp.csr_matrix, spec: tuple, known: Any) -> Any:  # runs on a worker
    return R.make_replica(spec, shard, known)


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


class _Rounds:
    """The epoch loop of one single-orientation model on the cluster."""

    def __init__(self, cluster: Cluster, model: Any, shards: list[Any] | None, n_rows: int,
                 config: Any, sync_every: int, X: sp.csr_matrix, known: Any) -> None:  # fmt: skip
        """``shards``: futures of the shards' matrices, shard ``w`` on worker ``w`` (None: cut
        them from ``X``); ``X``: the training ratings (users x items), from which a lost
        shard is rebuilt; ``known``: a conditional model's known pairs, or None."""
        self.cluster, self.model, self.X, self.known = cluster, model, X, known
        self.by_item = model.orientation == "item"
        self.spec = R.replica_spec(model)
        self.params, self.decay, self.rng = R.driver_state(model)
        self.velocity = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.n_rows, self.config, self.sync_every = n_rows, config, sync_every
        self.schedule = config.validate()
        self.homes = list(cluster.workers)
        self.replicas = [None] * cluster.n
        for w, home in enumerate(self.homes):
            self.place(w, home, None if shards is None else shards[w])

    def place(self, w: int, home: str, shard: Any = None) -> None:
        """Make the replica of shard ``w`` on worker ``home``, from ``shard`` (a future) or
        cut from the driver's ratings."""
        client = self.cluster.client
        if shard is None:
            [shard] = client.scatter([self.cut(self.X, w)], workers=[home], hash=False)
        known = None
        if self.known is not None:
            [known] = client.scatter([self.cut(self.known, w)], workers=[home], hash=False)
        self.replicas[w] = client.submit(
            _make_replica, shard, self.spec, known, workers=[home], allow_other_workers=True,
            pure=False,
        )  # fmt: skip
        self.homes[w] = home

    def cut(self, M: Any, w: int) -> sp.csr_matrix:
        """Shard ``w`` of a users x items matrix as the workers build it: rows ``w, w + P,
        ...`` (columns, for an item shard)."""
        M, n = sp.csr_matrix(M), self.cluster.n
        return sp.csr_matrix(M[:, w::n]) if self.by_item else M[w::n]

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
                f" (learning_rate={cfg.learning_rate}, sync_every={self.sync_every}); lower "
                "the learning rate or sync_every. Parameters were restored to their values "
                "before that epoch."
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
        combination. Returns the summed stats, the bytes moved and the slowest worker's
        seconds. A round that loses a worker is rerun (:meth:`_recover`) from the same
        state, rows and random states, so it computes what it would have."""
        active = [w for w in range(self.cluster.n) if len(chunks[w])]
        rng_states = {}
        for w in active:  # rank order: each worker's stream continues the driver's
            rng_states[w] = self.rng.bit_generator.state
            row_states(self.rng, len(chunks[w]))
        for attempt in range(1, MAX_ROUND_ATTEMPTS + 1):
            try:
                results = self._dispatch(active, chunks, rng_states, rates, k)
                break
            except _lost_worker_errors() as exc:
                if attempt == MAX_ROUND_ATTEMPTS:
                    raise RuntimeError(
                        f"Dask workers failed {attempt} times in round {r + 1} of epoch "
                        f"{epoch + 1} ({type(exc).__name__}: {exc}); the fit is abandoned "
                        "and no parameters of that round were kept"
                    ) from exc
                log.warning(
                    "round %d of epoch %d lost a worker (%s: %s); rebuilding lost shards from "
                    "the driver's ratings and rerunning the round",
                    r + 1, epoch + 1, type(exc).__name__, exc,
                )  # fmt: skip
                self._recover()
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

    def _dispatch(self, active: list[int], chunks: list[np.ndarray], rng_states: dict,
                  rates: tuple, k: int) -> list[dict]:  # fmt: skip
        """The active replicas' results of a round, in rank order."""
        client = self.cluster.client
        if not set(self.homes) <= set(worker_ranks(client)):
            self._recover()  # a worker left between rounds (scattering to it would wait)
        state = {"params": self.params, "velocity": self.velocity}
        # One copy per worker, each scattered on its own: Dask's broadcast keeps retrying a
        # worker that has died, a plain scatter fails (here after SCATTER_TIMEOUT).
        copies = {
            home: client.scatter([state], hash=False, workers=[home], timeout=SCATTER_TIMEOUT)[0]
            for home in sorted({self.homes[w] for w in active})
        }
        futures = [
            client.submit(
                _train_round, self.replicas[w], copies[self.homes[w]], chunks[w], rng_states[w],
                self.config.batch_size, k, rates, workers=[self.homes[w]],
                allow_other_workers=True, pure=False,
            )
            for w in active
        ]  # fmt: skip
        return client.gather(futures)

    def _recover(self) -> None:
        """Rebuild every replica that is not in memory on a live worker: its shard cut from
        the driver's ratings and scattered to a live worker (the shards of lost workers go
        round the live ones in rank order)."""
        client = self.cluster.client
        live = worker_ranks(client)
        for w, replica in enumerate(self.replicas):
            if replica.status == "finished" and self.homes[w] in live:
                continue
            self.place(w, live[w % len(live)])


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    """What a round raises when a worker (and the data it held) is lost."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, FutureCancelledError, OSError)


def fit_single(
    cluster: Cluster, model: Any, data: Any, sync_every: int, train: Any, V: Any, known: Any,
    values: np.ndarray, n_epochs: int | None = None,
) -> None:  # fmt: skip
    """Fit a single-orientation RatingRBM ``model`` (or an ImplicitRBM's member,
    :class:`rbmrec.models.replica.ImplicitMember`) on the cluster: ``data`` the ratings
    prepared on it (:class:`rbmrec.distributed._fit.Prepared`), ``train``, ``V`` and
    ``known`` the training part, validation part and known pairs of
    :func:`rbmrec.models.replica.carve` (``train`` is ``data.X`` without a validation
    part: the workers' shards are used as built, else they are cut from ``train``).
    ``n_epochs``: that many epochs without early stopping (a refit), else the model's."""
    by_item = model.orientation == "item"
    config = R.start_fit(model, train, values, known)
    if n_epochs is not None:
        config.n_epochs, config.patience = n_epochs, None
    evaluate, best = R.validation(model, V, config)
    n_rows = train.shape[1] if by_item else train.shape[0]
    shards = data.shards(by_item) if train is data.X and known is None else None
    loop = _Rounds(cluster, model, shards, n_rows, config, sync_every, train, known)
    history = model.history_
    t0 = time.perf_counter()
    for epoch in range(config.n_epochs):
        record = loop.epoch(epoch)
        if evaluate is not None:
            record.update({key: float(v) for key, v in evaluate(epoch).items()})
        history.append(record)
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in record.items() if k != "epoch")
        log.info("epoch %d/%d: %s", epoch + 1, config.n_epochs, metrics)
        stop = best.update(epoch, record, loop.params)
        if any([cb(epoch, record) for cb in config.callbacks]) or stop:
            break
    R.finish_fit(model, history, best, time.perf_counter() - t0)
