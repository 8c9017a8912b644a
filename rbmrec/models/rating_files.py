"""Model files of :class:`~rbmrec.models.rating.RatingRBM`: its state for
:func:`rbmrec.models.persistence.save` and the checked restore for
:func:`rbmrec.load` (``RatingRBM._get_state`` / ``_from_state`` call these).

A single RBM stores ``param_*``, ``train_*``, ``values`` and (conditional) ``r_*`` arrays;
an ``orientation="both"`` model stores its members' arrays under ``"item__"`` and
``"user__"`` (:meth:`~rbmrec.models.mixture.RatingMixture.get_state`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from rbmrec.errors import ModelFileError
from rbmrec.models import persistence
from rbmrec.models.mixture import RatingMixture, finite_floats
from rbmrec.models.rating_infer import MAX_LEVELS
from rbmrec.models.rating_train import Pattern
from rbmrec.models.trainer import cd_schedule_json
from rbmrec.models.validation import check_int


def get_state(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON metadata of a fitted RatingRBM (single or "both")."""
    meta = {k: getattr(model, k) for k in model._HYPER}
    meta.update(
        cd_steps=cd_schedule_json(model.cd_steps),
        dtype=np.dtype(model.dtype).name,
        n_users=model.n_users_,
        n_items=model.n_items_,
    )
    mixture = model._mixture_or_none()
    if mixture is not None:
        arrays, mix_meta = mixture.get_state()
        meta.update(**mix_meta, **fit_meta(model))
        return arrays, meta
    arrays = {f"param_{k}": _half_if_exact(k, v) for k, v in model._params.items()}
    indptr, indices, levels = model._train
    arrays.update(
        train_indptr=indptr, train_indices=indices, train_levels=levels, values=model.values_
    )
    if model._R is not None:
        arrays.update(r_indptr=model._R.indptr, r_indices=model._R.indices)
    meta.update(
        history=model.history_,
        best_epoch=model.best_epoch_,
        fitted_batch_size=getattr(model, "batch_size_", None),
        **fit_meta(model),
    )
    if model.visible == "gaussian":
        meta.update(scale=list(model._scale), value_range=list(model.value_range_))
    return arrays, meta


#: Weights that a float32 model holds at float16 precision (:func:`round_weights`) and its
#: file stores as float16: half the size, nothing lost. Biases stay float32.
HALF_WEIGHTS = ("W", "D")
_HALF_MAX = float(np.finfo(np.float16).max)
#: Entries per block of the float16 conversions (no temporary the size of ``W``).
_BLOCK = 1 << 22


def round_weights(params: dict[str, np.ndarray]) -> None:
    """Round a float32 model's weights (:data:`HALF_WEIGHTS`) to the nearest float16 values,
    in place, at the end of ``fit``, so that its file stores them as float16 losslessly.

    A weight moves by at most 2^-11 of its size (about 2e-5 for a typical 0.05); on ML-1M
    the default model's validation and test RMSE change by under 1e-6 (docs/performance.md).
    Arrays with an entry beyond float16's range (65504) are left as they are.
    """
    for name in HALF_WEIGHTS:
        p = params.get(name)
        if p is None or p.dtype != np.float32 or not p.flags.c_contiguous:
            continue
        flat = p.reshape(-1)
        blocks = range(0, flat.size, _BLOCK)
        if any(np.abs(flat[a : a + _BLOCK]).max(initial=0.0) > _HALF_MAX for a in blocks):
            continue
        for a in blocks:
            flat[a : a + _BLOCK] = flat[a : a + _BLOCK].astype(np.float16)


