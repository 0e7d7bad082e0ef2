# Apache Kafka, KRaft mode, one node that is both broker and controller, from
# Maven Central jars (no distribution tarball: only registries are reachable).
# Sourced by up.sh/down.sh after lib.sh.

KAFKA_PORT="${KITH_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KITH_KAFKA_CONTROLLER_PORT:-19093}"
# The listener clients reach with TLS and SCRAM-SHA-512 credentials, the way
# managed and Strimzi clusters are usually run.
KAFKA_SECURE_PORT="${KITH_KAFKA_SECURE_PORT:-19094}"
KAFKA_SCRAM_USER=kith
KAFKA_POM=tests/services/kafka/pom.xml
# Single source of the version: the pom's <kafka.version> property.
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
KAFKA_LIBS="$KITH_CACHE/kafka-$KAFKA_VERSION/libs"
# Fixed cluster id (any 16-byte base64url uuid): the data dir is throwaway and
# a fixed id keeps re-formatting deterministic.
KAFKA_CLUSTER_ID=a2l0aC10ZXN0LWthZmthAA
KAFKA_HEAP_OPTS="${KITH_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

# Fetch broker + tools jars once. The pom's copy next to the libs marks a
# finished download; a changed pom (new version, new artifact) fetches again.
kafka_install() {
  [[ -n $KAFKA_VERSION ]] || die "kafka: no <kafka.version> in $KAFKA_POM"
  if [[ -d $KAFKA_LIBS ]] && cmp -s "$KAFKA_POM" "$KAFKA_LIBS/../pom.xml"; then
    return 0
  fi
  command -v mvn >/dev/null || die "kafka: mvn not found (needed once to fetch the Kafka jars)"
  command -v java >/dev/null || die "kafka: java not found (Kafka $KAFKA_VERSION needs Java 17+)"
  local t0 tmp; t0=$(date +%s.%N)
  log "kafka: fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  # Download into a temp dir and rename, so an interrupted fetch never leaves a
  # half-filled libs dir that looks complete.
  tmp=$(mktemp -d "$KAFKA_LIBS.tmp.XXXXXX")
  # mvn's own output goes to a log (it is noisy even with -q); shown on failure.
  local mvnlog="$KITH_CACHE/kafka-$KAFKA_VERSION/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$mvnlog" >&2
    die "kafka: mvn dependency:copy-dependencies on $KAFKA_POM failed; full output in $mvnlog"
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  cp "$KAFKA_POM" "$KAFKA_LIBS/../pom.xml"
  log "kafka: fetched $(ls "$KAFKA_LIBS" | wc -l) jars in $(elapsed "$t0") s"
}

