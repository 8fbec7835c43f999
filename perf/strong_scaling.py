#!/usr/bin/env python3
"""Strong-scaling driver, analysis and performance model for `spikevi fit`.

Three modes (see perf/README.md):

  run (default)    simulate one fixed problem, fit it `--repeats` times on every rank count
                   with the same global minibatch, then analyse;
  --analyse-only   build scaling.csv / scaling.png from fit_<ranks>_<repeat>.h5 files that
                   are already in a directory (jobs/scaling.slurm uses this);
  --predict        print the efficiency the scaling model of perf/README.md predicts.

Definitions (HPC_NOTES.md "Reporting scaling"): speedup S(p) = T(1)/T(p), efficiency
E(p) = S(p)/p, Karp-Flatt experimentally determined serial fraction
e(p) = (1/S - 1/p)/(1 - 1/p) (Karp & Flatt, CACM 33(5), 1990; undefined at p = 1).
T(p) is the median over repeats of the solver's own total time, /timing@seconds_total of the
fit file, which leaves out MPI start-up; the process wall time is kept beside it (wall_s).

Needs python3 with numpy and h5py; the plot needs matplotlib (Debian: python3-matplotlib).
"""

import argparse
import csv
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

# Attributes of the /timing group every fit writes (seconds unless named otherwise).
TIMING_KEYS = ("seconds_total", "seconds_local", "seconds_global", "seconds_allreduce",
               "seconds_io", "seconds_other", "seconds_initialisation", "load_imbalance",
               "peak_rss_bytes", "ranks", "iterations")

CSV_COLUMNS = ("ranks", "repeats", "seconds_median", "seconds_min", "seconds_max", "speedup",
               "efficiency", "karp_flatt", "compute_s", "allreduce_s", "io_s", "other_s",
               "load_imbalance", "peak_rss_mb", "wall_s", "init_s", "time_source")

FIT_NAME = re.compile(r"^fit_(\d+)_(\d+)\.h5$")
RUNS_FILE = "runs.csv"  # ranks,repeat,wall_s,status: one row per fit, written by the runner
EFFICIENCY_TARGET = 0.85


# --------------------------------------------------------------------------------------------
# Reading fit files


def read_timing(path):
    """Return the /timing record of one fit file as a dict of floats.

    A key the file lacks (an older spikevi) is NaN. When the whole /timing group is missing,
    seconds_total falls back to the sum of /trace/seconds (the iterations alone: no set-up,
    no output) and the record's "time_source" says "trace" instead of "timing".
    """
    import h5py  # imported here so that --predict runs without h5py

    record = {key: math.nan for key in TIMING_KEYS}
    record["time_source"] = "timing"
    with h5py.File(path, "r") as f:
        if "timing" in f:
            attrs = f["timing"].attrs
            for key in TIMING_KEYS:
                if key in attrs:
                    record[key] = float(np.asarray(attrs[key]).reshape(-1)[0])
        elif "trace/seconds" in f:
            record["seconds_total"] = float(np.sum(f["trace/seconds"][()]))
            record["iterations"] = float(f["trace/seconds"].shape[0])
            record["time_source"] = "trace"
        else:
            record["time_source"] = "none"
    return record


def read_wall_times(directory):
    """Map (ranks, repeat) -> process wall seconds from DIR/runs.csv; empty if absent."""
    path = os.path.join(directory, RUNS_FILE)
    walls = {}
    if not os.path.exists(path):
        return walls
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                walls[(int(row["ranks"]), int(row["repeat"]))] = float(row["wall_s"])
            except (KeyError, ValueError):
                continue
    return walls


def collect_runs(directory):
    """Read every fit_<ranks>_<repeat>.h5 in `directory`: {ranks: [record, ...]}."""
    walls = read_wall_times(directory)
    runs = {}
    for name in sorted(os.listdir(directory)):
        match = FIT_NAME.match(name)
        if not match:
            continue
        ranks, repeat = int(match.group(1)), int(match.group(2))
        record = read_timing(os.path.join(directory, name))
        if not math.isnan(record["ranks"]) and int(record["ranks"]) != ranks:
            print(f"strong_scaling: warning: {name} says it ran on {int(record['ranks'])} "
                  f"ranks; using the file name's {ranks}", file=sys.stderr)
        record["wall_s"] = walls.get((ranks, repeat), math.nan)
        runs.setdefault(ranks, []).append(record)
    return runs


