"""Per-lab structure of a spec and the random draws of an episode (failures, heterogeneous labs).

One set of rules, used by the scalar environment, the batched engine and the Monte-Carlo
simulation alike:

* **Draws.** At reset every episode draws, from its generator and in this order: the ``n``
  per-experiment draws in start order, then, only when some lab can fail, ``n`` failure
  uniforms ``u_i`` in ``[0, 1)``. When every lab has the same law (the default, or equal
  ``lab_durations``), the per-experiment draw is a duration of that law (``law.sample(rng, n)``,
  exactly today's draw); when laws differ it is a quantile ``V_i`` in ``(0, 1]`` and lab ``c``'s
  duration is ``law_c.isf(V_i)`` (one table row per distinct law).
* **Duration on a lab.** Experiment ``i`` started on lab ``c`` takes its draw (or its law's row)
  divided by ``lab_speeds[c]``. The ``i``-th experiment started has the same draw under every
  policy (common random numbers), whichever lab it goes to.
* **Failure.** Experiment ``i`` started on lab ``c`` fails when ``u_i < failure_prob[c]``.
* **Where starts go.** ``k`` starts go to the free labs fastest in expectation
  (:attr:`LabSpec.lab_order`, ties by lab index: the lowest-numbered labs when labs are equal).

The defaults draw nothing more than the paper's environment, so its episodes are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labsched.envs.labs.durations import DurationModel
from labsched.envs.labs.spec import LabSpec

__all__ = [
    "LabColumns",
    "draw_ahead_columns",
    "draw_episode",
    "draw_episode_columns",
    "episodes_per_draw",
    "lab_columns",
]

#: Most episodes drawn ahead per generator call, and the memory they may take (bytes).
_AHEAD_EPISODES = 8
_AHEAD_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class LabColumns:
    """The labs an engine or environment runs, as arrays over its lab columns.

    Attributes:
        labs: ``(c,)`` the spec's lab index of each column.
        laws: the distinct duration laws (one table row each; one law unless labs differ).
        law_of: ``(c,)`` row of each column's law, or ``None`` when there is one law.
        speed: ``(c,)`` speed factor of each column, or ``None`` when all are 1.
        fail: ``(c,)`` failure probability of each column, or ``None`` when nothing fails.
        order: ``(c,)`` the columns fastest first, or ``None`` when that is the column order.
    """

    labs: np.ndarray
    laws: tuple[DurationModel, ...]
    law_of: np.ndarray | None
    speed: np.ndarray | None
    fail: np.ndarray | None
    order: np.ndarray | None

    @property
    def quantile_draws(self) -> bool:
        """Whether labs have different laws (per-experiment draws are then quantiles)."""
        return len(self.laws) > 1


def _distinct_laws(spec: LabSpec) -> tuple[tuple[DurationModel, ...], np.ndarray]:
    laws: list[DurationModel] = []
    law_of = np.empty(spec.n_labs, dtype=np.int64)
    for c, law in enumerate(spec.lab_laws):
        for j, known in enumerate(laws):
            if known == law:
                law_of[c] = j
                break
        else:
            law_of[c] = len(laws)
            laws.append(law)
    return tuple(laws), law_of


def lab_columns(spec: LabSpec, n_labs: int | None = None) -> LabColumns:
    """The columns of ``spec``: all its labs in index order, or its ``n_labs`` fastest labs
    (:attr:`LabSpec.lab_order`) when ``n_labs`` is given (a keep-``k``-busy simulation runs on
    the ``k`` fastest labs only, which is where its starts go)."""
    if not spec.heterogeneous:  # equal labs (the default): no per-lab law, speed or order
        labs = np.arange(spec.n_labs if n_labs is None else n_labs)
        fail = np.asarray(spec.lab_failure_probs)[labs] if spec.has_failures else None
        return LabColumns(labs=labs, laws=(spec.duration,), law_of=None, speed=None, fail=fail, order=None)
    if n_labs is None:
        labs = np.arange(spec.n_labs)
    else:
        labs = np.asarray(spec.lab_order[:n_labs], dtype=np.int64)
    laws, law_of = _distinct_laws(spec)
    q = np.asarray(spec.lab_failure_probs)[labs]
    speed = np.asarray(spec.lab_speed_factors)[labs]
    means = np.asarray(spec.lab_mean_durations)[labs]
    order = np.argsort(means, kind="stable")
    return LabColumns(
        labs=labs,
        laws=laws,
        law_of=law_of[labs] if len(laws) > 1 else None,
        speed=speed if spec.lab_speeds is not None else None,
        fail=q if spec.has_failures else None,
        order=None if np.array_equal(order, np.arange(labs.size)) else order,
    )


def draw_episode(
    spec: LabSpec, rng: np.random.Generator, laws: tuple[DurationModel, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    """One episode's draws: ``(table, fail_u)``.

    ``table`` is the ``(m, n)`` duration table (row ``j``: law ``laws[j]``'s duration of each
    experiment, start order); ``fail_u`` the ``(n,)`` failure uniforms or ``None`` when nothing
    can fail. ``laws`` is :attr:`LabColumns.laws`.
    """
    n = spec.n_experiments
    if len(laws) == 1:
        table = np.asarray(laws[0].sample(rng, n), dtype=float)[None, :]
    else:
        table = _quantile_table(laws, rng, n)
    return table, (rng.random(n) if spec.has_failures else None)


def draw_episode_columns(
    spec: LabSpec, rngs: list[np.random.Generator], laws: tuple[DurationModel, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`draw_episode` for one generator per episode: ``(table, fail_u)`` of shapes
    ``(m, n, E)`` and ``(n, E)``; column ``e`` equals ``draw_episode(spec, rngs[e], laws)``."""
    n = spec.n_experiments
    if len(laws) == 1:
        table = laws[0].sample_columns(rngs, n)[None]
    else:
        table = np.empty((len(laws), n, len(rngs)))
        for e, rng in enumerate(rngs):
            table[:, :, e] = _quantile_table(laws, rng, n)
    fail_u = None
    if spec.has_failures:
        fail_u = np.empty((n, len(rngs)))
        for e, rng in enumerate(rngs):
            fail_u[:, e] = rng.random(n)
    return table, fail_u


