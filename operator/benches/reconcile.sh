#!/usr/bin/env bash
# Operator benchmark (issue 5), on the Kubernetes control plane of
# tests/services (started here if it is not up): the time from creating a
# ProfilePipeline to its runner Deployment existing, for 200 pipelines
# created back to back and then 50 more paced at 5/s with those in place
# (target: 1 s or less at p99), and the operator's memory once all are
# reconciled (target: 64 MiB or less). The API server, etcd and the operator
# share this machine's cores, so each line also prints the load.
#
#   bash operator/benches/reconcile.sh         (KITH_BENCH_PIPELINES=N to change 200)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/services/up.sh kube >/dev/null
set -a; . target/services.env; set +a
mkdir -p target/bench   # the operator's log: target/bench/operator.log
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: cargo bench --locked -p kith-operator --bench reconcile"
cargo bench --locked -q -p kith-operator --bench reconcile
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
