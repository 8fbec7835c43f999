#!/usr/bin/env python3
"""Data for the posterior-collapse demonstration (jobs/collapse_demo.sh, issue 14 point 5): slow
latents and a strong autoregressive (history) coupling, the setting in which a decoder with
history terms can explain the counts from the population's own past.

D latents z_t, each an AR(1) with coefficient A (stationary variance 1). Every neuron n (held-in
and held-out) has the log-rate
    eta_nt = d_n + c_n' z_t + g * w_n' s_{t-1},   s_t = (x_t^in - mean) / sd   (0 at t = 0),
x_t^in the held-in counts at bin t, mean and sd per held-in neuron over the first trials' bins
(a running estimate, so the generator stays one pass), w_n ~ N(0, I/H) and g the coupling gain;
eta is clipped at log(8) so the self-excitation cannot run away. Splits: the last fifth of the
trials are test trials, the last `heldout` neurons are held out.
Usage: collapse_data.py OUT.h5 [SEED] [GAIN] [A] [D]"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
gain = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
a = float(sys.argv[4]) if len(sys.argv) > 4 else 0.98
dim = int(sys.argv[5]) if len(sys.argv) > 5 else 2
rng = np.random.default_rng(seed)
trials, bins, held_in, held_out = 60, 100, 40, 10
neurons = held_in + held_out
C = rng.normal(0.0, 0.6, size=(neurons, dim))
d = np.log(rng.uniform(0.3, 1.0, size=neurons))
W = rng.normal(0.0, 1.0 / np.sqrt(held_in), size=(neurons, held_in))
# The held-in neurons' mean and sd under the latent-only model (E exp(eta) = exp(d + |c|^2/2)):
# the standardisation of s_t, fixed before any bin is drawn.
mean = np.exp(d[:held_in] + 0.5 * (C[:held_in] ** 2).sum(axis=1))
sd = np.sqrt(mean + mean ** 2 * (np.exp((C[:held_in] ** 2).sum(axis=1)) - 1.0))
latents = np.zeros((trials, bins, dim))  # every trial's AR(1) paths at once
latents[:, 0] = rng.normal(0.0, 1.0, (trials, dim))
for t in range(1, bins):
    latents[:, t] = a * latents[:, t - 1] + np.sqrt(1 - a ** 2) * rng.normal(0.0, 1.0, (trials, dim))
counts = np.zeros((trials, bins, neurons), dtype=np.int32)
for k in range(trials):
    previous = np.zeros(held_in)
    for t in range(bins):
        eta = np.minimum(d + C @ latents[k, t] + gain * W @ previous, np.log(8.0))
        counts[k, t] = rng.poisson(np.exp(eta))
        previous = (counts[k, t, :held_in] - mean) / sd
test = trials // 5
with h5py.File(out, "w") as f:
    f.create_dataset("counts", data=counts)
    f["counts"].attrs["bin_width_s"] = 0.02
    f.create_dataset("split/train_trials", data=np.arange(0, trials - test))
    f.create_dataset("split/test_trials", data=np.arange(trials - test, trials))
    f.create_dataset("split/heldout_neurons", data=np.arange(held_in, neurons))
print(f"{out}: {trials} trials x {bins} bins x {neurons} neurons ({held_out} held out), D = {dim}, "
      f"A = {a}, gain {gain}; mean count per bin {counts.mean():.3f}")
