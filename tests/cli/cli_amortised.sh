#!/usr/bin/env bash
# Amortised inference through the command line (issue 14): `fit --inference amortised` writes
# an ordinary fit file plus /encoder and the annealing / collapse traces; the encoder reads
# only the held-in neurons; `evaluate` scores it from the test trials' held-in neurons (with
# and without --refine); --free-bits and --history K work with it; what is not implemented is
# refused with status 2.
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
# --free-bits: 0 is the plain fit bit for bit; far above any KL per bin, every iteration takes
# the gradient of E_q[ell] alone (its KL weight, /trace/beta, 0 throughout).
small=(fit --data "$work/sim.h5" --inference amortised --latents 2 --iterations 15
       --encoder-hidden 8 --encoder-window 3 --kl-warmup 5 --quiet)
check "an amortised fit" "$spikevi" "${small[@]}" --out "$work/fb_none.h5"
check "the same with --free-bits 0" "$spikevi" "${small[@]}" --out "$work/fb_zero.h5" --free-bits 0
same_fit "$work/fb_none.h5" "$work/fb_zero.h5" "--free-bits 0 vs no --free-bits"
assert "--free-bits 0: the same encoder and beta" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(f"{sys.argv[1]}/fb_none.h5"), h5py.File(f"{sys.argv[1]}/fb_zero.h5")
for name in ["encoder/weights", "trace/beta", "trace/kl_per_dimension"]:
    assert np.array_equal(a[name][:], b[name][:]), name
PY
check "the same with --free-bits 1000" "$spikevi" "${small[@]}" --out "$work/fb_high.h5" \
  --free-bits 1000
assert "--free-bits 1000: the KL's weight is 0 in every iteration" "$python" -c "
import h5py, sys, numpy as np; beta = h5py.File('$work/fb_high.h5')['trace/beta'][:]
sys.exit(0 if len(beta) == 15 and np.all(beta == 0) else 1)"
fails_with 2 "a negative --free-bits refused" "free-bits" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference amortised --free-bits -1

# --history K with the amortised fit: on data where held-out neurons depend on the held-in
# population's previous bin (history_coupling_data.py), the history terms co-smooth better;
# 1 and 2 ranks agree bit for bit; evaluate (with and without --refine) and decode take it.
"$python" "$(dirname "$0")/history_coupling_data.py" "$work/coupled.h5" 7
# (--initial-iterations 20: from the default single VB-EM iteration, this data set's history
# fit collapses, 0 active units; jobs/collapse_demo.sh.)
coupled=(fit --data "$work/coupled.h5" --inference amortised --latents 2 --iterations 150
         --minibatch 8 --encoder-window 5 --encoder-rate 0.02 --step-tau 20 --step-kappa 0.51
         --initial-iterations 20 --quiet)
cobps() { "$python" -c "import h5py,sys; print(h5py.File(sys.argv[1])['cosmoothing'].attrs['bits_per_spike'])" "$1"; }
check "an amortised fit on the coupled data" "$spikevi" "${coupled[@]}" --out "$work/c_plain.h5"
check "an amortised fit with --history 1" "$spikevi" "${coupled[@]}" --out "$work/c_hist.h5" \
  --history 1
check "evaluate the amortised fit" "$spikevi" evaluate --data "$work/coupled.h5" \
  --fit "$work/c_plain.h5" --out "$work/c_plain_eval.h5"
check "evaluate the amortised history fit" "$spikevi" evaluate --data "$work/coupled.h5" \
  --fit "$work/c_hist.h5" --out "$work/c_hist_eval.h5"
check "evaluate the amortised history fit with --refine 5" "$spikevi" evaluate \
  --data "$work/coupled.h5" --fit "$work/c_hist.h5" --out "$work/c_hist_eval5.h5" --refine 5
plain=$(cobps "$work/c_plain_eval.h5") hist=$(cobps "$work/c_hist_eval.h5")
echo "amortised co-bps: latent-only $plain, --history 1 $hist, refined $(cobps "$work/c_hist_eval5.h5")"
assert "the amortised history fit co-smooths better by > 0.03 bits/spike ($hist vs $plain)" \
  "$python" -c "import sys; sys.exit(0 if $hist > $plain + 0.03 else 1)"
assert "the history weights were learnt" "$python" -c "
import h5py, sys, numpy as np; B = h5py.File('$work/c_hist.h5')['globals/history/B'][:]
sys.exit(0 if B.shape[1] > 0 and np.abs(B).max() > 0.01 else 1)"
check "the amortised history fit on 2 ranks" timeout -k 10 300 mpirun -np 2 "$spikevi" \
  "${coupled[@]}" --out "$work/c_hist2.h5" --history 1
same_fit "$work/c_hist.h5" "$work/c_hist2.h5" "amortised --history 1: 1 rank vs 2 ranks"
check "an amortised history fit with a behaviour modality" "$spikevi" fit \
  --data "$work/behaviour.h5" --out "$work/amb_hist.h5" --inference amortised --latents 2 \
  --iterations 30 --encoder-hidden 8 --encoder-window 3 --history 2 --quiet
check "decode an amortised history fit (--refine 2)" "$spikevi" decode \
  --data "$work/behaviour.h5" --fit "$work/amb_hist.h5" --target behavior \
  --out "$work/decoded_hist.h5" --refine 2
fails_with 2 "--kl-beta0 0 refused" "kl-beta0" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference amortised --kl-beta0 0
fails_with 2 "an amortised checkpoint is refused for another --iterations" "iterations" \
  "$spikevi" "${long[@]/1500/1501}" --out "$work/part.h5" --restart
fails_with 2 "an unknown --inference refused" "iterative or amortised" \
  "$spikevi" fit --data "$work/sim.h5" --out "$work/x.h5" --inference bogus

finish "cli amortised"
