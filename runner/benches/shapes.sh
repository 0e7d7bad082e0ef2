#!/usr/bin/env bash
# Pathological shapes (`make bench`): the cost per observation of workloads
# that make every change touch a large connected group, against the
# ordinary workload's, with the canonical pipeline and persistence on.
#
#   SHAPES_CHAIN        records in the chain (default 60000); a tenth of them
#                       are then retracted from its tail
#   SHAPES_HUB          records sharing one device that bridges accounts
#                       indirectly (default 20000)
#   SHAPES_HOT          events holding one person's email (default 1000000)
#   SHAPES_TIMEOUT      seconds a shape may take before it is reported as not
#                       finished (default 900)
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=target/release/kith-runner
pipeline=examples/canonical/pipeline.yaml
out=target/bench/shapes
chain=${SHAPES_CHAIN:-60000}
hub=${SHAPES_HUB:-20000}
hot=${SHAPES_HOT:-1000000}
limit=${SHAPES_TIMEOUT:-900}
mkdir -p "$out"

rate() { # input -> observations/s, or "not finished"
  rm -rf "$out/state"
  sync
  local summary
  if summary=$(timeout "$limit" "$runner" run "$pipeline" --input "$1" --state "$out/state" --exit-at-end 2>/dev/null | tail -n 1); then
    python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['observations_per_s']))" "$summary"
  else
    echo "not finished in ${limit} s"
  fi
}

ratio() { # rate baseline -> "N x the ordinary cost"
  case "$1" in
    not*) echo "-" ;;
    *) python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.1f}x')" "$1" "$2" ;;
  esac
}

"$runner" generate --people 20000 --seed 42 > "$out/ordinary.jsonl"
python3 runner/benches/shapes.py chain "$chain" $((chain / 10)) > "$out/chain.jsonl"
python3 runner/benches/shapes.py hub "$hub" > "$out/hub.jsonl"
python3 runner/benches/shapes.py hot "$hot" > "$out/hot.jsonl"

base=$(rate "$out/ordinary.jsonl")
echo "ordinary (generate --people 20000 --seed 42): $base observations/s"
for shape in chain hub hot; do
  lines=$(wc -l < "$out/$shape.jsonl")
  r=$(rate "$out/$shape.jsonl")
  echo "$shape ($lines observations): $r observations/s, cost per observation $(ratio "$r" "$base") the ordinary (target at most 3x)"
done
rm -rf "$out/state" "$out"/*.jsonl
