#!/usr/bin/env bash
# SLURM end-to-end check: a real one-node SLURM cluster on this machine runs a
# tiny ganrestore config through `snakemake --executor slurm`.
#
#   sudo bash .ci/slurm_e2e.sh        (CI runs it as root from .ci/run)
#
# 1. installs SLURM + munge from Debian packages (skipped when present),
# 2. starts munged, slurmctld and `slurmd -N localhost` with a private
#    slurm.conf (symlinked to /etc/slurm/, where the executor plugin's job
#    steps look for it) and a stand-in GPU (gres.conf: File=/dev/null),
# 3. runs a tiny config in a scratch copy of the workflow with
#    --workflow-profile profiles/ci-slurm (squeue status checks, no accounting database),
# 4. checks the outputs, that every job went through sbatch, and that a
#    `resources: gpu=1` job was scheduled with the GPU,
# 5. ALWAYS (trap on EXIT) cancels leftover jobs, stops the daemons it started
#    by the PIDs in their pid files and puts /etc/slurm back as it was.
#
# Environment: VENV (default .venv), SLURM_E2E_TIMEOUT (seconds for the
# workflow run, default 600), SLURM_E2E_KEEP=1 keeps the scratch folder.
# Recipe and pitfalls: shared/SLURM.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
SNAKEMAKE="$VENV/bin/snakemake"
TIMEOUT="${SLURM_E2E_TIMEOUT:-600}"
T0=$(date +%s)

