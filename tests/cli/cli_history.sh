#!/usr/bin/env bash
# fit --history K (docs/model-and-inference.md "History terms"): where held-out neurons depend
# on the held-in population's previous bin beyond the latents, the history fit co-smooths
# better; --history 0 is bitwise the fit without the option; a restarted history fit equals the
# uninterrupted one and 1, 2, 4 ranks agree bit for bit; evaluate, decode and compare take it;
# unsupported combinations are refused naming the options.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_python_modules h5py numpy
here="$(cd "$(dirname "$0")" && pwd)"
cd "$work"
"$python" "$here/history_coupling_data.py" coupled.h5 7
fit() { timeout -k 10 300 mpirun -np "$1" "$spikevi" fit --latents 2 --quiet "${@:2}"; }
fit1() { timeout -k 10 300 "$spikevi" fit --latents 2 --quiet "$@"; }  # one rank, no mpirun
cobps() { "$python" -c "import h5py,sys; print(h5py.File(sys.argv[1])['cosmoothing'].attrs['bits_per_spike'])" "$1"; }

# 1. History matters: co-smoothing with --history 1 beats the latent-only fit.
fit 1 --data coupled.h5 --out plain.h5 --iterations 60 >/dev/null
fit 1 --data coupled.h5 --out hist.h5 --iterations 60 --history 1 >/dev/null
check "evaluate the latent-only fit" "$spikevi" evaluate --data coupled.h5 --fit plain.h5 --out plain_eval.h5
check "evaluate the history fit" "$spikevi" evaluate --data coupled.h5 --fit hist.h5 --out hist_eval.h5
plain=$(cobps plain_eval.h5)
hist=$(cobps hist_eval.h5)
echo "co-bps: latent-only $plain, --history 1 $hist"
# The held-out neurons' log-rates carry 0.6 x the standardised held-in count of the previous
# bin: knowing it is worth ~0.1 bits/spike on these data (measured 0.09-0.13 over seeds); a
# margin of 0.03 is well above the run-to-run spread of either score, and the history fit
# must stay well below the Poisson-noise ceiling, i.e. not leak the held-out test spikes.
assert "the history fit co-smooths better by > 0.03 bits/spike ($hist vs $plain)" \
  "$python" -c "import sys; sys.exit(0 if float('$hist') > float('$plain') + 0.03 else 1)"
assert "B is [26, 4] and the rows are the 20 held-in neurons" "$python" -c "
import h5py, sys; g = h5py.File('hist.h5')['globals/history']
sys.exit(0 if g['B'].shape == (26, 4) and list(g['rows'][:]) == list(range(20)) and g.attrs['lags'] == 1 else 1)"
assert "the full-batch history fit's ELBO never drops" "$python" -c "
import h5py, numpy as np, sys; e = h5py.File('hist.h5')['elbo'][:]
sys.exit(0 if np.all(np.diff(e) >= -1e-9 * np.abs(e[1:])) else 1)"

# 2. --history 0 is the fit without the option, bit for bit.
fit 1 --data coupled.h5 --out zero.h5 --iterations 60 --history 0 >/dev/null
same_fit plain.h5 zero.h5 "--history 0 vs no --history"

# 3. Restart and rank counts: 12 iterations straight vs 6 + 6 more (on another rank count),
#    and 1, 2, 4 ranks, with minibatches too.
h=(--data coupled.h5 --history 2 --history-components 3 --tolerance 0)
fit 1 "${h[@]}" --iterations 12 --out straight.h5 >/dev/null
fit 2 "${h[@]}" --iterations 6 --out part.h5 >/dev/null
fit 1 "${h[@]}" --iterations 12 --out part.h5 --restart >/dev/null
same_fit straight.h5 part.h5 "history: 12 iterations vs 6 on 2 ranks + 6 more on 1"
for ranks in 2 4; do
  fit $ranks "${h[@]}" --iterations 12 --out straight$ranks.h5 >/dev/null
  same_fit straight.h5 straight$ranks.h5 "history: 1 rank vs $ranks ranks"
done
mini=(--minibatch 8 --step-kappa 0.6 --seed 4)
fit 1 "${h[@]}" "${mini[@]}" --iterations 10 --out mini1.h5 >/dev/null
fit 4 "${h[@]}" "${mini[@]}" --iterations 10 --out mini4.h5 >/dev/null
same_fit mini1.h5 mini4.h5 "history minibatch: 1 rank vs 4 ranks"
fails_with 2 "a plain fit's checkpoint is not continued with --history" "history" \
  fit1 --data coupled.h5 --iterations 20 --out plain.h5 --restart --history 2

# 4. decode (latents from every row with its offsets) on a file with a behaviour channel.
"$spikevi" simulate --out behave.h5 --trials 16 --bins 40 --neurons 20 --behavior 1 --seed 2 >/dev/null
fit 1 --data behave.h5 --out behave_fit.h5 --iterations 20 --history 2 >/dev/null
check "decode a history fit" "$spikevi" decode --data behave.h5 --fit behave_fit.h5 --target behavior --out decode.h5
check "evaluate a history fit with continuous modalities" "$spikevi" evaluate --data behave.h5 --fit behave_fit.h5 --out behave_eval.h5

# 5. compare --history 0,1: the axis in the table, the winner refitted with its lags.
check -v "compare --history 0,1" timeout -k 10 300 "$spikevi" compare --data coupled.h5 --models poisson \
  --latents 2 --history 0,1 --folds 2 --iterations 30 --samples 4 --table table.csv --best-out best.h5 --quiet
holds "the table has both rows" table.csv "^poisson," "^poisson+history1,"
assert "the winner is the history candidate, refitted with --history 1" "$python" -c "
import h5py, sys; f = h5py.File('best.h5')
sys.exit(0 if f['config'].attrs['history'] == '1' and 'globals/history/B' in f else 1)"

# A grid crossing --readout linear,mlp with --history 0,1 leaves out the one combination no fit
# supports (the MLP readout with history terms), says so, and runs the other three.
check -v "compare --readout linear,mlp --history 0,1" timeout -k 10 300 "$spikevi" compare \
  --data behave.h5 --models poisson --latents 2 --readout linear,mlp --hidden 3 --history 0,1 \
  --folds 2 --iterations 5 --table grid.csv --quiet
holds "the MLP + history candidate is left out with its reason" "$work/out" \
  "left out .*mlp readout.*history K = 1: --history with --readout mlp"
holds "the other three are in the table" grid.csv "^poisson," "^poisson+history1," "^poisson+mlp,"
assert "exactly three rows" "$python" -c "
import csv, sys; rows = list(csv.DictReader(open('grid.csv')))
sys.exit(0 if len(rows) == 3 else 1)"

# 6. Refusals naming the options.
refuses "--history with --readout mlp" "history" fit1 --data coupled.h5 --out x.h5 --history 2 --readout mlp
refuses "--history with --accelerate squarem" "history" fit1 --data coupled.h5 --out x.h5 --history 2 --accelerate squarem
refuses "--history with --optimizer adam" "history" fit1 --data coupled.h5 --out x.h5 --history 2 --optimizer adam
refuses "--history-components above the held-in count" "history-components" fit1 --data coupled.h5 --out x.h5 --history 2 --history-components 21
finish "history terms"
