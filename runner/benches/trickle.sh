#!/usr/bin/env bash
# Trickle latency (issue 15): one observation at a time, half a second
# apart, from standard input, a FIFO and Kafka, into a runner whose pipeline
# also has a file sink. For each observation: the time from its arrival
# until a lookup on the admin port finds it, and until the file sink has
# written its event. The sink writes each flush, so its figure includes
# up to delivery.flushInterval (250 ms by default; the last run sets 50 ms).
#
#   TRICKLE_COUNT   observations per source (default 40)
#   TRICKLE_GAP     seconds between them (default 0.5)
#   KITH_RUNNER     the runner binary (default target/release/kith-runner)
#
# Writes target/bench-trickle/summary.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=${KITH_RUNNER:-${CARGO_TARGET_DIR:-target}/release/kith-runner}
count=${TRICKLE_COUNT:-40}
gap=${TRICKLE_GAP:-0.5}
out=target/bench-trickle
venv=target/kafka-bench-venv
requirements=runner/benches/requirements-kafka.txt
helper=runner/benches/kafka_produce.py
steps="trickle"
name=trickle
bench=target/bench
# shellcheck source=runner/benches/lib.sh
source runner/benches/lib.sh

bash tests/services/up.sh kafka >/dev/null
set -a
# shellcheck disable=SC1091
. target/services.env
set +a
rm -rf "$out" && mkdir -p "$out"

# pipeline EXAMPLE DIR [FLUSH]: the example with a file sink into DIR.
pipeline() {
  local dir=$2 flush=${3:-}
  mkdir -p "$dir"
  {
    cat "$1"
    printf 'sinks:\n  - type: file\n    path: %s/feed.jsonl\n' "$PWD/$dir"
    [ -n "$flush" ] && printf '    delivery:\n      flushInterval: %s\n' "$flush"
  } > "$dir/pipeline.yaml"
  echo "$dir/pipeline.yaml"
}
trickle() { "$venv/bin/python" runner/benches/trickle.py --runner "$runner" --count "$count" --gap "$gap" "$@"; }

for source in stdin fifo; do
  dir=$out/$source
  trickle --source "$source" --pipeline "$(pipeline examples/canonical/pipeline.yaml "$dir")" --dir "$dir" \
    | tee -a "$out/summary.jsonl"
done
for flush in "" 50ms; do
  dir=$out/kafka${flush:+-$flush}
  topic="kith-trickle-$(date +%s)-$$${flush:+-$flush}"
  py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 1
  py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic-dlq" --partitions 1
  KITH_INPUT_TOPIC=$topic KITH_CHECKPOINTS="file://$PWD/$dir/checkpoints" \
    trickle --source kafka --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --label "flushInterval ${flush:-250ms}" \
      --pipeline "$(pipeline examples/kafka/pipeline.yaml "$dir" "$flush")" --dir "$dir" \
    | tee -a "$out/summary.jsonl"
  py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "$topic" "$topic-dlq" >/dev/null 2>&1 || true
done
