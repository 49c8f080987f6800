#!/bin/bash
# A one-node Slurm cluster on this machine, for running the Slurm examples on a
# real scheduler (tests/slurm_test.ts).
#
# Usage: scripts/slurm_cluster.sh --check
#          exits 0 when a cluster can be started here, else prints why and exits 3
#        scripts/slurm_cluster.sh [command...]
#          starts the cluster, prints "slurm_cluster: ready <slurm.conf>", runs the
#          command with SLURM_CONF set (without one: waits until standard input
#          closes, so a caller that dies takes the cluster with it), then stops it
#
# Installs Debian's slurm-wlm and munge when missing, as root where apt-get
# exists. Everything else lives in a temporary folder: the munge key and
# socket, slurm.conf (this host, its cores and memory, one partition), the
# controller's state, the spool and the daemons' logs. The ports are picked at
# random and the job ids start at a random number, so that two clusters on one
# machine (two checkouts testing at once) neither collide nor overwrite each
# other's job logs. munged, slurmctld and slurmd run in the foreground under
# this script; on exit, whatever happened, its jobs are cancelled, every
# process started for the cluster (the daemons, slurmstepd, the jobs) is
# ended by its id and the folder is removed.
set -uo pipefail

# A caller that goes away closes our pipes; the cleanup must still run to the end.
trap '' PIPE

say() { echo "slurm_cluster: $*" >&2; }

daemons=(munged slurmctld slurmd sbatch scancel squeue sinfo mungekey)

missing_binaries() {
  local name
  for name in "${daemons[@]}"; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$name" >/dev/null 2>&1 || return 0
  done
  return 1
}

# Why a cluster cannot be started here, or nothing.
cannot() {
  if [ "$(uname -s)" != Linux ]; then
    echo "Slurm's daemons run on Linux only"
  elif [ "$(id -u)" != 0 ]; then
    echo "starting slurmd and slurmctld needs root"
  elif missing_binaries && ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm-wlm and munge are not installed and there is no apt-get to install them"
  fi
}

reason=$(cannot)
if [ "${1:-}" = --check ]; then
  if [ -n "$reason" ]; then
    echo "$reason"
    exit 3
  fi
  exit 0
fi
if [ -n "$reason" ]; then
  say "cannot start a cluster: $reason"
  exit 3
fi
export PATH="$PATH:/usr/sbin:/sbin"

if missing_binaries; then
  say "installing slurm-wlm and munge"
  log=$(mktemp)
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
    >"$log" 2>&1; then
    say "apt-get could not install slurm-wlm and munge; its output:"
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pgd-slurm-XXXXXX")
conf="$dir/slurm.conf"
pids=()

# Every process whose environment names this cluster's slurm.conf: the daemons,
# the slurmstepd of each job (slurmd's children, reparented), the jobs.
cluster_processes() {
  local environ pid
  # grep without SLURM_CONF, or it would find itself.
  for environ in $(env -u SLURM_CONF grep -lzxF "SLURM_CONF=$conf" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" = $$ ] || echo "$pid"
  done
}

stop() {
  local status=$? pid left i
  trap - EXIT INT TERM HUP
  [ -n "${hold_pid:-}" ] && kill "$hold_pid" 2>/dev/null
  if [ -n "${slurmctld_pid:-}" ] && kill -0 "$slurmctld_pid" 2>/dev/null; then
    # Cancelled first, so that slurmd ends each job's processes itself.
    mapfile -t jobs < <(SLURM_CONF="$conf" squeue -h -o %A 2>/dev/null)
    if [ ${#jobs[@]} -gt 0 ]; then
      SLURM_CONF="$conf" scancel "${jobs[@]}" 2>/dev/null
      for ((i = 0; i < 50; i++)); do
        [ -z "$(SLURM_CONF="$conf" squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  # The daemons in the reverse order of their start, then anything left behind.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null; done
  for ((i = 0; i < 50; i++)); do
    left=$(cluster_processes)
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
    [ -z "${left// /}" ] && break
    if ((i == 25)); then for pid in $left; do kill -KILL "$pid" 2>/dev/null; done; fi
    sleep 0.2
  done
  [ -n "${left// /}" ] && say "processes still running after the stop: $left"
  wait "${pids[@]}" 2>/dev/null
  rm -rf "$dir"
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail() {
  say "$1"
  local log
  for log in "$dir"/log/*.log; do
    [ -s "$log" ] || continue
    say "last lines of ${log##*/}:"
    tail -n 15 "$log" >&2
  done
  exit 1
}

# A TCP port nothing on this host listens on.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free TCP port found"
}

mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir" "$dir/munge"

mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
  fail "mungekey could not create a key"
socket="$dir/munge/munge.socket"
SLURM_CONF="$conf" munged --foreground --force --key-file="$dir/munge/munge.key" \
  --socket="$socket" --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
  --log-file="$dir/log/munged.log" 2>>"$dir/log/munged.log" &
pids+=($!)

host=$(hostname -s)
# The node as slurmd sees it (cores, sockets, memory), so that it registers
# without a mismatch; the first line of `slurmd -C` is the NodeName line.
node=$(slurmd -C 2>/dev/null | head -n 1)
[[ "$node" == NodeName=* ]] || fail "slurmd -C did not describe this node: $node"
node="NodeName=$host ${node#NodeName=* } NodeAddr=127.0.0.1 State=UNKNOWN"

cat >"$conf" <<EOF
# A one-node cluster for pgd-bench's test of its Slurm examples (scripts/slurm_cluster.sh).
ClusterName=pgdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# No cgroups: containers and CI machines seldom delegate them. A job's processes are
# its process group: proctrack/linuxproc misreads the process tree when a name holds
# a space, as npx's "npm exec …" does, and then cannot cancel the job.
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
FirstJobId=$((1000 + RANDOM * 30))
# Cancelled jobs are killed after 2 s, not 30; finished jobs stay visible to scontrol for 5 min.
KillWait=2
MinJobAge=300
$node
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF="$conf"
slurmctld -D -i -f "$conf" 2>>"$dir/log/slurmctld.log" &
slurmctld_pid=$!
pids+=("$slurmctld_pid")
slurmd -D -N "$host" -f "$conf" 2>>"$dir/log/slurmd.log" &
pids+=($!)

state=
for ((i = 0; i < 150; i++)); do
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a daemon exited at start"; done
  state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || fail "the node is not idle after 30 s (sinfo: '${state:-no answer}')"

say "ready $conf"
echo "slurm_cluster: ready $conf"
if [ $# -gt 0 ]; then
  "$@"
else
  # In the background, so that a signal is handled at once; through another
  # descriptor, since a background command's standard input is /dev/null.
  exec 4<&0
  cat <&4 >/dev/null &
  hold_pid=$!
  wait "$hold_pid"
fi
