#!/usr/bin/env bash
# Re-seal every secret stored in MongoDB with TRAINYARD_SECRET_KEY, opening the old values with
# TRAINYARD_SECRET_KEY_PREVIOUS. Reads MONGO_URL, MONGO_DB, REDIS_URL, TRAINYARD_QUEUE_PREFIX and the
# keys from the environment, like the services. Prints the counts per collection as one JSON line;
# exits 1 if any value could not be re-sealed. Safe to run again: a second run re-seals nothing.
# Steps: docs/operations.md, "Rotating the secret key".
set -euo pipefail
cd "$(dirname "$0")/.."
exec pnpm exec tsx packages/db/src/rotate-secrets-cli.ts "$@"
