# Shared mechanics of the end-to-end scripts tests/cli/cli_*.sh; each script starts with
#   source "$(dirname "$0")/harness.sh" "$@"
# (this file must never match cli_*.sh: tests/CMakeLists.txt runs those as tests). It gives
#   $spikevi  the binary under test (the script's first argument, made absolute)
#   $python   the system Python (the one with h5py and numpy)
#   $repo     the repository root (tests/cli/../..)
#   $work     a fresh scratch folder, removed on exit
# and the MPI environment of docs/cluster.md. The functions, in four groups:
#
#   verdicts    ok MESSAGE | fail MESSAGE [FILE...] | abort MESSAGE [FILE...] | skip REASON
#               check [-v] DESCRIPTION COMMAND...       the command must succeed (-v: show
#                                                       its output also when it does)
#               assert [-v] DESCRIPTION COMMAND...      the same for an inspection (a test, a
#                                                       Python verdict): leaves $work/out alone
#               holds DESCRIPTION FILE PATTERN...       FILE has a line matching each PATTERN
#               refuses DESCRIPTION PATTERN COMMAND...  non-zero exit, exactly one stderr line,
#                                                       matching PATTERN (grep)
#               fails_with STATUS DESCRIPTION PATTERN COMMAND...
#                                                       exit STATUS (or "any": non-zero and not a
#                                                       timeout), some stderr line matching PATTERN
#                                                       (the ok line quotes the first one)
#               tally DESCRIPTION COMMAND...            a command printing its own ok:/FAIL: lines
#               finish SUMMARY                          prints the count of failures, exits 0 or 1
#               same_fit A.h5 B.h5 DESCRIPTION          two fit files hold the same fit, bitwise
#   needs       need_python_modules MODULE... | need_commands COMMAND...   (else skip, exit 77)
#   output      spikevi_stderr FILE                     FILE without what Open MPI adds when a
#                                                       rank exits non-zero (dashed blocks,
#                                                       "[host:pid] ..." notes)
#   background  spawn VAR LIMIT LOG COMMAND...          starts COMMAND under timeout -k 10 LIMIT,
#                                                       output to LOG; VAR = its PID (timeout's)
#               track PID LIMIT                         a background job started with & (a shell
#                                                       function), bounded by LIMIT seconds
#               await PID                               waits at most the job's bound; returns its
#                                                       exit status (overdue: killed, one failure)
#               await_all | throttle N                  every job / until fewer than N are running
#               signal_job SIGNAL PID                   signals the command spawn started (not its
#                                                       timeout, which would not pass SIGUSR1 on)
#               job_ranks PID                           PIDs of the spikevi processes under the job
#               descendants PID                         every process under PID, parents first
#               all_ended PID...                        none of the processes is running
#               wait_until SECONDS COMMAND...           polls until COMMAND succeeds (status 1 if
#                                                       it never does)
#
# check, refuses, fails_with and tally leave the command's output in $work/out (check, tally:
# stdout and stderr; refuses, fails_with: stdout, and stderr in $work/err) for further
# inspection with holds and assert. Every verdict function returns 0: a failure is counted,
# not fatal (use abort for that).
# On exit (normal, an error under set -e, or a signal) every job still running is stopped with
# its whole process tree, found from the PIDs this script started (never by name), and $work is
# removed; a script that ends with an error before `finish` says where.

spikevi=${1:?usage: $(basename "$0") PATH/TO/spikevi}
[ -f "$spikevi" ] && [ -x "$spikevi" ] || { echo "FAIL: $spikevi is not an executable"; exit 1; }
spikevi=$(cd "$(dirname "$spikevi")" && pwd)/$(basename "$spikevi")  # absolute: scripts cd
python=/usr/bin/python3
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
unset SLURM_NTASKS  # fit refuses to start when it differs from the MPI size

failures=0
harness_started=$SECONDS
harness_finished=0
harness_error=""
declare -gA harness_deadline=()  # PID of every job started in the background -> its deadline

# ---- verdicts

ok() { echo "ok: $*"; }