def _half_if_exact(name: str, p: np.ndarray) -> np.ndarray:
    """``p`` as float16 when it is a float32 weight array that float16 holds exactly, else
    ``p`` itself."""
    if name not in HALF_WEIGHTS or p.dtype != np.float32:
        return p
    out = np.empty(p.shape, dtype=np.float16)
    src, dst = p.reshape(-1), out.reshape(-1)
    for a in range(0, src.size, _BLOCK):
        with np.errstate(over="ignore"):
            half = src[a : a + _BLOCK].astype(np.float16)
        if not np.array_equal(half.astype(np.float32), src[a : a + _BLOCK]):
            return p
        dst[a : a + _BLOCK] = half
    return out


def _widen(arrays: dict[str, np.ndarray], prefix: str, dtype: np.dtype) -> dict[str, np.ndarray]:
    """A float32 model's float16 weight arrays back in float32 (files that store them
    so: :func:`_half_if_exact`)."""
    if dtype != np.float32:
        return arrays
    out = dict(arrays)
    for name in HALF_WEIGHTS:
        key = f"{prefix}param_{name}"
        if key in out and np.asarray(out[key]).dtype == np.float16:
            out[key] = np.asarray(out[key]).astype(np.float32)
    return out


def fit_meta(model: Any) -> dict[str, Any]:
    """Seed and fit bookkeeping saved with the model (see :func:`restore_fit_meta`)."""
    fs = getattr(model, "fit_seconds_", None)
    return {
        "random_state": persistence.seed_to_json(model.random_state),
        "interrupted": bool(getattr(model, "interrupted_", False)),
        "fit_seconds": None if fs is None else float(fs),
    }


def restore_fit_meta(model: Any, meta: dict[str, Any]) -> None:
    """Inverse of :func:`fit_meta`; files written before these fields get defaults."""
    model.random_state = persistence.seed_from_json(meta.get("random_state"))
    model.interrupted_ = bool(meta.get("interrupted", False))
    fs = meta.get("fit_seconds")
    model.fit_seconds_ = None if fs is None else float(fs)


def restore(cls: type, arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str) -> Any:
    """The model saved as ``meta`` and the arrays ``prefix + name`` (a "both" model's
    members have the prefixes ``"item__"`` and ``"user__"``), after checking them.

    Raises
    ------
    ModelFileError
        Naming the array or metadata field that is inconsistent; the kernels index memory
        with the arrays unchecked, so a damaged file must not get that far.
    """
    # Files written before a hyperparameter existed get its default.
    hyper = {k: meta[k] for k in cls._HYPER if k in meta}
    cd = meta["cd_steps"]
    model = cls(**hyper, cd_steps=cd if isinstance(cd, int) else [tuple(p) for p in cd])
    model.dtype = np.dtype(meta["dtype"])
    try:
        model._check_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"the model's hyperparameters are invalid: {exc}") from None
    n_users = check_int("n_users", meta["n_users"], 1)
    n_items = check_int("n_items", meta["n_items"], 1)
    if "members" in meta:
        if model.orientation != "both" or prefix:
            raise ModelFileError(
                f"{prefix}orientation is {model.orientation!r} but the file holds members"
            )
        model._adopt(RatingMixture.restore(model, arrays, meta, n_users, n_items))
        restore_fit_meta(model, meta)
        return model
    if model.orientation == "both":
        raise ModelFileError("orientation is 'both' but the file holds no members")
    model.n_users_, model.n_items_ = n_users, n_items
    if model.visible == "gaussian":
        mu, sd = finite_floats("scale", meta["scale"], 2)
        lo, hi = finite_floats("value_range", meta["value_range"], 2)
        if sd <= 0 or lo > hi:
            raise ModelFileError(
                f"scale {meta['scale']} needs a spread > 0 and value_range "
                f"{meta['value_range']} lo <= hi"
            )
        model._scale = (mu, sd)
        model.value_range_ = (lo, hi)
    model.values_, model._train, model._params, model._R = checked_arrays(model, arrays, prefix)
    model.history_ = meta["history"]
    model.best_epoch_ = meta["best_epoch"]
    # Files written before the batch size was saved: an explicit batch_size was used as is.
    bs = meta.get("fitted_batch_size", model.batch_size)
    model.batch_size_ = None if bs is None else int(bs)
    restore_fit_meta(model, meta)
    model._set_public()
    return model