# --------------------------------------------------------------------------------------------
# Analysis


def nan_median(values):
    """Median of the finite values, NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def nan_min(values):
    """Smallest finite value, NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else math.nan


def nan_max(values):
    """Largest finite value, NaN when there are none."""
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def karp_flatt(speedup, ranks):
    """Experimentally determined serial fraction e = (1/S - 1/p)/(1 - 1/p); NaN at p = 1."""
    if ranks <= 1 or not speedup or math.isnan(speedup):
        return math.nan
    return (1.0 / speedup - 1.0 / ranks) / (1.0 - 1.0 / ranks)


def summarise(runs):
    """One row per rank count (ascending) with medians, speedup, efficiency and the split.

    Speedup is against the median at p = 1; without a 1-rank run it is against the smallest
    rank count p0, scaled by p0 (that is, assuming perfect efficiency at p0), with a warning.
    """
    rows = []
    for ranks in sorted(runs):
        records = runs[ranks]
        totals = [r["seconds_total"] for r in records]
        compute = [r["seconds_local"] + r["seconds_global"] for r in records]
        rows.append({
            "ranks": ranks,
            "repeats": len(records),
            "seconds_median": nan_median(totals),
            "seconds_min": nan_min(totals),
            "seconds_max": nan_max(totals),
            "compute_s": nan_median(compute),
            "allreduce_s": nan_median([r["seconds_allreduce"] for r in records]),
            "io_s": nan_median([r["seconds_io"] for r in records]),
            "other_s": nan_median([r["seconds_other"] for r in records]),
            "init_s": nan_median([r["seconds_initialisation"] for r in records]),
            "load_imbalance": nan_median([r["load_imbalance"] for r in records]),
            "peak_rss_mb": nan_max([r["peak_rss_bytes"] for r in records]) / 2**20,
            "wall_s": nan_median([r["wall_s"] for r in records]),
            "time_source": "/".join(sorted({r["time_source"] for r in records})),
        })
    if not rows:
        return rows
    base = rows[0]
    if base["ranks"] != 1:
        print(f"strong_scaling: warning: no 1-rank run; speedups are relative to "
              f"{base['ranks']} ranks, assumed perfectly efficient", file=sys.stderr)
    for row in rows:
        row["speedup"] = base["ranks"] * base["seconds_median"] / row["seconds_median"]
        row["efficiency"] = row["speedup"] / row["ranks"]
        row["karp_flatt"] = karp_flatt(row["speedup"], row["ranks"])
    return rows


def format_cell(value):
    """CSV cell: empty for NaN, plain integers for counts, 6 significant digits otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value is None or math.isnan(value):
        return ""
    return f"{value:.6g}"


def write_csv(rows, path):
    """Write the summary rows to `path` with the columns of CSV_COLUMNS."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([format_cell(row[c]) for c in CSV_COLUMNS])


def print_table(rows, stream=sys.stdout):
    """A short human-readable table of the summary."""
    header = f"{'ranks':>5} {'reps':>4} {'T_med[s]':>10} {'speedup':>8} {'eff':>6} " \
             f"{'karp-fl':>8} {'comp[s]':>9} {'allred[s]':>9} {'io[s]':>8} {'init[s]':>8} " \
             f"{'imbal':>6} " \
             f"{'rss[MB]':>8} {'wall[s]':>8}"
    print(header, file=stream)
    for r in rows:
        cells = [f"{r['ranks']:>5}", f"{r['repeats']:>4}"]
        for key, width, spec in (("seconds_median", 10, ".4g"), ("speedup", 8, ".3f"),
                                 ("efficiency", 6, ".3f"), ("karp_flatt", 8, ".4f"),
                                 ("compute_s", 9, ".4g"), ("allreduce_s", 9, ".4g"),
                                 ("io_s", 8, ".3g"), ("init_s", 8, ".3g"),
                                 ("load_imbalance", 6, ".3f"),
                                 ("peak_rss_mb", 8, ".1f"), ("wall_s", 8, ".3g")):
            value = r[key]
            cells.append(f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}{spec}}")
        print(" ".join(cells), file=stream)
    sources = {r["time_source"] for r in rows}
    if sources != {"timing"}:
        print("note: some fits have no /timing record (older spikevi): T is the sum of "
              "/trace/seconds and the time split is empty", file=stream)


