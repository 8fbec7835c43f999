#!/usr/bin/python3
"""The drawing half of `spikevi report` (docs/commands.md#report).

`spikevi report` checks its inputs and then runs this script with /usr/bin/python3 (numpy, h5py
and matplotlib from Debian). It turns a fit file, and optionally an evaluation file (with the
data file, for the held-out counts), an SBC file, a comparison table, a family-check table and a
strong-scaling table into one self-contained HTML page: every figure is a PNG drawn with
matplotlib and embedded as base64 in an <img> whose id names the figure (fig-...), every table
is HTML, and a section whose input was not given says so instead.

Exit status: 0 written; 3 an input breaks its layout (one line on stderr); 1 anything else.
"""

import argparse
import base64
import csv
import html
import io
import math
import re
import sys

import numpy as np

try:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError as missing:  # one line, naming the Debian package
    name = getattr(missing, "name", None) or str(missing)
    sys.exit(f"spikevi report needs the Python module {name} in /usr/bin/python3 "
             f"(Debian: python3-{name})")

LEVEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


class ReportError(Exception):
    """An input that breaks its documented layout (exit status 3)."""


# --------------------------------------------------------------------------------------------
# Small helpers


def figure_html(fig, figure_id, caption):
    """The figure as an embedded PNG with its caption; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = html.escape(caption)
    return (f'<figure><img id="{figure_id}" alt="{html.escape(figure_id)}: {text}" '
            f'src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>\n')


def short(cell):
    """A CSV cell for the page: numbers to 5 significant digits, anything else as it is."""
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return cell
    return cell if math.isnan(value) or re.fullmatch(r"-?\d{1,6}", str(cell)) else f"{value:.5g}"


def table_html(header, rows, table_id=None):
    """An HTML table of strings (escaped), scrolling sideways when wider than the page."""
    attribute = f' id="{table_id}"' if table_id else ""
    lines = [f'<div class="table"><table{attribute}><thead><tr>']
    lines += [f"<th>{html.escape(str(h))}</th>" for h in header]
    lines.append("</tr></thead><tbody>\n")
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) +
                     "</tr>\n")
    lines.append("</tbody></table></div>\n")
    return "".join(lines)


def number(value, spec=".4g"):
    """A float as text; empty for NaN or None."""
    if value is None:
        return ""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "" if math.isnan(value) else format(value, spec)


def text_attribute(attrs, key, default=""):
    if key not in attrs:
        return default
    value = attrs[key]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def float_attribute(attrs, key):
    if key not in attrs:
        return math.nan
    return float(np.asarray(attrs[key]).reshape(-1)[0])


def require(f, path, names, what):
    for name in names:
        if name not in f:
            raise ReportError(f"{path}: {name} is missing: not {what}")


def absent(section_id, title, message):
    return (f'<section id="{section_id}" class="absent"><h2>{html.escape(title)}</h2>'
            f'<p class="absent">{html.escape(message)}</p></section>\n')


def slug(name):
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "group"


def read_csv(path, required, what):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        rows = [row for row in reader if row]
    if not rows:
        raise ReportError(f"{path}: empty, expected a CSV with a header line ({what})")
    header, body = rows[0], rows[1:]
    missing = [c for c in required if c not in header]
    if missing:
        raise ReportError(f"{path}: no column {', '.join(missing)} in its header: not {what}")
    return header, body


def column(header, body, name):
    i = header.index(name)
    out = []
    for row in body:
        try:
            out.append(float(row[i]) if i < len(row) and row[i] != "" else math.nan)
        except ValueError:
            out.append(math.nan)
    return np.array(out)


# --------------------------------------------------------------------------------------------
# Sections


def fit_section(path, chosen_trials):
    with h5py.File(path, "r") as f:
        require(f, path, ("elbo", "latents/mean", "latents/cov", "latents/trials"),
                "a fit file of spikevi fit")
        attrs = dict(f.attrs)
        elbo = np.asarray(f["elbo"][()], dtype=float).reshape(-1)
        per_spike = (np.asarray(f["trace/elbo_per_spike"][()], dtype=float).reshape(-1)
                     if "trace/elbo_per_spike" in f else None)
        trials = np.asarray(f["latents/trials"][()]).reshape(-1)
        rows = []
        for trial in chosen_trials if chosen_trials else trials[:3]:
            where = np.nonzero(trials == trial)[0]
            if where.size == 0:
                raise ReportError(f"{path}: trial {trial} is not among /latents/trials")
            k = int(where[0])
            rows.append((int(trial), f["latents/mean"][k], f["latents/cov"][k]))
    summary = [("fit file", path),
               ("observation", text_attribute(attrs, "observation", "poisson")),
               ("family", text_attribute(attrs, "family", "gauss-markov")),
               ("termination", text_attribute(attrs, "termination")),
               ("iterations", str(elbo.size)),
               ("ELBO (nats)", number(float_attribute(attrs, "elbo"), ".6g")),
               ("ELBO per spike", number(float_attribute(attrs, "elbo_per_spike"))),
               ("latents D", str(rows[0][1].shape[-1]) if rows else ""),
               ("fitted trials", str(trials.size)),
               ("version", text_attribute(attrs, "version")),
               ("git revision", text_attribute(attrs, "git_revision")),
               ("date", text_attribute(attrs, "date"))]
    parts = ['<section id="sec-fit"><h2>Fit</h2>\n', table_html(("quantity", "value"), summary, "tab-fit")]

    panels = 2 if per_spike is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 3.6), constrained_layout=True,
                             squeeze=False)
    iterations = np.arange(1, elbo.size + 1)
    axes[0, 0].plot(iterations, elbo, "-", color="tab:blue", marker="." if elbo.size < 60 else "")
    axes[0, 0].set_xlabel("iteration")
    axes[0, 0].set_ylabel("ELBO (nats)")
    axes[0, 0].grid(alpha=0.3)
    if per_spike is not None:
        # The last 80 % of the iterations: the first steps dwarf the approach to convergence.
        start = int(0.2 * per_spike.size)
        axes[0, 1].plot(iterations[start:], per_spike[start:], "-", color="tab:green")
        axes[0, 1].set_xlabel("iteration")
        axes[0, 1].set_ylabel("ELBO per spike (nats)")
        axes[0, 1].set_title("after the first 20 % of the iterations", fontsize="small")
        axes[0, 1].grid(alpha=0.3)
    parts.append(figure_html(fig, "fig-elbo",
                             "ELBO trace: the objective after each iteration (/elbo)"))

    if rows:
        dims = rows[0][1].shape[-1]
        fig, axes = plt.subplots(len(rows), dims, figsize=(4.2 * dims, 2.4 * len(rows)),
                                 constrained_layout=True, squeeze=False)
        for r, (trial, mean, cov) in enumerate(rows):
            valid = ~np.isnan(mean[:, 0])
            bins = np.arange(mean.shape[0])[valid]
            for d in range(dims):
                ax = axes[r, d]
                m = mean[valid, d]
                sd = np.sqrt(np.maximum(cov[valid, d, d], 0.0))
                ax.fill_between(bins, m - 1.96 * sd, m + 1.96 * sd, color="tab:blue", alpha=0.25,
                                label="95 % band")
                ax.plot(bins, m, color="tab:blue", lw=1.2, label="posterior mean")
                ax.set_title(f"trial {trial}, latent {d}", fontsize="small")
                ax.grid(alpha=0.3)
                if r == len(rows) - 1:
                    ax.set_xlabel("bin")
                if r == 0 and d == 0:
                    ax.legend(fontsize="x-small", loc="upper right")
        parts.append(figure_html(
            fig, "fig-latents",
            "Latent trajectories: posterior means m_t with 95 % bands m_t ± 1.96 sqrt(S_t,dd) "
            "(/latents/mean, /latents/cov), canonical gauge, for trials " +
            ", ".join(str(t) for t, _, _ in rows)))
    parts.append("</section>\n")
    return "".join(parts)


def read_coverage(group):
    out = {"levels": group["levels"][()], "pooled": group["pooled"][()],
           "curve_levels": group["curve_levels"][()], "curve_coverage": group["curve_coverage"][()]}
    for name in ("per_neuron", "per_channel"):
        if name in group:
            out["per_row"] = group[name][()]
    for name in ("scored_counts", "scored_values"):
        if name in group.attrs:
            out["scored"] = float_attribute(group.attrs, name)
    return out


def coverage_figure(curves):
    """Calibration curves and the per-row spread at the standard levels."""
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.4), constrained_layout=True)
    ax = axes[0]
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    for i, (label, c) in enumerate(curves):
        colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
        ax.plot(c["curve_levels"], c["curve_coverage"], "-", color=colour, label=label)
        ax.plot(c["levels"], c["pooled"], "o", color=colour)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal level of the central interval")
    ax.set_ylabel("empirical coverage")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    for i, (label, c) in enumerate(curves):
        if "per_row" not in c:
            continue
        colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
        per_row = np.atleast_2d(c["per_row"])
        for l, level in enumerate(c["levels"]):
            x = np.full(per_row.shape[0], level) + (i - 0.5 * (len(curves) - 1)) * 0.02
            ax.plot(x, per_row[:, l], "o", ms=3, alpha=0.6, color=colour,
                    label=label if l == 0 else None)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0.3, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("nominal level")
    ax.set_ylabel("coverage per neuron / channel")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def rates_figure(eval_rates, baseline_rates, counts, lengths, test_trials, heldout, chosen):
    """Per neuron: one test trial's counts and predictions, and the test-trial averages."""
    fig, axes = plt.subplots(len(chosen), 2, figsize=(12.0, 2.3 * len(chosen)),
                             constrained_layout=True, squeeze=False)
    trial_row = 0
    length = int(lengths[trial_row])
    for r, h in enumerate(chosen):
        neuron = int(heldout[h])
        ax = axes[r, 0]
        bins = np.arange(length)
        ax.bar(bins, counts[trial_row, :length, h], width=1.0, color="0.75", label="held-out counts")
        ax.plot(bins, eval_rates[trial_row, :length, h], color="tab:blue", lw=1.4,
                label="fit: predicted rate")
        if baseline_rates is not None:
            ax.plot(bins, baseline_rates[trial_row, :length, h], color="tab:orange", lw=1.0,
                    ls="--", label="stronger baseline")
        ax.set_title(f"neuron {neuron}, test trial {int(test_trials[trial_row])}",
                     fontsize="small")
        ax.set_ylabel("count per bin")
        ax.grid(alpha=0.3)
        ax = axes[r, 1]
        longest = counts.shape[1]
        valid = np.arange(longest)[None, :] < lengths[:, None]
        def average(a):
            a = np.where(valid, a, np.nan)
            return np.nanmean(a, axis=0)
        bins = np.arange(longest)
        ax.plot(bins, average(counts[:, :, h]), color="0.4", lw=1.0, label="held-out counts")
        ax.plot(bins, average(eval_rates[:, :, h]), color="tab:blue", lw=1.4,
                label="fit: predicted rate")
        if baseline_rates is not None:
            ax.plot(bins, average(baseline_rates[:, :, h]), color="tab:orange", lw=1.0, ls="--",
                    label="stronger baseline")
        ax.set_title(f"neuron {neuron}, mean over {counts.shape[0]} test trials",
                     fontsize="small")
        ax.grid(alpha=0.3)
        if r == 0:
            ax.legend(fontsize="x-small", loc="upper right")
        if r == len(chosen) - 1:
            axes[r, 0].set_xlabel("bin")
            axes[r, 1].set_xlabel("bin")
    return fig


