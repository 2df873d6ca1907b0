#!/usr/bin/env bash
# Node toolchain and workspace dependencies: pnpm (pinned by package.json) and node_modules.
# Idempotent; fast when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$want" ]; then
  echo "[bootstrap] installing pnpm@$want"
  npm install -g "pnpm@$want" >/dev/null
fi
pnpm install --frozen-lockfile --prefer-offline --reporter=silent
# The web console's static files (packages/console/dist), served by the API under /ui.
pnpm --filter @trainyard/console build

# The trainyard CLI on PATH: a link to packages/cli/bin/trainyard (it runs this checkout's sources).
# /usr/local/bin when writable (root), else ~/.local/bin. `pnpm trainyard …` works without it.
cli="$(pwd)/packages/cli/bin/trainyard"
if [ -w /usr/local/bin ]; then bindir=/usr/local/bin; else bindir="$HOME/.local/bin"; mkdir -p "$bindir"; fi
if [ "$(readlink -f "$bindir/trainyard" 2>/dev/null)" != "$cli" ]; then
  if [ -e "$bindir/trainyard" ] && [ ! -L "$bindir/trainyard" ]; then
    echo "[bootstrap] $bindir/trainyard exists and is not our link; leaving it (use 'pnpm trainyard')" >&2
  else
    ln -sfn "$cli" "$bindir/trainyard"
    echo "[bootstrap] linked $bindir/trainyard -> $cli"
  fi
fi
case ":$PATH:" in *":$bindir:"*) ;; *) echo "[bootstrap] add $bindir to PATH to run 'trainyard' (or use 'pnpm trainyard')" >&2 ;; esac
