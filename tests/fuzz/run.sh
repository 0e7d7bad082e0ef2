#!/usr/bin/env bash
# make fuzz: every libFuzzer target of fuzz/ for FUZZ_SECONDS each (default
# 60), starting from the checked-in corpus fuzz/corpus/TARGET. New inputs
# that reach new code are added to that folder (minimize them with
# FUZZ_MINIMIZE=1 before committing); a crash is saved under
# fuzz/artifacts/TARGET/ and fails the run. Prints one line per target:
# executions, corpus size, crashes.
#
# Needs the nightly toolchain (rustup toolchain list) and cargo-fuzz, which
# is installed into ~/.cargo/bin on first use. The default build stays on
# stable: nothing else uses nightly.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"observation template phone pipeline_file"}
cargo_fuzz_version=0.13.2
if ! cargo +nightly fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  cargo +stable install --locked cargo-fuzz --version "$cargo_fuzz_version" || exit 1
fi
mkdir -p target/fuzz
failed=0
summary=target/fuzz/summary.txt
: > "$summary"
for t in $targets; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log=target/fuzz/$t.log
  # -rss_limit_mb and -timeout bound memory and time per input: going over
  # either is a finding, like a panic.
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) > "$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  if [ "${FUZZ_MINIMIZE:-0}" = 1 ]; then
    (cd fuzz && cargo +nightly fuzz cmin "$t" "corpus/$t") >> "$log" 2>&1
  fi
  size=$(find "$corpus" -type f | wc -l)
  line="fuzz $t: ${execs:-0} executions in ${seconds}s, corpus $size inputs, crashes $crashes (exit $status, log $log)"
  echo "$line" | tee -a "$summary"
  if [ "$status" != 0 ] || [ "$crashes" != 0 ]; then failed=1; fi
done
exit $failed
