#!/usr/bin/env bash
# End to end through the command line: simulate -> fit -> evaluate, the output files' layout,
# --help, --config precedence, and refusal of bad options and inputs with one clear line.
set -euo pipefail
spikevi=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
failures=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@" >"$work/out" 2>&1; then echo "ok: $what"; else echo "FAIL: $what"; cat "$work/out"; failures=$((failures + 1)); fi
}
refuses() {  # refuses DESCRIPTION PATTERN COMMAND...: non-zero exit, one stderr line matching
  local what=$1 pattern=$2; shift 2
  if "$@" >"$work/out" 2>"$work/err"; then
    echo "FAIL: $what (exit 0)"; failures=$((failures + 1)); return
  fi
  if [ "$(wc -l <"$work/err")" -ne 1 ] || ! grep -q -- "$pattern" "$work/err"; then
    echo "FAIL: $what: expected one line matching '$pattern', got:"; cat "$work/err"
    failures=$((failures + 1)); return
  fi
  echo "ok: $what"
}

for cmd in simulate fit evaluate; do check "$cmd --help" "$spikevi" $cmd --help; done
check "simulate" "$spikevi" simulate --out "$work/data.h5" --trials 12 --bins 50 --neurons 30
check "fit under mpirun -np 1" mpirun -np 1 "$spikevi" fit --data "$work/data.h5" --latents 3 \
  --iterations 5 --tolerance 0 --out "$work/fit.h5"
grep -c "^iter" "$work/out" | grep -qx 5 && echo "ok: five progress lines" || { echo "FAIL: progress lines"; failures=$((failures + 1)); }
check "evaluate" "$spikevi" evaluate --data "$work/data.h5" --fit "$work/fit.h5" --out "$work/eval.h5"
grep -q "baseline" "$work/out" && grep -q "true parameters" "$work/out" && echo "ok: evaluate prints the references" || { echo "FAIL: evaluate output"; cat "$work/out"; failures=$((failures + 1)); }

/usr/bin/python3 - "$work" <<'PY' || failures=$((failures + 1))
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
print("ok: output layout")
PY

printf 'latents = 7\niterations = 2\n' >"$work/run.ini"
check "--config, overridden by the command line" "$spikevi" fit --config "$work/run.ini" \
  --data "$work/data.h5" --latents 2 --out "$work/fit2.h5" --quiet
/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['globals/C'].shape[1]==2 and f['elbo'].shape==(2,)" "$work/fit2.h5" \
  && echo "ok: config keys apply, flags win" || { echo "FAIL: config precedence"; failures=$((failures + 1)); }

cp "$work/fit.h5" "$work/fit.keep"
refuses "existing output without --overwrite" "already exists" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/fit.h5" --iterations 1
cmp -s "$work/fit.h5" "$work/fit.keep" && echo "ok: existing output untouched" || { echo "FAIL: output changed"; failures=$((failures + 1)); }
refuses "output in a missing folder" "does not exist" \
  "$spikevi" fit --data "$work/data.h5" --out "$work/nowhere/fit.h5"
refuses "negative latents" "latents" "$spikevi" fit --data "$work/data.h5" --latents -1 --out "$work/x.h5"
refuses "unknown option" "unrecognised\|unrecognized" "$spikevi" fit --data "$work/data.h5" --out "$work/x.h5" --bogus 1
refuses "missing data file" "no such file" "$spikevi" fit --data "$work/missing.h5" --out "$work/x.h5"
echo "not hdf5" >"$work/text.h5"
refuses "a file that is not HDF5" "not a readable HDF5" "$spikevi" fit --data "$work/text.h5" --out "$work/x.h5"
/usr/bin/python3 - "$work" <<'PY'
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
[ ! -e "$work/x.h5" ] && [ ! -e "$work/x.h5.tmp" ] && echo "ok: no output left by failed runs" || { echo "FAIL: stray output"; failures=$((failures + 1)); }

echo "cli end-to-end: $failures failure(s)"
[ "$failures" -eq 0 ]
