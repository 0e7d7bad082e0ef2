#!/usr/bin/env bash
# Prints the path of the helm CLI the chart tests use, building it first when
# it is missing: from the helm.sh/helm/v4 module pinned by build/go.mod and
# build/go.sum (never a downloaded binary), cached like the test control
# plane under ${KITH_CACHE:-~/.cache/kith}/helm-VERSION. About a minute on
# 2 cores the first time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/build"
version=$(awk '$1 == "helm.sh/helm/v4" { print $2 }' go.mod)
[[ -n $version ]] || { echo "helm.sh: no helm.sh/helm/v4 version in build/go.mod" >&2; exit 1; }
cache=${KITH_CACHE:-$HOME/.cache/kith}
home="$cache/helm-$version"
# The copies of go.mod and go.sum beside the binary mark a finished build of
# exactly this module.
if [[ -x $home/helm ]] && cmp -s go.mod "$home/go.mod" && cmp -s go.sum "$home/go.sum"; then
  echo "$home/helm"
  exit 0
fi
command -v go >/dev/null || { echo "helm.sh: go not found (needed once to build helm $version)" >&2; exit 1; }
mkdir -p "$home"
echo "helm.sh: building helm $version into $home (once; log $home/build.log)" >&2
tmp=$(mktemp -d "$home/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! CGO_ENABLED=0 GOFLAGS="-mod=readonly" \
    go build -trimpath -ldflags="-s -X helm.sh/helm/v4/internal/version.version=$version" \
    -o "$tmp/helm" helm.sh/helm/v4/cmd/helm > "$home/build.log" 2>&1; then
  echo "helm.sh: go build helm.sh/helm/v4/cmd/helm failed; see $home/build.log" >&2
  exit 1
fi
mv "$tmp/helm" "$home/helm"
cp go.mod go.sum "$home/"
echo "$home/helm"
