#!/usr/bin/env python3
"""A data set where history matters (tests/cli/cli_history.sh): held-out neurons' log-rates
depend on the held-in population's count in the previous bin beyond what the smooth latents
carry. Held-in neurons: Poisson with log-rate d + c'z_t + e_nt, z an AR(1) (D = 2, a = 0.95) and
e_nt private white noise (sd 0.6), so part of their fluctuation is fast and private. Held-out
neurons: log-rate d + c'z_t + beta * s_{t-1}, s_t the standardised sum of the held-in counts at
bin t (0 before the trial). A latent-only model can predict the smooth part only; --history 1
sees s_{t-1} itself. Usage: history_coupling_data.py OUT.h5 [SEED]"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
trials, bins, held_in, held_out, dim = 40, 80, 20, 6, 2
beta = 0.6
neurons = held_in + held_out
C = rng.normal(0.0, 0.5, size=(neurons, dim))
d = np.log(rng.uniform(0.4, 1.2, size=neurons))
counts = np.zeros((trials, bins, neurons), dtype=np.int32)
latents = np.zeros((trials, bins, dim))
for k in range(trials):
    z = latents[k]
    z[0] = rng.normal(0.0, 1.0, dim)
    for t in range(1, bins):
        z[t] = 0.95 * z[t - 1] + rng.normal(0.0, np.sqrt(1 - 0.95 ** 2), dim)
    eta_in = d[:held_in] + z @ C[:held_in].T + rng.normal(0.0, 0.6, (bins, held_in))
    counts[k, :, :held_in] = rng.poisson(np.exp(eta_in))
# the standardised held-in sum, its moments over every bin of every trial
total = counts[:, :, :held_in].sum(axis=2).astype(float)
s = (total - total.mean()) / total.std()
previous = np.zeros_like(s)
previous[:, 1:] = s[:, :-1]
for k in range(trials):
    eta_out = d[held_in:] + latents[k] @ C[held_in:].T + beta * previous[k][:, None]
    counts[k, :, held_in:] = rng.poisson(np.exp(eta_out))
with h5py.File(out, "w") as f:
    f.create_dataset("counts", data=counts)
    f["counts"].attrs["bin_width_s"] = 0.02
    f.create_dataset("split/train_trials", data=np.arange(0, 32))
    f.create_dataset("split/test_trials", data=np.arange(32, 40))
    f.create_dataset("split/heldout_neurons", data=np.arange(held_in, neurons))
