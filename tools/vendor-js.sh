#!/usr/bin/env bash
# Vendor the dashboard's two browser libraries from the npm registry into the package, versions
# pinned, licenses kept: rollouts/dashboard/static/vendor/. The files are committed, so a fresh
# clone needs no network at build or run time (no CDN); SHA256SUMS records what this script
# wrote, and tests/dashboard/test_vendor.py checks the committed files against it.
# Run it again only to change a version (edit the pins below, run, commit the result).
set -euo pipefail

HTMX_VERSION=2.0.11
UPLOT_VERSION=1.6.32

here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/rollouts/dashboard/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "htmx.org@$HTMX_VERSION" "uplot@$UPLOT_VERSION" >/dev/null
mkdir htmx uplot
tar -xzf "htmx.org-$HTMX_VERSION.tgz" -C htmx
tar -xzf "uplot-$UPLOT_VERSION.tgz" -C uplot

mkdir -p "$out"
rm -f "$out"/*
cp htmx/package/dist/htmx.min.js "$out/htmx.min.js"
cp htmx/package/LICENSE "$out/htmx.LICENSE"
cp uplot/package/dist/uPlot.iife.min.js "$out/uPlot.iife.min.js"
cp uplot/package/dist/uPlot.min.css "$out/uPlot.min.css"
cp uplot/package/LICENSE "$out/uPlot.LICENSE"
printf 'htmx.org %s\nuplot %s\n' "$HTMX_VERSION" "$UPLOT_VERSION" > "$out/VERSIONS"
(cd "$out" && sha256sum htmx.min.js htmx.LICENSE uPlot.iife.min.js uPlot.min.css uPlot.LICENSE VERSIONS > SHA256SUMS)
echo "vendored htmx.org $HTMX_VERSION and uplot $UPLOT_VERSION into $out"