def checked_arrays(
    model: Any, arrays: dict[str, np.ndarray], prefix: str
) -> tuple[
    np.ndarray,
    tuple[np.ndarray, np.ndarray, np.ndarray],
    dict[str, np.ndarray],
    Pattern | None,
]:
    """``values_``, ``_train``, ``_params`` and ``_R`` of a single RBM from a model file.

    Every array must have the shape the metadata (already on ``model``) and the other
    arrays imply, the model's float dtype for parameters (integers for indices), finite
    parameters, and indices and levels in range.

    Raises
    ------
    ModelFileError
        Naming the array and the problem.
    """
    dtype = np.dtype(model.dtype)
    arrays = _widen(arrays, prefix, dtype)
    gauss = model.visible == "gaussian"
    H = model.n_hidden
    if model.orientation == "user":
        n_rows, n_groups, groups = model.n_users_, model.n_items_, "n_items"
    else:
        n_rows, n_groups, groups = model.n_items_, model.n_users_, "n_users"

    check = partial(_check_array, arrays, prefix)
    values = check("values", (None,), ("n_levels",), kind="iuf", finite=True)
    if gauss and len(values):
        raise ModelFileError(f"array {prefix + 'values'!r} must be empty for a gaussian model")
    if not gauss and not (2 <= len(values) <= MAX_LEVELS and np.all(np.diff(values) > 0)):
        raise ModelFileError(
            f"array {prefix + 'values'!r} must hold 2 to {MAX_LEVELS} increasing rating "
            f"levels, got {values[:10].tolist()}"
        )
    L = len(values)
    unit, unit_dims = ((n_groups,), (groups,)) if gauss else ((n_groups, L), (groups, "n_levels"))
    par = {"dtype": dtype, "finite": True}
    params = {
        "b": check("param_b", unit, unit_dims, **par),
        "c": check("param_c", (H,), ("n_hidden",), **par),
    }
    if model.n_factors is None:
        params["W"] = check("param_W", (*unit, H), (*unit_dims, "n_hidden"), **par)
    else:
        C = model.n_factors
        params["A"] = check("param_A", (*unit, C), (*unit_dims, "n_factors"), **par)
        params["B"] = check("param_B", (C, H), ("n_factors", "n_hidden"), **par)
    indptr, indices = persistence.check_file_csr(
        arrays, prefix + "train_indptr", prefix + "train_indices", n_rows, n_groups
    )
    nnz = (len(indices),)
    if gauss:
        levels = check("train_levels", nnz, ("nnz",), dtype=dtype, finite=True)
    else:
        levels = check("train_levels", nnz, ("nnz",), kind="iu")
        persistence.check_file_range(prefix + "train_levels", levels, 0, L)
        levels = levels.astype(np.int8)
    R = None
    has_r = prefix + "r_indptr" in arrays or prefix + "r_indices" in arrays
    if model.conditional:
        params["D"] = check("param_D", (n_groups, H), (groups, "n_hidden"), **par)
        r_indptr, r_indices = persistence.check_file_csr(
            arrays, prefix + "r_indptr", prefix + "r_indices", n_rows, n_groups
        )
        R = Pattern(r_indptr.astype(np.int64), r_indices.astype(np.int32))
    elif has_r:
        raise ModelFileError(
            f"the file holds {prefix}r_indptr/{prefix}r_indices but the model is not conditional"
        )
    return values, (indptr, indices, levels), params, R


def _check_array(
    arrays: dict[str, np.ndarray], prefix: str, name: str, shape: tuple, dims: tuple, **kw: Any
) -> np.ndarray:
    """:func:`~rbmrec.models.persistence.check_file_array` of ``prefix + name``."""
    return persistence.check_file_array(arrays, prefix + name, shape, dims=dims, **kw)
