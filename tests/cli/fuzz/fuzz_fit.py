"""Mutants of a valid data file, each fitted by spikevi (every tenth also evaluated with a fit of
the valid file); prints one ok:/FAIL: line per finding (tests/cli/cli_fuzz.sh).
Usage: fuzz_fit.py SPIKEVI GOOD.h5 WORKDIR MUTANTS SEED"""
import concurrent.futures
import hashlib
import os
import random
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np

SPIKEVI, GOOD, WORK, MUTANTS, SEED = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
GOOD_FIT = os.path.join(WORK, "good_fit.h5")  # what evaluate runs with
warnings.simplefilter("ignore", RuntimeWarning)  # casts of extreme values, meant
REFUSALS = {2, 3, 4, 5}  # README "Exit status": bad option, input, numerical failure, output
LIMIT_S = 60  # per run; a healthy run of this file takes about a second


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- byte-level mutants

def byte_mutant(raw, rng):
    data = bytearray(raw)
    kind = rng.choice(["flip", "overwrite", "zero", "cut", "metadata"])
    if kind == "cut":
        return bytes(data[: rng.randrange(len(data))]), "cut"
    # Half of the damage lands in the first 4 KiB: the superblock, root group and object headers.
    span = 4096 if kind == "metadata" or rng.random() < 0.5 else len(data)
    for _ in range(rng.randint(1, 16)):
        at = rng.randrange(min(span, len(data)))
        if kind == "zero":
            length = rng.randint(1, 64)
            data[at:at + length] = bytes(len(data[at:at + length]))
        elif kind == "flip":
            data[at] ^= 1 << rng.randrange(8)
        else:
            data[at] = rng.randrange(256)
    return bytes(data), kind


# ---- structural mutants (h5py)

EXTREMES_INT = [0, 1, -1, 2**31 - 1, -2**31, 2**62, 2**63 - 1, -2**63]
EXTREMES_FLOAT = [0.0, -0.0, 1e-308, 5e-324, 1e12, 1e13, 1e300, -1e300, np.inf, -np.inf, np.nan]


def replace(f, key, value):
    attrs = dict(f[key].attrs) if key in f else {}
    if key in f:
        del f[key]
    f[key] = value
    f[key].attrs.update(attrs)


def counts_of(f):
    """/counts as an array; a /counts declared huge by an earlier mutation is not read."""
    if f["counts"].size > 10**6:
        raise ValueError("/counts is declared too large to read")
    return f["counts"][:]


def mutate_counts_type(f, rng):
    c = counts_of(f)
    dtype = rng.choice([np.uint8, np.int8, np.uint16, np.uint32, np.uint64, np.int64, np.float32,
                        np.float64, np.bool_])
    replace(f, "counts", c.astype(dtype))
    return f"counts as {np.dtype(dtype).name}"


def mutate_counts_value(f, rng):
    c = counts_of(f).astype(np.int64)
    k, t, n = (rng.randrange(s) for s in c.shape)
    value = rng.choice(EXTREMES_INT + [2**31, 10**9])
    c[k, t, n] = value
    if value >= 0 and rng.random() < 0.5:
        c = c.astype(np.uint64)
        if rng.random() < 0.5:
            c[k, t, n] = np.uint64(2**64 - 1)
    replace(f, "counts", c)
    return f"counts[{k},{t},{n}] = {c[k, t, n]}"


def mutate_counts_shape(f, rng):
    c = counts_of(f)
    shape = rng.choice([(0,) + c.shape[1:], c.shape[:1] + (0,) + c.shape[2:], c.shape[:2] + (0,),
                        c.shape[:2], c.shape + (1,), (c.size,), ()])
    replace(f, "counts", np.zeros(shape, np.int32))
    return f"counts of shape {shape}"


def mutate_counts_declared(f, rng):
    shape = rng.choice([(1, 1, 10**9), (10**6, 1000, 1000), (2**31, 1, 1), (3, 2**31, 2),
                        (10**5, 10**4, 10)])
    attrs = dict(f["counts"].attrs)
    del f["counts"]
    f.create_dataset("counts", shape=shape, dtype=np.int32, chunks=(1, 1, min(shape[2], 1000)))
    f["counts"].attrs.update(attrs)
    for key in ("trial_lengths", "split"):
        if key in f:
            del f[key]
    return f"counts declared {shape}"


