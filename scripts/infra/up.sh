#!/usr/bin/env bash
# Bring up Trainyard's local infrastructure (no Docker): Redis, FerretDB (MongoDB wire
# protocol), N loopback SSH "nodes", and the node-side Python. Idempotent; a warm run only
# checks and rewrites infra.json. See scripts/infra/README.md.
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[[ $(id -u) -eq 0 ]] || ty_die "must run as root (creates users, starts sshd)"
[[ $TY_NODES =~ ^[0-9]+$ ]] && ((TY_NODES >= 1 && TY_NODES <= 250)) ||
  ty_die "TRAINYARD_NODES must be 1..250 (got '$TY_NODES')"

T0=$(date +%s.%N)
mkdir -p "$TY_STATE"
chmod 0755 "$TY_STATE" # node users must be able to read their authorized_keys below it

# --------------------------------------------------------------------------- packages
ensure_apt() { # ensure_apt PKG... -> installs those not installed yet
  local missing=() p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  ty_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run instead of failing on its lock.
  local lock=(-o DPkg::Lock::Timeout=900)
  apt-get "${lock[@]}" update -q
  apt-get "${lock[@]}" install -y -q --no-install-recommends "${missing[@]}"
}

ensure_packages() {
  # openmpi-bin + python3-mpi4py: the MPI path (mpirun, mpi4py) of Horovod jobs.
  # postgresql: FerretDB's backend (see ensure_postgres); only its binaries are used, Debian's
  # own cluster (5432, systemd) is left alone.
  # chromium: the browser the web console's tests drive (tests/console.int.test.ts, playwright-core).
  # pdsh: the fan-out baseline of `pnpm bench` (P2).
  ensure_apt redis-server openssh-server openssh-client python3-torch python3-venv procps iproute2 \
    openmpi-bin python3-mpi4py postgresql chromium pdsh
}

# ------------------------------------------------------------------------------ redis
REDIS_DIR="$TY_STATE/redis"
ensure_redis() {
  if [[ -n ${REDIS_URL:-} ]]; then
    ty_log "redis: REDIS_URL given, not starting one"
    return 0
  fi
  if [[ $(redis-cli -h 127.0.0.1 -p "$TY_REDIS_PORT" ping 2>/dev/null || true) == PONG ]]; then
    return 0
  fi
  mkdir -p "$REDIS_DIR"
  redis-server --bind 127.0.0.1 --port "$TY_REDIS_PORT" --protected-mode yes \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --dir "$REDIS_DIR" --appendonly yes --maxmemory-policy noeviction >/dev/null
  local i
  for ((i = 0; i < 100; i++)); do
    if [[ $(redis-cli -h 127.0.0.1 -p "$TY_REDIS_PORT" ping 2>/dev/null || true) == PONG ]]; then
      ty_log "redis: started on 127.0.0.1:$TY_REDIS_PORT (pid $(cat "$REDIS_DIR/redis.pid" 2>/dev/null || echo '?'))"
      return 0
    fi
    sleep 0.1
  done
  ty_die "redis did not answer PING on 127.0.0.1:$TY_REDIS_PORT (see $REDIS_DIR/redis.log)"
}

# ------------------------------------------------------------------------- postgresql
# FerretDB's backend. PostgreSQL serves concurrent writers (row locks, MVCC); FerretDB on SQLite
# answered `database is locked (SQLITE_BUSY)` under concurrent submits (numbers in
# docs/architecture.md). Own data dir, own port (127.0.0.1:$TY_PG_PORT), own OS user, no systemd.
PG_DIR="$TY_STATE/postgres"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run" # unix socket + lock file
PG_LOG="$PG_DIR/postgres.log"
PG_PASS_FILE="$PG_DIR/ferretdb.password" # role 'ferretdb' password, 0600 root
PG_URL="" # set by ensure_postgres

pg_as() { runuser -u "$TY_PG_USER" -- "$@"; }

pg_ready() { "$TY_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$TY_PG_PORT" 2>/dev/null; }

