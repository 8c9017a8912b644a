"""Replicas of a data-parallel fit of a :class:`~rbmrec.models.rating.RatingRBM` or an
:class:`~rbmrec.models.implicit.ImplicitRBM`.

A data-parallel fit (:mod:`rbmrec.distributed`) keeps the model on the driver and one
*replica* per worker: the same single-orientation model set up on a shard of the training
rows (users of a user-based RBM, items of an item-based one; each row whole in one shard;
an ImplicitRBM is user-based).
Every round, each replica trains some mini-batches of its rows from the driver's parameters
and momentum buffers with the model's own step (:func:`rbmrec.models.rating_train.span_step`
or :func:`~rbmrec.models.rating_train.train_step` and the trainer's momentum update, through
the trainer's batch loop), and the driver combines the results.

This module is the whole interface between that fit and the model's internals: setting up
the driver's model and a replica (:func:`start_fit`, :func:`make_replica`), one round of
batches (:func:`train_rows`), the epoch's rates (:func:`epoch_rates`), the end of a fit
(:func:`finish_fit`) and the item + user mixture of ``orientation="both"``
(:func:`fit_both`), and the members of an ImplicitRBM (:func:`fit_implicit`, each a
:class:`ImplicitMember` on the driver). With one replica holding every row, the fit
performs the single-process ``fit``'s arithmetic in the same order: the driver draws the
shuffles and the replicas' random states from the model's generator as
:func:`rbmrec.models.trainer.train` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.models import rating_files as files
from rbmrec.models import rating_train as T
from rbmrec.models._estimator import num_threads, one_blas_thread
from rbmrec.models._sparse import stored_entries
from rbmrec.models.implicit_train import _cd_step, _TrainData
from rbmrec.models.mixture import MEMBERS, RatingMixture, fit_weights, member_of, spawn_seeds
from rbmrec.models.trainer import (
    TrainerConfig,
    TrainResult,
    _BestEpoch,
    _EpochLoop,
    _rates,
    copies_allowed,
)
from rbmrec.models.validation import check_interactions

#: Constructor arguments a replica never takes from the driver's model: a replica reports
#: nothing and calls nothing back (the driver does). Its ``num_threads`` is the model's: 0,
#: the default, uses every Numba thread of the worker process (``NUMBA_NUM_THREADS``).
_DRIVER_ONLY = {"progress": False, "callbacks": ()}


def check_supported(model: Any) -> None:
    """NotImplementedError naming what a data-parallel fit supports, unless ``model`` is.

    Supported: :class:`~rbmrec.models.rating.RatingRBM`, any orientation (``"both"`` fits
    its members one after the other), softmax or Gaussian visibles, conditional or not,
    factored or not, CD or persistent CD, refit or not;
    :class:`~rbmrec.models.implicit.ImplicitRBM` with
    ``negative="mean_field"`` (any ``visible``, ``n_models``), without ``patience`` (it has
    no validation matrix to stop on: ValueError, as its ``fit`` without one).
    """
    from rbmrec.models.implicit import ImplicitRBM
    from rbmrec.models.rating import RatingRBM

    if isinstance(model, ImplicitRBM):
        model._validate()
        if model.negative != "mean_field":
            raise NotImplementedError(
                "data-parallel fit supports ImplicitRBM with negative='mean_field', not "
                f"negative={model.negative!r} (persistent chains are one set over all users); "
                "fit it in one process"
            )
        if model.patience is not None:
            raise ValueError(
                "patience (early stopping) needs a validation matrix, which a data-parallel "
                "fit of an ImplicitRBM does not take; set patience=None"
            )
        return
    if not isinstance(model, RatingRBM):
        raise NotImplementedError(
            f"data-parallel fit supports RatingRBM and ImplicitRBM (negative='mean_field'), "
            f"not {type(model).__name__}; fit it in one process"
        )
    model._check_params()


class ImplicitMember:
    """One RBM of an ImplicitRBM's data-parallel fit, on the driver: the model, the
    member's parameters and training arrays on every user (``data``), the fit's shared
    generator and loop settings, and the member's history. Stands for the model in
    :func:`replica_spec`, :func:`start_fit`, :func:`validation`, :func:`driver_state` and
    :func:`finish_fit`."""

    orientation = "user"

    def __init__(
        self, model: Any, data: _TrainData, rng: np.random.Generator, config: TrainerConfig
    ) -> None:
        self.model, self.data, self.rng, self.config = model, data, rng, config
        self.history_: list[dict[str, float]] = []
        self.best_epoch: int | None = None


class _ImplicitReplica:
    """An ImplicitRBM replica: the training arrays of its shard's users and the threads."""

    def __init__(self, data: _TrainData, n_threads: int) -> None:
        self.data, self.num_threads = data, n_threads


