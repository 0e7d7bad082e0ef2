#!/usr/bin/env bash
# The lifecycle scenarios of tests/e2e with real runner processes: builds
# the runner and operator binaries the scenarios start, makes sure the test
# services run (Kafka, moto, the Kubernetes control plane), runs the
# scenarios and ends with one line, `N passed, N failed`. The exit status is
# the tests'. Extra arguments go to the test binary (a scenario's name, say).
# KITH_E2E_PREBUILT=1 skips the build of the two binaries (make test has
# just built them with the workspace's tests; building them again alone
# would compile them a second time with other features).
set -uo pipefail
cd "$(dirname "$0")/../.."
cargo=${CARGO:-cargo}
mkdir -p target
bash tests/services/up.sh kafka moto kube || exit 1
if [ "${KITH_E2E_PREBUILT:-0}" != 1 ]; then
  $cargo build --locked --bins -p kith-runner -p kith-operator || exit 1
fi
$cargo test --locked -p kith-e2e --no-fail-fast -- "$@" 2>&1 | tee target/e2e.log
status=${PIPESTATUS[0]}
grep -E '^test result:' target/e2e.log \
  | awk '{p += $4; f += $6} END {printf "%d passed, %d failed\n", p, f}'
exit "$status"
