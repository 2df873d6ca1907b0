#!/usr/bin/env bash
# Stop what scripts/infra/up.sh started (Redis, FerretDB, PostgreSQL, the node sshds), by pidfile.
# Users, keys, data and infra.json are left in place; up.sh starts everything again.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# Every node dir that exists, not just TRAINYARD_NODES of them (the count may have changed).
shopt -s nullglob
for dir in "$TY_STATE"/ssh/n*/; do
  k=${dir%/}
  k=${k##*/n}
  [[ $k =~ ^[0-9]+$ ]] || continue
  ty_node_sshd_stop "$k"
done

ty_stop_pidfile ferretdb "$TY_STATE/ferretdb.pid" "$TY_STATE/bin/ferretdb"
# PostgreSQL after FerretDB (its only client); fast shutdown, as its own user.
if [[ -f $TY_STATE/postgres/data/postmaster.pid ]] && id -u "$TY_PG_USER" >/dev/null 2>&1; then
  runuser -u "$TY_PG_USER" -- "$TY_PG_BIN/pg_ctl" -D "$TY_STATE/postgres/data" -m fast -w stop >/dev/null 2>&1 ||
    ty_log "postgresql: not running"
fi
# Redis flushes its append-only file on SIGTERM.
ty_stop_pidfile redis "$TY_STATE/redis/redis.pid" redis-server

echo "trainyard infra down (state kept in $TY_STATE)"
