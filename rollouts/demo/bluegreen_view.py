"""The blue-green demo's lines on the live screen: the Services' selectors instead of weights.

Rules:
- Pure renderers of a `BlueGreenFrame` (rich renderables and plain text); no I/O.
- One row per Service: what it selects now, the ReplicaSet and its image, the live
  requests/s and non-5xx share of its traffic (production through active, smoke tests
  through preview); then each Service's selector history in this release, the release's
  own hash marked `(new)`.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from rollouts.demo.bluegreen_run import BlueGreenFrame
from rollouts.demo.bluegreen_summary import hash_text
from rollouts.demo.summary import repeats_dropped
from rollouts.demo.traffic import Backend


def _row(grid: Table, frame: BlueGreenFrame, role: str, selector: str | None, backends: tuple[Backend, ...],
         rates: dict[str, tuple[float, float]]) -> None:
    workload = backends[0].workload if backends else "-"
    image = frame.apps.get(workload, ("", 0))[0]
    rate, ok = rates.get(workload, (0.0, 1.0))
    ok_text = Text(f"{ok * 100:5.1f}%", style="green" if ok >= 0.95 else "bold red") if rate else Text("    -")
    new = bool(frame.new_hash) and selector == frame.new_hash
    grid.add_row(f"  {role}", Text(selector or "-", style="yellow" if new else "green"),
                 Text(f"{workload} {image}".strip()), f"{rate:5.1f}", ok_text)


def traffic_table(frame: BlueGreenFrame) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in range(5):
        grid.add_column(no_wrap=True)
    grid.add_row(Text("Services", style="bold"), Text("selects", style="dim"), Text("ReplicaSet", style="dim"),
                 Text("req/s", style="dim"), Text("ok (last 5s)", style="dim"))
    _row(grid, frame, "active (production)", frame.active, frame.production, frame.traffic)
    _row(grid, frame, "preview (smoke tests)", frame.preview, frame.smoke, frame.smoke_traffic or {})
    active = hash_text(repeats_dropped(s.active for s in frame.selectors), frame.new_hash)
    preview = hash_text(repeats_dropped(s.preview for s in frame.selectors), frame.new_hash)
    grid.add_row(Text("  active over time", style="dim"), Text(active), "", "", "")
    grid.add_row(Text("  preview over time", style="dim"), Text(preview), "", "", "")
    return grid


def routes_text(frame: BlueGreenFrame) -> str:
    """`active=demo-abc preview=demo-def` for the plain line printer."""
    def names(backends: tuple[Backend, ...]) -> str:
        return ",".join(b.workload for b in backends) or "-"
    return f"active={names(frame.production)} preview={names(frame.smoke)}"
