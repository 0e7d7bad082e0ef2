#!/usr/bin/env bash
# Stop what tests/services/up.sh started (by its pid files only) and remove
# their data:  tests/services/down.sh [kafka] [moto]   (no argument: all).
# The download cache (${KITH_CACHE:-~/.cache/kith}) is kept.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source tests/services/lib.sh
source tests/services/kafka/service.sh
source tests/services/moto/service.sh

ALL_SERVICES=(kafka moto)
services=("$@")
((${#services[@]})) || services=("${ALL_SERVICES[@]}")
for s in "${services[@]}"; do
  [[ " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
done

for s in "${services[@]}"; do
  "${s}_down"
done
# Leave no empty target/services behind once everything is stopped.
rmdir "$SERVICES_DIR" 2>/dev/null || true
