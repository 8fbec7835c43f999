#!/usr/bin/env python3
"""Time-to-solution benchmark for `spikevi fit` and `spikevi evaluate` (issue 17).

Simulates the workloads of perf/README.md ("Time to solution"), fits each with the given
tolerance, evaluates the fit, and prints per workload: iterations, local sweeps (mean CVI
evaluations per trial summed over the iterations), the time to reach each relative-ELBO
tolerance (initialisation included), the converged ELBO, the co-smoothing reached (bits per
held-out spike), the evaluate time, and the fraction of the machine's single-core GEMM peak
(bench_readout's reference GEMM) that the fit's estimated flop count reaches per CPU second.

    python3 perf/time_to_solution.py --spikevi build/spikevi --repeats 3
    python3 perf/time_to_solution.py --spikevi build/spikevi --workloads small,nb \\
        --fit-args "--local-steps 1" --threads 2

Timings are the medians over --repeats; ELBO and co-bps are those of the last repeat (a fit
is deterministic). --reference DIR compares every workload's ELBO and co-bps against the
fit files a previous run left in DIR (--keep DIR), with the issue's tolerances (ELBO 1e-5
relative, co-bps 0.003). Needs python3 with numpy and h5py.
"""

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# name: (simulate arguments, fit arguments, what it stands for)
WORKLOADS = {
    "small": ("--trials 40", "--latents 4", "30 train trials x 100 bins x 60 neurons, D=4"),
    "large": ("--trials 400 --bins 200 --neurons 150 --latents 8", "--latents 8",
              "320 train trials x 200 bins x 150 neurons, D=8"),
    "ragged": ("--preset sparse --trials 286 --bins 177 --neurons 84 --latents 8 "
               "--min-length-fraction 0.27", "--latents 8",
               "229 train trials x 48-177 bins x 84 neurons, D=8 (M1-sized, sparse preset)"),
    "poisson_q": ("--trials 40", "--latents 4 --expectations quadrature",
                  "small, Poisson by 20-node quadrature"),
    "nb": ("--trials 40 --observation negbin", "--latents 4 --observation negbin",
           "small, negative binomial (quadrature)"),
    "bernoulli": ("--trials 40 --observation bernoulli --mean-rate 5",
                  "--latents 4 --observation bernoulli", "small, Bernoulli (quadrature)"),
}
DEFAULT_WORKLOADS = "small,large,ragged,nb,bernoulli"
TOLERANCES = (1e-4, 1e-5, 1e-6)


