#!/usr/bin/env bash
# Tutorial (g): a cluster run that outlives its time limit — checkpoint on a signal, resume,
# and get the same answer bit for bit.
#
# It drives the project's own batch script jobs/fit.slurm outside SLURM (LAUNCHER=mpirun,
# SLURM_NTASKS=2: the same logic, no scheduler; under SLURM, sbatch jobs/fit.slurm does each
# step below by itself, see docs/cluster.md):
#   1. an uninterrupted 2-rank fit, the reference;
#   2. the same fit through jobs/fit.slurm, sent SIGUSR1 (what `#SBATCH --signal=B:USR1@120`
#      sends before the time limit) once its first checkpoint exists: the script forwards it,
#      every rank stops at the same iteration, writes OUT.checkpoint.h5 and exits 75;
#   3. the script run again (what `scontrol requeue` does): it finds the checkpoint, adds
#      --restart, and the fit finishes;
#   4. the two final fit files compared: every parameter, the ELBO trace and the latents equal
#      bit for bit.
# Prints the status of the interrupted run and
#   figure interrupted_status = 75
#   figure bitwise_equal = yes
source "$(dirname "$0")/common.sh" "$@"
trials=$(size 20 60); iterations=$(size 40 200)
common=(LATENTS=3 ITERATIONS="$iterations" TOLERANCE=0 CHECKPOINT_EVERY=1 OVERWRITE=1
        SPIKEVI="$spikevi" LAUNCHER=mpirun SLURM_NTASKS=2)

step "data: $trials trials of the default simulation"
"$spikevi" simulate --out data.h5 --trials "$trials" --seed 7 --overwrite

step "1. reference: an uninterrupted 2-rank fit"
env "${common[@]}" DATA=data.h5 OUT=reference.h5 EXTRA_FIT_OPTIONS=--quiet \
  bash "$repo/jobs/fit.slurm" >reference.log 2>&1
tail -n 3 reference.log

step "2. the same job, sent SIGUSR1 after its first checkpoint"
rm -f job.h5 job.h5.checkpoint.h5 job.h5.checkpoint.h5.prev
env "${common[@]}" DATA=data.h5 OUT=job.h5 EXTRA_FIT_OPTIONS=--quiet \
  bash "$repo/jobs/fit.slurm" >job_run1.log 2>&1 &
job=$!
for _ in $(seq 600); do [[ -e job.h5.checkpoint.h5 ]] && break; sleep 0.1; done
[[ -e job.h5.checkpoint.h5 ]] || { echo "no checkpoint within 60 s" >&2; kill "$job"; exit 1; }
kill -USR1 "$job"
status=0
wait "$job" || status=$?
grep -E "received SIG|stopped|checkpoint" job_run1.log | head -n 4
echo "exit status of the interrupted run: $status"
figure interrupted_status "$status"

step "3. the job again, as a requeue would start it: it resumes from the checkpoint"
env "${common[@]}" DATA=data.h5 OUT=job.h5 EXTRA_FIT_OPTIONS=--quiet \
  bash "$repo/jobs/fit.slurm" >job_run2.log 2>&1
grep -E "found checkpoint|finished" job_run2.log

step "4. reference.h5 and job.h5, bit for bit"
equal=$("$python" - reference.h5 job.h5 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
keys = ["elbo", "globals/C", "globals/d", "globals/A", "globals/b", "globals/Q", "globals/mu0",
        "globals/Sigma0", "globals/readout_precision", "latents/mean", "latents/cov"]
bad = [k for k in keys if not np.array_equal(a[k][:], b[k][:], equal_nan=True)]
print("differ: " + ", ".join(bad) if bad else f"equal: {', '.join(keys)}", file=sys.stderr)
print("no" if bad else "yes")
PY
)
figure bitwise_equal "$equal"