def mutate_trial_lengths(f, rng):
    v = f["trial_lengths"][:].astype(np.int64)
    k = rng.randrange(len(v))
    v[k] = rng.choice(EXTREMES_INT + [v.max() + 1])
    dtype = np.uint64 if v[k] >= 0 and rng.random() < 0.5 else np.int64
    v = v.astype(dtype)
    if dtype == np.uint64 and rng.random() < 0.3:
        v[k] = np.uint64(2**64 - 1)
    replace(f, "trial_lengths", rng.choice([v, v[:-1], v.astype(np.float64), v.reshape(-1, 1)]))
    return f"trial_lengths[{k}] = {v[k]}"


def mutate_split(f, rng):
    key = rng.choice(["split/train_trials", "split/test_trials", "split/heldout_neurons"])
    v = f[key][:].astype(np.int64)
    choice = rng.randrange(5)
    if choice == 0:
        v = v[:0]
    elif choice == 1 and len(v):
        v[rng.randrange(len(v))] = rng.choice(EXTREMES_INT + [99])
    elif choice == 2:
        v = np.concatenate([v, v[:1]])
    elif choice == 3:
        del f[key]
        return f"{key} removed"
    else:
        v = v.astype(np.float64)
    replace(f, key, v)
    return f"{key} = {v.tolist()[:6]}"


def mutate_continuous(f, rng):
    c = counts_of(f)
    channels = rng.choice([0, 1, 3])
    y = np.random.default_rng(rng.randrange(2**32)).normal(size=c.shape[:2] + (channels,))
    if channels and rng.random() < 0.8:
        y.flat[rng.randrange(y.size)] = rng.choice(EXTREMES_FLOAT)
    if rng.random() < 0.2:
        y = y[:, :-1]
    f["continuous/x"] = y
    return f"continuous/x of shape {y.shape}"


def mutate_inputs(f, rng):
    c = counts_of(f)
    u = np.random.default_rng(rng.randrange(2**32)).normal(size=c.shape[:2] + (rng.choice([0, 1, 2]),))
    if u.size and rng.random() < 0.7:
        u.flat[rng.randrange(u.size)] = rng.choice(EXTREMES_FLOAT)
    f["inputs"] = u
    return f"inputs of shape {u.shape}"


def mutate_bin_width(f, rng):
    value = rng.choice(EXTREMES_FLOAT + ["0.02", np.array([0.02, 0.02])])
    where = rng.choice([f["counts"].attrs, f.attrs])
    if rng.random() < 0.2:
        del where["bin_width_s"]
        return "bin_width_s removed"
    where["bin_width_s"] = value
    return f"bin_width_s = {value!r}"


def mutate_remove(f, rng):
    names = []
    f.visit(names.append)
    name = rng.choice(names)
    del f[name]
    return f"{name} removed"


def mutate_group(f, rng):
    key = rng.choice(["counts", "trial_lengths", "continuous", "inputs", "split"])
    if key in f:
        del f[key]
    f.create_group(key)
    return f"{key} a group"


STRUCTURAL = [mutate_counts_type, mutate_counts_value, mutate_counts_shape, mutate_counts_declared,
              mutate_trial_lengths, mutate_split, mutate_continuous, mutate_inputs, mutate_bin_width,
              mutate_remove, mutate_group]


def structural_mutant(path, rng):
    with h5py.File(path, "r+") as f:
        return "; ".join(rng.choice(STRUCTURAL)(f, rng) for _ in range(rng.choice([1, 1, 2])))


# ---- one run

