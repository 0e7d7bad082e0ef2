#!/usr/bin/env bash
# Sink benchmark: what writing DynamoDB, Neptune and the change-feed topic
# costs the runner, on this machine, against the test services of
# tests/services (moto for DynamoDB, a TinkerPop Gremlin Server for Neptune,
# the Kafka broker; started here if they are not up). About 12 minutes, most
# of it waiting for moto.
#
#   throughput  a workload file (`run PIPELINE --input FILE --state DIR`):
#               the canonical pipeline with no sinks, then with a sinks block
#               appended: a DynamoDB sink in batch mode, the same in
#               conditional mode, Neptune, the Kafka change feed, and all
#               three together (the sinks of examples/aws/pipeline.yaml, read
#               from a file). `generate --people 20000 --seed 42`, except for
#               the cases moto's PutItem or Gremlin Server hold to a few
#               hundred items a second (dynamodb-conditional, neptune, all:
#               `--people 4000`). For each: observations/s of the run's
#               summary (the input read and applied; the engine waits for a
#               sink only when one holds delivery.maxPending keys), the
#               process's wall time (a run ends only once every sink has
#               written everything), peak RSS, and from each sink's metrics
#               (scraped every 0.1 s; the last scrape before the exit) the
#               requests, the average items per request (sum / count of
#               kith_sink_batch_size; the issue's target: at least 20 per
#               DynamoDB batch request under load) and retries; then a count
#               of the live items of the profiles table against the summary
#   latency     a Kafka source at a steady rate (kafka_produce.py produce
#               --rate R --duration 60, 6 partitions) into
#               examples/aws/pipeline.yaml's pipeline with only its DynamoDB
#               sink, in batch and in conditional mode, at 5,000
#               observations/s (target: p99 at most 1 s) and at a rate moto
#               keeps up with (batch 500/s, conditional 50/s). Measured end to
#               end by a probe (sinks_probe.py): while the load runs, marker
#               observations (a new person with the unique email
#               probe-<run>-<n>@bench.example, 5 a second) go to the same
#               topic, and each is polled for with strongly consistent reads
#               (its identifier row, then the profile it names) until it is
#               readable; the latency is that moment minus the moment just
#               before the marker's `produce` call. p50 / p99 / max, and the
#               markers not readable within the timeout (10 s). The runner is
#               then stopped with SIGTERM, or SIGKILL when its final
#               checkpoint cannot complete within 10 s (a sink far behind)
#   memory      the same Kafka pipeline, DynamoDB in batch mode behind the
#               fault proxy of tests/faults, delivery.maxPending 10000, 300
#               observations/s for 60 s, once plainly and once with a 30 s
#               outage (mode reset: every request refused with a TCP reset)
#               from 10 s: peak RSS of both; the input applied during the
#               outage, when the engine stopped taking input and for how long;
#               RSS meanwhile and while catching up; when writes resumed and
#               when the backlog was cleared
#
# Each run prints its summary, its CPU and the whole machine's (moto, Gremlin
# Server and the broker share the same cores), the load average, moto's
# resident size and what moto's log shows of the run (requests a second, and
# the seconds it answered at most 2: a stalled moto), and the command that
# reproduces it (`KITH_BENCH_STEPS=throughput|latency|memory` runs one step).
# Tables, graph vertices (by id prefix) and topics made here are deleted
# after each run (moto and Gremlin Server keep everything in memory), state
# folders too; logs, summaries and metric scrapes stay in target/bench-sinks.
#
# Builds the release runner when it is missing. kafka_produce.py (producer,
# topics, `timed`) runs in target/kafka-bench-venv, made as kafka.sh makes
# it; the probe's DynamoDB side (boto3) in the moto virtualenv of
# tests/services. Workloads are shared with engine.sh and kafka.sh
# (target/bench/obs-<people>.jsonl).
#
#   KITH_RUNNER               the runner binary (default target/release/kith-runner)
#   KITH_BENCH_STEPS          steps to run (default "throughput latency memory")
#   KITH_BENCH_SINK_PEOPLE    people of the throughput workload (default 20000)
#   KITH_BENCH_SINK_CASES     throughput cases (default "none dynamodb-batch
#                             dynamodb-conditional neptune kafka all")
#   KITH_BENCH_SLOW_PEOPLE    people of the throughput cases bound by moto's
#                             PutItem or Gremlin Server (dynamodb-conditional,
#                             neptune, all; default 4000)
#   KITH_BENCH_BATCH_RATES    latency rates in batch mode, observations/s
#                             (default "5000 500")
#   KITH_BENCH_CONDITIONAL_RATES  the same in conditional mode (default "5000 50")
#   KITH_BENCH_SINK_MODES     latency write modes (default "batch conditional")
#   KITH_BENCH_SECONDS        seconds of load per latency run (default 60)
#   KITH_BENCH_MARKER_RATE    markers a second (default 5)
#   KITH_BENCH_MARKER_TIMEOUT seconds a marker may take before it counts as
#                             missing (default 10)
#   KITH_BENCH_MEMORY_RATE    observations/s of the memory step (default 300)
#   KITH_BENCH_MAX_PENDING    delivery.maxPending of the memory step (default 10000)
#   KITH_BENCH_OUTAGE         seconds of the outage (default 30)
#   KITH_BENCH_KEEP           1 keeps tables, graph, topics and state folders
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runner=${KITH_RUNNER:-${CARGO_TARGET_DIR:-target}/release/kith-runner}
steps=${KITH_BENCH_STEPS:-throughput latency memory}
people=${KITH_BENCH_SINK_PEOPLE:-20000}
cases=${KITH_BENCH_SINK_CASES:-none dynamodb-batch dynamodb-conditional neptune kafka all}
slow_people=${KITH_BENCH_SLOW_PEOPLE:-4000}
batch_rates=${KITH_BENCH_BATCH_RATES:-5000 500}
conditional_rates=${KITH_BENCH_CONDITIONAL_RATES:-5000 50}
modes=${KITH_BENCH_SINK_MODES:-batch conditional}
latency_s=${KITH_BENCH_SECONDS:-60}
marker_rate=${KITH_BENCH_MARKER_RATE:-5}
marker_timeout=${KITH_BENCH_MARKER_TIMEOUT:-10}
memory_rate=${KITH_BENCH_MEMORY_RATE:-300}
max_pending=${KITH_BENCH_MAX_PENDING:-10000}
outage_s=${KITH_BENCH_OUTAGE:-30}
keep=${KITH_BENCH_KEEP:-0}
bench=target/bench
out=target/bench-sinks
venv=target/kafka-bench-venv
requirements=runner/benches/requirements-kafka.txt
helper=runner/benches/kafka_produce.py
probe=runner/benches/sinks_probe.py
moto_py=${KITH_CACHE:-$HOME/.cache/kith}/moto-venv/bin/python
canonical=examples/canonical/pipeline.yaml
aws=examples/aws/pipeline.yaml
stamp=$(date +%Y%m%d%H%M%S)-$$
bench_started=$(date +%s.%N)

