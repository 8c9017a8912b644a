"""Generic loader for users' own exports: CSV, TSV (or any delimiter) and parquet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rbmrec.data._io import (
    blank_lines,
    decode_text,
    first_non_utf8_line,
    line_text,
    skip_lines,
)
from rbmrec.data.ratings import Duplicates, Ratings, _id_column, _timestamp_column
from rbmrec.errors import DataError

_SEPARATORS = {".tsv": "\t", ".tab": "\t", ".csv": ","}

# ISO 8601 dates and datetimes only: polars alone would also read 09/06/2005 (day first).
_ISO_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)


def _is_position(col: str | int | None) -> bool:
    return isinstance(col, int) and not isinstance(col, bool)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sniff(data: bytes) -> str:
    first = next((ln for ln in data[:65536].split(b"\n") if ln.strip()), b"")
    for sep in ("::", "\t", ",", ";", "|"):
        if sep.encode() in first:
            return sep
    return " "


def _column(df: pl.DataFrame, col: str | int, what: str, path: Path) -> str:
    if isinstance(col, int) and not isinstance(col, bool):
        if not 0 <= col < df.width:
            raise DataError(f"{path}: {what} column {col} out of range (the file has {df.width})")
        return df.columns[col]
    if col not in df.columns:
        raise DataError(
            f"{path}: {what} column {col!r} not found (columns: {df.columns}); pass the name "
            f"with {what}=..."
        )
    return col


def load_table(
    path: str | Path,
    user: str | int = "user_id",
    item: str | int = "item_id",
    rating: str | int = "rating",
    timestamp: str | int | None = None,
    sep: str | None = None,
    *,
    has_header: bool | None = None,
    duplicates: Duplicates = "error",
    items: pl.DataFrame | None = None,
    name: str | None = None,
) -> Ratings:
    """Load ratings from a CSV/TSV/delimited text file or a parquet file.

    Parameters
    ----------
    path : str or Path
        ``.parquet`` is read as parquet; anything else as delimited text.
    user, item, rating : str or int
        Column names, or 0-based positions (e.g. for files without a header). Ids in text
        files are integers when every value is written as a plain integer, else strings
        (``0042`` stays the string id ``"0042"``); spaces around text-file values are
        ignored, while parquet string ids are kept exactly as stored (``" a"`` is not
        ``"a"``).
    timestamp : str or int, optional
        Column of integer timestamps (seconds) or dates/datetimes: typed, or ISO 8601 text
        (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS``, optionally with
        fractional seconds and a ``Z``/``+HH:MM`` offset; naive times are UTC). Other date
        formats (``09/06/2005``) are rejected rather than guessed.
    sep : str, optional
        Field separator; default from the suffix (``.csv`` ",", ``.tsv`` tab), else sniffed
        from the first line among ``::``, tab, ``,``, ``;``, ``|`` and space.
    has_header : bool, optional, keyword-only
        Whether the first (non-blank) line holds column names (text files). Default: True
        when any column is given by name, False when all are given by position. A header
        made only of numbers raises :class:`DataError` (it is a rating line, and reading it
        as a header would drop it silently): pass ``has_header=False``.
    duplicates : {"error", "last", "mean"}, default "error", keyword-only
    items : polars.DataFrame, optional, keyword-only
        Item metadata with an ``item_id`` column (and ``title``).
    name : str, optional, keyword-only
        Data set name (default: the file name without suffix).

    Returns
    -------
    Ratings
        Ids that all parse as integers are stored as integers, otherwise as strings. Every
        line is a stored rating, whatever its value: ratings on any finite scale (0 and
        negative values included, e.g. -10..10) become explicit entries of the CSR matrix.

    Raises
    ------
    DataError
        Missing columns, empty file, or a bad value (including a missing or blank id): the
        message names the file and line (parquet: row). Blank lines of text files are
        skipped; an all-null parquet row is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if has_header is None:
        given = (user, item, rating) + ((timestamp,) if timestamp is not None else ())
        has_header = not all(_is_position(c) for c in given)
    if path.suffix.lower() == ".parquet":
        df, origin = _read_parquet(path)
    else:
        df, origin = _read_text(path, sep, has_header)
    if df.height == 0:
        raise DataError(f"{path}: the file has no ratings")
    df, cols = _select(df, path, user=user, item=item, rating=rating, timestamp=timestamp)
    df = origin.drop_blank_rows(df, path)
    _check_values(df, cols, origin)
    rat = _rating_values(df["rating"], cols["rating"], path, origin)
    ids = {
        key: _ids(df[key], cols[key], origin.where, strip=origin.raw is not None)
        for key in ("user", "item")
    }
    for key, arr in ids.items():
        if arr.dtype.kind == "i":
            neg = np.flatnonzero(arr < 0)
            if neg.size:
                raise origin.fail(int(neg[0]), f"negative {key} id {arr[neg[0]]}")
    ts = None
    if timestamp is not None:
        ts = _timestamps(df["timestamp"], cols["timestamp"], origin.fail, origin.where)
    return Ratings.from_arrays(
        ids["user"],
        ids["item"],
        rat.to_numpy(),
        ts,
        duplicates=duplicates,
        where=origin.where,
        items=items,
        name=name or path.stem,
        info={"path": str(path), "format": "parquet" if origin.raw is None else "text"},
    )


