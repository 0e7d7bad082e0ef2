#!/usr/bin/env bash
# Engine benchmark (`make bench`): throughput, per-observation latency, memory
# per live record, and accuracy of the canonical pipeline on `generate` output,
# with persistence on (a state directory, write-ahead log and snapshot).
#
#   BENCH_PEOPLE       people in the throughput workload (default 300000, about 1.5M observations)
#   BENCH_BIG_PEOPLE   people in the memory workload (default 3010000, about 10M live records; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=target/release/kith-runner
pipeline=examples/canonical/pipeline.yaml
out=target/bench
people=${BENCH_PEOPLE:-300000}
big=${BENCH_BIG_PEOPLE:-3010000}
mkdir -p "$out"

workload() { # people seed -> $out/obs-<people>.jsonl and truth
  local n=$1
  if [ ! -s "$out/obs-$n.jsonl" ]; then
    "$runner" generate --people "$n" --seed 42 --truth "$out/truth-$n.jsonl" > "$out/obs-$n.jsonl"
  fi
}

run() { # input state -> summary JSON on stdout
  rm -rf "$2"
  # Let the kernel finish writing back what earlier runs left, so that it
  # does not compete with this run for the two cores.
  sync
  "$runner" run "$pipeline" --input "$1" --state "$2" --exit-at-end | tail -n 1
}

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

workload "$people"
lines=$(wc -l < "$out/obs-$people.jsonl")
echo "workload: $people people, $lines observations (generate --people $people --seed 42)"

summary=$(run "$out/obs-$people.jsonl" "$out/state")
echo "run:      $summary"
"$runner" export --state "$out/state" | sort > "$out/export.jsonl"
scores=$("$runner" evaluate --export "$out/export.jsonl" --truth "$out/truth-$people.jsonl")
echo "accuracy: $scores"

# The same observations in reverse order must give the same export.
tac "$out/obs-$people.jsonl" > "$out/obs-reversed.jsonl"
run "$out/obs-reversed.jsonl" "$out/state-reversed" > /dev/null
"$runner" export --state "$out/state-reversed" | sort > "$out/export-reversed.jsonl"
if cmp -s "$out/export.jsonl" "$out/export-reversed.jsonl"; then neutral=identical; else neutral=DIFFERENT; fi
echo "reversed arrival order: export $neutral"
rm -f "$out/obs-reversed.jsonl"

if [ "$big" != 0 ]; then
  workload "$big"
  big_summary=$(run "$out/obs-$big.jsonl" "$out/state-big")
  echo "memory run: $big_summary"
  records=$(field "$big_summary" records)
  rss=$(field "$big_summary" peak_rss_mb)
  per_record=$(python3 -c "print(round($rss * 1048576 / $records))")
  echo "memory: $per_record bytes of peak RSS per live record at $records live records"
fi

echo
echo "| figure | value |"
echo "|---|---|"
echo "| observations/s, one engine thread | $(field "$summary" observations_per_s) |"
echo "| p99 latency per observation | $(field "$summary" p99_ms) ms |"
echo "| pairwise F1 / precision / recall | $(field "$scores" f1) / $(field "$scores" precision) / $(field "$scores" recall) |"
echo "| profiles holding two account ids | $(field "$scores" profiles_with_multiple_accounts) |"
echo "| reversed arrival order | export $neutral |"
if [ "$big" != 0 ]; then
  echo "| peak RSS per live record at $records records | $per_record bytes |"
fi
[ "$neutral" = identical ]
