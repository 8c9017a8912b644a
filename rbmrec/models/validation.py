"""Input validation of the models: hyperparameters, index arrays, sparse matrices and the
arguments of ``recommend``.

Every check raises the documented exception of its fault (``TypeError`` for a wrong type,
``ValueError`` or :class:`~rbmrec.errors.DataError` for a wrong value,
:class:`~rbmrec.errors.UnknownUserError` for a user index out of range) with a message
naming the argument, and never modifies its input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError, NotFittedError, UnknownUserError
from rbmrec.models._sparse import repeated_entry


def check_n(N: Any) -> int:
    """``N`` of ``recommend`` / ``similar_items``: an int ``>= 1``.

    Raises
    ------
    TypeError
        Not an int (a bool is not one).
    ValueError
        ``N < 1``.
    """
    if isinstance(N, bool) or not isinstance(N, int | np.integer):
        raise TypeError(f"N must be an int, got {type(N).__name__}")
    if N < 1:
        raise ValueError(f"N must be an int >= 1, got {N}")
    return int(N)


def check_userids(userid: Any, n_users: int, fold_in: bool = False) -> tuple[np.ndarray, bool]:
    """User indices of ``recommend`` as int64 (n,), and whether a single user was asked.

    Parameters
    ----------
    userid : int or array-like of int
    n_users : int
        Users of the fitted model: indices must lie in ``[0, n_users)``.
    fold_in : bool, default False
        Accept any non-negative index (users folded in from their rows).

    Raises
    ------
    ValueError
        ``userid`` has more than one dimension.
    TypeError
        ``userid`` is not integer (floats, NaN and bools are refused, not truncated).
    UnknownUserError
        An index outside the range above.
    """
    if np.ndim(userid) > 1:
        raise ValueError(
            f"userid must be an id or a 1-D array of ids, got shape {np.shape(userid)}"
        )
    single = np.ndim(userid) == 0
    arr = np.atleast_1d(np.asarray(userid))
    if arr.dtype.kind not in "iu":
        if arr.size:
            raise TypeError(f"userid must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) if fold_in else ((arr < 0) | (arr >= n_users))
    if bad.any():
        hint = "" if fold_in else " (recalculate_user=True folds in new users where supported)"
        raise UnknownUserError(
            f"userid contains {int(arr[bad][0])}, outside [0, {n_users}): the model knows "
            f"users 0..{n_users - 1}{hint}"
        )
    return arr, single


def check_user_rows(name: str, X: Any, n_rows: int, n_items: int) -> sp.csr_matrix:
    """The requested users' rows given to ``recommend``, as a CSR copy.

    Raises
    ------
    TypeError
        Not a scipy sparse matrix, or not numbers.
    DataError
        Malformed index arrays (:func:`check_sparse_structure`), NaN or infinite values.
    ValueError
        Not ``n_rows`` rows (one per requested user) of ``n_items`` columns.
    """
    if not sp.issparse(X):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (the requested users' rows), got "
            f"{type(X).__name__}"
        )
    check_sparse_structure(name, X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.shape[1] != n_items:
        raise ValueError(
            f"{name} has {X.shape[1]} columns but the model was fitted on {n_items} items"
        )
    if X.shape[0] != n_rows:
        raise ValueError(
            f"{name} must have one row per requested user: {n_rows} users but "
            f"{X.shape[0]} rows (pass train[userid], not the whole matrix)"
        )
    rows = sp.csr_matrix(X, copy=True)
    if rows.nnz and not np.all(np.isfinite(rows.data[: rows.indptr[-1]])):
        raise DataError(f"{name} contains NaN or infinite values")
    return rows


def excluded_items(n_items: int, filter_items: Any, items: Any) -> np.ndarray | None:
    """Boolean mask (n_items,) of the items never returned, or None when there are none.

    ``filter_items`` are excluded; with ``items``, every item outside it is. Both are checked
    integer ids in ``[0, n_items)`` (a float id or -1 is an error, not a truncation or a
    wrap-around to the last item).

    Raises
    ------
    ValueError
        Both ``filter_items`` and ``items`` are given.
    TypeError, IndexError
        From :func:`as_index_array`.
    """
    if items is not None and filter_items is not None:
        raise ValueError("can't set both items and filter_items")
    if filter_items is None and items is None:
        return None
    excluded = np.zeros(n_items, dtype=np.bool_)
    if filter_items is not None:
        excluded[as_index_array("filter_items", filter_items, n_items)] = True
    if items is not None:
        excluded[:] = True
        excluded[as_index_array("items", items, n_items)] = False
    return excluded


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as int after checking type and range ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as bool after checking it is one (Python or NumPy)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


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
    """Validate a scipy sparse matrix of finite values; return canonical CSR: a float64 copy,
    or ``X`` itself (as a ``csr_matrix`` sharing its arrays) when it already is canonical
    float64 CSR, e.g. a matrix this function returned (the models only read it; at 100M
    ratings a copy is 1.2 GB).

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
    if _canonical_float64_csr(X):
        X = sp.csr_matrix(X, copy=False)
    else:
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


def _canonical_float64_csr(X: Any) -> bool:
    """Whether ``X`` (structure already checked) is CSR of float64 with sorted indices, no
    duplicates and no storage past ``indptr[-1]``, i.e. what :func:`check_csr` would copy it
    into."""
    return (
        X.format == "csr"
        and X.dtype == np.float64
        and len(X.data) == len(X.indices) == X.indptr[-1]
        and bool(X.has_canonical_format)
    )


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


