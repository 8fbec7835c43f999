#!/usr/bin/env bash
# Checkpoints and restarts (DESIGN.md §5): a fit stopped and continued equals the uninterrupted
# fit bit for bit — after an iteration limit, after SIGTERM/SIGUSR1 under mpirun, after one rank
# is killed, on a different rank count, from the previous checkpoint when the newest is
# corrupt — and a checkpoint of another configuration is refused naming the setting.
set -euo pipefail
spikevi=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
"$spikevi" simulate --out data.h5 --trials 20 --bins 50 --neurons 30 --seed 3 >/dev/null
fit() { timeout 300 mpirun -np "$1" "$spikevi" fit --data data.h5 --latents "${LATENTS:-3}" \
          --tolerance 0 --quiet "${@:2}"; }
same() {  # same A.h5 B.h5 WHAT: every global, the ELBO trace and the latents, bitwise
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
keys = ["elbo", "trace/elbo_per_spike", "globals/C", "globals/d", "globals/A", "globals/b",
        "globals/Q", "globals/mu0", "globals/Sigma0", "globals/readout_precision",
        "globals/dynamics/M", "globals/dynamics/V", "globals/dynamics/Psi", "globals/dynamics/nu",
        "latents/mean", "latents/cov"]
bad = [k for k in keys if not np.array_equal(a[k][:], b[k][:], equal_nan=True)]
if a.attrs["elbo"] != b.attrs["elbo"]: bad.append("elbo attribute")
print(("ok: " if not bad else "FAIL: ") + sys.argv[3] + (": bitwise equal" if not bad else ": differ in " + ", ".join(bad)))
sys.exit(1 if bad else 0)
PY
}
status=0

# 1. 20 iterations straight vs 10, stop, 10 more (same ranks; and 1 rank then 2 ranks).
fit 2 --iterations 20 --out straight.h5 >/dev/null
fit 2 --iterations 10 --out part.h5 >/dev/null
fit 2 --iterations 20 --out part.h5 --restart >/dev/null
same straight.h5 part.h5 "20 iterations vs 10 + 10 more on 2 ranks" || status=1
fit 1 --iterations 10 --out moved.h5 >/dev/null
fit 2 --iterations 20 --out moved.h5 >/dev/null  # finds its checkpoint without --restart
same straight.h5 moved.h5 "10 on 1 rank + 10 more on 2 ranks vs 20 on 2" || status=1

# 2. The same for stochastic VI (minibatch draws keyed by the iteration).
mini=(--minibatch 4 --step-kappa 0.6 --seed 5)
fit 2 --iterations 16 "${mini[@]}" --out mini_straight.h5 >/dev/null
fit 2 --iterations 8 "${mini[@]}" --out mini_part.h5 >/dev/null
fit 4 --iterations 16 "${mini[@]}" --out mini_part.h5 --restart >/dev/null
same mini_straight.h5 mini_part.h5 "minibatch: 16 vs 8 on 2 ranks + 8 on 4 ranks" || status=1

# 3. A signal under mpirun -np 2: every rank stops at the same iteration boundary, writes the
#    checkpoint and exits 75 (SIGUSR1; with SIGTERM mpirun itself reports 1); the same command
#    then finishes the fit, equal to the uninterrupted one.
long=(--iterations 300 --checkpoint-every 1)
fit 1 "${long[@]}" --out long_straight.h5 >/dev/null
for signal in TERM USR1; do
  out=long_$signal.h5
  # mpirun itself in the background, so that the signal reaches it (not a wrapper)
  mpirun -np 2 "$spikevi" fit --data data.h5 --latents 3 --tolerance 0 --quiet "${long[@]}" \
    --out "$out" >"$signal.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do [ -e "$out.checkpoint.h5" ] && break; sleep 0.05; done
  sleep 0.2
  kill -"$signal" "$pid"
  code=0; wait "$pid" || code=$?
  if [ "$code" -eq 0 ] || ! grep -q "stopped by a signal after iteration" "$signal.log"; then
    echo "FAIL: SIG$signal: status $code and no stop message"; cat "$signal.log"; status=1; continue
  fi
  [ "$signal" = TERM ] || [ "$code" -eq 75 ] || { echo "FAIL: SIGUSR1 exit status $code, expected 75"; status=1; }
  echo "ok: SIG$signal stopped both ranks (status $code): $(grep -o 'after iteration [0-9]*' "$signal.log")"
  fit 2 "${long[@]}" --out "$out" >/dev/null
  same long_straight.h5 "$out" "stopped by SIG$signal and continued" || status=1
done

