#!/usr/bin/env bash
# The strong-scaling driver end to end on a tiny problem (1 and 2 ranks, one repeat): it must
# write scaling.csv with one row per rank count and the plot. Timings here mean nothing.
# Also: fit refuses to start when SLURM_NTASKS disagrees with the MPI size.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
check "strong_scaling.py runs on 1 and 2 ranks" timeout -k 10 600 "$python" \
  "$repo/perf/strong_scaling.py" --spikevi "$spikevi" --ranks 1,2 --oversubscribe --repeats 1 \
  --trials 12 --bins 30 --neurons 20 --latents 2 --iterations 2 --out-dir "$work/scaling"
rows=$(tail -n +2 "$work/scaling/scaling.csv" | wc -l) || rows=0
if [ "$rows" -ne 2 ]; then
  fail "scaling.csv has $rows rows, expected 2" "$work/out"
elif [ ! -s "$work/scaling/scaling.png" ]; then
  fail "no scaling.png"
elif ! head -1 "$work/scaling/scaling.csv" | grep -q "^ranks,repeats,seconds_median"; then
  fail "unexpected CSV header"
else
  ok "strong_scaling.py wrote scaling.csv (2 rank counts) and scaling.png"
fi

fails_with 2 "fit refuses SLURM_NTASKS = 3 on 1 rank" "SLURM_NTASKS is 3" \
  env SLURM_NTASKS=3 timeout -k 10 60 mpirun -np 1 "$spikevi" fit \
  --data "$work/scaling/data.h5" --out "$work/x.h5" --iterations 1

finish "cli strong scaling"
