"""Id maps: raw user/item ids (ints or strings, as in the files) <-> dense int32 indices.

Models only ever see indices ``0 .. n-1``; the map is how results are translated back to the
ids a user knows. Lookups are vectorised (``searchsorted`` over a sorted copy), so mapping a
million ids costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

from rbmrec.errors import DataError

Unknown = Literal["error", "minus_one"]


class UnknownIdError(DataError, KeyError):
    """A raw id is not in the id map (raised by ``IdMap.to_index(..., unknown="error")``)."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument; keep the plain message.
        return str(self.args[0]) if self.args else ""


def _as_id_array(
    values: Any, what: str = "id", where: Callable[[int], str] | None = None
) -> np.ndarray:
    """A 1-D numpy array of ids: int64 for integers, unicode for strings.

    Parameters
    ----------
    values : array-like, shape (n,)
    what : str, default "id"
        What the ids are ("user", "item"), for messages.
    where : callable, optional
        ``where(k)`` names the origin of element ``k`` in messages; default "position k".

    Raises
    ------
    DataError
        Not 1-D, booleans, a missing id (``None`` or NaN in an object array), or an unsigned
        id beyond the int64 range.
    TypeError
        Bytes (or complex) ids: ``b"a"`` would never be found by ``to_index("a")``.
    """
    loc = where or _position
    noun = "id" if what == "id" else f"{what} id"
    if isinstance(values, list | tuple):
        # numpy would turn ["a", b"b"] into the str "b" or "b'b'": check the elements first.
        for k, v in enumerate(values):
            if isinstance(v, bytes | bytearray):
                raise _bytes_error(loc(k), noun, v)
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"ids must be a 1-D sequence, got an array of shape {arr.shape}")
    if arr.size == 0 and arr.dtype.kind == "f":
        # np.asarray([]) is float64: an empty sequence holds no float ids.
        return arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.size:
        big = np.flatnonzero(arr > np.iinfo(np.int64).max)
        if big.size:
            raise DataError(
                f"{loc(big[0])}: {noun} {arr[big[0]].item()} is too large (integer ids "
                "must fit in int64; pass them as strings)"
            )
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise DataError("ids must be integers or strings, not booleans")
    if arr.dtype.kind in "SV" and arr.size:
        # b"a" would never match the str "a" that lookups and files give: decode first.
        raise TypeError(
            f"{noun}s must be integers or str, not bytes ({arr[0].item()!r}); decode them "
            "first (e.g. [b.decode() for b in ids])"
        )
    if arr.dtype.kind == "c":
        raise TypeError(f"{noun}s must be integers or str, not complex numbers")
    if arr.dtype.kind == "O":
        return _object_ids(arr, noun, loc)
    return arr


def _position(k: int) -> str:
    """How element ``k`` of ids is named in messages when the caller gives no ``where``."""
    return f"position {k}"


def _bytes_error(where_k: str, noun: str, v: Any) -> TypeError:
    """The error for a bytes id ``v`` at ``where_k``: ``b"a"`` would never match ``"a"``."""
    return TypeError(
        f"{where_k}: {noun} {v!r} is bytes; ids must be integers or str: decode them "
        "first (e.g. b.decode())"
    )


def _object_ids(arr: np.ndarray, noun: str, loc: Callable[[int], str]) -> np.ndarray:
    """Ids from an object array (shape (n,)): int64 when every element is an int, else
    unicode; a missing id (None, NaN) raises :class:`DataError`, a bytes id TypeError."""
    for k, v in enumerate(arr):
        # str(None) == "None" and str(nan) == "nan" would become real ids.
        if v is None or (isinstance(v, float | np.floating) and np.isnan(v)):
            raise DataError(f"{loc(k)}: missing {noun} ({v!r})")
        if isinstance(v, bytes | bytearray):
            raise _bytes_error(loc(k), noun, v)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr):
        try:
            return arr.astype(np.int64)
        except OverflowError:
            raise DataError(
                f"{noun}s must fit in int64 (found {max(arr)}); pass them as strings"
            ) from None
    return arr.astype(str)