@dataclass
class _Origin:
    """Where the rows of a loaded table come from, for messages.

    Attributes
    ----------
    label : str
        The file's path.
    raw : bytes or None
        A text file's bytes; None for a parquet file (whose messages name rows, not lines).
    sep : str
        A text file's field separator, as written in the file.
    line_of : callable or None
        ``line_of(rows)``: the physical line of each parsed row of a text file (see
        :func:`_line_numbers`).
    rows : ndarray of int or None
        Parsed row of each row kept (blank lines dropped); None: every row is kept.
    """

    label: str
    raw: bytes | None = None
    sep: str = ""
    line_of: Callable[[np.ndarray], np.ndarray] | None = None
    rows: np.ndarray | None = None

    def _row(self, k: int) -> Any:
        return k if self.rows is None else self.rows[k]

    def where(self, k: int) -> str:
        """``"file, line N"`` (parquet: ``"file, row N"``) of kept row ``k``."""
        row = self._row(k)
        if self.line_of is None:
            return f"{self.label}, row {int(row)}"
        return f"{self.label}, line {self.line_of(np.array([row]))[0]}"

    def fail(self, k: int, problem: str) -> DataError:
        """The error for kept row ``k``: where it is, ``problem``, and (text) the line."""
        where_k = self.where(k)
        if self.raw is not None and self.line_of is not None:
            text = line_text(self.raw, int(self.line_of(np.array([self._row(k)]))[0]))
            return DataError(f"{where_k}: {problem}: {text!r}")
        return DataError(f"{where_k}: {problem}")

    def drop_blank_rows(self, df: pl.DataFrame, path: Path) -> pl.DataFrame:
        """``df`` without the rows of blank lines of a text file, recording the kept rows.

        Blank lines (empty or whitespace) come back as rows of nulls or spaces. A line of
        bare separators (",,") reads the same but is not blank: it stays, to fail as a
        missing id. A parquet file has no blank lines: an all-null row there is a missing
        id, and ``df`` is returned as is.

        Raises
        ------
        DataError
            A text file holds nothing but blank lines after its header.
        """
        self.rows = np.arange(df.height)
        if self.raw is None or self.line_of is None:
            return df
        empty = pl.all_horizontal(
            [
                pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
                if df[c].dtype == pl.String
                else pl.col(c).is_null()
                for c in df.columns
            ]
        )
        suspect = np.flatnonzero(df.select(empty).to_series().to_numpy())
        if suspect.size:
            blank = suspect[blank_lines(self.raw, self.line_of(suspect), self.sep.encode())]
            keep = np.ones(df.height, dtype=bool)
            keep[blank] = False
            self.rows = self.rows[keep]
            df = df.filter(pl.Series(keep))
        if df.height == 0:
            raise DataError(f"{path}: the file has no ratings (only blank lines)")
        return df


def _read_parquet(path: Path) -> tuple[pl.DataFrame, _Origin]:
    """The frame of a parquet file, and its origin (rows named by position)."""
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars/arrow raise several types for broken files
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    return df, _Origin(str(path))


