"""Replicas of a data-parallel fit of a :class:`~rbmrec.models.rating.RatingRBM`.

A data-parallel fit (:mod:`rbmrec.distributed`) keeps the model on the driver and one
*replica* per worker: the same single-orientation model set up on a shard of the training
rows (users of a user-based RBM, items of an item-based one; each row whole in one shard).
Every round, each replica trains some mini-batches of its rows from the driver's parameters
and momentum buffers with the model's own step (:func:`rbmrec.models.rating_train.span_step`
or :func:`~rbmrec.models.rating_train.train_step` and the trainer's momentum update, through
the trainer's batch loop), and the driver combines the results.

This module is the whole interface between that fit and the model's internals: setting up
the driver's model and a replica (:func:`start_fit`, :func:`make_replica`), one round of
batches (:func:`train_rows`), the epoch's rates (:func:`epoch_rates`), the end of a fit
(:func:`finish_fit`) and the item + user mixture of ``orientation="both"``
(:func:`fit_both`). With one replica holding every row, the fit performs the single-process
``fit``'s arithmetic in the same order: the driver draws the shuffles and the replicas' random
states from the model's generator as :func:`rbmrec.models.trainer.train` does.
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
from rbmrec.models._estimator import num_threads
from rbmrec.models._sparse import stored_entries
from rbmrec.models.mixture import MEMBERS, RatingMixture, fit_weights, member_of, spawn_seeds
from rbmrec.models.trainer import TrainerConfig, _BestEpoch, _EpochLoop, _rates, copies_allowed

#: Constructor arguments a replica never takes from the driver's model: a replica reports
#: nothing and calls nothing back (the driver does). Its ``num_threads`` is the model's: 0,
#: the default, uses every Numba thread of the worker process (``NUMBA_NUM_THREADS``).
_DRIVER_ONLY = {"progress": False, "callbacks": ()}


def check_supported(model: Any) -> None:
    """NotImplementedError naming what a data-parallel fit supports, unless ``model`` is.

    Supported: :class:`~rbmrec.models.rating.RatingRBM` with softmax visibles, any
    orientation (``"both"`` fits its members one after the other), conditional or not,
    factored or not, CD or persistent CD.
    """
    from rbmrec.models.rating import RatingRBM

    if not isinstance(model, RatingRBM):
        raise NotImplementedError(
            f"data-parallel fit supports RatingRBM (visible='softmax', any orientation), not "
            f"{type(model).__name__}; fit it in one process"
        )
    model._check_params()
    if model.visible != "softmax":
        raise NotImplementedError(
            "data-parallel fit supports RatingRBM with visible='softmax', not "
            f"visible={model.visible!r}; fit it in one process"
        )


def replica_params(model: Any) -> dict[str, Any]:
    """Constructor arguments of a replica of ``model`` (picklable: no callbacks)."""
    params = model.get_params()
    params.update(_DRIVER_ONLY)
    return params


def make_replica(
    cls: type, params: Mapping[str, Any], X: sp.csr_matrix, values: np.ndarray, known: Any = None
) -> Any:
    """A single-orientation model of class ``cls`` set up on one shard.

    Parameters
    ----------
    cls : type
        The model class (RatingRBM).
    params : mapping
        Constructor arguments (:func:`replica_params`), ``orientation`` "user" or "item".
    X : scipy.sparse.csr_matrix, shape (n_users, n_items) in the shard's coordinates
        The shard's ratings: local users x every item (user orientation) or every user x
        local items (item orientation). Rows of the RBM are renumbered ``0 .. n_local - 1``
        in the order of their global indices.
    values : ndarray, shape (n_levels,)
        The rating levels of the whole data set.
    known : sparse matrix, shape X.shape, optional
        The shard's known pairs without ratings (a conditional model's held-out pairs).

    Returns
    -------
    The replica: its training arrays, conditional pattern and persistent chains are the
    shard's; its parameters are overwritten by every :func:`train_rows`.
    """
    replica = cls(**params)
    replica._init_fit(X, values, known)
    return replica


def carve(model: Any, X: sp.csr_matrix) -> tuple[sp.csr_matrix, Any, Any, np.ndarray]:
    """Check the whole data ``X`` (users x items) as ``model.fit`` does and carve its own
    validation part when the model holds one out (``validation_fraction``).

    Returns
    -------
    train : csr_matrix, shape X.shape
        The ratings to train on (``X`` itself without a validation part).
    validation : csr_matrix or None
    known_pairs : sparse matrix or None
        The held-out pairs of a conditional model (their ratings are unknown, the pairs known).
    values : ndarray, shape (n_levels,)
        The rating levels.
    """
    X, _, values, _ = model._prepare(X, None, None)
    if getattr(model, "refit", False):
        raise NotImplementedError("data-parallel fit does not support refit=True")
    if getattr(model, "validation_fraction", 0) and hasattr(model, "_carve"):
        train, V, known = model._carve(X, None)
        return train, V, known, values
    return X, None, None, values


def start_fit(model: Any, X: sp.csr_matrix, values: np.ndarray, known_pairs: Any) -> TrainerConfig:
    """Set up the driver's single-orientation ``model`` on the training ratings ``X`` exactly
    as its ``fit`` does (parameters, generator, history); the training loop's settings."""
    return model._init_fit(X, values, known_pairs)


