"""The model-file state of :class:`rbmrec.RBM`: what :func:`rbmrec.save` writes, and the
checks that turn a file's arrays and metadata back into a model.

The file holds the parameters (``weights``, ``visible_bias``, ``hidden_bias``, ``sigma``),
the training state (``velocity_*`` momentum buffers, persistent ``chains``, the random
stream's position) and the constructor arguments, as arrays plus JSON metadata (no pickle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rbmrec.errors import ModelFileError
from rbmrec.models._estimator import seed_generator
from rbmrec.models.persistence import (
    check_file_array,
    generator_from_json,
    generator_to_json,
    seed_from_json,
    seed_to_json,
)
from rbmrec.models.trainer import cd_schedule_json
from rbmrec.models.validation import check_int

if TYPE_CHECKING:
    from rbmrec.models.rbm import RBM


def _params_json(model: RBM) -> tuple[dict[str, Any], np.ndarray | None]:
    """The constructor arguments as JSON, and the ``sigma`` argument when it is an array.

    The ``sigma`` argument is saved as given (None, a number or an array), apart from the
    fitted ``sigma_``, so a loaded model refits like the saved one (``sigma=None`` fits data
    of any width). ``callback`` and ``progress`` are not saved.
    """
    sigma_param, sigma_array = None, None
    if model.sigma is not None and np.ndim(model.sigma) == 0:
        sigma_param = float(model.sigma)
    elif model.sigma is not None:
        sigma_array = np.asarray(model.sigma)
    params = {
        "n_hidden": int(model.n_hidden),
        "visible": model.visible,
        "n_levels": model.n_levels,
        "sigma": sigma_param,
        "cd_steps": cd_schedule_json(model.cd_steps),
        "persistent": bool(model.persistent),
        "learning_rate": float(model.learning_rate),
        "momentum": float(model.momentum),
        "weight_decay": float(model.weight_decay),
        "batch_size": int(model.batch_size),
        "n_epochs": int(model.n_epochs),
        "init_scale": float(model.init_scale),
        "dtype": str(np.dtype(model.dtype)),
        # an int, a SeedSequence (as a dict) or None (also for a Generator, whose position
        # is the file's "rng_state")
        "random_state": seed_to_json(model.random_state),
        "num_threads": int(model.num_threads),
    }
    return params, sigma_array


def get_state(model: RBM) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON metadata of a fitted, unchanged ``model`` (see :meth:`RBM.save`)."""
    arrays = {
        "weights": model.weights_,
        "visible_bias": model.visible_bias_,
        "hidden_bias": model.hidden_bias_,
        "sigma": model.sigma_,  # the fitted sigma_
    }
    params, sigma_array = _params_json(model)
    if sigma_array is not None:
        arrays["sigma_param"] = sigma_array
    # Training state, so partial_fit (and sample) after load continue where they stopped.
    for name, v in (model._velocity or {}).items():
        arrays[f"velocity_{name}"] = v
    if model._chains is not None:
        arrays["chains"] = model._chains
    meta = {
        "params": params,
        "n_visible": int(model.n_visible_),
        "n_levels_": model.n_levels_,
        "history": model.history_,
        "rng_state": generator_to_json(model._rng),
    }
    return arrays, meta


def from_state(cls: type[RBM], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RBM:
    """A model of class ``cls`` from a file's arrays and metadata.

    Raises
    ------
    ModelFileError
        If the saved arguments are invalid, or an array does not match them.
    """
    params = dict(meta["params"])
    if isinstance(params["cd_steps"], list):
        params["cd_steps"] = [tuple(p) for p in params["cd_steps"]]
    # Files written before SeedSequences were saved hold an int or None.
    params["random_state"] = seed_from_json(params.get("random_state"))
    old_file = "sigma" not in params  # written before the sigma argument was saved
    params.pop("sigma", None)
    model = cls(**params)
    if "sigma_param" in arrays:
        model.sigma = arrays["sigma_param"]
    elif not old_file:
        model.sigma = meta["params"]["sigma"]
    elif model.visible == "gaussian":
        model.sigma = _sigma_argument(np.asarray(arrays["sigma"]))
    try:
        model._config(1)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"the model's arguments are invalid: {exc}") from None
    restore_arrays(model, arrays, meta)
    model.history_ = list(meta.get("history", []))
    model.interrupted_ = False
    # Files written before the training state was saved restart the random stream at the
    # seed and momentum at zero.
    rng_state = meta.get("rng_state")
    if rng_state is None:
        model._rng = seed_generator(model.random_state)
    else:
        model._rng = generator_from_json(rng_state)
    return model


