"""Which Dask client a call uses, and the workers a fit trains on."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

#: Environment of the worker processes of a local cluster: one Numba/OpenMP/BLAS thread per
#: worker process, so that the workers (not threads inside them) share the cores.
WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def import_distributed() -> Any:
    """The ``distributed`` module, or ImportError saying how to install it."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed
    except ImportError as exc:
        raise ImportError(
            "rbmrec.distributed needs Dask: pip install 'rbmrec[dask]' (dask[dataframe], "
            f"distributed, pyarrow); {exc}"
        ) from exc
    return distributed


def local_cluster(n_workers: int) -> Any:
    """A local cluster of ``n_workers`` worker processes with one thread each, on
    127.0.0.1, without a dashboard (the scheduler's small HTTP API, which it always serves,
    on a free loopback port rather than 8787, so that clusters side by side do not clash).

    The worker processes get :data:`WORKER_ENV` from their start: a spawned process
    imports the driver's main script before Dask applies a worker's ``env``, and a script
    that imports rbmrec (hence Numba) would fix Numba's thread count there, so that Numba
    refuses to compile any kernel later (its configuration no longer matches the
    environment). The variables are set in this process while the workers start, then
    restored.
    """
    distributed = import_distributed()
    env = {**WORKER_ENV}
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            env=env,
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def using_client(client: Any = None) -> Iterator[Any]:
    """``client``; else the current Dask client; else a new local cluster (one worker per
    core, see :func:`local_cluster`) closed when the block ends."""
    distributed = import_distributed()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(
                f"client must be a dask.distributed.Client, got {type(client).__name__}"
            )
        yield client
        return
    try:
        yield distributed.get_client()
        return
    except ValueError:
        pass
    n = max(1, os.cpu_count() or 1)
    log.info("no Dask client: starting a local cluster of %d worker processes", n)
    with local_cluster(n) as cluster, distributed.Client(cluster) as own:
        own._rbmrec_own = True  # lazy results are computed before the cluster closes
        yield own


def connect(spec: str) -> Any:
    """A client for a ``--cluster`` value: ``local`` (one worker per core), ``local:N`` (N
    worker processes) or a scheduler address (``tcp://host:8786``, or ``host:port``).

    Raises
    ------
    ValueError
        ``local:N`` with N not a positive integer, or an empty value.
    """
    distributed = import_distributed()
    spec = spec.strip()
    if not spec:
        raise ValueError("--cluster needs a value: local, local:N or a scheduler address")
    if spec == "local" or spec.startswith("local:"):
        text = spec.partition(":")[2] or str(max(1, os.cpu_count() or 1))
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"--cluster {spec!r}: N of local:N must be a positive integer")
        cluster = local_cluster(int(text))
        client = distributed.Client(cluster)
        client._rbmrec_cluster = cluster  # closed with the client by close()
        return client
    return distributed.Client(spec)


def close(client: Any) -> None:
    """Close a client from :func:`connect` (and its local cluster)."""
    cluster = getattr(client, "_rbmrec_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def worker_ranks(client: Any) -> list[str]:
    """Addresses of the client's workers in a fixed order (sorted): worker ``w`` of a fit
    holds shard ``w``.

    Raises
    ------
    RuntimeError
        The cluster has no workers.
    """
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # distributed before 2025: every worker is listed
        info = client.scheduler_info()
    workers = sorted(info["workers"])
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    return workers
