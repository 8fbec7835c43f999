# A real single-node SLURM (munged, slurmctld, slurmd) for the tests tests/slurm/slurm_*.sh,
# which start with
#   source "$(dirname "$0")/../cli/harness.sh" "$@"
#   source "$(dirname "$0")/cluster.sh"
# (this file must never match slurm_*.sh: tests/CMakeLists.txt runs those as tests). It gives
#   cluster_start           writes slurm.conf into $cluster (a folder of $work: state, spool,
#                           pid, log and key files all live there), starts munged, slurmctld
#                           and slurmd by PID, and waits (bounded) until the node is idle.
#                           Where slurmd cannot run (not root, no Slurm installed, a daemon
#                           that does not come up) the test is skipped with exit 77, except
#                           with CI=true in the environment, where that is a failure.
#   submit VAR SBATCH-ARGUMENTS...     sbatch --parsable; VAR = the job id (a failed test
#                           prints each submitted job's record and --output log at exit)
#   job_field JOB FIELD     one field of `scontrol show job` (JobState, Restarts, ExitCode...)
#   wait_state JOB SECONDS STATE...    polls until the job is in one of the states (status 1
#                           if it never is within SECONDS)
#   release JOB             a requeued job waits ~120 s before it is eligible again
#                           (docs/cluster.md#requeue): StartTime=now starts it at once
#   job_report JOB          `scontrol show job` and the job's log, for a failure message
# On exit (any path) every job is cancelled and each daemon stopped by its PID — slurmd, then
# slurmctld, then munged — each wait bounded; whatever still holds a file of $cluster (a
# leftover slurmstepd or rank) is killed by PID; then harness.sh removes $work.
# What the tests prove, and the traps of such a cluster: docs/cluster.md#tested-under-a-real-slurm.

cluster=$work/slurm
node=$(hostname -s)
declare -gA cluster_pid=()  # munged, slurmctld, slurmd -> PID (of the daemon itself)
declare -gA cluster_job_log=()  # every submitted job -> its --output log (or "")

