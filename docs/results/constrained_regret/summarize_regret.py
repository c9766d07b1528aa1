"""Paired regret differences from regret_episodes.py outputs (same seeds: common random numbers).

Usage: python docs/results/constrained_regret/summarize_regret.py DIR [OUT_DIR]

DIR holds ``<method>_<objective>.csv`` files; ``ps-calibrated_<objective>.csv`` is the reference.
Writes table.md and table.csv: per objective and method, the mean regret with its 95% CI, the CPE
and completion rate, and the paired difference in regret against ps-calibrated (negative: lower
regret than ps-calibrated) with its 95% CI and the paired t-test's p-value.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from labsched.envs._lib.stats import mean_ci, paired_difference

REFERENCE = "ps-calibrated"


def _load(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("seed", "regret", "cpe", "completed")}


def main(argv: list[str]) -> None:
    src = Path(argv[1])
    out = Path(argv[2]) if len(argv) > 2 else Path(__file__).parent
    records = []
    for ref_path in sorted(src.glob(f"{REFERENCE}_*.csv")):
        objective = ref_path.stem.removeprefix(f"{REFERENCE}_")
        ref = _load(ref_path)
        for path in sorted(src.glob(f"*_{objective}.csv"), key=lambda q: (q != ref_path, q.name)):
            method = path.stem.removesuffix(f"_{objective}")
            run = _load(path)
            if not np.array_equal(run["seed"], ref["seed"]):
                raise SystemExit(f"{path} and {ref_path} do not hold the same episodes")
            ci = mean_ci(run["regret"])
            rec = {
                "objective": objective,
                "method": method,
                "episodes": run["seed"].size,
                "mean_regret": ci.mean,
                "regret_low": ci.low,
                "regret_high": ci.high,
                "mean_cpe": float(run["cpe"].mean()),
                "completion": float((run["completed"] == 20).mean()),
            }
            if method != REFERENCE:
                d = paired_difference(run["regret"], ref["regret"])
                rec.update(diff=d.diff.mean, diff_low=d.diff.low, diff_high=d.diff.high, p_value=d.t_p_value)
            records.append(rec)
    out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in records for k in r))
    with (out / "table.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(records)
    lines = [
        "| objective | scheduler | episodes | mean regret [95% CI] | CPE | complete | regret - ps-calibrated [95% CI] | paired p |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        diff = (
            "reference"
            if r["method"] == REFERENCE
            else f"{r['diff']:+.4f} [{r['diff_low']:+.4f}, {r['diff_high']:+.4f}] | {r['p_value']:.2g}"
        )
        if r["method"] == REFERENCE:
            diff += " | "
        lines.append(
            f"| {r['objective']} | {r['method']} | {r['episodes']} | {r['mean_regret']:.4f} "
            f"[{r['regret_low']:.4f}, {r['regret_high']:.4f}] | {r['mean_cpe']:.1f} | {r['completion']:.3f} | {diff} |"  # noqa: E501
        )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main(sys.argv)