name=sinks
# The virtualenv of kafka.sh, shared with it.
# shellcheck source=runner/benches/lib.sh
source runner/benches/lib.sh

bash tests/services/up.sh kafka moto gremlin
set -a
# shellcheck disable=SC1091
. target/services.env
set +a
[ -x "$moto_py" ] || { echo "sinks bench: $moto_py not found (tests/services/up.sh moto makes it)" >&2; exit 1; }
"$moto_py" -c 'import boto3' || { echo "sinks bench: boto3 is missing from $moto_py" >&2; exit 1; }
echo "services: kafka $KAFKA_BOOTSTRAP, dynamodb (moto) $DYNAMODB_ENDPOINT, neptune (Gremlin Server) $NEPTUNE_ENDPOINT"
region=${AWS_REGION:-us-east-1}
ddb() { "$moto_py" "$probe" "$1" --endpoint "$DYNAMODB_ENDPOINT" --region "$region" "${@:2}"; }
# moto keeps every table in memory: its resident size, before and after.
moto_rss() {
  local pid
  pid=$(cat target/services/moto.pid 2>/dev/null || true)
  [ -n "$pid" ] && awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo "-"
}

moto_log=target/services/moto/moto.log
moto_mark() { stat -c %s "$moto_log" 2>/dev/null || echo 0; }
moto_window() { # offset start-unix -> what moto's log says of the seconds since
  [ -f "$moto_log" ] || { echo "{}"; return; }
  python3 "$probe" moto-log --log "$moto_log" --offset "$1" --start "$2" --end "$(now)"
}
moto_line() { # moto-window-json
  python3 - "$1" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
if not m:
    print("moto: no log"); sys.exit()
print(f"moto: {m['requests']:,} requests logged in {m['seconds']} s (median {m['per_s_median']}/s, highest {m['per_s_max']}/s);",
      f"{m['seconds_with_at_most_2']} seconds with at most 2 (stalled; longest run {m['longest_such_run_s']} s); {m['not_200']} answers not 200")
PY
}

