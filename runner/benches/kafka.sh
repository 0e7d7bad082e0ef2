#!/usr/bin/env bash
# Kafka and checkpoint benchmark (issue 4): on this machine, with the Kafka
# broker of tests/services (started here if it is not up),
#
#   throughput  Kafka -> state with checkpoints every 10 s: the `generate
#               --people 300000 --seed 42` workload (about 1.5M observations)
#               produced first into a fresh 6-partition topic, then read by
#               examples/kafka/pipeline.yaml with --exit-at-end, twice
#               (target: 150,000 observations/s or more); then, for
#               comparison, the same lines from the file without Kafka
#   latency     Kafka append to applied at a steady 20,000 observations/s for
#               60 s into a running runner: the summary's append_p99_ms (its
#               own log-linear histogram) and, as a cross-check, the upper
#               bound of the bucket of kith_processing_latency_seconds on
#               /metrics that holds the 99th percentile (target: 50 ms or less).
#               It includes everything from the producer's `produce` call
#               (the message timestamp is CreateTime) with linger.ms=1
#   10m         a file run of `generate --people 3010000 --seed 42` (about 10M
#               live records) into a state directory with checkpoints to a
#               local folder (file://): the final checkpoint, which uploads
#               every file (target: 10 s or less); peak RSS; then a restore of
#               it into an empty state directory (target: 20 s or less) and
#               a local recovery (state directory intact); then the pause a
#               checkpoint takes at that size, under load: the same state
#               takes the Kafka workload's lines as new records from standard
#               input with a checkpoint every 2 s, and /metrics is read every
#               second for kith_checkpoint_pause_seconds (target: 200 ms or
#               less)
#
# Each run prints its summary, wall time, the CPU seconds of the runner and of
# each of its threads, and how busy the whole machine was meanwhile ("other
# processes" includes the Kafka broker and the producer): on a shared machine
# that shows whether a figure was taken with the cores to itself. Runs with
# debug logs (KITH_LOG=kith_runner=debug) also print where the time went
# (restore download and replay, input, final checkpoint, and the rest).
#
# Builds the release runner when it is missing. The producer helper
# (kafka_produce.py) runs in the virtualenv target/kafka-bench-venv, made from
# requirements-kafka.txt (again only when that file changes). Workloads are
# shared with engine.sh (target/bench/obs-<people>.jsonl, made the same way and
# reused when present); everything else is under target/bench-kafka, and the
# large state and checkpoint folders are deleted at the end, like the topics.
#
#   KITH_RUNNER            the runner binary (default target/release/kith-runner,
#                          or $CARGO_TARGET_DIR/release/kith-runner)
#   KITH_BENCH_STEPS       steps to run (default "throughput latency 10m")
#   KITH_BENCH_10M         0 skips the 10m step (default 1)
#   KITH_BENCH_RATE        observations/s of the latency step (default 20000)
#   KITH_BENCH_SECONDS     seconds of the latency step (default 60)
#   KITH_BENCH_KEEP        1 keeps target/bench-kafka's state folders
#   BENCH_PEOPLE           people of the Kafka workload (default 300000)
#   BENCH_BIG_PEOPLE       people of the 10m workload (default 3010000)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runner=${KITH_RUNNER:-${CARGO_TARGET_DIR:-target}/release/kith-runner}
steps=${KITH_BENCH_STEPS:-throughput latency 10m}
[ "${KITH_BENCH_10M:-1}" = 0 ] && steps=${steps//10m/}
rate=${KITH_BENCH_RATE:-20000}
latency_s=${KITH_BENCH_SECONDS:-60}
people=${BENCH_PEOPLE:-300000}
big=${BENCH_BIG_PEOPLE:-3010000}
bench=target/bench
out=target/bench-kafka
venv=target/kafka-bench-venv
requirements=runner/benches/requirements-kafka.txt
helper=runner/benches/kafka_produce.py
kafka_pipeline=examples/kafka/pipeline.yaml
min_free_gb=20
stamp=$(date +%Y%m%d%H%M%S)-$$

name=kafka
# shellcheck source=runner/benches/lib.sh
source runner/benches/lib.sh

bash tests/services/up.sh kafka
set -a
# shellcheck disable=SC1091
. target/services.env
set +a
echo "kafka: $KAFKA_BOOTSTRAP"

mkdir -p "$bench" "$out"
topics=()
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  if [ ${#topics[@]} -gt 0 ]; then
    py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "${topics[@]}" || true
  fi
  if [ "${KITH_BENCH_KEEP:-0}" != 1 ]; then
    # Logs and summaries stay; states and checkpoints go.
    rm -rf "$out"/{throughput,latency,big}/{state,checkpoints}
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# The environment of examples/kafka/pipeline.yaml, as text for the
# reproduce lines and as words for `env`.
kafka_env() { # topic checkpoints-dir
  echo "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP KITH_INPUT_TOPIC=$1 KITH_CHECKPOINTS=file://$root/$2 KITH_CHECKPOINT_INTERVAL=10s"
}

rows=()
row() { rows+=("| $1 | $2 | $3 |"); }

# Where a run's time went, from the seconds (since start) of its log lines:
# restore (download, then replay into the engine), input, the final
# checkpoint (its reported duration includes a compaction that follows it on
# the checkpoint thread), and what came after it until "run finished".
phases() { # log-events-json observations
  python3 - "$1" "$2" <<'PY'
import json, sys
ev, n = json.loads(sys.argv[1]), int(sys.argv[2])
at = lambda k: float(ev[k]["at_s"]) if k in ev else None
parts = []
downloaded, restored = at("restored from object storage"), at("state restored")
if downloaded is not None:
    parts.append(f"download from checkpoint storage {downloaded:.1f} s")
if restored is not None:
    parts.append(f"replay into the engine {restored - (downloaded or 0):.1f} s (state restored at {restored:.1f} s)")
done = at("checkpoint completed")
if done is not None:
    ck = ev["checkpoint completed"]
    total = int(ck["ms"]) / 1000
    compaction = float(ev["log compacted into a new snapshot"]["seconds"]) if "log compacted into a new snapshot" in ev else 0.0
    started = done - total
    if n:
        parts.append(f"input read and applied by {started:.1f} s ({n / max(started - (restored or 0), 1e-9):,.0f} observations/s)")
    parts.append(f"last checkpoint {total - compaction:.1f} s + compaction {compaction:.1f} s (done at {done:.1f} s)")
finished = at("run finished")
if finished is not None and done is not None:
    parts.append(f"then {finished - done:.1f} s to 'run finished' at {finished:.1f} s")
print("phases: " + "; ".join(parts))
PY
}

# ---------------------------------------------------------------------------
if has_step throughput; then
  echo
  echo "== throughput: Kafka -> state, checkpoints every 10 s"
  obs=$(workload "$people")
  lines=$(wc -l < "$obs")
  dir=$out/throughput
  topic=kith-bench-throughput-$stamp
  topics+=("$topic" "$topic-dlq")
  rm -rf "$dir"
  mkdir -p "$dir"
  t0=$(now)
  py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 6
  produced=$(py produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --input "$obs")
  echo "produced: $produced ($lines lines of $obs, round-robin over 6 partitions, linger.ms=5, acks=all, no compression; $(since "$t0") s with topic creation)"
  messages=$(field "$produced" messages)
  for i in 1 2; do
    rm -rf "$dir/state" "$dir/checkpoints"
    sync
    envs=$(kafka_env "$topic" "$dir/checkpoints")
    cmd="$runner run $kafka_pipeline --state $dir/state --exit-at-end"
    echo "load average before run $i: $(load)"
    t0=$(now)
    # shellcheck disable=SC2086
    summary=$(timed "$dir/cpu-$i.json" env KITH_LOG=kith_runner=info $envs $cmd 2> "$dir/run-$i.log" | tail -n 1)
    wall=$(since "$t0")
    echo "run $i: $summary"
    echo "run $i: wall ${wall} s (process start to exit); $(cpu "$dir/cpu-$i.json")"
    echo "run $i: log: $(py log-events --log "$dir/run-$i.log" --start "$t0" "kafka source assigned" "checkpoint completed" "run finished")"
    got=$(field "$summary" observations)
    if [ "$got" != "$messages" ]; then
      echo "run $i: WARNING: $got observations applied, $messages produced" >&2
    fi
    echo "reproduce: $envs $cmd"
    row "Kafka -> state observations/s, checkpoints every 10 s, run $i" \
      "$(field "$summary" observations_per_s 0) ($(field "$summary" observations) in $(field "$summary" seconds) s, $(field "$summary" checkpoints) checkpoints; runner CPU $(field "$(cat "$dir/cpu-$i.json")" cpu_s 1) s, other processes $(field "$(cat "$dir/cpu-$i.json")" others_busy_s 1) core-s)" \
      "≥ 150,000"
  done
  # For comparison, the same observations read from the file by the same
  # identifiers (examples/canonical/pipeline.yaml: no Kafka, no checkpoints).
  rm -rf "$dir/state"
  sync
  cmd="$runner run examples/canonical/pipeline.yaml --input $obs --state $dir/state"
  t0=$(now)
  # shellcheck disable=SC2086
  file_summary=$(timed "$dir/cpu-file.json" $cmd 2> "$dir/run-file.log" | tail -n 1)
  echo "same observations from the file: $file_summary"
  echo "same observations from the file: wall $(since "$t0") s; $(cpu "$dir/cpu-file.json")"
  echo "reproduce: $cmd"
  row "for comparison: the same observations from a file (canonical example, no Kafka, no checkpoints)" "$(field "$file_summary" observations_per_s 0)" "-"
  echo "reproduce the step: KITH_BENCH_STEPS=throughput bash runner/benches/kafka.sh"
  py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "$topic" "$topic-dlq"
  rm -rf "$dir/state" "$dir/checkpoints"
fi

# ---------------------------------------------------------------------------
if has_step latency; then
  echo
  echo "== latency: Kafka append to applied at $rate observations/s for $latency_s s"
  obs=$(workload "$people")
  dir=$out/latency
  topic=kith-bench-latency-$stamp
  topics+=("$topic" "$topic-dlq")
  rm -rf "$dir"
  mkdir -p "$dir"
  py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 6
  port=$(free_port)
  envs=$(kafka_env "$topic" "$dir/checkpoints")
  cmd="$runner run $kafka_pipeline --state $dir/state --admin 127.0.0.1:$port"
  # shellcheck disable=SC2086
  "$venv/bin/python" "$helper" timed --output "$dir/cpu.json" -- env $envs $cmd > "$dir/run.out" 2> "$dir/run.log" &
  pid=$!
  pids+=("$pid")
  py wait-ready --url "http://127.0.0.1:$port/readyz" --timeout 60
  produce_cmd="$venv/bin/python $helper produce --bootstrap $KAFKA_BOOTSTRAP --topic $topic --input $obs --rate $rate --duration $latency_s --slice-ms 5 --linger-ms 1"
  echo "load average before producing: $(load)"
  produced=$($produce_cmd)
  echo "produced: $produced (5 ms slices of $((rate / 200)) messages, round-robin over 6 partitions, linger.ms=1, acks=all)"
  messages=$(field "$produced" messages)
  t0=$(now)
  py wait-counter --url "http://127.0.0.1:$port/metrics" --counter kith_observations_total --at-least "$messages" --timeout 300 > /dev/null
  echo "applied all $messages $(since "$t0") s after the producer's flush returned"
  scraped=$(py metrics --url "http://127.0.0.1:$port/metrics" --histogram kith_processing_latency_seconds --counter kith_observations_total)
  echo "metrics: $scraped"
  kill -TERM "$pid"
  t0=$(now)
  rc=0
  wait "$pid" || rc=$?
  pids=()
  echo "SIGTERM to exit: $(since "$t0") s, exit code $rc; $(cpu "$dir/cpu.json")"
  summary=$(tail -n 1 "$dir/run.out")
  echo "run: $summary"
  hist=$(field "$scraped" kith_processing_latency_seconds)
  bucket_ms=$(python3 -c "import json, sys; h = json.loads(sys.argv[1]); print(round(float(h['p99_le']) * 1000, 3) if 'p99_le' in h else '-')" "$hist")
  echo "reproduce: $envs $cmd   # then: $produce_cmd; read http://127.0.0.1:$port/metrics; kill -TERM the runner"
  echo "reproduce the step: KITH_BENCH_STEPS=latency bash runner/benches/kafka.sh"
  row "p99 Kafka append -> applied at $rate/s (summary append_p99_ms)" "$(field "$summary" append_p99_ms) ms" "≤ 50 ms"
  row "p99 bucket bound of kith_processing_latency_seconds (cross-check)" "≤ $bucket_ms ms ($(field "$hist" count) observations)" "≤ 50 ms"
  [ "$rc" = 0 ] || echo "latency: WARNING: the runner exited with $rc after SIGTERM" >&2
  py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "$topic" "$topic-dlq"
  rm -rf "$dir/state" "$dir/checkpoints"
fi

# ---------------------------------------------------------------------------
if has_step 10m; then
  echo
  echo "== 10m: checkpoint and restore of about 10 million live records"
  avail_gb=$(df -Pk "$out" | awk 'NR == 2 {print int($4 / 1048576)}')
  if [ "$avail_gb" -lt "$min_free_gb" ]; then
    echo "10m: SKIPPED: $avail_gb GB free on the disk of $out, $min_free_gb GB needed (df -h: $(df -h "$out" | awk 'NR == 2'))"
    row "10M records: checkpoint, restore" "skipped: $avail_gb GB free < $min_free_gb GB" "-"
  else
    obs=$(workload "$big")
    dir=$out/big
    rm -rf "$dir"
    mkdir -p "$dir"
    pipe=$dir/pipeline.yaml
    # The canonical example with checkpoints to a local folder. The interval
    # is long enough that the run's only checkpoint is the final one, which
    # uploads every file of the state.
    {
      cat examples/canonical/pipeline.yaml
      echo "checkpoints:"
      echo "  url: file://$root/$dir/checkpoints"
      # shellcheck disable=SC2016
      echo '  interval: ${KITH_CHECKPOINT_INTERVAL:-600s}'
    } > "$pipe"
    logenv="KITH_LOG=kith_runner=debug NO_COLOR=1"
    events=("admin port open" "restored from object storage" "state restored" "checkpoint marked" "checkpoint completed" "log compacted into a new snapshot" "run finished")

    # The file run, with the admin port scraped every second for pauses.
    port=$(free_port)
    cmd="$runner run $pipe --input $obs --state $dir/state --admin 127.0.0.1:$port"
    echo "load average before the run: $(load)"
    sync
    t0=$(now)
    "$venv/bin/python" "$helper" watch --url "http://127.0.0.1:$port/metrics" --histogram kith_checkpoint_pause_seconds --output "$dir/pause.json" --timeout 3600 &
    watcher=$!
    pids+=("$watcher")
    rc=0
    # shellcheck disable=SC2086
    timed "$dir/cpu-run.json" env $logenv $cmd > "$dir/run.out" 2> "$dir/run.log" || rc=$?
    wall=$(since "$t0")
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    pids=()
    [ "$rc" = 0 ] || { echo "10m: the run failed ($rc):"; tail -n 20 "$dir/run.log"; exit 1; }
    summary=$(tail -n 1 "$dir/run.out")
    echo "run: $summary"
    echo "run: wall $wall s; $(cpu "$dir/cpu-run.json")"
    ev=$(py log-events --log "$dir/run.log" --start "$t0" "${events[@]}")
    echo "run log (seconds from start; last line of each kind): $ev"
    phases "$ev" "$(field "$summary" observations)"
    pause=$(cat "$dir/pause.json" 2>/dev/null || echo '{}')
    echo "pause histogram (last scrape): $pause"
    completed=$(field "$ev" "checkpoint completed")
    ck_ms=$(field "$completed" ms)
    ck_bytes=$(field "$completed" bytes)
    ck_files=$(find "$dir/checkpoints" -type f | wc -l)
    ck_du=$(du -sh "$dir/checkpoints" | cut -f1)
    echo "checkpoints folder: $ck_files files, $ck_du"
    echo "reproduce: $logenv $cmd"
    # The checkpoint thread may compact the log right after a checkpoint, and
    # the duration it reports for the checkpoint then includes that
    # compaction: take it out when the log says so.
    compaction_s=$(field "$(field "$ev" "log compacted into a new snapshot")" seconds)
    ck_s=$(python3 -c "import sys; c = sys.argv[2]; print(round(int(sys.argv[1]) / 1000 - (float(c) if c != '-' else 0), 2))" "$ck_ms" "$compaction_s" 2>/dev/null || echo -)
    if [ "$compaction_s" = - ]; then
      echo "final checkpoint: $ck_s s (no compaction logged)"
    else
      echo "final checkpoint: $ck_s s of its own; the log's 'checkpoint completed' says $ck_ms ms, which includes a compaction of $compaction_s s"
    fi
    ck_note=""
    [ "$compaction_s" = - ] || ck_note=" (the reported $ck_ms ms include the compaction after it)"
    row "10M: final checkpoint (uploads every file)" \
      "$ck_s s, $(python3 -c "print(f'{$ck_bytes / 1e9:.2f}')" 2>/dev/null || echo -) GB, $(field "$summary" records 0) live records$ck_note" "≤ 10 s"
    row "10M: file run observations/s, peak RSS" \
      "$(field "$summary" observations_per_s 0) ($(field "$summary" observations 0) in $(field "$summary" seconds) s), $(field "$summary" peak_rss_mb 0) MB" "-"

    cmd="$runner run $pipe --input /dev/null --state $dir/state"
    # restore_run NAME TITLE ROW REPRODUCE: one timed run of $cmd (it only
    # restores: the input is empty), with its summary, CPU, the phases its
    # log shows, and the README row of its restore time.
    restore_run() {
      local name=$1 title=$2 row_title=$3 reproduce=$4 t0 wall summary ev
      sync
      t0=$(now)
      # shellcheck disable=SC2086
      timed "$dir/cpu-$name.json" env $logenv $cmd > "$dir/$name.out" 2> "$dir/$name.log"
      wall=$(since "$t0")
      summary=$(tail -n 1 "$dir/$name.out")
      echo "$title: $summary"
      echo "$title: wall $wall s; $(cpu "$dir/cpu-$name.json")"
      ev=$(py log-events --log "$dir/$name.log" --start "$t0" "${events[@]}")
      echo "$title log (seconds from start): $ev"
      phases "$ev" 0
      echo "reproduce: $reproduce"
      row "$row_title" "$(field "$summary" restore_seconds) s / $wall s" "≤ 20 s"
    }
    # Restore into an empty state directory from the latest checkpoint.
    rm -rf "$dir/state"
    restore_run restore "restore from checkpoint" \
      "10M: restore into an empty state dir (restore_seconds / wall)" "rm -rf $dir/state; $logenv $cmd"
    # Local recovery: the state directory is intact.
    restore_run local "local recovery" \
      "10M: local recovery, state dir intact (restore_seconds / wall)" "$logenv $cmd"

    # The pause: the same state, now taking new records at full speed (the
    # Kafka workload's lines with their ids prefixed, so each is a new
    # record) with a checkpoint every 2 s.
    obs_small=$(workload "$people")
    port=$(free_port)
    cmd="$runner run $pipe --input - --state $dir/state --admin 127.0.0.1:$port"
    sync
    t0=$(now)
    # shellcheck disable=SC2086
    sed 's/"id":"/"id":"new-/' "$obs_small" | "$venv/bin/python" "$helper" timed --output "$dir/cpu-pause.json" -- env $logenv KITH_CHECKPOINT_INTERVAL=2s $cmd > "$dir/pause.out" 2> "$dir/pause.log" &
    pid=$!
    pids+=("$pid")
    "$venv/bin/python" "$helper" watch --url "http://127.0.0.1:$port/metrics" --histogram kith_checkpoint_pause_seconds --output "$dir/pause-load.json" --timeout 3600 &
    watcher=$!
    pids+=("$watcher")
    wait "$pid" || true
    wall=$(since "$t0")
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    pids=()
    summary=$(tail -n 1 "$dir/pause.out")
    echo "under load: $summary"
    echo "under load: wall $wall s; $(cpu "$dir/cpu-pause.json")"
    ev=$(py log-events --log "$dir/pause.log" --start "$t0" "${events[@]}")
    echo "under load log (seconds from start): $ev"
    max_pause_us=$(python3 - "$dir/pause.log" <<'PY'
import re, sys
vals = [int(m.group(1)) for line in open(sys.argv[1], errors="replace")
        if "checkpoint marked" in line for m in [re.search(r"pause_us=(\d+)", line)] if m]
print(f"log: {max(vals) / 1000:g} ms max of {len(vals)} marks (median {sorted(vals)[len(vals) // 2] / 1000:g} ms); " if vals else "")
PY
)
    pause=$(cat "$dir/pause-load.json" 2>/dev/null || echo '{}')
    echo "pause histogram (last scrape): $pause"
    [ -z "$max_pause_us" ] || echo "pause from the debug log: $max_pause_us"
    echo "reproduce: sed 's/\"id\":\"/\"id\":\"new-/' $obs_small | $logenv KITH_CHECKPOINT_INTERVAL=2s $cmd"
    pause_max=$(python3 -c "import json, sys; h = json.loads(sys.argv[1]); print(f\"/metrics: {h['count']} pauses, highest bucket ≤ {float(h['max_le']) * 1000:g} ms, mean {h['sum'] / h['count'] * 1000:.2f} ms\" if h.get('count') else ('/metrics: never scraped' if not h else '/metrics: kith_checkpoint_pause_seconds not exported' if not h.get('present') else '/metrics: kith_checkpoint_pause_seconds empty (count 0)'))" "$pause")
    row "10M: checkpoint pause under load, 2 s interval, about 11M records" "$max_pause_us$pause_max" "≤ 200 ms"
    echo "reproduce the step: KITH_BENCH_STEPS=10m bash runner/benches/kafka.sh"
  fi
fi

echo
echo "| figure | value | target |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
