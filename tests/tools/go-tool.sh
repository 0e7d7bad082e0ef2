#!/usr/bin/env bash
# Builds a CLI the tests use from a Go module pinned by a go.mod and go.sum
# (never a downloaded binary), cached under
# ${KITH_CACHE:-~/.cache/kith}/NAME-VERSION, and prints its path. The
# copies of go.mod and go.sum beside the binary mark a finished build of
# exactly that module.
#
#   go-tool.sh NAME BUILD_DIR MODULE PACKAGE [GO BUILD FLAGS...]
#
# MODULE's version is read from BUILD_DIR/go.mod; `-X` flags in the build
# flags may use $version.
set -euo pipefail
name=$1 dir=$2 module=$3 package=$4
shift 4
cd "$dir"
version=$(awk -v m="$module" '$1 == m { print $2 }' go.mod)
[[ -n $version ]] || { echo "$name: no $module version in $dir/go.mod" >&2; exit 1; }
home="${KITH_CACHE:-$HOME/.cache/kith}/$name-$version"
if [[ -x $home/$name ]] && cmp -s go.mod "$home/go.mod" && cmp -s go.sum "$home/go.sum"; then
  echo "$home/$name"
  exit 0
fi
command -v go >/dev/null || { echo "$name: go not found (needed once to build $name $version)" >&2; exit 1; }
mkdir -p "$home"
echo "$name: building $name $version into $home (once; log $home/build.log)" >&2
tmp=$(mktemp -d "$home/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
flags=()
for flag in "$@"; do
  flags+=("${flag//\$version/$version}")
done
if ! CGO_ENABLED=0 GOFLAGS="-mod=readonly" \
    go build -trimpath "${flags[@]}" -o "$tmp/$name" "$package" > "$home/build.log" 2>&1; then
  echo "$name: go build $package failed; see $home/build.log" >&2
  exit 1
fi
mv "$tmp/$name" "$home/$name"
cp go.mod go.sum "$home/"
echo "$home/$name"
