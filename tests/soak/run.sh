#!/usr/bin/env bash
# make soak: a runner reading Kafka under a steady load, with checkpoints,
# for SOAK_SECONDS (default 600), sampled every SOAK_EVERY seconds for its
# resident memory, open file descriptors and threads. It fails unless all
# three stay flat after the warm-up, and unless, at the end, the runner's
# export, the export of a restore from its last checkpoint, and a file run
# over everything that was sent are equal.
#
# The load is a fixed population re-observed round after round (each round
# the same records with later timestamps), so the live state stays the same
# size: memory that grows is a leak, not a bigger graph.
#
#   SOAK_SECONDS   how long the load runs (default 600)
#   SOAK_RATE      observations a second (default 2000)
#   SOAK_PEOPLE    people of the population (default 10000: about 49,000
#                  observations a round, 12,000 profiles)
#   SOAK_EVERY     seconds between samples (default 5)
#   KITH_RUNNER    the runner binary (default target/release/kith-runner)
#
# Writes target/soak/samples.csv and target/soak/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-2000}
people=${SOAK_PEOPLE:-10000}
every=${SOAK_EVERY:-5}
runner=${KITH_RUNNER:-${CARGO_TARGET_DIR:-target}/release/kith-runner}
out=target/soak
venv=target/kafka-bench-venv
requirements=runner/benches/requirements-kafka.txt
helper=runner/benches/kafka_produce.py
pipeline=examples/kafka/pipeline.yaml

steps=soak
name=soak
bench=target/bench
# The runner (built when missing), the producer's virtualenv, `py` and
# `free_port`, as the Kafka benchmarks have them.
# shellcheck source=runner/benches/lib.sh
source runner/benches/lib.sh

bash tests/services/up.sh kafka
set -a
# shellcheck disable=SC1091
. target/services.env
set +a

rm -rf "$out" && mkdir -p "$out"
topic="kith-soak-$(date +%s)-$$"
py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 4
py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic-dlq" --partitions 1
cleanup() {
  [ -n "${runner_pid:-}" ] && kill "$runner_pid" 2>/dev/null || true
  [ -n "${producer_pid:-}" ] && kill "$producer_pid" 2>/dev/null || true
  py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "$topic" "$topic-dlq" >/dev/null 2>&1 || true
  rm -rf "$out/state" "$out/restored" "$out/reference" "$out/checkpoints" "$out/scratch" "$out/input.jsonl"
}
trap cleanup EXIT

# The input: the population's lines, round after round, each round an hour
# later than the one before, as many lines as the load sends.
total=$((seconds * rate))
"$runner" generate --people "$people" --seed 7 > "$out/base.jsonl"
python3 tests/soak/rounds.py "$out/base.jsonl" "$total" > "$out/input.jsonl"
echo "soak: $total observations ($(wc -l < "$out/base.jsonl") a round) at $rate/s for $seconds s into $topic"

admin="127.0.0.1:$(free_port)"
KITH_INPUT_TOPIC=$topic KITH_CHECKPOINTS="file://$PWD/$out/checkpoints" KITH_CHECKPOINT_INTERVAL=5s \
  "$runner" run "$pipeline" --state "$out/state" --admin "$admin" > "$out/runner.out" 2> "$out/runner.err" &
runner_pid=$!
py wait-ready --url "http://$admin/readyz" --timeout 60

py produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --input "$out/input.jsonl" \
  --rate "$rate" --duration "$seconds" > "$out/producer.json" &
producer_pid=$!

python3 tests/soak/sample.py --pid "$runner_pid" --metrics "http://$admin/metrics" --every "$every" \
  --while-alive "$producer_pid" --output "$out/samples.csv"
wait "$producer_pid"
producer_pid=
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"])' "$out/producer.json")
py wait-counter --url "http://$admin/metrics" --counter kith_observations_total --at-least "$sent" --timeout 120

kill -TERM "$runner_pid"
wait "$runner_pid"
runner_pid=
"$runner" export --state "$out/state" | sort > "$out/export.runner"

# The last checkpoint, restored into an empty state and read to the end.
latest=$(find "$out/checkpoints" -maxdepth 2 -name _metadata -printf '%h\n' | sort | tail -n 1)
KITH_INPUT_TOPIC=$topic KITH_CHECKPOINTS="file://$PWD/$out/scratch" \
  "$runner" run "$pipeline" --state "$out/restored" --restore "$latest" --exit-at-end > /dev/null 2> "$out/restore.err"
"$runner" export --state "$out/restored" | sort > "$out/export.restored"

head -n "$sent" "$out/input.jsonl" > "$out/sent.jsonl"
"$runner" run examples/canonical/pipeline.yaml --input "$out/sent.jsonl" --state "$out/reference" > /dev/null
"$runner" export --state "$out/reference" | sort > "$out/export.reference"
rm -f "$out/sent.jsonl"

python3 tests/soak/verdict.py --samples "$out/samples.csv" --dir "$out" --sent "$sent" \
  --seconds "$seconds" --rate "$rate" | tee "$out/summary.txt"
