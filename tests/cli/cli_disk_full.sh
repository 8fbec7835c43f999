#!/usr/bin/env bash
# Output failures (issue 19): `spikevi fit` with --out on a full file system and on a read-only
# one, at 1 and 2 ranks. Each run must end with the output-failure status 5 and exactly one
# "spikevi: error:" line (no signal: a crash in HDF5's shutdown was exit 139), leave no *.tmp and
# no half-written file, and leave the input untouched. Needs to mount a small tmpfs (as root);
# skips (77) where mounting is refused.
set -uo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_commands mpirun mount umount

full=$work/full
readonly_fs=$work/readonly
mkdir -p "$full" "$readonly_fs"
mount -t tmpfs -o size=4m tmpfs "$full" 2>/dev/null || skip "cannot mount a tmpfs here"
cleanup_mounts() { umount "$full" 2>/dev/null; umount "$readonly_fs" 2>/dev/null; return 0; }
trap 'status=$?; cleanup_mounts; (exit $status); harness_exit' EXIT
mount -t tmpfs -o ro,size=1m tmpfs "$readonly_fs" 2>/dev/null || abort "cannot mount a read-only tmpfs"

d=$work/data
mkdir -p "$d"
if ! "$spikevi" simulate --trials 40 --bins 100 --neurons 30 --latents 2 --out "$d/data.h5" \
     >"$work/setup.log" 2>&1 </dev/null ||
   ! timeout -k 10 60 "$spikevi" fit --data "$d/data.h5" --out "$work/reference.h5" \
     --iterations 2 --quiet >>"$work/setup.log" 2>&1 </dev/null; then
  abort "could not simulate and fit the data set" "$work/setup.log"
fi
sum=$(sha256sum <"$d/data.h5")
checkpoint_bytes=$(stat -c %s "$work/reference.h5.checkpoint.h5")
fit_bytes=$(stat -c %s "$work/reference.h5")


# fill FREE-BYTES: the full file system keeps only about that much room.
fill() {
  rm -f "$full"/*
  local size
  size=$(df -B1 --output=avail "$full" | tail -1)
  fallocate -l $((size - $1)) "$full/filler" 2>/dev/null ||
    dd if=/dev/zero of="$full/filler" bs=4096 count=$(((size - $1) / 4096)) 2>/dev/null
}

# output_fails DESCRIPTION PATTERN RANKS FOLDER: fit --out FOLDER/fit.h5 exits 5, one error line
# matching PATTERN, and FOLDER holds nothing new (filler apart).
output_fails() {
  local what=$1 pattern=$2 ranks=$3 folder=$4 status=0 errors left
  timeout -k 10 120 mpirun -np "$ranks" "$spikevi" fit --data "$d/data.h5" --out "$folder/fit.h5" \
    --iterations 2 --quiet </dev/null >"$work/out" 2>"$work/err" || status=$?
  spikevi_stderr "$work/err" >"$work/own"
  errors=$(grep -c '^spikevi: error:' "$work/own")
  left=$(cd "$folder" && find . -mindepth 1 ! -name filler | tr '\n' ' ')
  if [ $status -ne 5 ]; then
    fail "$what [np $ranks]: exit $status, expected 5 (output failure)" "$work/err"
  elif [ "$errors" -ne 1 ] || ! grep '^spikevi: error:' "$work/own" | grep -q -- "$pattern"; then
    fail "$what [np $ranks]: expected one error line matching '$pattern'" "$work/own"
  elif [ -n "$left" ]; then
    fail "$what [np $ranks]: left $left"
  else
    ok "$what [np $ranks]: $(grep -m1 '^spikevi: error:' "$work/own")"
  fi
}

for np in 1 2; do
  fill $((checkpoint_bytes / 2))
  output_fails "no room for the first checkpoint" "no room for the checkpoint" $np "$full"
  # Room for the checkpoint but not for the fit file beside it: the write itself fails (the
  # check before the checkpoint may also refuse, it is generous: either is a clean failure).
  # The checkpoint, complete, may stay: it is what a rerun continues from.
  fill $((checkpoint_bytes + fit_bytes - 32768))
  timeout -k 10 120 mpirun -np $np "$spikevi" fit --data "$d/data.h5" --out "$full/fit.h5" \
    --iterations 2 --quiet </dev/null >"$work/out" 2>"$work/err"
  status=$?
  spikevi_stderr "$work/err" >"$work/own"
  left=$(cd "$full" && find . -mindepth 1 ! -name filler ! -name fit.h5.checkpoint.h5 | tr '\n' ' ')
  if [ $status -eq 5 ] && [ "$(grep -c '^spikevi: error:' "$work/own")" -eq 1 ] &&
     grep -q '^spikevi: error:.*\(No space left on device\|no room for the checkpoint\)' "$work/own" &&
     [ -z "$left" ]; then
    ok "no room for the fit file [np $np]: $(grep -m1 '^spikevi: error:' "$work/own")"
  else
    fail "no room for the fit file [np $np]: exit $status${left:+, left $left}" "$work/err"
  fi
  output_fails "a read-only file system, found before the fit" "Read-only file system" $np \
    "$readonly_fs"
  grep -q '^iter \|^spikevi fit:' "$work/out" && fail "the read-only --out was found only after reading the data [np $np]"
done
[ "$(sha256sum <"$d/data.h5")" = "$sum" ] && ok "the input is untouched" || fail "the input changed"
finish "cli disk full"
