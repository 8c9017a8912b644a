"""Batch scoring on a Dask cluster: ``predict`` and ``recommend`` over Dask DataFrames.

The model travels to every worker once (``client.scatter(..., broadcast=True)``) without its
training ratings' copy in the bundle (the model keeps what it scores with); partitions are
scored where they are.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from rbmrec.bundle import ModelBundle
from rbmrec.data.idmap import UnknownIdError
from rbmrec.distributed import _data as D
from rbmrec.distributed._client import using_client


def _light(model: Any, need: str) -> ModelBundle:
    """The bundle to send to the workers: ``model``'s model and id maps, no seen items.

    Raises
    ------
    TypeError
        ``model`` is not a :class:`~rbmrec.bundle.ModelBundle` (the raw-id maps are needed),
        or its model lacks the method ``need``.
    """
    if not isinstance(model, ModelBundle):
        raise TypeError(
            f"model must be a ModelBundle (what rbmrec.distributed.fit returns, or "
            f"ModelBundle.load(path)): its id maps translate raw ids; got {type(model).__name__}"
        )
    if not hasattr(model.model, need):
        raise TypeError(f"{type(model.model).__name__} has no {need}()")
    return ModelBundle(model.model, model.user_ids, model.item_ids)


def _indices(bundle: ModelBundle, part: pd.DataFrame, ucol: str, icol: str) -> tuple:
    """Index of each row's user and item (-1 for an unknown id), int32 arrays (n,)."""
    u = bundle.user_ids.to_index(np.asarray(part[ucol]), unknown="minus_one")
    i = bundle.item_ids.to_index(np.asarray(part[icol]), unknown="minus_one")
    return np.asarray(u, np.int64), np.asarray(i, np.int64)


def _predict_part(part: pd.DataFrame, bundle: ModelBundle, ucol: str, icol: str) -> Any:
    u, i = _indices(bundle, part, ucol, icol)
    known = (u >= 0) & (i >= 0)
    pred = np.full(len(part), np.nan)
    if known.any():
        pred[known] = bundle.model.predict(u[known], i[known])
    return part.assign(prediction=pred)


def _count_unknown(part: pd.DataFrame, bundle: ModelBundle, ucol: str, icol: str) -> Any:
    u, i = _indices(bundle, part, ucol, icol)
    return pd.Series([int(np.sum((u < 0) | (i < 0))), len(part)], index=["unknown", "total"])


def predict(
    model: Any, pairs: Any, *, client: Any = None, user_col: str = "user", item_col: str = "item"
) -> Any:
    """Predicted ratings of raw (user, item) pairs on the cluster.

    Parameters
    ----------
    model : ModelBundle
        A rating model with its id maps (:func:`rbmrec.distributed.fit`, or
        ``ModelBundle.load``).
    pairs : dask DataFrame, pandas or polars DataFrame, or str / PathLike (parquet)
        One pair per row; other columns are kept.
    client : dask.distributed.Client, optional
        Default: the current client, else a local cluster closed on return (the result is
        then computed before it closes, and returned as a Dask DataFrame over memory).
    user_col, item_col : str

    Returns
    -------
    dask DataFrame
        The pairs' columns and a float64 ``prediction``; NaN for a pair whose user or item
        the model does not know; a ``UserWarning`` counts those pairs (counted when the call
        is made: one pass over ``pairs``). Lazy: compute it with the same client
        (``client.compute(result)``, or ``result.to_parquet(...)`` with that client current).
    """
    bundle = _light(model, "predict")
    with using_client(client) as c:
        frame = D.as_dask_frame(pairs, [user_col, item_col], "pairs", c, keep_all=True)
        [shared] = c.scatter([bundle], broadcast=True, hash=False)
        meta = frame._meta.assign(prediction=np.float64())
        out = frame.map_partitions(_predict_part, shared, user_col, item_col, meta=meta)
        counts = frame.map_partitions(
            _count_unknown, shared, user_col, item_col,
            meta=pd.Series([0, 0], index=["unknown", "total"]),
        )  # fmt: skip
        unknown, total = _sum_counts(c.compute(counts).result())
        if unknown:
            warnings.warn(
                f"{unknown} of {total} pairs have a user or item id the model does not know; "
                "their prediction is NaN",
                UserWarning,
                stacklevel=2,
            )
        return _own(c, out)


def _sum_counts(counts: pd.Series) -> tuple[int, int]:
    return int(counts["unknown"].sum()), int(counts["total"].sum())


def _own(client: Any, out: Any) -> Any:
    """``out``, computed into memory when the call runs its own cluster (closed on return)."""
    if not getattr(client, "_rbmrec_own", False):
        return out
    import dask.dataframe as dd

    return dd.from_pandas(client.compute(out).result(), npartitions=1)


