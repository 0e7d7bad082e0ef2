#!/usr/bin/env bash
# Stop what tests/services/up.sh started (by its pid files only) and remove
# their data:  tests/services/down.sh [kafka] [moto]   (no argument: all).
# The download cache (${KITH_CACHE:-~/.cache/kith}) is kept.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source tests/services/lib.sh
selected_services "$@"

for s in "${SELECTED[@]}"; do
  "${s}_down"
done
# Leave no empty target/services behind once everything is stopped.
rmdir "$SERVICES_DIR" 2>/dev/null || true