def episodes_per_draw(spec: LabSpec, laws: tuple[DurationModel, ...], n_episodes: int) -> int:
    """How many episodes of each of ``n_episodes`` generators :func:`draw_ahead_columns` draws
    per call: several when the one law's draws form a stream (``sample_episode_columns``) and
    nothing else is drawn (no failures), within a memory budget; else one."""
    if len(laws) != 1 or spec.has_failures or not hasattr(laws[0], "sample_episode_columns"):
        return 1
    per_episode = 8 * spec.n_experiments * max(n_episodes, 1)
    return int(min(_AHEAD_EPISODES, max(1, _AHEAD_BYTES // per_episode)))


def draw_ahead_columns(
    spec: LabSpec, rngs: list[np.random.Generator], laws: tuple[DurationModel, ...], episodes: int
) -> np.ndarray:
    """The next ``episodes`` episodes' duration tables of every generator (no failures), as
    ``(episodes, m, n, G)``: ``[q, :, :, e]`` is what the ``q``-th following
    :func:`draw_episode` of ``rngs[e]`` returns; ``episodes`` > 1 needs
    :func:`episodes_per_draw` > 1."""
    if episodes == 1:
        return draw_episode_columns(spec, rngs, laws)[0][None]
    return laws[0].sample_episode_columns(rngs, spec.n_experiments, episodes)[:, None]


def _quantile_table(laws: tuple[DurationModel, ...], rng: np.random.Generator, n: int) -> np.ndarray:
    """The ``(m, n)`` table of one episode when labs have different laws (quantile draws)."""
    v = 1.0 - rng.random(n)
    return np.stack([np.asarray(law.isf(v), dtype=float) for law in laws])
