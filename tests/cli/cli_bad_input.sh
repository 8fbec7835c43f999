#!/usr/bin/env bash
# Bad input, clear errors, nothing overwritten: `spikevi fit` on a table of malformed data files
# and nonsensical options, each under mpirun -np 1 and -np 2. Every case must stop (no hang)
# with the documented exit status (README: 2 bad option, 3 bad input file), print exactly one
# "spikevi: error:" line on stderr that names the problem, and leave the run's folder as it
# was: the existing output at --out and the existing <out>.checkpoint.h5 byte for byte
# unchanged, no *.tmp, no new file. The per-trial faults (a negative count, +Inf in a continuous
# modality, NaN in /inputs) sit in the last training trial only, so that on 2 ranks only rank 1's
# block of the file holds them.
set -uo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_commands mpirun
need_python_modules h5py numpy

# ---- the good data, a real fit result (the "existing output"), and the bad files made from them
d=$work/data
mkdir -p "$d"
if ! "$spikevi" simulate --trials 12 --bins 30 --neurons 20 --latents 2 --out "$d/good.h5" \
     >"$work/setup.log" 2>&1 </dev/null ||
   ! timeout -k 10 60 "$spikevi" fit --data "$d/good.h5" --out "$work/keep.h5" --iterations 2 \
     --quiet >>"$work/setup.log" 2>&1 </dev/null; then
  abort "could not simulate and fit the good data set:" "$work/setup.log"
fi

"$python" - "$d" <<'PY' || abort "could not craft the bad files"
import os, shutil, sys
import h5py, numpy as np
d = sys.argv[1]
good = f"{d}/good.h5"
with h5py.File(good) as f:
    counts = f["counts"][:]
    train = np.sort(f["split/train_trials"][:])
trials, bins, neurons = counts.shape
last = int(train[-1])  # the last training trial: on 2 ranks only rank 1 reads it
assert last == trials - 1, "the simulated split should train on the last trial"

def variant(name, edit):  # a copy of the good file, edited in place
    path = f"{d}/{name}.h5"
    shutil.copyfile(good, path)
    with h5py.File(path, "r+") as f:
        edit(f)

def replace(f, key, value):  # a dataset rewritten with another shape or type, attributes kept
    attrs = dict(f[key].attrs)
    del f[key]
    f[key] = value
    f[key].attrs.update(attrs)

def set_counts(k, t, n, value):
    def edit(f):
        c = counts.copy(); c[k, t, n] = value; f["counts"][...] = c
    return edit

def set_length(value):
    def edit(f):
        lengths = f["trial_lengths"][:]; lengths[last] = value; f["trial_lengths"][...] = lengths
    return edit

def set_split(key, position, value):
    def edit(f):
        v = f[key][:]; v[position] = value; replace(f, key, v)
    return edit

def per_trial(channels, where, value):  # a [trials, bins, channels] array with one bad value
    y = np.zeros((trials, bins, channels)); y[where] = value
    return y

def drop_bin_width(f):
    del f["counts"].attrs["bin_width_s"]; del f.attrs["bin_width_s"]

def negative_bin_width(f):
    f["counts"].attrs["bin_width_s"] = -0.02; f.attrs["bin_width_s"] = -0.02

