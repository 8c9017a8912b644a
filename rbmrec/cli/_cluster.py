"""``--cluster``: ``rbmrec fit``, ``rbmrec recommend`` and ``rbmrec evaluate`` on a Dask
cluster (:mod:`rbmrec.distributed`).

The command line reads the data in its own process, as without ``--cluster``, and sends the
ratings to the cluster; data too large for one machine goes to
:func:`rbmrec.distributed.fit` as parquet files instead (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.cli._common import UsageError, check_output

HELP = (
    "run on a Dask cluster (needs the dask extra: pip install 'rbmrec[dask]'): 'local' (one "
    "worker process per core), 'local:N' (N worker processes) or a scheduler address "
    "(tcp://host:8786)"
)


def add_cluster_arg(p: argparse.ArgumentParser) -> None:
    """The ``--cluster SPEC`` option."""
    p.add_argument("--cluster", metavar="SPEC", help=HELP)


@contextlib.contextmanager
def cluster_client(spec: str) -> Iterator[Any]:
    """A Dask client for ``--cluster SPEC``, closed (with its local cluster) on exit."""
    try:
        from rbmrec.distributed._client import close, connect

        client = connect(spec)
    except ImportError as exc:
        raise UsageError(f"--cluster: {exc}") from None
    except (ValueError, OSError) as exc:
        raise UsageError(f"--cluster {spec}: {exc}") from None
    try:
        yield client
    finally:
        close(client)


def fit_on_cluster(model: Any, data: Any, spec: str) -> Any:
    """Fit ``model`` on the ratings ``data`` (a :class:`rbmrec.data.Ratings`) on the cluster;
    the fitted model (its id maps are ``data``'s: both are the sorted distinct ids)."""
    import rbmrec.distributed as rd

    frame = data.to_frame(raw_ids=True).to_pandas()
    with cluster_client(spec) as client:
        try:
            bundle = rd.fit(model, frame, client=client, user_col="user_id", item_col="item_id")
        except NotImplementedError as exc:
            raise UsageError(f"--cluster: {exc}") from None
    if bundle.user_ids != data.user_ids or bundle.item_ids != data.item_ids:
        raise RuntimeError("the cluster's id maps differ from the data's")  # pragma: no cover
    return bundle.model


class OnCluster:
    """A model whose ``fit`` runs on the cluster (in the training matrix's indices, with the
    validation ratings its ``fit`` would get); scoring runs in this process."""

    def __init__(self, model: Any, client: Any) -> None:
        self._model, self._client = model, client

    def fit(self, user_items: Any, validation: Any = None) -> Any:
        from rbmrec.distributed._fit import fit_matrix

        fit_matrix(self._model, user_items, validation, client=self._client)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return repr(self._model)


def on_cluster(models: dict[str, Any], client: Any) -> dict[str, Any]:
    """``models`` with those the cluster supports wrapped in :class:`OnCluster`; the
    others stay as they are (fitted in this process), each named on stdout."""
    from rbmrec.models.replica import check_supported

    out = {}
    for name, model in models.items():
        try:
            check_supported(model)
        except (NotImplementedError, ValueError) as exc:
            print(f"{name}: fitted in this process, not on the cluster ({exc})", flush=True)
            out[name] = model
            continue
        out[name] = OnCluster(model, client)
    return out


def _seen_frame(bundle: Any) -> Any:
    """The bundle's training ratings as a pandas frame of raw ids (user, item, rating)."""
    import pandas as pd

    seen = bundle.seen
    if seen is None:
        raise UsageError(f"{bundle.source} holds no training ratings to recommend from")
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    return pd.DataFrame({
        "user": bundle.user_ids.to_raw(rows),
        "item": bundle.item_ids.to_raw(seen.indices),
        "rating": seen.data,
    })  # fmt: skip


def recommend_all(bundle: Any, args: argparse.Namespace) -> int:
    """Top-``args.n`` lists of every user of the bundle's training data, written to
    ``args.out`` (``.parquet`` or ``.csv``: columns user, rank, item, score); the number of
    rows written."""
    import rbmrec.distributed as rd

    if not args.out:
        raise UsageError("--cluster lists every user: give --out FILE (.parquet or .csv)")
    out = Path(args.out)
    check_output("--out", out, (".parquet", ".csv"))
    if args.user or args.ratings or not args.exclude_seen:
        raise UsageError(
            "--cluster lists every user of the training data, without their rated items: "
            "--user, --ratings and --include-seen apply to one user without --cluster"
        )
    with cluster_client(args.cluster) as client:
        lists = rd.recommend(bundle, _seen_frame(bundle), N=args.n, client=client)
        lists = client.compute(lists).result()
    lists = lists.sort_values(["user", "rank"], kind="stable")
    if out.suffix.lower() == ".parquet":
        lists.to_parquet(out, index=False)
    else:
        lists.to_csv(out, index=False)
    return len(lists)