def replica_params(model: Any) -> dict[str, Any]:
    """Constructor arguments of a replica of ``model`` (picklable: no callbacks)."""
    params = model.get_params()
    params.update(_DRIVER_ONLY)
    return params


def replica_spec(model: Any) -> tuple[Any, ...]:
    """What a worker needs besides its shard to make a replica of the driver's
    single-orientation ``model`` (a RatingRBM or an :class:`ImplicitMember`): picklable."""
    if isinstance(model, ImplicitMember):
        return ("implicit", replica_params(model.model), model.data.length_ref)
    gaussian = None
    if model.visible == "gaussian":  # the whole training data's standardisation
        gaussian = (model._scale, model.value_range_)
    return ("rating", type(model), replica_params(model), model.values_, gaussian)


def make_replica(spec: tuple[Any, ...], X: sp.csr_matrix, known: Any = None) -> Any:
    """A single-orientation replica set up on one shard.

    Parameters
    ----------
    spec : tuple
        :func:`replica_spec` of the driver's model.
    X : scipy.sparse.csr_matrix, shape (n_users, n_items) in the shard's coordinates
        The shard's ratings: local users x every item (user orientation) or every user x
        local items (item orientation). Rows of the RBM are renumbered ``0 .. n_local - 1``
        in the order of their global indices.
    known : sparse matrix, shape X.shape, optional
        The shard's known pairs without ratings (a conditional RatingRBM's held-out pairs).

    Returns
    -------
    The replica: its training arrays, conditional pattern and persistent chains are the
    shard's; its parameters are overwritten by every :func:`train_rows`.
    """
    if spec[0] == "implicit":
        from rbmrec.models.implicit import ImplicitRBM

        params, length_ref = spec[1], spec[2]
        model = ImplicitRBM(**params)
        X = check_interactions("shard", X)
        n_items, H = X.shape[1], model.n_hidden
        zeros = (
            np.zeros((n_items, H), np.float32),
            np.zeros(n_items, np.float32),
            np.zeros(H, np.float32),
        )
        return _ImplicitReplica(_TrainData.on_rows(model, X, length_ref, zeros), model.num_threads)
    _, cls, params, values, gaussian = spec
    replica = cls(**params)
    replica._init_fit(X, values, known, gaussian)
    return replica


def carve(
    model: Any, X: sp.csr_matrix, validation: Any = None
) -> tuple[sp.csr_matrix, Any, Any, np.ndarray | None]:
    """Check the whole data ``X`` (users x items) as ``model.fit`` does and carve its own
    validation part when the model holds one out (``validation_fraction``) and no
    ``validation`` ratings are given (a RatingRBM's ``fit(X, validation)``; an ImplicitRBM's
    validation matrix is not used).

    Returns
    -------
    train : csr_matrix, shape X.shape
        The ratings to train on (``X`` itself without a validation part).
    validation : csr_matrix or None
    known_pairs : sparse matrix or None
        The held-out pairs of a conditional model (their ratings are unknown, the pairs known).
    values : ndarray, shape (n_levels,), or None
        The rating levels (None for an ImplicitRBM, whose interactions are checked as its
        ``fit`` checks them).
    """
    if isinstance(model, _implicit_class()):
        model._start_fit(X, None)  # checked as its fit checks them; X is canonical already
        return X, None, None, None
    X, V, values, _ = model._prepare(X, validation, None)
    if V is not None:
        return X, V, None, values
    if getattr(model, "validation_fraction", 0) and hasattr(model, "_carve"):
        train, V, known = model._carve(X, None)
        return train, V, known, values
    return X, None, None, values


