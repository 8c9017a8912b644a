"""File access shared by the loaders: folders or zip archives, fast delimited parsing with
exact file-and-line error messages.

The fast path hands the whole file to polars with an explicit schema. Only when polars
rejects the file, or a row fails validation, is the file looked at line by line in Python to
name the offending line: errors cost time, correct files do not.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rbmrec.errors import DataError

# --------------------------------------------------------------------------- sources


class Source:
    """A release folder or zip archive, addressed by file base names.

    Files are read from one release root: the folder itself (or, after :meth:`descend`, the
    one sub-folder holding a ratings file), or the zip folder whose ratings file sits at the
    shallowest depth. Files elsewhere in the folder or archive are never read.

    Parameters
    ----------
    path : str or Path
        A folder holding the files (or holding exactly one sub-folder that does), or a
        ``.zip`` archive (files may sit under one top folder, as in GroupLens releases).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._names: list[str] = []
        self._members: dict[str, str] = {}
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self._root = self.path
        else:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(
                    f"{self.path}: not a readable zip archive ({exc}); the file is corrupted "
                    "or truncated: delete it and download it again"
                ) from exc
            self._names = [
                info.filename
                for info in self._zip.infolist()
                if not info.is_dir() and "__MACOSX" not in info.filename
            ]
            # Default root: the top level, or the one top folder everything sits under.
            tops = {n.split("/", 1)[0] + "/" if "/" in n else "" for n in self._names}
            self._use_prefix(tops.pop() if len(tops) == 1 else "")

    def _use_prefix(self, prefix: str) -> None:
        """Address the zip members directly inside folder ``prefix`` (``""``: top level)."""
        self._prefix = prefix
        self._members = {
            n[len(prefix) :]: n
            for n in self._names
            if n.startswith(prefix) and "/" not in n[len(prefix) :]
        }

    def descend(self, markers: Sequence[str]) -> None:
        """Choose the release root: the shallowest folder holding one of ``markers``.

        A folder is used as is when it holds a marker, else its one sub-folder that does. In
        a zip, the markers at the smallest depth decide (a stray copy deeper down, e.g.
        ``ml-1m/extra/backup/u.data``, is ignored). Without any marker nothing changes.

        Raises
        ------
        DataError
            Several folders qualify (e.g. a zip or folder holding both ``ml-1m/`` and
            ``ml-100k/``): the message lists them.
        """
        if self._zip is not None:
            hits = [n for n in self._names if n.rsplit("/", 1)[-1] in markers]
            if not hits:
                return
            depth = min(n.count("/") for n in hits)
            roots = sorted(
                {n.rsplit("/", 1)[0] + "/" if depth else "" for n in hits if n.count("/") == depth}
            )
            if len(roots) > 1:
                raise DataError(
                    f"{self.path}: holds {len(roots)} MovieLens releases "
                    f"({', '.join(roots)}); extract the one you want and load its folder"
                )
            self._use_prefix(roots[0])
            return
        if any((self._root / m).is_file() for m in markers):
            return
        subs = sorted(p for p in self._root.iterdir() if p.is_dir())
        hits_dirs = [p for p in subs if any((p / m).is_file() for m in markers)]
        if len(hits_dirs) > 1:
            raise DataError(
                f"{self._root}: holds {len(hits_dirs)} MovieLens releases "
                f"({', '.join(p.name for p in hits_dirs)}); pass the folder of the one you want"
            )
        if len(hits_dirs) == 1:
            self._root = hits_dirs[0]

    @property
    def name(self) -> str:
        """Base name of the release (folder or zip name without ``.zip``)."""
        if self._zip is not None:
            return self.path.name.removesuffix(".zip")
        return self._root.name

    def has(self, base: str) -> bool:
        if self._zip is not None:
            return base in self._members
        return (self._root / base).is_file()

    def find(self, *bases: str) -> str | None:
        """The first of ``bases`` present, or None."""
        for base in bases:
            if self.has(base):
                return base
        return None

    def label(self, base: str) -> str:
        """How a file is named in messages: its path, or ``archive.zip:member``."""
        if self._zip is not None:
            return f"{self.path}:{self._members.get(base, base)}"
        return str(self._root / base)

    def read(self, base: str) -> bytes:
        """The bytes of one file."""
        if self._zip is not None:
            try:
                return self._zip.read(self._members[base])
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise DataError(
                    f"{self.label(base)}: cannot be read from the archive ({exc}); the zip is "
                    "corrupted or truncated: delete it and download it again"
                ) from exc
        return (self._root / base).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Field:
    """One column of a delimited file: its name and kind ("id", "rating", "int", "str")."""

    name: str
    kind: str

    @property
    def dtype(self) -> pl.DataType:
        return {
            "id": pl.Int64,
            "rating": pl.Float64,
            "int": pl.Int64,
            "str": pl.String,
        }[self.kind]


