"""``rbmrec.distributed.fit``: ratings on the cluster to a fitted model bundle."""

from __future__ import annotations

import operator
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from rbmrec.bundle import ModelBundle
from rbmrec.data.idmap import IdMap
from rbmrec.distributed import _data as D
from rbmrec.distributed._client import using_client, worker_ranks
from rbmrec.distributed._train import Cluster, check_sync_every, fit_single
from rbmrec.models import replica as R


class Prepared:
    """Ratings on the cluster: id maps, the shards of whole rows (built on their workers
    from the input partitions, once per orientation) and the whole matrix for the driver's
    model."""

    def __init__(
        self, cluster: Cluster, frame: Any, cols: D.Columns, orientations: tuple[bool, ...],
        maps: tuple[IdMap, IdMap] | None = None,
    ) -> None:  # fmt: skip
        """Id maps (``maps``, or the sorted distinct ids) and shards (``orientations``:
        False for users, True for items). Each input partition is read, cut by shard and
        released in one task (read again for a second orientation)."""
        from distributed import wait

        self.cluster, self.cols = cluster, cols
        client = cluster.client
        if maps is None:
            users, items = client.gather(
                client.compute([D.distinct(frame[cols.user]), D.distinct(frame[cols.item])])
            )
            maps = D.id_map(users, cols.user, "user"), D.id_map(items, cols.item, "item")
        self.users: IdMap = maps[0]
        self.items: IdMap = maps[1]
        self._maps = client.scatter([self.users, self.items], broadcast=True, hash=False)
        self._frame = frame
        self._shards: dict[bool, list[Any]] = {}
        self._X: sp.csr_matrix | None = None
        for by_item in orientations:
            wait(self.shards(by_item))

    def shards(self, by_item: bool) -> list[Any]:
        """Futures of the shards' CSR matrices (:func:`rbmrec.distributed._data.shard_matrix`),
        shard ``w`` on worker ``w``: by users, or by items (``by_item``)."""
        if by_item in self._shards:
            return self._shards[by_item]
        import dask

        client, n = self.cluster.client, self.cluster.n
        users_f, items_f = self._maps
        split = dask.delayed(D.split_partition, pure=False)
        splits = client.compute([
            split(part, self.cols, users_f, items_f, by_item, n)
            for part in self._frame.to_delayed()
        ])  # fmt: skip
        n_rows = len(self.items) if by_item else len(self.users)
        n_other = len(self.users) if by_item else len(self.items)
        shards = []
        for w, worker in enumerate(self.cluster.workers):
            pieces = [client.submit(operator.getitem, s, w, pure=False) for s in splits]
            shards.append(
                client.submit(
                    _build_shard, pieces, D.shard_rows(n_rows, w, n), n_other, by_item,
                    users_f, items_f, w, n, workers=[worker], allow_other_workers=True,
                    pure=False,
                )
            )  # fmt: skip
        self._shards[by_item] = shards
        return shards

    def release(self) -> None:
        """Drop the shards built on the workers (when the training part is not the whole
        data, the fit cuts its shards from it instead)."""
        self._shards.clear()

    @property
    def X(self) -> sp.csr_matrix:
        """The whole users x items ratings (float32 CSR), gathered once from the shards."""
        if self._X is None:
            by_item = next(iter(self._shards), False)
            parts = self.cluster.client.gather(self.shards(by_item))
            self._X = D.assemble(parts, len(self.users), len(self.items), by_item)
        return self._X


def _build_shard(
    pieces: list, n_local: int, n_other: int, by_item: bool, users: IdMap, items: IdMap,
    shard: int, n_shards: int,
) -> sp.csr_matrix:  # fmt: skip  # runs on a worker
    return D.shard_matrix(pieces, n_local, n_other, by_item, users, items, shard, n_shards)


