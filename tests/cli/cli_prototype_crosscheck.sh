#!/usr/bin/env bash
# Cross-check against the numpy yardstick of DESIGN.md §1-3 (../shared/reference/prototype):
# on the same file, with the same priors and initialisation, `spikevi fit` must reproduce the
# prototype's objective trace to 1e-9 relative (both are the same deterministic VB-EM; the
# observed agreement is ~5e-13). Skipped (exit 77) when the prototype is not beside the repo.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
prototype=$(cd "$repo/.." && pwd)/shared/reference/prototype
[ -f "$prototype/check.py" ] || skip "prototype not found at $prototype"
"$spikevi" simulate --out "$work/data.h5" --trials 16 --bins 60 --neurons 30 --seed 3 >/dev/null
"$spikevi" fit --data "$work/data.h5" --latents 3 --iterations 8 --tolerance 0 --quiet \
  --out "$work/fit.h5" >/dev/null
OPENBLAS_NUM_THREADS=1 "$python" "$prototype/check.py" fit "$work/data.h5" --D 3 \
  --iters 8 --eval "" --out "$work/prototype.json" >/dev/null
assert -v "the ELBO trace equals the prototype's to 1e-9 relative" "$python" - "$work" <<'PY'
import json, sys, h5py, numpy as np
w = sys.argv[1]
ours = h5py.File(f"{w}/fit.h5")["elbo"][:]
theirs = np.array(json.load(open(f"{w}/prototype.json"))["F_local"])
rel = np.abs(ours - theirs) / np.abs(theirs)
for i, (a, b, r) in enumerate(zip(ours, theirs, rel), 1):
    print(f"iteration {i}: spikevi {a:.10f}  prototype {b:.10f}  relative difference {r:.1e}")
assert len(ours) == len(theirs) == 8
assert rel.max() < 1e-9, rel.max()
PY

finish "cli prototype cross-check"