mkdir -p "$bench" "$out"
tables=()
topics=()
prefixes=()
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  [ "$keep" = 1 ] && return
  if [ ${#tables[@]} -gt 0 ]; then
    ddb delete-tables "${tables[@]}" || true
  fi
  if [ ${#topics[@]} -gt 0 ]; then
    py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "${topics[@]}" || true
  fi
  for p in "${prefixes[@]}"; do
    python3 "$probe" graph-drop --endpoint "$NEPTUNE_ENDPOINT" --prefix "$p" > /dev/null || true
  done
  rm -rf "$out"/*/state-* "$out"/*/checkpoints-*
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Deletes what a run made, right after it (moto and Gremlin Server keep
# everything in memory), and forgets it.
clean_now() {
  [ "$keep" = 1 ] && return
  if [ ${#tables[@]} -gt 0 ]; then ddb delete-tables "${tables[@]}" || true; fi
  if [ ${#topics[@]} -gt 0 ]; then py delete-topics --bootstrap "$KAFKA_BOOTSTRAP" "${topics[@]}" || true; fi
  for p in "${prefixes[@]}"; do
    python3 "$probe" graph-drop --endpoint "$NEPTUNE_ENDPOINT" --prefix "$p" > /dev/null || true
  done
  tables=()
  topics=()
  prefixes=()
}


# Sink entries of a pipeline's `sinks:` list, with the settings of
# examples/aws/pipeline.yaml (DynamoDB: flushInterval 250ms, maxPending
# 100000, maxInFlight 32; Neptune: batchSize 100).
dynamodb_sink() { # profiles-table identifiers-table write-mode endpoint [max-pending]
  cat <<EOF
  - type: dynamodb
    profilesTable: $1
    identifiersTable: $2
    createTables: true
    endpoint: $4
    region: $region
    writeMode: $3
    delivery:
      flushInterval: 250ms
      maxPending: ${5:-100000}
      maxInFlight: 32
EOF
}
neptune_sink() { # id-prefix
  cat <<EOF
  - type: neptune
    endpoint: $NEPTUNE_ENDPOINT
    idPrefix: '$1'
    batchSize: 100
EOF
}
kafka_sink() { # topic
  cat <<EOF
  - type: kafka
    bootstrapServers: $KAFKA_BOOTSTRAP
    topic: $1
EOF
}

# One line per sink from a watch file: requests, items per request, retries.
sink_lines() { # watch-file
  python3 - "$1" <<'PY'
import json, sys
try:
    w = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("sinks: no metrics scraped"); sys.exit()
for name, s in sorted(w.get("sinks", {}).items()):
    reqs, items = s.get("batch_requests", 0), s.get("batch_items", 0)
    avg = f"{items / reqs:.1f}" if reqs else "-"
    print(f"sink {name}: {s.get('requests', 0):,} requests, {items:,} items in {reqs:,} sized requests ({avg} items/request),",
          f"{s.get('operations', 0):,} operations in {s.get('flushes', 0):,} completed flushes, retries {s.get('retries', 0):,} {json.dumps(s.get('retries_by_reason', {}))},",
          f"throttles {s.get('throttles', 0):,}, errors {s.get('errors', 0):,}, oversize items {s.get('oversize_items', 0):,},",
          f"max in flight {s.get('max_in_flight', 0)}, max oldest unwritten {s.get('max_oldest_unwritten_s', 0)} s")
PY
}
# One sink's figure from a watch file: avg (items/request), requests, retries, ops.
sink_figure() { # watch-file sink what
  python3 - "$@" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["sinks"][sys.argv[2]]
except (OSError, ValueError, KeyError):
    print("-"); sys.exit()
reqs, items = s.get("batch_requests", 0), s.get("batch_items", 0)
what = sys.argv[3]
if what == "avg":
    print(f"{items / reqs:.1f}" if reqs else "-")
elif what == "cell":
    avg = f"{items / reqs:.1f}" if reqs else "-"
    rate = f", {items / float(sys.argv[4]):,.0f} items/s of wall time" if len(sys.argv) > 4 and float(sys.argv[4]) > 0 else ""
    print(f"{sys.argv[2]}: {s.get('requests', 0):,} requests, {avg} items/request, {s.get('retries', 0):,} retries{rate}")
else:
    print(s.get(what, "-"))
PY
}

rows=()
row() { rows+=("$1"); }

# ---------------------------------------------------------------------------
if has_step throughput; then
  echo
  echo "== throughput: a file of generate --people $people --seed 42, with and without sinks"
  big_obs=$(workload "$people")
  slow_obs=$(workload "$slow_people")
  dir=$out/throughput
  mkdir -p "$dir"
  echo "workload: $big_obs, $(wc -l < "$big_obs") observations; for the cases bound by moto's PutItem or by Gremlin Server (dynamodb-conditional, neptune, all) $slow_obs, $(wc -l < "$slow_obs") observations"
  row "| case | observations/s (summary) | wall s (whole process) | peak RSS MB | sink requests, items per request, retries | store check |"
  row "|---|---|---|---|---|---|"
  for case in $cases; do
    name=kith-bench-$stamp-$case
    pipe=$dir/pipeline-$case.yaml
    state=$dir/state-$case
    rm -rf "$state"
    obs=$big_obs
    case $case in dynamodb-conditional | neptune | all) obs=$slow_obs ;; esac
    {
      cat "$canonical"
      case $case in
        none) ;;
        dynamodb-batch | dynamodb-conditional | all)
          echo "sinks:"
          mode=${case#dynamodb-}
          [ "$case" = all ] && mode=conditional
          dynamodb_sink "$name-profiles" "$name-identifiers" "$mode" "$DYNAMODB_ENDPOINT"
          tables+=("$name-profiles" "$name-identifiers")
          if [ "$case" = all ]; then
            neptune_sink "$name:"
            prefixes+=("$name:")
            kafka_sink "$name-changes"
            topics+=("$name-changes" "$name-changes-progress")
          fi
          ;;
        neptune)
          echo "sinks:"
          neptune_sink "$name:"
          prefixes+=("$name:")
          ;;
        kafka)
          echo "sinks:"
          kafka_sink "$name-changes"
          topics+=("$name-changes" "$name-changes-progress")
          ;;
        *) echo "throughput: unknown case $case" >&2; exit 2 ;;
      esac
    } > "$pipe"
    port=$(free_port)
    cmd="$runner run $pipe --input $obs --state $state --admin 127.0.0.1:$port"
    echo
    echo "-- $case (load average before: $(load); moto resident: $(moto_rss))"
    rm -f "$dir/watch-$case.json"
    mark=$(moto_mark)
    started=$(now)
    python3 "$probe" watch --url "http://127.0.0.1:$port/metrics" --output "$dir/watch-$case.json" --every 0.1 &
    watcher=$!
    pids+=("$watcher")
    rc=0
    # shellcheck disable=SC2086
    timed "$dir/cpu-$case.json" $cmd > "$dir/run-$case.out" 2> "$dir/run-$case.log" || rc=$?
    ended=$(now)
    # The watcher ends when the admin port goes away, or here (a run too short
    # for one scrape).
    kill -TERM "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    pids=()
    if [ "$rc" != 0 ]; then
      echo "$case: the run failed ($rc):"
      tail -n 20 "$dir/run-$case.log"
      exit 1
    fi
    summary=$(tail -n 1 "$dir/run-$case.out")
    wall=$(field "$(cat "$dir/cpu-$case.json")" wall_s 2)
    echo "run: $summary"
    echo "run: wall $wall s (process start to exit); $(cpu "$dir/cpu-$case.json")"
    gap=$(python3 -c 'import json, sys
try:
    last = json.load(open(sys.argv[1]))["scraped_unix"]
    print(f"{float(sys.argv[2]) - last:.2f}")
except (OSError, ValueError, KeyError):
    print("-")' "$dir/watch-$case.json" "$ended")
    sink_lines "$dir/watch-$case.json"
    echo "metrics: last scrape $gap s before the process exited"
    moto=$(moto_window "$mark" "$started")
    case $case in dynamodb-* | all) moto_line "$moto" ;; esac
    check="-"
    if [ "$case" != none ] && [ "$case" != neptune ] && [ "$case" != kafka ]; then
      counted=$(ddb count-live --table "$name-profiles")
      check="profiles table: $(field "$counted" live 0) live items, summary: $(field "$summary" profiles 0) profiles"
      echo "check: $check ($(field "$counted" items 0) items with tombstones)"
    fi
    if [ "$case" = neptune ] || [ "$case" = all ]; then
      graph=$(python3 "$probe" graph-drop --endpoint "$NEPTUNE_ENDPOINT" --prefix "$name:")
      prefixes=()
      [ "$case" = neptune ] && check="graph: $(field "$graph" vertices_dropped 0) vertices (dropped after)"
      echo "graph: $graph"
    fi
    echo "reproduce: $cmd   # pipeline: $canonical + the sinks block of $pipe"
    cells=""
    names=$(python3 -c 'import json, sys
try:
    print(" ".join(sorted(json.load(open(sys.argv[1]))["sinks"])))
except (OSError, ValueError, KeyError):
    pass' "$dir/watch-$case.json")
    # Items per second of the whole run, for a run with one sink (with
    # several, the slowest sets the wall time of all).
    per_s=$wall
    [ "$(wc -w <<< "$names")" = 1 ] || per_s=0
    for s in $names; do
      cells+="${cells:+; }$(sink_figure "$dir/watch-$case.json" "$s" cell "$per_s")"
    done
    row "| $case | $(field "$summary" observations_per_s 0) ($(field "$summary" observations 0) in $(field "$summary" seconds) s) | $wall | $(field "$summary" peak_rss_mb 1) | ${cells:--} | $check |"
    clean_now
    rm -rf "$state"
  done
  echo
  echo "reproduce the step: KITH_BENCH_STEPS=throughput bash runner/benches/sinks.sh"
fi

# ---------------------------------------------------------------------------
# A runner on a Kafka topic with examples/aws/pipeline.yaml's DynamoDB sink
# only (the file up to its Neptune entry), write mode replaced. Sets $pipe.
aws_dynamodb_pipeline() { # file write-mode max-pending
  sed '/^  - type: neptune/,$d' "$aws" | sed "s/writeMode: conditional/writeMode: $2/; s/maxPending: 100000/maxPending: $3/" > "$1"
  grep -q "writeMode: $2" "$1" && grep -q "maxPending: $3" "$1" || {
    echo "sinks bench: $aws no longer has the layout this script edits (writeMode, maxPending, a neptune entry)" >&2
    exit 1
  }
}
aws_env() { # topic profiles identifiers checkpoints-dir dynamodb-endpoint
  echo "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP KITH_INPUT_TOPIC=$1 KITH_PROFILES_TABLE=$2 KITH_IDENTIFIERS_TABLE=$3 KITH_CHECKPOINTS=file://$root/$4 KITH_CHECKPOINT_INTERVAL=10s DYNAMODB_ENDPOINT=$5"
}
# Stops the runner started under `timed` as $1: SIGTERM (a final checkpoint,
# which waits for the sink), then SIGKILL after $2 seconds. Sets $stop_note.
stop_runner() {
  local pid=$1 grace=$2 t0 child i
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    child=$(ps -o pid= --ppid "$pid" | tr -d ' ' | head -n 1)
    [ -n "$child" ] && kill -KILL "$child" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    stop_note="SIGTERM did not end it within $grace s (the final checkpoint waits for the sink's backlog): SIGKILL"
  else
    local rc=0
    wait "$pid" || rc=$?
    stop_note="SIGTERM to exit $(since "$t0") s, exit code $rc"
  fi
}

if has_step latency; then
  echo
  echo "== latency: Kafka append -> readable in DynamoDB (moto), $latency_s s per run; batch mode at $batch_rates observations/s, conditional at $conditional_rates"
  dir=$out/latency
  mkdir -p "$dir"
  max_rate=0
  for r in $batch_rates $conditional_rates; do [ "$r" -gt "$max_rate" ] && max_rate=$r; done
  # Enough distinct lines for the highest rate (about 4.9 observations a person).
  lat_people=$(((max_rate * latency_s) / 4 + 1000))
  obs=$(workload "$lat_people")
  echo "workload: $obs ($(wc -l < "$obs") observations; each run sends its first rate x $latency_s lines)"
  lrows=()
  for mode in $modes; do
    rates=$batch_rates
    [ "$mode" = conditional ] && rates=$conditional_rates
    for rate in $rates; do
      run=$mode-$rate
      name=kith-bench-$stamp-lat-$run
      topic=$name-in
      tables+=("$name-profiles" "$name-identifiers")
      topics+=("$topic" "$topic-dlq")
      pipe=$dir/pipeline-$mode.yaml
      aws_dynamodb_pipeline "$pipe" "$mode" 100000
      rm -rf "$dir/state-$run" "$dir/checkpoints-$run"
      py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 6
      port=$(free_port)
      envs=$(aws_env "$topic" "$name-profiles" "$name-identifiers" "$dir/checkpoints-$run" "$DYNAMODB_ENDPOINT")
      cmd="$runner run $pipe --state $dir/state-$run --admin 127.0.0.1:$port"
      echo
      echo "-- $mode, $rate observations/s (load average before: $(load); moto resident: $(moto_rss))"
      # shellcheck disable=SC2086
      "$venv/bin/python" "$helper" timed --output "$dir/cpu-$run.json" -- env $envs $cmd > "$dir/run-$run.out" 2> "$dir/run-$run.log" &
      pid=$!
      pids+=("$pid")
      python3 "$probe" watch --url "http://127.0.0.1:$port/metrics" --output "$dir/watch-$run.json" --parent "$pid" --every 0.25 &
      watcher=$!
      pids+=("$watcher")
      py wait-ready --url "http://127.0.0.1:$port/readyz" --timeout 60
      mark=$(moto_mark)
      produce_cmd="$venv/bin/python $helper produce --bootstrap $KAFKA_BOOTSTRAP --topic $topic --input $obs --rate $rate --duration $latency_s --slice-ms 5 --linger-ms 1"
      probe_cmd="$venv/bin/python $probe markers --bootstrap $KAFKA_BOOTSTRAP --topic $topic --rate $marker_rate --duration $latency_s --prefix probe-$run-$$ | $moto_py $probe poll --endpoint $DYNAMODB_ENDPOINT --region $region --profiles-table $name-profiles --identifiers-table $name-identifiers --timeout $marker_timeout --output $dir/markers-$run.jsonl"
      t0=$(now)
      $produce_cmd > "$dir/produced-$run.json" &
      producer=$!
      bash -c "set -o pipefail; $probe_cmd" > "$dir/probe-$run.json" &
      prober=$!
      pids+=("$producer" "$prober")
      wait "$producer" || echo "latency: WARNING: the producer failed" >&2
      wait "$prober" || echo "latency: WARNING: the probe failed" >&2
      echo "load and probe done after $(since "$t0") s; load average $(load)"
      moto=$(moto_window "$mark" "$t0")
      stop_runner "$pid" 10
      wait "$watcher" 2>/dev/null || true
      pids=()
      produced=$(cat "$dir/produced-$run.json")
      result=$(cat "$dir/probe-$run.json")
      summary=$(tail -n 1 "$dir/run-$run.out" 2>/dev/null || true)
      echo "produced: $produced"
      echo "probe: $result"
      echo "runner: $stop_note; summary: ${summary:-none (killed)}"
      echo "runner: $(cpu "$dir/cpu-$run.json")"
      sink_lines "$dir/watch-$run.json"
      moto_line "$moto"
      w=$(cat "$dir/watch-$run.json" 2>/dev/null || echo '{}')
      echo "runner: $(field "$w" observations 0) observations applied of $(field "$produced" messages 0) sent (+ markers), highest consumer lag $(field "$w" max_consumer_lag 0), highest RSS $(field "$w" max_rss_mb 1) MiB"
      echo "reproduce: $envs $cmd   # then, together: $produce_cmd; $probe_cmd"
      from=$(field "$result" from_sent)
      lrows+=("| $mode | $rate | $(field "$from" p50_ms) | $(field "$from" p99_ms) | $(field "$from" max_ms) | $(field "$result" found 0) / $(field "$result" markers 0) (missing $(field "$result" missing 0), timeout ${marker_timeout} s) | $(sink_figure "$dir/watch-$run.json" dynamodb avg) | $(field "$w" observations 0) of $(field "$produced" messages 0); lag up to $(field "$w" max_consumer_lag 0) |")
      clean_now
      rm -rf "$dir/state-$run" "$dir/checkpoints-$run"
    done
  done
  row ""
  row "| write mode | observations/s | p50 ms | p99 ms | max ms | markers readable | items per BatchWriteItem / PutItem | applied of sent; consumer lag |"
  row "|---|---|---|---|---|---|---|---|"
  for r in "${lrows[@]}"; do row "$r"; done
  echo
  echo "reproduce the step: KITH_BENCH_STEPS=latency bash runner/benches/sinks.sh"
fi

# ---------------------------------------------------------------------------
if has_step memory; then
  echo
  echo "== memory: $memory_rate observations/s into the DynamoDB sink behind tests/faults/proxy.py, maxPending $max_pending, with and without a $outage_s s outage"
  dir=$out/memory
  mkdir -p "$dir"
  before=10
  after=20
  mem_s=$((before + outage_s + after))
  obs=$(workload $(((memory_rate * mem_s) / 4 + 1000)))
  # The proxy, in front of moto.
  rm -f "$dir/proxy.port"
  python3 tests/faults/proxy.py --listen 127.0.0.1:0 --upstream "$DYNAMODB_ENDPOINT" --port-file "$dir/proxy.port" 2> "$dir/proxy.log" &
  proxy=$!
  pids+=("$proxy")
  for _ in $(seq 100); do [ -s "$dir/proxy.port" ] && break; sleep 0.05; done
  proxy_url="http://127.0.0.1:$(cat "$dir/proxy.port")"
  echo "proxy: $proxy_url -> $DYNAMODB_ENDPOINT"
  mrows=()
  for variant in plain outage; do
    run=$variant
    name=kith-bench-$stamp-mem-$run
    topic=$name-in
    tables+=("$name-profiles" "$name-identifiers")
    topics+=("$topic" "$topic-dlq")
    pipe=$dir/pipeline.yaml
    aws_dynamodb_pipeline "$pipe" batch "$max_pending"
    rm -rf "$dir/state-$run" "$dir/checkpoints-$run"
    curl -s -X DELETE "$proxy_url/__faults" > /dev/null
    py create-topic --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --partitions 6
    port=$(free_port)
    envs=$(aws_env "$topic" "$name-profiles" "$name-identifiers" "$dir/checkpoints-$run" "$proxy_url")
    cmd="$runner run $pipe --state $dir/state-$run --admin 127.0.0.1:$port"
    echo
    echo "-- $variant (load average before: $(load); moto resident: $(moto_rss))"
    # shellcheck disable=SC2086
    "$venv/bin/python" "$helper" timed --output "$dir/cpu-$run.json" -- env $envs $cmd > "$dir/run-$run.out" 2> "$dir/run-$run.log" &
    pid=$!
    pids+=("$pid")
    python3 "$probe" watch --url "http://127.0.0.1:$port/metrics" --output "$dir/watch-$run.json" --parent "$pid" --every 0.25 &
    watcher=$!
    pids+=("$watcher")
    py wait-ready --url "http://127.0.0.1:$port/readyz" --timeout 60
    produce_cmd="$venv/bin/python $helper produce --bootstrap $KAFKA_BOOTSTRAP --topic $topic --input $obs --rate $memory_rate --duration $mem_s --slice-ms 5 --linger-ms 1"
    mark=$(moto_mark)
    t0=$(now)
    $produce_cmd > "$dir/produced-$run.json" &
    producer=$!
    pids+=("$producer")
    plan='{"faults": [{"kind": "outage", "seconds": '$outage_s', "mode": "reset"}]}'
    outage_unix="-"
    if [ "$variant" = outage ]; then
      sleep "$before"
      outage_unix=$(now)
      curl -s -X PUT "$proxy_url/__faults" -d "$plan" > /dev/null
      echo "outage set $(since "$t0") s after the producer started: $plan"
    fi
    wait "$producer"
    produced=$(cat "$dir/produced-$run.json")
    messages=$(field "$produced" messages)
    drained="-"
    if py wait-counter --url "http://127.0.0.1:$port/metrics" --counter kith_observations_total --at-least "$messages" --timeout 300 > /dev/null; then
      drained=$(since "$t0")
    fi
    # Then until the sink has written everything (its oldest unwritten change is 0 s old).
    for _ in $(seq 600); do
      python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["sinks"].get("dynamodb", {})
sys.exit(0 if s.get("oldest_unwritten_s", 1) == 0 and s.get("in_flight", 1) == 0 else 1)' "$dir/watch-$run.json" 2>/dev/null && break
      sleep 0.5
    done
    caught_up=$(since "$t0")
    moto=$(moto_window "$mark" "$t0")
    faults=$(curl -s "$proxy_url/__faults")
    stop_runner "$pid" 60
    wait "$watcher" 2>/dev/null || true
    pids=("$proxy")
    summary=$(tail -n 1 "$dir/run-$run.out" 2>/dev/null || true)
    echo "produced: $produced"
    echo "runner: $stop_note; summary: ${summary:-none}"
    echo "runner: $(cpu "$dir/cpu-$run.json")"
    echo "proxy: $(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(json.dumps(d.get("counters", {})))' "$faults")"
    sink_lines "$dir/watch-$run.json"
    moto_line "$moto"
    echo "input applied: all $messages by $drained s, sink caught up by $caught_up s (from the first message)"
    analysis=$(python3 - "$dir/watch-$run.json" "$t0" "$outage_unix" "$outage_s" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
t0 = float(sys.argv[2])
tl = [p for p in w.get("timeline", []) if p["unix"] >= t0 - 1]
out = {"max_rss_mb": w.get("max_rss_mb"), "hwm_mb": w.get("hwm_mb"), "max_consumer_lag": w.get("max_consumer_lag")}
if sys.argv[3] != "-" and tl:
    begin = float(sys.argv[3])
    end = begin + float(sys.argv[4])
    inside = [i for i, p in enumerate(tl) if begin <= p["unix"] <= end]
    if inside:
        # Input stopped: the first point in the window from which the
        # applied count stays put until it moves again (after the window).
        obs = [p["observations"] for p in tl]
        stop = next(i for i in inside if obs[i] == obs[inside[-1]])
        again = next((j for j in range(stop, len(tl)) if obs[j] > obs[stop]), len(tl) - 1)
        ops = [p.get("operations", {}).get("dynamodb", 0) for p in tl]
        last_end = max(i for i in range(len(tl)) if tl[i]["unix"] <= end)
        resumed = next((j for j in range(last_end, len(tl)) if ops[j] > ops[last_end]), None)
        stopped_rss = [p["rss_mb"] for p in tl[stop:again] if p["rss_mb"] is not None]
        out.update(
            outage_observations_applied=obs[inside[-1]] - obs[inside[0]],
            input_stopped_after_s=round(tl[stop]["unix"] - begin, 1),
            input_stopped_for_s=round(tl[again]["unix"] - tl[stop]["unix"], 1),
            rss_at_outage_start_mb=tl[inside[0]]["rss_mb"],
            rss_at_stop_mb=tl[stop]["rss_mb"],
            rss_max_while_stopped_mb=max(stopped_rss) if stopped_rss else None,
            rss_max_after_mb=max((p["rss_mb"] for p in tl[again:] if p["rss_mb"] is not None), default=None),
            writes_resumed_after_outage_end_s=round(tl[resumed]["unix"] - end, 1) if resumed is not None else None,
        )
# Every 5th second from the producer's start: (s, RSS MiB, applied, lag, sink operations).
out["timeline"] = [(round(p["unix"] - t0), p["rss_mb"], p["observations"], p["lag"], p.get("operations", {}).get("dynamodb", 0)) for p in tl][::5]
print(json.dumps(out))
PY
)
    echo "memory: $analysis"
    echo "reproduce: $envs $cmd   # then: $produce_cmd$([ "$variant" = outage ] && echo "; after $before s: curl -X PUT $proxy_url/__faults -d '$plan'")"
    if [ "$variant" = outage ]; then
      mrows+=("| outage of $outage_s s from ${before} s | $(field "$summary" peak_rss_mb 1) | $(field "$analysis" max_rss_mb 1) | $max_pending | $(field "$analysis" outage_observations_applied 0); input stopped $(field "$analysis" input_stopped_after_s) s into the outage, for $(field "$analysis" input_stopped_for_s) s | $(field "$analysis" rss_at_outage_start_mb 1) at its start, $(field "$analysis" rss_at_stop_mb 1) when input stopped, at most $(field "$analysis" rss_max_while_stopped_mb 1) while stopped; $(field "$analysis" rss_max_after_mb 1) at most on catching up | writes resumed $(field "$analysis" writes_resumed_after_outage_end_s) s after the outage ended; $drained / $caught_up |")
    else
      mrows+=("| no outage | $(field "$summary" peak_rss_mb 1) | $(field "$analysis" max_rss_mb 1) | $max_pending | - | - | $drained / $caught_up |")
    fi
    clean_now
    rm -rf "$dir/state-$run" "$dir/checkpoints-$run"
  done
  kill -TERM "$proxy" 2>/dev/null || true
  wait "$proxy" 2>/dev/null || true
  pids=()
  row ""
  row "| memory run ($memory_rate obs/s for ${mem_s} s) | peak RSS MB (summary) | highest RSS sampled MiB | maxPending | observations applied during the outage | RSS MiB | all applied / sink caught up (s from the first message) |"
  row "|---|---|---|---|---|---|---|"
  for r in "${mrows[@]}"; do row "$r"; done
  echo
  echo "reproduce the step: KITH_BENCH_STEPS=memory bash runner/benches/sinks.sh"
fi

echo
echo "== figures ($(since "$bench_started") s in all; load average now: $(load); moto resident: $(moto_rss))"
for r in "${rows[@]}"; do echo "$r"; done
