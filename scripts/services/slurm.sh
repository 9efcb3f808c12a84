#!/usr/bin/env bash
# Start or stop two throwaway single-node Slurm clusters side by side for the tests, with their own
# munged, ports and state directories, fake GPUs as GRES, job_submit/lua running carbonplan.lua
# and jobcomp/filetxt; everything is stopped by PID.
#
# usage: slurm.sh up STATE_DIR | slurm.sh down STATE_DIR
# `up` appends to STATE_DIR/env:
#   CARBONPLAN_TEST_SLURM_NORTH=<slurm.conf of cluster north>  (node north1: 4 x a100 and
#       2 x a100_3g.40gb; partitions a (default) and b)
#   CARBONPLAN_TEST_SLURM_CENTRAL=<slurm.conf of cluster central>  (node central1: 4 x h100;
#       partition gpu)
#   CARBONPLAN_TEST_SLURM_ACCOUNTING=1  when slurmdbd and MariaDB are installed (and we are
#       root): both clusters then keep accounting in one slurmdbd (MariaDB on its own port and
#       data directory), so plain `sacct` answers, each cluster for its own jobs.
# Ports: six free ones picked at `up` (two test runs can share a machine), or
# $CARBONPLAN_TEST_SLURM_PORT, +1 (north's slurmctld, slurmd), +10, +11 (central's), +20, +21
# (MariaDB, slurmdbd).
set -euo pipefail
cmd=${1:-}; state=$(realpath -m "${2:-}")
[ -n "$cmd" ] && [ -n "${2:-}" ] || { echo "usage: $0 up|down STATE_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
plugins=$(cd "$here/../../plugins/slurm" && pwd)
base=$state/slurm
mungedir=$base/munge

# "is it up?" asks the service, never `kill -0` (a killed daemon lingers as a zombie here)
alive() { [ -f "$1" ] && ps -o stat= -p "$(cat "$1")" 2>/dev/null | grep -qv '^Z'; }

start_munge() {
  mkdir -p "$mungedir"
  chmod 711 "$mungedir"
  install -m 600 /etc/munge/munge.key "$mungedir/munge.key"
  if [ "$(id -u)" = 0 ]; then
    chown -R munge: "$mungedir"
    as=(runuser -u munge --)
  else
    as=()
  fi
  "${as[@]}" /usr/sbin/munged --socket="$mungedir/munge.sock" --pid-file="$mungedir/munged.pid" \
    --log-file="$mungedir/munged.log" --seed-file="$mungedir/munged.seed" \
    --key-file="$mungedir/munge.key"
  munge -S "$mungedir/munge.sock" -n | unmunge -S "$mungedir/munge.sock" >/dev/null
}

free_ports() {  # six ports nothing listens on now
  python3 -c 'import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))'
}

# cluster NAME CTLD_PORT SLURMD_PORT NODE GRES PARTITIONS_CONF GRES_CONF
cluster() {
  local name=$1 cport=$2 dport=$3 node=$4 gres=$5 parts=$6 gresconf=$7
  local d=$base/$name
  mkdir -p "$d"/{etc,spool/ctld,spool/d,log,dev,out}
  for i in 0 1 2 3 4 5; do ln -sfn /dev/null "$d/dev/gpu$i"; done   # fake GPU device files
  cat >"$d/etc/slurm.conf" <<CONF
ClusterName=$name
SlurmctldHost=localhost
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$mungedir/munge.sock
StateSaveLocation=$d/spool/ctld
SlurmdSpoolDir=$d/spool/d
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
GresTypes=gpu
$accounting_conf
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
JobSubmitPlugins=lua
MinJobAge=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=8 RealMemory=4000 Gres=$gres State=UNKNOWN
$parts
CONF
  printf '%s\n' "$gresconf" | sed "s|@DEV@|$d/dev|g; s|@NODE@|$node|g" >"$d/etc/gres.conf"
  install -m 644 "$plugins/carbonplan.lua" "$d/etc/carbonplan.lua"
  install -m 644 "$plugins/job_submit.lua" "$d/etc/job_submit.lua"
  SLURM_CONF=$d/etc/slurm.conf slurmctld
  SLURM_CONF=$d/etc/slurm.conf slurmd -N "$node"
}

wait_idle() {
  local name=$1 node=$2 conf=$base/$1/etc/slurm.conf
  for _ in $(seq 1 300); do
    [ "$(SLURM_CONF=$conf timeout 5 sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n1)" = idle ] &&
      return 0
    sleep 0.1
  done
  echo "slurm.sh: cluster $name did not come up" >&2
  SLURM_CONF=$conf sinfo -N -o '%N %T %E' >&2 || true
  tail -20 "$base/$name/log/slurmctld.log" "$base/$name/log/slurmd.log" >&2
  return 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# MariaDB (its own data directory and port, not the system's) and one slurmdbd for both clusters;
# sets accounting_conf for their slurm.conf (slurmctld reaches slurmdbd through our munged:
# AccountingStoragePass names its socket). Returns 1 (nothing started) when not installed.
accounting_conf="AccountingStorageType=accounting_storage/none"
start_accounting() {
  local dbport=$1 dbdport=$2 db=$base/db dbd=$base/dbd
  [ "$(id -u)" = 0 ] && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null &&
    command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null || return 1
  install -d -o mysql -g mysql "$db"
  mariadb-install-db --user=mysql --datadir="$db/data" --auth-root-authentication-method=normal \
    >"$db/install.log" 2>&1
  setsid mariadbd --user=mysql --datadir="$db/data" --socket="$db/mysql.sock" \
    --pid-file="$db/mysql.pid" --port="$dbport" --bind-address=127.0.0.1 \
    --log-error="$db/err.log" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    mariadb -S "$db/mysql.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  # the password only ever lives in this throwaway database and the 0600 file below
  mariadb -S "$db/mysql.sock" -uroot -e "create user 'slurm'@'127.0.0.1' identified by 'slurmtest';
    grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1';"
  mkdir -p "$dbd/etc" "$dbd/log"
  : >"$dbd/etc/slurm.conf"  # slurmdbd finds slurmdbd.conf next to SLURM_CONF
  install -m 600 /dev/null "$dbd/etc/slurmdbd.conf"
  cat >"$dbd/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$mungedir/munge.sock
DbdHost=localhost
DbdPort=$dbdport
SlurmUser=root
LogFile=$dbd/log/slurmdbd.log
PidFile=$dbd/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$dbport
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmtest
CONF
  SLURM_CONF=$dbd/etc/slurm.conf slurmdbd
  for _ in $(seq 1 200); do
    listening "$dbdport" && break
    sleep 0.1
  done
  listening "$dbdport" || { echo "slurm.sh: slurmdbd did not come up" >&2;
                            tail -20 "$dbd/log/slurmdbd.log" "$db/err.log" >&2; return 1; }
  accounting_conf="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbdport
AccountingStoragePass=$mungedir/munge.sock
AccountingStorageTRES=gres/gpu"
}

case "$cmd" in
up)
  command -v slurmctld >/dev/null || { echo "slurm.sh: Slurm is not installed" >&2; exit 1; }
  if [ -n "${CARBONPLAN_TEST_SLURM_PORT:-}" ]; then
    b=$CARBONPLAN_TEST_SLURM_PORT
    ports=("$b" $((b + 1)) $((b + 10)) $((b + 11)) $((b + 20)) $((b + 21)))
  else
    read -r -a ports <<<"$(free_ports)"
  fi
  for p in "${ports[@]}"; do
    if listening "$p"; then
      echo "slurm.sh: something already answers on 127.0.0.1:$p" >&2
      exit 1
    fi
  done
  rm -rf "$base"; mkdir -p "$base"
  start_munge
  accounting=0
  if start_accounting "${ports[4]}" "${ports[5]}"; then accounting=1; fi
  cluster north "${ports[0]}" "${ports[1]}" north1 "gpu:a100:4,gpu:a100_3g.40gb:2" \
    "PartitionName=a Nodes=north1 Default=YES MaxTime=INFINITE State=UP
PartitionName=b Nodes=north1 MaxTime=INFINITE State=UP" \
    "NodeName=@NODE@ Name=gpu Type=a100 File=@DEV@/gpu[0-3]
NodeName=@NODE@ Name=gpu Type=a100_3g.40gb File=@DEV@/gpu[4-5]"
  cluster central "${ports[2]}" "${ports[3]}" central1 "gpu:h100:4" \
    "PartitionName=gpu Nodes=central1 Default=YES MaxTime=INFINITE State=UP" \
    "NodeName=@NODE@ Name=gpu Type=h100 File=@DEV@/gpu[0-3]"
  wait_idle north north1
  wait_idle central central1
  {
    echo "CARBONPLAN_TEST_SLURM_NORTH=$base/north/etc/slurm.conf"
    echo "CARBONPLAN_TEST_SLURM_CENTRAL=$base/central/etc/slurm.conf"
    [ "$accounting" = 1 ] && echo "CARBONPLAN_TEST_SLURM_ACCOUNTING=1"
  } >>"$state/env"
  echo "slurm up: clusters north (slurmctld port ${ports[0]}) and central (${ports[2]})," \
    "accounting $([ "$accounting" = 1 ] && echo "in slurmdbd (port ${ports[5]})" || echo off)"
  ;;
down)
  [ -d "$base" ] || exit 0
  # cancel what still runs, so that no job step outlives its slurmd
  for conf in "$base"/*/etc/slurm.conf; do
    alive "$(dirname "$(dirname "$conf")")/slurmctld.pid" || continue
    ids=$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null || true)
    [ -z "$ids" ] && continue
    # shellcheck disable=SC2086
    SLURM_CONF=$conf scancel $ids 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -z "$(SLURM_CONF=$conf squeue -h -t R,CG -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  done
  pids=()
  for f in "$base"/*/slurmd.pid "$base"/*/slurmctld.pid "$base/dbd/slurmdbd.pid" \
           "$base/db/mysql.pid" "$mungedir/munged.pid"; do
    alive "$f" && { pids+=("$(cat "$f")"); kill "$(cat "$f")" 2>/dev/null || true; }
  done
  for _ in $(seq 1 100); do
    left=0
    for p in "${pids[@]}"; do ps -o stat= -p "$p" 2>/dev/null | grep -qv '^Z' && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  rm -f "$base"/*/slurmd.pid "$base"/*/slurmctld.pid "$base/dbd/slurmdbd.pid" "$base/db/mysql.pid" \
    "$mungedir/munged.pid"
  ;;
*) echo "usage: $0 up|down STATE_DIR" >&2; exit 2 ;;
esac