# 4. SIGKILL of one rank: the whole job ends (no hang), the last checkpoint is usable.
fit 2 "${long[@]}" --out killed.h5 >kill.log 2>&1 &
pid=$!
for _ in $(seq 200); do [ -e killed.h5.checkpoint.h5 ] && break; sleep 0.05; done
sleep 0.2
pkill -KILL -n -f "spikevi fit --data data.h5 .*--out killed.h5" || true
code=0; wait "$pid" || code=$?
[ "$code" -ne 0 ] && [ "$code" -ne 124 ] || { echo "FAIL: after SIGKILL of a rank: status $code"; status=1; }
echo "ok: killing one rank ended the job (status $code)"
fit 2 "${long[@]}" --out killed.h5 >/dev/null
same long_straight.h5 killed.h5 "killed rank, continued from the last checkpoint" || status=1

# 5. A corrupt newest checkpoint: skipped with a warning, the previous one is used.
fit 2 --iterations 10 --checkpoint-every 5 --out corrupt.h5 >/dev/null
/usr/bin/python3 -c "
import sys; p = 'corrupt.h5.checkpoint.h5'; b = bytearray(open(p, 'rb').read())
b[len(b) // 2: len(b) // 2 + 64] = bytes(64); open(p, 'wb').write(b)"
fit 2 --iterations 20 --out corrupt.h5 >corrupt.log 2>&1
grep -q "warning: .*skipping checkpoint" corrupt.log && grep -q "5 iterations done" corrupt.log ||
  { echo "FAIL: corrupt checkpoint not skipped for the previous one"; cat corrupt.log; status=1; }
same straight.h5 corrupt.h5 "continued from the previous checkpoint past a corrupt one" || status=1

# 6. Another configuration: --restart refuses it naming the setting, and the checkpoint stays.
#    (--overwrite without --restart would start afresh instead.)
code=0
before=$(sha256sum part.h5.checkpoint.h5)
LATENTS=4 fit 1 --iterations 20 --out part.h5 --restart >/dev/null 2>other.err || code=$?
[ "$code" -eq 2 ] && grep -q "latents = 3, this fit has latents = 4" other.err ||
  { echo "FAIL: a checkpoint of another configuration: status $code"; cat other.err; status=1; }
[ "$before" = "$(sha256sum part.h5.checkpoint.h5)" ] || { echo "FAIL: checkpoint changed"; status=1; }
echo "ok: another configuration refused: $(head -1 other.err)"

# 7. Other data of the same shape and spike count (the neurons in reverse order): refused.
/usr/bin/python3 -c "
import h5py
with h5py.File('data.h5') as f, h5py.File('reversed.h5', 'w') as g:
    for name in ('counts', 'trial_lengths', 'split/train_trials', 'split/test_trials', 'split/heldout_neurons'):
        g[name] = f[name][:]
    g['counts'][...] = f['counts'][:][:, :, ::-1]
    g['counts'].attrs['bin_width_s'] = f['counts'].attrs.get('bin_width_s', f.attrs.get('bin_width_s'))"
code=0
timeout 120 mpirun -np 2 "$spikevi" fit --data reversed.h5 --latents 3 --tolerance 0 --quiet \
  --iterations 20 --out part.h5 --restart >/dev/null 2>data.err || code=$?
[ "$code" -eq 2 ] && grep -q "data content" data.err ||
  { echo "FAIL: a checkpoint of other data: status $code"; cat data.err; status=1; }
echo "ok: other data refused: $(head -c 120 data.err)..."

# 8. A fit that converged, run again: no iteration more, the same results.
timeout 120 "$spikevi" fit --data data.h5 --latents 3 --quiet --out conv.h5 >/dev/null
cp conv.h5 conv_first.h5
timeout 120 "$spikevi" fit --data data.h5 --latents 3 --quiet --out conv.h5 >conv.log
grep -q "continuing from" conv.log || { echo "FAIL: the converged fit's checkpoint was not found"; status=1; }
same conv_first.h5 conv.h5 "a converged fit run again" || status=1

# 9. A signal at once, during start-up: the fit still stops at the first boundary with a
#    checkpoint and status 75.
mpirun -np 2 "$spikevi" fit --data data.h5 --latents 3 --tolerance 0 --quiet "${long[@]}" \
  --out early.h5 >early.log 2>&1 &
pid=$!
sleep 0.3
kill -USR1 "$pid"
code=0; wait "$pid" || code=$?
[ "$code" -eq 75 ] && [ -e early.h5.checkpoint.h5 ] ||
  { echo "FAIL: an early SIGUSR1: status $code"; cat early.log; status=1; }
echo "ok: SIGUSR1 during start-up: status $code, $(grep -o 'after iteration [0-9]*' early.log)"
exit $status
