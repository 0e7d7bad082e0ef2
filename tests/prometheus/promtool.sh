#!/usr/bin/env bash
# Prints the path of the promtool CLI the alert tests use, building it first
# when it is missing: from the github.com/prometheus/prometheus module pinned
# by build/go.mod and build/go.sum, cached like helm (tests/tools/go-tool.sh).
# A few minutes on 2 cores the first time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE,
# ...), which only `promtool check config` would use: a quarter fewer
# packages to compile. Kubernetes SD stays (promtool imports it directly).
exec bash "$here/../tools/go-tool.sh" promtool "$here/build" github.com/prometheus/prometheus \
  github.com/prometheus/prometheus/cmd/promtool -tags remove_all_sd \
  '-ldflags=-s -X github.com/prometheus/common/version.Version=$version'
