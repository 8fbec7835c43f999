#!/usr/bin/env bash
# Threads inside a rank (issue 17, parallel/threads.hpp): the same fit at 1, 2 and 4 threads
# on 1 and 2 MPI ranks — exact, partial local steps (--local-steps 1), minibatches, and
# negative binomial + a Gaussian modality + Monte Carlo + mean-field — must give bitwise the
# same fit files; so must evaluate at 1 and 3 threads (co-smoothing and both baselines).
# OMP_NUM_THREADS stands in for --threads, and a bad value of either is refused.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
"$spikevi" simulate --out "$work/data.h5" --trials 22 --bins 50 --neurons 30 --seed 5 >/dev/null
"$spikevi" simulate --out "$work/models.h5" --trials 12 --bins 40 --neurons 24 --seed 6 \
  --observation negbin --behavior 2 --behavior-missing 0.1 >/dev/null
for ranks in 1 2; do
  for threads in 1 2 4; do
    tag="${ranks}x$threads"
    timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/data.h5" --latents 3 \
      --iterations 6 --tolerance 0 --quiet --threads $threads --out "$work/full$tag.h5" >/dev/null
    timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/data.h5" --latents 3 \
      --iterations 8 --tolerance 0 --quiet --threads $threads --local-steps 1 \
      --out "$work/partial$tag.h5" >/dev/null
    timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/data.h5" --latents 3 \
      --minibatch 5 --iterations 8 --seed 9 --quiet --threads $threads \
      --out "$work/mini$tag.h5" >/dev/null
    OMP_NUM_THREADS=$threads timeout -k 10 300 mpirun -x OMP_NUM_THREADS -np $ranks \
      "$spikevi" fit --data "$work/models.h5" --latents 2 --observation negbin \
      --expectations monte-carlo --samples 3 --family mean-field --iterations 3 --tolerance 0 \
      --quiet --out "$work/models$tag.h5" >/dev/null
  done
done
for threads in 1 3; do
  "$spikevi" evaluate --data "$work/data.h5" --fit "$work/full1x1.h5" --threads $threads \
    --out "$work/eval$threads.h5" >/dev/null
done
tally "bitwise comparison of fits at 1, 2, 4 threads x 1, 2 ranks, and of evaluations" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]

def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out

skip = ("timing", "trace/seconds", "config")  # wall times and the run's own settings differ
bad = 0
for run in ("full", "partial", "mini", "models"):
    with h5py.File(f"{w}/{run}1x1.h5") as f:
        reference, elbo = datasets(f), f.attrs["elbo"]
    for tag in ("1x2", "1x4", "2x1", "2x2", "2x4"):
        with h5py.File(f"{w}/{run}{tag}.h5") as f:
            other, other_elbo = datasets(f), f.attrs["elbo"]
        differ = [k for k in reference if not k.startswith(skip) and
                  (k not in other or not np.array_equal(reference[k], other[k], equal_nan=True))]
        differ += [] if elbo == other_elbo else ["@elbo"]
        bad += bool(differ)
        print(f"{'FAIL' if differ else 'ok'}: {run} fit, ranks x threads {tag} vs 1x1: "
              + (f"differs in {differ[:5]}" if differ else f"{len(reference)} datasets bitwise equal"))
with h5py.File(f"{w}/eval1.h5") as a, h5py.File(f"{w}/eval3.h5") as b:
    keys = ("cosmoothing/rates", "baseline/rates", "baseline_log/rates")
    for key in keys:
        same = np.array_equal(a[key][()], b[key][()], equal_nan=True)
        bad += not same
        print(f"{'ok' if same else 'FAIL'}: evaluate {key} at 3 threads vs 1")
sys.exit(1 if bad else 0)
PY
refuses "--threads -1 is refused" "threads" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/x.h5" --threads -1
# (libgomp warns about the value on stderr too, before spikevi refuses it)
OMP_NUM_THREADS=lots fails_with 2 "OMP_NUM_THREADS=lots is refused" \
  "OMP_NUM_THREADS must be a positive integer" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/y.h5"
finish "cli threads"
