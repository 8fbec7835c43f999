#!/usr/bin/env bash
# Every spike model against its own ground truth, the mean-field family and the estimators
# through the command line (issue: more models, families, estimators; decoding):
#  * negative binomial counts (shape 1.5): the fitted shapes recover it and the negative
#    binomial beats the Poisson model on ELBO per spike;
#  * Bernoulli bins: the fit beats the constant-rate null model in co-smoothing;
#  * mean-field fits and evaluates, with a lower ELBO than Gauss-Markov (a smaller family);
#  * quadrature equals the Poisson closed form; Monte Carlo lands close to it;
#  * decoding a 2-channel behaviour signal from spikes: R^2 within 0.1 of the oracle R^2 (true
#    latents through the true readout) and the 95 % interval covers 90-98 % of the values;
#  * model/estimator combinations that do not exist are refused with status 2.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"

# --- negative binomial vs Poisson on over-dispersed counts ---
"$spikevi" simulate --out "$work/nb.h5" --trials 60 --bins 80 --neurons 40 --seed 3 \
  --observation negbin --dispersion 1.5 >/dev/null
for obs in poisson negbin; do
  "$spikevi" fit --data "$work/nb.h5" --out "$work/nb_$obs.h5" --observation $obs --quiet \
    --iterations 60 >/dev/null
done
assert -v "negative binomial: shapes near 1.5, ELBO above the Poisson model's" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
p, nb = h5py.File(f"{w}/nb_poisson.h5"), h5py.File(f"{w}/nb_negbin.h5")
r = nb["globals/dispersion"][:]
print(f"negbin shapes: median {np.median(r):.3f} (true 1.5); elbo/spike negbin "
      f"{nb.attrs['elbo_per_spike']:.4f} vs poisson {p.attrs['elbo_per_spike']:.4f}")
assert nb.attrs["observation"] == "negative_binomial" and p.attrs["observation"] == "poisson"
# 40 neurons x 48 trials x 80 bins: each shape is estimated from ~3800 bins, SE of log r ~0.1;
# the median over 40 neurons is far tighter than the 20 % asked here.
assert abs(np.median(r) / 1.5 - 1) < 0.2, np.median(r)
assert nb.attrs["elbo_per_spike"] > p.attrs["elbo_per_spike"]
PY
check "evaluate a negative-binomial fit" "$spikevi" evaluate --data "$work/nb.h5" \
  --fit "$work/nb_negbin.h5" --out "$work/nb_eval.h5"

# --- Bernoulli ---
"$spikevi" simulate --out "$work/bern.h5" --trials 40 --bins 80 --neurons 40 --seed 4 \
  --observation bernoulli >/dev/null
"$spikevi" fit --data "$work/bern.h5" --out "$work/bern_fit.h5" --observation bernoulli \
  --quiet --iterations 40 >/dev/null
check "evaluate a Bernoulli fit" "$spikevi" evaluate --data "$work/bern.h5" \
  --fit "$work/bern_fit.h5" --out "$work/bern_eval.h5"
assert -v "Bernoulli: co-smoothing above the constant-rate null" "$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
with h5py.File(f"{w}/bern_eval.h5") as f:
    score = f["cosmoothing"].attrs["bits_per_spike"]
    print(f"bernoulli co-bps {score:.4f}")
    assert score > 0.02, score   # better than each neuron's constant rate
PY

# --- families and estimators on the default Poisson simulation ---
"$spikevi" simulate --out "$work/p.h5" --seed 2 >/dev/null
for run in "gm --family gauss-markov" "mf --family mean-field" "quad --expectations quadrature" \
           "mc --expectations monte-carlo --samples 8"; do
  set -- $run
  name=$1; shift
  "$spikevi" fit --data "$work/p.h5" --out "$work/p_$name.h5" --quiet --iterations 25 \
    --tolerance 0 "$@" >/dev/null
done
check "evaluate a mean-field fit" "$spikevi" evaluate --data "$work/p.h5" --fit "$work/p_mf.h5" \
  --out "$work/p_mf_eval.h5"
