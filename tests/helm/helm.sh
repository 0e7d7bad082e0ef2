#!/usr/bin/env bash
# Prints the path of the helm CLI the chart tests use, building it first when
# it is missing: from the helm.sh/helm/v4 module pinned by build/go.mod and
# build/go.sum, cached like the test control plane (tests/tools/go-tool.sh).
# About a minute on 2 cores the first time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../tools/go-tool.sh" helm "$here/build" helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm \
  '-ldflags=-s -X helm.sh/helm/v4/internal/version.version=$version'
