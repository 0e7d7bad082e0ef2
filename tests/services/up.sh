#!/usr/bin/env bash
# Start the integration-test services in the background on loopback:
#   tests/services/up.sh [kafka] [moto]     (no argument: all of them)
# Installs on first use (cache: ${KITH_CACHE:-~/.cache/kith}), waits until each
# answers, and writes target/services.env. Safe to re-run: a service that is
# already up is left alone. See tests/services/README.md.
set -euo pipefail

# Every path below is relative to the repo root, wherever we are called from.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source tests/services/lib.sh
selected_services "$@"

mkdir -p "$SERVICES_DIR"
for s in "${SELECTED[@]}"; do
  "${s}_up"
done
log "environment in $SERVICES_ENV:"
sed 's/^/  /' "$SERVICES_ENV" >&2
