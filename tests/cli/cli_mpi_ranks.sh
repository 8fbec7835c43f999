#!/usr/bin/env bash
# The same fit on 1, 2 and 4 MPI ranks (trials sharded in contiguous blocks, statistics summed
# exactly, reproducible_sum.hpp), full batch and with minibatches: the ELBO trace, the globals
# and the latents must be bitwise identical (DESIGN.md §4). A data file one rank cannot read
# stops every rank (no hang).
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
"$spikevi" simulate --out "$work/data.h5" --trials 22 --bins 60 --neurons 40 --seed 5 >/dev/null
"$spikevi" simulate --out "$work/models.h5" --trials 14 --bins 40 --neurons 30 --seed 6 \
  --observation negbin --behavior 2 --behavior-missing 0.1 >/dev/null
for ranks in 1 2 4; do
  # negative binomial + a Gaussian modality + Monte Carlo draws + the mean-field family
  timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/models.h5" --latents 2 \
    --observation negbin --expectations monte-carlo --samples 3 --family mean-field \
    --iterations 4 --tolerance 0 --quiet --out "$work/models$ranks.h5" >/dev/null
  timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/data.h5" --latents 3 \
    --iterations 8 --tolerance 0 --quiet --out "$work/full$ranks.h5" >/dev/null
  timeout -k 10 300 mpirun -np $ranks "$spikevi" fit --data "$work/data.h5" --latents 3 \
    --minibatch 5 --iterations 12 --step-tau 2 --step-kappa 0.6 --seed 9 --quiet \
    --out "$work/mini$ranks.h5" >/dev/null
done
tally "bitwise comparison of the fits on 1, 2 and 4 ranks" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
keys = ["elbo", "globals/C", "globals/d", "globals/A", "globals/b", "globals/Q", "globals/mu0",
        "globals/Sigma0", "globals/readout_precision", "latents/mean", "latents/cov"]
model_keys = keys + ["globals/dispersion", "globals/continuous/behavior/W",
                    "globals/continuous/behavior/R"]
bad = 0
for run in ("full", "mini", "models"):
    files = {n: h5py.File(f"{w}/{run}{n}.h5") for n in (1, 2, 4)}
    for n in (2, 4):
        assert files[n].attrs["ranks"] == str(n)
        for key in (model_keys if run == "models" else keys):
            a, b = files[1][key][:], files[n][key][:]
            same = np.array_equal(a, b, equal_nan=True)
            rel = np.nanmax(np.abs(a - b)) / np.nanmax(np.abs(a))
            bad += not same
            if not same:
                print(f"FAIL: {run} {key} on {n} ranks vs 1: not bitwise equal (relative {rel:.1e})")
        same_attr = files[1].attrs["elbo"] == files[n].attrs["elbo"]
        bad += not same_attr
        print(f"{'ok' if same_attr else 'FAIL'}: {run}-batch fit on {n} ranks: final elbo "
              f"{files[n].attrs['elbo']!r} vs {files[1].attrs['elbo']!r} on 1 rank")
    batch = files[1]["trace/batch_trials"][:]
    if run == "mini" and not (batch == 5).all():
        print("FAIL: minibatch trace does not show 5 trials per iteration"); bad += 1
sys.exit(1 if bad else 0)
PY
"$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/data.h5") as f, h5py.File(f"{w}/bad.h5", "w") as g:
    for k in ("counts", "trial_lengths", "split/train_trials", "split/test_trials", "split/heldout_neurons"):
        g[k] = f[k][:]
    g["counts"].attrs["bin_width_s"] = 0.02
    last = int(f["split/train_trials"][:].max())
    c = g["counts"][:]; c[last, 3, 0] = -1; g["counts"][...] = c   # only the last rank's block
PY
fails_with any "one rank's bad block stops both ranks with" "/counts" \
  timeout -k 10 120 mpirun -np 2 "$spikevi" fit --data "$work/bad.h5" --out "$work/x.h5" \
  --iterations 2

finish "cli mpi ranks"
