#!/usr/bin/env bash
# Posterior collapse of the amortised fit under a flexible decoder (issue 14 point 5): the
# history/coupling terms of `fit --history K` can explain the counts from the population's own
# past, the classic cause of collapse. On two simulations with history dependence
#   * coupled:  tests/cli/history_coupling_data.py (held-out neurons driven by the held-in
#               population's previous bin, held-in neurons with fast private noise),
#   * slow:     jobs/collapse_data.py (slow latents, A = 0.98, and a strong autoregressive
#               coupling of every neuron to the held-in population's previous bin),
# it fits D = 2 latents by the iterative engine (with and without --history 3, to convergence
# or 400 iterations) and by the amortised encoder (200 iterations of minibatches of 8) with
# --history 3, under two decoder starts
#   * "tau 1":  the default start (1 VB-EM iteration, --step-tau 1: the first decoder steps
#               follow the untrained encoder's posteriors with rho near 1),
#   * "tau 20": 20 VB-EM iterations and --step-tau 20,
# each without annealing, with --kl-warmup 100 (beta from 0.01) and with --free-bits 0.5, and
# prints co-smoothing, the final active units (posterior-mean variance > 0.01, of D) and the KL
# per dimension; then, on the slow data, the "tau 1" fits over five seeds. Needs a built
# build/spikevi. Outputs go to build/collapse_demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
spikevi=${SPIKEVI:-build/spikevi}
out=${SPIKEVI_DEMO_DIR:-build/collapse_demo}
python=${PYTHON:-/usr/bin/python3}  # with h5py and numpy
mkdir -p "$out"

common=(--latents 2 --ignore-continuous --quiet --overwrite)
amortised=(--inference amortised --iterations 200 --minibatch 8 --encoder-window 5
           --encoder-rate 0.02 --step-kappa 0.51)

cosmoothing() { "$spikevi" evaluate --data "$1" --fit "$2" --out "$2.eval.h5" --overwrite |
                  awk '/spikevi fit/ {print $3}'; }

report() {  # report LABEL DATA FIT
  local line
  line=$("$python" - "$3" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1])
if "encoder" in f:
    kl = " ".join(f"{k:.3f}" for k in f["encoder/final_kl_per_dimension"][:])
    print(f"active units {f.attrs['active_units']:.0f} of 2  KL/dim {kl}  "
          f"elbo/spike {f.attrs['elbo_per_spike']:+.4f}")
else:
    print(f"elbo/spike {f.attrs['elbo_per_spike']:+.4f}")
PY
)
  printf '  %-48s co-bps %8s  %s\n' "$1" "$(cosmoothing "$2" "$3")" "$line"
}

demo() {  # demo LABEL DATA
  local label=$1 data=$2 base=$out/$1
  echo "== $label ($data)"
  "$spikevi" fit --data "$data" "${common[@]}" --iterations 400 --out "$base.it.h5" >/dev/null
  report "iterative, no history" "$data" "$base.it.h5"
  "$spikevi" fit --data "$data" "${common[@]}" --iterations 400 --history 3 \
    --out "$base.it_h3.h5" >/dev/null
  report "iterative, --history 3" "$data" "$base.it_h3.h5"
  "$spikevi" fit --data "$data" "${common[@]}" "${amortised[@]}" --step-tau 1 \
    --out "$base.am_nohist.h5" >/dev/null
  report "amortised, no history, tau 1" "$data" "$base.am_nohist.h5"
  local start name
  for start in "tau 1:--step-tau 1 --initial-iterations 1" \
               "tau 20:--step-tau 20 --initial-iterations 20"; do
    name=${start%%:*}
    read -r -a decoder <<<"${start#*:}"
    for variant in "no annealing:" "--kl-warmup 100:--kl-warmup 100 --kl-beta0 0.01" \
                   "--free-bits 0.5:--free-bits 0.5"; do
      read -r -a options <<<"${variant#*:}"
      local file="$base.am_h3_${name// /}_$(echo "${variant%%:*}" | tr -cd 'a-z0-9').h5"
      "$spikevi" fit --data "$data" "${common[@]}" "${amortised[@]}" --history 3 \
        "${decoder[@]}" ${options[@]+"${options[@]}"} --out "$file" >/dev/null
      report "amortised --history 3, $name, ${variant%%:*}" "$data" "$file"
    done
  done
}

seeds() {  # seeds DATA: the "tau 1" amortised history fits over --seed 1..5 (encoder weights,
           # minibatches), active units and co-smoothing per seed
  local data=$1 seed variant file
  echo "== over --seed 1..5 ($data, amortised --history 3, tau 1): active units / co-bps"
  for variant in "no annealing:" "--kl-warmup 100:--kl-warmup 100 --kl-beta0 0.01" \
                 "--free-bits 0.5:--free-bits 0.5"; do
    read -r -a options <<<"${variant#*:}"
    local line=""
    for seed in 1 2 3 4 5; do
      file="$out/seed$seed.h5"
      "$spikevi" fit --data "$data" "${common[@]}" "${amortised[@]}" --history 3 --step-tau 1 \
        --seed "$seed" ${options[@]+"${options[@]}"} --out "$file" >/dev/null
      line+=$(printf ' %s/%s' "$("$python" -c "import h5py,sys; print(int(h5py.File(sys.argv[1]).attrs['active_units']))" "$file")" \
                "$(cosmoothing "$data" "$file")")
    done
    printf '  %-16s%s\n' "${variant%%:*}" "$line"
  done
}

"$python" tests/cli/history_coupling_data.py "$out/coupled.h5" 7 >/dev/null
"$python" jobs/collapse_data.py "$out/slow.h5" 1 1.0 0.98 >/dev/null
demo coupled "$out/coupled.h5"
demo slow "$out/slow.h5"
seeds "$out/slow.h5"