def decode_text(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else latin-1 (old MovieLens files)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def line_text(data: bytes, line_no: int) -> str:
    """The text of 1-based physical line ``line_no`` (for messages), without its newline."""
    start = 0
    for _ in range(line_no - 1):
        nxt = data.find(b"\n", start)
        if nxt < 0:
            return ""
        start = nxt + 1
    end = data.find(b"\n", start)
    return decode_text(data[start : end if end >= 0 else len(data)]).rstrip("\r")


def blank_lines(data: bytes, line_numbers: np.ndarray, sep: bytes = b",") -> np.ndarray:
    """Whether each 1-based physical line of ``data`` in ``line_numbers`` is blank: only
    whitespace and no ``sep`` (bool array of the same length). For the few suspect rows of a
    parse: a line of spaces is blank, a line of bare separators (``,,``, or tabs in a
    tab-separated file) is not."""
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(data)]))
    out = np.empty(len(line_numbers), dtype=bool)
    for j, ln in enumerate(np.asarray(line_numbers, dtype=np.int64)):
        if ln > len(starts):
            out[j] = True
            continue
        line = data[starts[ln - 1] : ends[ln - 1]]
        out[j] = not line.strip() and sep not in line
    return out


def first_non_utf8_line(data: bytes) -> int | None:
    """1-based number of the first physical line of ``data`` that is not UTF-8, or None."""
    for k, line in enumerate(data.split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return k
    return None


_BLANK_LINES = re.compile(rb"(?:[ \t\r\f\v]*\n)*")


def skip_lines(data: bytes, n: int = 0) -> tuple[int, int]:
    """Where the first data line starts after ``n`` header lines and any blank lines.

    Returns ``(lines, offset)``: the number of physical lines skipped and the byte offset of
    the next one. polars takes a file's column count from its first line, so a blank first
    line (or one right after the header) must not reach it.
    """
    start = 0
    for _ in range(n):
        nxt = data.find(b"\n", start)
        start = len(data) if nxt < 0 else nxt + 1
    end = _BLANK_LINES.match(data, start).end()  # type: ignore[union-attr]
    return n + data.count(b"\n", start, end), end


def _check_value(text: str, field: Field) -> str | None:
    """Why ``text`` is not a valid value of ``field``, or None."""
    text = text.strip()
    if field.kind == "str":
        return None
    if text == "":
        return f"missing {field.name}"
    if field.kind in ("id", "int"):
        try:
            value = int(text)
        except ValueError:
            return f"{field.name} {text!r} is not an integer"
        if field.kind == "id" and value < 0:
            return f"negative {field.name} {value}"
        return None
    try:
        value = float(text)
    except ValueError:
        return f"{field.name} {text!r} is not a number"
    if not np.isfinite(value):
        return f"{field.name} is {text!r}, not a finite number"
    return None


def diagnose(data: bytes, label: str, sep: str, fields: Sequence[Field], n_header: int) -> None:
    """Scan a delimited file line by line and raise :class:`DataError` at the first bad line.

    Returns without raising when every line is valid.
    """
    n = len(fields)
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if line_no <= n_header:
            continue
        line = decode_text(raw).rstrip("\r")
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != n:
            raise DataError(
                f"{label}, line {line_no}: expected {n} fields separated by {sep!r} "
                f"({', '.join(f.name for f in fields)}), found {len(parts)}: {line!r}"
            )
        for part, field in zip(parts, fields, strict=True):
            problem = _check_value(part, field)
            if problem:
                raise DataError(f"{label}, line {line_no}: {problem}: {line!r}")


def read_delimited(
    data: bytes,
    label: str,
    sep: str,
    fields: Sequence[Field],
    n_header: int = 0,
    quote_char: str | None = None,
) -> tuple[pl.DataFrame, Callable[[int], str]]:
    """Parse a delimited file with an explicit schema.

    Blank lines are skipped, and spaces around a value are ignored. Every other line must
    have exactly ``len(fields)`` fields of the right kinds (ids: non-negative integers;
    ratings: finite numbers), or a :class:`DataError` names the file, the line and its text.

    Parameters
    ----------
    data : bytes
        The whole file.
    label : str
        File name for messages.
    sep : str
        One character, or ``"::"`` (MovieLens ``.dat``): polars takes one-byte separators
        only, so ``"::"`` is read as ``":"`` with an empty column between fields.
    fields : sequence of Field
    n_header : int, default 0
        Lines to skip at the top.
    quote_char : str, optional
        Quote character for quoted fields (``'"'`` for CSV with quoted titles).

    Returns
    -------
    frame : polars.DataFrame
        One column per field; rows in file order.
    where : callable
        ``where(row)`` -> ``"file, line N"`` for row ``row`` of the frame.
    """
    if not data or data.isspace():
        raise DataError(f"{label}: the file is empty")
    schema, gaps = _schema(fields, sep)
    lead, offset = skip_lines(data, n_header)
    reader = _Reader(data[offset:], _polars_separator(sep), quote_char)
    try:
        frame = reader.read(schema)
    except pl.exceptions.PolarsError as exc:
        diagnose(data, label, sep, fields, n_header)
        # Every line is valid once stripped (e.g. '100 ': polars accepts leading spaces
        # only): read text, strip, convert.
        try:
            frame = reader.read(dict.fromkeys(schema, pl.String))
        except pl.exceptions.PolarsError:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{label}: cannot be parsed: {first}") from exc
        frame = _convert_stripped(frame, fields, data, label, lead)
    if gaps:
        # A single ':' somewhere shifts the fields into the gap columns.
        if frame.select(pl.any_horizontal(pl.col(gaps).is_not_null()).any()).item():
            diagnose(data, label, sep, fields, n_header)
        frame = frame.drop(gaps)
    where = _LineOfRow(label, lead)
    null_all = pl.all_horizontal([pl.col(f.name).is_null() for f in fields])
    null_any = pl.any_horizontal([pl.col(f.name).is_null() for f in fields if f.kind != "str"])
    bad = frame.select(
        (null_any & ~null_all).arg_true().first().alias("partial"),
        null_all.any().alias("blank"),
    ).row(0)
    if bad[0] is not None:
        diagnose(data, label, sep, fields, n_header)
        raise DataError(f"{where(bad[0])}: missing field(s)")
    _check_ranges(frame, fields, data, lead, where)
    if bad[1]:
        frame = frame.with_row_index("_row").filter(~null_all)
        where.kept = frame["_row"].to_numpy()
        frame = frame.drop("_row")
    return frame, where


def _schema(fields: Sequence[Field], sep: str) -> tuple[dict[str, pl.DataType], list[str]]:
    """The polars schema of a file of ``fields``, and the names of its gap columns: a
    ``"::"`` file is read with ``":"``, which puts an empty column between fields."""
    schema: dict[str, pl.DataType] = {}
    gaps: list[str] = []
    for k, f in enumerate(fields):
        if k and sep == "::":
            gaps.append(f"_gap{k}")
            schema[gaps[-1]] = pl.String
        schema[f.name] = f.dtype
    return schema, gaps


def _polars_separator(sep: str) -> str:
    """The one-byte separator polars reads a ``sep`` file with (``":"`` for ``"::"``)."""
    if sep == "::":
        return ":"
    if len(sep) == 1:
        return sep
    raise ValueError(f"unsupported separator {sep!r}")


@dataclass(frozen=True)
class _Reader:
    """The data lines of a delimited file, read by polars with one schema or another."""

    text: bytes
    separator: str
    quote_char: str | None

    def read(self, types: dict[str, pl.DataType]) -> pl.DataFrame:
        return pl.read_csv(
            io.BytesIO(self.text),
            separator=self.separator,
            has_header=False,
            schema=types,
            quote_char=self.quote_char,
            raise_if_empty=False,
        )


@dataclass
class _LineOfRow:
    """``where(row)`` of :func:`read_delimited`: ``"file, line N"`` for a row of its frame.

    polars keeps a blank line as an all-null row, so parsed row ``k`` is physical line
    ``k + 1 + lead`` (``lead``: the header and blank lines before the first data line);
    once blank rows are dropped, ``kept`` maps the frame's rows back to parsed rows.
    """

    label: str
    lead: int
    kept: np.ndarray | None = None

    def __call__(self, row: int) -> str:
        pos = int(row) if self.kept is None else int(self.kept[row])
        return f"{self.label}, line {pos + 1 + self.lead}"


def _check_ranges(
    frame: pl.DataFrame,
    fields: Sequence[Field],
    data: bytes,
    lead: int,
    where: Callable[[int], str],
) -> None:
    """Raise :class:`DataError` at the earliest row with a negative id or a rating that is
    not finite (on one row, the first such field), quoting its line."""
    checks = []
    for f in fields:
        if f.kind == "id":
            checks.append((pl.col(f.name) < 0, f"negative {f.name}"))
        elif f.kind == "rating":
            checks.append((~pl.col(f.name).is_finite(), f"{f.name} is not a finite number"))
    if not checks:
        return
    firsts = frame.select(
        [cond.arg_true().first().alias(str(i)) for i, (cond, _) in enumerate(checks)]
    ).row(0)
    hits = [(row, i) for i, row in enumerate(firsts) if row is not None]
    if hits:
        row, i = min(hits)  # the earliest line; on it, the first check in the list
        text = line_text(data, int(row) + 1 + lead)
        raise DataError(f"{where(row)}: {checks[i][1]}: {text!r}")


def _convert_stripped(
    frame: pl.DataFrame, fields: Sequence[Field], data: bytes, label: str, lead: int
) -> pl.DataFrame:
    """Text columns stripped and converted to the fields' types; a value that does not
    convert raises :class:`DataError` naming its line (row ``k`` is line ``k + 1 + lead``)."""
    for f in fields:
        if f.kind == "str":
            continue
        text = frame[f.name].str.strip_chars()
        value = text.cast(f.dtype, strict=False)
        bad = value.is_null() & (text.str.len_bytes() > 0)
        if bad.any():
            k = int(bad.arg_true()[0])
            line = line_text(data, k + 1 + lead)
            raise DataError(
                f"{label}, line {k + 1 + lead}: {f.name} {text[k]!r} is not a valid "
                f"{'integer' if f.dtype == pl.Int64 else 'number'}: {line!r}"
            )
        frame = frame.with_columns(value.alias(f.name))
    return frame
