#!/bin/bash
# Issue 11 "Speed": MaskablePPO from scratch with the shipped hyperparameters (agents/hyperparams/maskable_ppo.yml),
# 90 s of wall clock (--time-limit-minutes 1.5, evaluations included), 3 seeds x h = 4, 5, 6, one run at a time.
. /work/venv/bin/activate
cd /work/main
OUT=${OUT:-/tmp/ft_runs}; mkdir -p $OUT
for h in 5 4 6; do
  for s in 0 1 2; do
    echo "h=$h seed=$s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/loads.txt
    /usr/bin/time -f "h=$h seed=$s cpu_user=%U cpu_sys=%S wall=%e" -a -o $OUT/cpu.txt \
    labsched train --algo maskable_ppo --horizon $h --seed $s --time-limit-minutes 1.5 \
      --eval-freq 65536 --eval-episodes 100 --n-eval-envs 20 --references \
      --no-progress --no-plot --verbose 1 --out $OUT/h${h}_s${s} 2> $OUT/h${h}_s${s}.log
    echo "h=$h seed=$s end $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/loads.txt
  done
done
