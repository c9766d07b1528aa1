"""The protocol over several generated worlds (``dataset_seed``): each table cell as the mean and
spread across worlds, and which of the paper's findings hold in most worlds.

One generated world is one draw of the synthetic search engine and its experiments; a result
that flips from world to world is a property of that draw, not of the schedulers. So
:func:`across_worlds` summarises every cell by the mean over worlds of its per-world mean (and
the standard deviation, minimum and maximum across worlds, next to the mean within-world 95%
CI half-width), and :func:`findings` tests, in every world, the paper's claims with paired
Wilcoxon tests over that world's splits; a finding *holds* when it holds with ``p < alpha`` in
more than half of the worlds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from labsched.baselines.queue.schedulers import QUEUE_SCHEDULERS
from labsched.envs._lib.reporting import markdown_table
from labsched.evaluation.queue.runner import ProtocolResult
from labsched.evaluation.queue.summary import scheduler_label, summarize, wilcoxon_p
from labsched.evaluation.queue.tables import SCHEDULER_ORDER

__all__ = ["FindingRow", "WorldRow", "across_worlds", "findings", "worlds_markdown"]


@dataclass(frozen=True)
class WorldRow:
    """One table cell summarised across worlds."""

    experiment_type: str
    metric: str
    budget: int
    deployed: int
    fraction: float
    scheduler: str
    label: str
    n_worlds: int
    mean: float
    sd_worlds: float
    min_world: float
    max_world: float
    within_ci: float


@dataclass(frozen=True)
class FindingRow:
    """One of the paper's findings in one world: the two sides, their difference and test."""

    experiment_type: str
    finding: str
    dataset_seed: int
    left: str
    right: str
    left_mean: float
    right_mean: float
    p_value: float
    holds: bool


def across_worlds(results: Mapping[int, ProtocolResult]) -> list[WorldRow]:
    """Every cell of the protocol results of several worlds (keyed by ``dataset_seed``, one
    experiment type) as mean and spread across worlds."""
    per_world = {seed: summarize(res)[0] for seed, res in results.items()}
    cells: dict[tuple, list] = {}
    for rows in per_world.values():
        for r in rows:
            key = (r.experiment_type, r.metric, r.budget, r.deployed, r.fraction, r.scheduler)
            cells.setdefault(key, []).append(r)
    out = []
    for (et, metric, t, k, f, name), rs in cells.items():
        means = np.array([r.mean for r in rs])
        out.append(
            WorldRow(
                experiment_type=et,
                metric=metric,
                budget=t,
                deployed=k,
                fraction=f,
                scheduler=name,
                label=scheduler_label(name),
                n_worlds=len(rs),
                mean=float(means.mean()),
                sd_worlds=float(means.std(ddof=1)) if means.size > 1 else 0.0,
                min_world=float(means.min()),
                max_world=float(means.max()),
                within_ci=float(np.mean([(r.ci_high - r.ci_low) / 2 for r in rs])),
            )
        )
    return out


def _best(res: ProtocolResult, key: tuple[str, int, int, float], names: Sequence[str]) -> str | None:
    metric, t, k, f = key
    have = [n for n in names if (metric, t, k, f, n) in res.cells]
    if not have:
        return None
    return max(have, key=lambda n: float(np.mean(res.value(metric, t, k, f, n))))


def _finding(
    res: ProtocolResult, seed: int, finding: str, left: tuple, right: tuple, alpha: float
) -> FindingRow | None:
    """``left`` better than ``right`` (cells ``(metric, T, k, fraction, scheduler)``)."""
    if left[-1] is None or right[-1] is None or left not in res.cells or right not in res.cells:
        return None
    a, b = res.value(*left), res.value(*right)
    p = wilcoxon_p(a, b)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    name = lambda c: f"{scheduler_label(c[-1])}" + (f" {c[3]:.2f}T" if c[3] else "")  # noqa: E731
    return FindingRow(
        res.config.experiment_type,
        finding,
        seed,
        name(left),
        name(right),
        ma,
        mb,
        p,
        bool(ma > mb and p < alpha),
    )