fail() {  # fail MESSAGE [FILE...]: one failure; the files' contents follow, indented
  local message=$1; shift
  echo "FAIL: $message"
  [ $# -eq 0 ] || sed 's/^/  /' "$@"
  failures=$((failures + 1))
}

abort() {  # abort MESSAGE [FILE...]: a failure after which nothing else can be checked
  fail "$@"
  harness_finished=1
  exit 1
}

skip() { echo "skip: $*"; harness_finished=1; exit 77; }

check() {  # check [-v] DESCRIPTION COMMAND...: the command must succeed (-v: show its output)
  harness_succeeds "$work/out" "$@"
}

assert() {  # assert [-v] DESCRIPTION COMMAND...: as check, for an inspection ($work/out kept)
  harness_succeeds "$work/assert.out" "$@"
}

harness_succeeds() {
  local capture=$1 verbose=0; shift
  [ "$1" != -v ] || { verbose=1; shift; }
  local what=$1; shift
  if "$@" >"$capture" 2>&1; then
    ok "$what"
    [ $verbose = 0 ] || sed 's/^/  /' "$capture"
  else
    local status=$?
    { printf '$'; printf ' %q' "$@"; echo; cat "$capture"; } >"$capture.shown"
    fail "$what (exit $status)" "$capture.shown"
  fi
}

holds() {  # holds DESCRIPTION FILE PATTERN...: FILE has a line matching each PATTERN (grep)
  local what=$1 file=$2 pattern; shift 2
  for pattern in "$@"; do
    if ! grep -q -- "$pattern" "$file"; then
      fail "$what: no line matching '$pattern' in $(basename "$file"):" "$file"
      return 0
    fi
  done
  ok "$what"
}

refuses() {  # refuses DESCRIPTION PATTERN COMMAND...: non-zero exit, one stderr line matching
  local what=$1 pattern=$2; shift 2
  if "$@" >"$work/out" 2>"$work/err"; then
    fail "$what (exit 0)" "$work/out" "$work/err"
  elif [ "$(wc -l <"$work/err")" -ne 1 ] || ! grep -q -- "$pattern" "$work/err"; then
    fail "$what: expected one stderr line matching '$pattern', got:" "$work/err"
  else
    ok "$what"
  fi
}

fails_with() {  # fails_with STATUS DESCRIPTION PATTERN COMMAND...
  local want=$1 what=$2 pattern=$3 status=0; shift 3
  "$@" >"$work/out" 2>"$work/err" || status=$?
  if [ "$want" = any ] && { [ $status -eq 0 ] || [ $status -eq 124 ] || [ $status -eq 137 ]; }; then
    fail "$what: exit $status, expected a refusal (non-zero, not a timeout)" "$work/err"
  elif [ "$want" != any ] && [ $status -ne "$want" ]; then
    fail "$what: exit $status, expected $want" "$work/err"
  elif ! grep -q -- "$pattern" "$work/err"; then
    fail "$what: no stderr line matching '$pattern'" "$work/err"
  else
    ok "$what: $(grep -m1 -- "$pattern" "$work/err")"
  fi
}

tally() {  # tally DESCRIPTION COMMAND...: prints the command's output; each FAIL line counts
  local what=$1 status=0 count; shift
  "$@" >"$work/out" 2>&1 || status=$?
  cat "$work/out"
  count=$(grep -c '^FAIL' "$work/out") || true
  failures=$((failures + count))
  [ $status -eq 0 ] || [ "$count" -gt 0 ] || fail "$what (exit $status)"
}

finish() {  # finish SUMMARY: the verdict line; exit 1 when anything failed
  harness_finished=1
  echo "$*: $failures failure(s), $((SECONDS - harness_started)) s"
  [ "$failures" -eq 0 ] && exit 0
  exit 1
}

need_python_modules() {
  local module
  for module in "$@"; do
    "$python" -c "import $module" 2>/dev/null || skip "$python lacks $module"
  done
}

need_commands() {
  local name
  for name in "$@"; do command -v "$name" >/dev/null || skip "no $name"; done
}

# ---- output

spikevi_stderr() { awk '/^-----+$/ { block = !block; next } !block && !/^\[[^]]*:[0-9]+\] /' "$1"; }

# ---- processes started in the background, known by PID only

spawn() {  # spawn VAR LIMIT LOG COMMAND...
  local -n harness_pid=$1
  local limit=$2 log=$3; shift 3
  timeout -k 10 "$limit" "$@" </dev/null >"$log" 2>&1 &
  harness_pid=$!
  track "$harness_pid" $((limit + 10))
}

track() { harness_deadline[$1]=$((SECONDS + $2 + 5)); }

running() { kill -0 "$1" 2>/dev/null; }  # bash reaps its children as they end

children() { pgrep -P "$1" || true; }

descendants() {
  local child
  for child in $(children "$1"); do
    echo "$child"
    descendants "$child"
  done
}

stop_tree() {  # stop_tree PID...: SIGTERM to the trees, SIGKILL to what is left after 3 s
  local pid victims=()
  for pid in "$@"; do
    running "$pid" && victims+=("$pid" $(descendants "$pid"))
  done
  [ ${#victims[@]} -gt 0 ] || return 0
  kill -TERM "${victims[@]}" 2>/dev/null
  wait_until 3 all_ended "${victims[@]}" || kill -KILL "${victims[@]}" 2>/dev/null
  return 0
}

all_ended() {
  local pid
  for pid in "$@"; do ! running "$pid" || return 1; done
}

await() {  # await PID: its exit status; one failure (and the job killed) past its deadline
  local pid=$1 deadline=${harness_deadline[$1]:?await: $1 is no job of this script}
  while running "$pid"; do
    if [ $SECONDS -ge "$deadline" ]; then
      fail "job $pid ran past its deadline: stopped"
      stop_tree "$pid"
      break
    fi
    sleep 0.1
  done
  unset "harness_deadline[$pid]"
  wait "$pid"
}

await_all() {
  local pid
  for pid in "${!harness_deadline[@]}"; do await "$pid" || true; done
}

throttle() {  # throttle N: until fewer than N jobs run (an overdue one is stopped)
  local pid count
  while :; do
    count=0
    for pid in "${!harness_deadline[@]}"; do
      running "$pid" || continue
      if [ $SECONDS -ge "${harness_deadline[$pid]}" ]; then
        fail "job $pid ran past its deadline: stopped"
        stop_tree "$pid"
      else
        count=$((count + 1))
      fi
    done
    [ $count -ge "$1" ] || return 0
    sleep 0.05
  done
}

signal_job() {  # signal_job SIGNAL PID: to the command under spawn's timeout (its one child)
  wait_until 5 has_children "$2" || return 1
  kill -s "$1" "$(children "$2")"
}

has_children() { [ -n "$(children "$1")" ]; }

job_ranks() {  # job_ranks PID: the spikevi processes in PID's tree (the ranks under mpirun)
  local pid binary
  binary=$(readlink -f "$spikevi")
  for pid in $(descendants "$1"); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "$binary" ] || echo "$pid"
  done
}

wait_until() {  # wait_until SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# ---- exit: stop what is still running, remove $work, say where an unexpected error stopped us

harness_exit() {
  local status=$? pid
  set +e
  trap - ERR
  stop_tree "${!harness_deadline[@]}"
  for pid in "${!harness_deadline[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
  if [ "$harness_finished" = 0 ] && [ $status -ne 0 ]; then
    echo "FAIL: $(basename "$0") stopped with status $status${harness_error:+ at $harness_error}"
  fi
  exit $status
}

set -o errtrace
trap 'harness_error="line $LINENO: $BASH_COMMAND"' ERR
trap harness_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# same_fit A.h5 B.h5 WHAT: two fit files hold the same fit bit for bit: every global (the
# network of an MLP readout too, when either file has one), the ELBO trace and attribute, and the
# latents. The checkpoint/restart and rank-count tests compare with it.
same_fit() {
  assert "$3: bitwise equal" "$python" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
keys = ["elbo", "trace/elbo_per_spike", "globals/C", "globals/d", "globals/A", "globals/b",
        "globals/Q", "globals/mu0", "globals/Sigma0", "globals/readout_precision",
        "globals/dynamics/M", "globals/dynamics/V", "globals/dynamics/Psi", "globals/dynamics/nu",
        "latents/mean", "latents/cov"]
keys += [k for k in ("globals/mlp/A", "globals/mlp/W", "globals/mlp/b", "globals/history/B",
                     "globals/history/precision", "globals/history/projection")
         if k in a or k in b]
bad = [k for k in keys
       if k not in a or k not in b or not np.array_equal(a[k][:], b[k][:], equal_nan=True)]
if a.attrs["elbo"] != b.attrs["elbo"]: bad.append("elbo attribute")
if bad: print("differ in " + ", ".join(bad))
sys.exit(1 if bad else 0)
PY
}
