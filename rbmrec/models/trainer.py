"""The one training loop shared by every rbmrec model.

A model hands the trainer a dict of parameter arrays (updated in place) and a function that
returns the contrastive-divergence statistics of a mini-batch; the trainer owns everything
else: shuffling, the CD-T schedule, learning rate, momentum and weight decay, divergence
checks, per-epoch metrics, callbacks, progress (a log line per epoch, and a tqdm bar on a
terminal), early stopping that keeps the best epoch's parameters, and Ctrl-C that stops
cleanly with the best parameters so far.

Update rule (Hinton 2010, "A practical guide to training RBMs"), for each parameter ``p``
with batch statistics ``g`` (positive minus negative phase, summed over the batch rows)::

    velocity = momentum * velocity + learning_rate * (g / n_batch - weight_decay * p)
    p += velocity

with ``learning_rate = config.learning_rate * config.lr_decay ** epoch`` (0-based epoch; the
default ``lr_decay=1`` keeps it constant). Each epoch's rate is recorded in the history.

Weight decay applies only to the parameters a model lists in ``decay`` (weights, not biases).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rbmrec._progress import show_bar
from rbmrec.engine.update import apply_momentum
from rbmrec.errors import TrainingDivergedError

log = logging.getLogger(__name__)

CDSchedule = int | Sequence[tuple[int, int]]


def parse_cd_schedule(cd_steps: CDSchedule) -> list[tuple[int, int]]:
    """Normalise a CD-T schedule to a sorted list of ``(first_epoch, steps)``.

    Parameters
    ----------
    cd_steps : int or sequence of (int, int)
        Either a constant number of Gibbs steps, or pairs ``(first_epoch, steps)`` with
        0-based epochs, e.g. ``[(0, 1), (15, 3), (25, 5), (35, 9)]`` as in Salakhutdinov,
        Mnih & Hinton (2007). The first pair must start at epoch 0.

    Returns
    -------
    list of (int, int)

    Raises
    ------
    ValueError
        If a step count is below 1, the epochs are not increasing, or epoch 0 is missing.
    TypeError
        If ``cd_steps`` is neither an int nor a sequence of pairs.
    """
    if isinstance(cd_steps, bool):
        raise TypeError("cd_steps must be an int or a sequence of (first_epoch, steps) pairs")
    if isinstance(cd_steps, int | np.integer):
        if cd_steps < 1:
            raise ValueError(f"cd_steps must be >= 1, got {cd_steps}")
        return [(0, int(cd_steps))]
    try:
        raw = [(e, k) for e, k in cd_steps]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cd_steps must be an int or a sequence of (first_epoch, steps) pairs, got {cd_steps!r}"
        ) from exc
    for v in itertools.chain.from_iterable(raw):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            # int() would truncate 1.5 steps to 1 or start epoch 0.9 at epoch 0, silently.
            raise TypeError(
                f"cd_steps schedule entries must be ints, got {type(v).__name__} {v!r} in "
                f"{cd_steps!r}"
            )
    pairs = [(int(e), int(k)) for e, k in raw]
    if not pairs or pairs[0][0] != 0:
        raise ValueError(f"cd_steps schedule must start at epoch 0, got {cd_steps!r}")
    for (e0, _), (e1, _) in itertools.pairwise(pairs):
        if e1 <= e0:
            raise ValueError(f"cd_steps schedule epochs must increase, got {cd_steps!r}")
    for _, k in pairs:
        if k < 1:
            raise ValueError(f"cd_steps must be >= 1 in every schedule entry, got {cd_steps!r}")
    return pairs


def cd_schedule_json(cd_steps: CDSchedule) -> int | list[list[int]]:
    """``cd_steps`` for a model file's JSON metadata: an int, or the schedule as
    ``[first_epoch, steps]`` lists (NumPy integers become ints). Raises as
    :func:`parse_cd_schedule` for an invalid schedule."""
    if isinstance(cd_steps, int | np.integer) and not isinstance(cd_steps, bool):
        return int(cd_steps)
    return [[e, k] for e, k in parse_cd_schedule(cd_steps)]


def cd_steps_at(schedule: list[tuple[int, int]], epoch: int) -> int:
    """Number of Gibbs steps in force at 0-based ``epoch`` of a parsed schedule."""
    k = schedule[0][1]
    for first, steps in schedule:
        if epoch >= first:
            k = steps
    return k


#: A gradient that applies itself: ``update(p, v, scale, mom, lr_wd)`` (see :class:`BatchStep`).
FusedUpdate = Callable[[np.ndarray, np.ndarray, float, float, float], None]


class BatchStep(Protocol):
    """What a model supplies: the CD statistics of one mini-batch.

    Called as ``step(rows, cd_steps, rng)`` with ``rows`` the int64 row indices of the batch
    (already shuffled), it returns ``(grads, stats)``: ``grads`` maps parameter names to
    arrays of the parameter's shape holding positive minus negative statistics summed over
    the batch; ``stats`` maps metric names to sums over the batch (e.g. squared
    reconstruction error), which the trainer averages over the epoch by ``stats["count"]``
    when present, else by the number of rows.

    A gradient may instead be a :data:`FusedUpdate`: a function
    ``update(p, v, scale, mom, lr_wd)`` that applies the momentum step
    ``v = mom v + scale g - lr_wd p; p += v`` itself. Sparse kernels use this to build the
    statistics and update the parameters in one pass, never materialising ``g``.
    """

    def __call__(
        self, rows: np.ndarray, cd_steps: int, rng: np.random.Generator
    ) -> tuple[Mapping[str, np.ndarray | FusedUpdate], Mapping[str, float]]: ...


class SpanStep(Protocol):
    """Optional fast path of a model: several consecutive mini-batches in one call.

    Called as ``span(rows, batch_size, cd_steps, rng, lr, mom, lr_wd, velocity)`` with
    ``rows`` the int64 rows of whole batches in training order (batch ``t`` is
    ``rows[t * batch_size:(t + 1) * batch_size]``; only the span's last batch may be
    shorter), the epoch's learning rate and momentum, ``lr_wd`` mapping every parameter
    name to its ``lr * weight_decay`` (0 without decay) and ``velocity`` the momentum
    buffers. It computes each batch's statistics and applies ``v = mom v + scale g -
    lr_wd p; p += v`` with ``scale = lr / len(batch)`` to every parameter itself, and returns
    each statistic per batch (arrays of shape (n_batches,)), which the trainer sums like
    :class:`BatchStep`'s. It must train exactly as ``step`` followed by the trainer's
    momentum steps would, batch by batch, drawing from ``rng`` in the same order.
    """

    def __call__(
        self,
        rows: np.ndarray,
        batch_size: int,
        cd_steps: int,
        rng: np.random.Generator,
        lr: float,
        mom: float,
        lr_wd: Mapping[str, float],
        velocity: dict[str, np.ndarray],
    ) -> Mapping[str, np.ndarray]: ...


#: Mini-batches per call of a :class:`SpanStep`: few enough that Ctrl-C (which a compiled
#: kernel cannot see) still lands within a fraction of an epoch on large data.
SPAN_BATCHES = 16

EpochCallback = Callable[[int, dict[str, float]], bool | None]


@dataclass
class TrainerConfig:
    """Hyperparameters of the training loop (validated by :meth:`validate`)."""

    n_epochs: int = 50
    batch_size: int = 100
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.001
    cd_steps: CDSchedule = 1
    momentum_warmup: int = 0
    lr_decay: float = 1.0
    patience: int | None = None
    monitor: str = "valid_rmse"
    progress: bool = False
    callbacks: Sequence[EpochCallback] = field(default_factory=tuple)
    #: Largest total size (bytes) of the parameters of which the trainer keeps copies (the
    #: epoch start's, to undo an interrupted or diverged epoch, and the best epoch's);
    #: None: no limit. See :func:`train`, Notes.
    max_copy_bytes: int | None = None

    def validate(self) -> list[tuple[int, int]]:
        """Check every field; return the parsed CD schedule."""
        for name in ("n_epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        for name in ("learning_rate", "momentum", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise TypeError(f"{name} must be a number, got {type(v).__name__}")
            if not np.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        lrd = self.lr_decay
        if isinstance(lrd, bool) or not isinstance(lrd, int | float | np.number):
            raise TypeError(f"lr_decay must be a number, got {type(self.lr_decay).__name__}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.momentum_warmup < 0:
            raise ValueError(f"momentum_warmup must be >= 0, got {self.momentum_warmup}")
        pat = self.patience
        if pat is not None:
            if isinstance(pat, bool) or not isinstance(pat, int | float | np.integer | np.floating):
                raise TypeError(f"patience must be an int or None, got {type(pat).__name__}")
            if not float(pat).is_integer():
                # (A whole float such as 5.0 is taken: model files of earlier versions hold them.)
                raise ValueError(f"patience must be a whole number of epochs, got {pat}")
            if pat < 1:
                raise ValueError(f"patience must be >= 1 or None, got {pat}")
        cbs = self.callbacks
        if isinstance(cbs, str | bytes) or not isinstance(cbs, Sequence):
            # A generator would be used up here; a single callable is a common slip.
            raise TypeError(
                f"callbacks must be a sequence of callables (wrap a single callback in a "
                f"list), got {type(cbs).__name__}"
            )
        for k, cb in enumerate(cbs):
            if not callable(cb):
                raise TypeError(f"callbacks[{k}] must be callable, got {type(cb).__name__}")
        return parse_cd_schedule(self.cd_steps)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    history: list[dict[str, float]]
    best_epoch: int | None
    stopped_early: bool
    interrupted: bool


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C: a KeyboardInterrupt, or a SystemError caused by one.

    A SIGINT that lands while a Numba kernel calls back into Python (e.g. to unpickle a
    cached constant when it returns its arrays) comes out as ``SystemError: ... returned a
    result with an exception set`` whose cause is the KeyboardInterrupt. Any other
    SystemError is a real failure.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _apply(
    params: dict[str, np.ndarray],
    velocity: dict[str, np.ndarray],
    grads: Mapping[str, np.ndarray | FusedUpdate],
    scale: float,
    mom: float,
    lr_wd: Mapping[str, float],
) -> None:
    """One momentum step for every parameter that has a gradient (``lr_wd``: each
    parameter's ``lr * weight_decay``, 0 without decay)."""
    for name, g in grads.items():
        if callable(g):
            g(params[name], velocity[name], scale, mom, lr_wd[name])
        else:
            apply_momentum(params[name], velocity[name], g, scale, mom, lr_wd[name])


def _restore(
    params: dict[str, np.ndarray],
    velocity: dict[str, np.ndarray],
    snapshot: dict[str, np.ndarray],
) -> None:
    """After a failed or interrupted epoch: the parameters back to ``snapshot`` (their
    values when it started) and every momentum buffer to zero."""
    for n, p in params.items():
        p[...] = snapshot[n]
    for v in velocity.values():
        v[...] = 0.0


def _add_stats(sums: dict[str, float], stats: Iterable[tuple[str, float]]) -> None:
    """Add one batch's statistics to the epoch's sums."""
    for key, val in stats:
        sums[key] = sums.get(key, 0.0) + float(val)


def _momentum_buffers(
    params: dict[str, np.ndarray], velocity: dict[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """``velocity`` (a new dict when None) with a zero buffer for every parameter that has
    none of its shape."""
    if velocity is None:
        velocity = {}
    for name, p in params.items():
        if name not in velocity or velocity[name].shape != p.shape:
            velocity[name] = np.zeros_like(p)
    return velocity


def _rates(config: TrainerConfig, epoch: int) -> tuple[float, float]:
    """Learning rate and momentum of 0-based ``epoch``.

    Python floats: a NumPy float32 learning rate would round the step's scale to float32
    even for float64 parameters (and only on the batch-by-batch path).
    """
    lr = float(config.learning_rate) * float(config.lr_decay) ** epoch
    mom = float(config.momentum)
    if epoch < config.momentum_warmup:
        mom = 0.5 * mom
    return lr, mom


class _EpochLoop:
    """One epoch over the shuffled rows: batches, momentum steps, divergence check, record.

    ``snapshot`` holds the parameters as the running epoch found them (None between
    epochs), for :meth:`undo_epoch`.
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        velocity: dict[str, np.ndarray] | None,
        step: BatchStep,
        span_step: SpanStep | None,
        n_rows: int,
        config: TrainerConfig,
        rng: np.random.Generator,
        decay: Iterable[str],
        describe: str,
    ) -> None:
        self.params, self.step, self.span_step = params, step, span_step
        self.velocity = _momentum_buffers(params, velocity)
        self.n_rows, self.config, self.rng = n_rows, config, rng
        self.decay, self.describe = frozenset(decay), describe
        self.snapshot: dict[str, np.ndarray] | None = None
        self.running = False  # an epoch is under way (its snapshot may be None)

    def run(
        self,
        epoch: int,
        k: int,
        derive: Callable[[dict[str, float]], None] | None,
        evaluate: Callable[[int], Mapping[str, float]] | None,
        snapshot: dict[str, np.ndarray] | None,
    ) -> dict[str, float]:
        """Train 0-based ``epoch`` with CD-``k``; return its history record. ``snapshot``:
        the parameters' values now (never written), or None when no copy is kept."""
        lr, mom = _rates(self.config, epoch)
        t0 = time.perf_counter()
        self.snapshot, self.running = snapshot, True
        order = self.rng.permutation(self.n_rows)
        wd = self.config.weight_decay
        lr_wd = {n: lr * wd if n in self.decay else 0.0 for n in self.params}
        if self.span_step is not None:
            sums = self._spans(order, k, lr, mom, lr_wd)
        else:
            sums = self._batches(order, k, lr, mom, lr_wd)
        self._check_finite(epoch, k)
        count = sums.pop("count", float(self.n_rows))
        record: dict[str, float] = {
            "epoch": float(epoch + 1),
            "cd_steps": float(k),
            "learning_rate": lr,
        }
        record.update({key: val / max(count, 1.0) for key, val in sums.items()})
        if derive is not None:
            derive(record)
        if evaluate is not None:
            record.update({key: float(v) for key, v in evaluate(epoch).items()})
        record["seconds"] = time.perf_counter() - t0
        return record

    def _spans(
        self, order: np.ndarray, k: int, lr: float, mom: float, lr_wd: Mapping[str, float]
    ) -> dict[str, float]:
        """The epoch's batches through the model's :class:`SpanStep`; the summed stats."""
        sums: dict[str, float] = {}
        bs = self.config.batch_size
        span = bs * SPAN_BATCHES
        for start in range(0, self.n_rows, span):
            rows = order[start : start + span].astype(np.int64)
            spans = self.span_step(rows, bs, k, self.rng, lr, mom, lr_wd, self.velocity)
            for vals in zip(*spans.values(), strict=True):  # batch by batch, as _batches
                _add_stats(sums, zip(spans, vals, strict=True))
        return sums

    def _batches(
        self, order: np.ndarray, k: int, lr: float, mom: float, lr_wd: Mapping[str, float]
    ) -> dict[str, float]:
        """The epoch's batches one :class:`BatchStep` at a time; the summed stats."""
        sums: dict[str, float] = {}
        bs = self.config.batch_size
        for start in range(0, self.n_rows, bs):
            rows = order[start : start + bs].astype(np.int64)
            grads, stats = self.step(rows, k, self.rng)
            # Overflow shows up as inf/NaN and is reported once, by _check_finite.
            with np.errstate(over="ignore", invalid="ignore"):
                _apply(self.params, self.velocity, grads, lr / len(rows), mom, lr_wd)
            _add_stats(sums, stats.items())
        return sums

    def _check_finite(self, epoch: int, k: int) -> None:
        """TrainingDivergedError, after :meth:`undo_epoch`, if a parameter is not finite."""
        bad = [n for n, p in self.params.items() if not np.all(np.isfinite(p))]
        if not bad:
            return
        undone = self.undo_epoch()
        cfg = self.config
        outcome = (
            "Parameters were restored to their values before that epoch and their momentum "
            "reset to zero."
            if undone
            else f"The parameters ({_nbytes(self.params) / 2**30:.1f} GiB) exceed the "
            f"trainer's max_copy_bytes, so no copy was kept: they hold the diverged values."
        )
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}: non-finite values in "
            f"{', '.join(bad)} ({self.describe}learning_rate={cfg.learning_rate}, "
            f"momentum={cfg.momentum}, weight_decay={cfg.weight_decay}, "
            f"cd_steps={k}); lower the learning rate. {outcome}"
        )

    def interrupted(self) -> None:
        """After Ctrl-C: undo the running epoch if a copy allows, and say what is kept."""
        if self.undo_epoch():
            log.warning("training interrupted; keeping the best parameters so far")
        else:
            log.warning(
                "training interrupted; the parameters exceed max_copy_bytes, so no copy was "
                "kept: they stay as the interrupted epoch left them"
            )

    def undo_epoch(self) -> bool:
        """Back to where the running epoch started (nothing between epochs); False when an
        epoch is under way without a snapshot (the parameters stay as they are)."""
        running, self.running = self.running, False
        if self.snapshot is not None:
            _restore(self.params, self.velocity, self.snapshot)
            self.snapshot = None
            return True
        return not running


class _BestEpoch:
    """Early stopping: the best epoch by ``config.monitor`` (lower is better) and its
    parameters; inactive when ``config.patience`` is None."""

    def __init__(
        self, config: TrainerConfig, start_epoch: int, monitored: bool, may_copy: bool
    ) -> None:
        """``monitored``: whether the trainer has an ``evaluate`` (required with patience);
        ``may_copy``: whether the parameters are small enough to keep a copy of."""
        if config.patience is not None and not monitored:
            raise ValueError("early stopping (patience) needs validation data to monitor")
        self.patience, self.monitor = config.patience, config.monitor
        self.start_epoch = start_epoch
        self.last_epoch = start_epoch + config.n_epochs - 1
        self.may_copy = may_copy
        self.value = np.inf
        self.epoch: int | None = None
        self.params: dict[str, np.ndarray] | None = None
        self.stopped_early = False

    def update(self, epoch: int, record: Mapping[str, float], params: dict) -> bool:
        """Note ``epoch`` if it is the best so far; whether patience has run out.

        The best epoch's parameters are copied only when a later epoch may change them (not
        after the last epoch) and the copy is allowed."""
        if self.patience is None:
            return False
        if self.monitor not in record:
            raise ValueError(
                f"monitored metric {self.monitor!r} missing from epoch metrics {sorted(record)}"
            )
        value = record[self.monitor]
        if np.isfinite(value) and value < self.value:  # NaN never counts as best
            self.value, self.epoch = value, epoch
            copy = self.may_copy and epoch < self.last_epoch
            self.params = {n: p.copy() for n, p in params.items()} if copy else None
            return False
        last = self.start_epoch - 1 if self.epoch is None else self.epoch
        if epoch - last >= self.patience:
            self.stopped_early = True
        return self.stopped_early

    def epoch_start(
        self, epoch: int, params: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray] | None:
        """The parameters as ``epoch`` starts, to undo it: the best copy when the previous
        epoch was the best (shared, not copied again), else a copy, or None when copies are
        not allowed."""
        if self.params is not None and self.epoch == epoch - 1:
            return self.params
        return {n: p.copy() for n, p in params.items()} if self.may_copy else None

    def restore(self, params: dict[str, np.ndarray]) -> None:
        """The best epoch's values back into ``params`` (nothing without a copy)."""
        if self.params is not None:
            for n, p in params.items():
                p[...] = self.params[n]

    def kept(self, last_epoch: int | None) -> int | None:
        """The epoch whose parameters the model keeps: the best one, or ``last_epoch`` (the
        last finished) when the parameters were too large to copy."""
        if self.epoch is None or self.may_copy:
            return self.epoch
        return last_epoch


class _EpochReport:
    """Progress of the epochs: one INFO line per epoch on this module's logger and, with
    ``config.progress`` on a terminal (:func:`rbmrec._progress.show_bar`), a tqdm bar.

    Off a terminal no bar is drawn: its carriage-return frames would fill a redirected
    stderr, while the log line (shown when logging is configured) says the same once.
    """

    def __init__(self, config: TrainerConfig, start_epoch: int) -> None:
        self.last = start_epoch + config.n_epochs
        self.bar = None
        if show_bar(config.progress):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=config.n_epochs, desc="epochs", unit="epoch", leave=False)

    def epoch(self, record: Mapping[str, float]) -> None:
        """Report a finished epoch's record."""
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in record.items() if k != "epoch")
        log.info("epoch %d/%d: %s", int(record["epoch"]), self.last, metrics)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch"})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(
    params: dict[str, np.ndarray],
    step: BatchStep,
    n_rows: int,
    config: TrainerConfig,
    rng: np.random.Generator,
    *,
    decay: Iterable[str] = (),
    evaluate: Callable[[int], Mapping[str, float]] | None = None,
    derive: Callable[[dict[str, float]], None] | None = None,
    describe: str = "",
    velocity: dict[str, np.ndarray] | None = None,
    start_epoch: int = 0,
    span_step: SpanStep | None = None,
    history: list[dict[str, float]] | None = None,
) -> TrainResult:
    """Run the epoch loop, updating ``params`` in place.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The model's parameters; updated in place and, with early stopping, restored to the
        best epoch's values at the end.
    step : BatchStep
        Computes the CD statistics of a batch of rows.
    n_rows : int
        Number of training rows (users, or items for item-based models) to shuffle.
    config : TrainerConfig
        Loop hyperparameters.
    rng : numpy.random.Generator
        Source of the shuffles and of the per-row kernel random states.
    decay : iterable of str
        Names of the parameters that receive weight decay.
    evaluate : callable, optional
        ``evaluate(epoch) -> metrics`` called after each epoch (e.g. train/validation RMSE).
        Required when ``config.patience`` is set; must return ``config.monitor`` then.
    derive : callable, optional
        ``derive(record)`` edits an epoch's record in place right after the batch statistics
        are averaged (e.g. a mean squared error into its root), so the progress bar, the log,
        the callbacks and the history all see the same metrics.
    describe : str
        Hyperparameter summary used in error messages.
    velocity : dict, optional
        Momentum buffers to continue from (``partial_fit``); created when absent.
    start_epoch : int
        Epoch number of the first epoch (for schedules across ``partial_fit`` calls).
    span_step : SpanStep, optional
        Runs :data:`SPAN_BATCHES` batches per call in place of ``step`` and the momentum
        steps (same results, less Python per batch).
    history : list, optional
        The caller's list to append each epoch's record to as it finishes (so the records
        survive an exception), returned as ``TrainResult.history``; a new list when absent.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        When a parameter becomes NaN or infinite; the parameters are restored to their values
        at the start of the failing epoch and the momentum buffers reset to zero, so no NaN
        is left in a model and training can go on (e.g. with a lower learning rate).

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) during an epoch also restores the parameters to their
    values at the start of that epoch and resets the momentum, so the model matches the
    last record of its history; ``TrainResult.interrupted`` is then True. Under early
    stopping, an epoch whose monitored metric is NaN or infinite never counts as the best.
    Parameters over ``config.max_copy_bytes`` get no copies: no undo, no best-epoch copy.
    """
    schedule = config.validate()
    may_copy = copies_allowed(config, params)
    best = _BestEpoch(config, start_epoch, evaluate is not None, may_copy)
    loop = _EpochLoop(params, velocity, step, span_step, n_rows, config, rng, decay, describe)
    history = [] if history is None else history
    report = _EpochReport(config, start_epoch)
    interrupted, last_done = False, None
    try:
        for epoch in range(start_epoch, start_epoch + config.n_epochs):
            snapshot = best.epoch_start(epoch, params)
            record = loop.run(epoch, cd_steps_at(schedule, epoch), derive, evaluate, snapshot)
            history.append(record)
            last_done, loop.snapshot, loop.running = epoch, None, False  # Ctrl-C keeps it
            report.epoch(record)
            # The best epoch is noted before the callbacks run, so a Ctrl-C or an error in
            # a callback keeps this epoch if it is the best. Every callback runs.
            stop = best.update(epoch, record, params)
            if any([cb(epoch, record) for cb in config.callbacks]) or stop:  # all of them run
                break
    except (KeyboardInterrupt, SystemError) as exc:
        if not is_interrupt(exc):
            raise
        interrupted = True
        loop.interrupted()
    finally:
        report.close()
    best.restore(params)
    return TrainResult(history, best.kept(last_done), best.stopped_early, interrupted)


def copies_allowed(config: TrainerConfig, params: Mapping[str, np.ndarray]) -> bool:
    """Whether the trainer keeps copies of ``params`` (``config.max_copy_bytes``)."""
    return config.max_copy_bytes is None or _nbytes(params) <= config.max_copy_bytes


def _nbytes(params: Mapping[str, np.ndarray]) -> int:
    """Total size of the parameter arrays in bytes."""
    return sum(p.nbytes for p in params.values())
