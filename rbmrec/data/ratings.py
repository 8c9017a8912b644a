"""The ``Ratings`` container: a users x items CSR matrix of raw ratings plus its id maps.

Every loader returns one and every model takes its ``user_items``. Ratings are stored as
given, on any finite scale (1..5, half stars, 0..4, -10..10 in steps of 0.01, ...): every
stored entry of the CSR matrix is a rating, an explicit 0 and negative values included, and
only an absent entry is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.data.idmap import IdMap, _as_id_array
from rbmrec.errors import DataError
from rbmrec.models._sparse import keep_entries, make_csr, repeated_entry

Duplicates = Literal["error", "last", "mean"]


# --------------------------------------------------------------------------- CSR matrices


def as_rating_csr(matrix: Any) -> sp.csr_matrix:
    """Any matrix (a ``Ratings``, scipy sparse, dense) as canonical float32/int32 CSR.

    Canonical: sorted indices, no duplicates. Explicit zeros of a sparse matrix are kept:
    they are ratings of 0. A dense array has no way to mark a missing entry other than 0, so
    its zeros are missing entries.

    Raises
    ------
    TypeError
        The matrix holds complex numbers.
    DataError
        The matrix is not 2-D; a sparse matrix stores some (user, item) pair more than once
        (scipy would silently sum the ratings); or a rating is NaN or infinite (also after
        the cast to float32).
    """
    if hasattr(matrix, "user_items") and not sp.issparse(matrix):
        return matrix.user_items
    if np.iscomplexobj(matrix.data if sp.issparse(matrix) else np.asarray(matrix)):
        # The cast to float32 would drop the imaginary part with only a warning.
        raise TypeError("ratings must be real numbers, got a complex matrix")
    if sp.issparse(matrix):
        _check_no_repeated_pairs(matrix)
        m = sp.csr_matrix(matrix)
    else:
        arr = np.asarray(matrix)
        if arr.ndim != 2:
            raise DataError(f"expected a 2-D users x items matrix, got shape {arr.shape}")
        m = sp.csr_matrix(arr)
    if m.dtype != np.float32:
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            m = m.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(m.data))
    if bad.size:
        k = int(bad[0])
        row = int(np.searchsorted(m.indptr, k, side="right")) - 1
        raise DataError(
            f"ratings must be finite numbers: user {row}, item {int(m.indices[k])} holds "
            f"{m.data[k]} (NaN, infinity, or beyond the float32 range)"
        )
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if m.indices.dtype != np.int32 or m.indptr.dtype != np.int32:
        m = make_csr(m.data, m.indices, m.indptr, m.shape)
    return m


def _check_no_repeated_pairs(matrix: Any, what: str = "ratings") -> None:
    """Raise :class:`DataError` if a scipy sparse matrix stores a (row, column) pair twice.

    COO (and non-canonical CSR/CSC) matrices may hold repeated entries, which scipy sums on
    conversion: two ratings 4 and 5 would become one rating 9 (two timestamps, a date
    centuries away). ``what`` names the matrix in the message ("ratings", "timestamps").
    """
    rep = repeated_entry(matrix)
    if rep is not None:
        raise DataError(
            f"the sparse {what} matrix stores (user {rep.row}, item {rep.col}) {rep.count} "
            f"times (scipy would add the {what} up); keep one entry per pair, or use "
            "Ratings.from_arrays with duplicates='last' or 'mean'"
        )


def row_of_entries(indptr: np.ndarray) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix (int32, shape (nnz,))."""
    n_rows = indptr.size - 1
    return np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(indptr))


