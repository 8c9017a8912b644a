"""Netflix Prize format loader.

The release has one file per movie (``training_set/mv_0000001.txt`` ..), each a
``MovieID:`` line followed by ``CustomerID,Rating,Date`` lines; the Kaggle re-packaging
concatenates them into ``combined_data_1.txt`` .. ``combined_data_4.txt``. Both layouts are
read the same way: movie files are concatenated in batches and parsed by polars as one
three-column CSV in which a one-field ``N:`` line starts the next movie.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from rbmrec.data._io import blank_lines, decode_text, first_non_utf8_line, line_text
from rbmrec.data.movielens import INT_SCALE
from rbmrec.data.ratings import Duplicates, Ratings
from rbmrec.errors import DataError

log = logging.getLogger(__name__)

_BATCH_BYTES = 256 * 1024 * 1024
_LEADING_SPACE = re.compile(rb"\s*")
# "id": a customer id, or "MovieID:" on the line that starts a movie.
_TEXT_SCHEMA = {"id": pl.String, "rating": pl.String, "date": pl.String}
# Dates stay text: a pl.Date schema (or str.to_date alone) would also accept 09/06/2005
# (read day first) and 2005-9-6; only YYYY-MM-DD is valid.
_TYPED_SCHEMA = {"id": pl.String, "rating": pl.Float64, "date": pl.String}
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _iso_date(text: pl.Expr) -> pl.Expr:
    """``YYYY-MM-DD`` text as a date; null for anything else."""
    return pl.when(text.str.contains(_ISO_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False))


def _files(path: Path) -> tuple[list[Path], Path | None]:
    """Rating files in reading order, and the movie titles file if any."""
    if path.is_file():
        return [path], None
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    roots = [path, path / "training_set", path / "download", path / "download" / "training_set"]
    for root in roots:
        combined = sorted(root.glob("combined_data_*.txt"))
        movies = sorted(root.glob("mv_*.txt"))
        if combined or movies:
            titles = next(
                (
                    p
                    for r in (root, root.parent, path)
                    for p in (r / "movie_titles.txt", r / "movie_titles.csv")
                    if p.is_file()
                ),
                None,
            )
            return (combined or movies), titles
    raise DataError(
        f"{path}: no Netflix Prize rating files found (looked for training_set/mv_*.txt and "
        "combined_data_*.txt)"
    )


def _batches(files: list[Path]) -> Iterator[tuple[bytes, list[tuple[Path, int]]]]:
    """Concatenated file contents of about ``_BATCH_BYTES``, with (file, first line) spans."""
    chunks: list[bytes] = []
    spans: list[tuple[Path, int]] = []
    size = lines = 0
    for f in files:
        data = f.read_bytes()
        if not data or data.isspace():
            raise DataError(f"{f}: the file is empty")
        # Each file starts with its movie's "N:" line (else it would inherit the previous one).
        start = _LEADING_SPACE.match(data).end()  # type: ignore[union-attr]
        end = data.find(b"\n", start)
        head = data[start : end if end >= 0 else len(data)]
        if not head.strip().endswith(b":"):
            line_no = data.count(b"\n", 0, start) + 1
            text = decode_text(head).rstrip("\r")
            raise DataError(
                f"{f}, line {line_no}: rating before the first 'MovieID:' line: {text!r}"
            )
        if not data.endswith(b"\n"):
            data += b"\n"
        chunks.append(data)
        spans.append((f, lines))
        lines += data.count(b"\n")
        size += len(data)
        if size >= _BATCH_BYTES:
            yield b"".join(chunks), spans
            chunks, spans, size, lines = [], [], 0, 0
    if chunks:
        yield b"".join(chunks), spans


class _Locator:
    """Where row ``row`` of a batch (its concatenated files) comes from: ``locate(row)`` is
    ``(file, 1-based line)``; ``fail(row, problem)`` the error quoting that line."""

    def __init__(self, spans: list[tuple[Path, int]]) -> None:
        self.spans = spans
        self.starts = np.array([s for _, s in spans], dtype=np.int64)

    def __call__(self, row: int) -> tuple[Path, int]:
        j = int(np.searchsorted(self.starts, row, side="right")) - 1
        return self.spans[j][0], int(row - self.starts[j]) + 1

    def fail(self, row: int, problem: str) -> DataError:
        f, line = self(row)
        text = line_text(f.read_bytes(), line)
        return DataError(f"{f}, line {line}: {problem}: {text!r}")


def _parse_batch(
    data: bytes, spans: list[tuple[Path, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Callable[[int], str]]:
    """Users, movies, ratings, timestamps (shape (n,) each) and ``where(k)`` of one batch
    of concatenated movie files (``spans``: each file and its first line in the batch).

    Raises
    ------
    DataError
        The first bad line of the batch, naming its file and line.
    """
    locate = _Locator(spans)
    if not data or data.isspace():
        raise DataError(f"{spans[0][0]}: the file is empty")
    df, typed = _read_batch(data, locate)
    df = _rating_rows(df, data, locate)
    if typed:
        parsed = _typed_rows(df)
        if parsed is not None:
            return _batch_arrays(parsed, locate)
        # Something is wrong on some line: re-read as text to say what and where.
        df = df.with_columns(pl.col("rating").cast(pl.String))
    return _batch_arrays(_checked_text_rows(df, locate), locate)


def _read_batch(batch: bytes, locate: _Locator) -> tuple[pl.DataFrame, bool]:
    """The batch as a three-column frame, and whether its ratings parsed as numbers (else
    every column is text). Row ``k`` of the frame is line ``k - 1`` of the batch.

    Raises
    ------
    DataError
        Text that is not UTF-8, or a line with more than three fields.
    """
    # polars takes the column count from the first line, a one-field "N:" line: lead with an
    # empty three-field line (dropped later as blank) and shift rows back by one.
    data = b",,\n" + batch
    try:
        df = pl.read_csv(io.BytesIO(data), has_header=False, schema=_TYPED_SCHEMA, quote_char=None)
        return df, True
    except pl.exceptions.PolarsError:
        pass
    try:
        df = pl.read_csv(io.BytesIO(data), has_header=False, schema=_TEXT_SCHEMA, quote_char=None)
    except pl.exceptions.PolarsError as exc:
        bad = first_non_utf8_line(batch)
        if bad is not None:
            raise locate.fail(bad - 1, "not UTF-8 text (a damaged or re-encoded file?)") from None
        # Too many fields on some line: find it.
        for k, raw in enumerate(data.split(b"\n")):
            if raw.count(b",") > 2:
                raise locate.fail(k - 1, "expected 'CustomerID,Rating,Date'") from None
        f, _ = locate(0)
        raise DataError(f"{f}: cannot be read as Netflix Prize ratings ({exc})") from exc
    return df, False


def _rating_rows(df: pl.DataFrame, batch: bytes, locate: _Locator) -> pl.DataFrame:
    """The rating lines of a read batch, with their ``row`` (line in the batch, 0-based)
    and ``movie`` (from the last ``N:`` line above); blank lines dropped.

    Raises
    ------
    DataError
        A line of bare commas, or a movie line whose id is not an integer.
    """
    df = df.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64) - 1)
    head = pl.col("id").str.strip_chars()  # the first field: a customer id, or "MovieID:"
    is_movie = head.str.ends_with(":") & pl.col("rating").is_null()
    empty = (head.is_null() | (head == "")) & pl.col("rating").is_null() & pl.col("date").is_null()
    df = df.with_columns(
        movie=pl.when(is_movie).then(head.str.strip_suffix(":").cast(pl.Int64, strict=False)),
        is_movie=is_movie,
        blank=empty,
    )
    # An empty row is a blank line (skipped) or a line of bare commas (an error); the leading
    # ",," line added by _read_batch (row -1) is blank by construction.
    suspect = df.filter(pl.col("blank") & (pl.col("row") >= 0))["row"].to_numpy()
    if suspect.size:
        not_blank = suspect[~blank_lines(batch, suspect + 1)]
        if not_blank.size:
            raise locate.fail(int(not_blank[0]), "expected 'CustomerID,Rating,Date'")
    bad_header = df.filter(pl.col("is_movie") & pl.col("movie").is_null())
    if bad_header.height:
        raise locate.fail(int(bad_header["row"][0]), "movie id is not an integer")
    df = df.with_columns(pl.col("movie").forward_fill())
    return df.filter(~pl.col("is_movie") & ~pl.col("blank"))


def _typed_rows(df: pl.DataFrame) -> pl.DataFrame | None:
    """Columns ``row, movie, rating, date, user`` of rating rows read with numeric ratings,
    or None when some value is missing or invalid (the text path then names it)."""
    parsed = df.select(
        "row",
        "movie",
        "rating",
        date=_iso_date(pl.col("date")),
        user=pl.col("id").str.strip_chars().cast(pl.Int64, strict=False),
    )
    clean = parsed.select(
        pl.any_horizontal(pl.all().is_null()).any()
        | (pl.col("user") < 0).any()
        | (~pl.col("rating").is_finite()).any()
    ).item()
    return None if clean else parsed


def _checked_text_rows(df: pl.DataFrame, locate: _Locator) -> pl.DataFrame:
    """Rating rows read as text, parsed (columns as :func:`_typed_rows`); the earliest bad
    line raises :class:`DataError` saying what is wrong with it."""
    parsed = df.select(
        "row",
        "movie",
        user=pl.col("id").str.strip_chars().cast(pl.Int64, strict=False),
        rating=pl.col("rating").str.strip_chars().cast(pl.Float64, strict=False),
        date=_iso_date(pl.col("date").str.strip_chars()),
        r_raw=pl.col("rating"),
        d_raw=pl.col("date"),
    )
    checks = [
        (pl.col("movie").is_null(), "rating before the first 'MovieID:' line"),
        (
            pl.col("r_raw").is_null() | pl.col("d_raw").is_null(),
            "expected 'CustomerID,Rating,Date'",
        ),
        (pl.col("user").is_null(), "customer id is not an integer"),
        (pl.col("user") < 0, "negative customer id"),
        (pl.col("rating").is_null(), "rating is not a number"),
        (~pl.col("rating").is_finite(), "rating is not a finite number"),
        (pl.col("date").is_null(), "date is not YYYY-MM-DD"),
    ]
    firsts = parsed.select(
        [
            cond.fill_null(False).arg_true().first().alias(str(i))
            for i, (cond, _) in enumerate(checks)
        ]
    ).row(0)
    hits = [(row, i) for i, row in enumerate(firsts) if row is not None]
    if hits:
        k, i = min(hits)  # the earliest line; on it, the first check in the list
        raise locate.fail(int(parsed["row"][k]), checks[i][1])
    return parsed


def _batch_arrays(
    parsed: pl.DataFrame, locate: Callable[[int], tuple[Path, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Callable[[int], str]]:
    rows = parsed["row"].to_numpy()

    def where(k: int) -> str:
        f, line = locate(int(rows[k]))
        return f"{f}, line {line}"

    ts = parsed["date"].cast(pl.Int64).to_numpy() * 86_400
    return (
        parsed["user"].to_numpy(),
        parsed["movie"].to_numpy(),
        parsed["rating"].to_numpy(),
        ts,
        where,
    )


def _read_titles(path: Path) -> pl.DataFrame:
    ids, years, titles = [], [], []
    for line_no, line in enumerate(decode_text(path.read_bytes()).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split(",", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            raise DataError(f"{path}, line {line_no}: expected 'MovieID,Year,Title': {line!r}")
        ids.append(int(parts[0]))
        years.append(int(parts[1]) if parts[1].strip().isdigit() else None)
        titles.append(parts[2])
    return pl.DataFrame(
        {"item_id": ids, "title": titles, "year": years},
        schema={"item_id": pl.Int64, "title": pl.String, "year": pl.Int64},
    )


def load_netflix(
    path: str | Path, *, duplicates: Duplicates = "error", metadata: bool = True
) -> Ratings:
    """Load Netflix Prize format ratings.

    Parameters
    ----------
    path : str or Path
        A folder holding ``training_set/mv_*.txt`` (or the ``training_set`` folder itself),
        a folder of ``combined_data_*.txt``, or one such file.
    duplicates : {"error", "last", "mean"}, default "error"
        What to do with a customer's repeated ratings of one movie. ``"mean"`` stores their
        average, which can fall between the scale's values (``values`` stays 1..5).
    metadata : bool, default True
        Read ``movie_titles.txt``/``.csv`` (``MovieID,Year,Title``, latin-1) when found.

    Returns
    -------
    Ratings
        Users (customer ids) and items (movie ids) indexed in increasing id order;
        timestamps are the dates at midnight UTC; ``values`` 1..5.

    Raises
    ------
    DataError
        A file that is empty, holds no ratings, is not UTF-8 text, or has a malformed line
        (the message names the file and line). Lines of whitespace are skipped; a line of
        bare commas is an error.
    """
    path = Path(path)
    files, titles_file = _files(path)
    parts = []
    for data, spans in _batches(files):
        parts.append(_parse_batch(data, spans))
    users = np.concatenate([p[0] for p in parts])
    items = np.concatenate([p[1] for p in parts])
    ratings = np.concatenate([p[2] for p in parts])
    ts = np.concatenate([p[3] for p in parts])
    offsets = np.cumsum([0] + [p[0].size for p in parts])

    def where(k: int) -> str:
        j = int(np.searchsorted(offsets, k, side="right")) - 1
        return parts[j][4](int(k - offsets[j]))

    if users.size == 0:
        raise DataError(f"{path}: no ratings (only 'MovieID:' lines)")
    bad = np.flatnonzero(~np.isin(ratings, INT_SCALE))
    if bad.size:
        k = int(bad[0])
        raise DataError(f"{where(k)}: rating {ratings[k]:g} is not on the 1..5 scale")
    items_meta = _read_titles(titles_file) if (metadata and titles_file) else None
    return Ratings.from_arrays(
        users,
        items,
        ratings,
        ts,
        duplicates=duplicates,
        where=where,
        items=items_meta,
        values=INT_SCALE,
        name="netflix",
        info={"release": "netflix", "path": str(path), "n_files": len(files)},
    )
