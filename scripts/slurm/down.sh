#!/usr/bin/env bash
# Stop the single-node test cluster started by scripts/slurm/up.sh: cancel its jobs, then stop each daemon
# by its pid file (slurmd, slurmctld, slurmdbd, MariaDB, munged) and wait for it to exit. Packages stay
# installed, so the next up.sh takes seconds. Does nothing to a cluster whose slurm.conf up.sh did not write.
set -u
MARK="# written by rnngeom scripts/slurm/up.sh"
[ "$(id -u)" = 0 ] || { echo "down.sh: must run as root" >&2; exit 1; }
if [ -e /etc/slurm/slurm.conf ] && ! grep -qxF "$MARK" /etc/slurm/slurm.conf; then
  echo "down.sh: /etc/slurm/slurm.conf was not written by up.sh; leaving this cluster alone" >&2
  exit 1
fi

stop() {  # $1: pid file of a daemon we started
  [ -s "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped $(basename "$1" .pid) (pid $pid)"; return 0; }
    sleep 0.1
  done
  echo "$(basename "$1" .pid) (pid $pid) still running after 10 s; sending KILL"
  kill -KILL "$pid" 2>/dev/null
}

if [ -s /run/slurm/slurmctld.pid ] && kill -0 "$(cat /run/slurm/slurmctld.pid)" 2>/dev/null; then
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  [ -n "${jobs// /}" ] && { echo "cancelling jobs: $jobs"; scancel $jobs 2>/dev/null; sleep 1; }
fi
stop /run/slurm/slurmd.pid
stop /run/slurm/slurmctld.pid
stop /run/slurm/slurmdbd.pid
stop /run/mysqld/mysqld.pid
stop /run/munge/munged.pid
exit 0