variant("no_counts", lambda f: f.__delitem__("counts"))
variant("counts_2d", lambda f: replace(f, "counts", counts.reshape(trials, bins * neurons)))
variant("negative_count", set_counts(last, bins // 2, neurons - 1, -1))
variant("float_counts", lambda f: replace(f, "counts", counts.astype(np.float64)))
variant("string_counts", lambda f: replace(f, "counts", np.full((trials, bins, neurons), b"1")))
variant("counts_group", lambda f: (f.__delitem__("counts"), f.create_group("counts")))
variant("continuous_inf", lambda f: f.create_dataset("continuous/behaviour",
                                                     data=per_trial(3, (last, 4, 1), np.inf)))
variant("continuous_shape", lambda f: f.create_dataset("continuous/behaviour",
                                                       data=np.zeros((trials, bins + 1, 3))))
variant("inputs_nan", lambda f: f.create_dataset("inputs", data=per_trial(2, (last, 3, 0), np.nan)))
variant("trial_length_zero", set_length(0))
variant("trial_length_too_long", set_length(bins + 1))
variant("trial_lengths_short", lambda f: replace(f, "trial_lengths",
                                                 np.full(trials - 1, bins, np.int32)))
variant("zero_neurons", lambda f: replace(f, "counts", np.zeros((trials, bins, 0), np.int32)))
variant("zero_bins", lambda f: replace(f, "counts", np.zeros((trials, 0, neurons), np.int32)))
with h5py.File(f"{d}/zero_trials.h5", "w") as f:
    f["counts"] = np.zeros((0, bins, neurons), np.int32)
    f["counts"].attrs["bin_width_s"] = 0.02
variant("split_out_of_range", set_split("split/train_trials", -1, 99))
variant("split_repeated", set_split("split/train_trials", -1, int(train[0])))
variant("split_overlap", set_split("split/test_trials", 0, int(train[0])))
variant("heldout_out_of_range", set_split("split/heldout_neurons", -1, neurons))
variant("heldout_all", lambda f: replace(f, "split/heldout_neurons",
                                         np.arange(neurons, dtype=np.int32)))
variant("no_bin_width", drop_bin_width)
variant("bin_width_mismatch", lambda f: f["counts"].attrs.__setitem__("bin_width_s", 0.05))
variant("bin_width_negative", negative_bin_width)

raw = open(good, "rb").read()
open(f"{d}/truncated.h5", "wb").write(raw[: len(raw) // 2])
open(f"{d}/text.h5", "w").write("trial,bin,neuron,count\n0,0,0,1\n")
open(f"{d}/empty.h5", "wb").close()
PY
(cd "$d" && sha256sum -- * >"$work/data.sha256")

# ---- one case: run it at 1 and 2 ranks in a folder holding an existing output and checkpoint.
# The runs are independent (each in its own folder) and mostly wait on mpirun's start-up, so a
# few go at once (SPIKEVI_TEST_JOBS, default 4), each a background job of at most 120 s (its
# mpirun has 60 s); the reports are printed in table order.
jobs_max=${SPIKEVI_TEST_JOBS:-4}
cases=0
snapshot() {  # snapshot FOLDER: every path under it, and the checksum of every file
  (cd "$1" && find . | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

# run_one RUN-FOLDER NAME STATUS RANKS SUBSTRING-COUNT SUBSTRING... FIT-ARGUMENTS...
# Writes RUN-FOLDER/report: "ok: ..." or "FAIL: ..." with the command and its stderr.
run_one() {
  local run=$1 name=$2 want=$3 ranks=$4 count=$5; shift 5
  local substrings=("${@:1:count}"); shift "$count"
  local dir=$run/case args=() arg has_out=0 has_iterations=0 status=0 problems=() errors line
  mkdir -p "$dir/folder"
  cp "$work/keep.h5" "$dir/out.h5"
  cp "$work/keep.h5" "$dir/out.h5.checkpoint.h5"
  for arg in "$@"; do
    case $arg in --out) has_out=1 ;; --iterations) has_iterations=1 ;; esac
    args+=("${arg//@/$dir}")
  done
  [ $has_out = 1 ] || args+=(--out "$dir/out.h5")
  [ $has_iterations = 1 ] || args+=(--iterations 2)
  snapshot "$dir" >"$run/before"
  timeout -k 10 60 mpirun -np "$ranks" "$spikevi" fit "${args[@]}" --quiet \
    </dev/null >"$run/stdout" 2>"$run/stderr" || status=$?
  snapshot "$dir" >"$run/after"
  spikevi_stderr "$run/stderr" >"$run/own"
  errors=$(grep -c '^spikevi: error:' "$run/own")
  line=$(grep -m1 '^spikevi: error:' "$run/own")
  if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    problems+=("HANG: no exit within 60 s")
  elif [ $status -eq 0 ]; then
    problems+=("accepted (exit 0)")
  elif [ $status -ne "$want" ]; then
    problems+=("exit status $status, expected $want")
  fi
  [ "$errors" -eq 1 ] || problems+=("$errors 'spikevi: error:' lines, expected exactly 1")
  # Other lines (a warning) may accompany the error, but no second report of a failure
  # (an internal error, an HDF5 error stack).
  grep -v '^spikevi: error:' "$run/own" | grep -qi 'error' &&
    problems+=("stderr holds another error report")
  for substring in "${substrings[@]}"; do
    substring=${substring//@/$dir}
    [[ $line == *"$substring"* ]] || problems+=("the error line does not name '$substring'")
  done
  cmp -s "$dir/out.h5" "$work/keep.h5" || problems+=("the existing --out file changed")
  cmp -s "$dir/out.h5.checkpoint.h5" "$work/keep.h5" || problems+=("the existing checkpoint changed")
  if ! cmp -s "$run/before" "$run/after"; then
    local tmp
    tmp=$(cd "$dir" && find . -name '*.tmp' | tr '\n' ' ')
    [ -z "$tmp" ] || problems+=("left ${tmp% }")
    problems+=("the folder changed: $(diff "$run/before" "$run/after" | grep '^[<>]' | tr '\n' ' ')")
  fi
  {
    if [ ${#problems[@]} -eq 0 ]; then
      local others
      others=$(grep -vc '^spikevi: error:' "$run/own")
      echo "ok: $name [np $ranks, exit $status]: $line$([ "$others" -eq 0 ] || echo " (+ $others other stderr line(s))")"
    else
      echo "FAIL: $name [np $ranks]: $(IFS=';'; echo "${problems[*]}")"
      echo "  command: mpirun -np $ranks spikevi fit ${args[*]} --quiet"
      echo "  stderr:"; sed 's/^/    /' "$run/stderr"
    fi
  } >"$run/report.part" && mv "$run/report.part" "$run/report"
  rm -rf "$dir"
}

# bad NAME STATUS SUBSTRING... -- FIT-ARGUMENTS...
#   @ in the arguments and substrings stands for the run's folder (which holds out.h5,
#   out.h5.checkpoint.h5 and an empty folder/); "--out @/out.h5" is added unless the
#   arguments name --out, "--iterations 2" unless they name --iterations, and --quiet always.
#   Each SUBSTRING must appear (as is, case-sensitive) in the one error line.
bad() {
  local name=$1 want=$2; shift 2
  local substrings=() ranks
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do substrings+=("$1"); shift; done
  shift
  cases=$((cases + 1))
  for ranks in 1 2; do
    throttle "$jobs_max"
    local run
    run=$work/run/$(printf '%03d' $cases)-np$ranks
    mkdir -p "$run"
    run_one "$run" "$name" "$want" "$ranks" ${#substrings[@]} "${substrings[@]}" "$@" &
    track $! 120
  done
}

# ---- the table. Data files: exit 3, the message names the file and the dataset at fault.
#      --overwrite is passed so that the existing --out does not stop the run first.
bad "/counts missing" 3 no_counts.h5 /counts missing -- --data "$d/no_counts.h5" --overwrite
bad "/counts 2-D" 3 counts_2d.h5 /counts 3-D -- --data "$d/counts_2d.h5" --overwrite
bad "negative count in the last training trial" 3 negative_count.h5 /counts negative \
  -- --data "$d/negative_count.h5" --overwrite
bad "floating-point counts" 3 float_counts.h5 /counts integer -- --data "$d/float_counts.h5" --overwrite
bad "string counts" 3 string_counts.h5 /counts integer -- --data "$d/string_counts.h5" --overwrite
bad "/counts a group" 3 counts_group.h5 /counts -- --data "$d/counts_group.h5" --overwrite
bad "+Inf in /continuous/behaviour (last training trial)" 3 continuous_inf.h5 /continuous/behaviour inf \
  -- --data "$d/continuous_inf.h5" --overwrite
bad "/continuous/behaviour of the wrong shape" 3 continuous_shape.h5 /continuous/behaviour \
  -- --data "$d/continuous_shape.h5" --overwrite
bad "NaN in /inputs" 3 inputs_nan.h5 /inputs -- --data "$d/inputs_nan.h5" --overwrite
bad "/trial_lengths value 0" 3 trial_length_zero.h5 /trial_lengths \
  -- --data "$d/trial_length_zero.h5" --overwrite
bad "/trial_lengths value bins+1" 3 trial_length_too_long.h5 /trial_lengths 31 \
  -- --data "$d/trial_length_too_long.h5" --overwrite
bad "/trial_lengths one entry short" 3 trial_lengths_short.h5 /trial_lengths \
  -- --data "$d/trial_lengths_short.h5" --overwrite
bad "zero neurons" 3 zero_neurons.h5 /counts neurons -- --data "$d/zero_neurons.h5" --overwrite
bad "zero trials" 3 zero_trials.h5 /counts trials -- --data "$d/zero_trials.h5" --overwrite
bad "zero bins" 3 zero_bins.h5 /counts bins -- --data "$d/zero_bins.h5" --overwrite
bad "/split/train_trials holds 99" 3 split_out_of_range.h5 /split/train_trials 99 \
  -- --data "$d/split_out_of_range.h5" --overwrite
bad "/split/train_trials repeats a trial" 3 split_repeated.h5 /split/train_trials \
  -- --data "$d/split_repeated.h5" --overwrite
bad "a test trial also in training" 3 split_overlap.h5 /split/test_trials \
  -- --data "$d/split_overlap.h5" --overwrite
bad "held-out neuron out of range" 3 heldout_out_of_range.h5 /split/heldout_neurons 20 \
  -- --data "$d/heldout_out_of_range.h5" --overwrite
bad "every neuron held out" 3 heldout_all.h5 /split/heldout_neurons \
  -- --data "$d/heldout_all.h5" --overwrite
bad "bin_width_s missing" 3 no_bin_width.h5 bin_width_s -- --data "$d/no_bin_width.h5" --overwrite
bad "bin_width_s differs on /counts and /" 3 bin_width_mismatch.h5 bin_width_s \
  -- --data "$d/bin_width_mismatch.h5" --overwrite
bad "bin_width_s negative" 3 bin_width_negative.h5 bin_width_s -- --data "$d/bin_width_negative.h5" --overwrite
bad "truncated HDF5 file" 3 truncated.h5 HDF5 -- --data "$d/truncated.h5" --overwrite
bad "a text file" 3 text.h5 HDF5 -- --data "$d/text.h5" --overwrite
bad "an empty file" 3 empty.h5 HDF5 -- --data "$d/empty.h5" --overwrite
bad "a directory as --data" 3 "$d" directory -- --data "$d" --overwrite
bad "--data under a regular file" 3 "$d/good.h5/data.h5" -- --data "$d/good.h5/data.h5" --overwrite
bad "--data missing" 3 "$d/missing.h5" "no such file" -- --data "$d/missing.h5" --overwrite
if [ "$(id -u)" -ne 0 ]; then  # root reads through chmod 000
  cp "$d/good.h5" "$work/unreadable.h5" && chmod 000 "$work/unreadable.h5"
  bad "--data without read permission" 3 unreadable.h5 -- --data "$work/unreadable.h5" --overwrite
fi

# Options: exit 2, the message names the option (and the value where there is one).
g=$d/good.h5
bad "--latents -1" 2 --latents -1 -- --data "$g" --overwrite --latents -1
bad "--latents abc" 2 --latents abc -- --data "$g" --overwrite --latents abc
bad "--step-kappa 0.4" 2 --step-kappa 0.4 -- --data "$g" --overwrite --minibatch 2 --step-kappa 0.4
bad "--step-kappa 1.5" 2 --step-kappa 1.5 -- --data "$g" --overwrite --minibatch 2 --step-kappa 1.5
bad "--step-tau 0.5" 2 --step-tau 0.5 -- --data "$g" --overwrite --minibatch 2 --step-tau 0.5
bad "--minibatch 11 > 10 training trials" 2 --minibatch 11 -- --data "$g" --overwrite --minibatch 11
bad "--minibatch -1" 2 --minibatch -1 -- --data "$g" --overwrite --minibatch -1
bad "--iterations 0" 2 --iterations 0 -- --data "$g" --overwrite --iterations 0
bad "--epochs without --minibatch" 2 --epochs -- --data "$g" --overwrite --epochs 2
bad "unknown option" 2 --bogus -- --data "$g" --overwrite --bogus 1
bad "--config of a missing file" 2 --config -- --data "$g" --overwrite --config "$d/missing.ini"
# --out: the missing folder case is refused with or without --overwrite (nothing at that path).
bad "--out in a missing folder" 2 --out "@/nowhere" -- --data "$g" --overwrite --out "@/nowhere/fit.h5"
bad "--out under a regular file" 2 --out -- --data "$g" --overwrite --out "@/out.h5/fit.h5"
# The checkpoint beside out.h5 is a copy of a fit, not a valid checkpoint: the fit may warn that
# it skips it, and must still refuse to replace out.h5.
bad "existing --out without --overwrite" 2 --out "already exists" -- --data "$g"
# An --out that is a folder is an option error like the two above. (When this test was written
# the fit ran to the end, then failed to rename with exit 3, leaving folder.tmp and
# folder.checkpoint.h5 behind.)
bad "--out is a directory" 2 --out "@/folder" -- --data "$g" --overwrite --out "@/folder"

await_all
for run in "$work"/run/*; do
  if [ -f "$run/report" ]; then
    tally "the report of run $(basename "$run")" cat "$run/report"
  else
    fail "no report from $run"
  fi
done
if ! (cd "$d" && sha256sum --quiet -c "$work/data.sha256") || [ -n "$(find "$d" -name '*.tmp')" ]; then
  fail "an input file changed, or a *.tmp was left beside the inputs"
fi
finish "cli bad input: $cases cases x 2 rank counts"
