#!/usr/bin/env bash
# Checkpoints and restarts (DESIGN.md §5): a fit stopped and continued equals the uninterrupted
# fit bit for bit — after an iteration limit, after SIGTERM/SIGUSR1 under mpirun, after one rank
# is killed, on a different rank count, from the previous checkpoint when the newest is
# corrupt — and a checkpoint of another configuration is refused naming the setting.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
cd "$work"
"$spikevi" simulate --out data.h5 --trials 20 --bins 50 --neurons 30 --seed 3 >/dev/null
fit() { timeout -k 10 300 mpirun -np "$1" "$spikevi" fit --data data.h5 --latents "${LATENTS:-3}" \
          --tolerance 0 --quiet "${@:2}"; }
spawn_fit() {  # spawn_fit VAR LOG RANKS FIT-ARGUMENTS...: the same fit in the background
  spawn "$1" 300 "$2" mpirun -np "$3" "$spikevi" fit --data data.h5 --latents 3 --tolerance 0 \
    --quiet "${@:4}"
}

# 1. 20 iterations straight vs 10, stop, 10 more (same ranks; and 1 rank then 2 ranks).
fit 2 --iterations 20 --out straight.h5 >/dev/null
fit 2 --iterations 10 --out part.h5 >/dev/null
fit 2 --iterations 20 --out part.h5 --restart >/dev/null
same_fit straight.h5 part.h5 "20 iterations vs 10 + 10 more on 2 ranks"
fit 1 --iterations 10 --out moved.h5 >/dev/null
fit 2 --iterations 20 --out moved.h5 >/dev/null  # finds its checkpoint without --restart
same_fit straight.h5 moved.h5 "10 on 1 rank + 10 more on 2 ranks vs 20 on 2"

# 1b. The same with --accelerate squarem, whose cycle (x0, counter, step_max) the checkpoint
#     holds: stopped after the iteration that starts a cycle (10) and before an extrapolation
#     (11), on 2 ranks then 1 and on 1 then 2. A plain fit's checkpoint is not continued with it.
sq=(--accelerate squarem)
fit 2 --iterations 20 "${sq[@]}" --out sq_straight.h5 >/dev/null
for stop in 10 11; do
  fit 2 --iterations $stop "${sq[@]}" --out sq_$stop.h5 >/dev/null
  fit 1 --iterations 20 "${sq[@]}" --out sq_$stop.h5 --restart >/dev/null
  same_fit sq_straight.h5 sq_$stop.h5 "squarem: 20 iterations vs $stop on 2 ranks + the rest on 1"
done
fit 1 --iterations 11 "${sq[@]}" --out sq_moved.h5 >/dev/null
fit 2 --iterations 20 "${sq[@]}" --out sq_moved.h5 >/dev/null
same_fit sq_straight.h5 sq_moved.h5 "squarem: 11 on 1 rank + 9 more on 2 vs 20 on 2"
fails_with 2 "a plain fit's checkpoint is not continued by --accelerate squarem" \
  "accelerate = (not recorded), this fit has accelerate = squarem" \
  fit 1 --iterations 30 --out part.h5 --restart "${sq[@]}"

# 2. The same for stochastic VI (minibatch draws keyed by the iteration).
mini=(--minibatch 4 --step-kappa 0.6 --seed 5)
fit 2 --iterations 16 "${mini[@]}" --out mini_straight.h5 >/dev/null
fit 2 --iterations 8 "${mini[@]}" --out mini_part.h5 >/dev/null
fit 4 --iterations 16 "${mini[@]}" --out mini_part.h5 --restart >/dev/null
same_fit mini_straight.h5 mini_part.h5 "minibatch: 16 vs 8 on 2 ranks + 8 on 4 ranks"

# 3. A signal under mpirun -np 2: every rank stops at the same iteration boundary, writes the
#    checkpoint and exits 75 (SIGUSR1; with SIGTERM mpirun itself reports 1); the same command
#    then finishes the fit, equal to the uninterrupted one. The signal goes to mpirun itself
#    (signal_job), not to the timeout around it, which would not pass SIGUSR1 on.
# Long enough that the signal lands mid-fit on an idle machine: mpirun passes SIGTERM on to
# the ranks only ~1.5 s after it gets it (measured 2026-12-06: 422 of 3000 iterations done), and
# 300 iterations took 1.1 s.
long=(--iterations 3000 --checkpoint-every 1)
fit 1 "${long[@]}" --out long_straight.h5 >/dev/null
for signal in TERM USR1; do
  out=long_$signal.h5
  spawn_fit pid "$signal.log" 2 "${long[@]}" --out "$out"
  wait_until 30 test -e "$out.checkpoint.h5" || fail "SIG$signal: no checkpoint within 30 s"
  sleep 0.2
  signal_job "$signal" "$pid" || fail "SIG$signal: mpirun was not running to receive it"
  code=0; await "$pid" || code=$?
  if [ "$code" -eq 0 ] || ! grep -q "stopped by a signal after iteration" "$signal.log"; then
    fail "SIG$signal: status $code and no stop message" "$signal.log"; continue
  fi
  if [ "$signal" = USR1 ] && [ "$code" -ne 75 ]; then
    fail "SIGUSR1 exit status $code, expected 75" "$signal.log"
  else
    stopped=$(grep -o 'after iteration [0-9]*' "$signal.log")
    ok "SIG$signal stopped both ranks (status $code): $stopped"
  fi
  fit 2 "${long[@]}" --out "$out" >/dev/null
  same_fit long_straight.h5 "$out" "stopped by SIG$signal and continued"
