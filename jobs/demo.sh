#!/usr/bin/env bash
# The demo job: install what is missing, build, simulate the default data set, fit it,
# evaluate co-smoothing beside the baseline and the true parameters.
# Outputs go to build/demo/ (override with SPIKEVI_DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPIKEVI_NATIVE=ON >/dev/null
cmake --build build -j "$(nproc)" --target spikevi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
out=${SPIKEVI_DEMO_DIR:-build/demo}
mkdir -p "$out"
build/spikevi simulate --out "$out/data.h5" --overwrite
mpirun -np 1 build/spikevi fit --data "$out/data.h5" --latents 4 --iterations 50 \
  --out "$out/fit.h5" --overwrite
build/spikevi evaluate --data "$out/data.h5" --fit "$out/fit.h5" --out "$out/eval.h5" --overwrite
