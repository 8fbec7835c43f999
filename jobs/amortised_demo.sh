#!/usr/bin/env bash
# Amortised inference against the iterative engine (issue 14): on the default simulation and
# on a real recording named by SPIKEVI_REAL_DATA (spikes only, --ignore-continuous), fits
#   * the iterative engine (natural-gradient local steps, full batch),
#   * the amortised encoder with and without KL annealing (--kl-warmup),
# evaluates each by co-smoothing (the amortised ones with their encoder on the test trials'
# held-in neurons, and with --refine 50), prints the active units and the KL per latent
# dimension, the training time per epoch, and the time (training iterations' seconds) until
# co-smoothing came within 0.01 bits/spike of its final value, from fits stopped after
# 25, 50, 100, 200 iterations (the first iterations of a fit do not depend on its length).
# Needs a built build/spikevi (jobs/demo.sh builds it). Outputs go to build/amortised_demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
spikevi=${SPIKEVI:-build/spikevi}
out=${SPIKEVI_DEMO_DIR:-build/amortised_demo}
mkdir -p "$out"
real=${SPIKEVI_REAL_DATA:-}
python=${PYTHON:-/usr/bin/python3}  # with h5py

# The settings found to train stably: minibatches of 8 trials, 100 epochs, a 9-bin window, and
# a decoder step rho_i = (i + 20)^-0.51 (with tau = 1 the first decoder steps follow the
# untrained encoder's poor posteriors too far).
amortised=(--inference amortised --minibatch 8 --encoder-rate 0.03 --encoder-window 9
           --step-tau 20 --step-kappa 0.51 --ignore-continuous --quiet --overwrite)

cosmoothing() { "$spikevi" evaluate --data "$1" --fit "$2" --out "$2.eval.h5" --overwrite "${@:3}" |
                  awk '/spikevi fit/ {print $3}'; }

report() {  # report NAME DATA FIT
  local line
  line=$("$python" - "$3" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
secs = f["trace/seconds"][:]
active = f.attrs.get("active_units", float("nan"))
kl = f["encoder/final_kl_per_dimension"][:] if "encoder" in f else []
print(f"elbo/spike {f.attrs['elbo_per_spike']:+.5f}  active units {active:.0f}  "
      f"KL/dim {' '.join(f'{k:.3f}' for k in kl)}  iterations {len(secs)}  train {secs.sum():.1f} s")
PY
)
  printf '  %-34s co-bps %s  %s\n' "$1" "$(cosmoothing "$2" "$3")" "$line"
}

demo() {  # demo LABEL DATA LATENTS EPOCHS
  local label=$1 data=$2 D=$3 epochs=$4 base=$out/$1
  echo "== $label ($data, D = $D)"
  "$spikevi" fit --data "$data" --latents "$D" --iterations 200 --out "$base.iterative.h5" \
    --ignore-continuous --overwrite --quiet >/dev/null
  report "iterative" "$data" "$base.iterative.h5"
  "$spikevi" fit --data "$data" --latents "$D" --epochs "$epochs" "${amortised[@]}" \
    --out "$base.plain.h5" >/dev/null
  report "amortised, no annealing" "$data" "$base.plain.h5"
  printf '  %-34s co-bps %s\n' "  the same, --refine 50" \
    "$(cosmoothing "$data" "$base.plain.h5" --refine 50)"
  "$spikevi" fit --data "$data" --latents "$D" --epochs "$epochs" "${amortised[@]}" \
    --kl-warmup 100 --kl-beta0 0.01 --out "$base.annealed.h5" >/dev/null
  report "amortised, --kl-warmup 100" "$data" "$base.annealed.h5"
  local final t
  final=$(cosmoothing "$data" "$base.plain.h5")
  for k in 25 50 100 200; do
    "$spikevi" fit --data "$data" --latents "$D" --iterations $k "${amortised[@]}" \
      --out "$base.k$k.h5" >/dev/null
    t=$("$python" -c "import h5py,sys; print(f'{h5py.File(sys.argv[1])[\"trace/seconds\"][:].sum():.2f}')" "$base.k$k.h5")
    printf '  after %4d iterations (%6s s of training): co-bps %s (final %s)\n' "$k" "$t" \
      "$(cosmoothing "$data" "$base.k$k.h5")" "$final"
  done
}

"$spikevi" simulate --out "$out/sim.h5" --overwrite >/dev/null
demo default-simulation "$out/sim.h5" 4 100
if [ -n "$real" ]; then demo real-recording "$real" 4 8; fi
