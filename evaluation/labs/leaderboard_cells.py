"""Leaderboard cells: one scheduler on one suite id for one block of episodes, named completely.

A :class:`BoardCell` is a pure function of its fields: :func:`run_board_cell` plays its
episodes and returns its row, in any process and in any order. Episode ``i`` of the leaderboard
(block ``i // block_size``) has env seed ``seed + i`` under every scheduler of a suite id: common
random numbers (the env draws all durations and failures at reset, in start order).
Randomised schedulers get their own seed, a hash of the suite id, the scheduler, the block and
the base seed.

Schedulers that are not defined on a setting (a baseline raising ``ValueError`` or
``NotImplementedError`` when built or played there, a saved agent whose observation does not fit)
give a row with ``status="n/a"`` and the error's message as the reason, not a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import time
from dataclasses import dataclass
from typing import Any

from labsched.agents.runner import RunTask, build_scheduler
from labsched.baselines.registry import make
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.threads import single_threaded
from labsched.envs.labs.suite import get_suite_env
from labsched.evaluation.cells import agent_files, resolve_agent_path

__all__ = [
    "CELL_FIELDS",
    "NOT_DEFINED_ERRORS",
    "BoardCell",
    "agent_sha256",
    "board_worker",
    "max_values",
    "na_row",
    "run_board_cell",
]

#: The errors that mean "this scheduler is not defined on this setting".
NOT_DEFINED_ERRORS: tuple[type[BaseException], ...] = (ValueError, NotImplementedError)


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def agent_sha256(path: str) -> str:
    """Content hash of a saved agent (the model zip and what is saved beside it)."""
    h = hashlib.sha256()
    for f in agent_files(resolve_agent_path(path)):
        h.update(f.name.encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class BoardCell:
    """One block of leaderboard episodes.

    Attributes:
        env: suite name (``"Paper-h5-v0"``; see :mod:`labsched.envs.labs.suite`).
        scheduler: a baseline name, or the label of the saved agent in ``agent_path``.
        block: block index: episodes ``block * block_size .. (block + 1) * block_size - 1``.
        block_size: episodes per block (>= 1).
        seed: base seed (episode ``i`` has env seed ``seed + i``).
        agent_path: a saved agent (``labsched train`` folder or model zip), or ``""``.
        agent_sha256: content hash of the agent's files (filled in automatically), so a
            retrained agent never reuses old rows.
    """

    env: str
    scheduler: str
    block: int = 0
    block_size: int = 10
    seed: int = 0
    agent_path: str = ""
    agent_sha256: str = ""

    def __post_init__(self) -> None:
        for name in ("env", "scheduler", "agent_path", "agent_sha256"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"BoardCell.{name} must be a string, got {type(value).__name__}")
            if "\n" in value or "\r" in value:
                raise ValueError(f"BoardCell.{name} must be a single line, got {value!r}")
        get_suite_env(self.env)  # a known suite name
        if not self.scheduler:
            raise ValueError("BoardCell.scheduler must not be empty")
        for name, low in (("block", 0), ("block_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"BoardCell.{name} must be an integer >= {low}, got {value!r}")
        if self.agent_path and not self.agent_sha256:
            object.__setattr__(self, "agent_sha256", agent_sha256(self.agent_path))

    @property
    def id(self) -> str:
        """Stable id: a hash of every field (16 hex digits)."""
        return _digest(dataclasses.asdict(self))[:16]

    @property
    def env_seeds(self) -> range:
        """The env seeds of the block's episodes (the same for every scheduler)."""
        first = self.seed + self.block * self.block_size
        return range(first, first + self.block_size)

    @property
    def agent_seed(self) -> int:
        """Seed of the scheduler's own generator."""
        return int(_digest([self.env, self.scheduler, self.block, self.seed])[:15], 16)


#: Names of the cell fields, in file order.
CELL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BoardCell))


def max_values(cell: BoardCell) -> tuple[int, int]:
    """``(largest CPE, n)`` of the cell's setting."""
    spec = get_suite_env(cell.env).spec
    return spec.max_cpe, spec.n_experiments


def _scheduler(cell: BoardCell, spec: Any) -> Any:
    if cell.agent_path:
        agent, _ = build_scheduler(RunTask(cell.agent_path, spec, 1, kind="model"))
        return agent
    # What a scheduler may know of the problem (the first guess of an unknown duration law).
    view = getattr(spec, "scheduler_view", spec)
    return make(cell.scheduler, view, seed=cell.agent_seed)


def na_row(cell: BoardCell, reason: str, t0: float | None = None) -> dict[str, Any]:
    """The row of a cell whose scheduler is not defined on its setting (``reason``: why, cut to
    one line of at most 300 characters)."""
    text = " ".join(reason.split())[:300] or "not defined on this setting"
    return _row(cell, "n/a", text, [], [], [], time.perf_counter() if t0 is None else t0)


def _row(
    cell: BoardCell,
    status: str,
    reason: str,
    cpe: list[int],
    completed: list[int],
    ended: list[int],
    t0: float,
) -> dict[str, Any]:
    return {
        "cell_id": cell.id,
        **dataclasses.asdict(cell),
        "status": status,
        "reason": reason,
        "cpe": " ".join(map(str, cpe)),
        "completed": " ".join(map(str, completed)),
        "ended": " ".join(map(str, ended)),
        "wall_time": time.perf_counter() - t0,
    }


def run_board_cell(cell: BoardCell) -> dict[str, Any]:
    """Play the cell's episodes and return its row (see :mod:`.leaderboard_store` for the columns).

    ``ended`` is 1 when every experiment ended (completed, or failed) by the horizon, i.e. the
    episode's ``info["cost"]`` is 0: with no failures, that all ``n`` completed.
    """
    t0 = time.perf_counter()
    entry = get_suite_env(cell.env)
    reason = entry.unavailable_reason()
    if reason:
        return na_row(cell, reason, t0)
    env = entry.make()
    spec = env.lab_spec
    cpe, completed, ended = [], [], []
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # calibration summaries, spec notes
            policy = _scheduler(cell, spec)
            for seed in cell.env_seeds:
                info = play_episode(policy, env, seed).info
                cpe.append(int(info["cpe"]))
                completed.append(int(info["completed"]))
                ended.append(int(info.get("cost", 0.0) == 0.0))
    except NOT_DEFINED_ERRORS as exc:
        return na_row(cell, f"{type(exc).__name__}: {exc}", t0)
    return _row(cell, "ok", "", cpe, completed, ended, t0)


def board_worker(cell: BoardCell) -> dict[str, Any]:
    """:func:`run_board_cell` with BLAS held to one thread (runs inside worker processes)."""
    with single_threaded():
        return run_board_cell(cell)
