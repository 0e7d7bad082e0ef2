#!/usr/bin/env bash
# Entity resolution on census-style person records with households
# (runner/benches/persons): Kith against a Splink 5 baseline on the same
# records, with and without SSNs. Pairwise precision, recall and F1 of the
# profiles against the generator's truth, Kith's throughput on one core, and
# sequence neutrality (another arrival order gives the same export).
#
# Runs target/release/kith-runner (built if missing; `make bench` builds it
# first). The generator needs only Python's standard library; Splink runs in
# the virtualenv target/persons-venv made once from
# runner/benches/persons/requirements.txt (see lib.sh). Everything it writes is under
# target/persons:
#
#   persons.jsonl, persons-nossn.jsonl, persons-truth.jsonl   the workload
#   kith-<variant>/pipeline.yaml, model.json, state, export.jsonl, scores.json
#   (and, printed, the ceiling of ceiling.py: how many true pairs any
#   resolver can reach without linking on names alone)
#   splink-<variant>.json                                      Splink's scores
#
#   PERSONS_PEOPLE   people simulated (default 20000)
#   PERSONS_SPLINK   0 to leave Splink out (default 1; its virtualenv is still made)
#   KITH_RUNNER      the runner binary (default target/release/kith-runner)
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=${KITH_RUNNER:-target/release/kith-runner}
people=${PERSONS_PEOPLE:-20000}
with_splink=${PERSONS_SPLINK:-1}
here=runner/benches/persons
out=target/persons
venv=target/persons-venv
requirements=$here/requirements.txt
seed=1
other_seed=2

mkdir -p "$out"
# The machine, the runner (built if missing) and the virtualenv, as the
# other benchmarks report and make them.
steps=""
bench=$out
helper=""
name=persons
# shellcheck source=runner/benches/lib.sh
. runner/benches/lib.sh
# One core for the runner, as the throughput figure claims.
pin=()
if command -v taskset > /dev/null; then pin=(taskset -c 0); fi

python3 "$here/generate.py" --people "$people" --seed "$seed" \
  --output "$out/persons.jsonl" --truth "$out/persons-truth.jsonl"
python3 "$here/generate.py" --people "$people" --seed "$seed" --no-ssn \
  --output "$out/persons-nossn.jsonl"
records=$(wc -l < "$out/persons.jsonl")

kith() { # variant observations -> sets $summary, $scores, $train_s
  local variant=$1 obs=$2 dir=$out/kith-$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$here/pipeline.yaml" "$dir/pipeline.yaml"
  local start
  start=$(date +%s.%N)
  "$runner" train "$dir/pipeline.yaml" --input "$obs" --output "$dir/model.json" 2> "$dir/train.log"
  train_s=$(python3 -c "import sys; print(round($(date +%s.%N) - $start, 2))")
  summary=$("${pin[@]}" "$runner" run "$dir/pipeline.yaml" --input "$obs" --state "$dir/state" --exit-at-end | tail -n 1)
  echo "$summary" > "$dir/run.json"
  "$runner" export --state "$dir/state" | sort > "$dir/export.jsonl"
  scores=$("$runner" evaluate --export "$dir/export.jsonl" --truth "$out/persons-truth.jsonl")
  echo "$scores" > "$dir/scores.json"
  echo "kith $variant: train ${train_s}s (report in $dir/train.log); run $summary"
  echo "kith $variant: accuracy $scores"
}

rows=()
ceilings=()
for variant in nossn ssn; do
  if [ "$variant" = nossn ]; then obs=$out/persons-nossn.jsonl; else obs=$out/persons.jsonl; fi
  ceiling=$(python3 "$here/ceiling.py" --input "$obs" --truth "$out/persons-truth.jsonl")
  ssn=$([ "$variant" = ssn ] && echo with || echo without)
  ceilings+=("$ssn SSNs: $(field "$ceiling" reachable) of $(field "$ceiling" pairs) true pairs reachable without name-only links; for a resolver that makes none, recall at most $(field "$ceiling" recall 4), F1 at most $(field "$ceiling" f1 4)")
  kith "$variant" "$obs"
  rows+=("| Kith | $ssn | $(field "$scores" precision 4) | $(field "$scores" recall 4) | $(field "$scores" f1 4) | $(field "$summary" observations_per_s 0) records/s, one core |")
  if [ "$with_splink" = 1 ]; then
    "$venv/bin/python" "$here/splink_baseline.py" --input "$obs" --truth "$out/persons-truth.jsonl" \
      --output "$out/splink-$variant.json" > /dev/null 2> "$out/splink-$variant.log"
    splink=$(cat "$out/splink-$variant.json")
    best=$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])["best"]))' "$splink")
    rows+=("| Splink 5 (best threshold $(field "$best" threshold)) | $ssn | $(field "$best" precision 4) | $(field "$best" recall 4) | $(field "$best" f1 4) | $(field "$splink" seconds 1) s in all |")
  fi
done

# Another arrival order: same records, shuffled with another seed.
base=$out/kith-nossn
python3 - "$out/persons-nossn.jsonl" "$other_seed" > "$out/persons-nossn-seed$other_seed.jsonl" <<'PY'
import random, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
random.Random(int(sys.argv[2])).shuffle(lines)
print("\n".join(lines))
PY
rm -rf "$base/state-seed$other_seed"
"$runner" run "$base/pipeline.yaml" --input "$out/persons-nossn-seed$other_seed.jsonl" --state "$base/state-seed$other_seed" --exit-at-end > /dev/null
"$runner" export --state "$base/state-seed$other_seed" | sort > "$base/export-seed$other_seed.jsonl"
if cmp -s "$base/export.jsonl" "$base/export-seed$other_seed.jsonl"; then neutral=identical; else neutral=DIFFERENT; fi

echo
echo "persons: $people people, $records records (seed $seed)"
echo "| tool | SSN | precision | recall | F1 | speed |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
printf 'ceiling, %s\n' "${ceilings[@]}"
echo
echo "another arrival order (seed $other_seed): export $neutral"
[ "$neutral" = identical ]
