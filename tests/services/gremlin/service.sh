# Apache TinkerPop Gremlin Server over an empty in-memory TinkerTransactionGraph,
# HTTP (and WebSocket) on one loopback port: the stand-in for Amazon Neptune.
# Run from Maven Central jars (no distribution download: only registries are
# reachable). Sourced by up.sh/down.sh after lib.sh.

GREMLIN_PORT="${KITH_GREMLIN_PORT:-18182}"
GREMLIN_POM=tests/services/gremlin/pom.xml
# Single source of the version: the pom's <tinkerpop.version> property.
GREMLIN_VERSION=$(sed -n 's:.*<tinkerpop.version>\(.*\)</tinkerpop.version>.*:\1:p' "$GREMLIN_POM")
GREMLIN_LIBS="$KITH_CACHE/gremlin-$GREMLIN_VERSION/libs"
GREMLIN_HEAP_OPTS="${KITH_GREMLIN_HEAP_OPTS:--Xms128m -Xmx768m}"

# Fetch the server jars once. The pom's copy next to the libs marks a finished
# download; a changed pom (new version, new artifact) fetches again.
gremlin_install() {
  [[ -n $GREMLIN_VERSION ]] || die "gremlin: no <tinkerpop.version> in $GREMLIN_POM"
  if [[ -d $GREMLIN_LIBS ]] && cmp -s "$GREMLIN_POM" "$GREMLIN_LIBS/../pom.xml"; then
    return 0
  fi
  command -v mvn >/dev/null || die "gremlin: mvn not found (needed once to fetch the Gremlin Server jars)"
  command -v java >/dev/null || die "gremlin: java not found (Gremlin Server $GREMLIN_VERSION needs Java 11 or 17)"
  local t0 tmp; t0=$(date +%s.%N)
  log "gremlin: fetching Gremlin Server $GREMLIN_VERSION jars from Maven Central into $GREMLIN_LIBS"
  mkdir -p "$(dirname "$GREMLIN_LIBS")"
  # Download into a temp dir and rename, so an interrupted fetch never leaves a
  # half-filled libs dir that looks complete.
  tmp=$(mktemp -d "$GREMLIN_LIBS.tmp.XXXXXX")
  # mvn's own output goes to a log (it is noisy even with -q); shown on failure.
  local mvnlog="$KITH_CACHE/gremlin-$GREMLIN_VERSION/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$GREMLIN_POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$mvnlog" >&2
    die "gremlin: mvn dependency:copy-dependencies on $GREMLIN_POM failed; full output in $mvnlog"
  fi
  rm -rf "$GREMLIN_LIBS"
  mv "$tmp" "$GREMLIN_LIBS"
  cp "$GREMLIN_POM" "$GREMLIN_LIBS/../pom.xml"
  log "gremlin: fetched $(ls "$GREMLIN_LIBS" | wc -l) jars in $(elapsed "$t0") s"
}

# Ready = a traversal is evaluated and answered with 200, as a client's
# POST /gremlin is, not merely that the port is open (the port opens once the
# script engines are initialised; the first request still compiles Groovy).
gremlin_ready() {
  curl -sf -o /dev/null --max-time 5 -X POST "http://127.0.0.1:$GREMLIN_PORT/gremlin" \
    -H 'Content-Type: application/json' -d '{"gremlin": "g.V().limit(1).count()"}'
}

