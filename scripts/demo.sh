#!/usr/bin/env bash
# The demo: bring the platform up with the trainyard CLI (Redis, FerretDB, local sshd nodes and
# the five services, kept running in the background) and run the example DDP job on 2 local SSH
# nodes, following it to its end. The platform stays up afterwards; `trainyard platform down`
# stops it. Arguments go to `trainyard platform up` (e.g. --launcher 2). Fresh machine OK.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Install only what the example needs (`platform up` runs scripts/infra/up.sh): the default
# PyTorch example uses Debian's torch, so neither TensorFlow nor the Horovod build is waited for.
case "${TRAINYARD_EXAMPLE:-}" in
  tensorflow*) default_frameworks=tensorflow ;;
  horovod*) default_frameworks=horovod ;;
  jax*) default_frameworks=jax ;;
  accelerate*) default_frameworks=accelerate ;;
  deepspeed*) default_frameworks=deepspeed ;;
  *) default_frameworks=pytorch ;;
esac
export TRAINYARD_FRAMEWORKS=${TRAINYARD_FRAMEWORKS:-$default_frameworks}
exec pnpm exec tsx scripts/demo.ts "$@"