def fit(
    model: Any,
    ratings: Any,
    *,
    client: Any = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    sync_every: int | None = None,
) -> ModelBundle:
    """Train an unfitted model data-parallel on a Dask cluster; return it with its id maps.

    The ratings are sharded by the model's rows (users for a user-based RBM, items for an
    item-based one; each row whole on one worker, row ``g`` on worker ``g % n_workers`` of
    the workers sorted by address). Each round, every worker trains ``sync_every``
    mini-batches of its rows from the same parameters and momentum buffers; the driver then
    moves the parameters by the workers' mean update (weighted by the rows each trained)
    times the number of workers, and sets the momentum buffers to their weighted mean,
    summing in worker order. A round that loses a worker is rerun.
    With one worker the result is bitwise the one-process ``fit`` of the same data; with
    more it is reproducible for a fixed ``random_state`` and number of workers.

    Parameters
    ----------
    model : RatingRBM or ImplicitRBM
        Unfitted (a fitted one is refitted). A RatingRBM, any orientation: ``"both"`` fits
        the item-based member, then the user-based one, and mixes them as its ``fit`` does
        (``refit=True`` as its ``fit``: a second fit on all the ratings). Validation as in
        its ``fit``: the part a RatingRBM holds out of ``ratings`` (carved on the driver
        with the same draw) gives the per-epoch validation RMSE, early stopping and the
        mixture's weights; none without it. An ImplicitRBM with ``negative="mean_field"``
        and ``patience=None``: its members one after the other, each sharded by users, as
        its ``fit`` does without validation (every rating an interaction).
    ratings : dask DataFrame, pandas or polars DataFrame, or str / PathLike
        One rating per row; a path is a parquet file, folder or glob. Ids are integers or
        strings; ratings any finite numbers (each distinct value a level).
    client : dask.distributed.Client, optional
        Default: the current client, else a local cluster (one worker process per core)
        closed on return.
    user_col, item_col, rating_col : str
        Column names.
    sync_every : int, optional
        Mini-batches each worker trains between two averages. None: 16 (docs/distributed.md,
        "Choosing sync_every").

    Returns
    -------
    ModelBundle
        ``bundle.model`` is ``model``, fitted; ``bundle.user_ids`` / ``item_ids`` the raw-id
        maps (sorted distinct ids, as :class:`rbmrec.data.Ratings` maps them) and
        ``bundle.seen`` the training ratings, so ``bundle.recommend``, ``bundle.predict``,
        ``bundle.save`` and this module's ``predict`` / ``recommend`` take raw ids. Each
        record of ``model.history_`` also holds the epoch's ``rounds``, ``bytes_moved``
        (parameters and momentum buffers to and from the workers) and ``worker_seconds``
        (the slowest worker's compute time, summed over rounds).

    Raises
    ------
    NotImplementedError
        A model other than a RatingRBM or a mean-field ImplicitRBM.
    DataError, TypeError, ValueError
        Bad input (missing columns, missing or float ids, non-finite ratings, a pair rated
        twice, fewer than two rating values), as one process raises them.
    RuntimeError
        Workers were lost in three tries of one round.
    """
    cols = D.Columns(user_col, item_col, rating_col)
    return _fit(model, ratings, client, cols, sync_every)


def fit_matrix(
    model: Any, user_items: sp.spmatrix, validation: sp.spmatrix | None = None, *,
    client: Any = None, sync_every: int | None = None,
) -> Any:  # fmt: skip
    """:func:`fit` on a users x items matrix held in memory, in its indices (every row and
    column of ``user_items`` is one of the model's, rated or not), with ``validation`` in
    the same indices as its ``fit`` takes it (a RatingRBM's; an ImplicitRBM's is not
    used); the fitted ``model``."""
    X = sp.csr_matrix(user_items)
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    frame = pd.DataFrame({
        "user": rows, "item": X.indices.astype(np.int64), "rating": np.asarray(X.data),
    })  # fmt: skip
    maps = tuple(
        IdMap._from_sorted_unique(np.arange(n, dtype=np.int64), name)
        for n, name in zip(X.shape, ("user", "item"), strict=True)
    )
    cols = D.Columns("user", "item", "rating")
    _fit(model, frame, client, cols, sync_every, maps, validation)
    return model


def _fit(
    model: Any, ratings: Any, client: Any, cols: D.Columns, sync_every: int | None,
    maps: tuple[IdMap, IdMap] | None = None, validation: Any = None,
) -> ModelBundle:  # fmt: skip
    R.check_supported(model)
    sync = check_sync_every(sync_every)
    with using_client(client) as c:
        cluster = Cluster(c, worker_ranks(c))
        frame = D.as_dask_frame(ratings, [cols.user, cols.item, cols.rating], "ratings", c)
        orientations = {"user": (False,), "item": (True,), "both": (True, False)}
        by = orientations[getattr(model, "orientation", "user")]
        data = Prepared(cluster, frame, cols, by, maps)
        X, users, items = data.X, data.users, data.items
        train, V, known, values = R.carve(model, X, validation)
        refit = bool(getattr(model, "refit", False))
        if train is not X and not refit:
            data.release()  # the shards are cut from the training part instead

        def fit_one(single: Any) -> None:
            fit_single(cluster, single, data, sync, train, V, known, values)

        def on_all(single: Any, n_epochs: int) -> None:
            fit_single(cluster, single, data, sync, X, None, None, values, n_epochs)

        def refit_one(single: Any) -> None:
            R.refit(single, on_all)

        t0 = time.perf_counter()
        if R.is_implicit(model):
            R.fit_implicit(model, fit_one, train)
        elif model.orientation == "both":
            R.fit_both(model, fit_one, V, refit_one if refit else None)
        else:
            fit_one(model)
            if refit:
                refit_one(model)
                model.fit_seconds_ = time.perf_counter() - t0
    return ModelBundle(model, users, items, seen=X)
