"""Summarise the constrained-agents protocol (run_protocol.sh) into table.md, table.csv and frontier.png.

Usage: python docs/results/constrained/summarize_protocol.py RUNS_DIR [OUT_DIR]

For every (duration law, horizon) folder ``RUNS_DIR/<law>_h<h>`` with a ``test/compare.csv`` (1,000
common-random-number test episodes, paired differences against ps-calibrated), it reports the
baselines as measured and the five Lagrangian training seeds as mean and spread across seeds, the
number of p-safe seeds, and the median seed's paired CPE difference against ps-calibrated.
"""

from __future__ import annotations

import csv
import re
import statistics
import sys
from pathlib import Path

BASELINES = ("ps-calibrated", "ps", "keep-busy-calibrated", "clairvoyant")
LAWS = {"truncnorm": "truncated normal (1, 0.316)", "gamma": "gamma (shape 10, scale 0.1)"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _f(x: str) -> float:
    return float(x) if x not in ("", "nan") else float("nan")


def _seed(name: str) -> int | None:
    m = re.search(r"seed(\d+)", name)
    return int(m.group(1)) if m else None


def summarize(runs: Path) -> list[dict[str, object]]:
    """One record per (law, horizon, method) with the test figures."""
    out: list[dict[str, object]] = []
    for folder in sorted(runs.glob("*_h*")):
        test = folder / "test" / "compare.csv"
        if not test.is_file():
            continue
        law, h = folder.name.rsplit("_h", 1)
        rows = _rows(test)
        for r in rows:
            if r["kind"] == "baseline":
                out.append({"law": law, "h": float(h), "method": r["scheduler"], "seed": "", **_stats(r)})
        seeds = [r for r in rows if r["kind"] == "model"]
        for masked in sorted((folder).glob("test_mask*/compare.csv")):
            mask = masked.parent.name.removeprefix("test_mask")
            METHODS[f"lagrangian-mask{mask}"] = (
                f"Lagrangian MaskablePPO (best_model.zip) + deployment mask {mask}"
            )
            for r in _rows(masked):
                if r["kind"] == "model":
                    out.append({"law": law, "h": float(h), "method": f"lagrangian-mask{mask}",
                                "seed": _seed(r["scheduler"]), **_stats(r)})  # fmt: skip
        for r in seeds:
            method = "lagrangian" if r["scheduler"].endswith("best_model.zip") else "lagrangian-final"
            out.append(
                {"law": law, "h": float(h), "method": method, "seed": _seed(r["scheduler"]), **_stats(r)}
            )
    return out


def _stats(r: dict[str, str]) -> dict[str, object]:
    keys = ("mean_cpe", "cpe_low", "cpe_high", "completion_rate", "completion_low", "completion_high")
    keys += ("diff_cpe", "diff_low", "diff_high", "diff_p_value")
    return {**{k: _f(r[k]) for k in keys}, "p_safe": r["p_safe"]}


def markdown(records: list[dict[str, object]]) -> str:
    """The README table: baselines per spec, then the Lagrangian seeds as mean [min, max]."""
    lines = [
        "| law | h | method | mean CPE | complete | p-safe | CPE - ps-calibrated [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    specs = sorted({(r["law"], r["h"]) for r in records}, key=lambda x: (x[0] != "truncnorm", x[1]))
    for law, h in specs:
        rs = [r for r in records if r["law"] == law and r["h"] == h]
        for name in BASELINES:
            for r in (r for r in rs if r["method"] == name):
                complete = (
                    f"{r['completion_rate']:.3f} [{r['completion_low']:.3f}, {r['completion_high']:.3f}]"
                    if r["completion_rate"] == r["completion_rate"]
                    else "-"
                )
                diff = (
                    "reference"
                    if name == "ps-calibrated"
                    else f"{r['diff_cpe']:+.2f} [{r['diff_low']:+.2f}, {r['diff_high']:+.2f}]"
                )
                lines.append(
                    f"| {law} | {h:g} | {name} | {r['mean_cpe']:.1f} [{r['cpe_low']:.1f}, {r['cpe_high']:.1f}] "  # noqa: E501
                    f"| {complete} | {r['p_safe']} | {diff} |"
                )
        for method, label in METHODS.items():
            seeds = sorted((r for r in rs if r["method"] == method), key=lambda r: r["mean_cpe"])
            if seeds:
                lines.append(_seeds_line(law, h, label, seeds))
    return "\n".join(lines) + "\n"


METHODS = {
    "lagrangian": "Lagrangian MaskablePPO (best_model.zip)",
    "lagrangian-final": "Lagrangian MaskablePPO (final model.zip)",
}


def _seeds_line(law: str, h: float, label: str, seeds: list[dict[str, object]]) -> str:
    """One table line: the seeds' mean (sd) [min, max], p-safe count and the median seed's difference."""
    cpe = [r["mean_cpe"] for r in seeds]
    comp = [r["completion_rate"] for r in seeds]
    safe = sum(r["p_safe"] == "yes" for r in seeds)
    med = seeds[len(seeds) // 2]
    sd = statistics.stdev(cpe) if len(cpe) > 1 else float("nan")
    return (
        f"| {law} | {h:g} | {label}, {len(seeds)} seeds: mean (sd) [min, max] "
        f"| {statistics.mean(cpe):.1f} ({sd:.1f}) [{min(cpe):.1f}, {max(cpe):.1f}] "
        f"| {statistics.mean(comp):.3f} [{min(comp):.3f}, {max(comp):.3f}] | {safe}/{len(seeds)} "
        f"| median seed ({med['seed']}): {med['diff_cpe']:+.2f} [{med['diff_low']:+.2f}, {med['diff_high']:+.2f}] "  # noqa: E501
        f"({med['completion_rate']:.3f} complete, p-safe {med['p_safe']}) |"
    )


def plot(records: list[dict[str, object]], path: Path, p: float = 0.95) -> None:
    """CPE against completion per spec: baselines, each seed, the clairvoyant value, the p line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = sorted({(r["law"], r["h"]) for r in records}, key=lambda x: (x[0] != "truncnorm", x[1]))
    laws = sorted({law for law, _ in specs}, key=lambda x: x != "truncnorm")
    hs = sorted({h for _, h in specs})
    fig, grid = plt.subplots(
        len(laws), len(hs), figsize=(max(4.2 * len(hs), 7.0), 0.6 + 4.0 * len(laws)), squeeze=False
    )
    axes = [[grid[laws.index(law)][hs.index(h)] for law, h in specs]]
    for ax in grid.flat:
        ax.set_visible(False)
    colors = {"ps-calibrated": "tab:blue", "ps": "tab:cyan", "keep-busy-calibrated": "tab:green"}
    for ax, (law, h) in zip(axes[0], specs, strict=True):
        ax.set_visible(True)
        rs = [r for r in records if r["law"] == law and r["h"] == h]
        for r in rs:
            if r["method"] == "clairvoyant":
                continue
            if r["method"] in colors:
                ax.errorbar(
                    r["completion_rate"],
                    r["mean_cpe"],
                    xerr=[
                        [r["completion_rate"] - r["completion_low"]],
                        [r["completion_high"] - r["completion_rate"]],
                    ],
                    yerr=[[r["mean_cpe"] - r["cpe_low"]], [r["cpe_high"] - r["mean_cpe"]]],
                    fmt="o",
                    color=colors[r["method"]],
                    label=r["method"],
                    capsize=2,
                )
        styles = [("lagrangian", "x", "tab:red"), ("lagrangian-final", "+", "tab:orange")]
        styles += [(m, "^", "tab:purple") for m in METHODS if m.startswith("lagrangian-mask")]
        for method, marker, color in styles:
            seeds = [r for r in rs if r["method"] == method]
            if not seeds:
                continue
            ax.scatter(
                [r["completion_rate"] for r in seeds],
                [r["mean_cpe"] for r in seeds],
                marker=marker,
                color=color,
                label=f"{METHODS[method]}, {len(seeds)} seeds",
                zorder=3,
            )
        ax.axvline(p, color="grey", ls="--", lw=1, label=f"completion = p = {p}")
        for r in (r for r in rs if r["method"] == "clairvoyant"):
            # A proven upper bound, usually far above every method: written, not drawn to scale.
            ax.set_title(
                f"{LAWS.get(law, law)}, h = {h:g}\nclairvoyant bound (mean): {r['mean_cpe']:.1f}", fontsize=9
            )
            break
        else:
            ax.set_title(f"{LAWS.get(law, law)}, h = {h:g}", fontsize=9)
        ax.set_xlabel("completion rate (all n by h)")
        ax.set_ylabel("mean CPE (1,000 test episodes)")
        ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in axes[0]:
        for hd, lb in zip(*ax.get_legend_handles_labels(), strict=True):
            lb = lb.split(", ")[0] if lb.startswith("Lagrangian") else lb
            if lb not in labels:
                handles.append(hd)
                labels.append(lb)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.1 / len(laws), 1, 1))
    fig.savefig(path, dpi=120)


def main(argv: list[str]) -> None:
    runs = Path(argv[1])
    out = Path(argv[2]) if len(argv) > 2 else Path(__file__).parent
    records = summarize(runs)
    if not records:
        raise SystemExit(f"no */test/compare.csv under {runs}")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "table.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    (out / "table.md").write_text(markdown(records))
    plot(records, out / "frontier.png")
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main(sys.argv)
