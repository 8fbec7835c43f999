#!/usr/bin/env bash
# The strong-scaling driver end to end on a tiny problem (1 and 2 ranks, one repeat): it must
# write scaling.csv with one row per rank count and the plot. Timings here mean nothing.
# Also: fit refuses to start when SLURM_NTASKS disagrees with the MPI size.
set -euo pipefail
spikevi=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
timeout 600 /usr/bin/python3 "$here/../../perf/strong_scaling.py" --spikevi "$spikevi" --ranks 1,2 \
  --oversubscribe --repeats 1 --trials 12 --bins 30 --neurons 20 --latents 2 --iterations 2 \
  --out-dir "$work/scaling" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
rows=$(tail -n +2 "$work/scaling/scaling.csv" | wc -l)
[ "$rows" -eq 2 ] || { echo "FAIL: scaling.csv has $rows rows, expected 2"; cat "$work/log"; exit 1; }
[ -s "$work/scaling/scaling.png" ] || { echo "FAIL: no scaling.png"; exit 1; }
head -1 "$work/scaling/scaling.csv" | grep -q "^ranks,repeats,seconds_median" ||
  { echo "FAIL: unexpected CSV header"; exit 1; }
echo "ok: strong_scaling.py wrote scaling.csv (2 rank counts) and scaling.png"

status=0
SLURM_NTASKS=3 timeout 60 mpirun -np 1 "$spikevi" fit --data "$work/scaling/data.h5" \
  --out "$work/x.h5" --iterations 1 >/dev/null 2>"$work/err" || status=$?
[ "$status" -eq 2 ] && grep -q "SLURM_NTASKS is 3" "$work/err" ||
  { echo "FAIL: SLURM_NTASKS mismatch not refused (status $status)"; cat "$work/err"; exit 1; }
echo "ok: $(cat "$work/err")"
