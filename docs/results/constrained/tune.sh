#!/usr/bin/env bash
# Knob tuning of the Lagrangian target on validation seeds (50000-50499), h = 5, tuning seed 100.
# Usage: bash docs/results/constrained/tune.sh [RUNS_DIR]
set -euo pipefail
RUNS=${1:-/tmp/constrained_runs}
LS=${LABSCHED:-labsched}
STEPS=${STEPS:-400000}
mkdir -p "$RUNS/tune"
printf '%s\n' 0.02 0.05 0.08 | xargs -P 2 -I{} sh -c "[ -f '$RUNS/tune/t{}/model.zip' ] || $LS train --horizon 5 \
  --constraint lagrangian --target {} --seed 100 --init-model ${MODELS:-models}/maskable_ppo_h5 \
  --hyperparams-file docs/results/constrained/hyperparams.yml --hyperparams learning_rate=lin_3e-4 --total-timesteps $STEPS --eval-freq 100000 --references \
  --no-progress --no-plot --out '$RUNS/tune/t{}' > '$RUNS/tune/t{}.log' 2>&1"
$LS frontier "$RUNS"/tune/t0.02/model.zip "$RUNS"/tune/t0.05/model.zip "$RUNS"/tune/t0.08/model.zip \
  --horizon 5 --ps-thresholds --keep-busy --mask-thresholds 0.5 0.7 0.8 0.9 --episodes 500 --seed 50000 \
  --jobs 2 --no-clairvoyant --no-plot --out "$RUNS/tune/validation"
