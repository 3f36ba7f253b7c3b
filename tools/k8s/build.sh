#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager 1.20.2 from Debian's `kubernetes`
# source package, once, into a cache outside the checkout; reused when present.
#
#   tools/k8s/build.sh            # prints the bin directory on its last line
#   ROLLOUTS_CACHE=/path tools/k8s/build.sh
#
# Why 1.20.2: it is the only Kubernetes whose whole source (vendor/ included) Debian
# ships, so it builds offline from the package registry this project may use. Users run
# newer clusters; the controller uses no API newer than 1.20 has (apps/v1, coordination/v1,
# apiextensions/v1, events via core/v1).
# One fix is needed: the vendored modern-go/reflect2 v1.0.1 crashes under Go >= 1.18,
# so Debian's v1.0.2 replaces it. Cold: about 11 minutes on 2 cores; warm: nothing.
set -euo pipefail

CACHE="${ROLLOUTS_CACHE:-$HOME/.cache/rollouts}/k8s-1.20.2"
BIN="$CACHE/bin"

apt_install() {
  echo "installing from Debian: $*" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# What the control plane needs at run time, whether or not the binaries are cached.
command -v etcd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || apt_install etcd-server openssl
if [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" ]]; then
  echo "$BIN"
  exit 0
fi

# What the build needs.
need=()
for tool in go rsync jq; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
[[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]] || need+=(reflect2)
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/; then
  cat >/etc/apt/sources.list.d/rollouts-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
((${#need[@]} == 0)) || apt_install golang-go rsync jq golang-github-modern-go-reflect2-dev dpkg-dev

WORK="$CACHE/build"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
if ! ls kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
  apt-get update -qq
  apt-get source --download-only kubernetes >/dev/null
fi
tar xzf kubernetes_*.orig.tar.gz
SRC="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -n1)"

# the one fix: Debian's reflect2 v1.0.2 instead of the vendored v1.0.1
rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$SRC/vendor/github.com/modern-go/reflect2"
rm -f "$SRC/vendor/github.com/modern-go/reflect2/go.mod"

# GOPATH mode, as Debian's own rules build it
mkdir -p "$SRC/.go/src/k8s.io" "$WORK/home" "$WORK/gocache"
ln -sfn ../../.. "$SRC/.go/src/k8s.io/kubernetes"
cd "$SRC/.go/src/k8s.io/kubernetes"
env GOPATH="$SRC/.go" CGO_ENABLED=0 HOME="$WORK/home" GOCACHE="$WORK/gocache" \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK/build.log" 2>&1 || {
    tail -n 40 "$WORK/build.log" >&2
    echo "the Kubernetes build failed; the whole log is $WORK/build.log" >&2
    exit 1
  }
mkdir -p "$BIN.tmp"
cp "$SRC/_output/bin/kube-apiserver" "$SRC/_output/bin/kube-controller-manager" "$BIN.tmp/"
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
cd "$CACHE"
rm -rf "$WORK"
echo "$BIN"
