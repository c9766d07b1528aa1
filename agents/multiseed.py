"""Training several seeds of one configuration in parallel (``labsched train --seeds 0-4``).

Each seed trains in its own joblib worker process (one torch thread and single-threaded BLAS per
worker) into ``<out>/seed<k>``; :func:`train_seeds` then writes ``seeds_summary.csv`` (one row per
seed: final and best evaluation CPE, final evaluation completion rate, timesteps, time) and
``seeds_summary.md`` with the mean and the spread (sample standard deviation, min, max) across
seeds. The final evaluation of every seed runs on the same evaluation episodes only when the
seeds share ``eval_seed``: here each seed evaluates on its own ``seed + 10_000`` episodes, as a
single run does; compare the saved models on common episodes with ``labsched compare``.

The seeds run through joblib on the sweeps' backends (``backend``): ``loky`` processes on this
machine, or a Dask or Ray cluster (``address``; a local cluster of ``n_jobs`` workers without
one). On a remote cluster the seed folders are written by the workers, so ``out`` must be on a
filesystem they share. Each seed's training depends only on its seed, so the results do not
depend on the backend.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from labsched.agents.training import train
from labsched.envs._lib.clusters import dask_backend, ray_backend
from labsched.envs._lib.reporting import write_csv
from labsched.envs._lib.threads import single_threaded_blas
from labsched.envs._lib.validation import check_choice, check_int

__all__ = ["SEED_BACKENDS", "SeedRun", "parse_seeds", "seeds_markdown", "train_seeds"]

#: Where :func:`train_seeds` runs the seeds (the sweeps' backends).
SEED_BACKENDS = ("loky", "dask", "ray")


@dataclass(frozen=True)
class SeedRun:
    """One seed's training outcome.

    Attributes:
        seed: training seed.
        out: its folder.
        timesteps: env steps trained.
        seconds: wall time of training.
        final_mean_cpe: mean CPE of the final model on the evaluation episodes.
        final_completion_rate: its completion rate there.
        best_mean_cpe: best evaluation mean CPE during training.
    """

    seed: int
    out: str
    timesteps: int
    seconds: float
    final_mean_cpe: float
    final_completion_rate: float
    best_mean_cpe: float


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``"0-4"``, ``"0,2,5"``, ``"1-3,7"`` or a sequence of ints to a sorted list of distinct seeds."""
    if not isinstance(text, str):
        seeds = [check_int("seed", s, 0) for s in text]
    else:
        seeds = []
        for part in text.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
                raise ValueError(
                    f"seeds must look like '0-4', '0,2,5' or '1-3,7' (non-negative integers), got {text!r}"
                )
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return sorted(set(seeds))


def _train_one(seed: int, out: Path, kwargs: dict[str, Any]) -> SeedRun:
    with single_threaded_blas():
        res = train(seed=seed, out=out, torch_threads=1, progress_bar=False, **kwargs)
    return SeedRun(
        seed=seed,
        out=str(out),
        timesteps=res.timesteps,
        seconds=round(res.seconds, 2),
        final_mean_cpe=res.final_mean_cpe,
        final_completion_rate=res.final_completion_rate,
        best_mean_cpe=res.best_mean_cpe,
    )


def _spread(values: Sequence[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.3f} ± {sd:.3f} (min {min(vals):.3f}, max {max(vals):.3f})"


def seeds_markdown(runs: Sequence[SeedRun]) -> str:
    """Per-seed table and the mean ± sample standard deviation (min, max) across seeds."""
    lines = [
        "| seed | final CPE | final completion | best CPE | timesteps | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.seed} | {r.final_mean_cpe:.2f} | {r.final_completion_rate:.3f} | {r.best_mean_cpe:.2f} "
            f"| {r.timesteps} | {r.seconds:.0f} |"
        )
    lines += [
        "",
        f"across {len(runs)} seeds (mean ± sd):",
        f"- final evaluation CPE: {_spread([r.final_mean_cpe for r in runs])}",
        f"- final evaluation completion: {_spread([r.final_completion_rate for r in runs])}",
        f"- best evaluation CPE: {_spread([r.best_mean_cpe for r in runs])}",
    ]
    return "\n".join(lines) + "\n"


def _check_backend(backend: str, address: str | None) -> str | None:
    """``address`` (stripped) after checking ``backend`` and that an address goes with a cluster."""
    check_choice("backend", backend, SEED_BACKENDS)
    if address is None:
        return None
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"address must be a non-empty scheduler address string or None, got {address!r}")
    if backend == "loky":
        raise ValueError(
            f"address needs backend 'dask' or 'ray', got backend 'loky' with address {address!r}"
        )
    return address.strip()


