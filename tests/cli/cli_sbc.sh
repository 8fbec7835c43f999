#!/usr/bin/env bash
# spikevi sbc and family-check end to end: on a linear-Gaussian data set (spikes with zero
# loadings, a Gaussian behaviour modality) the Gauss-Markov family is exact and `uniform`,
# mean-field is `too narrow` and a posterior widened four times `too wide`; SBC.h5's layout;
# the ranks bitwise the same on 1 and 2 MPI ranks; with the dynamics drawn from a prior, their
# groups, attributes and refusals; the progress line on rank 0 only and none
# with --quiet; sbc from a fit's globals; the family check's table and FAMILY.h5; refusals.
set -euo pipefail
source "$(dirname "$0")/harness.sh" "$@"
need_python_modules h5py numpy

check "sbc --help" "$spikevi" sbc --help
holds "help names the outputs and docs" "$work/out" "docs/output-files.md#sbc-file" "commands.md#sbc"
check "family-check --help" "$spikevi" family-check --help
holds "help names the outputs and docs" "$work/out" "docs/output-files.md#family-check-file"

check "simulate a linear-Gaussian data set" "$spikevi" simulate --out "$work/lg.h5" \
  --readout-scale 0 --behavior 3 --latents 2 --bins 40 --trials 4 --neurons 4
run_sbc() {  # run_sbc OUT [options]
  local out=$1; shift
  check "sbc $*" "$spikevi" sbc --data "$work/lg.h5" --out "$work/$out" --replicates 200 "$@"
}
run_sbc gm.h5 --quiet
holds "Gauss-Markov is uniform" "$work/out" "^latents .* uniform$"
run_sbc mf.h5 --quiet --family mean-field
holds "mean-field is too narrow" "$work/out" "^latents .* too narrow$"
run_sbc wide.h5 --quiet --widen 4
holds "a widened posterior is too wide" "$work/out" "^latents .* too wide$"

assert -v "SBC.h5 layout and verdict attributes" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
work = sys.argv[1]
for name, verdict, family in [("gm", "uniform", "gauss-markov"), ("mf", "too narrow", "mean-field"),
                              ("wide", "too wide", "gauss-markov")]:
    with h5py.File(f"{work}/{name}.h5") as f:
        for key in ["version", "git_revision", "command_line"]:
            assert key in f.attrs, key
        assert f.attrs["family"] == family
        R, L, B = int(f.attrs["replicates"]), int(f.attrs["draws"]), int(f.attrs["bins"])
        assert (R, L, B) == (200, 99, 20)
        g = f["sbc/latents"]
        assert g.attrs["verdict"] == verdict, (name, g.attrs["verdict"])
        for key in ["chi_square", "chi_square_dof", "chi_square_p_value"]:
            assert key in g.attrs
        ranks = g["ranks"][()]
        assert ranks.dtype == np.int64 and ranks.shape == (200, 10), ranks.shape
        assert ranks.min() >= 0 and ranks.max() <= L
        names = [n.decode() for n in g["names"][()]]
        assert names[0] == "z[trial 0, bin 4, dim 0]" and names[3] == "z[trial 0, bin 12, dim 1]", names
        hist = g["histogram"][()]
        assert hist.shape == (B,) and hist.sum() == ranks.size
        assert (np.bincount(ranks.ravel() // 5, minlength=B) == hist).all()
        grid = g["ecdf_grid"][()]
        assert grid.shape == (L,) and np.allclose(grid, np.arange(1, L + 1) / (L + 1))
        ecdf = np.array([(ranks < i).mean() for i in range(1, L + 1)]) - grid
        assert np.allclose(g["ecdf_difference"][()], ecdf)
        assert (g["band_lower"][()] < 0).all() and (g["band_upper"][()] > 0).all()
        expected = ranks.size / B
        chi = ((hist - expected) ** 2 / expected).sum() / g.attrs["design_effect"]
        assert abs(chi - g.attrs["chi_square"]) < 1e-9 * max(chi, 1)
print("layout ok")
PY

check "sbc with 1 rank and progress" timeout -k 10 300 mpirun -np 1 "$spikevi" sbc \
  --data "$work/lg.h5" --out "$work/np1.h5" --replicates 60 --family mean-field
holds "progress line with the fraction done and the time left" "$work/out" \
  "^\[ *[0-9]*%, ~[0-9]* s left\] sbc mean-field: [0-9]*/60 replicates$" "^\[100%, ~0 s left\]"
check "sbc with 2 ranks" timeout -k 10 300 mpirun -np 2 "$spikevi" sbc \
  --data "$work/lg.h5" --out "$work/np2.h5" --replicates 60 --family mean-field
assert "progress printed by rank 0 only (11 lines)" test "$(grep -c 's left\]' "$work/out")" -eq 11
assert "ranks bitwise the same on 1 and 2 ranks" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1] + "/np1.h5")["sbc/latents"]
b = h5py.File(sys.argv[1] + "/np2.h5")["sbc/latents"]
assert np.array_equal(a["ranks"][()], b["ranks"][()])
assert a.attrs["chi_square"] == b.attrs["chi_square"]
PY
# The dynamics drawn per replicate: two more groups, the prior in the attributes, the same
# ranks on 1 and 2 ranks (the verdicts' exactness is tested in tests/driver/test_calibration.cpp).
for np_ in 1 2; do
  check "sbc --dynamics prior on $np_ rank(s)" timeout -k 10 300 mpirun -np $np_ "$spikevi" sbc \
    --data "$work/lg.h5" --out "$work/dyn$np_.h5" --replicates 40 --quiet --dynamics prior \
    --dynamics-prior-scale 0.02