assert -v "mean-field below Gauss-Markov; quadrature = closed form; Monte Carlo within 0.1 %" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
e = {n: h5py.File(f"{w}/p_{n}.h5").attrs["elbo"] for n in ("gm", "mf", "quad", "mc")}
print("elbo: " + ", ".join(f"{n} {v:.6e}" for n, v in e.items()))
assert h5py.File(f"{w}/p_mf.h5").attrs["family"] == "mean-field"
assert e["mf"] < e["gm"]
# 20-node quadrature of the Poisson terms is exact to ~1e-15 of their size (test_observation_model)
assert abs(e["quad"] - e["gm"]) < 1e-7 * abs(e["gm"]), e["quad"] - e["gm"]
# Monte Carlo (8 draws per trial, common random numbers): within 0.1 % of the exact objective
assert abs(e["mc"] - e["gm"]) < 1e-3 * abs(e["gm"]), e["mc"] - e["gm"]
PY

# --- Adam instead of the natural-gradient steps: it still climbs, and continues bit for bit from
# a checkpoint (its moments and step count are part of the state) ---
"$spikevi" fit --data "$work/p.h5" --out "$work/adam8.h5" --quiet --optimizer adam \
  --iterations 8 --tolerance 0 --local-max-iterations 20 >/dev/null
"$spikevi" fit --data "$work/p.h5" --out "$work/adam4.h5" --quiet --optimizer adam \
  --iterations 4 --tolerance 0 --local-max-iterations 20 >/dev/null
rm "$work/adam4.h5"
"$spikevi" fit --data "$work/p.h5" --out "$work/adam4.h5" --quiet --optimizer adam \
  --iterations 8 --tolerance 0 --local-max-iterations 20 --restart >/dev/null
assert -v "Adam climbs and continues bit for bit from a checkpoint" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = h5py.File(f"{w}/adam8.h5"), h5py.File(f"{w}/adam4.h5")
elbo = a["elbo"][:]
print(f"adam: elbo {elbo[0]:.6e} -> {elbo[-1]:.6e} in 8 iterations")
assert np.isfinite(elbo).all() and elbo[-1] > elbo[0]
assert a["config"].attrs["optimizer"] == "adam"
for key in ("elbo", "globals/C", "globals/d", "globals/A", "latents/mean"):
    assert np.array_equal(a[key][:], b[key][:], equal_nan=True), key
PY

# --- decoding a behaviour signal from spikes ---
"$spikevi" simulate --out "$work/beh.h5" --trials 100 --bins 80 --neurons 60 --seed 7 \
  --behavior 2 >/dev/null
"$spikevi" fit --data "$work/beh.h5" --out "$work/beh_fit.h5" --quiet --iterations 60 >/dev/null
check -v "decode behavior from spikes" "$spikevi" decode --data "$work/beh.h5" \
  --fit "$work/beh_fit.h5" --target behavior --out "$work/dec.h5"
assert -v "decoding: R^2 within 0.1 of the oracle's, 95 % interval covers 90-98 %" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/dec.h5") as f, h5py.File(f"{w}/beh.h5") as d:
    a = f["decoded"].attrs
    r2, oracle, cover = a["r_squared"], a["oracle_r_squared"], a["coverage"]
    source = a["readout_from"]
    test = d["split/test_trials"][:]
    assert f["decoded/mean"].shape == (len(test), d["counts"].shape[1], 2)
    assert (f["decoded/lower"][:] <= f["decoded/upper"][:]).all(where=~np.isnan(f["decoded/lower"][:]))
print(f"decode: R^2 {r2:.4f}, oracle {oracle:.4f}, coverage {cover:.4f}")
assert source == "spike-latents", source
assert abs(r2 - oracle) < 0.1, (r2, oracle)
assert 0.93 <= cover <= 0.97, cover  # the issue's target band for an honest 95 % interval
PY
# The fit's own fused readout (--readout-from fit), and a spikes-only fit, which only the
# refitted readout can decode from.
"$spikevi" fit --data "$work/beh.h5" --out "$work/beh_spikes.h5" --quiet --iterations 60 \
  --ignore-continuous >/dev/null
check "decode with the fit's fused readout" "$spikevi" decode --data "$work/beh.h5" \
  --fit "$work/beh_fit.h5" --target behavior --out "$work/dec_fused.h5" --readout-from fit
