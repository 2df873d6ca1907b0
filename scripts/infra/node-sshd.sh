#!/usr/bin/env bash
# node-sshd.sh stop|start|status|crash <k> — manage node n<k>'s sshd (127.0.0.<k+1>:2222),
# e.g. to simulate a node going away in tests.
#   stop    stop the sshd and end that node's open SSH sessions (children of its sshd);
#           processes the sessions started (e.g. jobs started with setsid) keep running.
#   crash   SIGKILL every process owned by the node's user ty<k> (its jobs and SSH sessions),
#           then stop the sshd: as if the machine died.
#   start   start the sshd again (no-op if running).
#   status  print state; exit 3 if stopped.
# The node must have been set up by scripts/infra/up.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

usage() { echo "usage: $0 stop|start|status|crash <k>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
k=$2
[[ $k =~ ^[0-9]+$ ]] && ((k >= 1)) || usage

case $action in
  stop) ty_node_sshd_stop "$k" ;;
  start) ty_node_sshd_start "$k" ;;
  crash)
    # Everything of the node's user dies at once (its SSH sessions included), as when a machine
    # loses power; only then does the sshd stop listening. Ending the sessions first would leave
    # the node's processes a moment to react to their closed connections, which a dead machine's
    # processes never get.
    if id -u "ty$k" >/dev/null 2>&1; then
      pkill -KILL -U "ty$k" 2>/dev/null || true
      ty_log "node n$k: killed all processes of ty$k"
    fi
    ty_node_sshd_stop "$k"
    ;;
  status)
    dir=$(ty_node_dir "$k")
    if pid=$(ty_pid_alive "$dir/sshd.pid" "$dir/sshd_config"); then
      echo "n$k running (pid $pid) on $(ty_node_addr "$k"):$TY_SSH_PORT"
    else
      echo "n$k stopped"
      exit 3
    fi
    ;;
  *) usage ;;
esac