def start_fit(model: Any, X: sp.csr_matrix, values: np.ndarray, known_pairs: Any) -> TrainerConfig:
    """Set up the driver's single-orientation ``model`` on the training ratings ``X`` exactly
    as its ``fit`` does (parameters, generator, history); the training loop's settings.
    An :class:`ImplicitMember` is set up already (:func:`fit_implicit`)."""
    if isinstance(model, ImplicitMember):
        return model.config
    return model._init_fit(X, values, known_pairs)


def validation(model: Any, V: Any, config: TrainerConfig) -> tuple[Any, Any]:
    """The per-epoch validation of the driver's ``model`` on ``V`` (``evaluate(epoch)`` or
    None, as the trainer takes it) and early stopping (the trainer's), as its ``fit`` sets
    them up: without validation ratings, no early stopping."""
    params = driver_state(model)[0]
    if V is None or not V.nnz:
        config.patience = None
        return None, _BestEpoch(config, 0, False, copies_allowed(config, params))
    vu, vi, vr = stored_entries(V)
    vr = np.asarray(vr, np.float64)

    def evaluate(epoch: int) -> dict[str, float]:
        model._infer = {}  # the parameters were combined in place since the last call
        return T.validation_rmse(model, vu, vi, vr, epoch)

    return evaluate, _BestEpoch(config, 0, True, copies_allowed(config, params))


def driver_state(model: Any) -> tuple[dict[str, np.ndarray], list[str], np.random.Generator]:
    """The driver model's parameters (trained in place), names under weight decay and
    random generator."""
    if isinstance(model, ImplicitMember):
        d = model.data
        return {"W": d.W, "b": d.b, "c": d.c}, ["W"], model.rng
    return model._params, list(model._decay), model._rng


def epoch_rates(
    config: TrainerConfig, decay: list[str], names: list[str], epoch: int
) -> tuple[float, float, dict[str, float]]:
    """Learning rate, momentum and each parameter's ``lr * weight_decay`` of 0-based
    ``epoch``, as the trainer computes them."""
    lr, mom = _rates(config, epoch)
    wd = config.weight_decay
    return lr, mom, {n: lr * wd if n in decay else 0.0 for n in names}


def train_rows(
    replica: Any,
    params: Mapping[str, np.ndarray],
    velocity: Mapping[str, np.ndarray],
    rows: np.ndarray,
    batch_size: int,
    k: int,
    rng: np.random.Generator,
    rates: tuple[float, float, Mapping[str, float]],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]:
    """Train ``replica`` on the mini-batches of ``rows`` from ``params`` and ``velocity``.

    Parameters
    ----------
    replica : RatingRBM or ImplicitRBM replica
        Made by :func:`make_replica`.
    params, velocity : mapping of str to ndarray
        Starting parameters and momentum buffers (copied, never changed).
    rows : ndarray of int64, shape (n,)
        Local rows in training order; batch ``t`` is ``rows[t * batch_size:][:batch_size]``.
    batch_size : int
    k : int
        Gibbs steps of CD.
    rng : numpy.random.Generator
        Source of the batches' row random states, drawn as the trainer's loop draws them.
    rates : (float, float, mapping)
        :func:`epoch_rates` of the epoch.

    Returns
    -------
    params, velocity : dict of str to ndarray
        After the batches (new arrays).
    stats : dict of str to float
        The batches' summed statistics (``train_recon_mse`` and ``count``).
    """
    vel = {name: np.array(v, copy=True) for name, v in velocity.items()}
    config = TrainerConfig(batch_size=int(batch_size))
    lr, mom, lr_wd = rates
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(replica, _ImplicitReplica):
        # Mirrors ImplicitRBM._train_one: batch by batch, one BLAS thread.
        d = replica.data
        own = {"W": d.W, "b": d.b, "c": d.c}
        for name, p in params.items():
            own[name][...] = p
        loop = _EpochLoop(own, vel, partial(_cd_step, d), None, len(rows), config, rng, (), "")
        with num_threads(replica.num_threads), one_blas_thread():
            sums = loop._batches(rows, k, lr, mom, lr_wd)
        return {name: p.copy() for name, p in own.items()}, loop.velocity, sums
    for name, p in params.items():
        replica._params[name][...] = p
    replica._infer = {}
    step = partial(T.train_step, replica, T.gradient_buffers(replica))
    span_step = None
    # Mirrors RatingRBM._train_fitted: softmax models that are not factored train by spans.
    if replica._SPANS and replica.visible == "softmax" and replica.n_factors is None:
        span_step = partial(T.span_step, replica)
    loop = _EpochLoop(replica._params, vel, step, span_step, len(rows), config, rng, (), "")
    with num_threads(replica.num_threads):
        if span_step is not None:
            sums = loop._spans(rows, k, lr, mom, lr_wd)
        else:
            sums = loop._batches(rows, k, lr, mom, lr_wd)
    out = {name: p.copy() for name, p in replica._params.items()}
    return out, loop.velocity, sums


