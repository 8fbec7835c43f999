#!/usr/bin/env bash
# Build provenance: `spikevi --version`, and the version and git_revision recorded in every
# file the commands write (simulate's data set, the fit file and its checkpoint, evaluate's
# and decode's files, compare's table), are the project's version and
# `git rev-parse --short HEAD` of this checkout. Skipped (77) outside a git checkout.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"

need_commands git
need_python_modules h5py
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null) || skip "$repo is not a git checkout"
[ "$(git -C "$repo" rev-parse --show-toplevel)" -ef "$repo" ] || skip "$repo is inside another checkout"
version=$(sed -n 's/^project(spikevi VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
echo "expecting version $version, git revision $revision"

check "spikevi --version" "$spikevi" --version
holds "--version prints both" "$work/out" "^spikevi $version (git revision $revision)$"

check "simulate" "$spikevi" simulate --out "$work/data.h5" --trials 12 --bins 30 --neurons 12 \
  --behavior 1
check "fit on 2 ranks, checkpoint at the end" timeout -k 10 300 mpirun -np 2 "$spikevi" fit \
  --data "$work/data.h5" --latents 2 --iterations 3 --tolerance 0 --checkpoint-every 0 --quiet \
  --out "$work/fit.h5"
check "evaluate" "$spikevi" evaluate --data "$work/data.h5" --fit "$work/fit.h5" --out "$work/eval.h5"
check "decode" "$spikevi" decode --data "$work/data.h5" --fit "$work/fit.h5" --target behavior \
  --out "$work/decode.h5"
check "compare" "$spikevi" compare --data "$work/data.h5" --models poisson --folds 2 --latents 2 \
  --iterations 3 --quiet --table "$work/table.csv"

tally "recorded provenance" "$python" - "$work" "$version" "$revision" <<'PY'
import csv, sys, h5py
work, version, revision = sys.argv[1:]
def verdict(name, got):
    want = {"version": version, "git_revision": revision}
    if got == want:
        print(f"ok: {name}: {got}")
    else:
        print(f"FAIL: {name}: recorded {got}, expected {want}")
def text(value):
    return value.decode() if isinstance(value, bytes) else value
for name in ("data.h5", "fit.h5", "fit.h5.checkpoint.h5", "eval.h5", "decode.h5"):
    with h5py.File(f"{work}/{name}") as f:
        verdict(name, {k: text(f.attrs.get(k)) for k in ("version", "git_revision")})
with open(f"{work}/table.csv") as f:
    for row in csv.DictReader(f):
        verdict(f"table.csv row {row['observation']}", {k: row.get(k) for k in ("version", "git_revision")})
PY
finish "cli_provenance"
