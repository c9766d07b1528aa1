"""Where sweep cells run: in-process, joblib's loky processes, Ray or Dask.

Each backend yields the rows of the cells as they finish; BLAS is held to one thread per
worker (environment variables for spawned workers, ``threadpoolctl`` inside the task).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import joblib
from joblib import Parallel, delayed
from joblib.externals.loky import reusable_executor as loky_reusable_executor
from tqdm.auto import tqdm

from labsched.envs._lib.clusters import dask_backend, ray_backend
from labsched.envs._lib.threads import single_threaded_blas
from labsched.evaluation.cells import Cell

__all__ = ["BACKENDS", "Progress", "SweepTerminated", "execute"]

#: The sweep backends.
BACKENDS = ("loky", "ray", "dask")

Worker = Callable[[Cell], dict[str, Any]]


def _stream(pending: Sequence[Cell], n_jobs: int, worker: Worker) -> Iterator[dict[str, Any]]:
    """Run through the active joblib backend, yielding rows as they finish."""
    try:
        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError as exc:
        if "return_as" not in str(exc):
            raise
        runner = None
    if runner is not None:
        yield from runner(delayed(worker)(c) for c in pending)
        return
    # The backend cannot stream (Ray's): dispatch in chunks, writing after each one.
    chunk = max(1, 4 * n_jobs) if n_jobs > 0 else 16
    for i in range(0, len(pending), chunk):
        yield from Parallel(n_jobs=n_jobs)(delayed(worker)(c) for c in pending[i : i + chunk])


class SweepTerminated(SystemExit):
    """Raised in the main thread when a parallel sweep receives SIGTERM, so that its workers are
    stopped and its results file is closed on the way out (exit status ``128 + 15``, as a shell
    reports a process killed by SIGTERM)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`SweepTerminated` (SIGINT already raises
    ``KeyboardInterrupt``), so the ``finally`` blocks that stop the workers run.

    Only in the main thread and only over the default handler: a handler the program installed
    itself is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        del frame
        raise SweepTerminated(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _kill_loky_workers() -> None:
    """Stop joblib's reusable loky executor and kill its worker processes at once (without
    creating one when there is none)."""
    executor = getattr(loky_reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)


def execute(
    pending: Sequence[Cell], n_jobs: int, backend: str, address: str | None, worker: Worker
) -> Iterator[dict[str, Any]]:
    """Run ``worker`` on every cell with the backend, yielding the rows as they finish.

    A parallel run interrupted by SIGINT or SIGTERM (or any exception, or a consumer that stops
    iterating) stops its workers before the exception propagates: loky's processes are killed,
    a local Ray or Dask cluster is shut down.
    """
    if backend == "loky" and n_jobs == 1:
        for cell in pending:
            yield worker(cell)
        return
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'loky', 'ray' or 'dask', got {backend!r}")
    with _sigterm_raises():
        if backend == "loky":
            rows = _stream_loky(pending, n_jobs, worker)
        elif backend == "ray":
            rows = _execute_ray(pending, n_jobs, address, worker)
        else:
            rows = _execute_dask(pending, n_jobs, address, worker)
        with contextlib.closing(rows):
            yield from rows


def _stream_loky(pending: Sequence[Cell], n_jobs: int, worker: Worker) -> Iterator[dict[str, Any]]:
    """:func:`_stream` on loky processes, whose workers are killed if the run does not finish."""
    with single_threaded_blas(), joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        rows = _stream(pending, n_jobs, worker)
        try:
            yield from rows
        except BaseException:
            rows.close()
            _kill_loky_workers()
            raise


def _execute_ray(
    pending: Sequence[Cell], n_jobs: int, address: str | None, worker: Worker
) -> Iterator[dict[str, Any]]:
    with ray_backend(n_jobs, address) as jobs:
        yield from _stream(pending, jobs, worker)


def _execute_dask(
    pending: Sequence[Cell], n_jobs: int, address: str | None, worker: Worker
) -> Iterator[dict[str, Any]]:
    with dask_backend(n_jobs, address) as jobs:
        yield from _stream(pending, jobs, worker)


class Progress:
    """A tqdm progress bar over the cells (a line every 5% of them if the bar is off)."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        self.total, self.enabled, self.count = total, enabled, 0
        self.t0 = time.perf_counter()
        self.bar = None
        self.next_line = 0
        if not enabled:
            return
        desc = "sweep" + (f" ({skipped} cells already done)" if skipped else "")
        self.bar = tqdm(total=total, desc=desc, unit="cell", file=sys.stderr, smoothing=0.05)

    def update(self) -> None:
        self.count += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
        elif self.count >= self.next_line or self.count == self.total:
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / self.count * (self.total - self.count)
            print(
                f"[{self.count}/{self.total}] {elapsed:.0f}s, about {eta:.0f}s left",
                file=sys.stderr,
                flush=True,
            )
            self.next_line = self.count + max(1, self.total // 20)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