# Run a Kafka CLI class from the cached jars, quietly (warnings on stderr).
# KAFKA_TOOL_TIMEOUT=N bounds it (an admin client retries for 60 s by default).
kafka_tool() {
  local bound=()
  [[ -n ${KAFKA_TOOL_TIMEOUT:-} ]] && bound=(timeout "$KAFKA_TOOL_TIMEOUT")
  "${bound[@]}" java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$PWD/tests/services/kafka/tools-log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Ready = the broker answers a metadata request (listing topics), not merely
# that the port is open: the port opens before the controller has elected
# itself and the broker has registered.
kafka_ready() {
  port_open "$KAFKA_PORT" || return 1
  KAFKA_TOOL_TIMEOUT=20 kafka_tool org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

kafka_write_config() {
  local dir=$1
  cat >"$dir/server.properties" <<PROPS
# Written by tests/services/kafka/service.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SECURE_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SECURE_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
# SASL_SSL: TLS with the certificate kafka_tls issues, SCRAM-SHA-512 users
# (created when the storage is formatted).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$PWD/$dir/tls/server.pem
log.dirs=$PWD/$dir/data
num.partitions=3
auto.create.topics.enable=true
# One node: every internal topic must make do with one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join consumer groups often: do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0
PROPS
}

# A throwaway CA and a server certificate for 127.0.0.1/localhost, issued
# once per data dir with the openssl command line. The keystore is one PEM
# file: the (unencrypted PKCS#8) key and the certificate chain.
kafka_tls() {
  local tls=$1/tls
  [[ -f $tls/server.pem && -f $tls/ca.crt ]] && return 0
  command -v openssl >/dev/null || die "kafka: openssl not found (needed to issue the test broker's certificate)"
  mkdir -p "$tls"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kith test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.crt" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$tls/server.key.pem" -out "$tls/server.csr" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext" &&
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$tls/san.ext" -out "$tls/server.crt" &&
    openssl pkcs8 -topk8 -nocrypt -in "$tls/server.key.pem" -out "$tls/server.p8"
  } >>"$1/kafka.log" 2>&1 || die "kafka: issuing the test certificate failed; see $1/kafka.log"
  cat "$tls/server.p8" "$tls/server.crt" "$tls/ca.crt" >"$tls/server.pem"
}

kafka_up() {
  local dir="$SERVICES_DIR/kafka" logfile pid t0 i
  logfile="$dir/kafka.log"
  if pid=$(live_pid kafka) && port_open "$KAFKA_PORT"; then
    log "kafka: already up (pid $pid, port $KAFKA_PORT)"
  else
    [[ -n ${pid:-} ]] && die "kafka: pid $pid is alive but port $KAFKA_PORT is closed; see $logfile, or run tests/services/down.sh"
    port_open "$KAFKA_PORT" && die "kafka: port $KAFKA_PORT is taken by a process up.sh did not start; stop it or set KITH_KAFKA_PORT"
    port_open "$KAFKA_CONTROLLER_PORT" && die "kafka: controller port $KAFKA_CONTROLLER_PORT is taken; stop that process or set KITH_KAFKA_CONTROLLER_PORT"
    kafka_install
    port_open "$KAFKA_SECURE_PORT" && die "kafka: SASL_SSL port $KAFKA_SECURE_PORT is taken; stop that process or set KITH_KAFKA_SECURE_PORT"
    mkdir -p "$dir/data"
    kafka_tls "$dir"
    kafka_write_config "$dir"
    t0=$(date +%s.%N)
    # Format once per data dir (down.sh removes it, so each up is a clean
    # log), with the SCRAM user and a password made for this data dir.
    if [[ ! -f $dir/data/meta.properties ]]; then
      od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/scram-password"
      kafka_tool kafka.tools.StorageTool format --ignore-formatted \
          -t "$KAFKA_CLUSTER_ID" -c "$dir/server.properties" \
          --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$(<"$dir/scram-password")]" >>"$logfile" 2>&1 \
        || die "kafka: formatting storage in $dir/data failed; see $logfile"
    fi
    log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log $logfile)"
    spawn kafka "$logfile" java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$PWD/tests/services/kafka/log4j2.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
    pid=$(<"$SERVICES_DIR/kafka.pid")
  fi
  # Bounded wait, also when already up (it may still be starting): 60 s.
  t0=${t0:-$(date +%s.%N)}
  local deadline=$((SECONDS + 60))
  until kafka_ready; do
    kill -0 "$pid" 2>/dev/null || die "kafka: broker exited during start-up; see $logfile"
    ((SECONDS < deadline)) || die "kafka: no answer to a metadata request on 127.0.0.1:$KAFKA_PORT after 60 s; see $logfile"
    sleep 1
  done
  log "kafka: answers metadata requests, $(elapsed "$t0") s after start or check (pid $pid)"
  env_set KAFKA_BOOTSTRAP "127.0.0.1:$KAFKA_PORT"
  [[ -f $dir/scram-password ]] || die "kafka: $dir/scram-password is missing (a broker started by an older up.sh?); run tests/services/down.sh kafka and start it again"
  env_set KAFKA_SECURE_BOOTSTRAP "127.0.0.1:$KAFKA_SECURE_PORT"
  env_set KAFKA_CA_FILE "$PWD/$dir/tls/ca.crt"
  env_set KAFKA_SCRAM_USER "$KAFKA_SCRAM_USER"
  env_set KAFKA_SCRAM_PASSWORD "$(<"$dir/scram-password")"
}

kafka_down() {
  stop_pid kafka
  rm -rf "$SERVICES_DIR/kafka"
  env_unset KAFKA_BOOTSTRAP
  env_unset KAFKA_SECURE_BOOTSTRAP
  env_unset KAFKA_CA_FILE
  env_unset KAFKA_SCRAM_USER
  env_unset KAFKA_SCRAM_PASSWORD
}