ensure_postgres() {
  if [[ -n ${MONGO_URL:-} ]]; then
    return 0
  fi
  [[ -x $TY_PG_BIN/postgres ]] || ty_die "postgresql: no $TY_PG_BIN/postgres (Debian package postgresql 15; or set TRAINYARD_PG_BIN)"
  if ! id -u "$TY_PG_USER" >/dev/null 2>&1; then
    useradd --system --home-dir "$PG_DIR" --no-create-home --shell /usr/sbin/nologin "$TY_PG_USER"
    ty_log "postgresql: created system user $TY_PG_USER"
  fi
  mkdir -p "$PG_DIR" "$PG_RUN"
  chown "$TY_PG_USER:$TY_PG_USER" "$PG_DIR" "$PG_RUN"
  touch "$PG_LOG"
  chown "$TY_PG_USER:$TY_PG_USER" "$PG_LOG"
  chmod 0700 "$PG_DIR"
  if [[ ! -s $PG_PASS_FILE ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_PASS_FILE")
  fi
  local pass
  pass=$(cat "$PG_PASS_FILE")
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    ty_log "postgresql: initdb $PG_DATA"
    rm -rf "$PG_DATA"
    local pwfile="$PG_RUN/initdb.pw"
    printf '%s\n' "$pass" >"$pwfile"
    chown "$TY_PG_USER" "$pwfile"
    chmod 0600 "$pwfile"
    # The superuser is the role 'ferretdb' (FerretDB creates schemas/tables per database).
    pg_as "$TY_PG_BIN/initdb" -D "$PG_DATA" -U ferretdb --pwfile="$pwfile" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 || {
      rm -f "$pwfile"
      tail -n 20 "$PG_LOG" >&2
      ty_die "postgresql: initdb failed (see $PG_LOG)"
    }
    rm -f "$pwfile"
  fi
  # FerretDB's own pool (50 by default) deadlocks when every connection is held by a findAndModify
  # waiting for a second one; 150 of PostgreSQL's 200 leaves it room (processes cap themselves at 20).
  PG_URL="postgres://ferretdb:$pass@127.0.0.1:$TY_PG_PORT/ferretdb?pool_max_conns=150"
  if ! pg_ready; then
    start_postgres
  fi
  if ! PGPASSWORD=$pass psql -h 127.0.0.1 -p "$TY_PG_PORT" -U ferretdb -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='ferretdb'" | grep -qx 1; then
    PGPASSWORD=$pass psql -q -h 127.0.0.1 -p "$TY_PG_PORT" -U ferretdb -d postgres -c 'CREATE DATABASE ferretdb' ||
      ty_die "postgresql: CREATE DATABASE ferretdb failed"
  fi
  # Indexes FerretDB's pushed-down equality can use, and custom plans so the planner matches them
  # (why: scripts/infra/ferretdb-equality-indexes.sql). New connections pick the setting up.
  PGPASSWORD=$pass psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TY_PG_PORT" -U ferretdb -d ferretdb \
    -c 'SET client_min_messages = warning' \
    -c 'ALTER DATABASE ferretdb SET plan_cache_mode = force_custom_plan' \
    -f "$HERE/ferretdb-equality-indexes.sql" \
    -c 'SELECT ty_equality_index_backfill()' >/dev/null ||
    ty_die "postgresql: installing the equality indexes failed"
}

start_postgres() {
  # -c options instead of editing postgresql.conf: the settings live here, with the script.
  pg_as "$TY_PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$TY_PG_PORT -c unix_socket_directories=$PG_RUN -c max_connections=200 -c shared_buffers=128MB" \
    >/dev/null || {
    tail -n 20 "$PG_LOG" >&2
    ty_die "postgresql: pg_ctl start failed (see $PG_LOG)"
  }
  pg_ready || ty_die "postgresql: not ready on 127.0.0.1:$TY_PG_PORT (see $PG_LOG)"
  ty_log "postgresql: started on 127.0.0.1:$TY_PG_PORT (data $PG_DATA)"
}

# --------------------------------------------------------------------------- ferretdb
FERRET_BIN="$TY_STATE/bin/ferretdb"
FERRET_DATA="$TY_STATE/ferretdb-data"
FERRET_STATE="$TY_STATE/ferretdb-state"
FERRET_PID="$TY_STATE/ferretdb.pid"
FERRET_LOG="$TY_STATE/ferretdb.log"

ferretdb_ok() { # a ferretdb binary that starts and reports the pinned version
  [[ -x $1 ]] && "$1" --version 2>/dev/null | grep -qx "version: $TY_FERRETDB_VERSION"
}

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

# `go install …/cmd/ferretdb@v1.24.2` compiles fine with Go 1.26, but the binary panics at
# start-up: build/version/version.txt is generated from git and is not in the module zip
# (see README.md). So: download the module, copy it, write version.txt, `go build`.
build_ferretdb() {
  local go src_dir work tmp
  go=$(find_go) || ty_die "ferretdb: no Go toolchain (need Go >= 1.24 on PATH or /usr/local/go); or set MONGO_URL"
  ty_log "ferretdb: building $TY_FERRETDB_VERSION with $("$go" version | awk '{print $3}')"
  src_dir=$(cd /tmp && "$go" mod download -json "$TY_FERRETDB_MODULE@$TY_FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [[ -n $src_dir && -d $src_dir ]] || ty_die "ferretdb: go mod download failed"
  work="$TY_STATE/src/ferretdb-$TY_FERRETDB_VERSION"
  rm -rf "$work"
  mkdir -p "$TY_STATE/src" "$TY_STATE/bin"
  cp -r "$src_dir" "$work"
  chmod -R u+w "$work"
  printf '%s\n' "$TY_FERRETDB_VERSION" >"$work/build/version/version.txt"
  printf 'trainyard-infra\n' >"$work/build/version/package.txt"
  tmp="$FERRET_BIN.tmp.$$"
  (cd "$work" && GOFLAGS=-buildvcs=false "$go" build -o "$tmp" ./cmd/ferretdb) ||
    ty_die "ferretdb: go build failed (see README.md for fallbacks)"
  mv -f "$tmp" "$FERRET_BIN"
  rm -rf "$work"
  rmdir "$TY_STATE/src" 2>/dev/null || true
}

ensure_ferretdb_binary() {
  ferretdb_ok "$FERRET_BIN" && return 0
  mkdir -p "$TY_STATE/bin"
  local cached="${HOME:-/root}/go/bin/ferretdb"
  if ferretdb_ok "$cached"; then
    ty_log "ferretdb: reusing $cached"
    cp -f "$cached" "$FERRET_BIN"
    return 0
  fi
  [[ -x $cached ]] && ty_log "ferretdb: $cached does not start (plain 'go install' build), rebuilding"
  build_ferretdb
  ferretdb_ok "$FERRET_BIN" || ty_die "ferretdb: built binary does not report $TY_FERRETDB_VERSION"
}

# Real MongoDB-protocol round trip: OP_MSG {ping: 1, $db: "admin"} -> expects ok: 1.0.
mongo_ping() {
  /usr/bin/python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1)
body += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
payload = struct.pack("<I", 0) + b"\0" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
with socket.create_connection((host, port), timeout=2) as s:
    s.sendall(msg)
    buf = b""
    while len(buf) < 4 or len(buf) < struct.unpack("<i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk: sys.exit(1)
        buf += chunk
# reply: header(16) flags(4) kind(1) doc; look for the double field "ok" == 1.0
sys.exit(0 if b"\x01ok\x00" + struct.pack("<d", 1.0) in buf else 1)
PY
}

ensure_ferretdb() {
  if [[ -n ${MONGO_URL:-} ]]; then
    ty_log "ferretdb: MONGO_URL given, not starting one"
    return 0
  fi
  local pid
  if pid=$(ty_pid_alive "$FERRET_PID" "$FERRET_BIN"); then
    # Migration: an install from before PostgreSQL runs FerretDB on SQLite. Stop it and start it
    # on PostgreSQL. Its SQLite files stay in $FERRET_DATA (not copied: local test data).
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--handler=postgresql'; then
      ty_log "ferretdb: pid $pid runs on SQLite; moving to PostgreSQL (old data left in $FERRET_DATA)"
      ty_stop_pidfile ferretdb "$FERRET_PID" "$FERRET_BIN"
    elif ! tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "GOGC=$TY_FERRETDB_GOGC"; then
      ty_log "ferretdb: pid $pid runs without GOGC=$TY_FERRETDB_GOGC; restarting it"
      ty_stop_pidfile ferretdb "$FERRET_PID" "$FERRET_BIN"
    fi
  fi
  if ty_tcp_open 127.0.0.1 "$TY_MONGO_PORT"; then
    return 0
  fi
  ensure_ferretdb_binary
  mkdir -p "$FERRET_STATE"
  if pid=$(ty_pid_alive "$FERRET_PID" "$FERRET_BIN"); then
    ty_log "ferretdb: pid $pid alive but port closed; restarting it"
    ty_stop_pidfile ferretdb "$FERRET_PID" "$FERRET_BIN"
  fi
  # The PostgreSQL URL (with its password) goes through the environment, not argv (ps shows argv).
  FERRETDB_POSTGRESQL_URL="$PG_URL" GOGC="$TY_FERRETDB_GOGC" setsid nohup "$FERRET_BIN" --handler=postgresql \
    --listen-addr="127.0.0.1:$TY_MONGO_PORT" --telemetry=disable \
    --state-dir="$FERRET_STATE" --debug-addr=- </dev/null >>"$FERRET_LOG" 2>&1 &
  echo $! >"$FERRET_PID"
  local i
  for ((i = 0; i < 150; i++)); do
    if ty_tcp_open 127.0.0.1 "$TY_MONGO_PORT" && mongo_ping 127.0.0.1 "$TY_MONGO_PORT"; then
      ty_log "ferretdb: started on 127.0.0.1:$TY_MONGO_PORT (pid $(cat "$FERRET_PID"))"
      return 0
    fi
    ty_pid_alive "$FERRET_PID" >/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$FERRET_LOG" >&2 || true
  ty_die "ferretdb did not come up on 127.0.0.1:$TY_MONGO_PORT (see $FERRET_LOG)"
}

# ------------------------------------------------------------------------ node python
PYFIX_CONTENT=$(
  cat <<'PY'
# Installed by Trainyard scripts/infra/up.sh — node-side fix, put on PYTHONPATH.
#
# Debian's python3-torch 1.13 on Python 3.11: `torchrun` crashes parsing the default
# --redirects/--tee value "0", because Std.from_str looks the value up by iterating the
# IntFlag, and Python 3.11 no longer yields the zero member (Std.NONE) when iterating.
# This import hook waits for torch.distributed.elastic.multiprocessing.api to load and then
# replaces Std.from_str with one that maps digits through Std(int(v)).
import os
import re
import sys

_TARGET = "torch.distributed.elastic.multiprocessing.api"


def _patch(mod):
    Std = getattr(mod, "Std", None)
    if Std is None or getattr(Std, "_trainyard_patched", False):
        return
    value_re = getattr(mod, "_VALUE_REGEX", r"^[0123]$")
    mapping_re = getattr(mod, "_MAPPING_REGEX", r"^(\d:[0123],)*(\d:[0123])$")

    def from_str(cls, vm):
        if re.match(value_re, vm):
            return Std(int(vm))
        if re.match(mapping_re, vm):
            d = {}
            for m in vm.split(","):
                i, v = m.split(":")
                d[int(i)] = Std(int(v))
            return d
        raise ValueError(f"{vm} does not match: <{value_re}> or <{mapping_re}>")

    Std.from_str = classmethod(from_str)
    Std._trainyard_patched = True


class _TorchStdFix:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        orig_exec = loader.exec_module

        def exec_module(module):
            orig_exec(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


if _TARGET in sys.modules:
    _patch(sys.modules[_TARGET])
else:
    sys.meta_path.insert(0, _TorchStdFix())


def _chain_next_sitecustomize():
    # This file shadows the interpreter's own sitecustomize (Debian: apport hook); run it too.
    here = os.path.dirname(os.path.abspath(__file__))
    for d in sys.path:
        if not d or os.path.abspath(d) == here:
            continue
        p = os.path.join(d, "sitecustomize.py")
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                code = compile(f.read(), p, "exec")
            exec(code, {"__name__": "sitecustomize", "__file__": p})
            return


try:
    _chain_next_sitecustomize()
except Exception:
    pass
PY
)

TORCHRUN_CONTENT=$(
  cat <<PY
#!$TY_NODE_VENV/bin/python3
# Installed by Trainyard scripts/infra/up.sh: torchrun on the node venv's interpreter, so
# workers (sys.executable) run in the venv too. Debian's /usr/bin/torchrun uses /usr/bin/python3.
import sys
from torch.distributed.run import main
if __name__ == "__main__":
    sys.exit(main())
PY
)

# write_if_changed FILE CONTENT [MODE] -> returns 0 if the file was (re)written.
write_if_changed() {
  local f=$1 content=$2 mode=${3:-0644}
  if [[ -f $f && "$(cat "$f")" == "$content" ]]; then
    return 1
  fi
  mkdir -p "$(dirname "$f")"
  printf '%s\n' "$content" >"$f.tmp.$$"
  chmod "$mode" "$f.tmp.$$"
  mv -f "$f.tmp.$$" "$f"
  return 0
}

ensure_node_python() {
  if [[ ! -x $TY_NODE_VENV/bin/python3 ]]; then
    ty_log "node python: creating $TY_NODE_VENV"
    mkdir -p "$TY_NODE_PY_ROOT"
    /usr/bin/python3 -m venv --system-site-packages "$TY_NODE_VENV"
  fi
  write_if_changed "$TY_NODE_PYFIX/sitecustomize.py" "$PYFIX_CONTENT" || true
  write_if_changed "$TY_NODE_VENV/bin/torchrun" "$TORCHRUN_CONTENT" 0755 || true
  chmod 0755 "$TY_NODE_PY_ROOT" "$TY_NODE_PYFIX"
}

# ------------------------------------------------------------------ node frameworks
# TensorFlow (pip, into the node venv) and Horovod (built from PyPI with Gloo and torch, if it
# builds here). mpirun/mpi4py come from Debian (ensure_packages). A warm run only looks the
# modules up (no import), so it stays fast.
HOROVOD_FAILED="$TY_STATE/horovod.failed"
HOROVOD_LOG="$TY_STATE/horovod-build.log"

venv_has() { # venv_has MODULE -> 0 if the node venv can import it (found, not imported)
  "$TY_NODE_VENV/bin/python3" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 1)' "$1" 2>/dev/null
}

ensure_tensorflow() {
  venv_has tensorflow && return 0
  ty_log "node python: installing tensorflow-cpu $TY_TENSORFLOW_VERSION into $TY_NODE_VENV (pip)"
  # numpy<2: Debian's torch 1.13 (seen through --system-site-packages) is built against numpy 1.x.
  "$TY_NODE_VENV/bin/pip" install -q --disable-pip-version-check \
    "tensorflow-cpu==$TY_TENSORFLOW_VERSION" "numpy<2" ||
    ty_die "node python: pip install tensorflow-cpu failed"
}

# Outside CI a Horovod build failure is recorded once in $HOROVOD_FAILED (with the error) and later
# runs skip the attempt (TRAINYARD_HOROVOD=retry forgets it); its tests then skip with that
# reason. With CI=true a failed build fails this script: a green CI must have run Horovod.
ensure_horovod() {
  local mode=${TRAINYARD_HOROVOD:-auto}
  venv_has horovod && return 0
  [[ $mode == skip ]] && return 0
  [[ $mode == retry || ${CI:-} == true ]] && rm -f "$HOROVOD_FAILED"
  if [[ -f $HOROVOD_FAILED ]]; then
    ty_log "horovod: not installed (build failed earlier, see $HOROVOD_FAILED; TRAINYARD_HOROVOD=retry tries again)"
    return 0
  fi
  # pybind11-dev: torch's C++ headers (torch/csrc/Exceptions.h) include pybind11/pybind11.h, and
  # Debian's libtorch-dev does not pull it in. python3-setuptools: setup.py of the sdist.
  ensure_apt cmake g++ python3-dev libtorch-dev pybind11-dev python3-setuptools
  ty_log "horovod: building $TY_HOROVOD_VERSION with Gloo and torch (time limit ${TY_HOROVOD_BUILD_LIMIT}s; log $HOROVOD_LOG)"
  local t0=$SECONDS rc=0
  # setup.py bdist_wheel needs `wheel` in the venv when the build is not isolated.
  "$TY_NODE_VENV/bin/pip" install -q --disable-pip-version-check wheel setuptools >"$HOROVOD_LOG" 2>&1 || rc=$?
  # No build isolation: the build must see the venv's (Debian's) torch. Gloo only: no MPI headers
  # needed; mpirun jobs use mpi4py.
  timeout "$TY_HOROVOD_BUILD_LIMIT" env HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_PYTORCH=1 \
    HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)" \
    "$TY_NODE_VENV/bin/pip" install --disable-pip-version-check --no-build-isolation -v \
    "horovod==$TY_HOROVOD_VERSION" >>"$HOROVOD_LOG" 2>&1 || rc=$?
  if ((rc == 0)) && "$TY_NODE_VENV/bin/python3" -c 'import horovod.torch' >>"$HOROVOD_LOG" 2>&1; then
    ty_log "horovod: installed in $((SECONDS - t0))s"
    return 0
  fi
  {
    printf 'horovod %s could not be installed (exit %s after %ss; full log %s). Last errors:\n' \
      "$TY_HOROVOD_VERSION" "$rc" "$((SECONDS - t0))" "$HOROVOD_LOG"
    grep -E -i 'error|fatal' "$HOROVOD_LOG" | tail -n 20
  } >"$HOROVOD_FAILED"
  [[ ${CI:-} == true ]] && { cat "$HOROVOD_FAILED" >&2; ty_die "horovod: build failed with CI=true (the Horovod tests need it)"; }
  ty_log "horovod: build failed; recorded in $HOROVOD_FAILED (Horovod jobs need horovod on the nodes)"
}

# TRAINYARD_FRAMEWORKS (default "all"; else a comma list of tensorflow,horovod,jax,deepspeed,accelerate) picks which
# frameworks beyond PyTorch (Debian's, always there) to install: the demo asks only for what its
# example needs, the test suite for all. CI installs all whatever it says.
ensure_node_frameworks() {
  local want=",${TRAINYARD_FRAMEWORKS:-all},"
  [[ ${CI:-} == true ]] && want=",all,"
  [[ $want == *,all,* || $want == *,tensorflow,* ]] && ensure_tensorflow
  [[ $want == *,all,* || $want == *,horovod,* ]] && ensure_horovod
  # The `command` examples' launchers (scripts/infra/node-launchers.sh).
  local launchers=() l
  for l in jax deepspeed accelerate; do
    [[ $want == *,all,* || $want == *,$l,* ]] && launchers+=("$l")
  done
  ((${#launchers[@]} == 0)) || bash "$HERE/node-launchers.sh" "${launchers[@]}"
  return 0
}

# ---------------------------------------------------------------------------- ssh nodes
SSH_DIR="$TY_STATE/ssh"
CLIENT_KEY="$SSH_DIR/client_ed25519"
AUTH_DIR="$SSH_DIR/authorized_keys"

ensure_client_key() {
  mkdir -p "$SSH_DIR" "$AUTH_DIR"
  chmod 0755 "$SSH_DIR" "$AUTH_DIR"
  if [[ ! -f $CLIENT_KEY || ! -f $CLIENT_KEY.pub ]]; then
    rm -f "$CLIENT_KEY" "$CLIENT_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C trainyard-infra-client -f "$CLIENT_KEY"
  fi
  chmod 0600 "$CLIENT_KEY"
}

ensure_node() {
  local k=$1 user="ty$1" addr dir cfg work shadow
  addr=$(ty_node_addr "$k")
  dir=$(ty_node_dir "$k")
  cfg="$dir/sshd_config"
  work="$TY_NODE_WORK_BASE/$user"

  if ! id -u "$user" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$user"
    ty_log "node n$k: created user $user"
  fi
  # useradd leaves the password field '!' (locked); sshd with UsePAM no refuses locked accounts.
  shadow=$(getent shadow "$user" | cut -d: -f2)
  [[ $shadow == '*' ]] || usermod -p '*' "$user"

  mkdir -p "$TY_NODE_WORK_BASE" "$work"
  chmod 0755 "$TY_NODE_WORK_BASE"
  chown "$user:$user" "$work"

  mkdir -p "$dir"
  if [[ ! -f $dir/ssh_host_ed25519_key || ! -f $dir/ssh_host_ed25519_key.pub ]]; then
    rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "trainyard-n$k" -f "$dir/ssh_host_ed25519_key"
  fi

  write_if_changed "$AUTH_DIR/$user" "$(cat "$CLIENT_KEY.pub")" 0644 || true

  local conf
  conf=$(
    cat <<EOF
# Trainyard local test node n$k — generated by scripts/infra/up.sh; edits are overwritten.
ListenAddress $addr:$TY_SSH_PORT
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
# First the harness's client key; then the account's own file, where Trainyard authorises the
# per-attempt inter-node key of MPI/Horovod jobs (as on real machines).
AuthorizedKeysFile $AUTH_DIR/%u .ssh/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $user
X11Forwarding no
PrintMotd no
# tests open many connections and channels at once
MaxStartups 100:30:200
MaxSessions 64
Subsystem sftp internal-sftp
EOF
  )
  if [[ ! -f $cfg || "$(cat "$cfg")" != "$conf" ]]; then
    mkdir -p /run/sshd # sshd -t wants its privilege separation dir too
    printf '%s\n' "$conf" >"$cfg.new"
    "$TY_SSHD" -t -f "$cfg.new" || ty_die "node n$k: generated sshd config is invalid ($cfg.new)"
    mv -f "$cfg.new" "$cfg"
    if ty_pid_alive "$dir/sshd.pid" "$cfg" >/dev/null; then
      ty_log "node n$k: config changed, restarting sshd"
      ty_node_sshd_stop "$k"
    fi
  fi
  ty_node_sshd_start "$k"
}

node_json() {
  local k=$1 dir fp
  dir=$(ty_node_dir "$k")
  fp=$(ssh-keygen -lf "$dir/ssh_host_ed25519_key.pub" | awk '{print $2}')
  printf '{"name":"n%s","host":"%s","port":%s,"user":"ty%s","workRoot":"%s","hostKeyFingerprint":"%s","sshdPidFile":"%s","sshdConfig":"%s"}' \
    "$k" "$(ty_node_addr "$k")" "$TY_SSH_PORT" "$k" "$TY_NODE_WORK_BASE/ty$k" "$fp" "$dir/sshd.pid" "$dir/sshd_config"
}

json_str() { # minimal JSON string escaping (paths, URLs)
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

write_infra_json() {
  local redis_url="${REDIS_URL:-redis://127.0.0.1:$TY_REDIS_PORT}"
  local mongo_url="${MONGO_URL:-mongodb://127.0.0.1:$TY_MONGO_PORT/}"
  local nodes="" k
  for ((k = 1; k <= TY_NODES; k++)); do
    [[ -n $nodes ]] && nodes+=","
    nodes+=$(node_json "$k")
  done
  local out="$TY_STATE/infra.json"
  local horovod=false tensorflow=false
  venv_has horovod && horovod=true
  venv_has tensorflow && tensorflow=true
  printf '{"redisUrl":%s,"mongoUrl":%s,"clientKeyPath":%s,"nodeEnv":{"PATH":%s,"PYTHONPATH":%s},"frameworks":{"pytorch":true,"tensorflow":%s,"mpi":true,"horovod":%s},"nodes":[%s]}\n' \
    "$(json_str "$redis_url")" "$(json_str "$mongo_url")" "$(json_str "$CLIENT_KEY")" \
    "$(json_str "$TY_NODE_PATH")" "$(json_str "$TY_NODE_PYFIX")" "$tensorflow" "$horovod" "$nodes" >"$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
  REDIS_URL_OUT=$redis_url
  MONGO_URL_OUT=$mongo_url
}

# --------------------------------------------------------------------------------- main
ensure_packages
ensure_redis
ensure_postgres
ensure_ferretdb
ensure_node_python
ensure_node_frameworks
ensure_client_key
for ((k = 1; k <= TY_NODES; k++)); do
  ensure_node "$k"
done
write_infra_json

T1=$(date +%s.%N)
printf 'trainyard infra up in %.1fs: redis %s, mongo %s, %s ssh node(s) 127.0.0.2-%s:%s, state %s/infra.json\n' \
  "$(awk -v a="$T0" -v b="$T1" 'BEGIN{print b-a}')" "$REDIS_URL_OUT" "$MONGO_URL_OUT" \
  "$TY_NODES" "$(ty_node_addr "$TY_NODES")" "$TY_SSH_PORT" "$TY_STATE"