def plot(rows, path, title):
    """Speedup (log-log, ideal line), efficiency (1.0 and target lines), time split bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ranks = np.array([r["ranks"] for r in rows], dtype=float)
    speedup = np.array([r["speedup"] for r in rows])
    efficiency = np.array([r["efficiency"] for r in rows])
    have_split = any(not math.isnan(r["compute_s"]) for r in rows)
    panels = 3 if have_split else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 4.6), constrained_layout=True)

    def rank_ticks(axis):
        """Plain integer tick labels at the measured rank counts on a log2 x axis."""
        axis.set_xscale("log", base=2)
        axis.set_xticks(ranks)
        axis.set_xticklabels([str(int(p)) for p in ranks])
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())

    ax = axes[0]
    ax.loglog(ranks, ranks / ranks[0] * speedup[0], "k--", lw=1, label="ideal")
    ax.loglog(ranks, speedup, "o-", label="measured")
    rank_ticks(ax)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("MPI ranks p")
    ax.set_ylabel("speedup T(1)/T(p)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1]
    ax.semilogx(ranks, efficiency, "o-", label="measured")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="ideal")
    ax.axhline(EFFICIENCY_TARGET, color="tab:red", ls=":", lw=1,
               label=f"target {EFFICIENCY_TARGET}")
    rank_ticks(ax)
    ax.set_ylim(0, max(1.1, float(np.nanmax(efficiency)) * 1.05))
    ax.set_xlabel("MPI ranks p")
    ax.set_ylabel("parallel efficiency S(p)/p")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)

    if have_split:
        ax = axes[2]
        # Shares of the parts' sum, so that the growing allreduce share stays visible at large p
        # (the absolute medians are in scaling.csv).
        labels = [str(r["ranks"]) for r in rows]
        parts = (("compute_s", "compute (local + global)"), ("allreduce_s", "allreduce"),
                 ("io_s", "I/O"), ("init_s", "initialisation"), ("other_s", "other"))
        values = np.nan_to_num(np.array([[r[key] for r in rows] for key, _ in parts]))
        shares = 100.0 * values / np.maximum(values.sum(axis=0), 1e-300)
        bottom = np.zeros(len(rows))
        for share, (_, name) in zip(shares, parts):
            ax.bar(labels, share, bottom=bottom, label=name)
            bottom += share
        ax.set_ylim(0, 100)
        ax.set_xlabel("MPI ranks p")
        ax.set_ylabel("share of solver time [%] (medians)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize="small")
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def analyse(directory, title):
    """Summarise the fits in `directory`; write scaling.csv and scaling.png; print a table."""
    runs = collect_runs(directory)
    if not runs:
        raise SystemExit(f"strong_scaling: no fit_<ranks>_<repeat>.h5 files in {directory}")
    rows = summarise(runs)
    csv_path = os.path.join(directory, "scaling.csv")
    png_path = os.path.join(directory, "scaling.png")
    write_csv(rows, csv_path)
    print_table(rows)
    try:
        plot(rows, png_path, title)
    except ImportError as error:
        print(f"strong_scaling: no plot ({error}); install python3-matplotlib",
              file=sys.stderr)
        png_path = None
    print(f"wrote {csv_path}" + (f" and {png_path}" if png_path else ""))
    return rows


# --------------------------------------------------------------------------------------------
# Running


def child_environment():
    """The environment for mpirun/spikevi: Open MPI as root, no CMA in containers."""
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_btl_vader_single_copy_mechanism": "none"})
    return env


def default_ranks(max_ranks):
    """1, 2, 4, ... up to max_ranks, plus max_ranks itself when it is not a power of two."""
    ranks, p = [], 1
    while p <= max_ranks:
        ranks.append(p)
        p *= 2
    if ranks[-1] != max_ranks:
        ranks.append(max_ranks)
    return ranks


def rank_list(args):
    """The rank counts to run, checked against the cores unless --oversubscribe."""
    cores = os.cpu_count() or 1
    limit = args.max_ranks or cores
    if args.ranks:
        ranks = sorted({int(p) for p in args.ranks.split(",")})
    else:
        ranks = default_ranks(limit)
    if min(ranks) < 1:
        raise SystemExit("strong_scaling: --ranks must be positive")
    if max(ranks) > cores and not args.oversubscribe:
        raise SystemExit(f"strong_scaling: {max(ranks)} ranks > {cores} cores; pass "
                         "--oversubscribe (correctness only: such timings are not scaling)")
    return ranks


def with_tasks(env, ranks):
    """`env` for a run on `ranks` ranks: inside a SLURM job, SLURM_NTASKS is set to `ranks`,
    since spikevi refuses to start when SLURM_NTASKS differs from its MPI size."""
    if "SLURM_NTASKS" not in env:
        return env
    return dict(env, SLURM_NTASKS=str(ranks))


def run_checked(command, env, log_path):
    """Run `command`, its output to `log_path`; return wall seconds; exit on failure."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        status = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if status != 0:
        with open(log_path) as log:
            tail = log.read()[-2000:]
        raise SystemExit(f"strong_scaling: exit status {status} from: {shlex.join(command)}\n"
                         f"{tail}")
    return seconds


