#!/usr/bin/env bash
# Stop what scripts/infra/up.sh started (Redis, FerretDB, the node sshds), by pidfile.
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
# Redis flushes its append-only file on SIGTERM.
ty_stop_pidfile redis "$TY_STATE/redis/redis.pid" redis-server

echo "trainyard infra down (state kept in $TY_STATE)"
