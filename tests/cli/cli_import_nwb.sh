#!/usr/bin/env bash
# spikevi import-nwb (docs/commands.md#import-nwb): hand-made NWB files written here with h5py
# (every trial option, unit selection, behaviour, split, obs_intervals, index widths, and one
# file per refusal), /counts compared with an independent numpy binning, then fit and evaluate
# on an imported file. When the real DANDI:000207 session file is at hand (SPIKEVI_NWB_FIXTURE,
# else the development machines' data folder beside the repository), it is imported too, checked
# the same way and fitted; without it that part is skipped.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_python_modules h5py numpy

tool=$work/nwb_tool.py
cat >"$tool" <<'PY'
import sys, h5py, numpy as np

def write_nwb(path, variant="ok"):
    """A small NWB-like file: 14 units whose rates follow one slow latent, 40 trials of 2-2.6 s
    with a go_time, a boolean 'good' column, a split column and two behaviour TimeSeries."""
    rng = np.random.default_rng(5)
    units, trials = 14, 40
    starts = 1.0 + 3.0 * np.arange(trials)
    stops = starts + 2.0 + 0.6 * rng.random(trials)
    end = stops[-1] + 1.0
    grid = np.arange(0.0, end, 0.001)
    latent = np.sin(2 * np.pi * grid / 1.7) + 0.5 * np.sin(2 * np.pi * grid / 0.6 + 1.0)
    loadings = rng.normal(0.0, 0.8, units)
    base = np.log(rng.uniform(4.0, 20.0, units))
    spikes = []
    for n in range(units):
        rate = np.exp(base[n] + loadings[n] * latent)
        spikes.append(grid[rng.random(grid.size) < rate * 0.001] + 0.0005)
    if variant == "unsorted_spike":
        spikes[3][5], spikes[3][6] = spikes[3][6], spikes[3][5]
    if variant == "nan_spike":
        spikes[2][4] = np.nan
    flat = np.concatenate(spikes)
    index = np.cumsum([len(s) for s in spikes])
    if variant == "index_decreasing":
        index[6], index[7] = index[7], index[6]
    dtype = {"index_uint8": np.uint8, "index_uint16": np.uint16,
             "index_uint64": np.uint64}.get(variant, np.uint32)
    if variant == "index_uint8":  # few enough spikes for 8-bit offsets: 14 units of 10
        spikes = [s[np.linspace(0, len(s) - 1, 10).astype(int)] for s in spikes]
        flat, index = np.concatenate(spikes), 10 * np.arange(1, units + 1)
    with h5py.File(path, "w") as f:
        if variant != "no_version":
            f.attrs["nwb_version"] = "2.4.0"
        f["identifier"] = "hand-made-" + variant
        f["session_description"] = "cli_import_nwb fixture"
        f["session_start_time"] = "2026-01-01T00:00:00+00:00"
        if variant != "no_units":
            u = f.create_group("units")
            u.attrs["colnames"] = np.array(["spike_times", "good"], dtype=h5py.string_dtype())
            u["spike_times"] = flat
            u["spike_times_index"] = index.astype(dtype)
            u["id"] = np.arange(100, 100 + units, dtype=np.int64)
            u["good"] = np.array([n % 3 != 1 for n in range(units)])  # h5py bool: an enum
            if variant.startswith("obs"):
                obs, obs_index = [], []
                for n in range(units):
                    if variant == "obs_gap" and n == 4:
                        obs += [[0.0, 29.5], [31.0, end]]  # a gap inside trial 9 [28, 30.x)
                    else:
                        obs += [[0.0, 20.0], [20.0, end]]  # touching intervals: covered
                    obs_index.append(len(obs))
                u["obs_intervals"] = np.array(obs)
                u["obs_intervals_index"] = np.array(obs_index, dtype=np.uint16)
        t = f.create_group("intervals/trials")
        t["start_time"] = starts
        if variant != "no_stop":
            t["stop_time"] = stops
        t["go_time"] = starts + 0.8
        t["id"] = np.arange(trials, dtype=np.int64)
        labels = ["train", "train", "test", "val", "none"] * (trials // 5)
        # variable-length text as pynwb writes it; fixed-length bytes in the obs_ok variant
        t["split"] = np.array(labels, dtype="S5" if variant == "obs_ok" else h5py.string_dtype())
        pos = f.create_group("processing/behavior/Position/position")
        ts = np.sort(rng.uniform(0.0, end, 3000))
        pos["timestamps"] = ts
        d = pos.create_dataset("data", data=np.stack([np.cos(ts), np.sin(ts / 3)], axis=1))
        d.attrs["conversion"] = 2.0
        d.attrs["unit"] = "cm"
        speed = f.create_group("processing/behavior/speed")
        st = speed.create_dataset("starting_time", data=0.5)
        st.attrs["rate"] = 20.0
        speed["data"] = np.arange(int((end - 0.5) * 20), dtype=np.float32) % 7

def units_of(f):
    times, index = f["units/spike_times"][:], f["units/spike_times_index"][:].astype(np.int64)
    return [times[a:b] for a, b in zip(np.r_[0, index[:-1]], index)]

def windows(f, args):
    """(start, bins) per trial by the rules of docs/commands.md#import-nwb, written again here."""
    w = args["bin"]
    if "window" in args:
        spikes = [s for s in units_of(f) if len(s)]
        lo, hi = min(s[0] for s in spikes), max(s[-1] for s in spikes)
        L = args["window"]
        n = int(np.floor((hi - lo) / L + 1e-9))
        starts = lo + L * np.arange(n)
        return starts, np.full(n, int(np.floor(L / w + 1e-9)))
    table = f[args["trials"]]
    if "align" in args:
        ev = table[args["align"]][:]
        starts, stops = ev - args["before"], ev + args["after"]
    else:
        starts, stops = table["start_time"][:], table["stop_time"][:]
    return starts, np.floor((stops - starts) / w + 1e-9).astype(int)

def check_counts(nwb, out, **args):
    with h5py.File(nwb) as f, h5py.File(out) as g:
        args.setdefault("bin", 0.05)
        args.setdefault("trials", "/intervals/trials")
        starts, bins = windows(f, args)
        ids = f["units/id"][:]
        kept = [list(ids).index(i) for i in g["meta/unit_id"][:]]
        units = units_of(f)
        counts, lengths = g["counts"][:], g["trial_lengths"][:]
        assert counts.shape == (len(starts), bins.max(), len(kept)), (counts.shape, bins.max())
        assert (lengths == bins).all(), (lengths, bins)
        for k, (s, b) in enumerate(zip(starts, bins)):
            edges = s + args["bin"] * np.arange(b + 1)
            for j, n in enumerate(kept):
                expect = np.diff(np.searchsorted(units[n], edges, side="left"))
                got = counts[k, :b, j]
                assert (got == expect).all(), (k, n, got, expect)
            assert (counts[k, b:] == 0).all(), "padding"
        assert g["counts"].attrs["bin_width_s"] == args["bin"]
        assert np.allclose(g["meta/trial_start_s"][:], starts)
        print(f"{counts.shape[0]} trials, {counts.shape[1]} bins, {counts.shape[2]} neurons, "
              f"{int(sum(counts[k, :b].sum() for k, b in enumerate(bins)))} spikes")
        return g, kept

def check_behavior(nwb, out):
    with h5py.File(nwb) as f, h5py.File(out) as g:
        starts, bins = windows(f, {"bin": 0.05, "trials": "/intervals/trials"})
        for name, path, conv in (("position", "processing/behavior/Position/position", 2.0),
                                 ("speed", "processing/behavior/speed", 1.0)):
            ts = f[path]
            data = ts["data"][:].reshape(len(ts["data"]), -1) * conv
            if "timestamps" in ts:
                times = ts["timestamps"][:]
            else:
                times = ts["starting_time"][()] + np.arange(len(data)) / ts["starting_time"].attrs["rate"]
            y = g["continuous/" + name][:]
            assert y.shape == (len(starts), bins.max(), data.shape[1]), y.shape
            for k, (s, b) in enumerate(zip(starts, bins)):
                centres = s + 0.05 * np.arange(b) + 0.025
                for c in range(data.shape[1]):
                    expect = np.interp(centres, times, data[:, c])
                    assert np.allclose(y[k, :b, c], expect, rtol=1e-6, atol=1e-6), (name, k, c)
                assert np.isnan(y[k, b:]).all(), "padding is NaN"
        print("behaviour matches np.interp at the bin centres")

def main():
    command = sys.argv[1]
    if command == "write":
        write_nwb(sys.argv[2], sys.argv[3])
    elif command == "counts":
        args = {}
        for item in sys.argv[4:]:
            key, value = item.split("=")
            args[key] = value if key in ("trials", "align") else float(value)
        check_counts(sys.argv[2], sys.argv[3], **args)
    elif command == "behavior":
        check_behavior(sys.argv[2], sys.argv[3])
    else:
        exec(sys.argv[2], {"h5py": h5py, "np": np, "sys": sys})  # an assertion on the files

main()
PY
nwbtool() { "$python" "$tool" "$@"; }
for variant in ok no_version no_units index_decreasing nan_spike unsorted_spike no_stop \
               index_uint8 index_uint16 index_uint64 obs_ok obs_gap; do
  nwbtool write "$work/$variant.nwb" "$variant"
done
nwb=$work/ok.nwb
import_nwb() { "$spikevi" import-nwb --nwb "$@"; }

# ---- help and the trial options on the hand-made file
check "import-nwb --help" "$spikevi" import-nwb --help
holds "--help names the output and the docs section" "$work/out" \
  "/counts \[trials, bins, neurons\]" "docs/commands.md#import-nwb"

check -v "trials from /intervals/trials" import_nwb "$nwb" --out "$work/t.h5"
assert -v "counts = an independent numpy binning (trial table)" nwbtool counts "$nwb" "$work/t.h5"
assert "provenance, options and meta" nwbtool exec '
g = h5py.File(sys.argv[3])
a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
assert a["source"] == sys.argv[4] and a["nwb_identifier"] == "hand-made-ok", a
assert a["nwb_version"] == "2.4.0" and a["converter"] == "spikevi import-nwb"
for k in ("version", "git_revision", "date", "command_line"): assert k in a, k
assert g["config"].attrs["bin-width"] == "0.05" and g["config"].attrs["trials"] == "/intervals/trials"
assert len(g["split/test_trials"]) == 8 and len(g["split/train_trials"]) == 32
assert len(g["split/heldout_neurons"]) == 3, g["split/heldout_neurons"][:]
' "$work/t.h5" "$nwb"
check "same seed, same file" import_nwb "$nwb" --out "$work/t2.h5"
assert "the split is reproducible from --seed" nwbtool exec '
a, b = h5py.File(sys.argv[3]), h5py.File(sys.argv[4])
for k in ("split/train_trials", "split/test_trials", "split/heldout_neurons", "counts"):
    assert (a[k][:] == b[k][:]).all(), k
' "$work/t.h5" "$work/t2.h5"

check -v "fixed windows around go_time" import_nwb "$nwb" --out "$work/a.h5" --align go_time \
  --before 0.3 --after 1.2 --bin-width 0.02
assert -v "counts = numpy binning (--align)" nwbtool counts "$nwb" "$work/a.h5" bin=0.02 \
  align=go_time before=0.3 after=1.2
assert "aligned trials are not ragged" nwbtool exec '
g = h5py.File(sys.argv[3]); assert (g["trial_lengths"][:] == 75).all(), g["trial_lengths"][:]
' "$work/a.h5"

check -v "pseudo-trials of the recording" import_nwb "$nwb" --out "$work/w.h5" --window 7 \
  --test-fraction 0.25
assert -v "counts = numpy binning (--window)" nwbtool counts "$nwb" "$work/w.h5" window=7

check -v "units: a boolean column and a spike minimum" import_nwb "$nwb" --out "$work/u.h5" \
  --units good --min-spikes 800
assert "units kept = good and >= 800 spikes in trials" nwbtool exec '
f, g = h5py.File(sys.argv[3]), h5py.File(sys.argv[4])
good = f["units/good"][:]
c = g["counts"][:]
ids = list(g["meta/unit_id"][:])
ref = h5py.File(sys.argv[5])  # the import of every unit
allc, allids = ref["counts"][:], list(ref["meta/unit_id"][:])
expect = [i for n, i in enumerate(allids) if good[n] and allc[:, :, n].sum() >= 800]
assert ids == expect and 0 < len(ids) < len(allids), (ids, expect)
' "$nwb" "$work/u.h5" "$work/t.h5"
assert "counts of the kept units" nwbtool counts "$nwb" "$work/u.h5"

check -v "behaviour: timestamps and starting_time + rate" import_nwb "$nwb" --out "$work/b.h5" \
  --behavior /processing/behavior/Position/position --behavior /processing/behavior/speed
assert -v "behaviour = np.interp at the bin centres" nwbtool behavior "$nwb" "$work/b.h5"
assert "the behaviour paths are in /config" nwbtool exec '
b = h5py.File(sys.argv[3])["config"].attrs["behavior"]
assert b == "/processing/behavior/Position/position /processing/behavior/speed", b
' "$work/b.h5"
check "import-nwb under mpirun -np 2 (rank 0 imports)" timeout -k 10 120 mpirun -np 2 \
  "$spikevi" import-nwb --nwb "$nwb" --out "$work/mpi.h5"
assert "the same file as one process" nwbtool exec '
a, b = h5py.File(sys.argv[3]), h5py.File(sys.argv[4])
for k in ("counts", "trial_lengths", "split/test_trials", "split/heldout_neurons"):
    assert (a[k][:] == b[k][:]).all(), k
' "$work/t.h5" "$work/mpi.h5"

check "split from a label column" import_nwb "$nwb" --out "$work/s.h5" --split-column split
assert "train / test(val) / neither from the labels" nwbtool exec '
g = h5py.File(sys.argv[3])
assert list(g["split/train_trials"][:]) == [k for k in range(40) if k % 5 in (0, 1)]
assert list(g["split/test_trials"][:]) == [k for k in range(40) if k % 5 in (2, 3)]
' "$work/s.h5"

for width in uint8 uint16 uint64; do
  check "spike_times_index as $width" import_nwb "$work/index_$width.nwb" --out "$work/i_$width.h5" \
    --min-spikes 0
  assert "counts with a $width index" nwbtool counts "$work/index_$width.nwb" "$work/i_$width.h5"
done

check "obs_intervals covering every trial" import_nwb "$work/obs_ok.nwb" --out "$work/o.h5" \
  --split-column split
assert "fixed-length labels give the same split" nwbtool exec '
a, b = h5py.File(sys.argv[3]), h5py.File(sys.argv[4])
for k in ("split/train_trials", "split/test_trials"): assert (a[k][:] == b[k][:]).all(), k
' "$work/o.h5" "$work/s.h5"
assert "counts with obs_intervals" nwbtool counts "$work/obs_ok.nwb" "$work/o.h5"

# ---- refusals: exit 3, one line naming the file and the object
refusal() {  # refusal WHAT PATTERN NWB [OPTIONS...]: one run, every property checked
  local what=$1 pattern=$2 file=$3 status=0; shift 3
  import_nwb "$file" --out "$work/refused.h5" "$@" >"$work/out" 2>"$work/err" || status=$?
  if [ $status -ne 3 ]; then
    fail "refuses $what: exit $status, expected 3" "$work/err"
  elif [ "$(wc -l <"$work/err")" -ne 1 ] ||
       ! grep -q -- "^spikevi: error: $file: $pattern" "$work/err"; then
    fail "refuses $what: expected one line 'spikevi: error: $file: $pattern', got:" "$work/err"
  elif [ -e "$work/refused.h5" ]; then
    fail "refuses $what, but wrote the output"
  else
    ok "refuses $what: $(cat "$work/err")"
  fi
}
printf 'not hdf5\n' >"$work/text.nwb"
refusal "a file that is not HDF5" "not a readable HDF5 file" "$work/text.nwb"
refusal "an HDF5 file without nwb_version" "/: has no nwb_version attribute" "$work/no_version.nwb"
refusal "a file without units" "/units: does not exist" "$work/no_units.nwb"
refusal "a decreasing spike_times_index" \
  "/units/spike_times_index: /units/spike_times_index\[7\] = .* is below the entry before it" \
  "$work/index_decreasing.nwb"
refusal "a NaN spike time" "/units/spike_times: .* = nan in unit 2 (id 102) is not a finite time" \
  "$work/nan_spike.nwb"
refusal "unsorted spike times" \
  "/units/spike_times: .* in unit 3 (id 103) is before the spike before it" \
  "$work/unsorted_spike.nwb"
refusal "an interval table without stop_time" \
  "/intervals/trials: has no stop_time column" "$work/no_stop.nwb"
refusal "a missing trial table" "/intervals/other: does not exist" "$nwb" --trials /intervals/other
refusal "windows outside the recording" \
  "/intervals/trials aligned on go_time: trial 0 \[-3.2, .* lies outside the recording" "$nwb" \
  --align go_time --before 5 --after 1
refusal "a unit not observed in a trial" \
  "/units/obs_intervals: unit 4 (id 104) was not observed during \[29.5, 30[.0-9]*) of trial 9" \
  "$work/obs_gap.nwb"
refusal "a missing --behavior series" "/processing/nothing: does not exist" "$nwb" \
  --behavior /processing/nothing
refusal "a missing --align column" "/intervals/trials: has no column cue_time" "$nwb" \
  --align cue_time --after 1
fails_with 2 "refuses --window with --align" "cannot be combined" import_nwb "$nwb" \
  --out "$work/refused.h5" --window 5 --align go_time
fails_with 2 "refuses --before without --align" "only apply with --align" import_nwb "$nwb" \
  --out "$work/refused.h5" --before 1

# ---- fit and evaluate the import
check "fit on the imported file" "$spikevi" fit --data "$work/t.h5" --latents 2 --iterations 8 \
  --out "$work/t_fit.h5"
check -v "evaluate on the imported file" "$spikevi" evaluate --data "$work/t.h5" \
  --fit "$work/t_fit.h5" --out "$work/t_eval.h5"

# ---- the real session file (DANDI:000207, subject 4, session 4), when it is at hand
real=${SPIKEVI_NWB_FIXTURE:-$(dirname "$repo")/shared/data/sub-4_ses-4_ecephys+image.nwb}
if [ -f "$real" ]; then
  check -v "real file: the encoding trials" import_nwb "$real" --out "$work/real.h5" \
    --trials /intervals/encoding_table --seed 23
  holds "real file: 90 trials, 35 neurons" "$work/out" "90 trials x 183 bins .* x 35 neurons"
  assert -v "real file: counts = numpy binning" nwbtool counts "$real" "$work/real.h5" \
    trials=/intervals/encoding_table
  assert "real file: provenance" nwbtool exec '
g = h5py.File(sys.argv[3]); a = g.attrs
assert a["nwb_version"] == "2.4.0" and len(a["nwb_identifier"]) > 0, dict(a)
' "$work/real.h5"
  check -v "real file: recognition trials aligned on the response" import_nwb "$real" \
    --out "$work/real_aligned.h5" --trials /intervals/recognition_table --align response_time \
    --before 1.5 --after 0.5
  assert -v "real file: counts = numpy binning (--align)" nwbtool counts "$real" \
    "$work/real_aligned.h5" trials=/intervals/recognition_table align=response_time \
    before=1.5 after=0.5
  check "real file: fit" "$spikevi" fit --data "$work/real.h5" --latents 2 --iterations 5 \
    --out "$work/real_fit.h5"
  check -v "real file: evaluate" "$spikevi" evaluate --data "$work/real.h5" \
    --fit "$work/real_fit.h5" --out "$work/real_eval.h5"
  holds "real file: co-smoothing beside the baselines" "$work/out" "spikevi fit " \
    "baseline: smoothed spikes" "baseline: NLB-style"
else
  echo "note: no real NWB file at $real (set SPIKEVI_NWB_FIXTURE): its part is skipped"
fi

finish "cli_import_nwb"
