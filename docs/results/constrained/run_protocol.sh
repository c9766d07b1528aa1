#!/usr/bin/env bash
# The constrained-agents protocol of docs/results/constrained/README.md (issue 12).
# Usage: bash docs/results/constrained/run_protocol.sh [RUNS_DIR]   (default /tmp/constrained_runs)
# Seeds: training evaluations seed+10000, validation 50000-50499 (knob tuning), test 100000-100999,
# ps-calibrated's own calibration 10**9+ : all disjoint.
set -euo pipefail
RUNS=${1:-/tmp/constrained_runs}
LS=${LABSCHED:-labsched}
TARGET=${TARGET:-0.08}         # the Lagrangian target chosen on validation seeds (tune.sh)
STEPS=${STEPS:-400000}         # fine-tuning steps per seed (truncated normal)
STEPS_GAMMA=${STEPS_GAMMA:-200000}  # ... and for the gamma law (a robustness check: half, for time)
MODELS=${MODELS:-models}       # the unconstrained models each run starts from
mkdir -p "$RUNS"
for law in truncnorm gamma; do
  if [ "$law" = gamma ]; then DUR=(--duration gamma:10,0.1); N=$STEPS_GAMMA; else DUR=(); N=$STEPS; fi
  for h in 4 5 6; do
    out="$RUNS/${law}_h$h"
    # 5 training seeds, two at a time (one torch thread each), each fine-tuning the shipped
    # unconstrained model of this horizon (models/maskable_ppo_h$h) under the Lagrangian.
    [ -f "$out/seeds_summary.csv" ] || $LS train --horizon $h "${DUR[@]}" --constraint lagrangian \
      --target "$TARGET" --seeds 0-4 --jobs 2 --init-model "$MODELS/maskable_ppo_h$h" \
      --hyperparams-file docs/results/constrained/hyperparams.yml --hyperparams learning_rate=lin_3e-4 \
      --total-timesteps "$N" --eval-freq 100000 \
      --references --no-progress --no-plot --out "$out"
  done
done
for law in truncnorm gamma; do
  if [ "$law" = gamma ]; then DUR=(--duration gamma:10,0.1); else DUR=(); fi
  for h in 4 5 6; do
    out="$RUNS/${law}_h$h"
    # 1,000 fresh common-random-number test episodes; paired differences against ps-calibrated.
    # (PS at its own p = 0.95 only at h = 4 and 5 of the truncated normal, for time.)
    if [ "$law" = gamma ] || [ "$h" = 6 ]; then PS=(); else PS=(ps); fi
    [ -f "$out/test/compare.csv" ] || $LS compare ps-calibrated "${PS[@]}" keep-busy-calibrated clairvoyant \
      "$out"/seed{0,1,2,3,4}/best_model.zip "$out"/seed{0,1,2,3,4}/model.zip --reference ps-calibrated --horizon $h "${DUR[@]}" \
      --episodes 1000 --seed 100000 --jobs 2 --no-plot --out "$out/test"
  done
done
