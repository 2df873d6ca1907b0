#!/usr/bin/env bash
# Local object-store servers for @trainyard/storage's integration tests (no Docker):
#   S3    MinIO (built from the Go module proxy)        127.0.0.1:19000
#   Azure Azurite blob service (npm)                      127.0.0.1:19010
#   GCS   fake-gcs-server (built from the Go module proxy) 127.0.0.1:19020
# Installs what is missing into $STATE (idempotent; a warm run only checks), starts what is not
# running, and writes $STATE/emulators.json with endpoints and credentials.
# Usage: emulators.sh [up|down|status]   (default: up). See scripts/infra/README.md.
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

EMU_DIR="$TY_STATE/emulators"
BIN_DIR="$TY_STATE/bin"

# Pinned versions. MinIO has no semver tags: this is the last commit of its community repo.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKEGCS_MODULE=github.com/fsouza/fake-gcs-server
FAKEGCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0 # the last release that supports Node 20 (3.36+ need Node >= 21/22)

S3_PORT=19000
AZURE_PORT=19010
GCS_PORT=19020

# Fixed development credentials: these servers listen on loopback only and hold test data.
MINIO_USER=trainyard
MINIO_PASSWORD=trainyard-minio-secret
# Azurite's well-known development account (documented by Microsoft; the same everywhere).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
GCS_PROJECT=trainyard-test

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

# go_install NAME MODULE VERSION -> $BIN_DIR/NAME, stamped with MODULE@VERSION.
go_install() {
  local name=$1 module=$2 version=$3 go stamp="$BIN_DIR/$1.version" t0
  if [[ -x $BIN_DIR/$name && -f $stamp && "$(cat "$stamp")" == "$module@$version" ]]; then
    return 0
  fi
  go=$(find_go) || ty_die "$name: no Go toolchain (need Go >= 1.24 on PATH or in /usr/local/go)"
  mkdir -p "$BIN_DIR"
  t0=$(date +%s)
  ty_log "$name: building $module@$version with $("$go" version | awk '{print $3}') (MinIO: several minutes on 2 cores with a cold Go cache)"
  rm -f "$stamp"
  # Build into a scratch GOBIN, then move: a half-written binary is never left at $BIN_DIR/$name.
  local tmp_bin
  tmp_bin=$(mktemp -d "$BIN_DIR/.go-install.XXXXXX")
  if ! (cd /tmp && GOBIN="$tmp_bin" "$go" install -ldflags="-s -w" "$module@$version"); then
    rm -rf "$tmp_bin"
    ty_die "$name: go install $module@$version failed"
  fi
  mv -f "$tmp_bin/$name" "$BIN_DIR/$name"
  rm -rf "$tmp_bin"
  printf '%s\n' "$module@$version" >"$stamp"
  ty_log "$name: built in $(($(date +%s) - t0)) s"
}

AZURITE_PREFIX="$TY_STATE/azurite-$AZURITE_VERSION"
AZURITE_BIN="$AZURITE_PREFIX/node_modules/.bin/azurite-blob"

install_azurite() {
  [[ -x $AZURITE_BIN ]] && return 0
  command -v npm >/dev/null 2>&1 || ty_die "azurite: npm not found"
  ty_log "azurite: installing azurite@$AZURITE_VERSION into $AZURITE_PREFIX"
  local tmp="$AZURITE_PREFIX.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  printf '{"name":"trainyard-azurite","private":true}\n' >"$tmp/package.json"
  (cd "$tmp" && npm install --no-audit --no-fund --omit=dev --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null) ||
    { rm -rf "$tmp"; ty_die "azurite: npm install failed"; }
  rm -rf "$AZURITE_PREFIX"
  mv "$tmp" "$AZURITE_PREFIX"
}

