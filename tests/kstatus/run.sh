#!/usr/bin/env bash
# Checks the ProfilePipeline statuses of tests/kstatus/cases.json (written
# by the operator's status tests) and, when KITH_STATUS_SAMPLES names a
# directory, those the integration and e2e tests recorded there, against
# kstatus itself. Builds the checker from the module pinned by go.mod and
# go.sum (cached by Go's build cache). Ends with `kstatus: N passed, N failed`.
set -euo pipefail
samples=()
if [[ -n ${KITH_STATUS_SAMPLES:-} ]]; then
  samples=("$(cd "$KITH_STATUS_SAMPLES" && pwd)")
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
GOFLAGS=-mod=readonly go run . cases.json "${samples[@]}"
