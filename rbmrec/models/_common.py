"""Validation and bookkeeping helpers shared by the models."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError, NotFittedError
from rbmrec.models._sparse import repeated_entry


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as int after checking type and range ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def epoch_batch(batch_size: Any, n_rows: int, default: int, min_updates: int) -> Any:
    """Mini-batch size for ``n_rows`` training rows; ``batch_size=None`` means "automatic".

    Automatic: ``default``, or ``ceil(n_rows / min_updates)`` when that is smaller, so every
    epoch makes at least ``min_updates`` parameter updates. Learning-rate schedules and early
    stopping count epochs; on small data a fixed batch leaves only a handful of updates per
    epoch, and the rate decays before training has left its initial plateau. An explicit
    ``batch_size`` is returned unchanged (the trainer validates it).
    """
    if batch_size is not None:
        return batch_size
    return max(1, min(default, -(-int(n_rows) // min_updates)))


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_sparse_structure(name: str, X: Any) -> None:
    """Raise DataError unless the index arrays of the scipy sparse matrix ``X`` are consistent.

    scipy checks little when a matrix is built from raw arrays (``csr_matrix((data, indices,
    indptr), shape)`` accepts any index values), and the Numba kernels and scipy's own C++
    conversions index memory with them unchecked: an index out of range crashes the process
    instead of raising. This runs before any of them sees ``X`` and never modifies it.

    Checked: CSR/CSC/BSR ``indptr`` (integer, one entry per row (CSR) or column (CSC) plus one,
    starting at 0, never decreasing, ending within ``indices`` and ``data``) and ``indices``
    (integer, in range); COO coordinates (integer, in range). Other formats (LIL, DOK, DIA)
    hold no raw index arrays scipy trusts, so there is nothing to check.

    Raises
    ------
    DataError
        Naming the array and the problem, e.g. ``column index 1000000 >= 150``.
    """
    fmt = getattr(X, "format", None)
    if len(X.shape) != 2:
        raise DataError(f"{name} must be 2-D, got shape {X.shape}")
    if fmt == "coo":
        coords = (np.asarray(X.row), np.asarray(X.col))
        for axis, (idx, what) in enumerate(zip(coords, ("row", "column"), strict=True)):
            _check_index_array(name, f"{what} indices", idx, X.shape[axis], what)
        if not (len(coords[0]) == len(coords[1]) == len(np.asarray(X.data))):
            raise DataError(f"{name} (COO) has row, col and data arrays of different lengths")
        return
    if fmt not in ("csr", "csc", "bsr"):
        return
    n_rows, n_cols = X.shape
    if fmt == "bsr":
        r, c = X.blocksize
        n_rows, n_cols = n_rows // r, n_cols // c
    n_major, n_minor = (n_rows, n_cols) if fmt != "csc" else (n_cols, n_rows)
    major, minor = ("row", "column") if fmt != "csc" else ("column", "row")
    indptr, indices = np.asarray(X.indptr), np.asarray(X.indices)
    n_data = len(X.data)
    if indptr.dtype.kind not in "iu":
        raise DataError(f"{name} has a non-integer index pointer (indptr dtype {indptr.dtype})")
    if indptr.ndim != 1 or len(indptr) != n_major + 1:
        raise DataError(
            f"{name} ({fmt.upper()}, shape {X.shape}) must have an index pointer of "
            f"{n_major + 1} entries, got shape {indptr.shape}"
        )
    if indptr[0] != 0:
        raise DataError(f"{name} has an index pointer starting at {indptr[0]}, not 0")
    steps = np.diff(indptr)
    if steps.size and steps.min() < 0:
        at = int(np.flatnonzero(steps < 0)[0])
        raise DataError(
            f"{name} has a decreasing index pointer at {major} {at} "
            f"(indptr[{at}] = {indptr[at]} > indptr[{at + 1}] = {indptr[at + 1]})"
        )
    nnz = int(indptr[-1])
    if indices.ndim != 1 or nnz > len(indices) or nnz > n_data:
        raise DataError(
            f"{name} has an index pointer ending at {nnz} but only {len(indices)} indices "
            f"and {n_data} stored values"
        )
    _check_index_array(name, f"{minor} indices", indices[:nnz], n_minor, minor)


def _check_index_array(name: str, label: str, idx: np.ndarray, size: int, what: str) -> None:
    """DataError unless ``idx`` is an integer array with values in ``[0, size)``."""
    if idx.dtype.kind not in "iu":
        raise DataError(f"{name} has non-integer {label} (dtype {idx.dtype})")
    if idx.size == 0:
        return
    lo, hi = idx.min(), idx.max()
    if lo < 0:
        raise DataError(f"{name} has a negative {what} index {lo}")
    if hi >= size:
        raise DataError(f"{name} has {what} index {hi} >= {size} (the number of {what}s)")


def check_csr(
    name: str, X: Any, *, allow_empty: bool = False, duplicates: str = "sum"
) -> sp.csr_matrix:
    """Validate a scipy sparse matrix of finite values; return canonical CSR (a copy).

    Parameters
    ----------
    name : str
        Name of the argument, for error messages.
    X : scipy sparse matrix or array
    allow_empty : bool, default False
        Accept a matrix without stored entries.
    duplicates : {"sum", "error"}, default "sum"
        Entries stored more than once for the same (row, column): summed (scipy's
        convention), or rejected, for data where a sum means nothing (ratings).

    Raises
    ------
    TypeError
        If ``X`` is not a scipy sparse matrix/array or does not hold numbers.
    DataError
        If its index arrays are malformed (:func:`check_sparse_structure`), it holds
        NaN/inf, it has duplicate entries while ``duplicates="error"``, or it has no stored
        entries while ``allow_empty`` is False.
    """
    if not sp.issparse(X):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (CSR users x items), got {type(X).__name__}"
        )
    check_sparse_structure(name, X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if duplicates == "error":
        # Looked for in X as given: converting COO to CSR would already sum them.
        rep = repeated_entry(X)
        if rep is not None:
            _duplicate_error(name, rep.row, rep.col, rep.extra)
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.prune()  # drop storage past indptr[-1]
    X.sort_indices()
    X.sum_duplicates()
    if not np.all(np.isfinite(X.data)):
        bad = int(np.count_nonzero(~np.isfinite(X.data)))
        raise DataError(f"{name} contains {bad} NaN or infinite values")
    if X.nnz == 0 and not allow_empty:
        raise DataError(f"{name} has no stored ratings")
    return X


def _duplicate_error(name: str, row: int, col: int, n_extra: int) -> None:
    raise DataError(
        f"{name} has {n_extra} duplicate stored entr{'y' if n_extra == 1 else 'ies'}, e.g. "
        f"(row {row}, column {col}) is stored more than once; scipy would sum them into one "
        "value that is not a rating: drop or combine the duplicates first"
    )


def check_fitted(model: Any, attr: str = "weights_") -> None:
    """Raise NotFittedError unless ``model`` has ``attr``."""
    if getattr(model, attr, None) is None:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit() first")


def check_unchanged(fitted: dict[str, Any] | None, now: dict[str, Any], action: str) -> None:
    """ValueError naming the first hyperparameter whose value differs from the fitted one.

    For the hyperparameters that fix the shapes and meaning of a model's fitted parameters:
    changed after ``fit``, they would make the kernels run on another model's parameters
    (wrong shapes, Numba typing errors, out-of-bounds reads, or silently wrong scores).

    Parameters
    ----------
    fitted : dict or None
        Values at the last ``fit`` (or load); None skips the check.
    now : dict
        Current values, same keys.
    action : str
        What needs the fitted values (e.g. ``"partial_fit"``), for the message.
    """
    if fitted is None:
        return
    for name, value in now.items():
        if value != fitted[name]:
            raise ValueError(
                f"{name} is {value!r} but the model was fitted with {name}={fitted[name]!r} "
                f"({action} needs the fitted value); set it back, or call fit() to train a "
                "model with the new value"
            )


class ParamsMixin:
    """``get_params``, ``set_params`` and a repr from the class's ``_PARAMS`` (scikit-learn's
    conventions): ``type(m)(**m.get_params())`` is an unfitted model with the same settings.

    A subclass lists its constructor arguments, in signature order, in ``_PARAMS``.
    """

    _PARAMS: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments by name.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility; the models hold no nested estimators.

        Returns
        -------
        dict of str to object
        """
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments by name.

        Values are checked by the next ``fit`` or scoring call. On a fitted model, inference
        settings (e.g. ``num_threads``, ``prediction``) take effect at once. A change to a
        hyperparameter that fixes the fitted parameters' shapes or meaning takes effect at
        the next ``fit``; until then every scoring or inference method (``predict``,
        ``recommend``, ``score_items``, ``transform``, ``sample``, ...) and ``save`` (and
        :meth:`RBM.partial_fit <rbmrec.RBM.partial_fit>`) raise a ValueError naming it, and
        setting the fitted value back makes the model usable again. These hyperparameters
        are ``n_hidden``, ``visible``, ``n_levels``, ``dtype`` and ``sigma`` for
        :class:`~rbmrec.RBM`; ``n_hidden``, ``orientation``, ``conditional``, ``n_factors``,
        ``visible`` and ``dtype`` for :class:`~rbmrec.RatingRBM`; ``n_hidden``, ``visible``
        and ``length_norm`` for :class:`~rbmrec.ImplicitRBM`.

        Returns
        -------
        object
            ``self``.

        Raises
        ------
        ValueError
            If a name is not a constructor argument (nothing is set then).
        """
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ValueError(
                f"invalid parameter(s) {', '.join(map(repr, unknown))} for "
                f"{type(self).__name__}; valid parameters are {', '.join(self._PARAMS)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def accepts_validation(fit: Callable[..., Any]) -> bool:
    """Whether a model's ``fit`` takes a ``validation`` keyword (or any ``**kwargs``).

    Decided from the signature, so an error raised inside ``fit`` is never mistaken for a
    signature mismatch.
    """
    try:
        params = inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False
    return "validation" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def as_index_array(name: str, values: Any, size: int) -> np.ndarray:
    """int64 array of indices in ``[0, size)``, with a clear error otherwise."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        bad = arr[(arr < 0) | (arr >= size)][0]
        raise IndexError(f"{name} contains {bad}, outside [0, {size})")
    return arr


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` numba threads (0 = leave numba's setting), then restore."""
    if n == 0:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(old)


_BLAS_CONTROLLER = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run BLAS single-threaded inside the block (numba's threads keep their setting).

    Two reasons. The dense products of the models are small and called thousands of times:
    multi-threaded OpenBLAS spends most of its time synchronising on them (a (64, 1682) x
    (1682, 100) product took 10.9 ms with the default BLAS threads and 0.42 ms with one).
    And between products the BLAS workers spin, taking the cores from the numba kernels
    that run next: on 2 cores, recommend-all's numba kernels ran 2x slower with BLAS at 2
    threads than at 1. The ``threadpoolctl`` controller is built once (building it scans
    the loaded libraries, ~1 ms), so entering the block costs ~30 us.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def seed_generator(random_state: Any) -> np.random.Generator:
    """A Generator from None, an int, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, int | np.integer | np.random.SeedSequence):
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be None, an int, a SeedSequence or a Generator, got "
        f"{type(random_state).__name__}"
    )
