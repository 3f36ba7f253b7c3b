"""The blue-green demo's summary: what each release did to the Services, from the recorded history.

Rules:
- Pure: built from `BlueGreenRecord`s (rollouts.demo.bluegreen_record); no clock, no I/O.
  Outcomes are the canary demo's (rollouts.demo.summary: Promoted, Aborted, Unfinished).
- Selector history: the (active, preview) pair at the start, then each change, with the
  resourceVersion of the Service write; the active history is its active column with
  consecutive repeats dropped, and a switch is one change of it.
- "Switched after the analysis": the first write that made the active Service select the
  new hash has a higher resourceVersion than the write that made the pre-promotion run
  Successful (one counter orders both).
- Production requests to the new version are the active Service's traffic that reached
  the new ReplicaSet during the release (0 is what blue-green promises for a version
  that failed its pre-promotion analysis); smoke requests are the preview Service's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollouts.demo.bluegreen_record import BlueGreenRecord, Scale, Selectors, scaled_down_version
from rollouts.demo.summary import (
    ReleaseSummary,
    Summary,
    analysis_json,
    json_number,
    last_rates_text,
    outcome_text,
    release_json,
    release_summary,
    repeats_dropped,
    server_errors,
    verdict_line,
)


@dataclass(frozen=True)
class BlueGreenSummary(ReleaseSummary):
    new_hash: str = ""
    old_hash: str = ""
    selectors: tuple[Selectors, ...] = ()
    analysis_succeeded_version: int | None = None
    old_scales: tuple[Scale, ...] = ()
    new_scales: tuple[Scale, ...] = ()
    production_to_new: int = 0
    production_errors_from_new: int = 0
    production_total: int = 0
    smoke_requests: int = 0
    smoke_errors: int = 0

    @property
    def active_history(self) -> tuple[str | None, ...]:
        return repeats_dropped(s.active for s in self.selectors)

    @property
    def preview_history(self) -> tuple[str | None, ...]:
        return repeats_dropped(s.preview for s in self.selectors)

    @property
    def active_switches(self) -> int:
        return max(len(self.active_history) - 1, 0)

    @property
    def switch_version(self) -> int | None:
        """The version of the first Service write that made the active Service select the new hash."""
        if self.selectors and self.selectors[0].active == self.new_hash:
            return None  # it selected the new hash before the release: not a switch of this release
        return next((s.version for s in self.selectors if s.active == self.new_hash), None)

    @property
    def switched_after_analysis(self) -> bool:
        switched, succeeded = self.switch_version, self.analysis_succeeded_version
        return switched is not None and succeeded is not None and switched > succeeded

    @property
    def old_scaled_down_version(self) -> int | None:
        return scaled_down_version(list(self.old_scales))

    @property
    def old_deadline(self) -> str | None:
        """The scale-down-deadline the old ReplicaSet carried while it kept its pods after the switch."""
        return next((s.deadline for s in self.old_scales if s.deadline and s.replicas > 0), None)

    @property
    def smoke_success_rate(self) -> float | None:
        return None if self.smoke_requests == 0 else (self.smoke_requests - self.smoke_errors) / self.smoke_requests


def release_summary_bg(record: BlueGreenRecord) -> BlueGreenSummary:
    base = release_summary(record)
    fields = {name: getattr(base, name) for name in ReleaseSummary.__dataclass_fields__}
    return BlueGreenSummary(
        **fields,
        new_hash=record.new_hash, old_hash=record.old_hash, selectors=record.selectors,
        analysis_succeeded_version=record.analysis_succeeded_version,
        old_scales=record.old_scales, new_scales=record.new_scales,
        production_to_new=sum(record.production.values()), production_errors_from_new=server_errors(record.production),
        production_total=record.production_total,
        smoke_requests=sum(record.smoke.values()), smoke_errors=server_errors(record.smoke),
    )


def summarize(records: Sequence[BlueGreenRecord], *, duration_seconds: float, endpoints: Mapping[str, str],
              kubeconfig: str) -> Summary:
    return Summary(tuple(release_summary_bg(r) for r in records), round(duration_seconds, 1), dict(endpoints),
                   kubeconfig)


# ---------------------------------------------------------------- output


def _release_json(r: BlueGreenSummary) -> dict[str, Any]:
    return {
        **release_json(r),
        "new_replicaset": r.canary,
        "new_hash": r.new_hash,
        "old_hash": r.old_hash,
        "selectors": [{"version": s.version, "active": s.active, "preview": s.preview} for s in r.selectors],
        "active_history": list(r.active_history),
        "preview_history": list(r.preview_history),
        "active_switches": r.active_switches,
        "active_switch_version": r.switch_version,
        "switched_after_analysis": r.switched_after_analysis,
        "analysis": {**analysis_json(r), "succeeded_version": r.analysis_succeeded_version},
        "production": {"requests": r.production_total, "requests_to_new": r.production_to_new,
                       "errors_from_new": r.production_errors_from_new},
        "smoke": {"requests": r.smoke_requests, "errors": r.smoke_errors,
                  "success_rate": json_number(r.smoke_success_rate)},
        "old_replicaset": {"hash": r.old_hash, "scale_down_deadline": r.old_deadline,
                           "scaled_down_version": r.old_scaled_down_version,
                           "replicas": [{"version": s.version, "replicas": s.replicas} for s in r.old_scales]},
        "new_replicaset_replicas": [{"version": s.version, "replicas": s.replicas} for s in r.new_scales],
    }


def to_json(summary: Summary) -> dict[str, Any]:
    return {
        "ok": summary.ok,
        "strategy": "blueGreen",
        "duration_seconds": summary.duration_seconds,
        "releases": [_release_json(r) for r in summary.releases if isinstance(r, BlueGreenSummary)],
        "endpoints": dict(summary.endpoints),
        "kubeconfig": summary.kubeconfig,
    }


def hash_text(history: Sequence[str | None], new_hash: str) -> str:
    """`6b8f → 9c2d(new)`: each selector value in turn, the release's own hash marked.

    >>> hash_text(("aaa", "bbb"), "bbb"), hash_text((None,), "x")
    ('aaa → bbb(new)', '-')
    """
    return " → ".join("-" if h is None else f"{h}(new)" if h == new_hash else h for h in history) or "-"


def _analysis_text(r: BlueGreenSummary) -> str:
    if not r.analysis_values:
        return f"{r.analysis_phase or '-'} (no values)"
    return f"{r.analysis_phase}: {last_rates_text(r.analysis_values)}"


def table(summary: Summary) -> RenderableType:
    """The end-of-demo table, then one verdict line."""
    grid = Table(title="rollouts demo --blue-green: summary", title_justify="left", header_style="bold")
    for column in ("release", "outcome", "took", "active selector", "preview selector", "pre-promotion analysis",
                   "production → new"):
        grid.add_column(column, no_wrap=column not in ("pre-promotion analysis", "active selector"))
    releases = [r for r in summary.releases if isinstance(r, BlueGreenSummary)]
    for r in releases:
        reached = Text(f"{r.production_to_new} of {r.production_total}",
                       style="green" if (r.production_to_new == 0) == (r.expected == "Aborted") else "red")
        grid.add_row(r.image, outcome_text(r), f"{r.duration_seconds:.0f}s", hash_text(r.active_history, r.new_hash),
                     hash_text(r.preview_history, r.new_hash), _analysis_text(r), reached)
    return Group(grid, verdict_line(summary, releases))
