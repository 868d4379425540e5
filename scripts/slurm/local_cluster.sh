#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and trials:
# Debian's slurm-wlm and munge, with slurmctld and slurmd on 127.0.0.1, one
# node with all CPUs, everything (config, munge key, state, spool, logs,
# pid files) in one folder, and its own ports, so it leaves /etc alone and
# does not meet a real cluster's daemons.
#
#   scripts/slurm/local_cluster.sh start [DIR]   # prints: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm/local_cluster.sh stop  [DIR]
#
# DIR defaults to $DUNEWATCH_SLURM_DIR, else /tmp/dunewatch-slurm. Slurm's
# commands (sbatch, squeue, scancel, sinfo, scontrol) talk to this cluster
# when SLURM_CONF points at DIR/slurm.conf. Runs as root (SlurmUser=root; jobs
# run as the submitting user), without systemd: the daemons fork themselves
# and stop from their pid files. Process tracking is proctrack/linuxproc and
# tasks are not confined (task/none), as cgroups may not be writable in a
# container. There is no accounting database, so sacct has nothing here:
# finished jobs stay in `squeue --states=all` / `scontrol show job` for
# MinJobAge (10 minutes).
#
# `start` installs slurm-wlm and munge with apt when they are missing, waits
# until sinfo shows the node idle, and fails with the daemons' last log
# lines if it does not come up (exit 3: cannot run here). `stop` cancels the
# cluster's jobs, waits for them to end, then stops the daemons.
set -euo pipefail

cmd=${1:-}
dir=${2:-${DUNEWATCH_SLURM_DIR:-/tmp/dunewatch-slurm}}
case "$cmd" in start | stop) ;; *)
  echo "usage: $0 start|stop [DIR]" >&2
  exit 2
  ;;
esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

say() { echo "local_cluster.sh: $*" >&2; }

# Whether the pid in FILE is alive.
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Stops the daemon of a pid file (the file goes when the daemon exits).
stop_pidfile() {
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  if [ -f "$conf" ] && alive "$dir/slurmctld.pid"; then
    # Jobs first: their steps (slurmstepd) outlive slurmd otherwise.
    scancel --full --quiet --state=PENDING 2>/dev/null || true
    scancel --full --quiet 2>/dev/null || true
    for i in $(seq 100); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop_pidfile "$dir/slurmd.pid"
  stop_pidfile "$dir/slurmctld.pid"
  stop_pidfile "$dir/munged.pid"
  say "stopped ($dir)"
  exit 0
fi

# --- start ---
if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"; then
  say "already running ($dir)"
  echo "export SLURM_CONF=$conf"
  exit 0
fi

need=()
for b in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${b%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${b%%:*}" ] || need+=("${b#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing slurm-wlm munge (missing: ${need[*]})"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (SlurmUser=root starts job steps as their user)"
  exit 3
fi

# Free TCP ports for slurmctld and slurmd (asked of the kernel).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

host=$(hostname -s)
cpus=$(nproc)
# A little under the total, so that slurmd's own count is never below it
# (a node reporting less memory than configured is drained).
mem=$(free -m | awk '/^Mem:/ { printf "%d", $2 * 0.95 }')

mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
chmod 700 "$dir/munge"

# munge: its own key, socket, pid, log and seed; slurm finds the socket
# through AuthInfo.
key="$dir/munge/munge.key"
[ -s "$key" ] || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
chmod 400 "$key"
sock="$dir/munge/munge.socket"

cat >"$conf" <<EOF
# Written by scripts/slurm/local_cluster.sh: a one-node test cluster.
ClusterName=dunewatch-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
SlurmdTimeout=60
InactiveLimit=0
MaxArraySize=10001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

fail() {
  say "$1"
  for f in "$dir/log/munged.log" "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/slurmd.out"; do
    [ -s "$f" ] && { say "--- last lines of $f"; tail -n 8 "$f" >&2; }
  done
  "$0" stop "$dir" >/dev/null 2>&1 || true
  exit 3
}

alive "$dir/munged.pid" || munged --force --key-file="$key" --socket="$sock" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" ||
  fail "munged does not start"
# munged forks; its socket appears once it serves.
for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "munged does not serve $sock"

alive "$dir/slurmctld.pid" || slurmctld -f "$conf" -i >"$dir/log/slurmctld.out" 2>&1 ||
  fail "slurmctld does not start"
alive "$dir/slurmd.pid" || slurmd -f "$conf" -N "$host" >"$dir/log/slurmd.out" 2>&1 ||
  fail "slurmd does not start"

# Up when the node is idle (registered, nothing running).
for i in $(seq 120); do
  state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null || true)
  case "$state" in idle*) break ;; esac
  alive "$dir/slurmctld.pid" || fail "slurmctld died"
  alive "$dir/slurmd.pid" || fail "slurmd died"
  sleep 0.5
done
case "$state" in idle*) ;; *) fail "node $host is not idle after 60 s (state: ${state:-none})" ;; esac
say "running: node $host, $cpus CPUs, ${mem} MB, ports $ctld_port/$slurmd_port ($dir)"
echo "export SLURM_CONF=$conf"