def finish_fit(model: Any, history: list[dict[str, float]], best: Any, seconds: float) -> None:
    """End a data-parallel fit of the driver's single-orientation ``model`` as its ``fit``
    ends: the best epoch's parameters under early stopping (``best``, from
    :func:`validation`), public parameters, the history. An :class:`ImplicitMember` keeps
    its history and best epoch for :func:`fit_implicit`."""
    if isinstance(model, ImplicitMember):
        best.restore(driver_state(model)[0])
        model.history_ = history
        model.best_epoch = best.kept(len(history) - 1 if history else None)
        return
    best.restore(model._params)
    files.round_weights(model._params)  # as fit ends: stored as float16 without loss
    model._set_public()
    model.history_ = history
    kept = best.kept(len(history) - 1 if history else None)
    model.best_epoch_ = None if kept is None else kept + 1
    model.interrupted_ = False
    model.fit_seconds_ = seconds


def refit(model: Any, retrain: Callable[[Any, int], None]) -> None:
    """``refit=True`` of a fitted single-orientation ``model`` as its ``fit`` does it
    (:func:`rbmrec.models.rating_train.refit_on`), the training by ``retrain(model,
    n_epochs)``: from its seed on all the ratings."""
    T.refit_on(model, None, None, retrain)


def fit_both(
    model: Any, fit_member: Callable[[Any], None], V: Any,
    refit_member: Callable[[Any], None] | None = None,
) -> None:  # fmt: skip
    """Fit an ``orientation="both"`` ``model`` as its ``fit`` does: the item member, then
    the user member (seeds spawned from ``random_state``), each by ``fit_member(member)``;
    then the mixture's weights on the validation ratings ``V`` (None: weight 0.5, no
    calibration); then, with ``refit_member``, each member refitted by it."""
    t0 = time.perf_counter()
    seeds = spawn_seeds(model.random_state, len(MEMBERS))
    members: dict[str, Any] = {}
    for name, seed in zip(MEMBERS, seeds, strict=True):
        member = member_of(model, name, seed)
        fit_member(member)
        members[name] = member
    mixture = RatingMixture(members, *fit_weights(members, V))
    if refit_member is not None:
        for member in members.values():
            refit_member(member)
    model._adopt(mixture)
    model.interrupted_ = False
    model.fit_seconds_ = time.perf_counter() - t0


def fit_implicit(
    model: Any, fit_member: Callable[[ImplicitMember], None], X: sp.csr_matrix
) -> None:
    """Fit an ImplicitRBM as its ``fit`` does: its ``n_models`` members one after the other
    from one generator, each initialised on the driver from every user of ``X`` (checked
    interactions, :func:`carve`) and trained by ``fit_member(member)``; then the fitted
    attributes from the members, as in one process."""
    t0 = time.perf_counter()
    _, _, config, rng = model._start_fit(X, None)

    def train_one(X: sp.csr_matrix, valid: Any, config: TrainerConfig, rng: Any) -> tuple:
        member = ImplicitMember(model, _TrainData.initial(model, X, rng), rng, config)
        fit_member(member)
        d = member.data
        return d.W, d.b, d.c, TrainResult(member.history_, member.best_epoch, False, False)

    model._fit_members(X, None, config, rng, train_one)
    model.fit_seconds_ = time.perf_counter() - t0


def is_implicit(model: Any) -> bool:
    """Whether ``model`` is an ImplicitRBM (fitted by :func:`fit_implicit`)."""
    return isinstance(model, _implicit_class())


def _implicit_class() -> type:
    from rbmrec.models.implicit import ImplicitRBM

    return ImplicitRBM