def check_float(
    name: str, value: Any, low: float, *, strict: bool = False, high: float | None = None
) -> float:
    """``value`` as a float after checking it is a finite real number ``>= low`` (``> low``
    with ``strict``) and, when ``high`` is given, ``<= high``.

    Raises
    ------
    TypeError
        Not a real number (a bool or a string is not one).
    ValueError
        Not finite, or out of range.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < low or (strict and value == low):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be finite and {op} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_pairs(
    userids: Any, itemids: Any, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs of ``predict`` as two int64 arrays of equal length.

    Raises
    ------
    TypeError
        Non-integer ids.
    IndexError
        An id out of range (:func:`as_index_array`).
    ValueError
        ``userids`` and ``itemids`` of different lengths.
    """
    u = as_index_array("userids", userids, n_users)
    i = as_index_array("itemids", itemids, n_items)
    if len(u) != len(i):
        raise ValueError(f"userids has {len(u)} entries but itemids has {len(i)}")
    return u, i


def check_ratings(name: str, X: Any, *, allow_empty: bool = False) -> sp.csr_matrix:
    """Explicit ratings: :func:`check_csr` with duplicates refused.

    Every stored entry is a rating, an explicit 0 and negative values included; only absent
    entries are missing. Duplicates would be summed into a value that is no rating (4 + 5 =
    a level "9").

    Raises
    ------
    TypeError, DataError
        From :func:`check_csr`.
    """
    return check_csr(name, X, allow_empty=allow_empty, duplicates="error")


def check_interactions(name: str, X: Any, n_items: int | None = None) -> sp.csr_matrix:
    """Canonical CSR copy (float32 data, int32 indices, int64 indptr, sorted, no duplicates)
    of implicit-feedback interactions ``X``.

    Every stored entry is an interaction, whatever its value (an explicit 0 or a negative
    rating too); only absent entries are not. Values matter only as confidence weights
    (``ImplicitRBM(confidence=...)``), where a value <= 0 weighs like 0. Entries stored twice
    for one (user, item) are summed (counts of events, scipy's convention). The checks run
    in float64, and values are then clipped into float32's finite range.

    Raises
    ------
    TypeError
        Not a scipy sparse matrix, or not numbers.
    ValueError
        Not 2-D, or not ``n_items`` columns.
    DataError
        Malformed index arrays, NaN or infinite values.
    """
    if not sp.issparse(X):
        raise TypeError(
            f"{name} must be a scipy.sparse CSR matrix (users x items), got {type(X).__name__}"
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    if n_items is not None and X.shape[1] != n_items:
        raise ValueError(f"{name} has {X.shape[1]} columns but the model was fitted on {n_items}")
    check_sparse_structure(name, X)  # before scipy's conversions and the kernels index with it
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.prune()
    X.sum_duplicates()
    if X.nnz and not np.all(np.isfinite(X.data)):
        raise DataError(f"{name} contains NaN or infinite values")
    f32 = np.finfo(np.float32)
    np.clip(X.data, -f32.max, f32.max, out=X.data)
    X = X.astype(np.float32)
    X.sort_indices()
    X.indices = X.indices.astype(np.int32, copy=False)
    X.indptr = X.indptr.astype(np.int64, copy=False)
    return X


def check_training_csr(name: str, X: Any) -> sp.csr_matrix:
    """Training matrix of the baselines: a scipy CSR matrix (the format itself, not a
    conversion) of finite values with stored entries; returned as given (not copied).

    Raises
    ------
    TypeError
        Not a scipy sparse matrix, or not in CSR format.
    ValueError
        An empty dimension, or NaN or infinite values.
    DataError
        Malformed index arrays; no stored rating (a model fitted on nothing would score
        every item alike without complaint).
    """
    if not sp.issparse(X):
        raise TypeError(f"{name} must be a scipy sparse CSR matrix, got {type(X).__name__}")
    if X.format != "csr":
        raise TypeError(f"{name} must be a CSR matrix, got format {X.format!r}")
    # Malformed index arrays would reach scipy's C++ routines and the kernels unchecked.
    check_sparse_structure(name, X)
    if X.nnz and not np.isfinite(X.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} has an empty dimension: shape {X.shape}")
    if X.nnz == 0:
        raise DataError(f"{name} has no ratings")
    return X


def check_kept(n_kept: int, n_ratings: int, min_rating: Any, model: str) -> None:
    """DataError when ``min_rating`` dropped every one of ``n_ratings`` training ratings.

    The model would fit on nothing and score every item 0 without complaint.
    """
    if n_kept == 0 and n_ratings > 0 and min_rating is not None:
        raise DataError(
            f"{model}: min_rating={min_rating!r} drops all {n_ratings} training ratings "
            f"(none is >= {min_rating!r}); nothing is left to fit on"
        )


def check_seed_int(value: Any) -> int:
    """A seed for the ``implicit`` library: a non-negative int (implicit 0.7.3 cannot take
    a ``RandomState``); TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise TypeError(
            f"random_state must be a non-negative int (implicit 0.7.3 cannot take a "
            f"RandomState), got {value!r}"
        )
    return int(value)


def check_high_rating(value: Any) -> float | None:
    """``high_rating`` as a float (None stays None), or TypeError/ValueError."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise TypeError(f"high_rating must be a number or None, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"high_rating must be finite, got {value}")
    return float(value)


def check_high_threshold(high_rating: float, values: np.ndarray) -> float:
    """``high_rating`` after checking it splits the rating levels ``values`` (sorted).

    ``p_high`` is the probability of a level ``>= high_rating``: a threshold above every
    level makes it 0 for every item, one at or below the lowest level 1, and either way
    ``recommend`` would list items in id order.
    """
    lo, hi = float(values[0]), float(values[-1])
    if not lo < high_rating <= hi:
        raise ValueError(
            f"high_rating={high_rating} must be above the lowest and at most the highest "
            f"rating level seen in fit ({lo} and {hi}): otherwise p_high is the same for "
            f"every item"
        )
    return float(high_rating)
