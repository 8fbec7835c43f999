#!/usr/bin/env bash
# End to end through the command line: simulate -> fit -> evaluate, the output files' layout,
# --help, --config precedence, and refusal of bad options and inputs with one clear line.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"

for cmd in simulate fit evaluate compare decode; do
  check "$cmd --help" "$spikevi" $cmd --help
  holds "$cmd --help names its documentation" "$work/out" "^Documentation: .*outputs: docs/output-files.md#"
  # every docs page and anchor it names exists: the file, and a heading that makes the anchor
  for ref in $(grep -o 'docs/[a-z-]*\.md\(#[a-z-]*\)\?' "$work/out" | sort -u); do
    file=${ref%%#*} anchor=${ref#*#}
    assert "$cmd --help: $ref exists" test -f "$repo/$file"
    if [ "$anchor" != "$ref" ]; then
      assert "$cmd --help: $ref is a heading" /usr/bin/python3 - "$repo/$file" "$anchor" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", text, re.M)}
sys.exit(0 if sys.argv[2] in anchors else 1)
PY
    fi
  done
done
check "simulate" "$spikevi" simulate --out "$work/data.h5" --trials 12 --bins 50 --neurons 30
check "fit under mpirun -np 1" timeout -k 10 300 mpirun -np 1 "$spikevi" fit \
  --data "$work/data.h5" --latents 3 --iterations 5 --tolerance 0 --out "$work/fit.h5"
assert "five progress lines" test "$(grep -c "^iter" "$work/out")" -eq 5
check "evaluate" "$spikevi" evaluate --data "$work/data.h5" --fit "$work/fit.h5" --out "$work/eval.h5"
holds "evaluate prints the references" "$work/out" "baseline: smoothed spikes" \
  "baseline: NLB-style" "the stronger baseline here is the .* one; the fit \(beats\|trails\) it by" \
  "true parameters" "posterior-predictive coverage of the held-out test counts"

assert "output layout" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/fit.h5") as f:
    assert f["elbo"].shape == (5,), f["elbo"].shape
    for k in ("C", "d", "A", "b", "Q", "mu0", "Sigma0", "readout_covariance"):
        assert "globals/" + k in f, k
    C = f["globals/C"][:]
    assert C.shape == (30, 3)
    assert np.allclose(C.T @ C, np.eye(3), atol=1e-8), "canonical gauge: orthonormal columns"
    assert f["latents/mean"].shape == (10, 50, 3) and f["latents/cov"].shape == (10, 50, 3, 3)
    for k in ("version", "git_revision", "date", "ranks", "elbo", "evidence_laplace"):
        assert k in f.attrs, k
    assert f["config"].attrs["latents"] == "3"
with h5py.File(f"{w}/eval.h5") as f, h5py.File(f"{w}/data.h5") as d:
    r = f["cosmoothing/rates"]
    assert r.shape == (len(d["split/test_trials"]), 50, len(d["split/heldout_neurons"])), r.shape
    assert np.isfinite(f["cosmoothing"].attrs["bits_per_spike"])
    # both baselines, and the margin over the stronger one
    scores = {g: f[g].attrs["bits_per_spike"] for g in ("baseline", "baseline_log")}
    assert f["baseline_log/rates"].shape == r.shape
    stronger = f["cosmoothing"].attrs["stronger_baseline"]
    stronger = stronger.decode() if isinstance(stronger, bytes) else stronger
    assert stronger.strip("/") == max(scores, key=scores.get), (stronger, scores)
    margin = f["cosmoothing"].attrs["margin_over_stronger_baseline"]
    assert abs(margin - (f["cosmoothing"].attrs["bits_per_spike"] - max(scores.values()))) < 1e-12
    # predictive coverage: levels, pooled and per-neuron figures in [0, 1], increasing in level
    levels, pooled = f["coverage/levels"][:], f["coverage/pooled"][:]
    assert list(levels) == [0.5, 0.8, 0.95], levels
    assert f["coverage/per_neuron"].shape == (len(d["split/heldout_neurons"]), 3)
    assert ((0 <= pooled) & (pooled <= 1)).all() and (np.diff(pooled) >= 0).all(), pooled
    assert f["coverage"].attrs["scored_counts"] == np.isfinite(r[:]).sum()
PY

printf 'latents = 7\niterations = 2\n' >"$work/run.ini"
check "--config, overridden by the command line" "$spikevi" fit --config "$work/run.ini" \
  --data "$work/data.h5" --latents 2 --out "$work/fit2.h5" --quiet
assert "config keys apply, flags win" "$python" -c "import h5py,sys; f=h5py.File(sys.argv[1]);
assert f['globals/C'].shape[1]==2 and f['elbo'].shape==(2,)" "$work/fit2.h5"

cp "$work/fit.h5" "$work/fit.keep"
refuses "existing output without --overwrite" "already exists" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/fit.h5" --iterations 1
assert "existing output untouched" cmp "$work/fit.h5" "$work/fit.keep"
refuses "output in a missing folder" "does not exist" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/nowhere/fit.h5"
refuses "negative latents" "latents" "$spikevi" fit --data "$work/data.h5" --latents -1 --out "$work/x.h5"
refuses "unknown option" "unrecognised\|unrecognized" "$spikevi" fit --data "$work/data.h5" --out "$work/x.h5" --bogus 1
refuses "missing data file" "no such file" "$spikevi" fit --data "$work/missing.h5" --out "$work/x.h5"
echo "not hdf5" >"$work/text.h5"
refuses "a file that is not HDF5" "not a readable HDF5" "$spikevi" fit --data "$work/text.h5" --out "$work/x.h5"
"$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/negative.h5", "w") as f:
    c = np.zeros((2, 5, 4), dtype=np.int32); c[1, 2, 3] = -2
    f["counts"] = c; f["counts"].attrs["bin_width_s"] = 0.02
with h5py.File(f"{w}/nocounts.h5", "w") as f:
    f.attrs["bin_width_s"] = 0.02; f["spikes"] = np.zeros((2, 5, 4), dtype=np.int32)
PY
refuses "negative count" "/counts" "$spikevi" fit --data "$work/negative.h5" --out "$work/x.h5"
refuses "missing /counts" "/counts" "$spikevi" fit --data "$work/nocounts.h5" --out "$work/x.h5"
assert "no output left by failed runs" test ! -e "$work/x.h5" -a ! -e "$work/x.h5.tmp"

finish "cli end-to-end"
