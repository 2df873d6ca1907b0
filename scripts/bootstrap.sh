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