done
holds "the prior is printed, with the unstable draws, and three groups" "$work/out" \
  "dynamics drawn per replicate from MNIW(M0 = theta's \[A b\], V0 = 0.02 I, nu0 = 22" \
  "of 40 drawn A had spectral radius >= 1" "^latents  *10 " "^dynamics  *6 " "^noise  *3 "
assert -v "SBC.h5 with drawn dynamics" "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
work = sys.argv[1]
a, b = h5py.File(f"{work}/dyn1.h5"), h5py.File(f"{work}/dyn2.h5")
assert a.attrs["dynamics"] == "prior" and a.attrs["dynamics_prior_scale"] == 0.02
assert a.attrs["dynamics_prior_dof"] == 22
for group, k in [("latents", 10), ("dynamics", 6), ("noise", 3)]:
    g = a["sbc/" + group]
    assert g["ranks"].shape == (40, k) and g.attrs["verdict"] in (
        "uniform", "too narrow", "too wide", "biased"), group
    assert np.array_equal(g["ranks"][()], b["sbc/" + group]["ranks"][()]), group
names = [n.decode() for n in a["sbc/dynamics/names"][()]]
assert names == ["A[0,0]", "A[1,0]", "A[0,1]", "A[1,1]", "b[0]", "b[1]"], names
assert [n.decode() for n in a["sbc/noise/names"][()]] == ["Q[0,0]", "Q[1,0]", "Q[1,1]"]
with h5py.File(f"{work}/gm.h5") as f:
    assert f.attrs["dynamics"] == "fixed" and "dynamics" not in f["sbc"]
print("drawn dynamics ok")
PY
refuses "an unknown --dynamics" "--dynamics must be fixed or prior (got 'random')" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --dynamics random
refuses "a prior's dof at most D + 1" "--dynamics-prior-dof must exceed D + 1 = 3 (got 3" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --dynamics prior --dynamics-prior-dof 3
for option in "--dynamics-prior-scale 0.1" "--dynamics-prior-dof 30" "--dynamics-sweeps 5"; do
  # shellcheck disable=SC2086  # the option and its value
  refuses "$option without --dynamics prior" "need --dynamics prior" \
    "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" $option
