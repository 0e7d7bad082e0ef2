#!/usr/bin/env bash
# Lifecycle benchmark (issue 11), with the release operator and runners run
# by the kubelet stand-in of tests/e2e on the test services (started here if
# they are not up): the time of a savepoint upgrade of a pipeline holding
# about a million live records, and 20 consecutive upgrades under a steady
# load with the final state checked (see tests/e2e/benches/upgrade.rs for
# the steps and their settings). Kafka, moto, the API server, the operator
# and the runners share this machine's cores: each run prints the load.
#
#   bash tests/e2e/bench.sh        (KITH_BENCH_STEPS="large" or "repeated" for one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/services/up.sh kafka moto kube >/dev/null
cargo build --release --locked -q --bins -p kith-runner -p kith-operator
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: cargo bench --locked -p kith-e2e --bench upgrade"
cargo bench --locked -q -p kith-e2e --bench upgrade
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
