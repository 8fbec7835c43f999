#!/usr/bin/env bash
# The faults of issue 19, each refused up front in one clear line with its documented exit
# status (README: 2 bad option, 3 bad input file, 5 output failure), at 1 and 2 ranks, with the
# input files unchanged: an output that is the input, a modality of zero channels, an empty
# split list, an unwritable output location, a /counts too large to hold, unsigned values
# beyond the integers read (shown as stored), counts beyond the largest accepted, and a
# warning for /continuous values beyond any plausible scale. (The full disk is cli_disk_full.sh.)
set -uo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_commands mpirun
need_python_modules h5py numpy

d=$work/data
mkdir -p "$d"
"$spikevi" simulate --trials 12 --bins 30 --neurons 20 --latents 2 --out "$d/good.h5" \
  >"$work/setup.log" 2>&1 </dev/null || abort "could not simulate the good data set" "$work/setup.log"

"$python" - "$d" <<'PY' || abort "could not craft the faulty files"
import shutil, sys
import h5py, numpy as np
d = sys.argv[1]
good = f"{d}/good.h5"
with h5py.File(good) as f:
    counts = f["counts"][:]
K, T, N = counts.shape

def variant(name, edit):
    shutil.copyfile(good, f"{d}/{name}.h5")
    with h5py.File(f"{d}/{name}.h5", "r+") as f:
        edit(f)

def replace(f, key, value):
    attrs = dict(f[key].attrs); del f[key]; f[key] = value; f[key].attrs.update(attrs)

def declared_counts(shape, chunk):  # a /counts declared large, never written: a small file
    def edit(f):
        attrs = dict(f["counts"].attrs); del f["counts"]
        f.create_dataset("counts", shape=shape, dtype=np.int32, chunks=chunk)
        f["counts"].attrs.update(attrs)
        del f["trial_lengths"]; del f["split"]
    return edit

def one_count(value, dtype):  # in the last trial: on 2 ranks only rank 1's block holds it
    def edit(f):
        c = counts.astype(dtype); c[-1, 3, 2] = value; replace(f, "counts", c)
    return edit

def last_length(f):
    v = f["trial_lengths"][:].astype(np.uint64); v[-1] = 2**64 - 1; replace(f, "trial_lengths", v)

def absurd_continuous(f):
    y = np.random.default_rng(1).normal(size=(K, T, 2)); y[-1, 4, 1] = 1e13
    f["continuous/x"] = y

variant("zero_channels", lambda f: f.create_dataset("continuous/x", data=np.zeros((K, T, 0))))
variant("empty_train", lambda f: replace(f, "split/train_trials", np.zeros(0, np.int32)))
variant("empty_test", lambda f: replace(f, "split/test_trials", np.zeros(0, np.int32)))
variant("no_trial_lists", lambda f: (f.__delitem__("split/train_trials"),
                                     f.__delitem__("split/test_trials")))
variant("huge_neurons", declared_counts((1, 1, 10**9), (1, 1, 1000)))
variant("huge_counts", declared_counts((10**6, 1000, 1000), (1, 10, 1000)))
variant("length_max", last_length)
variant("count_u64", one_count(2**63 + 5, np.uint64))
variant("count_i64", one_count(2**62, np.int64))
variant("continuous_absurd", absurd_continuous)
PY
(cd "$d" && sha256sum -- *.h5 >"$work/data.sha256")


# refused STATUS DESCRIPTION SUBSTRING RANKS ARGUMENTS...: `spikevi ARGUMENTS` under mpirun
# exits STATUS (not a signal, not a timeout) with exactly one "spikevi: error:" line, holding
# SUBSTRING, and prints no iteration (the refusal comes before the fit).
refused() {
  local want=$1 what=$2 substring=$3 ranks=$4 status=0 errors; shift 4
  timeout -k 10 60 mpirun -np "$ranks" "$spikevi" "$@" </dev/null >"$work/out" 2>"$work/err" ||
    status=$?
  spikevi_stderr "$work/err" >"$work/own"
  errors=$(grep -c '^spikevi: error:' "$work/own")
  if [ $status -ne "$want" ]; then
    fail "$what [np $ranks]: exit $status, expected $want" "$work/own"
  elif [ "$errors" -ne 1 ] || ! grep '^spikevi: error:' "$work/own" | grep -qF -- "$substring"; then
    fail "$what [np $ranks]: expected one error line naming '$substring'" "$work/own"
  elif grep -q '^iter ' "$work/out"; then
    fail "$what [np $ranks]: refused only after iterating" "$work/out"
  else
    ok "$what [np $ranks]: $(grep -m1 '^spikevi: error:' "$work/own")"
  fi
}

fit() { echo fit --iterations 2 --quiet --overwrite --data "$d/$1.h5" --out "$work/$1.fit.h5"; }

timeout -k 10 60 "$spikevi" fit --data "$d/good.h5" --out "$work/fit.h5" --iterations 2 --quiet \
  >"$work/setup.log" 2>&1 </dev/null || abort "could not fit the good data set" "$work/setup.log"
