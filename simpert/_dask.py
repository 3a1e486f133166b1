"""One way to get a Dask client: the one given, one for a scheduler address, or a LocalCluster's."""

from __future__ import annotations

import contextlib
import os

from ._validation import fail

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(client=None, n_workers: int | None = None, memory_limit="auto"):
    """A ``distributed.Client``: the one given, one for a scheduler address, or a LocalCluster's.

    Parameters
    ----------
    client : distributed.Client, str or None
        A running client, a scheduler address (``"tcp://host:8786"``), or None to start a
        LocalCluster of ``n_workers`` single-threaded worker processes (closed on exit).
    n_workers : int, optional
        Workers of the LocalCluster (default: the CPUs available to this process).
    memory_limit : str or int, default "auto"
        Per-worker memory limit of the LocalCluster.

    Yields
    ------
    distributed.Client
    """
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - depends on environment
        raise ImportError("Dask execution needs dask[distributed]: pip install 'simpert[dask]'") from err
    own_client = own_cluster = None
    if client is None:
        n = n_workers or max(1, len(os.sched_getaffinity(0)))
        own_cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=40,
                                               memory_limit=memory_limit)
        own_client = client = distributed.Client(own_cluster)
    elif isinstance(client, str):
        own_client = client = distributed.Client(client)
    elif not isinstance(client, distributed.Client):
        fail("client", "a distributed.Client, a scheduler address or None", client, exc=TypeError)
    try:
        yield client
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
