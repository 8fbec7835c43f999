#!/usr/bin/env bash
# Tutorial (a): the ELBO as a bound on the evidence.
#
# On one linear-Gaussian trial with its parameters fixed, log p(y) is known exactly (a Kalman
# filter). spikevi's local step fits q(z) in the Gauss-Markov family — which contains the exact
# posterior, so its ELBO equals log p(y) to rounding — and in the mean-field family, whose ELBO
# is lower by KL(q || p(z | y)) and whose marginal variances are too small. The program is
# jobs/tutorials/elbo_bound.cpp (built with spikevi as build/tutorial_elbo_bound; it uses the
# library directly, as a lab's own code would). Prints the evidence, both ELBOs and
#   figure gauss_markov_gap = log p(y) - ELBO (Gauss-Markov), ~1e-11 (rounding)
#   figure mean_field_gap   = log p(y) - ELBO (mean-field), > 0
#   figure mean_field_variance_ratio_median = mean-field / exact marginal variance, < 1
source "$(dirname "$0")/common.sh" "$@"
program=${TUTORIAL_ELBO_BOUND:-$(dirname "$spikevi")/tutorial_elbo_bound}
if [[ ! -x "$program" ]]; then
  echo "$tutorial_name: no $program: cmake --build build --target tutorial_elbo_bound" >&2
  exit 2
fi
for bins in $(size 50 "50 200"); do
  step "T = $bins bins"
  "$program" --bins "$bins" --latents 3 --channels 10 --seed 1
done
