"""joblib on a Dask or Ray cluster: the one session code for sweeps and multi-seed training.

Each context manager connects to the cluster at ``address`` (Ray: or ``$RAY_ADDRESS``) or starts a
local one of ``n_jobs`` single-threaded workers (shut down on exit), makes it joblib's backend and
yields the ``n_jobs`` to give ``joblib.Parallel`` (Dask on a remote cluster: -1, every worker).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import joblib

from labsched.envs._lib.threads import BLAS_ENV, single_threaded_blas


@contextlib.contextmanager
def dask_backend(n_jobs: int, address: str | None) -> Iterator[int]:
    """joblib's ``dask`` backend on the cluster at ``address``, else on a local one."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'labsched[dask]'") from exc
    with contextlib.ExitStack() as stack:
        if address:
            stack.enter_context(Client(address))
        else:
            stack.enter_context(single_threaded_blas())
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=max(n_jobs, 1), threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            stack.enter_context(Client(cluster))  # the active client is what joblib's dask backend uses
        with joblib.parallel_config(backend="dask"):
            yield n_jobs if not address else -1


@contextlib.contextmanager
def ray_backend(n_jobs: int, address: str | None) -> Iterator[int]:
    """joblib's ``ray`` backend on the cluster at ``address`` (or ``$RAY_ADDRESS``), else on a local
    Ray of ``n_jobs`` CPUs; a Ray already initialised in this process is used as it is."""
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError as exc:
        raise ImportError("backend='ray' needs Ray: pip install 'labsched[ray]'") from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": dict(BLAS_ENV)},
            "log_to_driver": False,
            "include_dashboard": False,
        }
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, **kwargs)
        else:
            # Ray starts local workers at nice 15: on a shared machine they would barely run.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=max(n_jobs, 1), **kwargs)
        started = True
    try:
        register_ray()
        with joblib.parallel_config(backend="ray"):
            yield n_jobs
    finally:
        if started:
            ray.shutdown()
