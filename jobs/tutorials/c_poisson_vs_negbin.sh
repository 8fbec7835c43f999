#!/usr/bin/env bash
# Tutorial (c): Poisson or negative binomial? Cross-validation, not the training ELBO, decides.
#
# Two simulated data sets, one with over-dispersed counts (negative binomial, shape r = 1:
# variance = mean + mean^2) and one with Poisson counts, are each compared by `spikevi compare`
# under both spike models. On the over-dispersed data the negative binomial wins on held-out
# log-likelihood and co-smoothing; on Poisson data the two are level on held-out data (its
# shapes grow large, i.e. Poisson-like) and the selection between them is a tie within the
# standard errors. Judge by the held-out columns, not the training ELBO: that is the fairness
# caveat `compare` prints (the ELBO's approximation gap log p(x) - ELBO differs between models,
# and the negative binomial's point-estimated shapes favour the richer model in-sample).
# Prints: both comparison tables and
#   figure nb_heldout_gain_overdispersed = held-out logp/spike (negbin - poisson), > 0
#   figure nb_heldout_gain_poisson       = the same on Poisson data, about 0
source "$(dirname "$0")/common.sh" "$@"
trials=$(size 24 40); bins=$(size 40 100); neurons=$(size 30 60); folds=$(size 3 5)
iterations=$(size 30 100)

gain() {  # gain TABLE.csv: held-out logp per spike of negative_binomial minus poisson
  "$python" - "$1" <<'PY'
import csv, sys
rows = {r["observation"]: float(r["heldout_ll_per_spike"]) for r in csv.DictReader(open(sys.argv[1]))}
print(f'{rows["negative_binomial"] - rows["poisson"]:+.4f}')
PY
}

for kind in overdispersed poisson; do
  if [[ $kind == overdispersed ]]; then model=(--observation negbin --dispersion 1.0); else model=(--observation poisson); fi
  step "data: $kind counts ($trials trials x $bins bins x $neurons neurons)"
  "$spikevi" simulate --out "$kind.h5" --trials "$trials" --bins "$bins" --neurons "$neurons" \
    --seed 2 "${model[@]}" --overwrite
  step "compare poisson and negative binomial, $folds-fold cross-validation on the training trials"
  "$spikevi" compare --data "$kind.h5" --models poisson,negbin --latents 4 --folds "$folds" \
    --iterations "$iterations" --table "$kind.csv" --overwrite --quiet
  figure "nb_heldout_gain_$kind" "$(gain "$kind.csv")"
done
