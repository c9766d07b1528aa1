"""Summarise the runs of run_time_to_level.sh: time_to_level.csv and time_to_level_table.md.

Usage: python summarize_time_to_level.py [RUNS (default /tmp/ft_runs)] [DEST (default RUNS)]
"""

import csv
import re
import sys
from pathlib import Path

RUNS = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ft_runs")
DEST = Path(sys.argv[2]) if len(sys.argv) > 2 else RUNS
PS = {4: 100.2, 5: 119.5, 6: 135.6}  # policy switching's CPE
SHIPPED = {4: 109.2, 5: 129.7, 6: 145.3}  # final level of the shipped 22-minute runs (models/)
TARGET = 130.0  # issue 11, at h = 5

cpu = {}
for line in (RUNS / "cpu.txt").read_text().splitlines():
    m = re.match(r"h=(\d) seed=(\d+) cpu_user=([\d.]+) cpu_sys=([\d.]+) wall=([\d.]+)", line)
    if m:
        cpu[(int(m[1]), int(m[2]))] = (round(float(m[3]) + float(m[4]), 1), float(m[5]))
load = {}
for line in (RUNS / "loads.txt").read_text().splitlines():
    m = re.match(r"h=(\d) seed=(\d+) (start|end) \S+ load ([\d.]+)", line)
    if m:
        load.setdefault((int(m[1]), int(m[2])), {})[m[3]] = float(m[4])


def first(rows, level):
    for r in rows:
        if float(r["mean_cpe"]) >= level:
            return r
    return None


def fixed_episodes(run: Path) -> dict:
    """The final model on the 300 fixed episodes (env seeds 5000-5299) of `labsched compare`."""
    p = run / "compare_5000" / "compare.csv"
    if not p.is_file():
        return {"cpe_5000": "", "se_5000": "", "completion_5000": ""}
    r = next(csv.DictReader(p.open()))
    return {
        "cpe_5000": round(float(r["mean_cpe"]), 2),
        "se_5000": round(float(r["se_cpe"]), 2),
        "completion_5000": float(r["completion_rate"]),
    }


out = []
for key in sorted(cpu, key=lambda k: ({5: 0, 4: 1, 6: 2}.get(k[0], k[0]), k[1])):
    h, s = key
    p = RUNS / f"h{h}_s{s}" / "eval_log.csv"
    if not p.is_file():
        continue
    rows = list(csv.DictReader(p.open()))
    last = rows[-1]
    rec = {"horizon": h, "seed": s, "ps_cpe": PS[h], "shipped_final_cpe": SHIPPED[h]}
    for name, level in (("ps", PS[h]), ("shipped", SHIPPED[h])):
        r = first(rows, level)
        rec[f"{name}_steps"] = int(r["timesteps"]) if r else ""
        rec[f"{name}_wall_s"] = float(r["wall_seconds"]) if r else ""
        rec[f"{name}_train_s"] = float(r["train_seconds"]) if r else ""  # evaluations excluded
    rec.update(
        final_steps=int(last["timesteps"]),
        final_wall_s=float(last["wall_seconds"]),
        final_train_s=float(last["train_seconds"]),
        final_cpe=float(last["mean_cpe"]),
        final_se=round(float(last["se_cpe"]), 2),
        final_completion=float(last["completion_rate"]),
        **fixed_episodes(RUNS / f"h{h}_s{s}"),
        train_steps_per_s=round(int(last["timesteps"]) / max(float(last["train_seconds"]), 1e-9)),
        process_cpu_s=cpu[key][0],
        process_wall_s=cpu[key][1],
        load_start=load.get(key, {}).get("start", ""),
        load_end=load.get(key, {}).get("end", ""),
    )
    out.append(rec)
DEST.mkdir(parents=True, exist_ok=True)
with (DEST / "time_to_level.csv").open("w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(out[0]))
    w.writeheader()
    w.writerows(out)


def fmt(rec, name):
    if rec[f"{name}_steps"] == "":
        return "no"
    return f"{rec[f'{name}_wall_s']:.0f} s / {rec[f'{name}_steps'] / 1e6:.2f}M"


def fixed(rec):
    if rec["cpe_5000"] == "":
        return "-"
    return f"{rec['cpe_5000']:.1f} ± {rec['se_5000']:.1f} ({rec['completion_5000']:.2f})"


lines = [
    "| h | seed | final CPE ± SE, 100 eval episodes (completion) | final model, 300 fixed episodes "
    "(completion) | PS level reached (wall / steps) | shipped level reached | steps, train steps/s | "
    "process CPU / wall s | load (1-min) |",
    "|---|---|---|---|---|---|---|---|---|",
]
for r in out:
    lines.append(
        f"| {r['horizon']} | {r['seed']} | {r['final_cpe']:.1f} ± {r['final_se']:.1f} "
        f"({r['final_completion']:.2f}) | {fixed(r)} | {fmt(r, 'ps')} (PS {r['ps_cpe']}) | "
        f"{fmt(r, 'shipped')} ({r['shipped_final_cpe']}) | {r['final_steps'] / 1e6:.2f}M, "
        f"{r['train_steps_per_s']:,} | {r['process_cpu_s']} / {r['process_wall_s']} | "
        f"{r['load_start']}-{r['load_end']} |"
    )
h5 = [r for r in out if r["horizon"] == 5]
if h5:
    hit = [r for r in h5 if r["final_cpe"] >= TARGET]
    hit_fixed = [r for r in h5 if r["cpe_5000"] != "" and r["cpe_5000"] >= TARGET]
    lines.append("")
    lines.append(
        f"h = 5: final evaluation CPE >= {TARGET:g} on {len(hit)} of {len(h5)} seeds (100 eval episodes); "
        f"on the 300 fixed episodes on {len(hit_fixed)} of {len(h5)}; mean of the seeds "
        f"{sum(r['final_cpe'] for r in h5) / len(h5):.1f} (100 episodes)"
        + (
            f", {sum(r['cpe_5000'] for r in h5) / len(h5):.1f} (300 fixed episodes)."
            if all(r["cpe_5000"] != "" for r in h5)
            else "."
        )
    )
(DEST / "time_to_level_table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
