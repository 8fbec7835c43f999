#!/usr/bin/env bash
# The MLP readout end to end (docs/model-and-inference.md#the-mlp-readout): simulate with a
# nonlinear readout, fit --readout mlp on 1 and 2 ranks (bitwise the same), stop and continue
# from the checkpoint (bitwise the uninterrupted fit), the fit file's /globals/mlp, evaluate
# and decode with the MLP fit, and the combinations it refuses.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_python_modules h5py numpy
cd "$work"
"$spikevi" simulate --out data.h5 --trials 12 --bins 50 --neurons 20 --latents 2 --seed 5 \
  --readout mlp --hidden 4 --behavior 2 >/dev/null
fit() { timeout -k 10 300 mpirun -np "$1" "$spikevi" fit --data data.h5 --latents 2 \
          --readout mlp --hidden 3 --tolerance 0 --quiet "${@:2}"; }

fit 1 --iterations 12 --out one.h5 >/dev/null
fit 2 --iterations 12 --out two.h5 >/dev/null
same_fit one.h5 two.h5 "--readout mlp on 1 rank vs 2 ranks"
fit 2 --iterations 6 --out part.h5 >/dev/null
fit 1 --iterations 12 --out part.h5 --restart >/dev/null
same_fit one.h5 part.h5 "6 iterations on 2 ranks + 6 more from the checkpoint on 1 vs 12"

# The MLP readout's default is partial local steps: bitwise --local-steps 1, not the exact E-step.
fit 1 --iterations 12 --out one_partial.h5 --local-steps 1 >/dev/null
same_fit one.h5 one_partial.h5 "--readout mlp defaults to --local-steps 1"
fit 1 --iterations 12 --out one_exact.h5 --local-steps 0 >/dev/null
assert "--local-steps 0 still gives the exact E-step (more local steps)" "$python" - \
  one.h5 one_exact.h5 <<'PY'
import sys, h5py
partial, exact = (h5py.File(p)["trace/local_iterations"][:].sum() for p in sys.argv[1:])
print(f"local steps: default {partial:.1f}, --local-steps 0 {exact:.1f}")
sys.exit(0 if exact > partial else 1)
PY

assert "the fit file records the MLP readout" "$python" - one.h5 <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1])
ok = (f.attrs["readout"] == "mlp" and f["globals/mlp/W"].shape == (3, 2)
      and f["globals/mlp/A"].shape == (20, 3) and f["globals/mlp/b"].shape == (3,)
      and f["globals/mlp"].attrs["prior_precision"] == 1.0
      and f.attrs["cubature_points"] == 0 and f.attrs["cubature_rotations"] == 256)
sys.exit(0 if ok else 1)
PY

check "evaluate takes the MLP fit" "$spikevi" evaluate --data data.h5 --fit one.h5 --out ev.h5
holds "evaluate prints its co-smoothing" "$work/out" "spikevi fit  *-*[0-9]"
check "decode takes the MLP fit" "$spikevi" decode --data data.h5 --fit one.h5 \
  --target behavior --out dec.h5

# A fit file written before the rotated rule has no cubature_rotations: it is read as the fixed
# rule (0), not as today's default, so evaluate gives it the figures of an explicit 0.
"$python" - one.h5 old.h5 zero.h5 <<'PY'
import shutil, sys, h5py
for target, value in ((sys.argv[2], None), (sys.argv[3], 0.0)):
    shutil.copy(sys.argv[1], target)
    with h5py.File(target, "r+") as f:
        del f.attrs["cubature_rotations"]
        if value is not None:
            f.attrs["cubature_rotations"] = value
PY
for name in old zero one; do
  "$spikevi" evaluate --data data.h5 --fit $name.h5 --out ev_$name.h5 >/dev/null
done
assert "a fit file without cubature_rotations is evaluated with the fixed rule" "$python" - \
  ev_old.h5 ev_zero.h5 ev_one.h5 <<'PY'
import sys, h5py, numpy as np
old, zero, rotated = (h5py.File(p)["cosmoothing/rates"][:] for p in sys.argv[1:])
print(f"max |old - zero| {np.abs(old - zero).max():.3g}, |old - rotated| {np.abs(old - rotated).max():.3g}")
sys.exit(0 if np.array_equal(old, zero) and not np.array_equal(old, rotated) else 1)
PY

check "compare runs the grid --readout linear,mlp" "$spikevi" compare --data data.h5 \
  --models poisson --latents 2 --readout linear,mlp --hidden 3 --folds 2 --iterations 15 \
  --table table.csv --best-out best.h5 --quiet
holds "the table has a linear and an MLP row" table.csv "^poisson," "^poisson+mlp,"
# On data with a smooth simulated tuning the cubature ELBO and the importance-sampled logp agree;
# compare warns where they do not (the MLP readout on sparse real recordings, model-and-inference.md).
assert "compare finds the MLP's held-out ELBO consistent with its logp" \
  bash -c '! grep -q "above the importance-sampled" "$1"' _ "$work/out"
assert "the refit winner is an ordinary fit file" test -s best.h5

for refused in "--family mean-field" "--expectations monte-carlo" "--optimizer adam" \
               "--observation negbin" "--minibatch 4"; do
  # shellcheck disable=SC2086
  fails_with 2 "--readout mlp with $refused is refused" "readout mlp" \
    "$spikevi" fit --data data.h5 --out refused.h5 --latents 2 --readout mlp $refused
done
fails_with 2 "--cubature-rotations -1 is refused" "cubature-rotations" \
  "$spikevi" fit --data data.h5 --out refused.h5 --latents 2 --readout mlp --cubature-rotations -1
finish "MLP readout: ranks, restart, fit file, evaluate, decode, compare, refusals"
