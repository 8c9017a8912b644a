"""Validation and bookkeeping helpers shared by the models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError, NotFittedError


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


def check_csr(name: str, X: Any, *, allow_empty: bool = False) -> sp.csr_matrix:
    """Validate a scipy sparse matrix of finite values; return canonical CSR (a copy).

    Raises
    ------
    TypeError
        If ``X`` is not a scipy sparse matrix/array.
    DataError
        If it holds NaN/inf, or has no stored entries while ``allow_empty`` is False.
    """
    if not sp.issparse(X):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (CSR users x items), got {type(X).__name__}"
        )
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.sort_indices()
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D, got shape {X.shape}")
    if not np.all(np.isfinite(X.data)):
        bad = int(np.count_nonzero(~np.isfinite(X.data)))
        raise DataError(f"{name} contains {bad} NaN or infinite values")
    if X.nnz == 0 and not allow_empty:
        raise DataError(f"{name} has no stored ratings")
    return X


def check_fitted(model: Any, attr: str = "weights_") -> None:
    """Raise NotFittedError unless ``model`` has ``attr``."""
    if getattr(model, attr, None) is None:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit() first")


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