# http_ok URL -> 0 when URL answers with a 2xx status.
http_ok() {
  curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# start_daemon NAME PIDFILE LOGFILE READY-CMD... -- CMD...
# Starts CMD detached (setsid) unless PIDFILE's process is alive, then waits for READY-CMD.
start_daemon() {
  local name=$1 pidfile=$2 logfile=$3 i
  shift 3
  local ready=()
  while [[ $1 != -- ]]; do
    ready+=("$1")
    shift
  done
  shift
  if ty_pid_alive "$pidfile" "$1" >/dev/null && "${ready[@]}"; then
    return 0
  fi
  ty_stop_pidfile "$name" "$pidfile" "$1" 2>/dev/null || true
  mkdir -p "$(dirname "$pidfile")"
  setsid nohup "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for ((i = 0; i < 300; i++)); do
    if "${ready[@]}"; then
      ty_log "$name: started (pid $(cat "$pidfile"))"
      return 0
    fi
    if ! ty_pid_alive "$pidfile" >/dev/null; then
      tail -n 20 "$logfile" >&2 || true
      ty_die "$name: exited during start-up (see $logfile)"
    fi
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2 || true
  ty_die "$name: not ready after 30 s (see $logfile)"
}

port_free_or_ours() { # PORT PIDFILE NAME -> dies if someone else listens on PORT
  if ty_tcp_open 127.0.0.1 "$1" && ! ty_pid_alive "$2" >/dev/null; then
    ty_die "$3: 127.0.0.1:$1 is already in use by another process"
  fi
}

minio_ready() { http_ok "http://127.0.0.1:$S3_PORT/minio/health/ready"; }
azurite_ready() { ty_tcp_open 127.0.0.1 "$AZURE_PORT"; }
# fake-gcs-server answers the bucket list once it is serving.
gcs_ready() { http_ok "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=$GCS_PROJECT"; }

up() {
  local t0
  t0=$(date +%s%N)
  mkdir -p "$EMU_DIR/minio/data" "$EMU_DIR/azurite/data" "$EMU_DIR/fake-gcs"
  go_install minio "$MINIO_MODULE" "$MINIO_VERSION"
  go_install fake-gcs-server "$FAKEGCS_MODULE" "$FAKEGCS_VERSION"
  install_azurite

  port_free_or_ours "$S3_PORT" "$EMU_DIR/minio/minio.pid" minio
  MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off MINIO_UPDATE=off \
    start_daemon minio "$EMU_DIR/minio/minio.pid" "$EMU_DIR/minio/minio.log" minio_ready -- \
    "$BIN_DIR/minio" server --quiet --address "127.0.0.1:$S3_PORT" "$EMU_DIR/minio/data"

  port_free_or_ours "$AZURE_PORT" "$EMU_DIR/azurite/azurite.pid" azurite
  start_daemon azurite "$EMU_DIR/azurite/azurite.pid" "$EMU_DIR/azurite/azurite.log" azurite_ready -- \
    "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --location "$EMU_DIR/azurite/data" \
    --silent --skipApiVersionCheck --disableTelemetry

  port_free_or_ours "$GCS_PORT" "$EMU_DIR/fake-gcs/fake-gcs.pid" fake-gcs-server
  start_daemon fake-gcs-server "$EMU_DIR/fake-gcs/fake-gcs.pid" "$EMU_DIR/fake-gcs/fake-gcs.log" gcs_ready -- \
    "$BIN_DIR/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
    -external-url "http://127.0.0.1:$GCS_PORT" -public-host "127.0.0.1:$GCS_PORT" -log-level warn

  write_json
  ty_log "emulators: ready in $((($(date +%s%N) - t0) / 1000000)) ms; wrote $TY_STATE/emulators.json"
}

write_json() {
  local blob="http://127.0.0.1:$AZURE_PORT/$AZ_ACCOUNT" out="$TY_STATE/emulators.json"
  local cs="DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=$blob;"
  cat >"$out.tmp.$$" <<EOF
{
  "s3": {"endpoint": "http://127.0.0.1:$S3_PORT", "region": "us-east-1", "accessKeyId": "$MINIO_USER", "secretAccessKey": "$MINIO_PASSWORD", "server": "minio $MINIO_MODULE@$MINIO_VERSION"},
  "azure": {"connectionString": "$cs", "blobEndpoint": "$blob", "accountName": "$AZ_ACCOUNT", "accountKey": "$AZ_KEY", "server": "azurite $AZURITE_VERSION"},
  "gcs": {"apiEndpoint": "http://127.0.0.1:$GCS_PORT", "projectId": "$GCS_PROJECT", "server": "fake-gcs-server $FAKEGCS_VERSION"}
}
EOF
  chmod 0600 "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
}

down() {
  ty_stop_pidfile minio "$EMU_DIR/minio/minio.pid" "$BIN_DIR/minio"
  ty_stop_pidfile azurite "$EMU_DIR/azurite/azurite.pid" azurite
  ty_stop_pidfile fake-gcs-server "$EMU_DIR/fake-gcs/fake-gcs.pid" "$BIN_DIR/fake-gcs-server"
}

status() {
  local rc=0
  minio_ready && echo "minio: up (127.0.0.1:$S3_PORT)" || { echo "minio: down"; rc=3; }
  azurite_ready && echo "azurite: up (127.0.0.1:$AZURE_PORT)" || { echo "azurite: down"; rc=3; }
  gcs_ready && echo "fake-gcs-server: up (127.0.0.1:$GCS_PORT)" || { echo "fake-gcs-server: down"; rc=3; }
  return $rc
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) ty_die "usage: $0 [up|down|status]" ;;
esac
