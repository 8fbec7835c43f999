#!/usr/bin/env bash
# The speed of `spikevi sbc` (issue 15 point 6): R replicates (default 200) of the default
# simulation (60 neurons, D = 4, T = 100; Poisson), Gauss-Markov family, theta from a fit of
# it, on 1 and 2 ranks; prints the wall time of the whole command, the time of the replicates
# (what the ranks share) and of the rank tests (rank 0 alone), the CPU seconds of all
# processes, and the speedup of the replicates from 1 to 2 ranks, in wall time and in the
# busiest rank's processor time (the two agree on an idle machine; on a loaded one only the
# second says how the work divides).
# Usage: perf/sbc_speed.sh [PATH/TO/spikevi] [REPLICATES]
set -euo pipefail
spikevi=$(realpath "${1:-build/spikevi}")
replicates=${2:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
"$spikevi" simulate --out "$work/sim.h5" > /dev/null
"$spikevi" fit --data "$work/sim.h5" --out "$work/fit.h5" > /dev/null
declare -A phase most
for ranks in 1 2; do
  /usr/bin/time -f "%e %U %S" -o "$work/time" mpirun -np "$ranks" "$spikevi" sbc \
    --data "$work/sim.h5" --fit "$work/fit.h5" --out "$work/sbc$ranks.h5" \
    --replicates "$replicates" --quiet > "$work/out"
  read -r wall user system < "$work/time"
  line=$(grep ' s (replicates ' "$work/out")
  phase[$ranks]=$(sed 's/.*(replicates \([0-9.]*\) s.*/\1/' <<< "$line")
  most[$ranks]=$(sed 's/.*at most \([0-9.]*\) s on one rank.*/\1/' <<< "$line")
  echo "ranks $ranks: wall $wall s (mpirun included), $line; CPU $user s user + $system s system"
done
cmp -s <(h5dump -d /sbc/latents/ranks "$work/sbc1.h5" | tail -n +3) \
  <(h5dump -d /sbc/latents/ranks "$work/sbc2.h5" | tail -n +3) &&
  echo "ranks identical on 1 and 2 ranks" || echo "ranks DIFFER between 1 and 2 ranks"
awk -v a="${phase[1]}" -v b="${phase[2]}" -v c="${most[1]}" -v d="${most[2]}" 'BEGIN {
  printf "replicates, wall time: speedup 1 -> 2 ranks %.2fx (efficiency %.0f%%)\n", a / b, 50 * a / b
  printf "replicates, busiest rank CPU time: %.2f s -> %.2f s, speedup %.2fx (what an idle " \
         "machine with a core per rank shows)\n", c, d, c / d }'
