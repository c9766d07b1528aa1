"""A trained queue agent (:func:`labsched.agents.queue.train_queue_agent`) against the greedy
queue schedulers, on the same test and training episodes of its split."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.agents.queue import QueueAgentResult, split_env
from labsched.baselines.queue.schedulers import make_queue_scheduler
from labsched.envs._lib.rollout import play_episode
from labsched.evaluation.queue.summary import wilcoxon_p

__all__ = ["AgentRow", "agent_markdown", "compare_agent_with_schedulers"]

AGENT_POLICY = "maskable_ppo"


@dataclass(frozen=True)
class AgentRow:
    """One policy's Q(S) on the shared episodes (mean and 95% CI half-width).

    Attributes:
        policy: ``"maskable_ppo"`` (the agent) or a queue scheduler's name.
        test_mean, test_ci: Q(S) over the episodes of the split's test experiments.
        train_mean, train_ci: Q(S) over episodes of its training experiments.
        p_vs_agent: paired Wilcoxon p-value against the agent on the test episodes (NaN for
            the agent itself).
    """

    policy: str
    test_mean: float
    test_ci: float
    train_mean: float
    train_ci: float
    p_vs_agent: float


def _returns(policy: Any, env: Any, seeds: Sequence[int], *, masked_model: bool = False) -> np.ndarray:
    """Q(S) (episode return) of ``policy`` on the episodes ``seeds`` of ``env``."""
    return np.array(
        [play_episode(policy, env, int(s), action_masks=masked_model).total_reward for s in seeds]
    )


def _half_width(q: np.ndarray) -> float:
    return float(1.96 * q.std(ddof=1) / math.sqrt(q.size))


def compare_agent_with_schedulers(
    agent: QueueAgentResult,
    *,
    schedulers: Sequence[str] = ("random", "err", "cm", "lr", "lgbm", "pgbm", "upper_bound"),
    episodes: int = 500,
    seed: int = 10_000,
) -> list[AgentRow]:
    """The agent of :func:`~labsched.agents.queue.train_queue_agent` against greedy schedulers.

    Every policy plays the same ``episodes`` test episodes (same seeds: the same queued
    experiments in the same slots and the same outcomes) on the split's **test** experiments,
    and the same number of training-experiment episodes (to show over-fitting). The learned
    greedy schedulers are fitted on the split's training experiments.

    Returns:
        One :class:`AgentRow` per policy, the agent first.
    """
    ds, kw = agent.dataset, agent.env_kwargs
    seeds = [seed + i for i in range(episodes)]
    env_test, env_train = split_env(ds, agent.test_idx, **kw), split_env(ds, agent.train_idx, **kw)
    train_ds = ds.subset(agent.train_idx)
    res: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    res[AGENT_POLICY] = (
        _returns(agent.model, env_test, seeds, masked_model=True),
        _returns(agent.model, env_train, seeds, masked_model=True),
    )
    for name in schedulers:
        if name == "cm" and ds.experiment_type != "interleaving":
            continue
        s = make_queue_scheduler(name, seed=seed).fit(train_ds)
        test_q = _returns(s.attach(env_test), env_test, seeds)
        train_q = _returns(s.attach(env_train), env_train, seeds)
        res[name] = (test_q, train_q)
    agent_test = res[AGENT_POLICY][0]
    return [
        AgentRow(
            policy=name,
            test_mean=float(test_q.mean()),
            test_ci=_half_width(test_q),
            train_mean=float(train_q.mean()),
            train_ci=_half_width(train_q),
            p_vs_agent=math.nan if name == AGENT_POLICY else wilcoxon_p(test_q, agent_test),
        )
        for name, (test_q, train_q) in res.items()
    ]


def agent_markdown(rows: Sequence[AgentRow], agent: QueueAgentResult) -> str:
    """A Markdown table of :func:`compare_agent_with_schedulers`."""
    lines = [
        f"MaskablePPO, {agent.timesteps} steps in {agent.seconds:.0f} s; "
        f"{len(agent.train_idx)} training / {len(agent.test_idx)} test experiments; "
        "T = 3·10^5, 10^5 per deployment, 8 queue slots",
        "",
        "| policy | Q(S) test episodes | Q(S) training episodes | Wilcoxon p vs agent (test) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        p = "" if math.isnan(r.p_vs_agent) else f"{r.p_vs_agent:.2g}"
        lines.append(
            f"| {r.policy} | {r.test_mean:.3f} ± {r.test_ci:.3f} | "
            f"{r.train_mean:.3f} ± {r.train_ci:.3f} | {p} |"
        )
    return "\n".join(lines) + "\n"
