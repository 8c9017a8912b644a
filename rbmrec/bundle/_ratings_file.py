"""A user's ratings from a small CSV of ``item,rating`` lines, for folding the user in.

The file is UTF-8 (an initial byte order mark is ignored); fields are separated by commas or
tabs and may be quoted as in CSV. Blank lines and ``#`` comment lines are skipped anywhere;
the first other line may be a header (its rating field is not a number and its item field
not a known item). Item ids stay raw text here: :class:`rbmrec.bundle.ModelBundle` maps them.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rbmrec.errors import DataError


@dataclass(frozen=True)
class ItemRatings:
    """One user's ratings as read from a file, raw item ids as written.

    Attributes
    ----------
    items : list of str, length n
        Known item ids (as written in the file), each once, in file order.
    ratings : ndarray of float32, shape (n,)
        Their ratings.
    lines : list of int, length n
        The file line of each rating (1-based).
    unknown : list of str
        Item ids of the file that the model does not know (skipped), in file order.
    source : str
        The file's name for messages (``<stdin>`` for standard input).
    """

    items: list[str]
    ratings: np.ndarray
    lines: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    source: str = "the ratings"


def _read_text(source: str | os.PathLike | BinaryIO, option: str) -> tuple[str, str]:
    """The text of ``source`` (a path, ``-`` for standard input, or a binary stream) and its
    name for messages; UTF-8, a byte order mark (as Excel and Notepad write) dropped."""
    if hasattr(source, "read"):
        name, raw = getattr(source, "name", "<stream>"), source.read()
    elif str(source) == "-":
        name, raw = "<stdin>", sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{option}{path}: no such file")
        name, raw = str(path), path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), str(name)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{option}{name}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None


def _split_line(line: str) -> list[str]:
    """The fields of one ``item,rating`` line: comma-separated (tab-separated when it has
    no comma field), CSV quoting honoured, fields stripped."""
    fields = next(csv.reader([line], skipinitialspace=True))
    if len(fields) < 2 and "\t" in line:
        fields = next(csv.reader([line], delimiter="\t", skipinitialspace=True))
    return [f.strip() for f in fields]


def levels_text(levels: np.ndarray | None) -> str:
    """``(1, 2, 3)``: rating levels for messages (empty without levels)."""
    return "" if levels is None else "(" + ", ".join(f"{v:g}" for v in levels) + ")"


def is_level(levels: np.ndarray, rating: float) -> bool:
    """Whether ``rating`` maps to one of ``levels`` by the rating model's own rule."""
    from rbmrec.models.rating import level_index

    try:
        level_index(levels, np.array([rating]))
    except DataError:
        return False
    return True


def _rating(parts: list[str], where: str, levels: np.ndarray | None) -> float:
    """The rating field of a line, checked: a finite number (0 and negative values are
    ratings), one of ``levels``."""
    rating = float(parts[1])  # ValueError: the caller decides (header or error)
    if not np.isfinite(rating):
        raise DataError(f"{where}: rating {parts[1]!r} is not a finite number")
    if levels is not None and not is_level(levels, rating):
        raise DataError(
            f"{where}: rating {parts[1]} is not one of the model's rating levels "
            f"{levels_text(levels)}"
        )
    return rating


def read_item_ratings(
    source: str | os.PathLike | BinaryIO,
    known: Callable[[str], bool],
    levels: Any = None,
    option: str = "",
) -> ItemRatings:
    """Read a user's ``item,rating`` lines (see the module docstring for the format).

    Parameters
    ----------
    source : path, ``"-"`` or binary stream
        The file; ``"-"`` reads standard input.
    known : callable
        ``known(item)``: whether the model knows the raw item id (text as written). Unknown
        items are listed in ``unknown`` and skipped; a first line whose item is unknown and
        whose rating is not a number is a header.
    levels : array-like of float, optional
        The model's rating levels: every rating must map to one of them (a rating RBM).
        None (default): any finite rating (0 and negative values included).
    option : str, default ""
        Prefix of the file name in messages about the file as a whole (``"--ratings "``).

    Returns
    -------
    ItemRatings

    Raises
    ------
    DataError
        Naming the file and line: a line without two fields, a rating that is not a finite
        number or not one of ``levels``, a known item given more than once, or a
        file that is not UTF-8.
    FileNotFoundError
        If ``source`` is a path that does not exist.
    """
    text, name = _read_text(source, option)
    levels = None if levels is None else np.asarray(levels, dtype=np.float64)
    ratings: dict[str, float] = {}
    lines: dict[str, list[int]] = {}
    unknown: list[str] = []
    first = True
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}, line {line_no}"
        try:
            parts = _split_line(line)
        except csv.Error as exc:
            raise DataError(f"{where}: {exc}: {line!r}") from None
        if len(parts) < 2:
            raise DataError(f"{where}: expected 'item,rating', got {line!r}")
        header, first = first, False
        try:
            rating = _rating(parts, where, levels)
        except ValueError as exc:
            if isinstance(exc, DataError):
                raise
            if header and not known(parts[0]):
                continue
            raise DataError(f"{where}: rating {parts[1]!r} is not a number") from None
        if not known(parts[0]):
            unknown.append(parts[0])
            continue
        lines.setdefault(parts[0], []).append(line_no)
        ratings[parts[0]] = rating
    repeated = {i: ln for i, ln in lines.items() if len(ln) > 1}
    if repeated:
        item, ln = next(iter(repeated.items()))
        more = f" (and {len(repeated) - 1} more item(s))" if len(repeated) > 1 else ""
        raise DataError(
            f"{name}: item {item} appears {len(ln)} times (lines {', '.join(map(str, ln))})"
            f"{more}; give each item once"
        )
    return ItemRatings(
        items=list(ratings),
        ratings=np.fromiter(ratings.values(), dtype=np.float32, count=len(ratings)),
        lines=[ln[0] for ln in lines.values()],
        unknown=unknown,
        source=name,
    )