def simulate(args, env):
    """Simulate the fixed problem once into OUT_DIR/data.h5; return its path."""
    data = os.path.join(args.out_dir, "data.h5")
    command = [args.spikevi, "simulate", "--out", data, "--trials", str(args.trials),
               "--bins", str(args.bins), "--neurons", str(args.neurons),
               "--latents", str(args.latents), "--seed", "1", "--overwrite"]
    run_checked(command, with_tasks(env, 1), os.path.join(args.out_dir, "simulate.log"))
    return data


def fit_command(args, data, ranks, repeat):
    """The launcher + spikevi fit command line of one run."""
    launcher = shlex.split(args.launcher)
    if args.oversubscribe:
        launcher.append("--oversubscribe")
    command = launcher + [args.np_flag, str(ranks), args.spikevi, "fit", "--data", data,
                          "--out", os.path.join(args.out_dir, f"fit_{ranks}_{repeat}.h5"),
                          "--latents", str(args.latents), "--iterations", str(args.iterations),
                          "--tolerance", "0", "--quiet", "--overwrite"]
    if args.minibatch > 0:
        command += ["--minibatch", str(args.minibatch)]
    if args.threads > 0:  # ranks x threads: each rank shares its trials among the threads
        command += ["--threads", str(args.threads)]
    return command