done

# 4. SIGKILL of one rank: the whole job ends (no hang, no rank left behind), the last
#    checkpoint is usable. The rank is one of the spikevi processes under this job's mpirun.
spawn_fit pid kill.log 2 "${long[@]}" --out killed.h5
wait_until 30 test -e killed.h5.checkpoint.h5 || fail "no checkpoint within 30 s before the kill"
sleep 0.2
ranks=($(job_ranks "$pid"))
killed_at=$SECONDS
if [ ${#ranks[@]} -eq 2 ]; then
  kill -KILL "${ranks[1]}"
  code=0; await "$pid" || code=$?
  if [ "$code" -eq 0 ] || [ "$code" -eq 124 ] || [ $((SECONDS - killed_at)) -ge 60 ]; then
    fail "after SIGKILL of a rank: status $code after $((SECONDS - killed_at)) s" kill.log
  elif ! wait_until 10 all_ended "${ranks[@]}"; then
    fail "after SIGKILL of rank ${ranks[1]}, rank ${ranks[0]} is still running"
  else
    ok "killing one rank ended the job (status $code)"
  fi
else
  fail "found ${#ranks[@]} spikevi ranks under mpirun, expected 2: ${ranks[*]}"
  await "$pid" || true
fi
fit 2 "${long[@]}" --out killed.h5 >/dev/null
same_fit long_straight.h5 killed.h5 "killed rank, continued from the last checkpoint"

# 5. A corrupt newest checkpoint: skipped with a warning, the previous one is used.
fit 2 --iterations 10 --checkpoint-every 5 --out corrupt.h5 >/dev/null
"$python" -c "
import sys; p = 'corrupt.h5.checkpoint.h5'; b = bytearray(open(p, 'rb').read())
b[len(b) // 2: len(b) // 2 + 64] = bytes(64); open(p, 'wb').write(b)"
fit 2 --iterations 20 --out corrupt.h5 >corrupt.log 2>&1
holds "a corrupt checkpoint is skipped for the previous one" corrupt.log \
  "warning: .*skipping checkpoint" "5 iterations done"
same_fit straight.h5 corrupt.h5 "continued from the previous checkpoint past a corrupt one"

# 6. Another configuration: --restart refuses it naming the setting, and the checkpoint stays.
#    (--overwrite without --restart would start afresh instead.)
before=$(sha256sum part.h5.checkpoint.h5)
LATENTS=4 fails_with 2 "another configuration refused" "latents = 3, this fit has latents = 4" \
  fit 1 --iterations 20 --out part.h5 --restart
assert "the refused restart left the checkpoint as it was" \
  test "$before" = "$(sha256sum part.h5.checkpoint.h5)"

# 7. Other data of the same shape and spike count (the neurons in reverse order): refused.
"$python" -c "
import h5py
with h5py.File('data.h5') as f, h5py.File('reversed.h5', 'w') as g:
    for name in ('counts', 'trial_lengths', 'split/train_trials', 'split/test_trials', 'split/heldout_neurons'):
        g[name] = f[name][:]
    g['counts'][...] = f['counts'][:][:, :, ::-1]
    g['counts'].attrs['bin_width_s'] = f['counts'].attrs.get('bin_width_s', f.attrs.get('bin_width_s'))"
fails_with 2 "other data refused" "data content" \
  timeout -k 10 120 mpirun -np 2 "$spikevi" fit --data reversed.h5 --latents 3 --tolerance 0 \
  --quiet --iterations 20 --out part.h5 --restart

# 8. A fit that converged, run again: no iteration more, the same results.
timeout -k 10 120 "$spikevi" fit --data data.h5 --latents 3 --quiet --out conv.h5 >/dev/null
cp conv.h5 conv_first.h5
timeout -k 10 120 "$spikevi" fit --data data.h5 --latents 3 --quiet --out conv.h5 >conv.log
holds "the converged fit's checkpoint is found" conv.log "continuing from"
same_fit conv_first.h5 conv.h5 "a converged fit run again"

# 9. A signal at once, during start-up: the fit still stops at the first boundary with a
#    checkpoint and status 75.
spawn_fit pid early.log 2 "${long[@]}" --out early.h5
sleep 0.3
signal_job USR1 "$pid" || fail "early SIGUSR1: mpirun was not running to receive it"
code=0; await "$pid" || code=$?
if [ "$code" -eq 75 ] && [ -e early.h5.checkpoint.h5 ]; then
  ok "SIGUSR1 during start-up: status $code, $(grep -o 'after iteration [0-9]*' early.log)"
else
  fail "an early SIGUSR1: status $code" early.log
fi

finish "cli checkpoint"
