# Shared set-up of the tutorials (sourced, not run). Each tutorial is
#   bash jobs/tutorials/NAME.sh [--quick] [--out DIR]
# --quick shrinks the data so that CI can run every tutorial in seconds (tests/cli/cli_tutorials.sh);
# the README's figures are from the full size. Outputs go to DIR (default build/tutorials/NAME).
# SPIKEVI names the binary (default build/spikevi; build it first: bash jobs/demo.sh, or
# cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target spikevi).
set -euo pipefail
tutorial_name=$(basename "$0" .sh)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
quick=0
out=""
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "$tutorial_name: unknown option '$1' (use --quick, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$repo/build/tutorials/$tutorial_name}
mkdir -p "$out"
out=$(cd "$out" && pwd)
spikevi=${SPIKEVI:-$repo/build/spikevi}
if [[ ! -x "$spikevi" ]]; then
  echo "$tutorial_name: no spikevi binary at $spikevi: build it first (bash jobs/demo.sh)," \
    "or set SPIKEVI" >&2
  exit 2
fi
python=${PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
cd "$out"

# size QUICK FULL: the value for this run
size() { if ((quick)); then echo "$1"; else echo "$2"; fi; }
# step TEXT: a heading in the output
step() { printf '\n== %s\n' "$*"; }
# figure NAME VALUE: a key figure, one line each, that tests/cli/cli_tutorials.sh reads
figure() { printf 'figure %s = %s\n' "$1" "$2"; }
# attribute FILE PATH NAME: an HDF5 attribute printed as text
attribute() {
  "$python" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); print(f[sys.argv[2]].attrs[sys.argv[3]])' "$@"
}
