#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for chunkflow's tests and for trying the SLURM
# examples: `scripts/slurm-local.sh up|down|status`.
#
#   up      installs what is missing (Debian packages: slurmctld, slurmd, slurm-client, munge,
#           libpmix-dev), writes /etc/slurm/slurm.conf, starts munged, slurmctld and slurmd
#           (each only when not already running), and waits until the node takes jobs.
#           Idempotent: a second `up` changes nothing.
#   down    cancels this cluster's jobs and stops exactly the daemons `up` started (their PIDs
#           are recorded in $CHUNKFLOW_SLURM_RUN), nothing else. Packages, logs and state stay.
#   status  says which daemons run and who started them, and shows `sinfo`; exit 0 when the
#           node takes jobs.
#
# Works without systemd (daemons are started by hand) and as root. Settings (environment):
#   CHUNKFLOW_SLURM_CPUS=16    CPUs the node advertises (more than the cores is fine: jobs
#                              then share cores; 16 runs a 16-task array in one wave)
#   CHUNKFLOW_SLURM_RUN=/run/chunkflow-slurm   where the PIDs of started daemons are recorded
#   CHUNKFLOW_SLURM_TIMEOUT=60 seconds to wait for the node
#   CHUNKFLOW_SLURM_NO_INSTALL=1  never call apt-get
#   CHUNKFLOW_SLURM_FORCE=1    replace a slurm.conf this script did not write (it is backed up
#                              and restored by `down`)
#
# The configuration, and why (each line was needed on this machine kind):
#   - DependencyParameters=kill_invalid_depend: a job whose `afterok` dependency failed is
#     cancelled; without it, it stays PENDING (DependencyNeverSatisfied) forever.
#   - SchedulerParameters=batch_sched_delay=0,sched_min_interval=0: arrays and dependent jobs
#     start about 1 s after they become eligible instead of about 3 s.
#   - SlurmdParameters=config_overrides: the node may advertise more CPUs than it has.
#   - MinJobAge=600: finished jobs stay visible to `scontrol show job` (there is no accounting
#     database, so no `sacct`) for ten minutes.
#   - libpmix-dev before slurmd starts: without libpmix.so, `srun --mpi=pmix` hangs the node.
set -euo pipefail

RUN=${CHUNKFLOW_SLURM_RUN:-/run/chunkflow-slurm}
CPUS=${CHUNKFLOW_SLURM_CPUS:-16}
TIMEOUT=${CHUNKFLOW_SLURM_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARK="# written by chunkflow scripts/slurm-local.sh"
SPOOL=/var/spool/chunkflow-slurm
LOGS=/var/log/slurm
HOST=$(hostname -s)

say() { echo "[slurm-local] $*" >&2; }
die() { say "error: $*"; exit 1; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "run as root (or install sudo): the daemons need root"
    SUDO="sudo"
fi

# A live process (PID 1 here may reap orphans late; a zombie is not alive).
alive() {
    local pid=$1
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}
# Is PID $1 a live instance of program $2?
is_prog() {
    alive "$1" && [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"$2"* ]]
}
# The PID in file $1, or nothing.
pid_in() { [[ -s $1 ]] && cat "$1" || true; }
# The PID of a running $1 whatever started it, or nothing.
running_pid() {
    local pf
    case $1 in
        munged) pf=/run/munge/munged.pid ;;
        *) pf=/run/$1.pid ;;
    esac
    local p
    p=$(pid_in "$pf")
    if is_prog "$p" "$1"; then echo "$p"; fi
}