check "decode from a spikes-only fit" "$spikevi" decode --data "$work/beh.h5" \
  --fit "$work/beh_spikes.h5" --target behavior --out "$work/dec_spikes.h5"
fails_with 2 "--readout-from fit needs the modality in the fit" "has no Gaussian modality" \
  "$spikevi" decode --data "$work/beh.h5" --fit "$work/beh_spikes.h5" --target behavior \
  --out "$work/dec_none.h5" --readout-from fit
assert "fused and spikes-only decodings: labelled, R^2 near the oracle, 90-98 % coverage" \
  "$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
for name, source in (("dec_fused", "fit"), ("dec_spikes", "spike-latents")):
    with h5py.File(f"{w}/{name}.h5") as f:
        a = f["decoded"].attrs
        assert a["readout_from"] == source, (name, a["readout_from"])
        assert f["decoded/noise_variances"].shape == (2,)
        print(f"{name}: R^2 {a['r_squared']:.4f}, coverage {a['coverage']:.4f}")
        assert abs(a["r_squared"] - a["oracle_r_squared"]) < 0.1
        assert 0.90 <= a["coverage"] <= 0.98
PY
assert -v "lagged ridge baseline: recomputed independently, and the fit beats it" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/dec.h5") as f, h5py.File(f"{w}/beh.h5") as d:
    a = f["decoded"].attrs
    ridge, lags, reported, r2 = a["ridge_penalty"], int(a["ridge_lags"]), a["ridge_r_squared"], a["r_squared"]
    counts, y = d["counts"][:].astype(float), d["continuous/behavior"][:]
    train, test = d["split/train_trials"][:], d["split/test_trials"][:]
def lagged(x):  # x: T x N -> T x N(lags+1), zeros before the start
    cols = [np.vstack([np.zeros((l, x.shape[1])), x[:len(x) - l]]) for l in range(lags + 1)]
    return np.hstack(cols)
X = np.vstack([lagged(counts[k]) for k in train]); Y = np.vstack([y[k] for k in train])
mu, sd = X.mean(0), X.std(0); sd[sd == 0] = 1
Z = (X - mu) / sd
W = np.linalg.solve(Z.T @ Z + ridge * len(Z) * np.eye(Z.shape[1]), Z.T @ (Y - Y.mean(0)))
pred = np.vstack([(lagged(counts[k]) - mu) / sd @ W + Y.mean(0) for k in test])
obs = np.vstack([y[k] for k in test])
mine = 1 - ((obs - pred) ** 2).sum() / ((obs - obs.mean(0)) ** 2).sum()
print(f"ridge R^2 {reported:.6f} (numpy {mine:.6f}, penalty {ridge:g}), fit R^2 {r2:.4f}")
assert abs(mine - reported) < 1e-8, (mine, reported)
assert r2 > reported, (r2, reported)
PY

# --- two Gaussian modalities at once (the second one a noisy copy of the first, with other
# missing values), each with its own readout and noise; --ignore-continuous fits spikes only ---
"$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
rng = np.random.default_rng(1)
with h5py.File(f"{w}/beh.h5") as f, h5py.File(f"{w}/two.h5", "w") as g:
    for name in ("counts", "trial_lengths", "split/train_trials", "split/test_trials",
                 "split/heldout_neurons", "continuous/behavior"):
        g[name] = f[name][:]
    g["counts"].attrs["bin_width_s"] = f["counts"].attrs["bin_width_s"]
    calcium = f["continuous/behavior"][:, :, :1] * 2.0 + rng.normal(0, 1.0, (100, 80, 1))
    calcium[rng.random(calcium.shape) < 0.2] = np.nan
    g["continuous/calcium"] = calcium
PY
"$spikevi" fit --data "$work/two.h5" --out "$work/two_fit.h5" --quiet --iterations 30 >/dev/null
"$spikevi" fit --data "$work/two.h5" --out "$work/spikes_only.h5" --quiet --iterations 30 \
  --ignore-continuous >/dev/null
