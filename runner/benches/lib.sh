# Helpers shared by the benchmarks that drive the runner against the test
# services (kafka.sh, sinks.sh). Sourced after the caller has set `steps`,
# `runner`, `bench`, `venv`, `requirements`, `helper` and `name` (for
# messages), and has done `cd` to the repository root.

has_step() { [[ " $steps " == *" $1 "* ]]; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
# A field of a JSON object, rounded to N decimals (no N: as is; "-" when
# absent or when the text is not an object).
field() {
  python3 -c 'import json, sys
try:
    v = json.loads(sys.argv[1]).get(sys.argv[2], "-")
except (ValueError, AttributeError):
    v = "-"
if len(sys.argv) > 3 and isinstance(v, (int, float)):
    v = f"{v:,.{int(sys.argv[3])}f}"
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$@"
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) memory, $(uname -sr), load average $(load)"

if [ ! -x "$runner" ]; then
  echo "$name bench: $runner not found; building it (cargo build --release --locked -p kith-runner)"
  cargo build --release --locked -p kith-runner
fi
echo "runner: $runner ($("$runner" --version)); source tree: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(git status --porcelain -- runner api 2>/dev/null | wc -l) changed files under runner/ and api/"

# The virtualenv, made once. The stamp (a copy of the requirements it was made
# from) is written last, so an interrupted install is redone on the next run.
if ! cmp -s "$requirements" "$venv/requirements.installed"; then
  echo "$name bench: making the virtualenv $venv (pip install -r $requirements)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.installed"
fi
py() { "$venv/bin/python" "$helper" "$@"; }
# people -> $bench/obs-<people>.jsonl (and its truth), as engine.sh makes them
workload() {
  local n=$1
  if [ ! -s "$bench/obs-$n.jsonl" ]; then
    local t0
    t0=$(now)
    "$runner" generate --people "$n" --seed 42 --truth "$bench/truth-$n.jsonl.tmp" > "$bench/obs-$n.jsonl.tmp"
    mv "$bench/truth-$n.jsonl.tmp" "$bench/truth-$n.jsonl"
    mv "$bench/obs-$n.jsonl.tmp" "$bench/obs-$n.jsonl"
    echo "workload: generated $bench/obs-$n.jsonl in $(since "$t0") s" >&2
  fi
  echo "$bench/obs-$n.jsonl"
}

# `timed FILE COMMAND...`: runs COMMAND, writing its CPU time and the whole
# machine's to FILE (see kafka_produce.py). In the background, start
# "$venv/bin/python" "$helper" timed directly, so that $! is the process that
# passes SIGTERM on.
timed() { "$venv/bin/python" "$helper" timed --output "$1" -- "${@:2}"; }
cpu() { # FILE -> one line on how much of the machine the command had
  python3 -c 'import json, sys
try:
    c = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("cpu: not measured"); sys.exit()
cap = c["machine_cores"] * c["wall_s"]
print("cpu: the runner {cpu_s:.1f} s (user {user_s:.1f}, sys {sys_s:.1f}) in {wall_s:.1f} s wall;".format(**c),
      "the machine was busy {machine_busy_s:.1f} of {cap:.1f} core-seconds, {others_busy_s:.1f} of them other processes;".format(cap=cap, **c),
      "threads of the runner: " + ", ".join(f"{k} {v:.1f} s" for k, v in c.get("threads_cpu_s", {}).items() if v >= 0.05))' "$1"
}