def _stable_sort(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(permutation, sorted keys) of a stable sort of non-negative int64 keys.

    Sorting ``key * n + position`` by value is several times faster than an indirect
    ``argsort`` and breaks ties by position; it is used whenever the product fits in int64.
    """
    n = key.size
    if (int(key.max()) + 1) * n < 2**63:
        packed = key * n + np.arange(n, dtype=np.int64)
        packed.sort()
        return packed % n, packed // n
    order = np.argsort(key, kind="stable")
    return order, key[order]


def _factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique ids, int32 index of each id): ``np.unique`` but O(n) for compact ints."""
    if ids.dtype.kind in "iu" and ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo >= 0 and hi < 4 * ids.size + 1_000_000:
            present = np.zeros(hi + 1, dtype=bool)
            present[ids] = True
            uniq = np.flatnonzero(present).astype(np.int64)
            lookup = np.cumsum(present, dtype=np.int64) - 1
            return uniq, lookup[ids].astype(np.int32)
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.astype(np.int32).reshape(-1)


# --------------------------------------------------------------------------- describe


@dataclass(frozen=True)
class Description:
    """Summary counts of a :class:`Ratings` (``describe()``); ``str()`` is a small table."""

    n_users: int
    n_items: int
    n_ratings: int
    density: float
    histogram: dict[float, int]
    mean_rating: float
    ratings_per_user: dict[str, float]
    ratings_per_item: dict[str, float]
    has_timestamps: bool
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __str__(self) -> str:
        hist = ", ".join(f"{k:g}: {v:,}" for k, v in self.histogram.items())
        pu, pi = self.ratings_per_user, self.ratings_per_item
        lines = [
            f"{self.name or 'ratings'}: {self.n_ratings:,} ratings, {self.n_users:,} users, "
            f"{self.n_items:,} items, density {self.density:.4%}",
            f"  rating histogram: {hist}",
            f"  mean rating {self.mean_rating:.3f}",
            f"  ratings per user: min {pu['min']:g}, median {pu['median']:g}, max {pu['max']:g}",
            f"  ratings per item: min {pi['min']:g}, median {pi['median']:g}, max {pi['max']:g}",
            f"  timestamps: {'yes' if self.has_timestamps else 'no'}",
        ]
        return "\n".join(lines)


def _count_stats(counts: np.ndarray) -> dict[str, float]:
    if counts.size == 0:
        return {"min": 0.0, "median": 0.0, "mean": 0.0, "max": 0.0}
    return {
        "min": float(counts.min()),
        "median": float(np.median(counts)),
        "mean": float(counts.mean()),
        "max": float(counts.max()),
    }


# --------------------------------------------------------------------------- Ratings


class Ratings:
    """Explicit ratings as a users x items CSR matrix, with the raw-id maps.

    Parameters
    ----------
    user_items : scipy sparse matrix, shape (n_users, n_items)
        Raw ratings on any finite scale; stored as float32 CSR with int32 indices and
        sorted indices. Every stored entry is a rating (an explicit 0 or a negative value
        too); only absent entries are missing. NaN and infinities are rejected. A dense
        array's zeros are absent entries.
    user_ids, item_ids : IdMap or array-like, optional
        Raw id of each row / column; default ``0 .. n - 1``.
    timestamps : scipy sparse matrix, optional
        Same sparsity pattern as ``user_items`` (int64 seconds since the epoch).
    items : polars.DataFrame, optional
        Item metadata, one row per item index in index order, with column ``item_id`` (raw
        id) and ``title`` when known. Rows are aligned by ``item_id`` if they are not.
    users : polars.DataFrame, optional
        User metadata, one row per user index, with column ``user_id``.
    values : sequence of float, optional
        The rating scale (e.g. 1..5); default: the distinct stored values.
    name : str, optional
        Data set name for messages and ``describe()``.
    info : dict, optional
        Provenance (release, files, options).
    truth : object, optional
        Planted structure of synthetic data (see :func:`rbmrec.data.make_ratings`).

    Attributes
    ----------
    user_items : scipy.sparse.csr_matrix, float32, shape (n_users, n_items)
    user_ids, item_ids : IdMap
    timestamps : scipy.sparse.csr_matrix (int64) or None
    items, users : polars.DataFrame or None
    values : numpy.ndarray of float32, sorted
    """

    def __init__(
        self,
        user_items: Any,
        user_ids: IdMap | Sequence[Any] | np.ndarray | None = None,
        item_ids: IdMap | Sequence[Any] | np.ndarray | None = None,
        *,
        timestamps: Any = None,
        items: pl.DataFrame | None = None,
        users: pl.DataFrame | None = None,
        values: Sequence[float] | np.ndarray | None = None,
        name: str = "",
        info: dict[str, Any] | None = None,
        truth: Any = None,
        _checked: bool = False,
    ) -> None:
        m = as_rating_csr(user_items)
        n_users, n_items = m.shape
        if not _checked and m.nnz:
            if not np.all(np.isfinite(m.data)):
                raise DataError("ratings must be finite numbers (found NaN or infinity)")
        self.user_ids = _id_map(user_ids, n_users, "user")
        self.item_ids = _id_map(item_ids, n_items, "item")
        self.user_items = m
        self.timestamps = _aligned_timestamps(timestamps, m) if timestamps is not None else None
        self.items = _align_meta(items, self.item_ids, "item_id") if items is not None else None
        self.users = _align_meta(users, self.user_ids, "user_id") if users is not None else None
        if values is None:
            vals = np.unique(m.data)
        else:
            vals = np.unique(np.asarray(values, dtype=np.float32))
        self.values = vals.astype(np.float32)
        self.name = name
        self.info = dict(info or {})
        self.truth = truth

    # ------------------------------------------------------------------ sizes

    @property
    def n_users(self) -> int:
        return int(self.user_items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.user_items.shape[1])

    @property
    def n_ratings(self) -> int:
        return int(self.user_items.nnz)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return self.n_ratings

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        ts = ", timestamps" if self.timestamps is not None else ""
        return (
            f"Ratings({label}{self.n_ratings:,} ratings, {self.n_users:,} users x "
            f"{self.n_items:,} items{ts})"
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_arrays(
        cls,
        user: Any,
        item: Any,
        rating: Any,
        timestamp: Any = None,
        *,
        duplicates: Duplicates = "error",
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
        where: Callable[[int], str] | None = None,
        **kwargs: Any,
    ) -> Ratings:
        """Build from parallel arrays of raw user ids, raw item ids and ratings.

        Parameters
        ----------
        user, item : array-like, shape (n,)
            Raw ids (non-negative integers or strings).
        rating : array-like of float, shape (n,)
            Finite ratings on any scale; 0 and negative values are ratings like any other
            (each becomes an explicit entry of the CSR matrix).
        timestamp : array-like of int or datetime64, shape (n,), optional
            Seconds since the epoch (floats must be whole numbers) or datetime64 values;
            NaN and NaT are rejected.
        duplicates : {"error", "last", "mean"}, default "error"
            What a repeated (user, item) pair does: raise, keep the last one in input order,
            or average the ratings (the timestamp of the last one is kept).
        user_ids, item_ids : IdMap, optional
            Existing maps to index with (unknown ids are an error); default: the sorted
            distinct ids.
        where : callable, optional
            ``where(k)`` names the origin of input row ``k`` (e.g. ``"file, line 7"``) in
            error messages.
        **kwargs
            Passed to the constructor (``items``, ``users``, ``values``, ``name``, ``info``).
        """
        if duplicates not in ("error", "last", "mean"):
            raise ValueError(f"duplicates must be 'error', 'last' or 'mean', got {duplicates!r}")
        loc = where or _row_label
        u_raw = _as_id_array(user, "user", loc)
        i_raw = _as_id_array(item, "item", loc)
        r = _checked_ratings(rating, u_raw.size, i_raw.size, loc)
        for raw, what in ((u_raw, "user"), (i_raw, "item")):
            _check_id_values(raw, what, loc)
        ts = None if timestamp is None else _checked_timestamps(timestamp, r.size, loc)
        u_idx, user_ids = _indexed(u_raw, user_ids, "user")
        i_idx, item_ids = _indexed(i_raw, item_ids, "item")
        entries = _Entries(u_idx.astype(np.int64) * len(item_ids) + i_idx, r, ts)
        entries = entries.sorted().merged(duplicates, u_raw, i_raw, loc)
        m, t = entries.csr(len(user_ids), len(item_ids))
        return cls(m, user_ids, item_ids, timestamps=t, _checked=True, **kwargs)

    @classmethod
    def from_frame(
        cls,
        df: Any,
        user: str = "user_id",
        item: str = "item_id",
        rating: str = "rating",
        timestamp: str | None = None,
        duplicates: Duplicates = "error",
        **kwargs: Any,
    ) -> Ratings:
        """Build from a polars (or pandas) data frame with one rating per row.

        Parameters
        ----------
        df : polars.DataFrame or pandas.DataFrame
        user, item, rating : str
            Column names (defaults match :meth:`to_frame`).
        timestamp : str, optional
            Column of timestamps: integers (seconds), whole-number floats, or dates/datetimes.
        duplicates : {"error", "last", "mean"}, default "error"
        **kwargs
            Passed on (``items``, ``name``, ``values``, ``where`` ...).
        """
        if not isinstance(df, pl.DataFrame):
            try:
                df = pl.from_pandas(df) if hasattr(df, "iloc") else pl.DataFrame(df)
            except Exception as exc:
                raise DataError(f"cannot read a data frame from {type(df).__name__}") from exc
        wanted = [user, item, rating] + ([timestamp] if timestamp else [])
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise DataError(f"column(s) {missing} not in the frame (columns: {df.columns})")
        where = kwargs.pop("where", None) or _row_label
        for col in wanted:
            nulls = df[col].is_null()
            if nulls.any():
                k = int(nulls.arg_true()[0])
                raise DataError(f"{where(k)}: missing value in column {col!r}")
        rcol = df[rating]
        if not rcol.dtype.is_numeric():
            raise DataError(
                f"rating column {rating!r} must be numeric, got {rcol.dtype} "
                f"(first value {rcol[0]!r})"
            )
        ts = _timestamp_column(df[timestamp], timestamp) if timestamp else None
        return cls.from_arrays(
            _id_column(df[user], user, where),
            _id_column(df[item], item, where),
            rcol.cast(pl.Float64).to_numpy(),
            ts,
            duplicates=duplicates,
            where=where,
            **kwargs,
        )

    def to_frame(self, raw_ids: bool = True) -> pl.DataFrame:
        """One row per rating: ``user_id``, ``item_id``, ``rating`` (+ ``timestamp``).

        Parameters
        ----------
        raw_ids : bool, default True
            Raw ids (as in the files); False gives the int32 indices.
        """
        m = self.user_items
        rows = row_of_entries(m.indptr)
        cols = m.indices
        if raw_ids:
            u, i = self.user_ids.raw[rows], self.item_ids.raw[cols]
        else:
            u, i = rows, cols
        data = {"user_id": u, "item_id": i, "rating": m.data}
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps.data
        return pl.DataFrame(data)

    def _derive(
        self, user_items: sp.csr_matrix, timestamps: sp.csr_matrix | None, **changes: Any
    ) -> Ratings:
        """A Ratings over the same ids and metadata with other entries."""
        kwargs: dict[str, Any] = {
            "timestamps": timestamps,
            "items": self.items,
            "users": self.users,
            "values": self.values,
            "name": self.name,
            "info": dict(self.info),
            "truth": self.truth,
        }
        kwargs.update(changes)
        return Ratings(user_items, self.user_ids, self.item_ids, _checked=True, **kwargs)

    # ------------------------------------------------------------------ transforms

    def binarize(self, threshold: float) -> Ratings:
        """Implicit feedback: 1 where the rating is >= ``threshold``; other entries dropped.

        Shapes, id maps and metadata are kept, so indices mean the same items.

        Parameters
        ----------
        threshold : float
            e.g. 4 on a 1..5 scale ("liked").
        """
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        keep = self.user_items.data >= threshold
        m = keep_entries(self.user_items, keep)
        m.data[:] = 1.0
        t = keep_entries(self.timestamps, keep) if self.timestamps is not None else None
        info = dict(self.info, binarized_at=float(threshold))
        return self._derive(m, t, values=np.ones(1, np.float32), info=info)

    def item_titles(self, indices: Any) -> list[str]:
        """Titles of item indices; the raw id as text where no title is known."""
        idx = np.asarray(indices).reshape(-1)
        raw = self.item_ids.to_raw(idx)
        if self.items is None or "title" not in self.items.columns:
            return [str(v) for v in raw.tolist()]
        titles = self.items["title"].gather(idx.astype(np.int64)).to_list()
        return [t if t is not None else str(r) for t, r in zip(titles, raw.tolist(), strict=True)]

    def describe(self) -> Description:
        """Counts, density and the rating histogram."""
        m = self.user_items
        vals, counts = np.unique(m.data, return_counts=True)
        cells = self.n_users * self.n_items
        return Description(
            n_users=self.n_users,
            n_items=self.n_items,
            n_ratings=self.n_ratings,
            density=self.n_ratings / cells if cells else 0.0,
            histogram={float(v): int(c) for v, c in zip(vals, counts, strict=True)},
            mean_rating=float(m.data.mean(dtype=np.float64)) if m.nnz else float("nan"),
            ratings_per_user=_count_stats(np.diff(m.indptr)),
            ratings_per_item=_count_stats(np.bincount(m.indices, minlength=self.n_items)),
            has_timestamps=self.timestamps is not None,
            name=self.name,
        )


# --------------------------------------------------------------------------- from_arrays steps


def _row_label(k: int) -> str:
    """How an input row is named in messages when the caller gives no ``where``."""
    return f"row {k}"


def _checked_ratings(
    rating: Any, n_users: int, n_items: int, loc: Callable[[int], str]
) -> np.ndarray:
    """``rating`` as float32, shape (n,), checked as stored: same length as the ids
    (``n_users`` and ``n_items`` values), numeric and finite in float32 (0 is a rating).

    Raises
    ------
    DataError
        The first problem, naming the row (``loc(k)``) where there is one.
    """
    r = np.asarray(rating)
    if r.ndim != 1:
        r = r.reshape(-1)
    if not (n_users == n_items == r.size):
        raise DataError(
            f"users, items and ratings differ in length: {n_users}, {n_items}, {r.size}"
        )
    if r.dtype.kind not in "iuf":
        raise DataError(f"ratings must be numeric, got dtype {r.dtype}")
    given = r
    # Checked as stored (float32): 1e-50 becomes 0 and 1e39 infinity there.
    with np.errstate(over="ignore", under="ignore"):
        r = r.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        k = bad[0]
        problem = "is not a finite number"
        if np.isfinite(given[k]):
            problem = "is beyond the float32 range of stored ratings (about 3.4e38)"
        raise DataError(f"{loc(k)}: rating {given[k].item()!r} {problem}")
    return r


def _check_id_values(raw: np.ndarray, what: str, loc: Callable[[int], str]) -> None:
    """Raise :class:`DataError` for float ids or a negative integer id (``what``: "user" or
    "item")."""
    if raw.dtype.kind == "f":
        raise DataError(f"{what} ids must be integers or strings, got floats")
    if raw.dtype.kind == "i" and raw.size:
        neg = np.flatnonzero(raw < 0)
        if neg.size:
            raise DataError(f"{loc(neg[0])}: negative {what} id {raw[neg[0]].item()}")


def _checked_timestamps(timestamp: Any, n: int, loc: Callable[[int], str]) -> np.ndarray:
    """``timestamp`` as int64 seconds, shape (n,) (see :func:`_epoch_seconds`)."""
    ts = np.asarray(timestamp).reshape(-1)
    if ts.size != n:
        raise DataError(f"timestamps has {ts.size} values for {n} ratings")
    return _epoch_seconds(ts, loc)


def _indexed(raw: np.ndarray, ids: IdMap | None, what: str) -> tuple[np.ndarray, IdMap]:
    """(index of each raw id, the id map): ``ids`` when given (unknown ids raise), else the
    sorted distinct ids."""
    if ids is None:
        uniq, idx = _factorize(raw)
        return idx, IdMap._from_sorted_unique(uniq, what)
    return ids.to_index(raw), ids


@dataclass
class _Entries:
    """Ratings being built: ``key = user * n_items + item`` (int64), the float32 ratings and
    the int64 timestamps (or None), all shape (n,); ``order[j]`` is the input row of entry
    ``j`` once :meth:`sorted` (None while in input order)."""

    key: np.ndarray
    data: np.ndarray
    ts: np.ndarray | None
    order: np.ndarray | None = None

    def sorted(self) -> _Entries:
        """The entries in key order (stable: repeated pairs stay in input order)."""
        key = self.key
        if not (key.size > 1 and np.any(key[1:] <= key[:-1])):
            return self
        order, key = _stable_sort(key)
        ts = None if self.ts is None else self.ts[order]
        return _Entries(key, self.data[order], ts, order)

    def merged(
        self,
        duplicates: Duplicates,
        u_raw: np.ndarray,
        i_raw: np.ndarray,
        loc: Callable[[int], str],
    ) -> _Entries:
        """Sorted entries with each repeated (user, item) pair merged as ``duplicates`` says
        (the last timestamp kept), or a :class:`DataError` naming both rows for "error"."""
        key = self.key
        if key.size <= 1:
            return self
        dup = key[1:] == key[:-1]
        if not dup.any():
            return self
        if duplicates == "error":
            j = int(np.flatnonzero(dup)[0])
            order = self.order
            a, b = (j, j + 1) if order is None else (int(order[j]), int(order[j + 1]))
            raise DataError(
                f"{loc(b)}: duplicate rating of item {i_raw[b].item()!r} by user "
                f"{u_raw[b].item()!r} "
                f"(first at {loc(a)}); pass duplicates='last' or 'mean' to merge them"
            )
        start = np.flatnonzero(np.r_[True, ~dup])
        last = np.r_[start[1:] - 1, key.size - 1]
        if duplicates == "mean":
            counts = np.diff(np.r_[start, key.size])
            # Averaged in float64 (no float32 overflow), checked as stored.
            data = np.add.reduceat(self.data.astype(np.float64), start) / counts
            with np.errstate(under="ignore"):
                data = data.astype(np.float32)
        else:
            data = self.data[last]
        return _Entries(key[start], data, None if self.ts is None else self.ts[last])

    def csr(self, n_users: int, n_items: int) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """(ratings, timestamps or None) as CSR matrices of shape (n_users, n_items), from
        sorted entries without repeated pairs."""
        rows = (self.key // n_items).astype(np.int32)
        cols = (self.key % n_items).astype(np.int32)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        m = make_csr(self.data, cols, indptr, (n_users, n_items))
        t = None if self.ts is None else make_csr(self.ts, cols, indptr, (n_users, n_items))
        return m, t


# --------------------------------------------------------------------------- internals


def _id_map(ids: Any, n: int, what: str) -> IdMap:
    if ids is None:
        return IdMap._from_sorted_unique(np.arange(n, dtype=np.int64), what)
    m = ids if isinstance(ids, IdMap) else IdMap(ids, name=what)
    if len(m) != n:
        raise DataError(f"{what} id map has {len(m)} ids for {n} {what}s")
    return m


def _id_column(col: pl.Series, name: str, where: Callable[[int], str]) -> np.ndarray:
    if col.dtype.is_integer():
        big = col > np.iinfo(np.int64).max if col.dtype == pl.UInt64 else None
        if big is not None and big.any():
            k = int(big.arg_true()[0])
            raise DataError(
                f"{where(k)}: id column {name!r} holds {col[k]}, too large for int64 "
                "(store such ids as strings)"
            )
        return col.cast(pl.Int64).to_numpy()
    if col.dtype in (pl.String, pl.Categorical, pl.Enum):
        return col.cast(pl.String).to_numpy().astype(str)
    if col.dtype.is_float():
        arr = col.to_numpy()
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            raise DataError(f"{where(bad[0])}: id column {name!r} holds non-integer {arr[bad[0]]}")
        # float64 2**63 is the first value int64 cannot hold (the cast would wrap silently).
        big = np.flatnonzero(np.abs(arr) >= 2.0**63)
        if big.size:
            raise DataError(
                f"{where(big[0])}: id column {name!r} holds {arr[big[0]]:g}, too large for int64 "
                "(store such ids as strings)"
            )
        return arr.astype(np.int64)
    raise DataError(f"id column {name!r} must hold integers or strings, got {col.dtype}")


def _timestamp_column(col: pl.Series, name: str) -> np.ndarray:
    """Seconds since the epoch from an integer, float, date or datetime column.

    Integer and datetime columns give int64; a float column is returned as is, for
    :func:`_epoch_seconds` (in ``from_arrays``) to reject NaN and fractions by row.
    """
    if col.dtype == pl.Date:
        col = col.cast(pl.Datetime("ms"))
    if isinstance(col.dtype, pl.Datetime):
        return (col.dt.epoch("ms") // 1000).to_numpy()
    if col.dtype.is_integer():
        return col.to_numpy()
    if col.dtype.is_float():
        return col.cast(pl.Float64).to_numpy()
    raise DataError(f"timestamp column {name!r} must hold integers or datetimes, got {col.dtype}")


def _epoch_seconds(ts: np.ndarray, where: Callable[[int], str]) -> np.ndarray:
    """int64 seconds since the epoch from integers, whole-number floats or datetime64.

    NaT, NaN, infinities, fractions of a second given as floats, and values outside int64
    raise :class:`DataError` naming the entry (``where(k)``): cast blindly, they would become
    INT64_MIN or be truncated and then mislead temporal splits.
    """
    kind = ts.dtype.kind
    if kind == "M":
        bad = np.flatnonzero(np.isnat(ts))
        if bad.size:
            raise DataError(f"{where(bad[0])}: missing timestamp (NaT)")
        return ts.astype("datetime64[s]").astype(np.int64)
    if kind == "f":
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(ts) & (ts == np.round(ts)) & (np.abs(ts) < 2.0**63)
        bad = np.flatnonzero(~ok)
        if bad.size:
            raise DataError(
                f"{where(bad[0])}: timestamp {ts[bad[0]]} is not a whole number of seconds"
            )
        return ts.astype(np.int64)
    if kind == "u":
        big = np.flatnonzero(ts > np.iinfo(np.int64).max)
        if big.size:
            raise DataError(f"{where(big[0])}: timestamp {ts[big[0]]} is too large for int64")
        return ts.astype(np.int64)
    if kind == "i":
        return ts.astype(np.int64, copy=False)
    if kind == "O":
        missing = [k for k, v in enumerate(ts) if v is None]
        if missing:
            raise DataError(f"{where(missing[0])}: missing timestamp (None)")
        # Python ints, floats or datetimes in an object array: convert, then check as such.
        plain = np.asarray(ts.tolist())
        if plain.dtype.kind in "iufM":
            return _epoch_seconds(plain, where)
    raise DataError(
        f"timestamps must be integers (seconds since the epoch) or datetime64, got {ts.dtype}"
    )


def _aligned_timestamps(ts: Any, m: sp.csr_matrix) -> sp.csr_matrix:
    """``ts`` as int64 CSR with the pattern of ``m``; repeated (user, item) entries in a
    sparse ``ts`` raise :class:`DataError` (converting would add them up)."""
    if sp.issparse(ts):
        _check_no_repeated_pairs(ts, "timestamps")
    t = sp.csr_matrix(ts)
    if t.shape != m.shape:
        raise DataError(f"timestamps has shape {t.shape}, ratings {m.shape}")
    t.sort_indices()
    if t.nnz != m.nnz or not (
        np.array_equal(t.indptr, m.indptr) and np.array_equal(t.indices, m.indices)
    ):
        raise DataError("timestamps must have the same sparsity pattern as the ratings")
    data = _epoch_seconds(t.data, lambda k: f"timestamps entry {k}")
    return make_csr(data, m.indices, m.indptr, m.shape)


def _align_meta(meta: pl.DataFrame, ids: IdMap, key: str) -> pl.DataFrame:
    """One metadata row per index, in index order (nulls where an id has none)."""
    if not isinstance(meta, pl.DataFrame):
        raise DataError(f"metadata must be a polars DataFrame, got {type(meta).__name__}")
    if key not in meta.columns:
        raise DataError(f"metadata has no {key!r} column (columns: {meta.columns})")
    raw = pl.Series(key, ids.raw)
    col = meta[key]
    if meta.height == len(ids) and col.dtype == raw.dtype and col.equals(raw):
        return meta
    if col.dtype != raw.dtype:
        try:
            meta = meta.with_columns(pl.col(key).cast(raw.dtype))
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"metadata {key!r} cannot be matched to the ids") from exc
    meta = meta.unique(subset=key, keep="first", maintain_order=True)
    return pl.DataFrame({key: raw}).join(meta, on=key, how="left", maintain_order="left")