assert -v "two modalities: each its own noise; --ignore-continuous fits spikes only" \
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/two_fit.h5") as f, h5py.File(f"{w}/spikes_only.h5") as s:
    R_b = f["globals/continuous/behavior/R"][:]
    R_c = f["globals/continuous/calcium/R"][:]
    print(f"two modalities: R behavior {R_b.round(3)}, calcium {R_c.round(3)}")
    assert f["globals/continuous/calcium/W"].shape == (1, 4)
    # calcium = 2 x behaviour channel 0 + N(0, 1): its R lies between 1 (the latents take up the
    # behaviour noise, which both modalities see) and 1 + 4 x 0.1 plus what the latents miss;
    # either way an order of magnitude above behaviour's (true 0.1)
    assert (R_b < 0.3).all() and 0.8 < R_c[0] < 2.0, (R_b, R_c)
    assert "continuous" not in s["globals"]
PY

# --- known inputs B u_t: using /inputs explains the latent pulses better than leaving them out ---
"$spikevi" simulate --out "$work/in.h5" --trials 40 --bins 80 --neurons 40 --seed 8 \
  --inputs 2 >/dev/null
"$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
with h5py.File(f"{w}/in.h5") as f, h5py.File(f"{w}/noin.h5", "w") as g:
    for name in ("counts", "trial_lengths", "split/train_trials", "split/test_trials",
                 "split/heldout_neurons"):
        g[name] = f[name][:]
    g["counts"].attrs["bin_width_s"] = f["counts"].attrs["bin_width_s"]
PY
for run in in noin; do
  "$spikevi" fit --data "$work/$run.h5" --out "$work/${run}_fit.h5" --quiet --iterations 60 >/dev/null
done
assert -v "known inputs: B fitted, ELBO above the fit without /inputs" "$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
a, b = h5py.File(f"{w}/in_fit.h5"), h5py.File(f"{w}/noin_fit.h5")
print(f"inputs: elbo/spike {a.attrs['elbo_per_spike']:.5f} with /inputs, "
      f"{b.attrs['elbo_per_spike']:.5f} without")
assert a["globals/B"].shape == (4, 2) and "B" not in b["globals"]
assert a.attrs["elbo_per_spike"] > b.attrs["elbo_per_spike"]
PY
check "evaluate a fit with known inputs" "$spikevi" evaluate --data "$work/in.h5" \
  --fit "$work/in_fit.h5" --out "$work/in_eval.h5"

# --- a restart with shapes, a Gaussian modality, inputs and non-default priors continues bit
# for bit (the checkpoint holds them; the priors come from the command line) ---
"$spikevi" simulate --out "$work/all.h5" --trials 14 --bins 40 --neurons 20 --seed 9 \
  --observation negbin --behavior 2 --behavior-missing 0.1 --inputs 1 >/dev/null
common=(--data "$work/all.h5" --observation negbin --prior-readout-precision 5 --latents 2
        --tolerance 0 --quiet)
"$spikevi" fit "${common[@]}" --iterations 6 --out "$work/all6.h5" >/dev/null
"$spikevi" fit "${common[@]}" --iterations 3 --out "$work/all3.h5" >/dev/null
rm "$work/all3.h5"
"$spikevi" fit "${common[@]}" --iterations 6 --out "$work/all3.h5" --restart >/dev/null
assert "restart with shapes, behaviour, inputs and priors: bitwise equal" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = h5py.File(f"{w}/all6.h5"), h5py.File(f"{w}/all3.h5")
for key in ("elbo", "globals/C", "globals/B", "globals/dispersion", "globals/continuous/behavior/W",
            "globals/continuous/behavior/R", "latents/mean"):
    assert np.array_equal(a[key][:], b[key][:], equal_nan=True), key
assert a.attrs["evidence_laplace"] == b.attrs["evidence_laplace"]
PY

# --- refused combinations ---
fails_with 3 "a fit with inputs refused on data without them" "known input" \
  "$spikevi" evaluate --data "$work/noin.h5" --fit "$work/in_fit.h5" --out "$work/z.h5"
fails_with 2 "closed-form expectations refused for the negative binomial" \
  "closed-form exists only for --observation poisson" \
  "$spikevi" fit --data "$work/nb.h5" --out "$work/x.h5" --observation negbin \
  --expectations closed-form
fails_with 3 "decode refused on data without the modality" "/continuous/behavior" \
  "$spikevi" decode --data "$work/nb.h5" --fit "$work/nb_negbin.h5" --target behavior \
  --out "$work/y.h5"

finish "cli models"