def findings(results: Mapping[int, ProtocolResult], alpha: float = 0.05) -> list[FindingRow]:
    """The paper's findings, tested in every world on Q(S) of the last Q setting (interleaving:
    ``T = 4.5 * 10^5``; A/B: ``T = 4 * 10^6``):

    * *learned > single feature*: the best learned scheduler without exploration beats the
      best single-feature scheduler (DCG, ERR, CM);
    * *single feature > random*: the best single feature beats random;
    * *exploration helps Explore*: Explore with the largest exploration beats the smallest;
    * *exploration hurts learned*: the best learned scheduler without exploration beats
      itself with the largest exploration.
    """
    out: list[FindingRow] = []
    for seed, res in results.items():
        cfg = res.config
        t, k = (int(x) for x in cfg.q_settings[-1])
        base = ("q", t, k, 0.0)
        singles = [n for n in cfg.baselines if n != "random" and not QUEUE_SCHEDULERS[n].reads_ground_truth]
        learned = _best(res, base, cfg.learned)
        single = _best(res, base, singles)
        lo, hi = min(cfg.explore_fractions), max(cfg.explore_fractions)
        checks = [
            ("learned > single feature", (*base, learned), (*base, single)),
            ("single feature > random", (*base, single), (*base, "random")),
            ("exploration helps Explore", ("q", t, k, hi, "explore"), ("q", t, k, lo, "explore")),
            ("exploration hurts learned", (*base, learned), ("q", t, k, hi, learned)),
        ]
        for finding, left, right in checks:
            row = _finding(res, seed, finding, left, right, alpha)
            if row is not None:
                out.append(row)
    return out


def _gain(rows: Sequence[FindingRow], finding: str) -> str:
    gains = [
        100.0 * (r.left_mean / r.right_mean - 1.0) for r in rows if r.finding == finding and r.right_mean > 0
    ]
    if not gains:
        return "–"
    return f"{np.mean(gains):+.0f}% (min {min(gains):+.0f}%, max {max(gains):+.0f}%)"


def worlds_markdown(rows: Sequence[WorldRow], found: Sequence[FindingRow]) -> str:
    """Tables of ``mean ± sd across worlds [min..max]`` per (type, metric, budget), and the
    findings: in how many worlds each holds."""
    blocks: list[str] = []
    groups: dict[tuple, list[WorldRow]] = {}
    for r in rows:
        groups.setdefault((r.experiment_type, r.metric, r.budget, r.deployed), []).append(r)
    for (et, metric, t, k), rs in sorted(groups.items(), key=lambda g: (g[0][0] != "interleaving", g[0][1:])):
        order = list(SCHEDULER_ORDER)
        names = sorted(
            dict.fromkeys(r.scheduler for r in rs), key=lambda n: order.index(n) if n in order else 99
        )
        fracs = sorted({r.fraction for r in rs})
        cell = {(r.scheduler, r.fraction): r for r in rs}
        what = "AUC" if metric == "auc" else f"Q(S), T = {t:,}, {k} deployed"
        header = ["#sample", *(scheduler_label(n) for n in names)]
        body = []
        for f in fracs:
            line = ["0" if f == 0 else f"{f:.2f}·T"]
            for n in names:
                c = cell.get((n, f))
                line.append(
                    "–"
                    if c is None
                    else f"{c.mean:.2f}±{c.sd_worlds:.2f} [{c.min_world:.2f}..{c.max_world:.2f}]"
                )
            body.append(line)
        n_worlds = rs[0].n_worlds
        title = f"**{et}, {what}**: mean ± sd across {n_worlds} worlds [min..max of the world means]"
        blocks.append(title + "\n\n" + markdown_table(header, body, "l" + "r" * len(names)))
    if found:
        body = []
        for et in dict.fromkeys(r.experiment_type for r in found):
            for finding in dict.fromkeys(r.finding for r in found if r.experiment_type == et):
                rs = [r for r in found if r.experiment_type == et and r.finding == finding]
                n_hold = sum(r.holds for r in rs)
                verdict = "holds" if n_hold > len(rs) / 2 else "does not hold"
                body.append([et, finding, f"{n_hold}/{len(rs)}", verdict, _gain(rs, finding)])
        blocks.append(
            "**The paper's findings across worlds** (Q(S) of the last budget; a finding holds in a "
            "world when the left side beats the right with a paired Wilcoxon p < 0.05 over its "
            "splits, and holds overall in most worlds)\n\n"
            + markdown_table(["type", "finding", "worlds", "verdict", "left vs right, mean change"], body)
        )
    return "\n\n".join(blocks) + "\n"
