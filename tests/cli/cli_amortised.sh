#!/usr/bin/env bash
# Amortised inference through the command line (issue 14): `fit --inference amortised` writes
# an ordinary fit file plus /encoder and the annealing / collapse traces; the encoder reads
# only the held-in neurons; `evaluate` scores it from the test trials' held-in neurons (with
# and without --refine); what is not implemented is refused with status 2.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"

"$spikevi" simulate --out "$work/sim.h5" --trials 20 --bins 50 --neurons 24 --latents 2 \
  --seed 4 >/dev/null
check "amortised fit with a KL warm-up" "$spikevi" fit --data "$work/sim.h5" \
  --out "$work/am.h5" --inference amortised --latents 2 --iterations 40 --kl-warmup 10 \
  --kl-beta0 0.05 --encoder-hidden 8 --encoder-window 3 --quiet
assert -v "the fit file holds the encoder and the traces" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(f"{sys.argv[1]}/am.h5")
beta = f["trace/beta"][:]
kl = f["trace/kl_per_dimension"][:]
active = f["trace/active_units"][:]
heldout = h5py.File(f"{sys.argv[1]}/sim.h5")["split/heldout_neurons"][:]
inputs = f["encoder/input_neurons"][:]
print(f"beta {beta[0]:.3f} -> {beta[-1]:.3f}; final KL/dim {f['encoder/final_kl_per_dimension'][:]}; "
      f"active units {f.attrs['active_units']}; encoder reads {len(inputs)} neurons")
assert f.attrs["inference"] == "amortised"
assert len(beta) == 40 and abs(beta[0] - 0.05) < 1e-12 and beta[10] == 1.0
assert np.all(np.diff(beta[:11]) > 0)
assert kl.shape == (40, 2) and np.all(kl >= 0) and active.shape == (40,)
assert 0 <= f.attrs["active_units"] <= 2
assert not set(inputs) & set(heldout) and len(inputs) + len(heldout) == 24
assert f["encoder/weights"].shape[0] == f["encoder/adam_first"].shape[0]
assert np.isfinite(f.attrs["elbo"])
PY
check "evaluate an amortised fit" "$spikevi" evaluate --data "$work/sim.h5" \
  --fit "$work/am.h5" --out "$work/eval.h5"
check "evaluate an amortised fit with --refine 3" "$spikevi" evaluate --data "$work/sim.h5" \
  --fit "$work/am.h5" --out "$work/eval3.h5" --refine 3
# SIGTERM stops an amortised fit at an iteration boundary with a checkpoint (status 75); the
# same command continues it, and the result is bitwise the uninterrupted fit.
long=(fit --data "$work/sim.h5" --inference amortised --latents 2 --iterations 1500
      --encoder-hidden 8 --encoder-window 3 --kl-warmup 50 --checkpoint-every 5 --quiet)
check "an uninterrupted amortised fit" "$spikevi" "${long[@]}" --out "$work/whole.h5"
spawn pid 300 "$work/part.log" "$spikevi" "${long[@]}" --out "$work/part.h5"
wait_until 60 test -e "$work/part.h5.checkpoint.h5" || fail "no checkpoint within 60 s"
signal_job TERM "$pid" || fail "the fit was not running to receive SIGTERM"
code=0; await "$pid" || code=$?
holds "SIGTERM stops the amortised fit with a checkpoint (status $code)" "$work/part.log" \
  "stopped by a signal after iteration"
check "the same command continues it" "$spikevi" "${long[@]}" --out "$work/part.h5"
assert -v "continued = uninterrupted, bit for bit" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(f"{sys.argv[1]}/whole.h5"), h5py.File(f"{sys.argv[1]}/part.h5")
for name in ["elbo", "encoder/weights", "encoder/adam_second", "trace/kl_per_dimension",
             "trace/active_units", "trace/beta", "globals/C", "globals/A", "latents/mean"]:
    assert np.array_equal(a[name][:], b[name][:], equal_nan=True), name
assert a.attrs["elbo"] == b.attrs["elbo"] and a.attrs["active_units"] == b.attrs["active_units"]
print(f"elbo {a.attrs['elbo']:.10e} in both")
PY
# decode with an amortised fit: the encoder's q from the spikes, then the behaviour.
"$spikevi" simulate --out "$work/behaviour.h5" --trials 20 --bins 50 --neurons 24 --latents 2 \
  --seed 5 --behavior 2 >/dev/null
check "an amortised fit with a behaviour modality" "$spikevi" fit --data "$work/behaviour.h5" \
  --out "$work/amb.h5" --inference amortised --latents 2 --iterations 30 --encoder-hidden 8 \
  --encoder-window 3 --quiet
check -v "decode an amortised fit (--refine 2)" "$spikevi" decode --data "$work/behaviour.h5" \
  --fit "$work/amb.h5" --target behavior --out "$work/decoded.h5" --refine 2
"$spikevi" fit --data "$work/sim.h5" --out "$work/it.h5" --latents 2 --iterations 5 --quiet \
  >/dev/null
fails_with 2 "--refine refused for an iterative fit" "amortised fits only" \
  "$spikevi" evaluate --data "$work/sim.h5" --fit "$work/it.h5" --out "$work/e.h5" --refine 2
fails_with 2 "--free-bits refused (not implemented)" "free-bits" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference amortised --free-bits 1
fails_with 2 "--kl-beta0 0 refused" "kl-beta0" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference amortised --kl-beta0 0
fails_with 2 "an amortised checkpoint is refused for another --iterations" "iterations" \
  "$spikevi" "${long[@]/1500/1501}" --out "$work/part.h5" --restart
fails_with 2 "an unknown --inference refused" "iterative or amortised" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference bogus

finish "cli amortised"
