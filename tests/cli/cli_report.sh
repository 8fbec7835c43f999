#!/usr/bin/env bash
# spikevi report as a user sees it: simulate (with behaviour), fit, evaluate, compare a tiny
# grid, and make a scaling table, an SBC file and a family-check table; write the page, check
# that every expected figure is embedded (by id) and non-blank, render the page in headless
# Chromium, and check that the screenshot and each figure's region in it are not blank. Plus
# the page with the fit alone (sections absent, said so), the evaluation file's coverage of the
# Gaussian modality, and refusals with one clear line.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_python_modules h5py matplotlib

size=(--trials 24 --bins 40 --neurons 16 --latents 2)
check "report --help" "$spikevi" report --help
holds "report --help names its outputs and docs" "$work/out" \
  "^Documentation: .*outputs: .*docs/commands.md#report" "--evaluation" "--sbc" "--scaling"

check "simulate with behaviour" "$spikevi" simulate --out "$work/data.h5" "${size[@]}" --behavior 2
check "fit" "$spikevi" fit --data "$work/data.h5" --latents 2 --iterations 40 --quiet \
  --out "$work/fit.h5"
check "evaluate" "$spikevi" evaluate --data "$work/data.h5" --fit "$work/fit.h5" \
  --out "$work/eval.h5"
holds "evaluate prints the coverage of the counts and of the behaviour" "$work/out" \
  "coverage of the held-out test counts" \
  "coverage of /continuous/behavior from the test trials' spikes (Gaussian PIT, [0-9]* values): 50% interval"

# /coverage/continuous/behavior: the layout, and its figures recomputed from the predictive
# (the fit's readout of the modality through the test latents that decode infers, i.e. decode
# --readout-from fit).
check "decode the behaviour" "$spikevi" decode --data "$work/data.h5" --fit "$work/fit.h5" \
  --target behavior --out "$work/decoded.h5" --readout-from fit
assert -v "Gaussian coverage: layout, and 95% pooled = decode's 95% coverage" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/eval.h5") as f, h5py.File(f"{w}/decoded.h5") as dec, h5py.File(f"{w}/data.h5") as d:
    g = f["coverage/continuous/behavior"]
    levels, pooled = g["levels"][()], g["pooled"][()]
    assert np.allclose(levels, [0.5, 0.8, 0.95]), levels
    assert g["per_channel"].shape == (2, 3), g["per_channel"].shape
    assert g["curve_levels"].shape == (19,) and g["curve_coverage"].shape == (19,)
    assert np.all(np.diff(pooled) >= 0) and np.all((0 <= pooled) & (pooled <= 1)), pooled
    test = d["split/test_trials"][()]
    y = d["continuous/behavior"][()][np.sort(test)]
    observed = np.isfinite(y).sum()
    assert g.attrs["scored_values"] == observed, (g.attrs["scored_values"], observed)
    # decode's 95% interval is mean -/+ 1.96 sd of the same predictive: the same share inside
    # (the PIT's |u - 1/2| <= 0.475 is that interval), up to values on the boundary.
    print("  pooled", pooled, " decode coverage", dec["decoded"].attrs["coverage"])
    assert abs(pooled[2] - dec["decoded"].attrs["coverage"]) < 1e-9
PY

check "compare a tiny grid" "$spikevi" compare --data "$work/data.h5" --models poisson \
  --families gauss-markov,mean-field --latents 1,2 --folds 2 --iterations 15 --quiet \
  --table "$work/comparison.csv"