cp "$d/good.h5" "$work/s.h5"
ln -f "$work/s.h5" "$work/s_link.h5"
cp "$d/good.h5" "$work/c.checkpoint.h5"
(cd "$work" && sha256sum -- s.h5 c.checkpoint.h5 fit.h5 >"$work/inputs.sha256")
g=$d/good.h5

for np in 1 2; do
  # 1. The output is the input (by another spelling, by a hard link, as a checkpoint).
  refused 2 "fit --out the --data file" "is the --data file" $np \
    fit --data "$work/s.h5" --out "$work/s.h5" --overwrite --iterations 2 --quiet
  refused 2 "fit --out the --data file, spelt with ./" "is the --data file" $np \
    fit --data "$work/s.h5" --out "$work/./s.h5" --overwrite --iterations 2 --quiet
  refused 2 "fit --out a hard link to --data" "is the --data file" $np \
    fit --data "$work/s.h5" --out "$work/s_link.h5" --overwrite --iterations 2 --quiet
  refused 2 "fit --data the checkpoint of --out" "is the --data file" $np \
    fit --data "$work/c.checkpoint.h5" --out "$work/c" --overwrite --iterations 2 --quiet
  refused 2 "evaluate --out the --fit file" "is the --fit file" $np \
    evaluate --data "$g" --fit "$work/fit.h5" --out "$work/fit.h5" --overwrite
  refused 2 "decode --out the --data file" "is the --data file" $np \
    decode --data "$work/s.h5" --fit "$work/fit.h5" --target x --out "$work/s.h5" --overwrite
  refused 2 "compare --table the --data file" "is the --data file" $np \
    compare --data "$work/s.h5" --table "$work/s.h5" --overwrite

  # 3. A modality of no channels; 4. an empty split list.
  refused 3 "/continuous/x of shape [K,T,0]" "/continuous/x has shape [12,30,0]" $np $(fit zero_channels)
  refused 3 "empty /split/train_trials" "/split/train_trials is empty" $np $(fit empty_train)
  refused 3 "empty /split/test_trials beside /split/train_trials" "/split/test_trials is empty" \
    $np $(fit empty_test)

  # 5. An unwritable output location, found before the fit, with the output-failure status.
  refused 5 "--out under /proc" "cannot write a file in /proc" $np \
    fit --data "$g" --out /proc/fit.h5 --iterations 2 --quiet

  # 6. Too large to hold: refused with the estimate, naming the dataset.
  refused 3 "/counts declaring [1,1,1e9]" "/counts declares 1000000000 neurons" $np $(fit huge_neurons)
  refused 3 "/counts declaring [1e6,1000,1000]" "/counts has shape [1000000,1000,1000]" $np \
    $(fit huge_counts)
  holds "the refusal gives the figure [np $np]" "$work/own" "needs about [0-9.]* [KMGTP]iB"

  # 7. Values as stored, and the largest accepted count.
  refused 3 "/trial_lengths of 2^64-1" "/trial_lengths: element 11 = 18446744073709551615" $np \
    $(fit length_max)
  refused 3 "a uint64 count of 2^63+5" "9223372036854775813" $np $(fit count_u64)
  holds "the refusal names the largest count accepted [np $np]" "$work/own" "9007199254740992"
  refused 3 "an int64 count of 2^62" "/counts[11,3,2] = 4611686018427387904: more than the largest count accepted, 9007199254740992" \
    $np $(fit count_i64)
done

# 4. Both trial lists absent: no split, every trial fitted. 7. An absurd scale: one warning.
for np in 1 2; do
  check "no trial lists: every trial is fitted [np $np]" \
    timeout -k 10 60 mpirun -np $np "$spikevi" $(fit no_trial_lists)
  holds "no trial lists: 12 training trials [np $np]" "$work/out" "12 training trials"
  status=0
  timeout -k 10 60 mpirun -np $np "$spikevi" $(fit continuous_absurd) </dev/null \
    >"$work/out" 2>"$work/err" || status=$?
  [ $status -eq 0 ] && ok "a /continuous value of 1e13 is fitted [np $np]" ||
    fail "a /continuous value of 1e13: exit $status" "$work/err"
  holds "with a warning naming it [np $np]" "$work/err" \
    "^spikevi: warning: .*/continuous/x holds values as large as 1e+13 in magnitude"
done

if ! (cd "$d" && sha256sum --quiet -c "$work/data.sha256") ||
   ! (cd "$work" && sha256sum --quiet -c "$work/inputs.sha256"); then
  fail "an input file changed"
else
  ok "every input file is unchanged"
fi
[ -z "$(find "$work" -name '*.tmp' -o -name '.*probe*')" ] && ok "no *.tmp or probe file is left" ||
  fail "files left behind: $(find "$work" -name '*.tmp' -o -name '.*probe*')"
finish "cli faults"
