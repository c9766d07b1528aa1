"""Thread limits for numerical libraries: one place decides how many BLAS/OpenMP/torch threads
labsched's workers use (one per process: parallelism comes from processes)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["BLAS_ENV", "single_threaded", "single_threaded_blas", "torch_threads"]

BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Set one BLAS/OpenMP thread in the environment variables (inherited by worker processes
    that joblib's loky, Ray or Dask start inside the block), restoring them afterwards."""
    old = {k: os.environ.get(k) for k in BLAS_ENV}
    os.environ.update(BLAS_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Limit the thread pools already loaded in this process (BLAS, OpenMP) to one thread."""
    with threadpool_limits(limits=1):
        yield


def torch_threads(n: int = 1) -> None:
    """Set torch's intra-op threads (1 is fastest for labsched's small networks on a shared machine)."""
    import torch  # optional heavy dependency

    torch.set_num_threads(max(int(n), 1))
