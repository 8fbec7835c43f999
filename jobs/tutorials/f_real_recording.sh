#!/usr/bin/env bash
# Tutorial (f): a real recording end to end — model selection, the winner on the test trials
# beside both smoothing baselines, and the report to look at.
#
#   DATA=w_maze.h5 bash jobs/tutorials/f_real_recording.sh [--quick]
#
# DATA is a data set in the input format (docs/input-format.md), e.g. the rat hippocampus
# W-maze session w_maze.h5 the project is developed against (README "Choosing a model"), or
# your own converted or `spikevi import-nwb`ed session. Steps:
#   1. `spikevi compare` cross-validates D = 4 and 8 (quick: 2 and 4, fewer folds and
#      iterations), spikes only, on the training trials and refits the winner (--best-out);
#   2. `spikevi evaluate` scores the winner on the test trials: co-smoothing beside the raw and
#      the NLB (log) smoothing baselines, and the predictive coverage;
#   3. `spikevi report` draws it all into report.html (open it in a browser).
# Prints the comparison table, the evaluation and
#   figure winner_cobps            the winner's co-smoothing on the test trials, bits/spike
#   figure margin_over_baseline    its margin over the stronger baseline, bits/spike
#   figure coverage95              share of held-out test counts inside the 95 % interval
#   figure report                  the report's path
source "$(dirname "$0")/common.sh" "$@"
data=${DATA:-}
if [[ -z "$data" ]]; then
  echo "$tutorial_name: set DATA=FILE.h5 (a data set in the input format, e.g. w_maze.h5)" >&2
  exit 2
fi
[[ -r "$data" ]] || { echo "$tutorial_name: cannot read $data" >&2; exit 2; }
latents=$(size 2,4 4,8); folds=$(size 2 3); iterations=$(size 10 100)

step "1. compare D in {$latents}, $folds folds, spikes only, then refit the winner"
"$spikevi" compare --data "$data" --models poisson --latents "$latents" --continuous ignore \
  --folds "$folds" --iterations "$iterations" --table table.csv --best-out best.h5 \
  --overwrite --quiet

step "2. evaluate the winner on the test trials"
"$spikevi" evaluate --data "$data" --fit best.h5 --out eval.h5 --overwrite

step "3. the report"
"$spikevi" report --fit best.h5 --evaluation eval.h5 --data "$data" --comparison table.csv \
  --title "spikevi tutorial (f): $(basename "$data")" --out report.html --overwrite
figure winner_cobps "$(attribute eval.h5 cosmoothing bits_per_spike)"
figure margin_over_baseline "$(attribute eval.h5 cosmoothing margin_over_stronger_baseline)"
figure coverage95 "$("$python" -c 'import sys, h5py; print(h5py.File(sys.argv[1], "r")["coverage/pooled"][2])' eval.h5)"
figure report "$out/report.html"