def _levels(model: RBM, K: Any) -> int | None:
    """The file's ``n_levels_``, checked against the model's family and ``n_levels``."""
    if model.visible == "softmax":
        K = check_int("n_levels_", K, 2, 127)
        if model.n_levels is not None and model.n_levels != K:
            raise ModelFileError(f"n_levels is {model.n_levels} but n_levels_ is {K}")
    elif K is not None:
        raise ModelFileError(f"n_levels_ is {K!r}, expected None for visible={model.visible!r}")
    return K


def _training_state(
    arrays: dict[str, np.ndarray], fitted: dict[str, np.ndarray], n_vis: int, dt: np.dtype
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The momentum buffers (one per fitted parameter, its shape) and persistent chains."""
    velocity = {}
    for n, p in fitted.items():
        if f"velocity_{n}" in arrays:
            v = check_file_array(arrays, f"velocity_{n}", p.shape, kind="f", finite=True)
            velocity[n] = np.ascontiguousarray(v, dtype=dt)
    chains = None
    if "chains" in arrays:
        chains = check_file_array(arrays, "chains", (None, n_vis), kind="f", finite=True)
        chains = np.ascontiguousarray(chains, dtype=dt)
    return velocity, chains


def restore_arrays(model: RBM, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Check a model file's arrays against its metadata and each other, then adopt them.

    Raises
    ------
    ModelFileError
        Naming the array (or metadata field) that has the wrong shape, dtype or values.
    """
    dt = model._dtype
    n_vis = check_int("n_visible", meta["n_visible"], 1)
    K = _levels(model, meta["n_levels_"])
    nl = () if K is None else (K,)
    ln = () if K is None else ("n_levels",)
    H = model.n_hidden
    W = check_file_array(
        arrays, "weights", (n_vis, *nl, H), dims=("n_visible", *ln, "n_hidden"), dtype=dt,
        finite=True,
    )  # fmt: skip
    b = check_file_array(
        arrays, "visible_bias", (n_vis, *nl), dims=("n_visible", *ln), dtype=dt, finite=True
    )
    c = check_file_array(arrays, "hidden_bias", (H,), dims=("n_hidden",), dtype=dt, finite=True)
    sigma = check_file_array(arrays, "sigma", (n_vis,), dims=("n_visible",), dtype=dt, finite=True)
    with np.errstate(divide="ignore", over="ignore"):
        if not (np.all(sigma > 0) and np.all(np.isfinite(1.0 / sigma))):
            raise ModelFileError("array 'sigma' must be > 0 with a finite reciprocal")
    velocity, chains = _training_state(arrays, {"W": W, "b": b, "c": c}, n_vis, dt)
    model.weights_, model.visible_bias_, model.hidden_bias_, model.sigma_ = W, b, c, sigma
    model._fitted_visible = model.visible
    model.n_visible_, model.n_levels_ = n_vis, K
    model._velocity = velocity or None
    model._chains = chains
    try:  # e.g. a sigma argument that is not the fitted sigma_
        model._check_matches_fit("load")
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None


def _sigma_argument(sigma: np.ndarray) -> float | np.ndarray | None:
    """A ``sigma`` argument giving the fitted ``sigma_`` (files without the argument saved).

    None when every unit has sigma 1 (the default), a number when all units share one, else
    the array itself (which then fixes the number of visible units of a refit).
    """
    if sigma.ndim == 1 and sigma.size and np.all(sigma == sigma[0]):
        return None if sigma[0] == 1 else float(sigma[0])
    return sigma