def evaluation_section(path, data_path, neurons):
    with h5py.File(path, "r") as f:
        require(f, path, ("cosmoothing/rates",), "an evaluation file of spikevi evaluate")
        cos = f["cosmoothing"].attrs
        scores = [("spikevi fit", number(float_attribute(cos, "bits_per_spike")))]
        for group in ("baseline", "baseline_log"):
            if group in f:
                method = text_attribute(f[group].attrs, "method")
                scores.append((f"/{group}: {method}",
                               number(float_attribute(f[group].attrs, "bits_per_spike"))))
        for key, label in (("truth_parameters_bits_per_spike", "true parameters (/truth)"),
                           ("true_rates_bits_per_spike", "true rates (ceiling)")):
            if not math.isnan(float_attribute(cos, key)):
                scores.append((label, number(float_attribute(cos, key))))
        stronger = text_attribute(cos, "stronger_baseline").lstrip("/")
        rates = f["cosmoothing/rates"][()]
        baseline_rates = f[stronger + "/rates"][()] if stronger and stronger + "/rates" in f else None
        curves = []
        if "coverage/curve_levels" in f:  # evaluate of spikevi 0.1.0 before issue 15 had none
            curves.append(("held-out counts (randomised PIT)", read_coverage(f["coverage"])))
        if "coverage/continuous" in f:
            for name, group in f["coverage/continuous"].items():
                curves.append((f"/continuous/{name} (Gaussian PIT)", read_coverage(group)))
    parts = ['<section id="sec-evaluation"><h2>Evaluation: co-smoothing</h2>\n',
             f"<p>From {html.escape(path)}: bits per held-out spike on the test trials "
             "(higher is better).</p>\n",
             table_html(("predictor", "bits/spike"), scores, "tab-cosmoothing")]

    if data_path:
        with h5py.File(data_path, "r") as d:
            require(d, data_path, ("counts", "split/test_trials", "split/heldout_neurons"),
                    "the data file the evaluation was made on (needs /counts and /split)")
            test = np.asarray(d["split/test_trials"][()]).reshape(-1)
            heldout = np.asarray(d["split/heldout_neurons"][()]).reshape(-1)
            if rates.shape[0] != test.size or rates.shape[2] != heldout.size:
                raise ReportError(
                    f"{data_path}: {test.size} test trials and {heldout.size} held-out neurons, "
                    f"but {path} has rates of shape {list(rates.shape)}: not the data file of "
                    "this evaluation")
            order = np.argsort(test)
            counts = np.empty((test.size, rates.shape[1], heldout.size))
            all_counts = d["counts"]
            for i in order:  # h5py reads rows in increasing order
                counts[i] = all_counts[int(test[i]), :rates.shape[1], :][:, heldout]
            if "trial_lengths" in d:
                lengths = np.asarray(d["trial_lengths"][()]).reshape(-1)[test]
            else:
                lengths = np.full(test.size, rates.shape[1])
        if neurons:
            chosen = []
            for n in neurons:
                where = np.nonzero(heldout == n)[0]
                if where.size == 0:
                    raise ReportError(f"{data_path}: neuron {n} is not among "
                                      "/split/heldout_neurons")
                chosen.append(int(where[0]))
        else:  # the four held-out neurons with the most test spikes
            totals = np.nansum(counts, axis=(0, 1))
            chosen = sorted(np.argsort(-totals, kind="stable")[:4].tolist())
        parts.append(figure_html(
            rates_figure(rates, baseline_rates, counts, lengths, test, heldout, chosen),
            "fig-rates",
            "Predicted rates (expected counts per bin, /cosmoothing/rates) of held-out neurons, "
            "inferred from the held-in neurons only, against their test counts; dashed: the "
            f"stronger baseline ({stronger or 'none'})"))
    else:
        parts.append('<p class="absent" id="absent-rates">Predicted rates against held-out '
                     "counts: not drawn; pass --data DATA.h5 (the data file of the evaluation) "
                     "to show them.</p>\n")

    parts.append("<h3>Posterior-predictive coverage</h3>\n")
    if not curves:
        parts.append('<p class="absent" id="absent-coverage">Not in this evaluation file (an '
                     "evaluate older than its /coverage group): run spikevi evaluate "
                     "again.</p>\n</section>\n")
        return "".join(parts)
    parts.append(figure_html(
        coverage_figure(curves), "fig-coverage",
        "Calibration: empirical coverage of the central posterior-predictive intervals against "
        "their nominal level (dots: 50/80/95 %); right, per held-out neuron or channel. Below "
        "the diagonal: over-confident; above: too wide"))
    header = ["predicted values", "scored"] + [f"{100 * l:.0f} %" for l in curves[0][1]["levels"]]
    rows = [[label, number(c.get("scored"), ".0f")] + [number(p, ".3f") for p in c["pooled"]]
            for label, c in curves]
    parts.append(table_html(header, rows, "tab-coverage"))
    parts.append("</section>\n")
    return "".join(parts)