# Cannot run here: a skip, but in CI (CI=true) a failure.
cluster_unavailable() {
  if [ "${CI:-}" = true ]; then abort "SLURM cannot run (CI=true, so this fails): $1" "${@:2}"; fi
  [ $# -lt 2 ] || tail -n 20 "${@:2}" 2>/dev/null
  skip "SLURM cannot run here: $1"
}

cluster_free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cluster_write_conf() {
  local hardware
  # slurmd -C prints the node's hardware line ("NodeName=... CPUs=... RealMemory=...") and an
  # UpTime line; the node must be configured with no more than it has.
  hardware=$(timeout 20 slurmd -C | grep '^NodeName=') ||
    cluster_unavailable "slurmd -C failed"
  cat >"$cluster/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh for one test; see docs/cluster.md#tested-under-a-real-slurm.
ClusterName=spikevi-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(cluster_free_port)
SlurmdPort=$(cluster_free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$cluster/run/munge.socket
StateSaveLocation=$cluster/state
SlurmdSpoolDir=$cluster/spool
# PMIx's per-step folders (spmix_appdir_*) go here instead of /tmp.
TmpFS=$cluster/tmp
SlurmctldPidFile=$cluster/run/slurmctld.pid
SlurmdPidFile=$cluster/run/slurmd.pid
SlurmctldLogFile=$cluster/log/slurmctld.log
SlurmdLogFile=$cluster/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Slurm's default, on purpose: the job scripts must ask for PMIx themselves (srun --mpi=pmix).
MpiDefault=none
ReturnToService=2
KillWait=5
OverTimeLimit=0
JobRequeue=1
# Keep finished jobs visible to scontrol (there is no accounting: no sacct).
MinJobAge=300
SchedulerParameters=sched_interval=2
$hardware NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

cluster_munge_works() {
  munge -S "$cluster/run/munge.socket" -n 2>/dev/null |
    unmunge -S "$cluster/run/munge.socket" >/dev/null 2>&1
}

cluster_node_idle() {
  [ "$(sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ]
}

# cluster_daemon NAME LOG COMMAND...: starts a daemon in the foreground (-D: no pid file race)
# of a background job, output to LOG, under timeout(1): should this script be killed with
# SIGKILL (no trap runs), the daemon still ends after SPIKEVI_SLURM_LIFETIME seconds.
# cluster_pid[NAME] is timeout's PID; timeout passes a SIGTERM on to the daemon.
cluster_daemon() {
  local name=$1 log=$2; shift 2
  timeout -k 10 "${SPIKEVI_SLURM_LIFETIME:-900}" "$@" </dev/null >"$log" 2>&1 &
  cluster_pid[$name]=$!
}

cluster_start() {
  local missing=() command
  [ "$(id -u)" = 0 ] || cluster_unavailable "not root (slurmd and munged here run as root)"
  for command in munged munge unmunge slurmctld slurmd sbatch srun scontrol squeue sinfo scancel; do
    command -v "$command" >/dev/null || missing+=("$command")
  done
  [ ${#missing[@]} -eq 0 ] ||
    cluster_unavailable "no ${missing[*]} (Debian: apt-get install slurm-wlm munge)"

  # munged insists that every folder above its socket is searchable by all.
  chmod 711 "$work"
  mkdir -p "$cluster"/{state,spool,log,key,tmp} && mkdir -m 755 "$cluster/run"
  chmod 700 "$cluster/key"
  head -c 1024 /dev/urandom >"$cluster/key/munge.key" && chmod 400 "$cluster/key/munge.key"
  export SLURM_CONF=$cluster/slurm.conf
  cluster_write_conf

  cluster_daemon munged "$cluster/log/munged.out" munged --foreground --force \
    --socket="$cluster/run/munge.socket" --key-file="$cluster/key/munge.key" \
    --pid-file="$cluster/run/munged.pid" --log-file="$cluster/log/munged.log" \
    --seed-file="$cluster/key/munged.seed"
  wait_until 20 cluster_munge_works ||
    cluster_unavailable "munged did not answer within 20 s" "$cluster/log/munged.out" \
      "$cluster/log/munged.log"

  cluster_daemon slurmctld "$cluster/log/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
  wait_until 30 scontrol ping >/dev/null 2>&1 ||
    cluster_unavailable "slurmctld did not answer within 30 s" "$cluster/log/slurmctld.log"
  cluster_daemon slurmd "$cluster/log/slurmd.out" slurmd -D -f "$SLURM_CONF"
  wait_until 60 cluster_node_idle ||
    cluster_unavailable "node $node not idle within 60 s (state: $(sinfo -h -o %T 2>&1))" \
      "$cluster/log/slurmd.out" "$cluster/log/slurmd.log" "$cluster/log/slurmctld.log"
  ok "SLURM $(sinfo -V | awk '{ print $2 }') up: node $node idle (munged, slurmctld and slurmd" \
    "under timeout PIDs ${cluster_pid[munged]}, ${cluster_pid[slurmctld]}, ${cluster_pid[slurmd]})"
}

# cluster_stop_daemon NAME: SIGTERM to it (through its timeout), SIGKILL after 15 s.
cluster_stop_daemon() {
  local pid=${cluster_pid[$1]:-} daemon
  [ -n "$pid" ] || return 0
  if running "$pid"; then
    daemon=$(children "$pid")
    kill -TERM "$pid" 2>/dev/null
    if ! wait_until 15 all_ended "$pid"; then
      echo "note: $1 (PID $daemon) still running 15 s after SIGTERM: killed"
      # shellcheck disable=SC2086  # no PID, or one
      kill -KILL $daemon "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null
  unset "cluster_pid[$1]"
  return 0
}

cluster_no_jobs_left() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }

# PIDs of the processes that hold a file (or their cwd) inside $cluster: job steps' slurmstepd
# and ranks that outlived a cancel. Our own processes only: the folder is this test's.
cluster_holders() {
  local entry pid
  for entry in /proc/[0-9]*; do
    pid=${entry#/proc/}
    if [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ]; then continue; fi
    if find "$entry/fd" "$entry/cwd" -maxdepth 1 -lname "$cluster/*" 2>/dev/null | grep -q .; then
      echo "$pid"
    fi
  done
}

cluster_stop() {
  local jobs leftovers attempt
  [ ${#cluster_pid[@]} -gt 0 ] || return 0
  cd /  # the test's shell may be in $cluster: not one of the processes to stop
  if [ -n "${cluster_pid[slurmctld]:-}" ] && running "${cluster_pid[slurmctld]}"; then
    # A job caught between its requeue and its relaunch may survive one scancel (seen once in
    # a few tries): cancel again every 2 s, for at most 20 s.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      jobs=$(timeout 10 squeue -h -o %i 2>/dev/null) || jobs=""
      [ -n "$jobs" ] || break
      # shellcheck disable=SC2086  # one id per word
      timeout 10 scancel $jobs 2>/dev/null
      wait_until 2 cluster_no_jobs_left && break
      [ "$attempt" -lt 10 ] ||
        echo "note: still listed 20 s after scancel: $(squeue -h -o "%i %T %r" 2>&1 | tr "\n" " ")"
    done
  fi
  cluster_stop_daemon slurmd
  cluster_stop_daemon slurmctld
  cluster_stop_daemon munged
  leftovers=$(cluster_holders)
  if [ -n "$leftovers" ]; then
    echo "note: killing leftover processes holding files of the test cluster: $leftovers"
    # shellcheck disable=SC2086
    kill -KILL $leftovers 2>/dev/null
  fi
  return 0
}

cluster_exit() {
  local status=$? job
  set +e
  # A failed test shows what SLURM and the job saw (a CI log is often all there is).
  if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for job in "${!cluster_job_log[@]}"; do
      echo "--- on failure: job $job"
      job_report "$job" "${cluster_job_log[$job]}" | sed 's/^/  /'
    done
  fi
  cluster_stop
  (exit "$status")
  harness_exit
}
trap cluster_exit EXIT

# ---- jobs

submit() {  # submit VAR SBATCH-ARGUMENTS...
  local -n cluster_job=$1; shift
  local argument output=""
  cluster_job=$(timeout 30 sbatch --parsable "$@") || abort "sbatch $* failed"
  cluster_job=${cluster_job%%;*}
  for argument in "$@"; do
    [[ "$argument" != --output=* ]] || output=${argument#--output=}
  done
  cluster_job_log[$cluster_job]=$output
}

job_field() {  # job_field JOB FIELD
  timeout 10 scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

in_state() {  # in_state JOB STATE...
  local state
  state=$(job_field "$1" JobState)
  shift
  [[ " $* " == *" $state "* ]]
}

wait_state() {  # wait_state JOB SECONDS STATE... (polls scontrol four times a second)
  local job=$1 deadline=$((SECONDS + $2)); shift 2
  until in_state "$job" "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.25
  done
}

# release JOB: StartTime=now, once the node is idle again (the previous run's steps are gone)
# and the clock has passed the next whole second. slurmd refuses to launch a job whose
# credential is not newer than the job's last kill, in whole seconds: a relaunch within the
# second of the requeue fails at once ("Job N already killed, do not launch batch job" in
# slurmd.log; the job ends FAILED 1:0). On a real cluster the ~120 s requeue delay covers it.
release() {
  local idle_at
  wait_until 30 cluster_node_idle || echo "note: node not idle 30 s after job $1 was requeued"
  idle_at=$(date +%s)
  wait_until 3 cluster_second_passed "$idle_at"
  timeout 10 scontrol update JobId="$1" StartTime=now
}
cluster_second_passed() { [ "$(date +%s)" -gt $(($1 + 1)) ]; }

job_report() {  # job_report JOB [LOG]: the job record, its log and the daemons' last lines
  timeout 10 scontrol show job "$1" 2>&1
  [ -z "${2:-}" ] || { echo "--- $(basename "$2")"; cat "$2"; }
  echo "--- slurmd.log (end)"; tail -n 15 "$cluster/log/slurmd.log"
  echo "--- slurmctld.log (end)"; tail -n 15 "$cluster/log/slurmctld.log"
}