cat >"$work/scaling.csv" <<'CSV'
ranks,repeats,seconds_median,seconds_min,seconds_max,speedup,efficiency,karp_flatt,compute_s,allreduce_s,io_s,other_s,load_imbalance,peak_rss_mb,wall_s,init_s,time_source
1,3,40.0,39.5,41.0,1,1,,38,0,1,1,1,120,42,0.5,timing
2,3,21.0,20.8,21.5,1.905,0.952,0.05,19,0.8,1,0.2,1.02,125,23,0.5,timing
4,3,11.5,11.2,11.9,3.478,0.870,0.05,9.5,1,0.8,0.2,1.05,130,13,0.5,timing
8,3,6.8,6.6,7.1,5.882,0.735,0.0514,4.8,1.2,0.6,0.2,1.08,140,8.5,0.5,timing
CSV
cat >"$work/family.csv" <<'CSV'
family,elbo_per_spike,variance_ratio,verdict
gauss-markov,-1.234,1,reference
mean-field,-1.301,1.42,narrower posterior
CSV
# An SBC file in the layout spikevi sbc writes (issue 15: root attributes family, replicates,
# draws, bins; per group /sbc/G its verdict, chi-square test, ranks, names, histogram, ECDF
# difference and band): two groups of ranks, one uniform, one piled at the ends (an
# over-confident posterior).
"$python" - "$work/sbc.h5" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
R, draws, bins = 200, 99, 10
with h5py.File(sys.argv[1], "w") as f:
    f.attrs.update(family="gauss-markov", replicates=R, draws=draws, bins=bins, version="test")
    for name, ranks in (("globals", rng.integers(0, draws + 1, (R, 3))),
                        ("latents", np.clip(np.round(rng.beta(0.6, 0.6, (R, 4)) * draws), 0, draws).astype(int))):
        g = f.create_group(f"sbc/{name}")
        g["ranks"] = ranks.astype(np.int64)
        g["names"] = np.array([f"{name}[{k}]" for k in range(ranks.shape[1])], dtype=h5py.string_dtype())
        hist = np.bincount(ranks.reshape(-1) * bins // (draws + 1), minlength=bins).astype(np.int64)
        g["histogram"] = hist
        grid = np.linspace(0, 1, 51)
        ecdf = np.array([(ranks.reshape(-1) / (draws + 1) <= x).mean() for x in grid])
        g["ecdf_grid"], g["ecdf_difference"] = grid, ecdf - grid
        half = 1.96 * np.sqrt(grid * (1 - grid) / ranks.size) * 1.3
        g["band_lower"], g["band_upper"] = -half, half
        expected = ranks.size / bins
        chi = float(((hist - expected) ** 2 / expected).sum())
        g.attrs.update(verdict="calibrated" if name == "globals" else "miscalibrated",
                       chi_square=chi, chi_square_dof=bins - 1,
                       chi_square_p_value=0.4 if name == "globals" else 1e-6)
PY

full=(--fit "$work/fit.h5" --evaluation "$work/eval.h5" --data "$work/data.h5"
      --sbc "$work/sbc.h5" --comparison "$work/comparison.csv" --family-check "$work/family.csv"
      --scaling "$work/scaling.csv")
check "report with every input" "$spikevi" report "${full[@]}" --trials 0,1 --out "$work/report.html"
holds "report says what it wrote" "$work/out" "^wrote .*report.html"
check "report on 2 ranks (rank 0 draws)" timeout -k 10 300 mpirun -np 2 "$spikevi" report \
  "${full[@]}" --out "$work/report2.html"

# check_page PAGE FIGURE-ID... : every figure is an embedded PNG with that id whose pixels are
# not all one colour, no figure beyond those, and nothing loaded from elsewhere.
check_page() {
  "$python" - "$@" <<'PY'
import base64, io, re, sys
import numpy as np
import matplotlib.image
page, expected = sys.argv[1], sys.argv[2:]
text = open(page, encoding="utf-8").read()
images = dict(re.findall(r'<img id="([^"]+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', text))
assert sorted(images) == sorted(expected), ("figures", sorted(images), "expected", sorted(expected))
for name, data in images.items():
    pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
    rgb = pixels[..., :3]
    assert rgb.shape[0] > 100 and rgb.shape[1] > 100, (name, rgb.shape)
    assert rgb.var() > 1e-4, (name, "blank", rgb.var())
    # some ink: at least 1% of the pixels are not the background white
    ink = (rgb.min(axis=2) < 0.9).mean()
    assert ink > 0.01, (name, "almost empty", ink)
    print(f"  {name}: {rgb.shape[1]} x {rgb.shape[0]} px, variance {rgb.var():.4f}, ink {ink:.3f}")
assert not re.search(r'(src|href)="(?!data:)', text), "a reference outside the page"
assert "<script" not in text
PY
}
figures=(fig-elbo fig-latents fig-rates fig-coverage fig-sbc-globals fig-sbc-latents
         fig-comparison fig-scaling)
assert -v "every figure embedded and non-blank" check_page "$work/report.html" "${figures[@]}"
holds "the tables are HTML" "$work/report.html" '<table id="tab-comparison">' \
  '<table id="tab-family-check">' '<table id="tab-scaling">' '<table id="tab-sbc">' \
  '<table id="tab-coverage">' '/continuous/behavior (Gaussian PIT)' 'narrower posterior'
assert "2 ranks: the same figures" check_page "$work/report2.html" "${figures[@]}"

# spikevi family-check's own FAMILY.h5: both families side by side and each family's SBC figure.
check "family-check" "$spikevi" family-check --data "$work/data.h5" --fit "$work/fit.h5" \
  --replicates 40 --out "$work/family.h5" --quiet
check "report with the family-check file" "$spikevi" report --fit "$work/fit.h5" \
  --family-check "$work/family.h5" --out "$work/report_family.html"
assert -v "family check: both families' SBC figures embedded and non-blank" check_page \
  "$work/report_family.html" fig-elbo fig-latents fig-family-sbc-gauss-markov-latents \
  fig-family-sbc-mean-field-latents
holds "family check: the side-by-side table" "$work/report_family.html" \
  '<table id="tab-family-check">' 'ELBO gain of Gauss–Markov over mean-field' 'SBC verdict'

# The page in headless Chromium. One run dumps the DOM of a copy that records each figure's box
# and the page height once loaded; a second screenshots the page itself at that height.
if command -v chromium >/dev/null; then
  chrome() {
    local profile
    profile=$(mktemp -d "$work/profile.XXXXXX")
    timeout -k 5 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
      --no-first-run --disable-background-networking --disable-component-update --disable-sync \
      --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" "$@"
  }
  sed 's|</body>|<script>window.addEventListener("load", () => { for (const img of document.querySelectorAll("img[id]")) { const r = img.getBoundingClientRect(); img.setAttribute("data-box", [r.left + scrollX, r.top + scrollY, r.width, r.height].map(Math.round).join(",")); } document.body.setAttribute("data-height", document.documentElement.scrollHeight); });</script></body>|' \
    "$work/report.html" >"$work/measure.html"
  dump_dom() {  # the DOM after the load event, alone on stdout
    chrome --window-size=1400,1000 --virtual-time-budget=5000 --dump-dom \
      "file://$work/measure.html" >"$work/dom.html"
  }
  check "chromium lays the page out" dump_dom
  height=$(grep -o 'data-height="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*' || echo 0)
  assert "the page has a height ($height px)" test "${height:-0}" -gt 1000
  check "chromium screenshots the page" chrome --window-size=1400,"$height" \
    --screenshot="$work/screenshot.png" "file://$work/report.html"
  assert -v "the screenshot and every figure's region in it are not blank" "$python" - \
    "$work/dom.html" "$work/screenshot.png" "$height" "${figures[@]}" <<'PY'
import re, sys
import numpy as np
import matplotlib.image
dom, shot, height, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
boxes = {name: tuple(map(int, box.split(","))) for name, box in
         re.findall(r'<img id="([^"]+)"[^>]*data-box="([^"]+)"', open(dom).read())}
assert sorted(boxes) == sorted(expected), (sorted(boxes), expected)
pixels = matplotlib.image.imread(shot)[..., :3]
assert pixels.shape[:2] == (height, 1400), pixels.shape
assert pixels.var() > 1e-3, "blank screenshot"
for name, (x, y, w, h) in sorted(boxes.items(), key=lambda b: b[1][1]):
    assert w > 200 and h > 100, (name, "too small", w, h)
    assert y + h <= height, (name, "below the screenshot", y + h, height)
    region = pixels[y:y + h, x:x + w]
    ink = (region.min(axis=2) < 0.9).mean()
    assert region.var() > 1e-3 and ink > 0.01, (name, "blank in the screenshot", region.var(), ink)
    print(f"  {name}: at ({x}, {y}), {w} x {h} px, variance {region.var():.4f}, ink {ink:.3f}")
PY
  [ -z "${SPIKEVI_REPORT_SCREENSHOT:-}" ] || cp "$work/screenshot.png" "$SPIKEVI_REPORT_SCREENSHOT"
elif [ -n "${CI:-}" ]; then
  fail "no chromium in CI (.ci/install-deps installs Debian's chromium): the page was not rendered"
else
  echo "note: no chromium (Debian's chromium package): the page was not rendered"
fi

# The fit alone: its two figures, and every other section says it was not given.
check "report with the fit alone" "$spikevi" report --fit "$work/fit.h5" --out "$work/alone.html"
assert "fit alone: ELBO and latents only" check_page "$work/alone.html" fig-elbo fig-latents
holds "fit alone: the absent sections say so" "$work/alone.html" \
  'id="sec-evaluation" class="absent"' 'pass --evaluation EVAL.h5' 'pass --sbc SBC.h5' \
  'pass --comparison TABLE.csv' 'pass --scaling scaling.csv' 'pass --family-check'
check "report with evaluation but no data" "$spikevi" report --fit "$work/fit.h5" \
  --evaluation "$work/eval.h5" --out "$work/nodata.html"
assert "no data: coverage without rates" check_page "$work/nodata.html" fig-elbo fig-latents fig-coverage
holds "no data: says how to get the rates" "$work/nodata.html" 'pass --data DATA.h5'
"$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
with h5py.File(f"{w}/eval.h5") as src, h5py.File(f"{w}/old_eval.h5", "w") as dst:
    for name in src:
        if name != "coverage":
            src.copy(name, dst)
PY
check "report of an evaluation file without /coverage" "$spikevi" report --fit "$work/fit.h5" \
  --evaluation "$work/old_eval.h5" --data "$work/data.h5" --out "$work/old.html"
assert "no /coverage: rates without the coverage figure" check_page "$work/old.html" fig-elbo \
  fig-latents fig-rates
holds "no /coverage: says so" "$work/old.html" 'id="absent-coverage"'

# The installed layout: a binary in PREFIX/bin finds the script in PREFIX/share/spikevi (here a
# copy that marks its pages), before the source tree's.
mkdir -p "$work/prefix/bin" "$work/prefix/share/spikevi"
cp "$spikevi" "$work/prefix/bin/spikevi"
sed 's|<h1>{title}</h1>|<h1>{title}</h1><!-- installed copy -->|' "$repo/python/spikevi_report.py" \
  >"$work/prefix/share/spikevi/spikevi_report.py"
check "an installed binary" "$work/prefix/bin/spikevi" report --fit "$work/fit.h5" \
  --out "$work/installed.html"
holds "an installed binary uses the installed script" "$work/installed.html" "installed copy"

# Refusals, one line each, naming the file or option; nothing written.
echo "not hdf5" >"$work/text.h5"
"$python" - "$work" <<'PY'
import sys, h5py
w = sys.argv[1]
with h5py.File(f"{w}/sbc.h5") as src, h5py.File(f"{w}/broken_sbc.h5", "w") as dst:
    src.copy("sbc", dst)
    del dst["sbc/latents/histogram"]
PY
refuses "no --fit" "'--fit' is required" "$spikevi" report --out "$work/x.html"
refuses "missing evaluation file" "--evaluation .*missing.h5: no such file" \
  "$spikevi" report --fit "$work/fit.h5" --evaluation "$work/missing.h5" --out "$work/x.html"
refuses "an evaluation file as --fit" "eval.h5: /elbo is missing: not a fit file" \
  "$spikevi" report --fit "$work/eval.h5" --out "$work/x.html"
refuses "a text file as --sbc" "text.h5" \
  "$spikevi" report --fit "$work/fit.h5" --sbc "$work/text.h5" --out "$work/x.html"
refuses "the scaling table as --comparison" "scaling.csv: no column 'observation'" \
  "$spikevi" report --fit "$work/fit.h5" --comparison "$work/scaling.csv" --out "$work/x.html"
refuses "a trial that was not fitted" "--trials: trial 999 was not fitted" \
  "$spikevi" report --fit "$work/fit.h5" --trials 999 --out "$work/x.html"
refuses "--data without --evaluation" "--data is used only with --evaluation" \
  "$spikevi" report --fit "$work/fit.h5" --data "$work/data.h5" --out "$work/x.html"
refuses "an SBC group without its histogram (found by the script)" \
  "broken_sbc.h5: /sbc/latents/histogram is missing" \
  "$spikevi" report --fit "$work/fit.h5" --sbc "$work/broken_sbc.h5" --out "$work/x.html"
refuses "no interpreter" "cannot run /nonexistent/python3" \
  env SPIKEVI_PYTHON=/nonexistent/python3 "$spikevi" report --fit "$work/fit.h5" --out "$work/x.html"
cp "$work/alone.html" "$work/alone.keep"
refuses "an existing page without --overwrite" "already exists" \
  "$spikevi" report --fit "$work/fit.h5" --out "$work/alone.html"
assert "the existing page is untouched" cmp "$work/alone.html" "$work/alone.keep"
assert "no stray output" test ! -e "$work/x.html" -a ! -e "$work/x.html.tmp" -a ! -e "$work/x.html.tmp.log"

finish "cli report"
