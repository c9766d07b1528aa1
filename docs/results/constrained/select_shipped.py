"""Choose the shipped constrained agent of one horizon on validation seeds and copy it to models/.

Usage: python docs/results/constrained/select_shipped.py RUNS_DIR H [MODELS_DIR]

Reads ``RUNS_DIR/truncnorm_h<H>/validation/frontier.csv`` (``labsched frontier`` of the five seeds'
``best_model.zip`` with deployment masks, on validation seeds 50000-50499) and picks the row with
the highest mean CPE among those judged p-safe; with none p-safe, the highest completion. The
chosen seed's ``best_model.zip`` goes to ``MODELS_DIR/constrained_h<H>`` (default ``models``) with
its normaliser, logs and ``agent.json``, which records the choice (and the deployment mask, if any,
as ``deployment.mask_threshold``, applied by ``labsched compare``).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

MASKS = (0.9, 0.95)  # the deployment masks tried
FILES = (
    "best_model.zip",
    "best_model_vecnormalize.npz",
    "eval_log.csv",
    "constraint_log.csv",
    "hyperparams.yml",
)


def choose(frontier: Path) -> dict[str, str]:
    with frontier.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["knob"] != "mask_threshold" or float(r["value"]) in MASKS]
    safe = [r for r in rows if r["p_safe"] == "yes"]
    if safe:
        return max(safe, key=lambda r: float(r["mean_cpe"]))
    return max(rows, key=lambda r: (float(r["completion"]), float(r["mean_cpe"])))


def main(argv: list[str]) -> None:
    runs, h = Path(argv[1]), argv[2]
    models = Path(argv[3]) if len(argv) > 3 else Path("models")
    spec_dir = runs / f"truncnorm_h{h}"
    row = choose(spec_dir / "validation" / "frontier.csv")
    seed = row["method"].split("+")[0]
    mask = float(row["value"]) if row["knob"] == "mask_threshold" else None
    src, dst = spec_dir / seed, models / f"constrained_h{h}"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    meta = json.loads((src / "agent.json").read_text())
    meta["selection"] = {
        "rule": "highest validation mean CPE among p-safe (seeds 0-4 x deployment masks none/0.9/0.95)",
        "validation_seeds": "50000-50499",
        "seed": seed,
        "validation_mean_cpe": float(row["mean_cpe"]),
        "validation_completion": float(row["completion"]),
        "validation_p_safe": row["p_safe"],
    }
    if mask is not None:
        meta["deployment"] = {"mask_threshold": mask, "chosen_on": "validation seeds 50000-50499"}
    (dst / "agent.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"h = {h}: {seed}, mask {mask}, validation CPE {row['mean_cpe']}, completion {row['completion']} -> {dst}"  # noqa: E501
    )


if __name__ == "__main__":
    main(sys.argv)
