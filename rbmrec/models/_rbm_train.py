"""What :class:`rbmrec.RBM` hands the shared trainer (:mod:`rbmrec.models.trainer`).

The initial parameters drawn from the data, the persistent chains, the CD statistics of a
mini-batch from the engine's kernels, and the per-epoch monitors (free energy,
pseudo-log-likelihood, free-energy gap) recorded in ``history_``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from rbmrec.engine import bernoulli as _bern
from rbmrec.engine import exact as _exact
from rbmrec.engine import softmax as _soft
from rbmrec.engine._random import row_states
from rbmrec.models._rbm_rows import Rows

if TYPE_CHECKING:
    from rbmrec.models.rbm import RBM

#: Kernel code of each non-softmax visible family.
FAMILY = {"bernoulli": _bern.BERNOULLI, "gaussian": _bern.GAUSSIAN}
#: Rows of the training data used for the per-epoch free energy / pseudo-likelihood.
MONITOR_ROWS = 256


def initial_params(
    model: RBM, data: Rows, n_visible: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Initial weights and visible biases of ``model`` for ``data``, and softmax's K.

    Weights are ``N(0, init_scale)``; visible biases are the log-odds of each unit's mean
    (bernoulli, clipped to [1e-3, 1 - 1e-3]), its mean (gaussian), or the log of each
    level's smoothed frequency (softmax, counts start at 1).

    Returns
    -------
    W : ndarray, shape (n_visible, n_hidden) or (n_visible, K, n_hidden), the ``dtype``
    b : ndarray of float64, shape (n_visible,) or (n_visible, K)
    K : int or None
        Softmax: ``n_levels``, or the data's highest level + 1 (at least 2).

    Raises
    ------
    ValueError
        If ``init_scale`` draws weights beyond the range of the parameter dtype.
    """
    dt, nh = model._dtype, model.n_hidden
    K = None
    if model.visible == "softmax":
        K = model.n_levels if model.n_levels is not None else max(2, int(data.vals.max()) + 1)
        counts = np.ones((n_visible, K))
        np.add.at(counts, (data.indices, data.vals.astype(np.int64)), 1.0)
        b = np.log(counts / counts.sum(axis=1, keepdims=True))
        W = rng.normal(0.0, model.init_scale, size=(n_visible, K, nh))
    else:
        mean = np.zeros(n_visible)
        np.add.at(mean, data.indices, data.vals.astype(np.float64))
        mean /= data.n_rows
        if model.visible == "bernoulli":
            p = np.clip(mean, 1e-3, 1 - 1e-3)
            b = np.log(p / (1 - p))
        else:
            b = mean
        W = rng.normal(0.0, model.init_scale, size=(n_visible, nh))
    with np.errstate(over="ignore"):
        W = np.ascontiguousarray(W, dtype=dt)
    if not np.all(np.isfinite(W)):
        raise ValueError(
            f"init_scale={model.init_scale:g} draws initial weights beyond the range of the "
            f"parameter dtype {dt} (|w| <= {float(np.finfo(dt).max):.3g}); use a smaller "
            "init_scale"
        )
    return W, b, K


def chains_for(model: RBM, data: Rows, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """The negative-phase chains the CD kernels read and (when persistent) advance.

    Softmax PCD: one chain per training row, restarted at the data. Binary/Gaussian PCD:
    ``batch_size`` chains kept on the model (``_chains``) across batches and calls, drawn
    from the data when missing or of another size. Plain CD: an empty array.
    """
    dt = model._param_dtype
    if not model.persistent:
        if model._family == "softmax":
            return np.zeros(0, dtype=np.int8)
        return np.zeros((0, model.n_visible_), dtype=dt)
    if model._family == "softmax":
        return data.vals.copy()
    if model._chains is None or model._chains.shape[0] != batch_size:
        start = rng.integers(0, data.n_rows, size=batch_size)
        model._chains = data.subset(start).dense(model.n_visible_).astype(dt)
    return model._chains


def cd_step(
    model: RBM, data: Rows, chains: np.ndarray
) -> Callable[[np.ndarray, int, np.random.Generator], tuple[dict, dict]]:
    """The trainer's :class:`~rbmrec.models.trainer.BatchStep`: CD-k (PCD-k) statistics of
    the batch ``rows`` of ``data``, with the reconstruction error and its count."""
    dt = model._param_dtype
    nh = model.weights_.shape[-1]
    off0 = model._no_offset()
    persistent = bool(model.persistent)

    def step(rows: np.ndarray, k: int, rng: np.random.Generator) -> tuple[dict, dict]:
        W, b, c = model.weights_, model.visible_bias_, model.hidden_bias_
        states = row_states(rng, len(rows))
        gW = np.empty_like(W)
        gb = np.empty_like(b)
        gc = np.empty_like(c)
        h_diff = np.empty((len(rows), nh), dtype=dt)
        if model._family == "softmax":
            res = _soft.softmax_cd(
                data.indptr, data.indices, data.vals, rows, W, b, c, off0, k, states,
                chains, persistent, gW, gb, gc, h_diff,
            )  # fmt: skip
        else:
            res = _bern.cd(
                data.indptr, data.indices, data.vals, rows, W, b, c, model.sigma_,
                FAMILY[model._family], off0, k, states, chains, persistent, gW, gb, gc,
                h_diff,
            )  # fmt: skip
        return {"W": gW, "b": gb, "c": gc}, {"recon_error": res[0], "count": res[1]}

    return step


def epoch_monitors(
    model: RBM, data: Rows, valid: Rows | None, rng: np.random.Generator
) -> Callable[[int], Mapping[str, float]]:
    """The trainer's ``evaluate``: per-epoch ``free_energy`` of up to :data:`MONITOR_ROWS`
    training rows (drawn once, here), bernoulli's ``pseudo_log_likelihood`` and, with
    validation rows, ``free_energy_gap``."""
    monitor = data.subset(np.sort(rng.permutation(data.n_rows)[:MONITOR_ROWS]))
    flip = rng.integers(0, model.n_visible_, size=monitor.n_rows)

    def evaluate(epoch: int) -> dict[str, float]:
        f_train = float(np.mean(model._free_energy_rows(monitor)))
        out = {"free_energy": f_train}
        if model._family == "bernoulli":
            out["pseudo_log_likelihood"] = pseudo_log_likelihood(model, monitor, flip)
        if valid is not None:
            out["free_energy_gap"] = float(np.mean(model._free_energy_rows(valid))) - f_train
        return out

    return evaluate


def pseudo_log_likelihood(model: RBM, monitor: Rows, flip: np.ndarray) -> float:
    """Stochastic pseudo-log-likelihood: ``n_visible * log sigmoid(F(v~) - F(v))``, with
    ``v~`` each row with its unit ``flip[row]`` flipped (as scikit-learn's BernoulliRBM)."""
    V = monitor.dense(model.n_visible_)
    Vf = V.copy()
    idx = np.arange(len(V))
    Vf[idx, flip] = 1.0 - Vf[idx, flip]
    args = (model.weights_, model.visible_bias_, model.hidden_bias_)
    f = _exact.free_energy("bernoulli", V, *args)
    ff = _exact.free_energy("bernoulli", Vf, *args)
    return float(np.mean(-model.n_visible_ * np.logaddexp(0.0, -(ff - f))))
