#!/usr/bin/env bash
# Fuzzing `spikevi fit` (issue 19): a few hundred mutants of a small valid data file, drawn with
# a fixed seed, each fitted under `timeout` (most serially, a share under mpirun -np 2). Byte-level
# mutants flip, overwrite, zero or cut bytes of the file; structural ones (h5py) rewrite its
# datasets with other types, shapes, extreme or non-finite values, empty or huge extents,
# missing or odd attributes. Every run must either succeed with a readable output whose
# ELBO and globals are finite, or exit with a documented refusal status (2 bad option, 3 bad
# input file, 4 numerical failure, 5 output failure) and exactly one "spikevi: error:" line;
# never a signal (exit >= 128), an internal error (exit 1), a hang (timeout), or a changed input
# file. SPIKEVI_FUZZ_MUTANTS (default 300) and SPIKEVI_FUZZ_SEED (default 19) vary the sample.
set -uo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_commands mpirun timeout
need_python_modules h5py numpy

d=$work/data
mkdir -p "$d"
"$spikevi" simulate --trials 6 --bins 16 --neurons 8 --latents 2 --out "$d/good.h5" \
  >"$work/setup.log" 2>&1 </dev/null || abort "could not simulate the data set" "$work/setup.log"
tally "the fuzz runs" "$python" "$(dirname "$0")/fuzz/fuzz_fit.py" "$spikevi" "$d/good.h5" \
  "$work/runs" "${SPIKEVI_FUZZ_MUTANTS:-300}" "${SPIKEVI_FUZZ_SEED:-19}"
finish "cli fuzz"