def binomial_band(trials, probability, tail=0.005):
    """The central 99 % interval of Binomial(trials, probability), from its exact CDF."""
    k = np.arange(trials + 1)
    log_pmf = (np.array([math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1)
                         for i in k]) + k * math.log(probability) +
               (trials - k) * math.log1p(-probability))
    cdf = np.cumsum(np.exp(log_pmf))
    return int(np.searchsorted(cdf, tail)), int(np.searchsorted(cdf, 1.0 - tail))


def sbc_group_figure(name, group, figure_id):
    """One SBC group (docs/output-files.md#sbc-file): its table row, and its rank histogram with
    the 99 % band of uniform ranks beside the ECDF difference with its envelope."""
    g = group.attrs
    histogram = np.asarray(group["histogram"][()], dtype=float)
    grid = group["ecdf_grid"][()]
    difference = group["ecdf_difference"][()]
    lower, upper = group["band_lower"][()], group["band_upper"][()]
    parameters = group["ranks"].shape[1] if "ranks" in group else None
    row = (name, text_attribute(g, "verdict"), parameters or "",
           number(float_attribute(g, "chi_square")),
           number(float_attribute(g, "chi_square_dof"), ".0f"),
           number(float_attribute(g, "chi_square_p_value"), ".3g"))
    total = int(round(histogram.sum()))
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 3.4), constrained_layout=True)
    ax = axes[0]
    bins = histogram.size
    if total > 0:
        low, high = binomial_band(total, 1.0 / bins)
        ax.axhspan(low, high, color="0.85", label="99 % band of uniform ranks")
        ax.axhline(total / bins, color="0.4", lw=1)
    ax.bar(np.arange(bins), histogram, width=0.9, color="tab:blue", label="ranks")
    ax.set_xlabel("rank bin")
    ax.set_ylabel("count")
    ax.set_title(f"{name}: rank histogram ({text_attribute(g, 'verdict')})", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower right")
    ax = axes[1]
    ax.fill_between(grid, lower, upper, color="0.85", label="uniform envelope")
    ax.plot(grid, difference, color="tab:blue", lw=1.2, label="ECDF − uniform CDF")
    ax.axhline(0.0, color="0.4", lw=1)
    ax.set_xlabel("normalised rank")
    ax.set_ylabel("ECDF difference")
    ax.set_title(f"{name}: ECDF difference", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower right")
    ax.grid(alpha=0.3)
    return row, figure_html(fig, figure_id,
                            f"SBC of {name}: rank histogram with the 99 % band of uniform ranks, "
                            "and the ECDF difference with its simultaneous envelope")


def family_check_html(path):
    """spikevi family-check's FAMILY.h5 (docs/output-files.md#family-check-file): both families
    side by side, and each family's SBC rank histogram."""
    with h5py.File(path, "r") as f:
        require(f, path, ("families",), "a family-check file of spikevi family-check")
        attrs = f.attrs
        families = list(f["families"].keys())
        header = ["", *families]
        rows = [["ELBO (nats)", *[number(float_attribute(f["families"][k].attrs, "elbo"))
                                   for k in families]]]
        for level in ("50", "80", "95"):
            nominal = float_attribute(f["families"][families[0]].attrs, f"nominal_{level}")
            rows.append([f"latent coverage, {level} % (nominal {number(nominal, '.3f')})",
                         *[number(float_attribute(f["families"][k].attrs, f"coverage_{level}"),
                                  ".3f") for k in families]])
        rows.append(["SBC chi-square p-value",
                     *[number(float_attribute(f["families"][k].attrs, "chi_square_p_value"),
                              ".3g") for k in families]])
        rows.append(["SBC verdict", *[text_attribute(f["families"][k].attrs, "verdict")
                                      for k in families]])
        parts = [f"<p>From {html.escape(path)}: ELBO gain of Gauss–Markov over mean-field "
                 f"{number(float_attribute(attrs, 'elbo_gain_per_spike'), '+.4f')} nats/spike; "
                 "posterior log-rate variance ratio Gauss–Markov / mean-field median "
                 f"{number(float_attribute(attrs, 'variance_ratio_median'), '.3f')} "
                 f"(10–90 %: {number(float_attribute(attrs, 'variance_ratio_p10'), '.3f')}–"
                 f"{number(float_attribute(attrs, 'variance_ratio_p90'), '.3f')}).</p>\n",
                 table_html(header, rows, "tab-family-check")]
        for family in families:
            sbc = f["families"][family].get("sbc")
            for name, group in (sbc.items() if sbc is not None else ()):
                parts.append(sbc_group_figure(f"{family} {name}", group,
                                              f"fig-family-sbc-{slug(family)}-{slug(name)}")[1])
    return "".join(parts)


def sbc_section(path):
    parts = ['<section id="sec-sbc"><h2>Simulation-based calibration</h2>\n']
    with h5py.File(path, "r") as f:
        require(f, path, ("sbc",), "an SBC file of spikevi sbc")
        attrs = f.attrs
        parts.append(f"<p>From {html.escape(path)}: family "
                     f"{html.escape(text_attribute(attrs, 'family'))}, "
                     f"{html.escape(text_attribute(attrs, 'replicates'))} replicates, "
                     f"{html.escape(text_attribute(attrs, 'draws'))} posterior draws each, "
                     f"{html.escape(text_attribute(attrs, 'bins'))} rank bins. A calibrated "
                     "posterior gives uniform ranks: the histogram inside its band and the ECDF "
                     "difference inside its envelope.</p>\n")
        rows, figures = [], []
        for name, group in f["sbc"].items():
            for dataset in ("histogram", "ecdf_grid", "ecdf_difference", "band_lower",
                            "band_upper"):
                if dataset not in group:
                    raise ReportError(f"{path}: /sbc/{name}/{dataset} is missing")
            row, figure = sbc_group_figure(name, group, f"fig-sbc-{slug(name)}")
            rows.append(row)
            figures.append(figure)
    if not rows:
        raise ReportError(f"{path}: /sbc holds no group")
    parts.append(table_html(("group", "verdict", "parameters", "chi-square", "dof", "p-value"),
                            rows, "tab-sbc"))
    parts += figures
    parts.append("</section>\n")
    return "".join(parts)


def comparison_section(path, family_path):
    parts = ['<section id="sec-comparison"><h2>Model comparison</h2>\n']
    if path:
        header, body = read_csv(path, ("observation", "family", "cobps", "heldout_ll_per_spike"),
                                "a comparison table of spikevi compare --table")
        labels = []
        for row in body:
            cells = dict(zip(header, row))
            label = f"{cells['observation']} / {cells['family']}"
            if "latents" in cells:
                label += f" / D={cells['latents']}"
            if cells.get("continuous") in ("use", "ignore"):
                label += f" / {cells['continuous']}"
            labels.append(label)
        parts.append(f"<p>From {html.escape(path)}: means over the cross-validation folds "
                     "± standard errors.</p>\n")
        parts.append(table_html(header, [[short(c) for c in row] for row in body], "tab-comparison"))
        if body:
            fig, axes = plt.subplots(1, 2, figsize=(12.0, 0.45 * len(body) + 1.6),
                                     constrained_layout=True)
            y = np.arange(len(body))
            for ax, key, se, title in ((axes[0], "cobps", "cobps_se", "co-smoothing (bits/spike)"),
                                       (axes[1], "heldout_ll_per_spike", "heldout_ll_se",
                                        "held-out log-likelihood per spike (nats)")):
                values = column(header, body, key)
                errors = column(header, body, se) if se in header else None
                ax.errorbar(values, y, xerr=errors, fmt="o", color="tab:blue", capsize=3)
                ax.set_yticks(y)
                ax.set_yticklabels(labels if ax is axes[0] else [""] * len(y), fontsize="small")
                ax.set_xlabel(title)
                ax.invert_yaxis()
                ax.grid(alpha=0.3)
            parts.append(figure_html(fig, "fig-comparison",
                                     "Candidates of the comparison: means over folds ± one "
                                     "standard error (higher is better)"))
    else:
        parts.append('<p class="absent" id="absent-comparison">Comparison table: not given; '
                     "pass --comparison TABLE.csv (spikevi compare --table) to show it.</p>\n")
    parts.append("<h3>Family check</h3>\n")
    if family_path and h5py.is_hdf5(family_path):
        parts.append(family_check_html(family_path))
    elif family_path:
        header, body = read_csv(family_path, (), "a family-check table (CSV with a header)")
        parts.append(f"<p>From {html.escape(family_path)}.</p>\n")
        parts.append(table_html(header, body, "tab-family-check"))
    else:
        parts.append('<p class="absent" id="absent-family-check">Family check: not given; pass '
                     "--family-check FAMILY.h5 (spikevi family-check) to show it (the comparison table's "
                     "family_elbo_gap_per_spike and variance_ratio columns hold the check that "
                     "spikevi compare --families gauss-markov,mean-field makes).</p>\n")
    parts.append("</section>\n")
    return "".join(parts)


def scaling_section(path):
    header, body = read_csv(path, ("ranks", "speedup", "efficiency"),
                            "a strong-scaling table of perf/strong_scaling.py")
    ranks = column(header, body, "ranks")
    speedup = column(header, body, "speedup")
    efficiency = column(header, body, "efficiency")
    if ranks.size == 0 or np.isnan(ranks).any():
        raise ReportError(f"{path}: no rows with a rank count")
    order = np.argsort(ranks)
    ranks, speedup, efficiency = ranks[order], speedup[order], efficiency[order]
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), constrained_layout=True)
    ax = axes[0]
    ax.loglog(ranks, ranks / ranks[0] * speedup[0], "k--", lw=1, base=2, label="ideal")
    ax.loglog(ranks, speedup, "o-", base=2, label="measured")
    ax.set_xlabel("MPI ranks p")
    ax.set_ylabel("speedup T(1)/T(p)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    ax = axes[1]
    ax.semilogx(ranks, efficiency, "o-", base=2, label="measured")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="ideal")
    ax.set_ylim(0, max(1.1, float(np.nanmax(efficiency)) * 1.05))
    ax.set_xlabel("MPI ranks p")
    ax.set_ylabel("parallel efficiency S(p)/p")
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    for ax in axes:
        ax.set_xticks(ranks)
        ax.set_xticklabels([f"{int(p)}" for p in ranks])
    return "".join([
        '<section id="sec-scaling"><h2>Strong scaling</h2>\n',
        f"<p>From {html.escape(path)} (perf/strong_scaling.py).</p>\n",
        figure_html(fig, "fig-scaling", "Strong scaling of spikevi fit: speedup and parallel "
                    "efficiency against the rank count, one fixed problem"),
        table_html(header, [[short(c) for c in row] for row in body], "tab-scaling"), "</section>\n"])


STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1320px; color: #222; }
h1 { border-bottom: 2px solid #446; }
h2 { border-bottom: 1px solid #ccd; margin-top: 1.6em; }
div.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
td, th { border: 1px solid #ccd; padding: 2px 6px; text-align: left; }
th { background: #eef; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; max-width: 1100px; }
p.absent { color: #777; font-style: italic; }
"""


def build(args):
    trials = [int(t) for t in args.trials.split(",")] if args.trials else []
    neurons = [int(n) for n in args.neurons.split(",")] if args.neurons else []
    sections = [fit_section(args.fit, trials)]
    if args.evaluation:
        sections.append(evaluation_section(args.evaluation, args.data, neurons))
    else:
        sections.append(absent("sec-evaluation", "Evaluation: co-smoothing",
                               "Not given: pass --evaluation EVAL.h5 (spikevi evaluate) and "
                               "--data DATA.h5 to show the co-smoothing scores, the predicted "
                               "rates and the coverage curve."))
    if args.sbc:
        sections.append(sbc_section(args.sbc))
    else:
        sections.append(absent("sec-sbc", "Simulation-based calibration",
                               "Not given: pass --sbc SBC.h5 (spikevi sbc) to show the rank "
                               "histograms and ECDF differences."))
    sections.append(comparison_section(args.comparison, args.family_check))
    if args.scaling:
        sections.append(scaling_section(args.scaling))
    else:
        sections.append(absent("sec-scaling", "Strong scaling",
                               "Not given: pass --scaling scaling.csv (perf/strong_scaling.py) "
                               "to show the strong-scaling plot."))
    title = html.escape(args.title)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{STYLE}</style></head><body>\n"
            f"<h1>{title}</h1>\n<p>Written by {html.escape(args.version)} (spikevi report; "
            "docs/commands.md#report).</p>\n" + "".join(sections) + "</body></html>\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", required=True)
    parser.add_argument("--evaluation")
    parser.add_argument("--data")
    parser.add_argument("--sbc")
    parser.add_argument("--comparison")
    parser.add_argument("--family-check")
    parser.add_argument("--scaling")
    parser.add_argument("--trials", help="file indices of the fitted trials to draw, a,b,c")
    parser.add_argument("--neurons", help="held-out neurons (file indices) to draw, a,b,c")
    parser.add_argument("--title", default="spikevi report")
    parser.add_argument("--version", default="spikevi")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        page = build(args)
    except (ReportError, OSError, KeyError) as error:
        # OSError: h5py cannot open a file; KeyError: a dataset of the layout is missing.
        print(error, file=sys.stderr)
        return 3
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