say() { echo "[slurm-e2e +$(($(date +%s) - T0))s] $*"; }
fail() {
    echo "[slurm-e2e] FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, starts slurmctld/slurmd/munged)"
[ -x "$SNAKEMAKE" ] || fail "$SNAKEMAKE not found: run 'make install' first"
"$VENV/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
    fail "snakemake-executor-plugin-slurm is not installed in $VENV (it is in requirements.txt: run 'make install')"

WORK="$(mktemp -d /tmp/ganrestore-slurm.XXXXXX)"
chmod 755 "$WORK"
STARTED_MUNGE_PID=""
STARTED_CTLD=""
STARTED_SLURMD=""
SM_PID=""
declare -A BACKUP=()

# -- cleanup: always, whatever happened -----------------------------------------
stop_pid() { # stop_pid PID NAME: TERM, wait up to 15 s, then KILL; only if PID still is NAME
    local pid="$1" name="$2"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
        echo "[slurm-e2e] pid $pid is no longer $name; not touching it" >&2
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || {
            echo "[slurm-e2e] stopped $name (pid $pid)"
            return 0
        }
        sleep 0.5
    done
    echo "[slurm-e2e] $name (pid $pid) ignored TERM; sending KILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

pid_of() { [ -s "$1" ] && tr -d '[:space:]' <"$1" || true; }

dump_logs() {
    echo "---- last lines of the SLURM and workflow logs ($WORK) ----" >&2
    for f in "$WORK/log/slurmctld.log" "$WORK/log/slurmd.log" "$WORK/snakemake.log"; do
        [ -f "$f" ] && {
            echo "== $f" >&2
            tail -n 40 "$f" >&2
        }
    done
    if [ -d "$WORK/wf/.snakemake/slurm_logs" ]; then
        find "$WORK/wf/.snakemake/slurm_logs" -name '*.log' -newer "$WORK/slurm.conf" 2>/dev/null |
            head -n 5 | while read -r f; do
            echo "== $f" >&2
            tail -n 20 "$f" >&2
        done
    fi
    echo "----" >&2
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$SM_PID" ] && kill -0 "$SM_PID" 2>/dev/null; then
        # stop Snakemake first (SIGINT: it cancels its SLURM jobs), at most 60 s
        echo "[slurm-e2e] stopping the Snakemake run (pid $SM_PID)" >&2
        kill -INT "$SM_PID" 2>/dev/null
        for _ in $(seq 1 120); do kill -0 "$SM_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$SM_PID" 2>/dev/null
    fi
    if [ -n "$STARTED_CTLD" ] && command -v scancel >/dev/null; then
        timeout 10 scancel --user=root 2>/dev/null # our private cluster: only our jobs
    fi
    [ -n "$STARTED_SLURMD" ] && stop_pid "$(pid_of "$WORK/slurmd.pid")" slurmd
    [ -n "$STARTED_CTLD" ] && stop_pid "$(pid_of "$WORK/slurmctld.pid")" slurmctld
    [ -n "$STARTED_MUNGE_PID" ] && stop_pid "$STARTED_MUNGE_PID" munged
    for f in "${!BACKUP[@]}"; do # put /etc/slurm back
        if [ "$(readlink "$f")" = "$WORK/$(basename "$f")" ]; then
            rm -f "$f"
            [ "${BACKUP[$f]}" != none ] && mv "${BACKUP[$f]}" "$f"
        fi
    done
    if [ "$rc" != 0 ]; then
        dump_logs
        echo "[slurm-e2e] FAILED (exit $rc) after $(($(date +%s) - T0)) s; scratch folder kept: $WORK" >&2
    elif [ "${SLURM_E2E_KEEP:-0}" = 1 ]; then
        echo "[slurm-e2e] scratch folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "[slurm-e2e] interrupted" >&2; exit 130' INT
trap 'echo "[slurm-e2e] terminated" >&2; exit 143' TERM

# -- 1. install ------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurmctld slurmd slurm-client munge (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$WORK/apt.log" 2>&1 || {
        tail -n 20 "$WORK/apt.log" >&2
        fail "apt-get update failed"
    }
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >>"$WORK/apt.log" 2>&1 || {
        tail -n 20 "$WORK/apt.log" >&2
        fail "apt-get install of SLURM failed"
    }
fi
say "SLURM $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null || echo '?') installed"

# -- 2. start the cluster -----------------------------------------------------------
# Never touch a SLURM that is not ours (e.g. left over by a run that was SIGKILLed).
for d in slurmctld slurmd; do
    if pids="$(pgrep -x "$d")"; then
        fail "$d is already running (pid ${pids//$'\n'/ }); stop it first (kill <pid>), then rerun"
    fi
done
[ -s /etc/munge/munge.key ] || fail "/etc/munge/munge.key is missing (the munge package creates it)"
if [ -s /run/munge/munged.pid ] && kill -0 "$(pid_of /run/munge/munged.pid)" 2>/dev/null &&
    munge -n </dev/null | unmunge >/dev/null 2>&1; then
    say "munged already running (pid $(pid_of /run/munge/munged.pid)); using it, not stopping it"
else
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 1 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
    STARTED_MUNGE_PID="$(pid_of /run/munge/munged.pid)"
    munge -n </dev/null | unmunge >/dev/null || fail "munge round trip failed (munge -n | unmunge)"
fi

mkdir -p "$WORK/state" "$WORK/spool" "$WORK/log"
NCPU="$(nproc)"
MEM_MB="$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)"
cat >"$WORK/slurm.conf" <<EOF
# written by ganrestore .ci/slurm_e2e.sh (a throwaway one-node test cluster)
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
GresTypes=gpu
NodeName=localhost CPUs=$NCPU RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
echo "Name=gpu File=/dev/null" >"$WORK/gres.conf"

# The plugin's job steps drop SLURM_CONF, so the config must be at /etc/slurm/.
mkdir -p /etc/slurm
for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        mv "$f" "$WORK/$(basename "$f").orig"
        BACKUP[$f]="$WORK/$(basename "$f").orig"
    else
        BACKUP[$f]=none
    fi
    ln -s "$WORK/$(basename "$f")" "$f"
done

say "starting slurmctld and slurmd (node localhost: $NCPU CPUs, $MEM_MB MB, 1 stand-in GPU)"
slurmctld || fail "slurmctld did not start"
STARTED_CTLD=1
for _ in $(seq 1 40); do [ -s "$WORK/slurmctld.pid" ] && scontrol ping >/dev/null 2>&1 && break; sleep 0.25; done
scontrol ping >/dev/null 2>&1 || fail "slurmctld does not answer (scontrol ping)"
slurmd -N localhost || fail "slurmd did not start"
STARTED_SLURMD=1
state=""
for _ in $(seq 1 60); do
    state="$(sinfo -h -o %T 2>/dev/null | head -n 1)"
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "node is '$state', not idle, 30 s after slurmd started (sinfo -R: $(sinfo -R -h 2>/dev/null))"
say "cluster up: $(sinfo -h -o '%P %D %T %G' | head -n 1)"

# -- 3. the tiny workflow run --------------------------------------------------------
mkdir -p "$WORK/wf"
for name in Snakefile rules scripts config profiles envs; do
    [ -e "$ROOT/$name" ] && cp -r "$ROOT/$name" "$WORK/wf/"
done
cat >"$WORK/wf/ci_slurm.yaml" <<'EOF'
# 3 test images, one shard, one task, two methods: data, corrupt, 2 restores,
# 2 evaluations and the summary table (about 8 SLURM jobs).
name: slurm_ci
shard_size: 4
data:
  source: demo
  demo:
    real_test: 1
    generated_test: 2
    generated_val: 1
tasks: [sr4]
methods: [input, bicubic]
EOF
R="results/slurm_ci"
TARGETS=("$R/tables/summary.md" "$R/tables/summary.csv")
cd "$WORK/wf"
export PATH="$VENV/bin:$PATH"
"$SNAKEMAKE" "${TARGETS[@]}" -n --quiet rules --workflow-profile profiles/ci-slurm --configfile ci_slurm.yaml >"$WORK/plan.txt" 2>&1 ||
    {
        cat "$WORK/plan.txt" >&2
        fail "the CI config does not plan (snakemake -n)"
    }
N_JOBS="$(awk '$1 == "total" {print $2; exit}' "$WORK/plan.txt")"
say "running $N_JOBS jobs through --executor slurm (profile profiles/ci-slurm, timeout ${TIMEOUT}s)"
# in the background + wait, so that a TERM/INT to this script runs the trap at once
set +e
timeout -s INT -k 60 "$TIMEOUT" "$SNAKEMAKE" "${TARGETS[@]}" --workflow-profile profiles/ci-slurm \
    --configfile ci_slurm.yaml >"$WORK/snakemake.log" 2>&1 &
SM_PID=$!
wait "$SM_PID"
rc=$?
SM_PID=""
set -e
[ "$rc" = 124 ] && fail "the workflow run took longer than ${TIMEOUT}s (stopped with SIGINT)"
[ "$rc" = 0 ] || fail "snakemake --executor slurm exited $rc"

# -- 4. checks --------------------------------------------------------------------------
[ -s "$R/tables/summary.md" ] || fail "no summary table at $R/tables/summary.md"
grep -q '| sr4 | input | ok | 3 |' "$R/tables/summary.md" ||
    fail "summary table lacks the row '| sr4 | input | ok | 3 |': $(cat "$R/tables/summary.md")"
grep -q '| sr4 | bicubic | ok | 3 |' "$R/tables/summary.md" ||
    fail "summary table lacks the row '| sr4 | bicubic | ok | 3 |'"
n_shards="$(find "$R/restore/sr4" -name 's4-*.npz' | wc -l)"
[ "$n_shards" = 2 ] || fail "expected 2 restore shards (2 methods x 1 shard), found $n_shards"
grep -q "steps (100%) done" "$WORK/snakemake.log" || fail "snakemake did not report 100% done"
n_submitted="$(grep -c '_slurm_rpc_submit_batch_job: JobId=' "$WORK/log/slurmctld.log" || true)"
[ "$n_submitted" -ge "$N_JOBS" ] ||
    fail "slurmctld saw $n_submitted batch submissions for $N_JOBS jobs: jobs did not all go through SLURM"
# finished jobs stay visible to scontrol for MinJobAge (300 s)
scontrol show job -o >"$WORK/jobs.txt" 2>&1 || fail "scontrol show job failed: $(cat "$WORK/jobs.txt")"
n_gpu="$(grep -c -E 'gpu[:=]1' "$WORK/jobs.txt" || true)"
[ "$n_gpu" -ge 1 ] ||
    fail "no job was given the stand-in GPU (restore has gpu=1 in profiles/ci-slurm); jobs: $(cut -c 1-400 "$WORK/jobs.txt")"
n_fail="$(grep -v -c 'JobState=COMPLETED' "$WORK/jobs.txt" || true)"
[ "$n_fail" = 0 ] || fail "$n_fail SLURM jobs did not complete: $(grep -v JobState=COMPLETED "$WORK/jobs.txt" | head -n 3)"
say "OK: $N_JOBS jobs ran through SLURM ($n_submitted sbatch submissions, $n_gpu with --gpus=1), summary table complete"
