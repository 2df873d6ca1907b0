#!/usr/bin/env bash
# Bring the platform up on this machine and run the example DDP job on 2 local SSH nodes,
# printing status, progress and log lines until it ends. Idempotent setup; fresh machine OK.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The demo job is PyTorch (Debian's, always there): skip the TensorFlow install and Horovod build.
TRAINYARD_FRAMEWORKS=${TRAINYARD_FRAMEWORKS:-pytorch} bash scripts/infra/up.sh
exec pnpm exec tsx scripts/demo.ts "$@"
