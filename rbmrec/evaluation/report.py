"""Writers for result tables: markdown for READMEs, CSV/JSON/markdown files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from rbmrec.models.persistence import write_atomically

__all__ = ["to_markdown", "write_results"]

_DEFAULT_HIDDEN = ("params", "split", "relevance_threshold", "n_test_ratings")


def _cell(text: str) -> str:
    """Text safe inside one markdown table cell: ``|`` escaped, line breaks as ``<br>``.

    A raw newline would end the table row in the middle of the cell.
    """
    text = text.replace("|", "\\|")
    return text.replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")


def _fmt(value: object, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        return f"{value:.{digits}f}"
    return _cell(str(value))


def _json_safe(value: object) -> object:
    """``value`` with NaN and infinite floats replaced by None (JSON null), recursively.

    Strict JSON has no NaN or Infinity; ``json.dumps`` would write them as bare tokens that
    e.g. JavaScript's ``JSON.parse`` and ``jq`` reject.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def to_markdown(df: pl.DataFrame, columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """Render a result frame as a GitHub markdown table.

    Parameters
    ----------
    df : polars.DataFrame
        E.g. the frame of :func:`rbmrec.evaluation.evaluate`.
    columns : sequence of str, optional
        Columns to show, in order. Default: every column except ``params``, ``split``,
        ``relevance_threshold``, ``n_test_ratings`` and columns that are null in every row.
    digits : int, default 4
        Decimals for floats; nulls render as empty cells. In text cells ``|`` is escaped and
        line breaks become ``<br>``, so every row stays one table line.

    Returns
    -------
    str
        The table, ending with a newline.
    """
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"df must be a polars DataFrame, got {type(df).__name__}")
    if columns is None:
        columns = [
            c
            for c in df.columns
            if c not in _DEFAULT_HIDDEN and not (df.height and df[c].null_count() == df.height)
        ]
    else:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"columns not in the frame: {missing}")
    columns = list(columns)
    numeric = {c for c in columns if df.schema[c].is_numeric()}
    lines = [
        "| " + " | ".join(_cell(str(c)) for c in columns) + " |",
        "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|",
    ]
    for row in df.select(columns).iter_rows():
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_results(df: pl.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write a result frame; the format follows the suffix.

    The file is written under a temporary name in the same folder and renamed into place
    (see :func:`write_atomically`): a failed write leaves any previous file untouched.

    Parameters
    ----------
    df : polars.DataFrame
    path : str or path-like
        ``.csv``, ``.json`` (``{"metadata": ..., "rows": [...]}``; strict JSON: NaN and
        infinite values are written as ``null``) or ``.md``.
    metadata : dict, optional
        Command, machine, seeds... Stored in JSON files, and as a preamble of key: value
        lines in markdown files; ignored for CSV.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"df must be a polars DataFrame, got {type(df).__name__}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json", ".md"):
        raise ValueError(f"unsupported results format {suffix!r}: use .csv, .json or .md")
    if suffix == ".csv":

        def write(tmp: Path) -> None:
            df.write_csv(tmp)

    elif suffix == ".json":
        doc = _json_safe({"metadata": metadata or {}, "rows": df.to_dicts()})
        text = json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n"

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

    else:
        pre = "".join(f"- {k}: {v}\n" for k, v in (metadata or {}).items())
        text = (pre + "\n" if pre else "") + to_markdown(df)

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

    return write_atomically(path, write)