def run_sweep(args):
    """Simulate, then run every (repeat, ranks) fit, recording wall times in runs.csv.

    Repeats are the outer loop, so slow drifts of the machine spread over all rank counts
    instead of biasing one of them.
    """
    os.makedirs(args.out_dir, exist_ok=True)
    env = child_environment()
    ranks = rank_list(args)
    stale = [name for name in os.listdir(args.out_dir) if FIT_NAME.match(name)]
    for name in stale:  # fits of an earlier sweep would otherwise enter this analysis
        os.remove(os.path.join(args.out_dir, name))
    if stale:
        print(f"strong_scaling: removed {len(stale)} fit file(s) of an earlier sweep from "
              f"{args.out_dir}", file=sys.stderr)
    data = simulate(args, env)
    with open(os.path.join(args.out_dir, RUNS_FILE), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ranks", "repeat", "wall_s", "status"])
        for repeat in range(args.repeats):
            for p in ranks:
                command = fit_command(args, data, p, repeat)
                log = os.path.join(args.out_dir, f"fit_{p}_{repeat}.log")
                wall = run_checked(command, with_tasks(env, p), log)
                writer.writerow([p, repeat, f"{wall:.6f}", 0])
                f.flush()
                print(f"ranks {p:>4} repeat {repeat}: {wall:.3f} s wall", flush=True)


# --------------------------------------------------------------------------------------------
# Performance model (perf/README.md, "Scaling model")


def statistics_count(neurons, latents):
    """Doubles in the per-iteration statistics buffer (GlobalStatistics::pack):

    Sxx (D+1)^2 + Syx D(D+1) + Syy D^2 + n 1 + sum E[z1] D + sum E[z1 z1'] D^2 + trials 1
    + readout gradient N(D+1) + readout Hessian N(D+1)^2 + readout log-likelihood N + elbo 1
    + spike count 1 + candidate log-likelihood N + local iterations, unconverged, failed 3
    = N(D+1)(D+2) + 2N + 4D^2 + 4D + 8.
    """
    n, d = neurons, latents
    return n * (d + 1) * (d + 2) + 2 * n + 4 * d * d + 4 * d + 8


def allreduce_seconds(p, doubles, alpha, beta, words, gamma=0.0, algorithm="rabenseifner"):
    """Allreduce cost (Thakur, Rabenseifner & Gropp, IJHPCA 19(1), 2005):

        rabenseifner (reduce-scatter + allgather by recursive halving / doubling):
            2 log2(p) alpha + 2 (p-1)/p * bytes / beta + (p-1)/p * records * gamma
        ring (the same two phases around a ring):
            2 (p-1) alpha   + 2 (p-1)/p * bytes / beta + (p-1)/p * records * gamma

    bytes = 8 * words * doubles (words int64 per statistic: 1 for a plain double sum, 4 for
    the reproducible one), gamma = seconds to merge one record. 0 at p = 1.
    """
    if p <= 1:
        return 0.0
    nbytes = 8.0 * words * doubles
    latency_steps = 2.0 * math.log2(p) if algorithm == "rabenseifner" else 2.0 * (p - 1)
    return (latency_steps * alpha + 2.0 * (p - 1) / p * nbytes / beta
            + (p - 1) / p * doubles * gamma)


def expected_max_binomial(trials, p):
    """E[max over p ranks of the minibatch members a rank holds], members ~ Binomial(B, 1/p).

    A minibatch of B trials drawn uniformly from K >> B trials sharded in contiguous blocks
    gives each rank about Binomial(B, 1/p) members; the iteration waits for the busiest rank.
    Computed as sum_k (1 - F(k)^p), F the Binomial(B, 1/p) CDF, treating the ranks'
    counts as independent (they are multinomial); against Monte Carlo draws of the
    multinomial this is within 3 % for B = 100, p = 4 and within 1 % for B = 10^4,
    p = 64 ... 4096.
    """
    if p <= 1:
        return float(trials)
    q = 1.0 / p
    k = np.arange(trials + 1)
    log_pmf = (np.array([math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1)
                         for i in k]) + k * math.log(q) + (trials - k) * math.log1p(-q))
    cdf = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return float(np.sum(1.0 - cdf[:-1] ** p))


