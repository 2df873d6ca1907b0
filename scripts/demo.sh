#!/usr/bin/env bash
# The demo: bring the platform up with the trainyard CLI (Redis, FerretDB, local sshd nodes and
# the five services, kept running in the background) and run the example DDP job on 2 local SSH
# nodes, following it to its end. The platform stays up afterwards; `trainyard platform down`
# stops it. Arguments go to `trainyard platform up` (e.g. --launcher 2). Fresh machine OK.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The demo job is PyTorch (Debian's, always there): `platform up` runs scripts/infra/up.sh, which
# then skips the TensorFlow install and the Horovod build.
export TRAINYARD_FRAMEWORKS=${TRAINYARD_FRAMEWORKS:-pytorch}
exec pnpm exec tsx scripts/demo.ts "$@"
