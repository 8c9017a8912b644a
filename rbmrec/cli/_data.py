"""Loading the ratings a sub-command works on: ``--data`` (a file, a MovieLens folder or zip,
``demo``) or ``--dataset`` (a named data set), with the table column options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rbmrec.cli._common import SYNTHETIC_WORDS, UsageError


def demo_ratings() -> Any:
    from rbmrec.data import demo_ratings

    return demo_ratings()


def _load_dataset(name: str, duplicates: str = "error") -> Any:
    """A named data set (``demo`` or a MovieLens release, downloaded once when missing)."""
    from rbmrec.data import datasets

    if name.lower() in SYNTHETIC_WORDS:
        return demo_ratings()
    return datasets.load(name.lower(), duplicates=duplicates)


#: Hints of the data layer that name Python arguments, and the options that set them here.
_CLI_HINTS = (
    ("column", "--user-col/--item-col/--rating-col"),
    ("duplicates=", "--duplicates last|mean"),
    ("has_header=", "--no-header"),
)


def _with_cli_hint(exc: Exception, table: bool) -> Exception:
    """``exc`` with the command-line options that fix it appended, when it names an argument.

    ``table``: the error comes from a CSV/TSV/parquet file (``--user-col`` etc. apply).
    """
    from rbmrec.errors import DataError

    text = str(exc)
    hints = [opt for word, opt in _CLI_HINTS if word in text and (table or word == "duplicates=")]
    if not hints:
        return exc
    return DataError(f"{text} (command line: {', '.join(hints)})")


def _table_columns(args: argparse.Namespace) -> tuple[str | int, str | int, str | int]:
    """The user, item and rating columns: names, or 0-based positions with ``--no-header``."""
    no_header = bool(getattr(args, "no_header", False))
    cols: list[str | int] = []
    for option, value, name, position in (
        ("--user-col", args.user_col, "user_id", 0),
        ("--item-col", args.item_col, "item_id", 1),
        ("--rating-col", args.rating_col, "rating", 2),
    ):
        if value is None:
            cols.append(position if no_header else name)
        elif not no_header:
            cols.append(value)
        elif value.strip().isdigit():
            cols.append(int(value))
        else:
            raise UsageError(
                f"{option} {value!r}: with --no-header, columns are 0-based numbers (e.g. "
                f"{option} {position})"
            )
    return cols[0], cols[1], cols[2]


def _load_table(path: Path, args: argparse.Namespace) -> Any:
    """A CSV/TSV/parquet file of ratings (titles kept when the file has a ``title`` column)."""
    import polars as pl

    from rbmrec.data import load_table
    from rbmrec.errors import DataError

    user_col, item_col, rating_col = _table_columns(args)
    no_header = bool(getattr(args, "no_header", False))
    items = None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet") and not no_header:
        try:
            if suffix == ".parquet":
                head = pl.read_parquet(path)
            else:
                # Text, as load_table reads ids (``00042`` stays a string id there).
                head = pl.read_csv(
                    path, separator="\t" if suffix == ".tsv" else ",", infer_schema=False
                )
        except Exception:  # unreadable here: load_table names the problem below
            head = None
        if head is not None and "title" in head.columns and item_col in head.columns:
            item_id = pl.col(str(item_col))
            if head[str(item_col)].dtype == pl.String:
                item_id = item_id.str.strip_chars()
            items = head.select(item_id.alias("item_id"), pl.col("title")).unique(
                "item_id", keep="first", maintain_order=True
            )
    try:
        return load_table(
            path,
            user=user_col,
            item=item_col,
            rating=rating_col,
            has_header=not no_header,
            duplicates=getattr(args, "duplicates", "error"),
            items=items,
        )
    except DataError as exc:
        hinted = _with_cli_hint(exc, table=True)
        if hinted is exc:
            raise
        raise hinted from exc


def _refuse_table_options(args: argparse.Namespace, path: Path | None) -> None:
    """Refuse the column options when the data is not a CSV/TSV/parquet file (they would be
    ignored): a named data set, the demo data, or a MovieLens folder or zip. A ``--data``
    path that does not exist is left to the loader's "no such file" error."""
    from rbmrec.data import datasets

    given = [
        option
        for option, value in (
            ("--user-col", getattr(args, "user_col", None)),
            ("--item-col", getattr(args, "item_col", None)),
            ("--rating-col", getattr(args, "rating_col", None)),
            ("--no-header", getattr(args, "no_header", False) or None),
        )
        if value is not None
    ]
    if not given:
        return
    data = getattr(args, "data", None)
    dataset = getattr(args, "dataset", None)
    if dataset:
        source = f"--dataset {dataset}"
    elif path is None:
        source = f"--data {data}" if data else "the demo data (no --data)"
    elif path.exists():
        source = f"--data {data} (a MovieLens {'zip' if path.is_file() else 'folder'})"
    elif data.lower() in datasets.list_datasets():
        source = f"--data {data} (a named data set)"
    else:
        return
    raise UsageError(
        f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to CSV/TSV/parquet "
        f"files given with --data, not to {source}"
    )


def load_data(args: argparse.Namespace) -> Any:
    """The Ratings named by ``--data`` or ``--dataset`` (default: the demo data)."""
    from rbmrec.errors import DataError

    data = getattr(args, "data", None)
    dataset = getattr(args, "dataset", None)
    duplicates = getattr(args, "duplicates", "error")
    if data and dataset:
        raise UsageError("give either --data or --dataset, not both")
    path = Path(data) if data and data.lower() not in SYNTHETIC_WORDS else None
    if path is not None and path.exists() and not path.is_dir() and path.suffix.lower() != ".zip":
        return _load_table(path, args)
    _refuse_table_options(args, path)
    try:
        if dataset:
            return _load_dataset(dataset, duplicates)
        if path is None:
            return demo_ratings()
        if not path.exists():
            from rbmrec.data import datasets

            if data.lower() in datasets.list_datasets():
                return _load_dataset(data.lower(), duplicates)
            raise FileNotFoundError(f"--data {data}: no such file or folder")
        from rbmrec.data import load_movielens

        return load_movielens(path, duplicates=duplicates)
    except DataError as exc:
        hinted = _with_cli_hint(exc, table=False)
        if hinted is exc:
            raise
        raise hinted from exc
