#!/usr/bin/env bash
# The whole test suite, from a fresh machine: toolchain, local infrastructure (Redis, FerretDB,
# sshd nodes, node Python with torch), type checks, lint, then unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/infra/up.sh
# Object-store emulators (MinIO, Azurite, fake-gcs-server) for the checkpoint storage tests.
bash scripts/infra/emulators.sh
# Schemathesis (PyPI) for the API contract test.
bash scripts/infra/tools.sh
echo "[test] typecheck"
pnpm exec turbo run typecheck --output-logs=errors-only
echo "[test] lint"
pnpm exec biome check .
echo "[test] vitest"
report=$(mktemp)
status=0
# Infra is up already; the integration project's global setup would only repeat the check.
TRAINYARD_SKIP_INFRA=1 pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain summary line for CI: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || true
rm -f "$report"
exit "$status"
