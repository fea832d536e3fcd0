#!/bin/bash
# Build the kube-apiserver that internal/kubetest runs, from the Go module proxy alone.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/* module with
# ./staging/src/k8s.io/*, and its module zip has neither staging/src nor vendor/. So this makes
# a throwaway main module with k8s.io/kubernetes' requirements, points each staging replace at
# the published k8s.io/<x> v0.<minor>.<patch>, and builds cmd/kube-apiserver from there.
#
# Usage: build-kube-apiserver.sh [K8S_VERSION] [OUT]
#   defaults: v1.31.4, ${XDG_CACHE_HOME:-$HOME/.cache}/gitmesh-test/kube-apiserver
#   (the path kubetest looks at; GITMESH_KUBE_APISERVER overrides it there).
# Skips the build when OUT already reports K8S_VERSION. Cold: 5–8 min, ~1.6 GB RSS on 2 cores.
set -euo pipefail
V=${1:-v1.31.4}
OUT=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/gitmesh-test/kube-apiserver}

if [ -x "$OUT" ] && [ "$("$OUT" --version 2>/dev/null)" = "Kubernetes $V" ]; then
  echo "kube-apiserver $V already at $OUT"
  exit 0
fi

STAGING_V=v0.${V#v1.}                      # v1.31.4 -> v0.31.4
WORK=$(mktemp -d /tmp/kapi-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$(dirname "$OUT")"
cd "$WORK"
KDIR=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$V" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$KDIR" ] || { echo "could not download k8s.io/kubernetes@$V" >&2; exit 1; }
cp "$KDIR/go.mod" go.mod; cp "$KDIR/go.sum" go.sum; chmod u+w go.mod go.sum
go mod edit -module=kapi-build -require="k8s.io/kubernetes@$V"
for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' go.mod); do
  go mod edit -dropreplace="$m" -replace="$m=$m@$STAGING_V"
done
printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
LDF="-s -w -X k8s.io/component-base/version.gitVersion=$V -X k8s.io/component-base/version.gitMajor=1"
LDF="$LDF -X k8s.io/component-base/version.gitMinor=$(echo "$V" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
LDF="$LDF -X k8s.io/client-go/pkg/version.gitVersion=$V"
# Build to a temporary name and move it into place, so a test never runs a half-written binary.
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$LDF" -o "$OUT.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$OUT.tmp" "$OUT"
"$OUT" --version
