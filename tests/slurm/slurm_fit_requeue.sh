#!/usr/bin/env bash
# jobs/fit.slurm under a real SLURM (tests/slurm/cluster.sh): an sbatch job of a 2-task fit,
# launched with srun --mpi=pmix and then with mpirun inside the allocation, is sent SLURM's
# warning signal mid-fit (scancel --batch --signal=USR1: exact timing); the fit checkpoints and
# exits 75, the script requeues the job, the requeued job resumes from the checkpoint, and the
# final fit file equals an uninterrupted run's bit for bit. docs/cluster.md#tested-under-a-real-slurm
set -euo pipefail
source "$(dirname "$0")/../cli/harness.sh" "$@"
source "$(dirname "$0")/cluster.sh"
cluster_start

jobs_dir=$cluster/jobs
mkdir -p "$jobs_dir"
cd "$jobs_dir"
"$spikevi" simulate --out data.h5 --trials 20 --bins 50 --neurons 30 --seed 3 >/dev/null
# The fit's options (jobs/fit.slurm reads them from the environment): 150 iterations, a
# checkpoint every 10; the signal follows the first checkpoint, so it comes mid-fit.
options=(SPIKEVI="$spikevi" DATA=data.h5 LATENTS=3 ITERATIONS=150 TOLERANCE=0 CHECKPOINT_EVERY=10)

# The uninterrupted fit: the same script and options without SLURM (mpirun, 2 ranks).
check "uninterrupted reference fit (jobs/fit.slurm without SLURM)" \
  env "${options[@]}" OUT=straight.h5 LAUNCHER=mpirun SLURM_NTASKS=2 \
  timeout -k 10 300 bash "$repo/jobs/fit.slurm"

for launcher in srun mpirun; do
  out=fit_$launcher.h5
  log=$jobs_dir/fit_$launcher.out
  submit job --nodes=1 --ntasks-per-node=2 --time=10 --output="$log" --chdir="$jobs_dir" \
    --export=ALL,"$(IFS=,; echo "${options[*]}")",OUT="$out",LAUNCHER="$launcher" \
    "$repo/jobs/fit.slurm"
  wait_state "$job" 60 RUNNING COMPLETED FAILED ||
    abort "$launcher: job $job did not start within 60 s" <(job_report "$job" "$log")
  wait_until 120 test -e "$out.checkpoint.h5" ||
    abort "$launcher: no checkpoint within 120 s" <(job_report "$job" "$log")
  timeout 10 scancel --batch --signal=USR1 "$job"

  # Checkpoint, exit 75, requeue: the job is back to PENDING with Restarts=1.
  if ! wait_state "$job" 120 PENDING || [ "$(job_field "$job" Restarts)" != 1 ]; then
    abort "$launcher: job $job was not requeued within 120 s of SIGUSR1" <(job_report "$job" "$log")
  fi
  holds "$launcher: SIGUSR1 reached the script; the fit checkpointed, exited 75, was requeued" \
    "$log" "training trials, 30 neurons, D = 3, 2 rank(s)" "received SIGUSR1" \
    "stopped by a signal after iteration" "the solver exited with status 75" "requeueing job $job"
  stopped_at=$(grep -o 'stopped by a signal after iteration [0-9]*' "$log" | grep -o '[0-9]*$')
  assert "$launcher: stopped mid-fit (after iteration $stopped_at of 150)" \
    test "$stopped_at" -lt 150

  # The requeued job resumes from the checkpoint and finishes.
  release "$job"
  wait_state "$job" 300 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL ||
    abort "$launcher: requeued job $job did not end within 300 s" <(job_report "$job" "$log")
  assert "$launcher: the requeued job completed (exit 0:0, Restarts=1)" \
    test "$(job_field "$job" JobState) $(job_field "$job" ExitCode) $(job_field "$job" Restarts)" \
    = "COMPLETED 0:0 1"
  holds "$launcher: the second run resumed from the checkpoint" "$log" \
    "resuming (run 2)" "continuing from $out.checkpoint.h5: $stopped_at iterations done" \
    "the solver exited with status 0"
  assert -v "$launcher: the final fit file equals the uninterrupted run's, bit for bit" \
    "$python" "$repo/tests/slurm/fit_files.py" straight.h5 "$out"
done

finish "slurm fit requeue"