def _read_text(path: Path, sep: str | None, has_header: bool) -> tuple[pl.DataFrame, _Origin]:
    """The frame of a delimited text file (every column as text), and its origin.

    ``sep`` defaults to the suffix's separator, else the one sniffed from the first line.
    Blank lines before the first line are skipped; a multi-character separator is swapped
    for a control byte (polars takes one-byte separators only).

    Raises
    ------
    DataError
        An empty file, a numeric header line, text that is not UTF-8, a line with more
        fields than the first one, or any other parse failure: the message names the file
        (and the line when known).
    """
    label = str(path)
    raw = path.read_bytes()
    if not raw or raw.isspace():
        raise DataError(f"{path}: the file is empty")
    sep = sep or _SEPARATORS.get(path.suffix.lower()) or _sniff(raw)
    # Blank lines at the top would make polars see a one-column file.
    n_skip, offset = skip_lines(raw)
    n_header = n_skip
    if has_header:
        header = line_text(raw, n_header + 1)
        if all(_is_number(v) for v in header.split(sep)):
            raise DataError(
                f"{label}, line {n_header + 1}: read as the header but holds only numbers "
                f"({header!r}); pass has_header=False if the file has no header"
            )
        n_header += 1
    text = raw[offset:]
    polars_sep = sep
    if len(sep) > 1:
        # polars takes one-byte separators only.
        text = text.replace(sep.encode(), b"\x1f")
        polars_sep = "\x1f"
    try:
        df = pl.read_csv(
            text,
            separator=polars_sep,
            has_header=has_header,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        bad = first_non_utf8_line(text)
        if bad is not None:
            line_no = n_skip + bad
            raise DataError(
                f"{label}, line {line_no}: not UTF-8 text (save the file as UTF-8): "
                f"{line_text(raw, line_no)!r}"
            ) from None
        _name_long_line(text, raw, polars_sep, label, n_header, has_header)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path}: cannot be parsed as {polars_sep!r}-separated text: {msg}"
        ) from exc
    return df, _Origin(label, raw, sep, _line_numbers(text, n_skip, has_header))


