#!/usr/bin/env bash
# Install, start and stop a real single-node SLURM on this machine (Debian/Ubuntu, run as root).
#
# Why: robustsweep's SLURM backend is tested end-to-end against a real slurmctld/slurmd, not a mock.
# A container has no systemd, so the daemons are started directly, all of them bound to 127.0.0.1,
# with every file (config, state, logs, munge socket) under one state directory so that `stop` leaves
# nothing running and `start` can be repeated safely.
#
# Usage:
#   eval "$(slurm/local_slurm.sh start)"   # installs if needed, starts, prints the exports to eval
#   slurm/local_slurm.sh status            # sinfo + squeue
#   slurm/local_slurm.sh env               # print the exports again
#   slurm/local_slurm.sh stop              # stop slurmd, slurmctld, munged (state dir kept)
#   slurm/local_slurm.sh stop --purge      # ... and delete the state dir
#   slurm/local_slurm.sh install           # only apt-get install the packages
#
# Only the `export ...` lines go to stdout; progress goes to stderr.
#
# Environment:
#   RS_SLURM_DIR        state directory            (default /tmp/robustsweep-slurm)
#   RS_SLURM_PARTITION  name of the only partition (default debug)
#   RS_SLURM_CTLD_PORT  slurmctld port             (default 6817)
#   RS_SLURM_D_PORT     slurmd port                (default 6818)
#   RS_SLURM_KILLWAIT   seconds between SIGTERM and SIGKILL on cancel (default 5; submitit's job side
#                       ignores SIGTERM, so every scancel takes this long)
#
# What the clients need (the printed exports):
#   SLURM_CONF  every slurm command and submitit's process read the config from here.
#   PATH        $RS_SLURM_DIR/bin goes first: it holds an `sacct` stand-in. This cluster has no accounting
#               database, so the real sacct fails; submitit polls sacct for job state and would never see
#               a cancelled job finish. The stand-in answers from `squeue --states=all`, which keeps
#               finished jobs for MinJobAge (1 h) here.
set -euo pipefail

STATE="${RS_SLURM_DIR:-/tmp/robustsweep-slurm}"
PARTITION="${RS_SLURM_PARTITION:-debug}"
CTLD_PORT="${RS_SLURM_CTLD_PORT:-6817}"
D_PORT="${RS_SLURM_D_PORT:-6818}"
KILLWAIT="${RS_SLURM_KILLWAIT:-5}"
CONF="$STATE/etc/slurm.conf"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"

log() { echo "local_slurm: $*" >&2; }
die() { echo "local_slurm: error: $*" >&2; exit 1; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons as root/munge)"
}

do_install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then
    log "slurm-wlm and munge already installed"
    return
  fi
  need_root
  command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"
  log "installing munge slurmctld slurmd slurm-client (apt-get, ~10 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >&2
}

print_env() {
  echo "export SLURM_CONF=$CONF"
  echo "export PATH=$STATE/bin:\$PATH"
}

write_sacct_standin() {
  mkdir -p "$STATE/bin"
  cat >"$STATE/bin/sacct" <<'EOF'
#!/usr/bin/env bash
# sacct stand-in for a SLURM without accounting (written by slurm/local_slurm.sh).
# Understands what submitit and robustsweep ask: -j ID (repeatable or comma list), -o FIELDS,
# --parsable2; answers JobID|State|NodeList from squeue, which keeps finished jobs for MinJobAge.
ids=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -j|--jobs) IFS=, read -ra more <<<"$2"; ids+=("${more[@]}"); shift 2 ;;
    -j*) IFS=, read -ra more <<<"${1#-j}"; ids+=("${more[@]}"); shift ;;
    --jobs=*) IFS=, read -ra more <<<"${1#--jobs=}"; ids+=("${more[@]}"); shift ;;
    -o|--format) shift 2 ;;
    *) shift ;;
  esac
