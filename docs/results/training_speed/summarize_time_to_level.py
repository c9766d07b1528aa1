"""Summarise /tmp/ft_runs (written by /tmp/ft_confirm.sh) into docs/results/training_speed/."""

import csv
import re
import sys
from pathlib import Path

RUNS = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ft_runs")
OUT = Path("/work/main/docs/results/training_speed")
PS = {4: 100.2, 5: 119.5, 6: 135.6}  # policy switching's CPE
SHIPPED = {4: 109.2, 5: 129.7, 6: 145.3}  # final level of today's shipped 22-minute runs
cpu = {}
for line in (RUNS / "cpu.txt").read_text().splitlines():
    m = re.match(r"h=(\d) seed=(\d) cpu_user=([\d.]+) cpu_sys=([\d.]+) wall=([\d.]+)", line)
    if m:
        cpu[(int(m[1]), int(m[2]))] = (float(m[3]) + float(m[4]), float(m[5]))
load = {}
for line in (RUNS / "loads.txt").read_text().splitlines():
    m = re.match(r"h=(\d) seed=(\d) (start|end) \S+ load ([\d.]+)", line)
    if m:
        load.setdefault((int(m[1]), int(m[2])), {})[m[3]] = float(m[4])


def first(rows, level):
    for r in rows:
        if float(r["mean_cpe"]) >= level:
            return r
    return None


out = []
for h in (4, 5, 6):
    for s in (0, 1, 2):
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
            rec[f"{name}_train_s"] = float(r["train_seconds"]) if r else ""
        rec.update(
            final_steps=int(last["timesteps"]),
            final_wall_s=float(last["wall_seconds"]),
            final_train_s=float(last["train_seconds"]),
            final_cpe=float(last["mean_cpe"]),
            final_se=round(float(last["se_cpe"]), 2),
            final_completion=float(last["completion_rate"]),
            best_cpe=float(last["best_mean_cpe"]),
            train_steps_per_s=round(int(last["timesteps"]) / max(float(last["train_seconds"]), 1e-9)),
            process_cpu_s=cpu.get((h, s), ("", ""))[0],
            process_wall_s=cpu.get((h, s), ("", ""))[1],
            load_start=load.get((h, s), {}).get("start", ""),
            load_end=load.get((h, s), {}).get("end", ""),
        )
        out.append(rec)
OUT.mkdir(parents=True, exist_ok=True)
with (OUT / "time_to_level.csv").open("w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(out[0]))
    w.writeheader()
    w.writerows(out)


def fmt(rec, name):
    if rec[f"{name}_steps"] == "":
        return "not reached"
    return f"{rec[f'{name}_wall_s']:.0f} s / {rec[f'{name}_steps'] / 1000:.0f}k"


lines = [
    "| h | seed | PS CPE reached at (wall / steps) | shipped final reached at | "
    "final CPE ± SE (completion) | "
    "steps, train steps/s | load (1-min) |",
    "|---|---|---|---|---|---|---|",
]
for r in out:
    lines.append(
        f"| {r['horizon']} | {r['seed']} | {fmt(r, 'ps')} (PS {r['ps_cpe']}) | {fmt(r, 'shipped')} "
        f"({r['shipped_final_cpe']}) | {r['final_cpe']:.1f} ± {r['final_se']:.1f} "
        f"({r['final_completion']:.2f}) | "
        f"{r['final_steps'] / 1000:.0f}k, {r['train_steps_per_s']:,} | {r['load_start']}-{r['load_end']} |"
    )
(OUT / "time_to_level_table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
