"""Ratings on a Dask cluster: input frames, id maps and shards of whole rows.

Raw ids end here as they do in :mod:`rbmrec.data`: the id maps are the sorted distinct ids
(integers numerically, strings in code-point order), the maps
:meth:`rbmrec.data.Ratings.from_arrays` builds in one process, so index ``k`` means the same
user or item in both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.data.idmap import IdMap
from rbmrec.data.ratings import _check_id_values, _checked_ratings, _id_column, make_csr
from rbmrec.distributed._client import worker_ranks
from rbmrec.errors import DataError


def as_dask_frame(
    data: Any, columns: Sequence[str], what: str, client: Any, keep_all: bool = False
) -> Any:
    """``data`` as a Dask DataFrame holding ``columns``.

    Parameters
    ----------
    data : dask DataFrame, pandas or polars DataFrame, or str / PathLike
        A path is a parquet file, a folder of them or a glob (``data/*.parquet``). An
        in-memory frame is cut into one partition per worker and scattered to the workers
        (not embedded in the task graph).
    columns : sequence of str
        Columns that must be present.
    what : str
        The argument's name, for messages.
    client : dask.distributed.Client
    keep_all : bool, default False
        Keep every column (else only ``columns``).

    Raises
    ------
    TypeError
        ``data`` is none of the above.
    DataError
        A column is missing, or a path matches no file.
    """
    import dask.dataframe as dd

    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if not any(c in path for c in "*?[") and not Path(path).exists():
            raise DataError(f"{what}: no parquet file or folder at {path!r}")
        frame = dd.read_parquet(path)
    elif isinstance(data, dd.DataFrame):
        frame = data
    elif isinstance(data, pl.DataFrame) or (hasattr(data, "iloc") and hasattr(data, "columns")):
        pdf = data.to_pandas() if isinstance(data, pl.DataFrame) else data
        n = max(1, min(len(worker_ranks(client)), len(pdf)))
        step = -(-len(pdf) // n)
        chunks = [pdf.iloc[k * step : (k + 1) * step] for k in range(n)]
        frame = dd.from_delayed(client.scatter(chunks, hash=False), meta=pdf.iloc[:0])
    else:
        raise TypeError(
            f"{what} must be a Dask DataFrame, a pandas or polars DataFrame, or a path/glob "
            f"of parquet files, got {type(data).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: column(s) {missing} not in the frame (columns: {list(frame.columns)})"
        )
    return frame if keep_all else frame[list(columns)]


def _drop_duplicates(ids: Any) -> Any:
    return ids.drop_duplicates()


def distinct(column: Any) -> Any:
    """A Dask Series of a column's distinct values per partition (one pass, no shuffle;
    a value may repeat across partitions)."""
    return column.map_partitions(_drop_duplicates)


def id_array(values: Any, column: str) -> np.ndarray:
    """Raw ids of a pandas Series or array as :mod:`rbmrec.data` reads a column: int64 or
    str, shape (n,); DataError for missing, float or negative ids."""
    series = pl.Series(column, np.asarray(values)) if not hasattr(values, "iloc") else None
    col = pl.from_pandas(values) if series is None else series
    if col.null_count():
        raise DataError(f"column {column!r}: missing id")
    raw = _id_column(col, column, lambda k: f"column {column!r}")
    _check_id_values(raw, column, lambda k: f"column {column!r}")
    return raw


def id_map(distinct: Any, column: str, name: str) -> IdMap:
    """The id map of the distinct raw ids of a column: sorted, as in one process."""
    raw = np.unique(id_array(distinct, column))
    if raw.size == 0:
        raise DataError(f"column {column!r} holds no ids: the ratings are empty")
    return IdMap._from_sorted_unique(raw, name)


def rating_array(values: Any, column: str) -> np.ndarray:
    """Ratings of a pandas Series as float32, shape (n,), checked as one process checks
    them (numeric, finite in float32)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        raise DataError(f"rating column {column!r} must be numeric, got {values.dtype}")
    return _checked_ratings(arr, arr.size, arr.size, lambda k: f"column {column!r}, row {k}")


@dataclass(frozen=True)
class Columns:
    """Names of the user, item and rating columns."""

    user: str
    item: str
    rating: str


def split_partition(
    part: Any, cols: Columns, users: IdMap, items: IdMap, by_item: bool, n_shards: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The ratings of one partition, indexed and cut by shard.

    Returns
    -------
    list of ``n_shards`` tuples ``(local_row, other, rating)``
        Arrays of shape (n_w,): the RBM row's index within shard ``w`` (int32; global row
        ``local_row * n_shards + w``), the other index (int32: item, or user when
        ``by_item``) and the float32 rating. Row ``g`` (user, or item when ``by_item``) is in shard
        ``g % n_shards``.
    """
    u = users.to_index(id_array(part[cols.user], cols.user)).astype(np.int64)
    i = items.to_index(id_array(part[cols.item], cols.item)).astype(np.int64)
    r = rating_array(part[cols.rating], cols.rating)
    row, other = (i, u) if by_item else (u, i)
    del u, i
    shard = row % n_shards
    out = []
    for w in range(n_shards):
        keep = shard == w
        local = (row[keep] // n_shards).astype(np.int32)
        out.append((local, other[keep].astype(np.int32), r[keep]))
    return out


def shard_matrix(
    pieces: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_local: int,
    n_other: int,
    by_item: bool,
    users: IdMap,
    items: IdMap,
    shard: int,
    n_shards: int,
) -> sp.csr_matrix:
    """The ratings of one shard as canonical CSR in users x items coordinates.

    Shape (n_local, n_items) for a user shard, (n_users, n_local) for an item shard
    (``by_item``); float32 data, int32 indices.

    Raises
    ------
    DataError
        A (user, item) pair is rated twice (named by its raw ids).
    """
    # A counting sort by row, piece by piece, into the CSR arrays; then each row's columns
    # sorted in place: beyond the pieces, 8 bytes per rating and one piece's temporaries.
    indptr = np.zeros(n_local + 1, dtype=np.int64)
    for rows, _, _ in pieces:
        indptr[1:] += np.bincount(rows, minlength=n_local)
    np.cumsum(indptr, out=indptr)
    indptr = indptr.astype(np.int32)  # as make_csr keeps it: scipy would widen indices too
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    cursor = indptr[:-1].copy()
    for rows, other, vals in pieces:
        if not len(rows):
            continue
        order = np.argsort(rows, kind="stable")
        r = rows[order]
        first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        runs = np.diff(np.r_[first, r.size])
        pos = cursor[r] + (np.arange(r.size) - np.repeat(first, runs))
        indices[pos] = other[order]
        data[pos] = vals[order]
        cursor[r[first]] += runs
    m = sp.csr_matrix((data, indices, indptr), shape=(n_local, n_other), copy=False)
    m.has_sorted_indices = False
    m.sort_indices()
    same = m.indices[1:] == m.indices[:-1]
    same[m.indptr[1:-1][m.indptr[1:-1] > 0] - 1] = False  # across a row boundary
    if same.any():
        at = int(np.argmax(same))
        local = int(np.searchsorted(m.indptr, at, side="right")) - 1
        g, o = local * n_shards + shard, int(m.indices[at])
        u, i = (o, g) if by_item else (g, o)
        raise DataError(
            f"duplicate rating of item {items.to_raw(i)!r} by user {users.to_raw(u)!r}; keep "
            "one rating per pair"
        )
    del same
    m = make_csr(m.data, m.indices, m.indptr, (n_local, n_other))
    return sp.csr_matrix(m.T) if by_item else m


def shard_rows(n_rows: int, shard: int, n_shards: int) -> int:
    """Rows of shard ``shard``: those ``g`` with ``g % n_shards == shard``."""
    return len(range(shard, n_rows, n_shards))


def assemble(shards: Sequence[sp.csr_matrix], n_users: int, n_items: int, by_item: bool) -> Any:
    """The whole users x items ratings CSR from the shards of :func:`shard_matrix`
    (canonical: sorted indices), identical to the one-process matrix."""
    n = len(shards)
    if by_item:
        stacked = sp.hstack([s.tocsc() for s in shards], format="csc")
        total = n_items
    else:
        stacked = sp.vstack(shards, format="csr")
        total = n_users
    offsets = np.cumsum([0] + [s.shape[1 if by_item else 0] for s in shards])
    g = np.arange(total)
    position = offsets[g % n] + g // n
    X = stacked[:, position].tocsr() if by_item else stacked[position]
    X = sp.csr_matrix(X)
    X.sort_indices()
    return make_csr(X.data.astype(np.float32), X.indices, X.indptr, (n_users, n_items))