def predicted_iteration(p, model, balanced):
    """Seconds of one iteration on p ranks, and its parts (the README's scaling model).

    Trials per rank: full batch ceil(K/p) (contiguous balanced blocks); minibatch ceil(|B|/p)
    when `balanced` (a minibatch stratified over ranks), otherwise the expected busiest rank's
    share of a uniform draw (expected_max_binomial), which is what DESIGN.md §4's draw gives.
    """
    batch = model["batch"]
    if model["full_batch"] or balanced:
        per_rank = math.ceil(batch / p)
    else:
        per_rank = expected_max_binomial(batch, p)
    latency_only = (model["small_collectives"] * 2.0 * math.log2(p) * model["alpha"]
                    if p > 1 else 0.0)
    parts = {
        "trials_per_rank": per_rank,
        "local": per_rank * model["t_trial"],
        "allreduce": allreduce_seconds(p, model["stats"], model["alpha"], model["beta"],
                                       model["words"], model["gamma"], model["algorithm"])
        + latency_only,
        "global": model["t_global"],
        "io": model["t_io"],
    }
    parts["total"] = parts["local"] + parts["allreduce"] + parts["global"] + parts["io"]
    return parts


def first_power_below_target(model, t1, balanced):
    """The first p = 2, 4, 8, ... (up to 2^24) whose predicted efficiency is below the target."""
    p = 2
    while p <= 2**24:
        if t1 / predicted_iteration(p, model, balanced)["total"] / p < EFFICIENCY_TARGET:
            return p
        p *= 2
    return None