def _select(
    df: pl.DataFrame, path: Path, **given: str | int | None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """``df`` reduced to the columns ``given`` (user, item, rating, timestamp; names or
    positions, None: absent) renamed to those keys, and each key's column name in the file.
    """
    cols = {key: _column(df, col, key, path) for key, col in given.items() if col is not None}
    return df.select(**{k: pl.col(v) for k, v in cols.items()}), cols


def _check_values(df: pl.DataFrame, cols: dict[str, str], origin: _Origin) -> None:
    """Raise :class:`DataError` at the first missing (null or blank) value of each column,
    after refusing quoted values that hold a multi-character separator."""
    if len(origin.sep) > 1:
        # The separator was swapped for a control byte before parsing; a quoted value that
        # held it would keep the control byte and silently differ from the file.
        for key in cols:
            if df[key].dtype == pl.String:
                hit = df[key].str.contains("\x1f", literal=True)
                if hit.any():
                    raise origin.fail(
                        int(hit.arg_true()[0]),
                        f"a quoted {key} value holds the separator {origin.sep!r}, which files "
                        f"separated by {origin.sep!r} cannot quote",
                    )
    for key in cols:
        nulls = df[key].is_null()
        if df[key].dtype == pl.String:
            # A field of spaces is as missing as an empty one (it would become the id "").
            nulls = nulls | (df[key].str.strip_chars() == "")
        if nulls.any():
            raise origin.fail(int(nulls.arg_true()[0]), f"missing {key} ({cols[key]!r})")


def _rating_values(rat: pl.Series, name: str, path: Path, origin: _Origin) -> pl.Series:
    """The rating column as float64: text parsed as numbers (a value that is not one
    raises :class:`DataError` naming its line), a numeric column cast."""
    if rat.dtype == pl.String:
        parsed = rat.str.strip_chars().cast(pl.Float64, strict=False)
        bad = parsed.is_null()
        if bad.any():
            k = int(bad.arg_true()[0])
            raise origin.fail(k, f"rating {rat[k]!r} is not a number")
        rat = parsed
    elif not rat.dtype.is_numeric():
        raise DataError(f"{path}: rating column {name!r} has type {rat.dtype}")
    return rat.cast(pl.Float64)


def _line_numbers(text: bytes, n_skip: int, has_header: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``line_of(rows)``: the 1-based physical line of each data row (numpy int array) of a
    text file, whose parsed part ``text`` starts after ``n_skip`` blank lines.

    A quoted field may hold newlines, so a row can span several lines: row starts are the
    newlines outside quotes (an even number of ``"`` before them; a doubled quote inside a
    quoted field keeps the count even). Computed on first use (only messages and the
    blank-line check need it), and trivially when the file has no quotes.
    """
    first = 1 if has_header else 0
    cache: list[np.ndarray] = []

    def line_of(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if b'"' not in text:
            return rows + first + n_skip + 1
        if not cache:
            arr = np.frombuffer(text, dtype=np.uint8)
            nl = np.flatnonzero(arr == 10)
            quotes = np.cumsum(arr == 34)
            ends = nl[quotes[nl] % 2 == 0]  # record-ending newlines
            # Line (0-based, within text) where each record starts.
            cache.append(np.concatenate(([0], np.searchsorted(nl, ends) + 1)))
        starts = cache[0]
        rec = np.minimum(rows + first, len(starts) - 1)
        return starts[rec] + n_skip + 1

    return line_of


def _name_long_line(
    text: bytes, raw: bytes, sep: str, label: str, n_header: int, has_header: bool
) -> None:
    """Raise :class:`DataError` naming the first line with more fields than the first one.

    ``text`` is ``raw`` from the header (or the first data line) on, with ``sep``; ``n_header``
    lines (blank lines and the header) come before the first data line in the file. Quoted
    fields are not unpacked: this only runs after polars has refused the file.
    """
    lines = decode_text(text).split("\n")
    width = len(lines[0].split(sep))
    for k, line in enumerate(lines[1 if has_header else 0 :], start=1):
        fields = len(line.split(sep))
        if line.strip() and '"' not in line and fields > width:
            line_no = k + n_header
            raise DataError(
                f"{label}, line {line_no}: {fields} fields where the first line has {width}: "
                f"{line_text(raw, line_no)!r}"
            )


def _ids(col: pl.Series, name: str, where: Any, strip: bool = True) -> np.ndarray:
    """Integer ids when every value is an integer written plainly, else strings.

    Text such as ``0042`` or ``+42`` stays a string id: read as the integer 42 it would no
    longer match the id a user types from the file. ``strip``: spaces around a value are
    dropped (text files, where they are layout); a parquet string is taken as stored, so
    ``"a"`` and ``" a"`` stay two ids.
    """
    if col.dtype == pl.String:
        stripped = col.str.strip_chars() if strip else col
        as_int = stripped.cast(pl.Int64, strict=False)
        if as_int.null_count() == 0 and (as_int.cast(pl.String) == stripped).all():
            return as_int.to_numpy()
        return stripped.to_numpy().astype(str)
    return _id_column(col, name, where)


_ACCEPTED_TIMES = (
    "accepted: integer seconds since the epoch, or ISO 8601 dates YYYY-MM-DD and datetimes "
    "YYYY-MM-DD[T or space]HH:MM[:SS[.fff]], optionally with Z or +HH:MM (naive times are UTC)"
)


def _timestamps(
    col: pl.Series, name: str, fail: Any, where: Any = lambda k: f"row {k}"
) -> np.ndarray:
    """Seconds since the epoch from integers, dates or ISO date/datetime text.

    Each layout of ISO text (date only, with seconds, with an offset, ...) is parsed on its
    own: polars infers one format per call, from the first value. Offset-less values are UTC.
    A column mixing integers and dates is refused, naming a line of each.
    """
    if col.dtype != pl.String:
        return _timestamp_column(col, name)
    text = col.str.strip_chars()
    as_int = text.cast(pl.Int64, strict=False)
    if as_int.null_count() == 0:
        return as_int.to_numpy()
    iso = text.str.contains(_ISO_DATETIME)
    is_int = as_int.is_not_null()
    bad = ~iso & ~is_int
    if bad.any():
        k = int(bad.arg_true()[0])
        raise fail(
            k, f"timestamp {text[k]!r} is neither an integer nor an ISO date ({_ACCEPTED_TIMES})"
        )
    if is_int.any():
        k_int, k_iso = int(is_int.arg_true()[0]), int(iso.arg_true()[0])
        raise fail(
            max(k_int, k_iso),
            f"timestamps mix formats: integer {text[k_int]!r} ({where(k_int)}) and date "
            f"{text[k_iso]!r} ({where(k_iso)}); use one format for the whole column "
            f"({_ACCEPTED_TIMES})",
        )
    shape = text.str.replace_all("[0-9]", "9")
    seconds = np.zeros(text.len(), dtype=np.int64)
    for layout in shape.unique(maintain_order=True):
        mask = (shape == layout).to_numpy()
        part = text.filter(pl.Series(mask)).str.to_datetime(strict=False, time_zone="UTC")
        if part.is_null().any():
            k = int(np.flatnonzero(mask)[int(part.is_null().arg_true()[0])])
            raise fail(k, f"timestamp {text[k]!r} is not a valid date or time ({_ACCEPTED_TIMES})")
        seconds[mask] = _timestamp_column(part, name)
    return seconds