def output_problem(path, command):
    """Why an output is not a readable, finite result ("" if it is)."""
    try:
        with h5py.File(path, "r") as f:
            if command == "evaluate":
                return ""
            if not np.isfinite(f.attrs["elbo"]):
                return f"elbo {f.attrs['elbo']}"
            bad = []
            f["globals"].visititems(lambda name, o: bad.append(name) if isinstance(o, h5py.Dataset)
                                    and not np.all(np.isfinite(o[()])) else None)
            if bad:
                return f"non-finite /globals/{bad[0]}"
            if np.any(np.isinf(f["latents/mean"][()])):
                return "infinite latent means"
    except Exception as error:  # unreadable
        return f"unreadable ({error})"
    return ""


def run(case):
    index, path, what, ranks, command_name = case
    out = os.path.join(WORK, f"out{index}.h5")
    before = sha256(path)
    command = ["timeout", "-k", "5", str(LIMIT_S)]
    if ranks > 1:
        command += ["mpirun", "-np", str(ranks)]
    if command_name == "fit":
        command += [SPIKEVI, "fit", "--data", path, "--out", out, "--iterations", "2", "--latents",
                    "2", "--quiet"]
    else:
        command += [SPIKEVI, "evaluate", "--data", path, "--fit", GOOD_FIT, "--out", out]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace")
    status = done.returncode
    errors = [line for line in done.stderr.splitlines() if line.startswith("spikevi: error:")]
    problems = []
    if status in (124, 137):
        problems.append(f"HANG: no exit within {LIMIT_S} s")
    elif status >= 128 or status < 0:
        problems.append(f"killed by a signal (exit {status})")
    elif status == 0:
        problem = output_problem(out, command_name)
        if problem:
            problems.append(f"exit 0 but the output is bad: {problem}")
    elif status not in REFUSALS:
        problems.append(f"exit {status}, not a documented refusal")
    if status != 0 and len(errors) != 1:
        problems.append(f"{len(errors)} 'spikevi: error:' lines, expected 1")
    if any("failed on 0 trial" in line for line in errors):
        problems.append("an error counting 0 failed trials")
    if sha256(path) != before:
        problems.append("the input file changed")
    leftovers = [name for name in os.listdir(WORK) if name.startswith(f"out{index}.h5.")
                 and name.endswith(".tmp")]
    if leftovers:
        problems.append(f"left {leftovers}")
    for name in os.listdir(WORK):
        if name.startswith(f"out{index}.h5"):
            os.remove(os.path.join(WORK, name))
    label = f"mutant {index} [{command_name}, np {ranks}] ({what})"
    if problems:
        stderr = "\n".join("    " + line for line in done.stderr.splitlines()[-12:])
        return False, f"FAIL: {label}: {'; '.join(problems)}\n  command: {' '.join(command)}\n{stderr}", status
    return True, "", status


def main():
    rng = random.Random(SEED)
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["timeout", "-k", "5", str(LIMIT_S), SPIKEVI, "fit", "--data", GOOD, "--out",
                    GOOD_FIT, "--iterations", "2", "--latents", "2", "--quiet"], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    raw = open(GOOD, "rb").read()
    cases = []
    for index in range(MUTANTS):
        path = os.path.join(WORK, f"mutant{index}.h5")
        if index % 2 == 0:
            data, what = byte_mutant(raw, rng)
            open(path, "wb").write(data)
        else:
            shutil.copyfile(GOOD, path)
            try:
                what = structural_mutant(path, rng)
            except Exception as error:  # a mutation refused: the file keeps the earlier ones
                what = f"mutation stopped ({type(error).__name__})"
        ranks = 2 if index % 6 == 5 else 1  # every sixth, a structural one, on two ranks
        cases.append((index, path, what, ranks, "fit"))
        if index % 10 == 3:
            cases.append((MUTANTS + index, path, what, 1, "evaluate"))
    failures = 0
    statuses = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(os.environ.get("SPIKEVI_TEST_JOBS", "2"))) as pool:
        for good, report, status in pool.map(run, cases):
            statuses[status] = statuses.get(status, 0) + 1
            if not good:
                failures += 1
                print(report, flush=True)
    summary = ", ".join(f"exit {s}: {n}" for s, n in sorted(statuses.items()))
    print(f"{'ok' if failures == 0 else 'FAIL'}: {len(cases)} mutants (seed {SEED}), "
          f"{failures} with a problem; {summary}")


main()