def _user_rows(
    part: pd.DataFrame, bundle: ModelBundle, cols: D.Columns
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(raw ids of the partition's users, sorted; their indices, -1 when unknown; their
    ratings of known items, CSR (n_users, n_items), the last rating of a pair kept)."""
    raw = D.id_array(part[cols.user], cols.user) if len(part) else np.zeros(0, np.int64)
    users, inverse = np.unique(raw, return_inverse=True)
    index = np.asarray(bundle.user_ids.to_index(users, unknown="minus_one"), np.int64)
    items = np.asarray(bundle.item_ids.to_index(np.asarray(part[cols.item]), "minus_one"))
    ratings = D.rating_array(part[cols.rating], cols.rating) if len(part) else np.zeros(0)
    keep = items >= 0
    key = inverse.reshape(-1)[keep].astype(np.int64) * bundle.n_items + items[keep]
    last = len(key) - 1 - np.unique(key[::-1], return_index=True)[1]
    r, i = np.divmod(key[last], bundle.n_items)
    rows = sp.csr_matrix(
        (ratings[keep][last].astype(np.float32), (r, i)), shape=(len(users), bundle.n_items)
    )
    rows.sort_indices()
    return users, index, rows


def _recommend_part(part: pd.DataFrame, bundle: ModelBundle, N: int, cols: D.Columns,
                    user_dtype: Any) -> pd.DataFrame:  # fmt: skip
    users, index, rows = _user_rows(part, bundle, cols)
    n = min(N, bundle.n_items)
    ids = np.full((len(users), n), -1, dtype=np.int64)
    scores = np.zeros((len(users), n), dtype=np.float32)
    known = index >= 0
    model = bundle.model
    if known.any():
        got = model.recommend(index[known], rows[known], N=n, filter_already_liked_items=True)
        ids[known], scores[known] = _padded(got, n)
    if (~known).any():
        new = bundle.n_users + np.arange(int((~known).sum()))
        got = model.recommend(new, rows[~known], N=n, recalculate_user=True)
        ids[~known], scores[~known] = _padded(got, n)
    slot = ids >= 0
    which, rank = np.nonzero(slot)
    return pd.DataFrame({
        "user": pd.Series(users[which], dtype=user_dtype),
        "rank": (rank + 1).astype(np.int32),
        "item": pd.Series(bundle.item_ids.to_raw(ids[slot]), dtype=_raw_dtype(bundle)),
        "score": scores[slot].astype(np.float32),
    })  # fmt: skip


def _padded(got: tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    ids, scores = (np.asarray(a).reshape(-1, np.asarray(a).shape[-1]) for a in got)
    out_i = np.full((ids.shape[0], n), -1, dtype=np.int64)
    out_s = np.zeros((ids.shape[0], n), dtype=np.float32)
    out_i[:, : ids.shape[1]], out_s[:, : ids.shape[1]] = ids, scores
    return out_i, out_s


def _raw_dtype(bundle: ModelBundle) -> Any:
    return np.int64 if bundle.item_ids.dtype.kind == "i" else object


def _user_dtype(bundle: ModelBundle) -> Any:
    return np.int64 if bundle.user_ids.dtype.kind == "i" else object


def _check_unknown_users(client: Any, frame: Any, bundle: ModelBundle, ucol: str) -> None:
    """An error naming the users absent from training when the model cannot fold them in."""
    distinct = np.unique(D.id_array(client.compute(D.distinct(frame[ucol])).result(), ucol))
    index = bundle.user_ids.to_index(distinct, unknown="minus_one")
    new = distinct[np.asarray(index) < 0]
    if not new.size:
        return
    try:
        bundle.check_fold_in()
    except NotImplementedError as exc:
        shown = ", ".join(repr(v) for v in new[:5].tolist())
        more = f" and {new.size - 5} more" if new.size > 5 else ""
        raise UnknownIdError(
            f"user(s) {shown}{more} are not in the model's training data and {exc}"
        ) from None


def recommend(
    model: Any,
    ratings: Any,
    *,
    N: int = 10,
    client: Any = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
) -> Any:
    """Top-``N`` items of every user of ``ratings``, on the cluster.

    Parameters
    ----------
    model : ModelBundle
        A fitted recommender with its id maps.
    ratings : dask DataFrame, pandas or polars DataFrame, or str / PathLike (parquet)
        One rating per row. Each user's rated items are left out of their list; a user the
        model was not trained on is folded in from these ratings (a RatingRBM with a
        user-based part), else the call raises. Items the model does not know are ignored.
    N : int, default 10
    client : dask.distributed.Client, optional
        As in :func:`predict`.
    user_col, item_col, rating_col : str

    Returns
    -------
    dask DataFrame
        Columns ``user`` (raw id), ``rank`` (int32, 1..N), ``item`` (raw id) and ``score``
        (float32), best first within each user; fewer than N rows for a user with fewer
        candidates. Users are shuffled into partitions (each user whole in one). Lazy, as
        :func:`predict`'s result.

    Raises
    ------
    UnknownIdError
        Users absent from training that the model cannot fold in (named).
    """
    if isinstance(N, bool) or not isinstance(N, int | np.integer) or N < 1:
        raise ValueError(f"N must be a positive int, got {N!r}")
    bundle = _light(model, "recommend")
    cols = D.Columns(user_col, item_col, rating_col)
    with using_client(client) as c:
        frame = D.as_dask_frame(ratings, [user_col, item_col, rating_col], "ratings", c)
        _check_unknown_users(c, frame, bundle, user_col)
        [shared] = c.scatter([bundle], broadcast=True, hash=False)
        udt = _user_dtype(bundle)
        meta = _recommend_part(frame._meta, bundle, int(N), cols, udt)
        by_user = frame.shuffle(on=user_col) if frame.npartitions > 1 else frame
        out = by_user.map_partitions(_recommend_part, shared, int(N), cols, udt, meta=meta)
        return _own(c, out)
