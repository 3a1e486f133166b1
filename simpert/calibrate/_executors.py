"""Where calibration tasks run: in this process, in joblib workers, or on Dask.

Every executor returns the task results in task order, and each task carries its own
child SeedSequence, so the results do not depend on the executor or the worker count.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from .._validation import Integer, OneOf, check, fail

__all__ = ["EXECUTORS", "run_tasks", "default_n_jobs"]

#: Executors :func:`run_tasks` knows.
EXECUTORS = ("serial", "joblib", "dask")


def default_n_jobs() -> int:
    """Number of workers used when ``n_jobs`` is None: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(fn: Callable, tasks: Sequence[tuple], *, executor: str = "joblib",
              n_jobs: int | None = None, client: Any = None) -> list:
    """Run ``fn(*task)`` for every task and return the results in task order.

    Parameters
    ----------
    fn : callable
        A picklable (module-level) function.
    tasks : sequence of tuple
        Positional arguments of each call.
    executor : {"serial", "joblib", "dask"}, default "joblib"
        ``"serial"`` runs in this process; ``"joblib"`` uses joblib's process-based
        ``loky`` backend; ``"dask"`` submits to a ``distributed.Client``.
    n_jobs : int, optional
        Workers for joblib, or for the Dask LocalCluster started when no client is given;
        None uses every CPU available to this process.
    client : distributed.Client or str, optional
        Dask only: a client, or a scheduler address to connect to. When None, a
        LocalCluster with ``n_jobs`` single-threaded worker processes is started and
        closed at the end.

    Returns
    -------
    list
        ``[fn(*t) for t in tasks]``, whatever the executor.
    """
    check("executor", executor, OneOf(EXECUTORS))
    check("n_jobs", n_jobs, Integer(1, allow_none=True))
    if client is not None and executor != "dask":
        fail("client", "None unless executor='dask'", client)
    tasks = list(tasks)
    if not tasks:
        return []
    if executor == "serial":
        return [fn(*t) for t in tasks]
    workers = n_jobs if n_jobs is not None else default_n_jobs()
    if executor == "joblib":
        from joblib import Parallel, delayed

        if workers == 1:
            return [fn(*t) for t in tasks]
        return Parallel(n_jobs=min(workers, len(tasks)), backend="loky")(delayed(fn)(*t) for t in tasks)
    return _run_dask(fn, tasks, workers, client)


def _run_dask(fn, tasks, workers, client):
    from .._dask import dask_client

    with dask_client(client, workers) as cl:
        columns = list(zip(*tasks))
        futures = cl.map(fn, *columns, pure=False)
        return cl.gather(futures)
