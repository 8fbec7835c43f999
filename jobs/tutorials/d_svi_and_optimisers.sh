#!/usr/bin/env bash
# Tutorial (d): stochastic VI on minibatches, and natural-gradient steps against Adam.
#
# One simulated data set is fitted four ways, each then scored by `spikevi evaluate`:
#   full batch, natural gradient   exact VB-EM: each iteration updates every trial's sites and
#                                  then the shared parameters in closed form (the reference);
#   minibatch, natural gradient    stochastic VI: each iteration updates a minibatch of trials
#                                  and blends the global statistics, scaled by K/|B| so that
#                                  they estimate the full-batch sums, with step size
#                                  rho_i = (i + tau)^-kappa (Hoffman et al. 2013);
#   full batch, Adam               Euclidean gradient steps with Adam (Kingma & Ba 2015) on the
#                                  sites, readout rows and log shapes, at the default rates;
#   minibatch, Adam                both.
# What it shows: all four reach about the same co-smoothing (the minibatch fits within a few
# thousandths of a bit per spike of the full-batch one after `--epochs` passes), but each trial's
# local step needs ~3 natural-gradient steps per outer iteration and runs into the limit of 100
# Adam steps (`--local-max-iterations`): a step in natural coordinates is a Newton-like step for
# the exponential-family sites (Khan & Lin 2017), Adam's is a scaled Euclidean one. Prints, per
# fit, the final ELBO per spike (for a minibatch fit an estimate from the last minibatch), the
# mean local steps per trial and iteration, the co-smoothing in bits per spike and the time:
#   figure cobps_NAME                  for each of the four fits
#   figure adam_local_steps_ratio      Adam's local steps per trial over the natural gradient's
source "$(dirname "$0")/common.sh" "$@"
trials=$(size 20 120); iterations=$(size 10 100); epochs=$(size 5 20)

step "data: $trials trials of the default simulation"
"$spikevi" simulate --out data.h5 --trials "$trials" --seed 4 --overwrite

run() {  # run NAME FIT-OPTIONS...: fit, evaluate, print the figures
  local name=$1; shift
  step "$name: spikevi fit $*"
  local start=$SECONDS
  "$spikevi" fit --data data.h5 --latents 4 --out "$name.h5" --overwrite --quiet "$@"
  "$spikevi" evaluate --data data.h5 --fit "$name.h5" --out "$name.eval.h5" --overwrite >/dev/null
  local cobps elbo steps
  cobps=$(attribute "$name.eval.h5" cosmoothing bits_per_spike)
  read -r elbo steps < <("$python" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r")
print(f["trace/elbo_per_spike"][-1], f["trace/local_iterations"][:].mean())' "$name.h5")
  printf '%-18s ELBO/spike %9.5f   local steps %5.1f   co-smoothing %7.4f bits/spike   %3d s\n' \
    "$name" "$elbo" "$steps" "$cobps" $((SECONDS - start))
  figure "cobps_$name" "$(printf '%.4f' "$cobps")"
  local_steps[$name]=$steps
}
declare -A local_steps
minibatch=(--minibatch 8 --epochs "$epochs" --step-tau 1 --step-kappa 0.7 --seed 1)
run full_natural --iterations "$iterations"
run minibatch_natural "${minibatch[@]}"
run full_adam --iterations "$iterations" --optimizer adam
run minibatch_adam "${minibatch[@]}" --optimizer adam
figure adam_local_steps_ratio "$("$python" -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.1f}")' \
  "${local_steps[full_adam]}" "${local_steps[full_natural]}")"