class IdMap:
    """A bijection between raw ids and dense indices ``0 .. len - 1``.

    Parameters
    ----------
    raw : array-like, shape (n,)
        The raw id of each index, in index order. Integers (stored as int64) or strings;
        must be unique.
    name : str, default "id"
        What the ids are ("user", "item"), used in error messages.

    Examples
    --------
    >>> m = IdMap([10, 20, 30], name="item")
    >>> m.to_index(20)
    1
    >>> m.to_index([30, 99], unknown="minus_one").tolist()
    [2, -1]
    >>> m.to_raw([0, 2]).tolist()
    [10, 30]
    """

    __slots__ = ("_order", "_raw", "_sorted", "name")

    def __init__(self, raw: Any, name: str = "id") -> None:
        arr = _as_id_array(raw, name)
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise DataError(f"{name} ids must be integers or strings, got non-integer floats")
            arr = arr.astype(np.int64)
        order = np.argsort(arr, kind="stable")
        srt = arr[order]
        if srt.size > 1:
            dup = np.flatnonzero(srt[1:] == srt[:-1])
            if dup.size:
                raise DataError(f"{name} id map has a repeated id: {srt[dup[0]].item()!r}")
        arr = arr.copy()
        arr.flags.writeable = False
        srt.flags.writeable = False
        self._raw = arr
        # Sorted input (the usual case: maps are built from np.unique) needs no permutation.
        self._order = None if np.array_equal(order, np.arange(order.size)) else order
        self._sorted = srt
        self.name = name

    @classmethod
    def _from_sorted_unique(cls, raw: np.ndarray, name: str) -> IdMap:
        """Build from ids known to be sorted and unique (skips the checks)."""
        obj = cls.__new__(cls)
        raw = np.asarray(raw)
        raw.flags.writeable = False
        obj._raw = raw
        obj._order = None
        obj._sorted = raw
        obj.name = name
        return obj

    @property
    def raw(self) -> np.ndarray:
        """Raw ids in index order (read-only array, shape (n,))."""
        return self._raw

    @property
    def dtype(self) -> np.dtype:
        """dtype of the raw ids (int64 or unicode)."""
        return self._raw.dtype

    def __len__(self) -> int:
        return int(self._raw.size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw.tolist())

    def __contains__(self, raw: Any) -> bool:
        return bool(self.to_index(raw, unknown="minus_one") >= 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self._raw.dtype.kind == other._raw.dtype.kind and np.array_equal(
            self._raw, other._raw
        )

    def __hash__(self) -> int:
        # Python values, not bytes: equal maps of "<U1" and "<U5" ids must hash alike.
        return hash((len(self), self._raw.dtype.kind, tuple(self._raw[:8].tolist())))

    def __repr__(self) -> str:
        head = ", ".join(repr(v) for v in self._raw[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap({self.name}, n={len(self)}, raw=[{head}{more}])"

    def to_index(self, raw: Any, unknown: Unknown = "error") -> Any:
        """Indices of raw ids.

        Parameters
        ----------
        raw : scalar or array-like
            One raw id or a sequence of them.
        unknown : {"error", "minus_one"}, default "error"
            What an id absent from the map gives: an :class:`UnknownIdError` (a ``KeyError``
            and ``DataError``), or ``-1``.

        Returns
        -------
        int for a scalar, else numpy.ndarray of int32 with the input's length.
        """
        if unknown not in ("error", "minus_one"):
            raise ValueError(f"unknown must be 'error' or 'minus_one', got {unknown!r}")
        scalar = np.ndim(raw) == 0
        query = np.asarray(raw).reshape(-1) if not scalar else np.asarray([raw])
        result = np.full(query.size, -1, dtype=np.int32)
        if query.size and len(self):
            query = self._comparable(query)
            if query is not None:
                pos = np.searchsorted(self._sorted, query)
                pos_c = np.minimum(pos, len(self) - 1)
                found = self._sorted[pos_c] == query
                hit = pos_c[found]
                result[found] = hit if self._order is None else self._order[hit]
        if unknown == "error":
            missing = np.flatnonzero(result < 0)
            if missing.size:
                asked = np.asarray(raw).reshape(-1)[missing[:5]]
                shown = ", ".join(repr(v) for v in asked.tolist())
                more = f" and {missing.size - 5} more" if missing.size > 5 else ""
                raise UnknownIdError(
                    f"unknown {self.name} id(s): {shown}{more} (the map has {len(self)} ids; "
                    "pass unknown='minus_one' to get -1 instead)"
                )
        return int(result[0]) if scalar else result

    def _comparable(self, query: np.ndarray) -> np.ndarray | None:
        """The query cast to the map's id kind, or None when no element can match."""
        kind = self._raw.dtype.kind
        if kind == "i":
            if query.dtype.kind in "iu":
                return query.astype(np.int64, copy=False)
            if query.dtype.kind == "f":
                out = np.full(query.shape, np.iinfo(np.int64).min, dtype=np.int64)
                ok = np.isfinite(query) & (query == np.round(query))
                out[ok] = query[ok].astype(np.int64)
                return out
            if query.dtype.kind == "O":
                try:
                    return query.astype(np.int64)
                except (TypeError, ValueError):
                    return None
            return None
        if query.dtype.kind in "US":
            return query.astype(str, copy=False)
        if query.dtype.kind == "O":
            return query.astype(str)
        return None

    def to_raw(self, indices: Any) -> Any:
        """Raw ids of indices.

        Parameters
        ----------
        indices : int or array-like of int
            Indices in ``0 .. len - 1`` (negative values are an error, not Python wrap-around).

        Returns
        -------
        The raw id (Python scalar) for a scalar, else a numpy array of raw ids.
        """
        scalar = np.ndim(indices) == 0
        idx = np.asarray(indices).reshape(-1)
        if idx.size and idx.dtype.kind not in "iu":
            if idx.dtype.kind == "f" and np.all(idx == np.round(idx)):
                idx = idx.astype(np.int64)
            else:
                raise DataError(f"{self.name} indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise IndexError(f"{self.name} index {int(bad)} out of range 0..{len(self) - 1}")
        out = self._raw[idx.astype(np.intp, copy=False)]
        return out[0].item() if scalar else out
