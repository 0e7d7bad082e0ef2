# Shared helpers for tests/services/{up,down}.sh. Sourced, not run.
# Callers have already done `cd` to the repo root and `set -euo pipefail`.

SERVICES_DIR=target/services          # pid files, data and logs (per service)
SERVICES_ENV=target/services.env      # KEY=value lines for tests and `make`
KITH_CACHE="${KITH_CACHE:-$HOME/.cache/kith}"   # downloads survive `cargo clean`

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1. Uses bash's
# /dev/tcp so it needs neither nc nor curl; `timeout` bounds a hung connect.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Pid recorded for service $1 if that process is still alive, else nothing
# (and a stale pid file is removed so the next start is clean).
live_pid() {
  local pidfile="$SERVICES_DIR/$1.pid" pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
  else
    rm -f "$pidfile"
    return 1
  fi
}

#   spawn NAME LOGFILE cmd args...
# Starts cmd detached in its own session (so a Ctrl-C in the calling make, or
# the end of the shell that ran up.sh, does not take it down), appending its
# output to LOGFILE, and writes target/services/NAME.pid. The pid is the service process itself (setsid does not
# fork when its caller is not a process-group leader, which a background job
# of a non-interactive shell never is).
spawn() {
  local name=$1 logfile=$2; shift 2
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$SERVICES_DIR/$name.pid"
}

# Set KEY=VALUE in target/services.env, keeping every other line (so starting
# one service does not drop another's entries).
env_set() {
  local key=$1 value=$2 tmp
  mkdir -p "$(dirname "$SERVICES_ENV")"
  touch "$SERVICES_ENV"
  tmp=$(mktemp "$SERVICES_ENV.XXXXXX")
  grep -v "^$key=" "$SERVICES_ENV" >"$tmp" || true
  printf '%s=%s\n' "$key" "$value" >>"$tmp"
  mv "$tmp" "$SERVICES_ENV"
}

# Remove KEY from target/services.env (down.sh), and the file once empty.
env_unset() {
  local key=$1 tmp
  [[ -f $SERVICES_ENV ]] || return 0
  tmp=$(mktemp "$SERVICES_ENV.XXXXXX")
  grep -v "^$key=" "$SERVICES_ENV" >"$tmp" || true
  mv "$tmp" "$SERVICES_ENV"
  [[ -s $SERVICES_ENV ]] || rm -f "$SERVICES_ENV"
}

# Stop the process in service $1's pid file: TERM, up to 30 s for a clean
# shutdown (Kafka flushes its logs), then KILL. Only the recorded pid is
# signalled, never a name pattern.
stop_pid() {
  local name=$1 pid i
  pid=$(live_pid "$name") || { log "$name: not running"; return 0; }
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: pid $pid ignored TERM for 30 s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$SERVICES_DIR/$name.pid"
}

# Seconds since $1 (an epoch from `date +%s.%N`), one decimal.
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# Every service: a folder tests/services/<name>/ whose service.sh defines
# <name>_up and <name>_down. A new service is added here only.
ALL_SERVICES=(kafka moto kube gremlin)
for s in "${ALL_SERVICES[@]}"; do
  # shellcheck source=/dev/null
  source "tests/services/$s/service.sh"
done

# The services named on the command line (all when none), checked.
selected_services() {
  local s
  SELECTED=("$@")
  ((${#SELECTED[@]})) || SELECTED=("${ALL_SERVICES[@]}")
  for s in "${SELECTED[@]}"; do
    [[ " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
  done
}
