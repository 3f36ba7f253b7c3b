"""The vendored browser libraries are the pinned npm releases, with their licenses, and the
pages load them from the package (no CDN)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "rollouts" / "dashboard" / "static" / "vendor"
SCRIPT = ROOT / "tools" / "vendor-js.sh"


def test_every_vendored_file_matches_its_recorded_checksum() -> None:
    recorded = dict(reversed(line.split("  ", 1)) for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    assert sorted(recorded) == sorted(p.name for p in VENDOR.iterdir() if p.name != "SHA256SUMS")
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_the_versions_are_the_script_pins_and_the_licenses_are_kept() -> None:
    pins = dict(re.findall(r"^(HTMX|UPLOT)_VERSION=(\S+)$", SCRIPT.read_text(), re.M))
    assert (VENDOR / "VERSIONS").read_text().split() == ["htmx.org", pins["HTMX"], "uplot", pins["UPLOT"]]
    assert "Zero-Clause BSD" in (VENDOR / "htmx.LICENSE").read_text()
    assert "MIT" in (VENDOR / "uPlot.LICENSE").read_text()
    assert f'version:"{pins["HTMX"]}"' in (VENDOR / "htmx.min.js").read_text()


def test_no_page_loads_anything_from_another_origin() -> None:
    for template in (ROOT / "rollouts" / "dashboard" / "templates").glob("*.html"):
        assert not re.search(r'(src|href)="(https?:)?//', template.read_text()), template.name