install_packages() {
    local missing=()
    for prog in slurmctld slurmd sbatch munged; do
        command -v "$prog" >/dev/null || missing+=("$prog")
    done
    compgen -G "/usr/lib/*/libpmix.so" >/dev/null || missing+=(libpmix.so)
    ((${#missing[@]})) || return 0
    [[ ${CHUNKFLOW_SLURM_NO_INSTALL:-0} != 1 ]] ||
        die "missing ${missing[*]} and CHUNKFLOW_SLURM_NO_INSTALL=1"
    say "installing (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # Without --no-install-recommends this pulls in ~40 more packages (hdf5, rocm, ipmi).
    $SUDO apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge libpmix-dev >/dev/null
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating the munge key"
        $SUDO mkdir -p /etc/munge
        $SUDO chown munge:munge /etc/munge
        $SUDO chmod 700 /etc/munge
        $SUDO runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
    $SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
    $SUDO chmod 755 /run/munge
    local p
    p=$(running_pid munged)
    if [[ -n $p ]]; then
        say "munged already running (pid $p)"
    else
        $SUDO runuser -u munge -- /usr/sbin/munged
        for _ in $(seq 50); do
            p=$(running_pid munged)
            [[ -n $p ]] && break
            sleep 0.1
        done
        [[ -n $p ]] || die "munged did not start; see /var/log/munge/munged.log"
        echo "$p" | $SUDO tee "$RUN/munged.pid" >/dev/null
        say "started munged (pid $p)"
    fi
    munge -n | unmunge >/dev/null || die "munge cannot decode its own credential"
}

write_config() {
    if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        [[ ${CHUNKFLOW_SLURM_FORCE:-0} == 1 ]] ||
            die "$CONF exists and was not written by this script; set CHUNKFLOW_SLURM_FORCE=1 to \
back it up (to $CONF.chunkflow-backup, restored by 'down') and replace it"
        $SUDO cp -n "$CONF" "$CONF.chunkflow-backup"
        say "backed up $CONF to $CONF.chunkflow-backup"
    fi
    local mem
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    $SUDO mkdir -p /etc/slurm "$SPOOL/ctld" "$SPOOL/d" "$LOGS"
    local new
    new=$(mktemp)
    cat >"$new" <<EOF
$MARK
# A one-node cluster for tests (see the script for why each setting is here).
ClusterName=chunkflow
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if cmp -s "$new" "$CONF"; then
        rm -f "$new"
        return 1
    fi
    $SUDO install -m 644 "$new" "$CONF"
    rm -f "$new"
    say "wrote $CONF ($CPUS CPUs)"
    return 0
}

# Starts daemon $1 unless it runs; returns 0 when it started it.
start_daemon() {
    local name=$1 p
    p=$(running_pid "$name")
    if [[ -n $p ]]; then
        local whose="not started by this script"
        [[ $(pid_in "$RUN/$name.pid") == "$p" ]] && whose="started by this script"
        say "$name already running (pid $p, $whose)"
        return 1
    fi
    $SUDO "/usr/sbin/$name" # daemonizes and writes /run/$name.pid
    for _ in $(seq 100); do
        p=$(running_pid "$name")
        [[ -n $p ]] && break
        sleep 0.1
    done
    if [[ -z $p ]]; then
        tail -n 20 "$LOGS/$name.log" >&2 || true
        die "$name did not start; see $LOGS/$name.log"
    fi
    echo "$p" | $SUDO tee "$RUN/$name.pid" >/dev/null
    say "started $name (pid $p)"
    return 0
}

wait_for_node() {
    local end=$(($(date +%s) + TIMEOUT)) state
    while :; do
        state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
        case $state in
            idle | mix | alloc) return 0 ;;
            down* | drain* | drng* | fail*)
                $SUDO scontrol update nodename="$HOST" state=resume 2>/dev/null || true
                ;;
        esac
        if (($(date +%s) >= end)); then
            sinfo >&2 || true
            die "the node is not taking jobs after ${TIMEOUT}s (state: '${state:-unknown}'); \
see $LOGS/slurmctld.log and $LOGS/slurmd.log"
        fi
        sleep 0.2
    done
}

up() {
    local t0=$SECONDS
    install_packages
    $SUDO mkdir -p "$RUN"
    start_munge
    local changed=0 ctld_started=0
    write_config && changed=1
    start_daemon slurmctld && ctld_started=1
    start_daemon slurmd || true
    if ((changed && !ctld_started)); then
        # The node's CPU count is read when slurmd starts: changing it needs down + up.
        say "configuration changed: scontrol reconfigure"
        $SUDO scontrol reconfigure || true
    fi
    wait_for_node
    say "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %t %c CPUs %N' | head -n 1)"
}

# Stops daemon $1 if this script started it.
stop_daemon() {
    local name=$1 pf="$RUN/$1.pid" p
    if [[ ! -s $pf ]]; then
        say "$name: not started by this script; leaving it alone"
        return 0
    fi
    p=$(cat "$pf")
    if ! is_prog "$p" "$name"; then
        say "$name (pid $p) is no longer running"
        $SUDO rm -f "$pf"
        return 0
    fi
    $SUDO kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do
        alive "$p" || break
        sleep 0.1
    done
    if alive "$p"; then
        say "$name (pid $p) ignored SIGTERM for 10 s: SIGKILL"
        $SUDO kill -KILL "$p" 2>/dev/null || true
        sleep 0.5
    fi
    if alive "$p"; then
        say "$name (pid $p) is still running"
        return 1
    fi
    $SUDO rm -f "$pf"
    say "stopped $name (pid $p)"
}

down() {
    local rc=0
    local ctld
    ctld=$(pid_in "$RUN/slurmctld.pid")
    if is_prog "$ctld" slurmctld; then
        local jobs
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
        if [[ -n ${jobs// /} ]]; then
            say "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 50); do
                [[ -z $(squeue -h -o %A 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    stop_daemon slurmd || rc=1
    stop_daemon slurmctld || rc=1
    stop_daemon munged || rc=1
    if [[ -e $CONF.chunkflow-backup ]]; then
        $SUDO mv "$CONF.chunkflow-backup" "$CONF"
        say "restored the previous $CONF"
    fi
    return $rc
}

status() {
    local up=0
    for name in munged slurmctld slurmd; do
        local p whose
        p=$(running_pid "$name")
        if [[ -z $p ]]; then
            echo "$name: not running"
            up=1
            continue
        fi
        whose="not started by this script"
        [[ $(pid_in "$RUN/$name.pid") == "$p" ]] && whose="started by this script"
        echo "$name: running (pid $p, $whose)"
    done
    if ((up == 0)); then
        sinfo -o '%P %a %t %c %m %N' || up=1
        case $(sinfo -h -n "$HOST" -o %t 2>/dev/null) in
            idle | mix | alloc) ;;
            *) up=1 ;;
        esac
    fi
    return $up
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
esac