def _run_dask(calls: list[Any], n_jobs: int, address: str | None) -> list[SeedRun]:
    """The calls on a Dask cluster: the one at ``address``, else a local one of ``n_jobs`` workers."""
    with dask_backend(n_jobs, address) as jobs:
        return Parallel(n_jobs=jobs)(calls)


def _run_ray(calls: list[Any], n_jobs: int, address: str | None) -> list[SeedRun]:
    """The calls on Ray: the cluster at ``address`` (or ``$RAY_ADDRESS``), else a local one of
    ``n_jobs`` CPUs; a Ray already initialised in this process is used as it is."""
    with ray_backend(n_jobs, address) as jobs:
        return Parallel(n_jobs=jobs)(calls)


def train_seeds(
    seeds: str | Sequence[int],
    out: str | Path,
    n_jobs: int = 2,
    backend: str = "loky",
    address: str | None = None,
    **train_kwargs: Any,
) -> list[SeedRun]:
    """Train one configuration for several seeds, in parallel, and summarise across seeds.

    Args:
        seeds: the seeds (:func:`parse_seeds` forms).
        out: parent folder; seed ``k`` writes ``out/seed<k>`` (on a remote cluster: a folder
            the workers share).
        n_jobs: worker processes (1 with ``loky``: in-process, in order); the size of the local
            cluster ``dask`` or ``ray`` start without ``address``.
        backend: ``"loky"`` (processes on this machine), ``"dask"`` or ``"ray"``.
        address: scheduler of a running Dask (``tcp://HOST:8786``) or Ray (``HOST:6379``,
            ``ray://HOST:10001``, ``auto``) cluster; None: a local cluster (Ray: or
            ``$RAY_ADDRESS``). Only with ``dask`` or ``ray``.
        **train_kwargs: arguments of :func:`~labsched.agents.training.train` (not ``seed``,
            ``out``, ``torch_threads``, ``progress_bar``).

    Returns:
        One :class:`SeedRun` per seed, in seed order; ``out/seeds_summary.csv`` and ``.md`` are
        written. The runs are the same whatever the backend (but for ``seconds``).

    Raises:
        ValueError: for bad seeds, ``n_jobs`` < 1, a backend outside :data:`SEED_BACKENDS`, or an
            address that is empty or given with ``loky``.
        TypeError: for a ``train_kwargs`` key that ``train_seeds`` sets itself.
    """
    seeds = parse_seeds(seeds)
    check_int("n_jobs", n_jobs, 1)
    address = _check_backend(backend, address)
    for key in ("seed", "out", "torch_threads", "progress_bar"):
        if key in train_kwargs:
            raise TypeError(f"train_seeds sets {key!r} itself")
    out = Path(out)
    jobs = [(s, out / f"seed{s}") for s in seeds]
    n = min(n_jobs, len(seeds))
    if backend == "loky" and n == 1:
        runs = [_train_one(s, o, train_kwargs) for s, o in jobs]
    else:
        calls = [delayed(_train_one)(s, o, train_kwargs) for s, o in jobs]
        with single_threaded_blas():
            if backend == "loky":
                runs = Parallel(n_jobs=n)(calls)
            elif backend == "dask":
                runs = _run_dask(calls, n, address)
            else:
                runs = _run_ray(calls, n, address)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(runs, out / "seeds_summary.csv")
    (out / "seeds_summary.md").write_text(seeds_markdown(runs))
    print(seeds_markdown(runs), file=sys.stderr)
    return list(runs)
