"""Input checks of :class:`rbmrec.RBM` and the CSR row layout its kernels read.

Every visible family arrives here as a dense array or a scipy sparse matrix of shape
(n_samples, n_visible) and leaves as :class:`Rows`: CSR index arrays plus the stored values
(float data for bernoulli/gaussian units, int8 level indices for softmax groups).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.models._sparse import repeated_entry
from rbmrec.models.validation import check_sparse_structure


class Rows:
    """Kernel view of an input matrix: CSR arrays (``vals`` = float data or int8 levels).

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
    indices : ndarray of int32, shape (nnz,)
        Column (visible unit) of each stored value.
    vals : ndarray, shape (nnz,)
        Float values (bernoulli/gaussian) or int8 level indices (softmax).
    n_cols : int
        Number of visible units.
    """

    __slots__ = ("indices", "indptr", "n_cols", "n_rows", "vals")

    def __init__(
        self, indptr: np.ndarray, indices: np.ndarray, vals: np.ndarray, n_cols: int
    ) -> None:
        self.indptr = indptr
        self.indices = indices
        self.vals = vals
        self.n_rows = len(indptr) - 1
        self.n_cols = n_cols

    def subset(self, rows: np.ndarray) -> Rows:
        """The given rows as a new contiguous CSR."""
        lens = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        take = np.concatenate(
            [np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows] or [np.zeros(0, int)]
        ).astype(np.int64)
        return Rows(indptr, self.indices[take], self.vals[take], self.n_cols)

    def dense(self, n_visible: int) -> np.ndarray:
        """The rows as a dense float64 array of shape (n_rows, n_visible) (0 where unstored)."""
        out = np.zeros((self.n_rows, n_visible), dtype=np.float64)
        r = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
        out[r, self.indices] = self.vals
        return out

    def observed(self, n_visible: int) -> np.ndarray:
        """Boolean mask of shape (n_rows, n_visible): which entries the rows store."""
        mask = np.zeros((self.n_rows, n_visible), dtype=bool)
        mask[np.repeat(np.arange(self.n_rows), np.diff(self.indptr)), self.indices] = True
        return mask


def full_rows(vals: np.ndarray, n_rows: int, n_visible: int) -> Rows:
    """Rows storing every visible unit, ``vals`` laid out row by row (shape (n_rows *
    n_visible,))."""
    indptr = np.arange(0, (n_rows + 1) * n_visible, n_visible, dtype=np.int64)
    indices = np.tile(np.arange(n_visible, dtype=np.int32), n_rows)
    return Rows(indptr, indices, vals, n_visible)


def _check_shape(name: str, shape: tuple[int, ...], n_visible: int | None, estimator: str) -> None:
    """ValueError for an input that is not 2-D, is empty, or has the wrong width."""
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_visible), got shape {shape}. Reshape your data, "
            "e.g. with X.reshape(1, -1) for a single row"
        )
    for size, what in zip(shape, ("sample", "feature"), strict=True):
        if size == 0:
            # The wording scikit-learn's own input checks use.
            raise ValueError(
                f"{name} is empty: 0 {what}(s) (shape={shape}) while a minimum of 1 is required."
            )
    if n_visible is not None and shape[1] != n_visible:
        raise ValueError(
            f"{name} has {shape[1]} features, but {estimator} is expecting {n_visible} "
            f"features as input (its columns are the model's {n_visible} visible units)"
        )


def _as_array(X: Any, name: str, softmax: bool) -> Any:
    """``X`` as a CSR copy (sparse input) or a NumPy array, its dtype checked as numbers.

    Raises
    ------
    TypeError
        If ``X`` is not an array or sparse matrix of numbers.
    ValueError
        If a softmax CSR stores two values for one group.
    """
    if sp.issparse(X):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
        if X.ndim == 2:
            check_sparse_structure(name, X)  # the kernels index memory with its indices
        if softmax and X.ndim == 2:
            # Looked for in X as given: converting COO to CSR would sum two stored levels
            # of one group into another level.
            rep = repeated_entry(X)
            if rep is not None:
                raise ValueError(
                    f"{name} has {rep.extra} duplicate stored entr"
                    f"{'y' if rep.extra == 1 else 'ies'}, e.g. (row {rep.row}, column "
                    f"{rep.col}) is stored {rep.count} times; a softmax group takes one "
                    "level: drop the duplicates first"
                )
        return X
    if isinstance(X, str | bytes) or X is None:
        raise TypeError(f"{name} must be an array or a scipy sparse matrix, got {X!r}")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.dtype == np.float16:  # scipy.sparse has no float16; exact in float32
        X = X.astype(np.float32)
    return X


def check_rows(
    X: Any,
    name: str,
    family: str,
    *,
    n_visible: int | None,
    n_levels: int | None,
    dtype: np.dtype,
    training: bool,
    estimator: str = "RBM",
) -> Rows:
    """Validate ``X`` for a visible ``family`` and convert it to the kernels' CSR layout.

    Parameters
    ----------
    X : array-like or scipy sparse, shape (n_samples, n_visible)
        The input, never modified.
    name : str
        Its name in error messages.
    family : {"bernoulli", "gaussian", "softmax"}
    n_visible : int or None
        Required width (None before the first fit).
    n_levels : int or None
        Softmax: the number of levels, or None when the data fix it.
    dtype : numpy.dtype
        Parameter dtype; float values must be finite in it.
    training : bool
        Softmax: refuse data in which no row observes any group (nothing to learn).
    estimator : str
        Class name for the width message.

    Returns
    -------
    Rows

    Raises
    ------
    TypeError, ValueError
        Naming the problem: wrong type or dtype, not 2-D, empty, wrong width, NaN or
        infinite values, values outside the family's range.
    """
    X = _as_array(X, name, family == "softmax")
    _check_shape(name, X.shape, n_visible, estimator)
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)
        X.prune()
    if family == "softmax":
        return softmax_rows(X, name, n_levels, training=training)
    if sp.issparse(X):
        X.sum_duplicates()
        X.sort_indices()
        data = X.data
    else:
        data = X
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if family == "bernoulli" and data.size and (data.min() < 0 or data.max() > 1):
        raise ValueError(
            f"{name} must hold values in [0, 1] for bernoulli visible units, got range "
            f"[{data.min()}, {data.max()}]"
        )
    csr = X if sp.issparse(X) else sp.csr_matrix(X)
    with np.errstate(over="ignore"):
        vals = csr.data.astype(dtype)
    if not np.all(np.isfinite(vals)):
        big = csr.data[~np.isfinite(vals)][0]
        raise ValueError(
            f"{name} holds {big:g}, beyond the range of the model's dtype {dtype} "
            f"(|x| <= {float(np.finfo(dtype).max):.3g}); rescale it or use dtype='float64'"
        )
    return Rows(csr.indptr.astype(np.int64), csr.indices.astype(np.int32), vals, X.shape[1])


def _sparse_levels(X: sp.csr_matrix, name: str, K: int | None) -> tuple:
    """CSR arrays and 0-based levels of a softmax CSR (stored data = level index + 1)."""
    X.sort_indices()  # duplicates were refused by _as_array before the CSR conversion
    d = X.data
    if d.dtype.kind == "f":
        if not np.all(np.isfinite(d)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if np.any(d != np.round(d)):
            raise ValueError(f"{name} (softmax CSR) must store integer level indices + 1")
    d = d.astype(np.int64)
    if d.size and (d.min() < 1 or (K is not None and d.max() > K)):
        raise ValueError(
            f"{name} (softmax CSR) stores level indices + 1, which must lie in "
            f"[1, {K if K is not None else 'n_levels'}]; got range [{d.min()}, {d.max()}]"
        )
    return X.indptr, X.indices, d - 1


def _dense_levels(X: np.ndarray, name: str, K: int | None) -> tuple:
    """CSR arrays and levels of a dense softmax array (level indices, -1 = not observed)."""
    if X.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer level indices (-1 = not observed) for softmax "
            f"visible units, got dtype {X.dtype}"
        )
    Xi = X.astype(np.int64)
    if Xi.min() < -1 or (K is not None and Xi.max() >= K):
        raise ValueError(
            f"{name} level indices must lie in [0, {K if K is not None else 'n_levels'}"
            f") or be -1 (not observed); got range [{Xi.min()}, {Xi.max()}]"
        )
    mask = Xi >= 0
    indptr = np.zeros(Xi.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return indptr, np.nonzero(mask)[1], Xi[mask]


def softmax_rows(X: Any, name: str, K: int | None, training: bool = False) -> Rows:
    """Rows of softmax groups from a dense level array or a CSR of levels + 1.

    Parameters
    ----------
    X : ndarray of ints or scipy.sparse.csr_matrix, shape (n_samples, n_visible)
        Dense: level indices, -1 where the group is not observed. CSR (already a copy,
        pruned, without duplicates): level index + 1 per observed group.
    name : str
        Its name in error messages.
    K : int or None
        Number of levels, or None to accept any up to 127.
    training : bool, default False
        Refuse data in which no row observes any group.

    Returns
    -------
    Rows
        ``vals`` holds int8 levels in [0, K).
    """
    if sp.issparse(X):
        indptr, indices, levels = _sparse_levels(X, name, K)
    else:
        indptr, indices, levels = _dense_levels(X, name, K)
    if training and len(levels) == 0:
        # Inference is defined for rows observing nothing; training on them learns nothing.
        raise ValueError(
            f"{name} observes no visible group in any row: there is nothing to learn from"
        )
    if K is None and levels.max() + 1 > 127:
        raise ValueError(f"{name} has {levels.max() + 1} levels; at most 127 are supported")
    return Rows(
        indptr.astype(np.int64), indices.astype(np.int32), levels.astype(np.int8), X.shape[1]
    )
