"""Plot the 90 s training runs: time_to_level.png (final CPE per run against PS and the 22-minute runs).

Usage: python plot_time_to_level.py   (reads this folder's CSVs, writes time_to_level.png here)
"""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent


def rows(name: str) -> list[dict]:
    with (HERE / name).open() as f:
        return list(csv.DictReader(f))


def main() -> None:
    new = rows("time_to_level.csv")
    old = {int(r["seed"]): float(r["cpe_5000"]) for r in rows("time_to_level_h5_seeds18-23_ent0.01.csv")}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    for i, h in enumerate((4, 5, 6)):
        at_h = [r for r in new if int(r["horizon"]) == h]
        v = [float(r["cpe_5000"]) for r in at_h]
        ps, shipped = float(at_h[0]["ps_cpe"]), float(at_h[0]["shipped_final_cpe"])  # levels the CSV records
        ax1.scatter(
            [i] * len(v), v, color="C0", zorder=3, label="MaskablePPO, 90 s wall clock" if i == 0 else None
        )
        ax1.hlines(ps, i - 0.3, i + 0.3, color="C3", label="policy switching" if i == 0 else None)
        ax1.hlines(
            shipped,
            i - 0.3,
            i + 0.3,
            color="C2",
            linestyles="--",
            label="former default, 22 min" if i == 0 else None,
        )
    ax1.set_xticks([0, 1, 2], ["h = 4", "h = 5", "h = 6"])
    ax1.set_ylabel("mean CPE, 300 fixed episodes")
    ax1.set_title("Shipped entry, one point per training seed")
    ax1.legend(loc="upper left", fontsize=8)
    now = {int(r["seed"]): float(r["cpe_5000"]) for r in new if int(r["horizon"]) == 5}
    for s in sorted(old.keys() & now.keys()):
        ax2.plot([0, 1], [old[s], now[s]], color="grey", marker="o")
    ax2.axhline(130, color="k", linestyle=":", label="target 130")
    ax2.set_xticks([0, 1], ["ent_coef 0.01", "ent_coef 0.05\n(shipped)"])
    ax2.set_xlim(-0.4, 1.4)
    ax2.set_ylabel("mean CPE, 300 fixed episodes")
    ax2.set_title("h = 5, fresh seeds 18-23, paired")
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "time_to_level.png", dpi=110)


if __name__ == "__main__":
    main()
