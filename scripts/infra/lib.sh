# shellcheck shell=bash
# Shared settings and helpers for scripts/infra/*.sh. Sourced, not executed.

TY_STATE="${TRAINYARD_INFRA_DIR:-/var/tmp/trainyard-infra}"
TY_NODES="${TRAINYARD_NODES:-3}"

TY_REDIS_PORT=6399
TY_MONGO_PORT=27027
TY_PG_PORT=5439 # PostgreSQL under FerretDB (127.0.0.1 only; not Debian's default 5432)
TY_PG_USER=trainyard-pg # OS user owning the PostgreSQL data dir (initdb refuses root)
TY_PG_BIN=${TRAINYARD_PG_BIN:-/usr/lib/postgresql/15/bin}
TY_SSH_PORT=2222
TY_FERRETDB_VERSION=v1.24.2
TY_FERRETDB_MODULE=github.com/FerretDB/FerretDB
# Go GC target for FerretDB: it spends most of a read decoding JSON into short-lived objects, and at
# the default (100) a fifth of its CPU went to collecting them; 400 made a 100-job read ~25% faster
# (37 → 27 ms p50) for ~10 MB more memory.
TY_FERRETDB_GOGC=${TRAINYARD_FERRETDB_GOGC:-400}

TY_NODE_PY_ROOT=/opt/trainyard-node
TY_NODE_VENV="$TY_NODE_PY_ROOT/venv"
TY_NODE_PYFIX="$TY_NODE_PY_ROOT/pyfix"
TY_NODE_WORK_BASE=/var/tmp/trainyard-nodes
TY_NODE_PATH="$TY_NODE_VENV/bin:/usr/local/bin:/usr/bin:/bin"
TY_TENSORFLOW_VERSION=2.21.0
TY_HOROVOD_VERSION=0.28.1
TY_HOROVOD_BUILD_LIMIT=${TRAINYARD_HOROVOD_BUILD_LIMIT:-1200}

TY_SSHD=/usr/sbin/sshd

ty_log() { printf '[infra] %s\n' "$*" >&2; }
ty_die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

ty_node_dir() { printf '%s/ssh/n%s' "$TY_STATE" "$1"; }
ty_node_addr() { printf '127.0.0.%s' "$(($1 + 1))"; }

# ty_tcp_open HOST PORT -> 0 if something accepts a TCP connection there.
ty_tcp_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ty_pid_alive PIDFILE [CMDLINE-SUBSTRING] -> prints pid and returns 0 if the process
# in PIDFILE exists (and, if given, its command line contains the substring; guards
# against a recycled pid).
ty_pid_alive() {
  local pidfile=$1 want=${2:-} pid cmd
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n $want ]]; then
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    [[ $cmd == *"$want"* ]] || return 1
  fi
  printf '%s' "$pid"
}

# ty_stop_pidfile NAME PIDFILE [CMDLINE-SUBSTRING] -> TERM, wait up to 10 s, then KILL.
ty_stop_pidfile() {
  local name=$1 pidfile=$2 want=${3:-} pid i
  if ! pid=$(ty_pid_alive "$pidfile" "$want"); then
    ty_log "$name: not running"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    ty_log "$name: pid $pid ignored TERM, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$pidfile"
  ty_log "$name: stopped (pid $pid)"
}

# ty_node_sshd_start K -> start node K's sshd if not running (config must exist).
ty_node_sshd_start() {
  local k=$1 dir cfg pidfile addr i
  dir=$(ty_node_dir "$k")
  cfg="$dir/sshd_config"
  pidfile="$dir/sshd.pid"
  addr=$(ty_node_addr "$k")
  [[ -f $cfg ]] || ty_die "node n$k: $cfg missing (run scripts/infra/up.sh first)"
  if ty_pid_alive "$pidfile" "$cfg" >/dev/null; then
    return 0
  fi
  # A listener started with this config whose pidfile went missing (e.g. two runs racing): adopt it.
  local running
  running=$(pgrep -o -f -- "sshd -f $cfg " || true)
  if [[ -n $running ]] && ty_tcp_open "$addr" "$TY_SSH_PORT"; then
    echo "$running" >"$pidfile"
    return 0
  fi
  mkdir -p /run/sshd
  chmod 0755 /run/sshd
  rm -f "$pidfile"
  "$TY_SSHD" -f "$cfg" -E "$dir/sshd.log" || ty_die "node n$k: sshd failed to start (see $dir/sshd.log)"
  for ((i = 0; i < 50; i++)); do
    if ty_pid_alive "$pidfile" >/dev/null && ty_tcp_open "$addr" "$TY_SSH_PORT"; then
      ty_log "node n$k: sshd started on $addr:$TY_SSH_PORT (pid $(cat "$pidfile"))"
      return 0
    fi
    sleep 0.1
  done
  ty_die "node n$k: sshd did not come up on $addr:$TY_SSH_PORT (see $dir/sshd.log)"
}

# ty_node_sshd_stop K -> stop node K's listening sshd and every session it spawned
# (so open SSH connections to the node drop too, as if the machine went away).
# Processes a session started with setsid (training jobs) are left alone.
ty_node_sshd_stop() {
  local k=$1 dir pidfile pid kids
  dir=$(ty_node_dir "$k")
  pidfile="$dir/sshd.pid"
  if pid=$(ty_pid_alive "$pidfile" "$dir/sshd_config"); then
    kids=$(pgrep -P "$pid" || true)
    if [[ -n $kids ]]; then
      # shellcheck disable=SC2086
      kill -TERM $kids 2>/dev/null || true
    fi
  fi
  ty_stop_pidfile "node n$k sshd" "$pidfile" "$dir/sshd_config"
}