def validation(model: Any, V: Any, config: TrainerConfig) -> tuple[Any, Any]:
    """The per-epoch validation of the driver's ``model`` on ``V`` (``evaluate(epoch)`` or
    None, as the trainer takes it) and early stopping (the trainer's), as its ``fit`` sets
    them up: without validation ratings, no early stopping."""
    if V is None or not V.nnz:
        config.patience = None
        return None, _BestEpoch(config, 0, False, copies_allowed(config, model._params))
    vu, vi, vr = stored_entries(V)
    vr = np.asarray(vr, np.float64)

    def evaluate(epoch: int) -> dict[str, float]:
        model._infer = {}  # the parameters were combined in place since the last call
        return T.validation_rmse(model, vu, vi, vr, epoch)

    return evaluate, _BestEpoch(config, 0, True, copies_allowed(config, model._params))


def driver_state(model: Any) -> tuple[dict[str, np.ndarray], list[str], np.random.Generator]:
    """The driver model's parameters (trained in place), names under weight decay and
    random generator."""
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
    replica : RatingRBM
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
    for name, p in params.items():
        replica._params[name][...] = p
    vel = {name: np.array(v, copy=True) for name, v in velocity.items()}
    replica._infer = {}
    step = partial(T.train_step, replica, T.gradient_buffers(replica))
    span_step = None
    # Mirrors RatingRBM._train_fitted: softmax models that are not factored train by spans.
    if replica._SPANS and replica.visible == "softmax" and replica.n_factors is None:
        span_step = partial(T.span_step, replica)
    config = TrainerConfig(batch_size=int(batch_size))
    loop = _EpochLoop(replica._params, vel, step, span_step, len(rows), config, rng, (), "")
    lr, mom, lr_wd = rates
    rows = np.asarray(rows, dtype=np.int64)
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
    :func:`validation`), public parameters, the history."""
    best.restore(model._params)
    files.round_weights(model._params)  # as fit ends: stored as float16 without loss
    model._set_public()
    model.history_ = history
    kept = best.kept(len(history) - 1 if history else None)
    model.best_epoch_ = None if kept is None else kept + 1
    model.interrupted_ = False
    model.fit_seconds_ = seconds


def fit_both(model: Any, fit_member: Callable[[Any], None], V: Any) -> None:
    """Fit an ``orientation="both"`` ``model`` as its ``fit`` does: the item member, then
    the user member (seeds spawned from ``random_state``), each by ``fit_member(member)``;
    then the mixture's weights on the validation ratings ``V`` (None: weight 0.5, no
    calibration)."""
    t0 = time.perf_counter()
    seeds = spawn_seeds(model.random_state, len(MEMBERS))
    members: dict[str, Any] = {}
    for name, seed in zip(MEMBERS, seeds, strict=True):
        member = member_of(model, name, seed)
        fit_member(member)
        members[name] = member
    model._adopt(RatingMixture(members, *fit_weights(members, V)))
    model.interrupted_ = False
    model.fit_seconds_ = time.perf_counter() - t0
