"""What not knowing the duration law costs each baseline (issue 14, section 1).

For every setting (horizon, true law) and baseline, three variants play the same episodes (env
seeds ``0 .. episodes - 1``; the true law's draws are common random numbers, so the variants are
paired):

* ``known``: the law is known (``LabSpec(duration=truth)``; the baseline built on it);
* ``guess``: ``known_durations=False``; the baseline trusts the first guess and never updates;
* ``estimated``: ``known_durations=False``; the ``*-estimated`` wrapper re-plans on its online
  estimate (``labsched.baselines.labs.estimated``).

The first guess is always the paper's law ``TruncatedNormal(1, sqrt(0.1))``. Writes
``results.csv`` and ``results.md`` next to this file (or to ``--out``).

Usage: python docs/results/unknown_durations/measure.py [--episodes 100] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from labsched import ConcurrentLabsEnv, LabSpec
from labsched.baselines import make
from labsched.envs._lib.reporting import write_csv
from labsched.envs._lib.rollout import play_episode
from labsched.envs._lib.stats import mean_ci, p_safe_verdict, paired_difference
from labsched.envs.labs.durations import TruncatedNormal

HERE = Path(__file__).resolve().parent
GUESS = TruncatedNormal()
#: (label, true law): the guess itself, and a law 25% slower in mean and spread.
TRUTHS = (
    ("as guessed", TruncatedNormal()),
    ("25% slower", TruncatedNormal(mu=1.25, sigma=1.25 * math.sqrt(0.1))),
)
HORIZONS = (5.0, 4.0)
#: baseline -> its estimated wrapper.
BASELINES = {"ps": "ps-estimated", "onmel": "onmel-estimated", "keep-busy-calibrated": "keep-busy-estimated"}
VARIANTS = ("known", "guess", "estimated")


def run(horizon: float, truth_label: str, baseline: str, variant: str, episodes: int) -> dict:
    truth = dict(TRUTHS)[truth_label]
    known = LabSpec(horizon=horizon, duration=truth)
    unknown = known.replace(known_durations=False, duration_guess=GUESS)
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # calibration summaries
        if variant == "known":
            env_spec, policy = known, make(baseline, known, seed=0)
        elif variant == "guess":
            env_spec, policy = unknown, make(baseline, unknown.scheduler_view, seed=0)
        else:
            env_spec, policy = unknown, make(BASELINES[baseline], unknown, seed=0)
        env = ConcurrentLabsEnv(env_spec)
        cpe, complete = [], []
        for s in range(episodes):
            info = play_episode(policy, env, seed=s).info
            cpe.append(float(info["cpe"]))
            complete.append(info["completed"] == known.n_experiments)
    return {
        "horizon": horizon,
        "truth": truth_label,
        "baseline": baseline,
        "variant": variant,
        "cpe": np.asarray(cpe),
        "complete": np.asarray(complete),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    tasks = [
        (h, t, b, v, args.episodes) for h in HORIZONS for t, _ in TRUTHS for b in BASELINES for v in VARIANTS
    ]
    results = Parallel(n_jobs=args.n_jobs)(delayed(run)(*task) for task in tasks)
    by_key = {(r["horizon"], r["truth"], r["baseline"], r["variant"]): r for r in results}
    rows = []
    for r in results:
        ref = by_key[(r["horizon"], r["truth"], r["baseline"], "known")]
        ci = mean_ci(r["cpe"])
        verdict = p_safe_verdict(int(r["complete"].sum()), r["complete"].size, 0.95)
        diff = paired_difference(r["cpe"], ref["cpe"]) if r["variant"] != "known" else None
        rows.append(
            {
                "horizon": r["horizon"],
                "truth": r["truth"],
                "baseline": r["baseline"],
                "variant": r["variant"],
                "episodes": r["cpe"].size,
                "cpe_mean": round(ci.mean, 3),
                "cpe_ci_low": round(ci.low, 3),
                "cpe_ci_high": round(ci.high, 3),
                "diff_vs_known": "" if diff is None else round(diff.diff.mean, 3),
                "diff_ci_low": "" if diff is None else round(diff.diff.low, 3),
                "diff_ci_high": "" if diff is None else round(diff.diff.high, 3),
                "completion": round(verdict.completion.rate, 4),
                "completion_low": round(verdict.completion.low, 4),
                "completion_high": round(verdict.completion.high, 4),
                "p_safe": verdict.safe,
                "seconds": round(r["seconds"], 1),
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "results.csv")
    (args.out / "results.md").write_text(markdown(rows, args.episodes))


def markdown(rows: list[dict], episodes: int) -> str:
    lines = [
        "# Unknown durations: CPE lost against knowing the law",
        "",
        f"{episodes} episodes per row (env seeds 0..{episodes - 1}, common random numbers); n = 20, "
        "l = 10, first guess TruncatedNormal(1, sqrt(0.1)). `diff` is the paired mean CPE difference "
        "against the `known` row of the same baseline with its 95% t interval; completion is the "
        "share of episodes completing all 20 by h (95% Wilson interval); p-safe: not significantly "
        "below 0.95 (one-sided exact binomial test, alpha 0.05).",
        "",
        "| h | true law | baseline | variant | mean CPE [95% CI] | diff vs known [95% CI] "
        "| completion [95% CI] | p-safe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        diff = (
            "-"
            if r["diff_vs_known"] == ""
            else f"{r['diff_vs_known']:+.2f} [{r['diff_ci_low']:+.2f}, {r['diff_ci_high']:+.2f}]"
        )
        lines.append(
            f"| {r['horizon']:g} | {r['truth']} | {r['baseline']} | {r['variant']} | "
            f"{r['cpe_mean']:.2f} [{r['cpe_ci_low']:.2f}, {r['cpe_ci_high']:.2f}] | {diff} | "
            f"{r['completion']:.3f} [{r['completion_low']:.3f}, {r['completion_high']:.3f}] | "
            f"{'yes' if r['p_safe'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