done
echo "JobID|State|NodeList"
args=(--states=all --noheader -o '%i|%T|%N')
if [[ ${#ids[@]} -gt 0 ]]; then
  # one squeue per id: squeue fails as a whole if any one id is unknown
  for id in "${ids[@]}"; do squeue "${args[@]}" -j "$id" 2>/dev/null || true; done
else
  squeue "${args[@]}" 2>/dev/null || true
fi
EOF
  chmod 755 "$STATE/bin/sacct"
}

write_conf() {
  mkdir -p "$STATE/etc" "$STATE/ctld" "$STATE/spool" "$STATE/log" "$STATE/run"
  # the node line must be what slurmd itself detects, or the node registers as INVALID
  local node_line node_name
  node_line=$(slurmd -C | head -n1)
  node_name=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
  [[ -n "$node_name" ]] || die "could not read the node name from 'slurmd -C': $node_line"
  cat >"$CONF" <<EOF
# written by slurm/local_slurm.sh -- a single-node test cluster, everything on 127.0.0.1
ClusterName=robustsweep-local
SlurmctldHost=${node_name}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${D_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${MUNGE_SOCKET}
CredType=cred/munge
# without this, slurmctld/slurmd listen on 0.0.0.0
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/spool
SlurmctldPidFile=${STATE}/run/slurmctld.pid
SlurmdPidFile=${STATE}/run/slurmd.pid
SlurmctldLogFile=${STATE}/log/slurmctld.log
SlurmdLogFile=${STATE}/log/slurmd.log
# no systemd/cgroups in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# keep finished jobs visible to squeue (the sacct stand-in reads them) for an hour
MinJobAge=3600
# submitit's job side ignores SIGTERM: keep the SIGTERM->SIGKILL gap short so cancels are quick
KillWait=${KILLWAIT}
# requeue (pre-emption / time limit) must be allowed
JobRequeue=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
Waittime=0
${node_line} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start_munge() {
  if pid_alive "$MUNGE_DIR/munged.pid"; then
    log "munged already running (pid $(cat "$MUNGE_DIR/munged.pid"))"
    return
  fi
  mkdir -p "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then mungekey --create --force >&2; else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  runuser -u munge -- munged --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    || die "munged did not start; see $MUNGE_DIR/munged.log"
  for _ in $(seq 50); do [[ -S "$MUNGE_SOCKET" ]] && break; sleep 0.1; done
  [[ -S "$MUNGE_SOCKET" ]] || die "munged started but its socket $MUNGE_SOCKET never appeared"
  munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null \
    || die "munge round trip failed; see $MUNGE_DIR/munged.log"
}

do_start() {
  need_root
  do_install
  mkdir -p "$STATE"
  export SLURM_CONF="$CONF"
  if pid_alive "$STATE/run/slurmctld.pid" && pid_alive "$STATE/run/slurmd.pid" \
     && scontrol ping >/dev/null 2>&1; then
    log "already running (state in $STATE)"
    write_sacct_standin
    print_env
    return
  fi
  write_conf
  write_sacct_standin
  start_munge
  if ! pid_alive "$STATE/run/slurmctld.pid"; then
    # -i: ignore unreadable state from an earlier, differently configured run
    slurmctld -f "$CONF" -i || die "slurmctld did not start; see $STATE/log/slurmctld.log"
  fi
  if ! pid_alive "$STATE/run/slurmd.pid"; then
    slurmd -f "$CONF" || die "slurmd did not start; see $STATE/log/slurmd.log"
  fi
  local t0=$SECONDS state=""
  while (( SECONDS - t0 < 30 )); do
    state=$(sinfo -h -p "$PARTITION" -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
      idle*|mixed*|allocated*) break ;;
      down*|drain*|fail*|inval*)
        # a node left DOWN by an earlier run: bring it back
        scontrol update nodename=ALL state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  case "$state" in
    idle*|mixed*|allocated*) log "SLURM up in $((SECONDS - t0)) s: partition $PARTITION is $state" ;;
    *) die "node never became idle (state '${state:-unknown}'); see $STATE/log/slurmctld.log and slurmd.log" ;;
  esac
  print_env
}

stop_pidfile() {
  local name=$1 pidfile=$2
  if pid_alive "$pidfile"; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped $name"
  fi
  rm -f "$pidfile"
}

do_stop() {
  export SLURM_CONF="$CONF"
  if [[ -f "$CONF" ]] && pid_alive "$STATE/run/slurmctld.pid"; then
    # cancel what still runs so no job step outlives the cluster
    scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
  fi
  stop_pidfile slurmd "$STATE/run/slurmd.pid"
  stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
  stop_pidfile munged "$MUNGE_DIR/munged.pid"
  if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$STATE"
    log "removed $STATE"
  fi
}

do_status() {
  [[ -f "$CONF" ]] || die "not configured ($CONF missing); run: $0 start"
  export SLURM_CONF="$CONF"
  sinfo >&2
  squeue --states=all >&2
}

case "${1:-start}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop "${2:-}" ;;
  status) do_status ;;
  env) print_env ;;
  *) die "unknown command '$1'; use start | stop [--purge] | status | env | install" ;;
esac