done
refuses "an explicit --dynamics-prior-dof 0 is refused, not replaced by the default" \
  "--dynamics-prior-dof must exceed D + 1 = 3 (got 0" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --dynamics prior --dynamics-prior-dof 0
refuses "--dynamics-sweeps 0" "--dynamics-sweeps must be >= 1 (got 0)" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --dynamics prior --dynamics-sweeps 0

check "sbc --quiet" "$spikevi" sbc --data "$work/lg.h5" --out "$work/quiet.h5" --replicates 20 --quiet
assert "no progress line with --quiet" bash -c "! grep -q 's left\]' '$work/out'"

# From a fit's globals, on the default Poisson simulation (short fit: only theta matters).
check "simulate Poisson" "$spikevi" simulate --out "$work/sim.h5" --trials 12 --bins 60 \
  --neurons 30 --latents 2
check "fit" "$spikevi" fit --data "$work/sim.h5" --out "$work/fit.h5" --latents 2 --iterations 20
check "sbc from the fit" "$spikevi" sbc --data "$work/sim.h5" --fit "$work/fit.h5" \
  --out "$work/fit_sbc.h5" --replicates 50 --monitor-bins 5,30 --quiet
holds "theta from the fit, 2 bins x D = 2 monitored" "$work/out" "theta = the globals of" \
  "^latents  *4 "

check "family-check" "$spikevi" family-check --data "$work/sim.h5" --fit "$work/fit.h5" \
  --out "$work/family.h5" --replicates 100
holds "family check table" "$work/out" "ELBO gain of gauss-markov over mean-field" \
  "variance ratio gauss-markov / mean-field: median" "latent coverage, 95%" \
  "^  SBC verdict  *uniform  *too narrow$" "family-check mean-field: 100/100 replicates"
assert -v "FAMILY.h5 layout" "$python" - "$work/family.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    a = f.attrs
    assert a["elbo_gain"] == a["elbo_gauss_markov"] - a["elbo_mean_field"] and a["elbo_gain"] > 0
    r = f["variance_ratio"][()]
    assert r.size == 12 * 60 * 30 and a["variance_ratio_p10"] <= a["variance_ratio_median"] <= a["variance_ratio_p90"]
    assert abs(np.median(r) - a["variance_ratio_median"]) < 1e-12
    gm, mf = f["families/gauss-markov"], f["families/mean-field"]
    assert gm.attrs["verdict"] == "uniform" and mf.attrs["verdict"] == "too narrow"
    assert mf.attrs["coverage_95"] < gm.attrs["coverage_95"]
    assert abs(gm.attrs["nominal_50"] - 0.5) < 1e-12
    assert f["families/mean-field/sbc/latents/ranks"].shape == (100, 10)
    print("family check ok", a["elbo_gain_per_spike"], a["variance_ratio_median"])
PY

refuses "rank bins must divide L + 1" "--rank-bins 7 must be >= 2 and divide --draws + 1 = 100" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --rank-bins 7
refuses "a monitored bin outside the trial" "--monitor-bins: bin 40 is outside 0..39" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --monitor-bins 3,40
refuses "an unknown family" "--family" \
  "$spikevi" sbc --data "$work/lg.h5" --out "$work/bad.h5" --family laplace
"$python" - "$work" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1] + "/notruth.h5", "w") as f:
    f.copy(h5py.File(sys.argv[1] + "/sim.h5")["counts"], "counts")
    src = h5py.File(sys.argv[1] + "/sim.h5")
    for k in src:
        if k not in ("truth", "counts"):
            src.copy(src[k], f, k)
    for k, v in src.attrs.items():
        f.attrs[k] = v
PY
refuses "no /truth and no --fit" "no /truth to take theta from; give --fit" \
  "$spikevi" sbc --data "$work/notruth.h5" --out "$work/bad.h5"
refuses "an existing --out" "exists" "$spikevi" sbc --data "$work/lg.h5" --out "$work/gm.h5"
finish "sbc and family-check"
