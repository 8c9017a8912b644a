"""Checks of scipy sparse matrices shared by the models and the data layer (numpy only, so
the data layer can import it without loading Numba)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp


class RepeatedEntry(NamedTuple):
    """A (row, column) pair a sparse matrix stores more than once."""

    row: int
    col: int
    count: int  # entries stored for this pair
    extra: int  # entries beyond one per pair, over the whole matrix


def repeated_entry(X: Any) -> RepeatedEntry | None:
    """The first (row-major) pair the scipy sparse matrix ``X`` stores more than once, or None.

    scipy sums such entries on conversion (two ratings 4 and 5 become one "rating" 9), so
    they are looked for in ``X`` as given, which is not modified. CSR with sorted indices
    (the usual input) is checked in one pass; other layouts through their coordinates.
    """
    if X.format in ("dok", "lil") or X.nnz < 2:
        return None  # one value per cell by construction, or nothing to repeat
    if X.format in ("csr", "csc", "coo") and X.has_canonical_format:
        return None
    if X.format == "csr" and X.has_sorted_indices:
        rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
        same = (np.diff(X.indices[: X.nnz]) == 0) & (np.diff(rows) == 0)
        if not same.any():
            return None
        k = int(np.flatnonzero(same)[0])
        run = np.flatnonzero(~same[k:])
        count = 1 + (int(run[0]) if run.size else len(same) - k)
        return RepeatedEntry(int(rows[k]), int(X.indices[k]), count, int(same.sum()))
    coo = X.tocoo()  # keeps repeated entries
    n_cols = X.shape[1]
    keys = coo.row.astype(np.int64) * n_cols + coo.col.astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    repeated = counts > 1
    if not repeated.any():
        return None
    j = int(np.argmax(repeated))
    first = int(uniq[j])
    return RepeatedEntry(
        first // n_cols, first % n_cols, int(counts[j]), int(np.sum(counts[repeated] - 1))
    )


def stored_entries(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of every stored entry of the CSR matrix ``X``, in CSR order.

    rows and cols are int64, shape (nnz,); values are ``X.data``. A stored 0 is an entry
    (a rating of 0): scipy's ``X.nonzero()`` would skip it.
    """
    n = int(X.indptr[-1])
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    return rows, X.indices[:n].astype(np.int64), X.data[:n]


def make_csr(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A ``csr_matrix`` from its arrays, keeping int32 indices (scipy may widen them).

    ``indices`` must already be sorted within each row and free of duplicates.
    """
    m = sp.csr_matrix(
        (data, indices.astype(np.int32, copy=False), indptr.astype(np.int32, copy=False)),
        shape=shape,
        copy=False,
    )
    if m.indices.dtype != np.int32:
        m.indices = m.indices.astype(np.int32)
    if m.indptr.dtype != np.int32:
        m.indptr = m.indptr.astype(np.int32)
    m.has_sorted_indices = True
    m.has_canonical_format = True
    return m


def keep_entries(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The stored entries of the CSR matrix ``m`` where ``keep`` (bool, shape (nnz,)) is
    True, in a matrix of the same shape (explicit zeros stay entries)."""
    kept_before = np.zeros(keep.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    indptr = kept_before[m.indptr]
    n = int(m.indptr[-1])
    return make_csr(m.data[:n][keep], m.indices[:n][keep], indptr, m.shape)


def held_out_positions(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``round(fraction * n)`` distinct positions in ``range(n)``, drawn uniformly by ``rng``
    (the one rule by which rbmrec holds entries out: validation carves and ``fit``'s own
    validation part).

    Returns
    -------
    ndarray of int64, shape (round(fraction * n),)
    """
    n_held = int(np.floor(fraction * n + 0.5))
    if not n_held:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(n, size=n_held, replace=False).astype(np.int64, copy=False)
