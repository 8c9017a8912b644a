"""Top-N selection with exclusions: the one kernel every recommender ranks items with.

Given a dense block of scores (one row per user) it returns, per row, the ``n`` best items
that are not excluded, best first. Contract (the one ``implicit`` 0.7.3 and
:mod:`rbmrec.evaluation.baselines` document, and ``tests/contract.py`` checks):

- ids are ``int32``, scores ``float32`` (cast after ranking: ranking uses the input's
  precision, so two float64 scores that round to the same float32 keep their order);
- descending score; equal scores are ordered by the lower item id, so the result is
  deterministic and a row of a batch equals the same user ranked alone;
- a row with fewer than ``n`` candidates is padded with id ``-1`` and score
  :data:`PAD_SCORE` ``= -finfo(float32).max`` (what ``implicit.utils._batch_call`` pads
  with);
- NaN and ``-inf`` scores are not candidates: ``-inf`` is how callers mark "never
  recommend" and a NaN score has no rank. ``+inf`` ranks first.

Selection is a bounded min-heap per row (worst kept candidate at the root), so a row costs
``O(n_items log n)`` and no full sort. Rows are independent and written only by the
iteration that owns them, so the result does not depend on the thread count.

Entry points: :func:`top_n` (arguments checked), :func:`topn_kernel` (the compiled kernel,
unchecked) and :func:`topn_select` (:func:`top_n` plus the number of filled slots per row).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["PAD_SCORE", "top_n", "topn_kernel", "topn_select"]

#: Score of an empty slot (as ``implicit`` pads batch results).
PAD_SCORE = np.float32(-np.finfo(np.float32).max)

# Rows per prange iteration: one exclusion-mask buffer is shared by the rows of a chunk,
# so a row costs its own exclusions, not a copy of the whole mask.
_ROWS_PER_CHUNK = 32


@njit(cache=True, inline="always")
def _worse(sa, ia, sb, ib):
    """True when (score sa, id ia) ranks below (sb, ib): lower score, or tie and higher id."""
    return sa < sb or (sa == sb and ia > ib)


@njit(cache=True, inline="always")
def _sift_down(hs, hi, pos, size):
    """Restore the min-heap (worst candidate at the root) below ``pos``."""
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _worse(hs[right], hi[right], hs[left], hi[left]):
            worst = right
        if _worse(hs[worst], hi[worst], hs[pos], hi[pos]):
            hs[pos], hs[worst] = hs[worst], hs[pos]
            hi[pos], hi[worst] = hi[worst], hi[pos]
            pos = worst
        else:
            return


@njit(cache=True, inline="always")
def _select_row(scores, r, skip, n, hs, hi, ids, best):
    """Fill ``ids[r]`` / ``best[r]`` with the ``n`` best non-skipped items of row ``r``."""
    size = 0
    for i in range(scores.shape[1]):
        if skip[i]:
            continue
        s = np.float64(scores[r, i])
        # One comparison rejects both NaN and -inf.
        if not s > -np.inf:
            continue
        if size < n:
            pos = size
            hs[pos] = s
            hi[pos] = i
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if _worse(hs[pos], hi[pos], hs[parent], hi[parent]):
                    hs[pos], hs[parent] = hs[parent], hs[pos]
                    hi[pos], hi[parent] = hi[parent], hi[pos]
                    pos = parent
                else:
                    break
        elif _worse(hs[0], hi[0], s, i):
            hs[0] = s
            hi[0] = i
            _sift_down(hs, hi, 0, size)
    # Pop the worst repeatedly, filling the row from the back.
    m = size
    while m > 0:
        best[r, m - 1] = hs[0]
        ids[r, m - 1] = hi[0]
        m -= 1
        hs[0] = hs[m]
        hi[0] = hi[m]
        _sift_down(hs, hi, 0, m)


@njit(cache=True)
def _select_chunk(scores, ch, excl_indptr, excl_indices, excluded, has_global, n, ids, best):
    """Rows ``ch * _ROWS_PER_CHUNK`` onwards of :func:`topn_kernel`, sharing one exclusion
    buffer. A serial function called from the parallel loop, not the loop's body: Numba's
    parallel passes on the inlined heap code took seconds of a cold start."""
    n_rows, n_items = scores.shape
    skip = excluded.copy() if has_global else np.zeros(n_items, dtype=np.bool_)
    hs = np.empty(n, dtype=np.float64)
    hi = np.empty(n, dtype=np.int64)
    for r in range(ch * _ROWS_PER_CHUNK, min((ch + 1) * _ROWS_PER_CHUNK, n_rows)):
        p0, p1 = excl_indptr[r], excl_indptr[r + 1]
        for p in range(p0, p1):
            skip[excl_indices[p]] = True
        _select_row(scores, r, skip, n, hs, hi, ids, best)
        # Undo this row's exclusions so the buffer serves the next row.
        for p in range(p0, p1):
            i = excl_indices[p]
            skip[i] = excluded[i] if has_global else False


@njit(cache=True, parallel=True)
def topn_kernel(scores, excl_indptr, excl_indices, excluded, n):
    """The ``n`` best items of each row of ``scores``, skipping excluded items.

    Validates nothing: call :func:`top_n` unless the arrays are known to be well formed.

    Parameters
    ----------
    scores : float32/float64 array, shape (n_rows, n_items)
        Higher is better. NaN and ``-inf`` entries are never returned.
    excl_indptr : int array, shape (n_rows + 1,)
    excl_indices : int array, shape (nnz,)
        CSR structure of per-row exclusions (e.g. already-liked items): row ``r``'s stored
        columns are excluded from row ``r``. ``indptr = zeros(n_rows + 1)`` for none.
    excluded : bool array, shape (n_items,) or (0,)
        Items excluded from every row; an empty array for none.
    n : int
        Slots per row (>= 0).

    Returns
    -------
    ids : int32 array, shape (n_rows, n)
        Best first, ties by increasing id, ``-1`` in empty slots.
    best : float32 array, shape (n_rows, n)
        Their scores, :data:`PAD_SCORE` in empty slots.
    """
    n_rows = scores.shape[0]
    ids = np.full((n_rows, n), -1, dtype=np.int32)
    best = np.full((n_rows, n), -np.finfo(np.float32).max, dtype=np.float32)
    if n == 0 or n_rows == 0:
        return ids, best
    has_global = excluded.shape[0] > 0
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    for ch in prange(n_chunks):
        _select_chunk(
            scores, np.int64(ch), excl_indptr, excl_indices, excluded, has_global, n, ids, best
        )
    return ids, best


def top_n(
    scores: np.ndarray,
    n: int,
    excl_indptr: np.ndarray | None = None,
    excl_indices: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Checked entry point of :func:`topn_kernel`: best ``n`` items per row, with exclusions.

    Parameters
    ----------
    scores : ndarray of float32 or float64, shape (n_rows, n_items)
        Higher is better; not modified. NaN and ``-inf`` entries are never returned.
    n : int
        Slots per row, ``>= 0``; may exceed ``n_items``.
    excl_indptr, excl_indices : ndarray of int, shapes (n_rows + 1,) and (nnz,), optional
        CSR structure of per-row exclusions (pass both or neither), e.g. ``indptr`` and
        ``indices`` of the users' training rows.
    excluded : ndarray of bool, shape (n_items,), optional
        Items excluded from every row.

    Returns
    -------
    ids : ndarray of int32, shape (n_rows, n)
        Best first; ties broken by the lower item id; ``-1`` where fewer than ``n`` items
        remain.
    scores : ndarray of float32, shape (n_rows, n)
        Matching scores; :data:`PAD_SCORE` in empty slots.

    Raises
    ------
    TypeError
        ``scores`` is not a float32/float64 array, or ``excluded`` is not boolean.
    ValueError
        Bad shapes, a negative ``n``, or exclusion ids outside ``[0, n_items)``.
    """
    if not isinstance(scores, np.ndarray) or scores.dtype not in (np.float32, np.float64):
        got = scores.dtype if isinstance(scores, np.ndarray) else type(scores).__name__
        raise TypeError(f"scores must be a float32 or float64 ndarray, got {got}")
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_rows, n_items), got shape {scores.shape}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    n_rows, n_items = scores.shape
    if (excl_indptr is None) != (excl_indices is None):
        raise ValueError("pass both excl_indptr and excl_indices, or neither")
    if excl_indptr is None:
        excl_indptr = np.zeros(n_rows + 1, dtype=np.int64)
        excl_indices = np.zeros(0, dtype=np.int32)
    else:
        excl_indptr = np.asarray(excl_indptr)
        excl_indices = np.asarray(excl_indices)
        for a, name in ((excl_indptr, "excl_indptr"), (excl_indices, "excl_indices")):
            if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
                raise ValueError(f"{name} must be a 1-D integer array, got {a.dtype} {a.shape}")
        if excl_indptr.size != n_rows + 1:
            raise ValueError(
                f"excl_indptr has {excl_indptr.size} entries; scores has {n_rows} rows, "
                f"so {n_rows + 1} are needed"
            )
        if (
            np.any(np.diff(excl_indptr) < 0)
            or excl_indptr[0] < 0
            or (excl_indptr[-1] > excl_indices.size)
        ):
            raise ValueError("excl_indptr must be non-decreasing and within excl_indices")
        used = excl_indices[excl_indptr[0] : excl_indptr[-1]]
        if used.size and (used.min() < 0 or used.max() >= n_items):
            raise ValueError(f"excl_indices must be item ids in [0, {n_items})")
        # One index dtype pair keeps Numba to one compiled specialisation per score dtype.
        excl_indptr = excl_indptr.astype(np.int64, copy=False)
        excl_indices = excl_indices.astype(np.int32, copy=False)
    if excluded is None:
        excluded = np.zeros(0, dtype=np.bool_)
    else:
        excluded = np.asarray(excluded)
        if excluded.dtype != np.bool_:
            raise TypeError(f"excluded must be a boolean mask, got dtype {excluded.dtype}")
        if excluded.shape != (n_items,):
            raise ValueError(f"excluded must have shape ({n_items},), got {excluded.shape}")
    return topn_kernel(np.ascontiguousarray(scores), excl_indptr, excl_indices, excluded, int(n))


def topn_select(
    scores: np.ndarray,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    excluded: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` best items of each row of ``scores``, skipping excluded items.

    :func:`top_n` (the one top-N kernel and its contract), plus the number of filled slots
    per row.

    Parameters
    ----------
    scores : float array, shape (n_rows, n_items)
        Scores of a block of users; NaN and ``-inf`` scores are never returned.
    excl_indptr : int array, shape (n_rows + 1,)
    excl_indices : int array, shape (nnz,)
        CSR structure of the per-row exclusions (e.g. already-liked items); use
        ``indptr = zeros(n_rows + 1)`` for none.
    excluded : bool array, shape (n_items,)
        Items excluded from every row.
    n : int
        Number of items to return per row.

    Returns
    -------
    ids : int32 array, shape (n_rows, n)
        Best items first (ties by increasing id); rows with fewer than ``n`` eligible items
        are padded with -1.
    best : float32 array, shape (n_rows, n)
        Their scores, padded with ``-finfo(float32).max`` (as ``implicit`` pads).
    counts : int64 array, shape (n_rows,)
        Number of valid entries in each row.
    """
    ids, best = top_n(scores, n, excl_indptr, excl_indices, excluded)
    return ids, best, (ids >= 0).sum(axis=1, dtype=np.int64)
