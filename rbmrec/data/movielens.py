"""MovieLens loaders: every GroupLens release, from its folder or its zip.

Formats (detected from the files present):

- 100K: ``u.data`` (tab separated ``user item rating timestamp``), ``u.item`` (``|``
  separated, latin-1), ``u.user``, ``u.genre``; official folds ``u1..u5.base/test``,
  ``ua``/``ub``.
- 1M and 10M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) or the three-field
  variant without timestamps (``ratings_no_timestamps.dat``); ``movies.dat``
  (``MovieID::Title::Genres``, titles contain colons, latin-1 in 1M); ``users.dat`` (1M).
- 20M, 25M, 32M, latest, latest-small: ``ratings.csv`` (``userId,movieId,rating,timestamp``
  with a header, half-star ratings) and ``movies.csv`` (quoted titles).

Reference: F. M. Harper and J. A. Konstan (2015), "The MovieLens Datasets: History and
Context", ACM TiiS 5(4).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rbmrec.data._io import Field, Source, decode_text, read_delimited
from rbmrec.data.idmap import IdMap
from rbmrec.data.ratings import Duplicates, Ratings
from rbmrec.errors import DataError

log = logging.getLogger(__name__)

INT_SCALE = np.arange(1, 6, dtype=np.float32)
HALF_STAR_SCALE = np.arange(1, 11, dtype=np.float32) / 2

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

_RATING_FIELDS = (
    Field("user_id", "id"),
    Field("item_id", "id"),
    Field("rating", "rating"),
)
_TS = Field("timestamp", "int")

_MARKERS = ("u.data", "ratings.dat", "ratings_no_timestamps.dat", "ratings.csv")


def _release_name(source: Source, fmt: str, ratings: np.ndarray) -> str:
    """The release a folder or zip holds: from its name when that agrees with the format.

    Otherwise from the files: ``.dat`` ratings are ML-1M when ``users.dat`` is present or
    every rating is a whole star, and ML-10M (the only ``.dat`` release with half stars)
    when some rating is a half star.
    """
    name = source.name.lower()
    for pattern, release, release_fmt in (
        (r"100k", "ml-100k", "100k"),
        (r"10m", "ml-10m", "dat"),
        (r"(^|\D)1m", "ml-1m", "dat"),
        (r"latest-small", "ml-latest-small", "csv"),
        (r"latest", "ml-latest", "csv"),
        (r"20m", "ml-20m", "csv"),
        (r"25m", "ml-25m", "csv"),
        (r"32m", "ml-32m", "csv"),
    ):
        if release_fmt == fmt and re.search(pattern, name):
            return release
    if fmt == "100k":
        return "ml-100k"
    if fmt == "dat":
        whole = bool(np.all(ratings == np.round(ratings)))
        return "ml-1m" if source.has("users.dat") or whole else "ml-10m"
    return "movielens-csv"


def load_movielens(
    path: str | Path,
    *,
    duplicates: Duplicates = "error",
    metadata: bool = True,
) -> Ratings:
    """Load any MovieLens release from its folder or its zip.

    Parameters
    ----------
    path : str or Path
        The release folder (``ml-100k/``, ``ml-1m/``, ``ml-10M100K/``, ``ml-25m/``, ...), a
        folder holding exactly one such folder, or the release ``.zip``.
    duplicates : {"error", "last", "mean"}, default "error"
        Policy for a repeated (user, item) pair (none occurs in the official releases).
        ``"mean"`` stores their average, which can fall between the scale's values
        (``values`` stays the release's scale).
    metadata : bool, default True
        Also read titles/genres (``items``) and demographics (``users``) when present.

    Returns
    -------
    Ratings
        Users and items indexed in increasing raw-id order; ``timestamps`` when the file has
        them; ``values`` the release's rating scale; ``info["release"]`` e.g. ``"ml-1m"``.
        The release is read from the folder or zip name (``ml-1m``, ``ml-10M100K``, ...);
        when the name does not tell, ``.dat`` ratings with half stars are ML-10M (scale
        0.5..5) and others ML-1M (1..5).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataError
        No ratings file is found, the zip is corrupted, or a line is malformed (the message
        names the file and the line).
    """
    with Source(path) as source:
        source.descend(_MARKERS)
        fmt = _detect(source)
        base, frame, where = _read_ratings(source, fmt)
        ratings = frame["rating"].to_numpy()
        release = _release_name(source, fmt, ratings)
        scale = INT_SCALE if release in ("ml-100k", "ml-1m") else HALF_STAR_SCALE
        _check_scale(ratings, scale, release, where)
        items = users = None
        if metadata:
            items = _read_items(source, fmt)
            users = _read_users(source, fmt)
        ts = frame["timestamp"].to_numpy() if "timestamp" in frame.columns else None
        result = Ratings.from_arrays(
            frame["user_id"].to_numpy(),
            frame["item_id"].to_numpy(),
            ratings,
            ts,
            duplicates=duplicates,
            where=where,
            items=items,
            users=users,
            values=scale,
            name=release,
            info={"release": release, "format": fmt, "path": str(path), "ratings_file": base},
        )
    log.info("loaded %r", result)
    return result


def _read_ratings(source: Source, fmt: str) -> tuple[str, pl.DataFrame, Callable[[int], str]]:
    """``(file name, frame, where)``: the ratings file of a release in format ``fmt``
    (``"100k"``, ``"dat"`` or ``"csv"``, see :func:`_detect`), parsed."""
    if fmt == "100k":
        base = "u.data"
        frame, where = _read_100k_ratings(source, base)
    elif fmt == "dat":
        base = source.find("ratings.dat", "ratings_no_timestamps.dat")
        assert base is not None
        frame, where = _read_dat_ratings(source, base)
    else:
        base = "ratings.csv"
        frame, where = _read_csv_ratings(source, base)
    return base, frame, where


def _detect(source: Source) -> str:
    if source.has("u.data"):
        return "100k"
    if source.find("ratings.dat", "ratings_no_timestamps.dat"):
        return "dat"
    if source.has("ratings.csv"):
        return "csv"
    raise DataError(
        f"{source.path}: no MovieLens ratings file found (looked for u.data, ratings.dat, "
        "ratings_no_timestamps.dat, ratings.csv)"
    )


def _check_scale(ratings: np.ndarray, scale: np.ndarray, release: str, where: Any) -> None:
    bad = np.flatnonzero(~np.isin(ratings, scale))
    if bad.size:
        k = int(bad[0])
        shown = ", ".join(f"{v:g}" for v in scale)
        raise DataError(
            f"{where(k)}: rating {ratings[k]:g} is not on the {release} scale ({shown})"
        )


# --------------------------------------------------------------------------- ratings files


def _read_100k_ratings(source: Source, base: str) -> tuple[pl.DataFrame, Any]:
    return read_delimited(source.read(base), source.label(base), "\t", (*_RATING_FIELDS, _TS))


def _read_dat_ratings(source: Source, base: str) -> tuple[pl.DataFrame, Any]:
    data = source.read(base)
    first = next((ln for ln in data[:65536].split(b"\n") if ln.strip()), b"")
    fields = (*_RATING_FIELDS, _TS) if first.count(b"::") >= 3 else _RATING_FIELDS
    return read_delimited(data, source.label(base), "::", fields)


def _read_csv_ratings(source: Source, base: str) -> tuple[pl.DataFrame, Any]:
    data = source.read(base)
    label = source.label(base)
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lower()
    names = [h.strip().strip('"') for h in header.split(",")]
    if names[:3] != ["userid", "movieid", "rating"]:
        raise DataError(
            f"{label}, line 1: expected the header 'userId,movieId,rating,timestamp', "
            f"found {header!r}"
        )
    fields = (*_RATING_FIELDS, _TS) if len(names) >= 4 else _RATING_FIELDS
    return read_delimited(data, label, ",", fields, n_header=1)


# --------------------------------------------------------------------------- metadata


def _lines(source: Source, base: str) -> list[tuple[int, str]]:
    text = decode_text(source.read(base))
    return [(n, ln.rstrip("\r")) for n, ln in enumerate(text.split("\n"), 1) if ln.strip()]


def _read_items(source: Source, fmt: str) -> pl.DataFrame | None:
    if fmt == "100k":
        return _read_u_item(source) if source.has("u.item") else None
    if fmt == "dat":
        return _read_movies_dat(source) if source.has("movies.dat") else None
    return _read_movies_csv(source) if source.has("movies.csv") else None


def _read_u_item(source: Source) -> pl.DataFrame:
    genres = list(ML100K_GENRES)
    if source.has("u.genre"):
        named = {}
        for line_no, line in _lines(source, "u.genre"):
            parts = line.split("|")
            if len(parts) != 2 or not parts[1].strip().isdigit():
                raise DataError(
                    f"{source.label('u.genre')}, line {line_no}: expected 'Genre|index', "
                    f"found {line!r}"
                )
            named[int(parts[1])] = parts[0]
        if named:
            genres = [named.get(i, f"genre{i}") for i in range(max(named) + 1)]
    label = source.label("u.item")
    ids, titles, dates, urls, genre_col = [], [], [], [], []
    for line_no, line in _lines(source, "u.item"):
        parts = line.split("|")
        if len(parts) < 5:
            raise DataError(f"{label}, line {line_no}: expected '|' separated fields: {line!r}")
        try:
            ids.append(int(parts[0]))
        except ValueError:
            raise DataError(
                f"{label}, line {line_no}: movie id {parts[0]!r} is not an integer"
            ) from None
        titles.append(parts[1])
        dates.append(parts[2] or None)
        urls.append(parts[4] or None)
        flags = parts[5:]
        genre_col.append("|".join(g for g, f in zip(genres, flags, strict=False) if f == "1"))
    return pl.DataFrame(
        {"item_id": ids, "title": titles, "genres": genre_col, "release_date": dates,
         "imdb_url": urls},
        schema={"item_id": pl.Int64, "title": pl.String, "genres": pl.String,
                "release_date": pl.String, "imdb_url": pl.String},
    )  # fmt: skip


def _read_movies_dat(source: Source) -> pl.DataFrame:
    label = source.label("movies.dat")
    ids, titles, genres = [], [], []
    for line_no, line in _lines(source, "movies.dat"):
        # Titles contain colons (and could contain "::"): id first, genres last.
        parts = line.split("::")
        if len(parts) < 3:
            raise DataError(
                f"{label}, line {line_no}: expected 'MovieID::Title::Genres', found {line!r}"
            )
        try:
            ids.append(int(parts[0]))
        except ValueError:
            raise DataError(
                f"{label}, line {line_no}: movie id {parts[0]!r} is not an integer"
            ) from None
        titles.append("::".join(parts[1:-1]))
        genres.append(parts[-1])
    return pl.DataFrame(
        {"item_id": ids, "title": titles, "genres": genres},
        schema={"item_id": pl.Int64, "title": pl.String, "genres": pl.String},
    )


def _read_movies_csv(source: Source) -> pl.DataFrame:
    data = source.read("movies.csv")
    try:
        df = pl.read_csv(
            io.BytesIO(data),
            schema={"item_id": pl.Int64, "title": pl.String, "genres": pl.String},
            has_header=False,
            skip_rows=1,
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{source.label('movies.csv')}: cannot be parsed: {exc}") from exc
    return df.drop_nulls("item_id")


def _read_users(source: Source, fmt: str) -> pl.DataFrame | None:
    if fmt == "100k" and source.has("u.user"):
        rows = [ln.split("|") for _, ln in _lines(source, "u.user")]
        rows = [r for r in rows if len(r) == 5 and r[0].strip().isdigit()]
        return pl.DataFrame(
            {
                "user_id": [int(r[0]) for r in rows],
                "age": [int(r[1]) if r[1].isdigit() else None for r in rows],
                "gender": [r[2] for r in rows],
                "occupation": [r[3] for r in rows],
                "zip_code": [r[4] for r in rows],
            },
            schema_overrides={"user_id": pl.Int64, "age": pl.Int64},
        )
    if fmt == "dat" and source.has("users.dat"):
        rows = [ln.split("::") for _, ln in _lines(source, "users.dat")]
        rows = [r for r in rows if len(r) == 5 and r[0].strip().isdigit()]
        return pl.DataFrame(
            {
                "user_id": [int(r[0]) for r in rows],
                "gender": [r[1] for r in rows],
                "age": [int(r[2]) if r[2].isdigit() else None for r in rows],
                "occupation": [int(r[3]) if r[3].isdigit() else None for r in rows],
                "zip_code": [r[4] for r in rows],
            },
            schema_overrides={"user_id": pl.Int64, "age": pl.Int64, "occupation": pl.Int64},
        )
    return None


# --------------------------------------------------------------------------- folds


def read_fold_part(source: Source, base: str, user_ids: IdMap, item_ids: IdMap) -> Any:
    """One ``uX.base``/``uX.test`` file as a Ratings indexed by the full data set's maps."""
    frame, where = _read_100k_ratings(source, base)
    ratings = frame["rating"].to_numpy()
    _check_scale(ratings, INT_SCALE, "ml-100k", where)
    for col, ids in (("user_id", user_ids), ("item_id", item_ids)):
        idx = ids.to_index(frame[col].to_numpy(), unknown="minus_one")
        bad = np.flatnonzero(idx < 0)
        if bad.size:
            raise DataError(
                f"{where(int(bad[0]))}: {ids.name} id {frame[col][int(bad[0])]} is not in u.data"
            )
    return Ratings.from_arrays(
        frame["user_id"].to_numpy(),
        frame["item_id"].to_numpy(),
        ratings,
        frame["timestamp"].to_numpy(),
        user_ids=user_ids,
        item_ids=item_ids,
        where=where,
        values=INT_SCALE,
    )
