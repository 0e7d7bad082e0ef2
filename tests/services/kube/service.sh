# A Kubernetes control plane for tests, the way envtest runs one: etcd and
# kube-apiserver only (no kubelet, controller-manager or scheduler), on
# loopback, with an admin client certificate. The binaries (and a kubectl from
# the same release) are built from their Go modules once and cached.
# Sourced by up.sh/down.sh after lib.sh.

KUBE_PORT="${KITH_KUBE_PORT:-16443}"
ETCD_PORT="${KITH_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${KITH_ETCD_PEER_PORT:-12380}"
KUBE_BUILD=tests/services/kube/build
# Single source of the versions: the build module's go.mod (written by
# kube/gen-build-module.sh).
KUBE_VERSION=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$KUBE_BUILD/go.mod")
ETCD_VERSION=$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2 }' "$KUBE_BUILD/go.mod")
KUBE_HOME="$KITH_CACHE/kube-$KUBE_VERSION"
[[ $KUBE_HOME == /* ]] || KUBE_HOME="$PWD/$KUBE_HOME"   # KUBECTL must be absolute
KUBE_BIN="$KUBE_HOME/bin"
KUBE_DIR="$SERVICES_DIR/kube"
KUBE_URL="https://127.0.0.1:$KUBE_PORT"
# The first address of --service-cluster-ip-range: the `kubernetes` Service.
KUBE_SERVICE_CIDR=10.0.0.0/24
KUBE_SERVICE_IP=10.0.0.1

# Build kube-apiserver, kubectl and etcd once. The copies of go.mod and go.sum
# next to bin/ mark a finished build; a changed build module (another etcd, a
# regenerated go.sum) builds again, another Kubernetes version goes to another
# directory.
kube_install() {
  [[ -n $KUBE_VERSION && -n $ETCD_VERSION ]] \
    || die "kube: no k8s.io/kubernetes or go.etcd.io/etcd/server/v3 version in $KUBE_BUILD/go.mod"
  if [[ -x $KUBE_BIN/kube-apiserver && -x $KUBE_BIN/kubectl && -x $KUBE_BIN/etcd ]] \
      && cmp -s "$KUBE_BUILD/go.mod" "$KUBE_HOME/go.mod" && cmp -s "$KUBE_BUILD/go.sum" "$KUBE_HOME/go.sum"; then
    return 0
  fi
  command -v go >/dev/null || die "kube: go not found (needed once to build kube-apiserver, kubectl and etcd; see $KUBE_BUILD/go.mod for the version)"
  local t0 tmp buildlog major minor xflags="" kv key val
  t0=$(date +%s.%N)
  mkdir -p "$KUBE_HOME"
  buildlog="$KUBE_HOME/build.log"
  : >"$buildlog"
  log "kube: building kube-apiserver, kubectl $KUBE_VERSION and etcd $ETCD_VERSION into $KUBE_BIN"
  log "kube: this happens once and takes 4-10 minutes on 2 cores (log $buildlog)"
  # Version stamps as kubernetes' hack/lib/version.sh sets them; without them
  # /version and `kubectl version` say v0.0.0-master.
  major=${KUBE_VERSION#v}; major=${major%%.*}
  minor=${KUBE_VERSION#v"$major".}; minor=${minor%%.*}
  for kv in "gitVersion=$KUBE_VERSION" "gitMajor=$major" "gitMinor=$minor" \
      gitTreeState=clean "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    key=${kv%%=*} val=${kv#*=}
    xflags+=" -X k8s.io/client-go/pkg/version.$key=$val -X k8s.io/component-base/version.$key=$val"
  done
  # Build into a temp dir and rename, so an interrupted build never leaves a
  # bin/ that looks complete.
  tmp=$(mktemp -d "$KUBE_BIN.tmp.XXXXXX")
  local target out
  for target in kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
      kubectl=k8s.io/kubernetes/cmd/kubectl etcd=go.etcd.io/etcd/server/v3; do
    out=${target%%=*}
    log "kube: go build ${target#*=} ($(elapsed "$t0") s so far)"
    # -mod=readonly: the committed go.sum must already cover everything.
    # GOFLAGS replaces the caller's on purpose (a -mod=vendor would break this).
    if ! (cd "$KUBE_BUILD" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -p=2" \
        go build -trimpath -ldflags="-s$xflags" -o "$tmp/$out" "${target#*=}") >>"$buildlog" 2>&1; then
      rm -rf "$tmp"
      tail -n 30 "$buildlog" >&2
      die "kube: go build ${target#*=} failed; full output in $buildlog"
    fi
  done
  rm -rf "$KUBE_BIN"
  mv "$tmp" "$KUBE_BIN"
  cp "$KUBE_BUILD/go.mod" "$KUBE_BUILD/go.sum" "$KUBE_HOME/"
  log "kube: built in $(elapsed "$t0") s: $(cd "$KUBE_BIN" && du -sh . | cut -f1) in $KUBE_BIN"
}

# A CA, the API server's serving certificate, the admin client certificate
# (O=system:masters: every RBAC check passes) and the service-account key
# pair, with openssl, into $KUBE_DIR/pki. Kept while the data is (down.sh
# removes both), so a running apiserver and its kubeconfig always match.
kube_pki() {
  local pki="$KUBE_DIR/pki"
  [[ -f $pki/admin.crt ]] && return 0
  command -v openssl >/dev/null || die "kube: openssl not found (needed to make the test certificates)"
  rm -rf "$pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    cat >ext.cnf <<EXT
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:$KUBE_SERVICE_IP, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EXT
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt -days 3650 \
      -sha256 -subj "/CN=kith-test-ca" -config ext.cnf -extensions ca
    # sign NAME SUBJECT EXTENSIONS-SECTION: NAME.key and NAME.crt from the CA.
    sign() {
      openssl req -new -nodes -newkey rsa:2048 -keyout "$1.key" -out "$1.csr" -subj "$2" -config ext.cnf
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -sha256 -extfile ext.cnf -extensions "$3" -out "$1.crt"
      rm -f "$1.csr"
    }
    sign apiserver /CN=kube-apiserver server
    sign admin /O=system:masters/CN=kith-admin client
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
  ) >>"$KUBE_DIR/pki.log" 2>&1 || die "kube: making certificates with openssl in $pki failed; see $KUBE_DIR/pki.log"
}

# An admin kubeconfig with everything inline, so it can be copied anywhere.
kube_write_kubeconfig() {
  local pki="$KUBE_DIR/pki" tmp
  tmp=$(mktemp "$KUBE_DIR/kubeconfig.XXXXXX")
  cat >"$tmp" <<YAML
# Written by tests/services/kube/service.sh: admin (system:masters) on the test
# API server. Valid until tests/services/down.sh kube.
apiVersion: v1
kind: Config
clusters:
- name: kith-test
  cluster:
    server: $KUBE_URL
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: kith-admin
  user:
    client-certificate-data: $(base64 -w0 "$pki/admin.crt")
    client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
- name: kith-test
  context:
    cluster: kith-test
    user: kith-admin
    namespace: default
current-context: kith-test
YAML
  mv "$tmp" "$KUBE_DIR/kubeconfig"
}

kube_kubectl() {
  "$KUBE_BIN/kubectl" --kubeconfig "$KUBE_DIR/kubeconfig" --request-timeout=5s "$@"
}

etcd_ready() {
  curl -sf --max-time 3 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

kube_ready() {
  [[ -f $KUBE_DIR/kubeconfig && -x $KUBE_BIN/kubectl ]] || return 1
  [[ $(kube_kubectl get --raw /readyz 2>/dev/null) == ok ]]
}

#   kube_wait NAME PID SECONDS READY-FUNCTION WHAT
kube_wait() {
  local name=$1 pid=$2 secs=$3 ready=$4 what=$5 deadline=$((SECONDS + $3))
  until "$ready"; do
    kill -0 "$pid" 2>/dev/null || die "kube: $name exited during start-up; see $KUBE_DIR/$name.log"
    ((SECONDS < deadline)) || die "kube: $name: no $what after $secs s; see $KUBE_DIR/$name.log"
    sleep 0.5
  done
}

kube_start_etcd() {
  local pid t0
  if pid=$(live_pid kube-etcd); then
    kube_wait etcd "$pid" 30 etcd_ready "healthy answer on http://127.0.0.1:$ETCD_PORT/health"
    return 0
  fi
  port_open "$ETCD_PORT" && die "kube: etcd client port $ETCD_PORT is taken by a process up.sh did not start; stop it or set KITH_ETCD_PORT"
  port_open "$ETCD_PEER_PORT" && die "kube: etcd peer port $ETCD_PEER_PORT is taken; stop that process or set KITH_ETCD_PEER_PORT"
  mkdir -p "$KUBE_DIR/etcd"
  t0=$(date +%s.%N)
  log "kube: starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT (log $KUBE_DIR/etcd.log)"
  # As envtest: one member, no fsync (the data is thrown away anyway).
  spawn kube-etcd "$KUBE_DIR/etcd.log" "$KUBE_BIN/etcd" \
    --name kith-test \
    --data-dir "$PWD/$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kith-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true \
    --log-level=warn
  pid=$(<"$SERVICES_DIR/kube-etcd.pid")
  kube_wait etcd "$pid" 30 etcd_ready "healthy answer on http://127.0.0.1:$ETCD_PORT/health"
  log "kube: etcd up in $(elapsed "$t0") s (pid $pid)"
}

kube_start_apiserver() {
  local pid t0 pki="$PWD/$KUBE_DIR/pki"
  if pid=$(live_pid kube-apiserver); then
    kube_wait apiserver "$pid" 120 kube_ready "'ok' from $KUBE_URL/readyz"
    log "kube: already up (apiserver pid $pid, $KUBE_URL)"
    return 0
  fi
  port_open "$KUBE_PORT" && die "kube: port $KUBE_PORT is taken by a process up.sh did not start; stop it or set KITH_KUBE_PORT"
  t0=$(date +%s.%N)
  log "kube: starting kube-apiserver $KUBE_VERSION on $KUBE_URL (log $KUBE_DIR/apiserver.log)"
  # The flags envtest (controller-runtime) gives its apiserver, with files
  # instead of its generated temp dir. ServiceAccount admission is off as in
  # envtest: without a controller-manager no `default` ServiceAccount appears,
  # and that plugin would refuse every Pod. Since 1.37 the endpoint reconciler
  # refuses a loopback --advertise-address (envtest sets none, so the host's
  # first address is advertised); with no reconciler the `kubernetes` Service
  # still exists but gets no endpoints, which nothing here needs.
  spawn kube-apiserver "$KUBE_DIR/apiserver.log" "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --secure-port "$KUBE_PORT" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --cert-dir "$pki" \
    --tls-cert-file "$pki/apiserver.crt" \
    --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer "$KUBE_URL" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount \
    --service-cluster-ip-range "$KUBE_SERVICE_CIDR" \
    --allow-privileged=true
  pid=$(<"$SERVICES_DIR/kube-apiserver.pid")
  kube_wait apiserver "$pid" 120 kube_ready "'ok' from $KUBE_URL/readyz"
  # The apiserver's own bootstrap controller creates `default` (and
  # kube-system, kube-public) just after it is ready; make sure of it.
  local i
  for ((i = 0; i < 20; i++)); do
    kube_kubectl get namespace default >/dev/null 2>&1 && break
    sleep 0.5
  done
  kube_kubectl get namespace default >/dev/null 2>&1 \
    || kube_kubectl create namespace default >>"$KUBE_DIR/apiserver.log" 2>&1 \
    || die "kube: namespace default neither appeared nor could be created; see $KUBE_DIR/apiserver.log"
  log "kube: apiserver ready in $(elapsed "$t0") s (pid $pid)"
}

kube_up() {
  local t0; t0=$(date +%s.%N)
  kube_install
  mkdir -p "$KUBE_DIR"
  # A running apiserver keeps the certificates it started with: only make new
  # ones (and a new kubeconfig) when neither process runs.
  if ! live_pid kube-apiserver >/dev/null && ! live_pid kube-etcd >/dev/null; then
    rm -rf "$KUBE_DIR/pki" "$KUBE_DIR/kubeconfig"
  fi
  kube_pki
  kube_write_kubeconfig
  kube_start_etcd
  kube_start_apiserver
  env_set KUBECONFIG "$PWD/$KUBE_DIR/kubeconfig"
  env_set KUBECTL "$KUBE_BIN/kubectl"
  env_set KUBE_APISERVER "$KUBE_URL"
  # For a second, empty API server over the same etcd (another prefix).
  env_set KUBE_ETCD "http://127.0.0.1:$ETCD_PORT"
  log "kube: ready, $(elapsed "$t0") s after start or check"
}

kube_down() {
  # The apiserver first: it would only log errors while etcd is gone.
  stop_pid kube-apiserver
  stop_pid kube-etcd
  rm -rf "$KUBE_DIR"
  env_unset KUBECONFIG
  env_unset KUBECTL
  env_unset KUBE_APISERVER
}
