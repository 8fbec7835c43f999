#!/usr/bin/env bash
# jobs/scaling.slurm under a real SLURM (tests/slurm/cluster.sh): one sbatch allocation of 2
# tasks runs the strong-scaling sweep as two `srun -n p` job steps (p = 1, 2) and writes
# scaling.csv (one row per rank count) and scaling.png. Timings here mean nothing (2 shared
# cores, a tiny problem). docs/cluster.md#tested-under-a-real-slurm
set -euo pipefail
source "$(dirname "$0")/../cli/harness.sh" "$@"
source "$(dirname "$0")/cluster.sh"
need_python_modules numpy h5py matplotlib
cluster_start

jobs_dir=$cluster/jobs
mkdir -p "$jobs_dir"
log=$jobs_dir/scaling.out
results=$jobs_dir/scaling
submit job --nodes=1 --ntasks-per-node=2 --time=10 --output="$log" --chdir="$repo" \
  --export=ALL,SPIKEVI="$spikevi",PYTHON="$python",OUT_DIR="$results",TRIALS=12,BINS=30,NEURONS=20,LATENTS=2,ITERATIONS=2,REPEATS=1 \
  "$repo/jobs/scaling.slurm"
wait_state "$job" 300 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL ||
  abort "job $job did not end within 300 s" <(job_report "$job" "$log")
assert "the scaling job completed (exit 0:0)" \
  test "$(job_field "$job" JobState) $(job_field "$job" ExitCode)" = "COMPLETED 0:0"
holds "two srun steps, p = 1 and p = 2, both exit 0" "$log" "ranks 1 2;" \
  "p = 1, repeat 0: .* exit status 0" "p = 2, repeat 0: .* exit status 0"
holds "the p = 1 step ran one rank" "$results/fit_1_0.log" ", 1 rank(s);"
holds "the p = 2 step ran one communicator of 2 ranks" "$results/fit_2_0.log" ", 2 rank(s);"
assert "scaling.csv: the header and one row per rank count (1, 2)" "$python" - "$results/scaling.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ranks = [int(r["ranks"]) for r in rows]
assert ranks == [1, 2], ranks
assert all(float(r["seconds_median"]) > 0 and r["repeats"] == "1" for r in rows), rows
assert float(rows[0]["speedup"]) == 1.0, rows[0]
PY
assert "scaling.png is a non-empty PNG" "$python" -c "
import sys
data = open(sys.argv[1], 'rb').read()
sys.exit(0 if len(data) > 1000 and data[:8] == b'\x89PNG\r\n\x1a\n' else 1)" "$results/scaling.png"

# Step 0 simulates the data; steps 1 and 2 are the fits (slurmd logs each step it launches).
holds "slurmd launched job steps $job.0 (simulate), $job.1 and $job.2 (the fits)" \
  "$cluster/log/slurmd.log" "launch task StepId=$job.0 " "launch task StepId=$job.1 " \
  "launch task StepId=$job.2 "
finish "slurm scaling"
