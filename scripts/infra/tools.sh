#!/usr/bin/env bash
# tools.sh — test tools that are not part of the platform, installed once from PyPI:
#   schemathesis  property-based API testing from the OpenAPI document (tests/contract.int.test.ts)
# Idempotent: an existing venv with the pinned version is kept. Prints the tools' paths as JSON
# into $TY_STATE/tools.json for the tests.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

TOOLS_VENV=${TRAINYARD_TOOLS_VENV:-/opt/trainyard-tools/venv}
SCHEMATHESIS_VERSION=4.32.5

mkdir -p "$TY_STATE"
if [[ ! -x $TOOLS_VENV/bin/st ]] || [[ $("$TOOLS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null) != "$SCHEMATHESIS_VERSION" ]]; then
  ty_log "tools: installing schemathesis $SCHEMATHESIS_VERSION into $TOOLS_VENV"
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$TOOLS_VENV/bin/st" --version >/dev/null
printf '{"schemathesis":"%s"}\n' "$TOOLS_VENV/bin/st" >"$TY_STATE/tools.json"
ty_log "tools: schemathesis $SCHEMATHESIS_VERSION ready ($TOOLS_VENV/bin/st)"
