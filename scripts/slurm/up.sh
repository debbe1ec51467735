#!/usr/bin/env bash
# Bring up a throw-away, single-node SLURM cluster on this machine (for tests/test_slurm.py).
#
#   sudo scripts/slurm/up.sh             # slurmctld + slurmd + munge; job status via squeue
#   sudo WITH_DBD=1 scripts/slurm/up.sh  # also MariaDB + slurmdbd, so that sacct works
#
# Needs: root, Debian/Ubuntu with apt-get (Debian 12 gives SLURM 22.05), no systemd required: every daemon
# is started directly and tracked by its pid file (scripts/slurm/down.sh stops them again).
# Safe to run twice: missing packages only are installed, running daemons are kept when the generated
# configuration did not change, and restarted when it did.
# It refuses to touch an /etc/slurm/slurm.conf that it did not write (a real cluster's configuration)
# unless RNNGEOM_SLURM_FORCE=1.
set -euo pipefail

WITH_DBD=${WITH_DBD:-0}
MARK="# written by rnngeom scripts/slurm/up.sh"
CONF=/etc/slurm/slurm.conf
DBDCONF=/etc/slurm/slurmdbd.conf
START=$(date +%s.%N)
say() { awk -v now="$(date +%s.%N)" -v t0="$START" -v msg="$*" 'BEGIN { printf "[up %5.1fs] %s\n", now - t0, msg }'; }
# exit codes: 2 = cannot run here (not root, no apt-get), 3 = packages not installable, 4 = a foreign slurm.conf,
# 1 = anything else (a daemon did not come up: see /var/log/slurm/)
die() { local code=$1; shift; echo "up.sh: $*" >&2; exit "$code"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }  # $1: a pid file

[ "$(id -u)" = 0 ] || die 2 "must run as root (it installs packages and starts system daemons)"
command -v apt-get >/dev/null || die 2 "apt-get not found: this recipe is for Debian/Ubuntu"
if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF" && [ "${RNNGEOM_SLURM_FORCE:-0}" != 1 ]; then
  die 4 "$CONF exists and was not written by this script; set RNNGEOM_SLURM_FORCE=1 to replace it"
fi

# ---- packages: install only what is missing ----------------------------------------------------------
want="slurmctld slurmd slurm-client munge"
[ "$WITH_DBD" = 1 ] && want="$want slurmdbd mariadb-server"
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die 3 "apt-get update failed (no network or no package mirror?)"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null || die 3 "apt-get install$missing failed"
  say "installed:$missing"
else
  say "packages already installed"
fi

# ---- munge: the shared-secret authentication every SLURM daemon and client uses ----------------------
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create --force
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged   # forks into the background, pid in /run/munge/munged.pid
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || die 1 "munged does not answer"
say "munge ok"

# ---- the configuration, generated from what this machine has ----------------------------------------
install -d -o slurm -g slurm /run/slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd /etc/slurm
node=$(slurmd -C | head -n 1)   # "NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..": the plugin always passes --mem
if [ "$WITH_DBD" = 1 ]; then
  accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
else
  accounting="AccountingStorageType=accounting_storage/none"
fi
new=$(mktemp)
cat >"$new" <<EOF
$MARK
# A one-node test cluster on localhost. MinJobAge=300 keeps finished jobs visible to squeue for 5 minutes,
# which is what makes "--slurm-status-command squeue" reliable when there is no accounting database.
ClusterName=rnngeomci
SlurmctldHost=$(hostname -s)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$accounting
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=300
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$new" "$CONF"; then
  install -m 0644 "$new" "$CONF"
  changed=1
fi
rm -f "$new"

# ---- optional accounting: MariaDB + slurmdbd (sacct, efficiency reports) ------------------------------
if [ "$WITH_DBD" = 1 ]; then
  install -d -o mysql -g mysql /run/mysqld
  if ! mariadb-admin ping >/dev/null 2>&1; then
    nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --socket=/run/mysqld/mysqld.sock \
      --pid-file=/run/mysqld/mysqld.pid >/var/log/slurm/mariadb.log 2>&1 &
    for _ in $(seq 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  mariadb-admin ping >/dev/null 2>&1 || die 1 "MariaDB did not start (see /var/log/slurm/mariadb.log)"
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'rnngeom-ci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >"$DBDCONF" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=rnngeom-ci
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm "$DBDCONF"
  chmod 0600 "$DBDCONF"
  alive /run/slurm/slurmdbd.pid || /usr/sbin/slurmdbd
  for _ in $(seq 150); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  sacctmgr -i add cluster rnngeomci >/dev/null 2>&1 || true   # already there on a re-run
  say "slurmdbd up"
fi

# ---- slurmctld + slurmd ------------------------------------------------------------------------------
if [ "$changed" = 1 ]; then   # a new configuration: restart whatever runs with the old one
  for f in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid; do
    if alive "$f"; then
      pid=$(cat "$f"); kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
fi
alive /run/slurm/slurmctld.pid || /usr/sbin/slurmctld -c   # -c: forget jobs and node state of a previous run
alive /run/slurm/slurmd.pid || /usr/sbin/slurmd
state=""
for _ in $(seq 150); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    down* | drain*) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated | completing) ;;
  *) die 1 "node state is '${state:-unknown}' (see /var/log/slurm/slurmctld.log and slurmd.log)" ;;
esac
sinfo
say "cluster up (node $state; accounting: $([ "$WITH_DBD" = 1 ] && echo slurmdbd || echo none))"
