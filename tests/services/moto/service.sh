# moto server: DynamoDB and S3 (and the rest of moto's AWS mocks) on one
# loopback HTTP port. Sourced by up.sh/down.sh after lib.sh.

MOTO_PORT="${KITH_MOTO_PORT:-15000}"
MOTO_REQS=tests/services/moto/requirements.txt
MOTO_VENV="$KITH_CACHE/moto-venv"

# Install once into a venv under the cache; reinstall when requirements.txt
# changes (its copy in the venv is the marker of a finished install).
moto_install() {
  if [[ -x $MOTO_VENV/bin/moto_server ]] && cmp -s "$MOTO_REQS" "$MOTO_VENV/.kith-requirements.txt"; then
    return 0
  fi
  local t0; t0=$(date +%s.%N)
  log "moto: installing $(grep -v '^#' "$MOTO_REQS" | xargs) into $MOTO_VENV"
  mkdir -p "$KITH_CACHE"
  python3 -m venv "$MOTO_VENV" || die "moto: python3 -m venv $MOTO_VENV failed"
  "$MOTO_VENV/bin/pip" install -q -r "$MOTO_REQS" \
    || die "moto: pip install -r $MOTO_REQS failed (see pip's output above)"
  cp "$MOTO_REQS" "$MOTO_VENV/.kith-requirements.txt"
  log "moto: installed in $(elapsed "$t0") s"
}

# Ready = a DynamoDB ListTables answers 200. moto does not check signatures,
# but botocore-style clients always send one, so send a SigV4-shaped header.
moto_ready() {
  curl -sf -o /dev/null --max-time 3 -X POST "http://127.0.0.1:$MOTO_PORT/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000' \
    -d '{}'
}

moto_up() {
  local dir="$SERVICES_DIR/moto" logfile pid t0 i
  logfile="$dir/moto.log"
  if pid=$(live_pid moto) && moto_ready; then
    log "moto: already up (pid $pid, port $MOTO_PORT)"
  else
    [[ -n ${pid:-} ]] && die "moto: pid $pid is alive but does not answer on $MOTO_PORT; see $logfile, or run tests/services/down.sh"
    port_open "$MOTO_PORT" && die "moto: port $MOTO_PORT is taken by a process up.sh did not start; stop it or set KITH_MOTO_PORT"
    moto_install
    mkdir -p "$dir"
    t0=$(date +%s.%N)
    log "moto: starting on 127.0.0.1:$MOTO_PORT (log $logfile)"
    spawn moto "$logfile" "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
    pid=$(<"$SERVICES_DIR/moto.pid")
    # Bounded wait: 30 s is ample (it answers in ~1-2 s).
    for ((i = 0; i < 60; i++)); do
      moto_ready && break
      kill -0 "$pid" 2>/dev/null || die "moto: exited during start-up; see $logfile"
      sleep 0.5
    done
    moto_ready || die "moto: no answer to DynamoDB ListTables on 127.0.0.1:$MOTO_PORT after 30 s; see $logfile"
    log "moto: up in $(elapsed "$t0") s (pid $pid)"
  fi
  env_set DYNAMODB_ENDPOINT "http://127.0.0.1:$MOTO_PORT"
  env_set S3_ENDPOINT "http://127.0.0.1:$MOTO_PORT"
  # moto accepts any credentials, but the AWS SDKs refuse to sign without some.
  env_set AWS_ACCESS_KEY_ID test
  env_set AWS_SECRET_ACCESS_KEY test
  env_set AWS_REGION us-east-1
  # boto3 comes with moto: tests read tables back through it as a second,
  # independent client (runner/tests/support/boto3_scan.py).
  env_set MOTO_PYTHON "$MOTO_VENV/bin/python"
}

moto_down() {
  stop_pid moto
  rm -rf "$SERVICES_DIR/moto"
  env_unset DYNAMODB_ENDPOINT
  env_unset S3_ENDPOINT
  env_unset AWS_ACCESS_KEY_ID
  env_unset AWS_SECRET_ACCESS_KEY
  env_unset AWS_REGION
  env_unset MOTO_PYTHON
}