def run(command, **kwargs):
    """Runs `command`; returns (wall seconds, CPU seconds of the child, stdout). On a shared
    machine the CPU time (user + system) is the steadier figure of one-thread work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        sys.stderr.write(f"command failed ({result.returncode}): {shlex.join(command)}\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n")
        raise SystemExit(1)
    return elapsed, cpu, result.stdout


def read_fit(path):
    import h5py

    with h5py.File(path, "r") as f:
        trace = {key: f["trace"][key][()] for key in f["trace"]}
        trace["elbo"] = f["elbo"][()]
        timing = {key: float(np.asarray(f["timing"].attrs[key]).reshape(-1)[0])
                  for key in f["timing"].attrs}
        elbo = float(trace["elbo"][-1])
    return trace, timing, elbo


def read_cobps(path):
    import h5py

    with h5py.File(path, "r") as f:
        return float(f["cosmoothing"].attrs["bits_per_spike"])


def time_to_tolerance(trace, timing, tolerance):
    """Seconds from the start (initialisation included) to the first iteration whose
    relative ELBO change is below `tolerance`; NaN if none."""
    change = np.abs(trace["relative_change"])
    below = np.nonzero(change < tolerance)[0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    return timing.get("seconds_initialisation", 0.0) + float(np.sum(trace["seconds"][: i + 1]))


def measure_peak(perf_dir):
    """Single-core GEMM peak in GFLOP/s: the best of bench_readout's reference GEMMs (NaN if
    absent)."""
    program = os.path.join(perf_dir, "bench_readout")
    if not os.path.exists(program):
        return float("nan")
    result = subprocess.run([program, "--benchmark_filter=BM_ReferenceGemm",
                             "--benchmark_format=json", "--benchmark_min_time=0.2s"],
                            capture_output=True, text=True)
    try:
        data = json.loads(result.stdout)
        return max(float(bench["GFLOP/s"]) for bench in data["benchmarks"])
    except (ValueError, KeyError):  # no JSON or no GEMM benchmark
        pass
    return float("nan")


def flops_per_sweep(neurons, dim, bins):
    """Dominant flops of one local sweep over one trial (bench_local_sweep's count): eta
    moments (C m, diag(C S C')), site targets (sum_n G c c'), smoother O(T D^3)."""
    return bins * (2 * neurons * dim + 2 * neurons * dim * dim + 2 * neurons * dim * dim +
                   10 * dim ** 3)


def shape_of(data_path):
    import h5py

    with h5py.File(data_path, "r") as f:
        counts = f["counts"]
        trials, bins, neurons = counts.shape
        lengths = f["trial_lengths"][()] if "trial_lengths" in f else np.full(trials, bins)
        train = f["split/train_trials"][()] if "split/train_trials" in f else np.arange(trials)
    return float(np.sum(lengths[train])), neurons, len(train)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spikevi", default="build/spikevi")
    parser.add_argument("--workloads", default=DEFAULT_WORKLOADS,
                        help="comma-separated, of: " + ", ".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--fit-args", default="", help="extra arguments for every fit")
    parser.add_argument("--threads", type=int, default=0,
                        help="--threads N for fit and evaluate (0: leave unset)")
    parser.add_argument("--no-evaluate", action="store_true")
    parser.add_argument("--keep", help="keep data, fit and evaluation files in this directory")
    parser.add_argument("--reference", help="directory of a previous --keep run to compare to")
    parser.add_argument("--json", help="write the rows as JSON here")
    parser.add_argument("--bench-dir", help="where bench_readout is, for the GEMM peak "
                        "(default: perf/ beside --spikevi)")
    args = parser.parse_args()

    spikevi = os.path.abspath(args.spikevi)
    work = args.keep or tempfile.mkdtemp(prefix="spikevi_tts_")
    os.makedirs(work, exist_ok=True)
    peak = measure_peak(args.bench_dir or os.path.join(os.path.dirname(spikevi), "perf"))
    thread_args = ["--threads", str(args.threads)] if args.threads > 0 else []
    rows = []
    for name in args.workloads.split(","):
        simulate_args, fit_args, description = WORKLOADS[name]
        data = os.path.join(work, f"{name}_data.h5")
        fit = os.path.join(work, f"{name}_fit.h5")
        evaluation = os.path.join(work, f"{name}_eval.h5")
        if not os.path.exists(data):
            run([spikevi, "simulate", "--out", data, "--seed", "17", "--overwrite"] +
                shlex.split(simulate_args))
        fit_command = ([spikevi, "fit", "--data", data, "--out", fit, "--overwrite", "--quiet",
                        "--tolerance", str(args.tolerance), "--iterations",
                        str(args.iterations), "--checkpoint-every", "0"] +
                       shlex.split(fit_args) + shlex.split(args.fit_args) + thread_args)
        fit_seconds, eval_seconds, solver_seconds, per_iteration = [], [], [], []
        fit_cpu, eval_cpu = [], []
        for _ in range(args.repeats):
            elapsed, cpu, _ = run(fit_command)
            fit_seconds.append(elapsed)
            fit_cpu.append(cpu)
            trace, timing, elbo = read_fit(fit)
            solver_seconds.append(timing["seconds_total"])
            per_iteration.append(float(np.median(trace["seconds"])))
            if not args.no_evaluate:
                elapsed, cpu, _ = run([spikevi, "evaluate", "--data", data, "--fit", fit,
                                       "--out", evaluation, "--overwrite"] + thread_args)
                eval_seconds.append(elapsed)
                eval_cpu.append(cpu)
        trace, timing, elbo = read_fit(fit)
        bins_total, neurons, _ = shape_of(data)
        sweeps = float(np.sum(trace["local_iterations"]))
        dim = int(shlex.split(fit_args)[shlex.split(fit_args).index("--latents") + 1])
        flops = sweeps * flops_per_sweep(neurons, dim, 1) * bins_total
        row = {
            "workload": name,
            "description": description,
            "iterations": int(trace["elbo"].shape[0]),
            "local_sweeps": sweeps,
            "init_s": timing.get("seconds_initialisation", float("nan")),
            "solver_s": statistics.median(solver_seconds),
            "process_s": statistics.median(fit_seconds),
            "per_iteration_s": statistics.median(per_iteration),
            "elbo": elbo,
            "cobps": float("nan") if args.no_evaluate else read_cobps(evaluation),
            "evaluate_s": statistics.median(eval_seconds) if eval_seconds else float("nan"),
            "fit_cpu_s": statistics.median(fit_cpu),
            "evaluate_cpu_s": statistics.median(eval_cpu) if eval_cpu else float("nan"),
            "peak_fraction": flops / max(statistics.median(fit_cpu), 1e-9) / 1e9 / peak,
        }
        for tol in TOLERANCES:
            row[f"t_{tol:g}"] = time_to_tolerance(trace, timing, tol)
        if args.reference:
            ref_fit = os.path.join(args.reference, f"{name}_fit.h5")
            ref_eval = os.path.join(args.reference, f"{name}_eval.h5")
            if os.path.exists(ref_fit):
                ref_elbo = read_fit(ref_fit)[2]
                row["elbo_rel_diff"] = abs(elbo - ref_elbo) / abs(ref_elbo)
            if os.path.exists(ref_eval) and not args.no_evaluate:
                row["cobps_diff"] = row["cobps"] - read_cobps(ref_eval)
        rows.append(row)
        print_row(row, peak)
        sys.stdout.flush()
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


def print_row(row, peak):
    print(f"# {row['workload']}: {row['description']} (peak {peak:.1f} GFLOP/s)")


def print_table(rows):
    head = ["workload", "iters", "sweeps", "init s", "fit s", "fit CPU s", "s/iter"] + \
           [f"t({tol:g}) s" for tol in TOLERANCES] + \
           ["ELBO", "co-bps", "eval s", "eval CPU s", "%peak"]
    extra = any("elbo_rel_diff" in r for r in rows)
    if extra:
        head += ["dELBO rel", "d co-bps"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        cells = [r["workload"], str(r["iterations"]), f"{r['local_sweeps']:.0f}",
                 f"{r['init_s']:.2f}", f"{r['solver_s']:.2f}", f"{r['fit_cpu_s']:.2f}",
                 f"{r['per_iteration_s']:.3f}"] + \
                [f"{r[f't_{tol:g}']:.2f}" for tol in TOLERANCES] + \
                [f"{r['elbo']:.7e}", f"{r['cobps']:.4f}", f"{r['evaluate_s']:.2f}",
                 f"{r['evaluate_cpu_s']:.2f}",
                 f"{100 * r['peak_fraction']:.1f}"]
        if extra:
            cells += [f"{r.get('elbo_rel_diff', float('nan')):.1e}",
                      f"{r.get('cobps_diff', float('nan')):+.4f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
