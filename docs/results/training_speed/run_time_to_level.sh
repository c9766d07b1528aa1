#!/bin/bash
# Issue 11 "Time to a strong policy": MaskablePPO from scratch with the shipped hyperparameters
# (agents/hyperparams/maskable_ppo.yml), a 90 s budget, 3 seeds x h = 5, 4, 6, one run at a time; then
# every final model on the same 300 fixed episodes (env seeds 5000-5299, not used to choose the
# configuration) and the summary table. One command, from anywhere:
#
#   bash docs/results/training_speed/run_time_to_level.sh              # wall clock (the issue's criterion)
#   CLOCK=cpu bash docs/results/training_speed/run_time_to_level.sh    # 90 s of process CPU time (loaded machine)
#
# Options (environment): CLOCK=wall|cpu, OUT (default /tmp/ft_runs), SEEDS ("0 1 2"), HORIZONS ("5 4 6"),
# MINUTES (1.5), EVAL_FREQ (0: evaluate only before training, before the clock starts, and after it;
# evaluations during training count in the budget), LABSCHED (the labsched command), WRITE_DOCS=1 (also
# write time_to_level.csv/_table.md into this folder; otherwise they go to $OUT), HYPERPARAMS (overrides
# of the entry, e.g. "ent_coef=0.01 learning_rate=lin_2e-3", passed to --hyperparams).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE/../../.."
if [ -z "${LABSCHED:-}" ] && [ -x /work/venv/bin/labsched ]; then LABSCHED=/work/venv/bin/labsched; fi
LABSCHED=${LABSCHED:-labsched}
PYTHON=$(dirname "$(command -v "$LABSCHED")")/python
[ -x "$PYTHON" ] || PYTHON=python
CLOCK=${CLOCK:-wall}; OUT=${OUT:-/tmp/ft_runs}; SEEDS=${SEEDS:-0 1 2}; HORIZONS=${HORIZONS:-5 4 6}
MINUTES=${MINUTES:-1.5}; EVAL_FREQ=${EVAL_FREQ:-0}
case $CLOCK in
  wall) LIMIT=(--time-limit-minutes "$MINUTES") ;;
  cpu) LIMIT=(--cpu-time-limit-minutes "$MINUTES") ;;
  *) echo "CLOCK must be wall or cpu, got $CLOCK" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
HP=()
if [ -n "${HYPERPARAMS:-}" ]; then read -r -a HP <<< "$HYPERPARAMS"; HP=(--hyperparams "${HP[@]}"); fi
echo "clock=$CLOCK minutes=$MINUTES eval_freq=$EVAL_FREQ hyperparams=${HYPERPARAMS:-} $(date -u +%FT%TZ) nproc=$(nproc)" >> "$OUT/settings.txt"
for h in $HORIZONS; do
  for s in $SEEDS; do
    run="$OUT/h${h}_s${s}"
    echo "h=$h seed=$s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/loads.txt"
    /usr/bin/time -f "h=$h seed=$s cpu_user=%U cpu_sys=%S wall=%e" -a -o "$OUT/cpu.txt" \
      "$LABSCHED" train --algo maskable_ppo --horizon "$h" --seed "$s" "${LIMIT[@]}" \
      --eval-freq "$EVAL_FREQ" --eval-episodes 100 --n-eval-envs 20 --references \
      --no-progress --no-plot --verbose 1 --out "$run" "${HP[@]}" 2> "$run.log"
    echo "h=$h seed=$s end $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/loads.txt"
    "$LABSCHED" compare "$run/model.zip" --horizon "$h" --episodes 300 --seed 5000 --jobs 1 --no-plot \
      --out "$run/compare_5000" >> "$run.log" 2>&1
  done
done
DEST=$OUT
if [ "${WRITE_DOCS:-0}" = 1 ]; then DEST=$HERE; fi
"$PYTHON" "$HERE/summarize_time_to_level.py" "$OUT" "$DEST"