def predict_table(model, procs):
    """Markdown table of the predicted iteration time and efficiency at each p."""
    t1 = predicted_iteration(1, model, True)["total"]
    batch_name = "full batch" if model["full_batch"] else f"minibatch |B| = {model['batch']:g}"
    lines = [f"K = {model['trials']:g} trials, {batch_name}; S = {model['stats']} statistics x "
             f"{model['words']} words, {model['algorithm']} allreduce; "
             f"t_trial = {model['t_trial']:g} s, "
             f"alpha = {model['alpha'] * 1e6:g} us, beta = {model['beta'] * 1e-9:g} GB/s, "
             f"T_global = {model['t_global']:g} s, T_io = {model['t_io']:g} s; "
             f"T(1) = {t1:.4g} s per iteration",
             "",
             "| p | trials/rank (mean) | busiest rank | T_local [s] | T_allreduce [s] "
             "| T_global [s] | T(p) [s] | speedup | efficiency | efficiency, balanced |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in procs:
        parts = predicted_iteration(p, model, False)
        balanced = predicted_iteration(p, model, True)
        speedup = t1 / parts["total"]
        lines.append(f"| {p} | {model['batch'] / p:.4g} | {parts['trials_per_rank']:.4g} | "
                     f"{parts['local']:.3g} | {parts['allreduce']:.3g} | {parts['global']:.3g} | "
                     f"{parts['total']:.3g} | {speedup:.4g} | {speedup / p:.3f} | "
                     f"{t1 / balanced['total'] / p:.3f} |")
    for balanced, name in ((False, "uniform draw"), (True, "balanced")):
        if balanced and model["full_batch"]:
            continue
        p = first_power_below_target(model, t1, balanced)
        where = f"p = {p}" if p else "no p <= 2^24"
        lines.append(f"\nefficiency ({name}) first falls below {EFFICIENCY_TARGET} at {where} "
                     "(powers of two)")
    return "\n".join(lines)


def run_predict(args):
    """Print one prediction table per batch size in --batch (0 = full batch)."""
    stats = args.stats or statistics_count(args.neurons, args.latents)
    procs = [int(p) for p in args.procs.split(",")]
    for batch in [int(b) for b in args.batch.split(",")]:
        full = batch <= 0 or batch >= args.trials
        model = {"trials": args.trials, "batch": args.trials if full else batch,
                 "full_batch": full, "t_trial": args.t_trial, "alpha": args.alpha * 1e-6,
                 "beta": args.beta * 1e9, "stats": stats, "words": args.words,
                 "gamma": args.gamma * 1e-9, "t_global": args.t_global, "t_io": args.t_io,
                 "small_collectives": args.small_collectives,
                 "algorithm": args.allreduce_algorithm}
        print(predict_table(model, procs))
        print()


# --------------------------------------------------------------------------------------------


def parse_args(argv):
    """Command-line options of the three modes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--analyse-only", metavar="DIR",
                      help="only analyse fit_<ranks>_<repeat>.h5 (and runs.csv) in DIR")
    mode.add_argument("--predict", action="store_true",
                      help="print the scaling model's predicted efficiency table")

    run = parser.add_argument_group("run")
    run.add_argument("--spikevi", help="path of the spikevi binary (required to run)")
    run.add_argument("--ranks", help="comma-separated rank counts (default 1,2,4,... up to "
                     "--max-ranks)")
    run.add_argument("--max-ranks", type=int, default=0,
                     help="largest rank count of the default list (default: os.cpu_count())")
    run.add_argument("--oversubscribe", action="store_true",
                     help="allow more ranks than cores (correctness runs, not timings)")
    run.add_argument("--repeats", type=int, default=3, help="fits per rank count (median)")
    run.add_argument("--trials", type=int, default=400, help="simulated trials (K; also "
                     "the model's K with --predict)")
    run.add_argument("--bins", type=int, default=200)
    run.add_argument("--neurons", type=int, default=150)
    run.add_argument("--latents", type=int, default=8)
    run.add_argument("--iterations", type=int, default=10)
    run.add_argument("--minibatch", type=int, default=0,
                     help="global minibatch, the same at every p (0 = full batch, not passed)")
    run.add_argument("--threads", type=int, default=0,
                     help="--threads per rank of every fit (0: leave unset, i.e. 1)")
    run.add_argument("--launcher", default="mpirun --allow-run-as-root",
                     help="MPI launcher command (split like a shell would)")
    run.add_argument("--np-flag", default="-np",
                     help="the launcher's rank-count flag (-np for mpirun, -n for srun)")
    run.add_argument("--out-dir", default="perf/results")
    run.add_argument("--title", default=None, help="plot title")

    model = parser.add_argument_group("predict (units: seconds unless named)")
    model.add_argument("--t-trial", type=float, default=None,
                       help="seconds per trial per iteration (all local sweeps included)")
    model.add_argument("--alpha", type=float, default=2.0, help="latency per message step, us")
    model.add_argument("--beta", type=float, default=20.0, help="bandwidth, GB/s")
    model.add_argument("--stats", type=int, default=0,
                       help="statistics per iteration (default: from --neurons, --latents)")
    model.add_argument("--words", type=int, default=4,
                       help="int64 words per statistic in the reduction (4 reproducible, "
                       "1 plain double)")
    model.add_argument("--gamma", type=float, default=0.0,
                       help="ns to merge one record in the reduction operator")
    model.add_argument("--t-global", type=float, default=None,
                       help="seconds of the replicated global step per iteration")
    model.add_argument("--t-io", type=float, default=0.0, help="I/O seconds per iteration")
    model.add_argument("--allreduce-algorithm", choices=("rabenseifner", "ring"),
                       default="rabenseifner",
                       help="latency term 2 log2(p) alpha (rabenseifner) or 2 (p-1) alpha (ring)")
    model.add_argument("--small-collectives", type=int, default=0,
                       help="extra latency-bound collectives per iteration (0: spikevi makes "
                       "one reduction per iteration; counters and flags ride in it)")
    model.add_argument("--batch", default="0,10000",
                       help="comma-separated minibatch sizes; 0 = full batch")
    model.add_argument("--procs", default="64,256,1024,4096", help="rank counts to predict")
    args = parser.parse_args(argv)

    if args.predict:
        if args.t_trial is None or args.t_global is None:
            parser.error("--predict needs --t-trial and --t-global")
    elif not args.analyse_only and not args.spikevi:
        parser.error("give --spikevi PATH (run), --analyse-only DIR or --predict")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.predict:
        run_predict(args)
        return 0
    if args.analyse_only:
        analyse(args.analyse_only, args.title or f"spikevi strong scaling ({args.analyse_only})")
        return 0
    run_sweep(args)
    title = args.title or (f"spikevi strong scaling: K={args.trials} T={args.bins} "
                           f"N={args.neurons} D={args.latents}, {args.iterations} iterations"
                           + (f", |B|={args.minibatch}" if args.minibatch > 0 else ""))
    analyse(args.out_dir, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
