# Kith: the entry points of docs/design.md §1-5. Everything installs what it needs on
# first use, so a fresh machine needs no manual step.

SHELL := /bin/bash
CARGO ?= cargo
RUNNER := target/release/kith-runner

.PHONY: all build build-deps test e2e quickstart bench fuzz soak services services-down crds images fmt lint clean

all: build

# librdkafka is built from source (rdkafka's cmake-build); its build needs
# these Debian packages, and the Argo CD health check's test a Lua 5.1
# interpreter. Installs the missing ones (needs root or sudo).
BUILD_PACKAGES := libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev cmake lua5.1
build-deps:
	@missing=$$(for p in $(BUILD_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing build packages:" $$missing; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

build: build-deps
	$(CARGO) build --release --locked

# The whole suite: unit, property and integration tests (cargo), the
# lifecycle scenarios (make e2e), the fault proxy's own tests, the GitOps
# health check, the Helm chart, its alerts (promtool) and the Dockerfiles
# (pytest), and the pipeline statuses read by kstatus itself
# (tests/kstatus, Go), with the runners' summary lines and one total. The
# statuses the cargo and e2e tests read are recorded
# (KITH_STATUS_SAMPLES) for the kstatus and Argo CD checks. Integration tests run
# against the real services of docs/design.md §5, started here and stopped
# afterwards (KITH_KEEP_SERVICES=1 keeps them running for the next run).
# Everything is compiled first, before the services take their memory; a
# build that fails stops the run there, with the disk's free space printed
# (a full disk is the usual cause on a build machine).
test: build-deps
	mkdir -p target; rm -rf target/status-samples; \
	export KITH_STATUS_SAMPLES=$(CURDIR)/target/status-samples; \
	{ $(CARGO) test --locked --workspace --exclude kith-e2e --no-run && \
	  $(CARGO) test --locked -p kith-e2e --no-run; } 2>&1 | tee target/build.log; \
	if [ $${PIPESTATUS[0]} != 0 ]; then \
	  tail -n 60 target/build.log; df -h . | sed 's/^/disk: /'; \
	  echo "the tests did not build; nothing ran"; echo "0 passed, 1 failed, 0 skipped"; exit 1; \
	fi; \
	bash tests/services/up.sh kafka moto kube gremlin || exit 1; \
	$(CARGO) test --locked --workspace --exclude kith-e2e --no-fail-fast 2>&1 | tee target/test.log; \
	status=$${PIPESTATUS[0]}; \
	CARGO=$(CARGO) KITH_E2E_PREBUILT=1 bash tests/e2e/run.sh; \
	e2estatus=$$?; \
	python3 -m pytest -q -p no:cacheprovider tests/faults tests/gitops tests/helm tests/images 2>&1 | tee target/test-faults.log; \
	pystatus=$${PIPESTATUS[0]}; \
	bash tests/kstatus/run.sh 2>&1 | tee target/test-kstatus.log; \
	kstatusstatus=$${PIPESTATUS[0]}; \
	[ "$${KITH_KEEP_SERVICES:-0}" = 1 ] || bash tests/services/down.sh; \
	{ grep -E '^test result:' target/test.log target/e2e.log | cut -d: -f2- | awk '{print $$4, $$6, $$8}'; \
	  grep -h '^kstatus:' target/test-kstatus.log | awk '{print $$2, $$4, 0}'; \
	  tail -n 1 target/test-faults.log | awk '{p=0; f=0; s=0; for (i = 2; i <= NF; i++) { if ($$i ~ /^passed/) p=$$(i-1); if ($$i ~ /^failed/) f=$$(i-1); if ($$i ~ /^skipped/) s=$$(i-1) } print p, f, s}'; } \
	  | awk '{p+=$$1; f+=$$2; i+=$$3} END {printf "%d passed, %d failed, %d skipped\n", p, f, i}'; \
	[ $$status = 0 ] && [ $$pystatus = 0 ] && [ $$kstatusstatus = 0 ] && [ $$e2estatus = 0 ]

# The lifecycle scenarios (tests/e2e): the operator and real runner
# processes, run by the kubelet stand-in, on the test API server with Kafka
# and moto S3. Ends with `N passed, N failed`.
e2e: build-deps
	CARGO=$(CARGO) bash tests/e2e/run.sh

# Builds the runner, runs the quickstart on the embedded default (local files
# and a local state directory), then prints one unified profile.
quickstart: build
	rm -rf target/quickstart
	$(RUNNER) run examples/quickstart/pipeline.yaml --state target/quickstart --exit-at-end
	@echo "--- dead letters: target/quickstart/dead-letter.jsonl; change feed: target/quickstart/changes.jsonl"
	@echo "--- the profile holding email ann.lee@example.com:"
	$(RUNNER) lookup --pretty --state target/quickstart email:ann.lee@example.com

# Throughput, latency and memory of the engine on a generated workload, then
# entity resolution's accuracy and speed on FEBRL4 and on census-style person
# records beside Splink 5, phone normalisation per call, Kafka, the sinks, the
# operator and the end-to-end lifecycle (figures go to the README).
# libFuzzer on the parsers (tests/fuzz/run.sh, nightly and cargo-fuzz,
# installed on first use): FUZZ_SECONDS per target (default 60). make test
# replays the checked-in corpus on stable.
fuzz:
	bash tests/fuzz/run.sh

# A runner under steady Kafka load with checkpoints for SOAK_SECONDS (default
# 600): flat memory, file descriptors and threads, and equal exports at the
# end (tests/soak/run.sh).
soak: build
	bash tests/soak/run.sh

bench: build
	bash runner/benches/engine.sh
	bash runner/benches/shapes.sh
	bash runner/benches/febrl.sh
	bash runner/benches/persons.sh
	$(CARGO) bench --locked -q -p kith-pipeline --bench phone
	bash runner/benches/kafka.sh
	bash runner/benches/sinks.sh
	bash operator/benches/reconcile.sh
	bash tests/e2e/bench.sh

# The runner and operator images (images/*.Dockerfile), tagged
# IMAGE_REGISTRY/kith-runner:VERSION and .../kith-operator:VERSION (the
# workspace's version, as the chart and the examples name them), built with
# whichever of docker, podman or buildah this machine has.
IMAGE_REGISTRY ?= ghcr.io/kith-dev
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
images:
	@tool=$$(for t in docker podman buildah; do command -v $$t >/dev/null && { echo $$t; break; }; done); \
	if [ -z "$$tool" ]; then echo "make images: none of docker, podman or buildah is installed" >&2; exit 1; fi; \
	case $$tool in buildah) build="buildah bud";; *) build="$$tool build";; esac; \
	for image in runner operator; do \
	  $$build -f images/$$image.Dockerfile -t $(IMAGE_REGISTRY)/kith-$$image:$(IMAGE_TAG) . || exit 1; \
	done

# Test services on loopback (docs/design.md §5): Kafka in KRaft mode, moto
# (DynamoDB and S3), a TinkerPop Gremlin Server (Neptune's Gremlin HTTP
# endpoint) and a Kubernetes control plane (kube-apiserver, etcd,
# kubectl built from their Go modules; the first build takes minutes). Installs on first use, caches under
# ~/.cache/kith, writes target/services.env (load it with
# `set -a; . target/services.env; set +a`).
services:
	bash tests/services/up.sh

services-down:
	bash tests/services/down.sh

# The CRD manifests of crds/ and the configuration reference of
# docs/reference/, generated from the types in api/src (a test fails when
# either is stale).
crds: build-deps
	$(CARGO) run --locked -q -p kith-operator -- crdgen --out crds --reference docs/reference

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