gremlin_write_config() {
  local dir=$1
  # The graph: empty, in memory, with transactions (plain TinkerGraph has
  # none), ids as the client gives them (strings stay strings, so
  # mergeV([(T.id): 'abc']) and g.V('abc') work as on Neptune), and Neptune's
  # default cardinality: property(k, v) without Cardinality.single adds v to
  # a set (TinkerGraph's own default is list).
  cat >"$dir/graph.properties" <<PROPS
# Written by tests/services/gremlin/service.sh; rewritten on every start.
gremlin.graph=org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerTransactionGraph
gremlin.tinkergraph.vertexIdManager=ANY
gremlin.tinkergraph.edgeIdManager=ANY
gremlin.tinkergraph.vertexPropertyIdManager=LONG
gremlin.tinkergraph.defaultVertexPropertyCardinality=set
PROPS
  cat >"$dir/gremlin-server.yaml" <<YAML
# Written by tests/services/gremlin/service.sh; rewritten on every start.
host: 127.0.0.1
port: $GREMLIN_PORT
# HTTP POST /gremlin (what Neptune's HTTP endpoint takes) and WebSocket
# (what the drivers use) on the same port.
channelizer: org.apache.tinkerpop.gremlin.server.channel.WsAndHttpChannelizer
graphs: {
  graph: $PWD/$dir/graph.properties}
# A request names its engine with "language": gremlin-groovy (the default)
# or gremlin-lang (the grammar-only engine, no Groovy).
scriptEngines: {
  gremlin-groovy: {
    plugins: { org.apache.tinkerpop.gremlin.server.jsr223.GremlinServerGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.tinkergraph.jsr223.TinkerGraphGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.jsr223.ScriptFileGremlinPlugin: {files: [$PWD/tests/services/gremlin/init.groovy]}}},
  gremlin-lang: {}}
serializers:
  # application/json and application/vnd.gremlin-v3.0+json: typed GraphSON 3, as Neptune answers HTTP.
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphSONMessageSerializerV3, config: { ioRegistries: [org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerIoRegistryV3] }}
  # application/vnd.gremlin-v3.0+json;types=false
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphSONUntypedMessageSerializerV3, config: { ioRegistries: [org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerIoRegistryV3] }}
  # application/vnd.graphbinary-v1.0 (drivers over WebSocket)
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphBinaryMessageSerializerV1 }
# One request is one transaction: committed when it succeeds, rolled back when
# it fails.
strictTransactionManagement: false
evaluationTimeout: 30000
# Requests carry a few hundred upserts: allow 16 MB bodies.
maxContentLength: 16777216
maxInitialLineLength: 4096
maxHeaderSize: 8192
maxChunkSize: 8192
maxAccumulationBufferComponents: 1024
resultIterationBatchSize: 64
ssl: {
  enabled: false}
YAML
}

gremlin_up() {
  local dir="$SERVICES_DIR/gremlin" logfile pid t0
  logfile="$dir/gremlin.log"
  if pid=$(live_pid gremlin) && port_open "$GREMLIN_PORT"; then
    log "gremlin: already up (pid $pid, port $GREMLIN_PORT)"
  else
    [[ -n ${pid:-} ]] && die "gremlin: pid $pid is alive but port $GREMLIN_PORT is closed; see $logfile, or run tests/services/down.sh"
    port_open "$GREMLIN_PORT" && die "gremlin: port $GREMLIN_PORT is taken by a process up.sh did not start; stop it or set KITH_GREMLIN_PORT"
    gremlin_install
    mkdir -p "$dir"
    gremlin_write_config "$dir"
    t0=$(date +%s.%N)
    log "gremlin: starting Gremlin Server $GREMLIN_VERSION on 127.0.0.1:$GREMLIN_PORT (log $logfile)"
    # -Xss8m: Groovy compiles a traversal chain recursively. With the default
    # 1 MB stack a script of one traversal chaining 200 mergeV() steps now and
    # then got no answer at all (a stack overflow, whose error has no message:
    # Gremlin Server 3.7 never answers those); with 8 MB it always compiles.
    spawn gremlin "$logfile" java $GREMLIN_HEAP_OPTS -Xss8m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlogback.configurationFile="$PWD/tests/services/gremlin/logback.xml" \
      -cp "$GREMLIN_LIBS/*" org.apache.tinkerpop.gremlin.server.GremlinServer "$dir/gremlin-server.yaml"
    pid=$(<"$SERVICES_DIR/gremlin.pid")
  fi
  # Bounded wait, also when already up (it may still be starting): 60 s.
  t0=${t0:-$(date +%s.%N)}
  local deadline=$((SECONDS + 60))
  until gremlin_ready; do
    kill -0 "$pid" 2>/dev/null || die "gremlin: server exited during start-up; see $logfile"
    ((SECONDS < deadline)) || die "gremlin: no answer to POST /gremlin on 127.0.0.1:$GREMLIN_PORT after 60 s; see $logfile"
    sleep 0.5
  done
  log "gremlin: answers POST /gremlin, $(elapsed "$t0") s after start or check (pid $pid)"
  env_set NEPTUNE_ENDPOINT "http://127.0.0.1:$GREMLIN_PORT"
}

gremlin_down() {
  stop_pid gremlin
  rm -rf "$SERVICES_DIR/gremlin"
  env_unset NEPTUNE_ENDPOINT
}
