"""What each page shows, as frozen values built from the store through rollouts.view.

Rules:
- Status is never derived here: phase, message, step, set and actual weight, images,
  ReplicaSets and AnalysisRuns come from `rollouts.view.build` (what `get rollout` shows).
  This module only picks, filters and orders them for the pages.
- The overview row's verdict is the newest revision's latest AnalysisRun: its phase and
  message (or its counters); "-" without a run.
- The filter matches its words (all of them, case-insensitive) against namespace/name,
  phase, strategy and images, so `shop degraded` finds the degraded Rollouts of shop.
- Secrets: an AnalysisRun arg with `valueFrom.secretKeyRef` is shown as `REDACTED` with
  the Secret's name and key, never a value, even when one is written beside the reference.
  Measurement metadata (which may carry a resolved query) is not shown at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollouts.dashboard.charts import MetricChart, metric_charts, weight_series
from rollouts.dashboard.store import Key, Store
from rollouts.view import AnalysisRunRow, RolloutView, build, icon

__all__ = ["REDACTED", "ArgRow", "Detail", "EventRow", "OverviewRow", "PodRow", "detail", "dom_id", "overview",
           "overview_row", "redacted_args", "web_icon"]

REDACTED = "REDACTED"
WEB_ICONS = {"Paused": "‖"}  # the view's "॥" is missing from common web fonts


def web_icon(status: str) -> str:
    """The view's icon of a phase, as a browser can draw it (the name is always written beside it)."""
    return WEB_ICONS.get(status) or icon(status)


def dom_id(namespace: str, name: str) -> str:
    """The id of a Rollout's row: names are RFC 1123 (a-z, 0-9, '-', '.'), so '--' joins them safely."""
    return f"ro--{namespace}--{name}".replace(".", "_")


@dataclass(frozen=True)
class OverviewRow:
    namespace: str
    name: str
    strategy: str
    phase: str
    message: str
    step: str
    set_weight: str
    actual_weight: str
    images: tuple[str, ...]
    verdict: str
    verdict_phase: str

    @property
    def icon(self) -> str:
        return web_icon(self.phase)

    @property
    def verdict_icon(self) -> str:
        return web_icon(self.verdict_phase)

    @property
    def id(self) -> str:
        return dom_id(self.namespace, self.name)

    def matches(self, words: Iterable[str]) -> bool:
        text = " ".join((f"{self.namespace}/{self.name}", self.phase, self.strategy, *self.images)).lower()
        return all(word in text for word in words)


def _latest_run(view: RolloutView) -> AnalysisRunRow | None:
    for revision in view.revisions:
        if revision.analysis_runs:
            return revision.analysis_runs[-1]
    return None


def _weight(value: int | None) -> str:
    return "-" if value is None else str(value)


def overview_row(view: RolloutView) -> OverviewRow:
    run = _latest_run(view)
    verdict = "-" if run is None else run.message or run.counts.text
    return OverviewRow(
        namespace=view.namespace, name=view.name, strategy=view.strategy, phase=view.status, message=view.message,
        step=view.step or "-", set_weight=_weight(view.set_weight), actual_weight=_weight(view.actual_weight),
        images=tuple(f"{image.image}" + (f" ({','.join(image.tags)})" if image.tags else "") for image in view.images),
        verdict=verdict, verdict_phase="" if run is None else run.phase,
    )


def words_of(query: str) -> list[str]:
    return [word for word in query.lower().split() if word]


def overview(store: Store, now: datetime, query: str = "", keys: set[Key] | None = None) -> list[OverviewRow]:
    """The overview's rows (only those of `keys` when given), filtered by `query`."""
    replica_sets, runs = store.all_owned("ReplicaSet"), store.all_owned("AnalysisRun")
    words, rows = words_of(query), []
    for rollout in store.rollouts():
        meta = rollout.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        if keys is not None and key not in keys:
            continue
        row = overview_row(build(rollout, replica_sets.get(key, []), runs.get(key, []), now=now))
        if row.matches(words):
            rows.append(row)
    return rows


@dataclass(frozen=True)
class PodRow:
    name: str
    replica_set: str
    phase: str
    ready: bool


@dataclass(frozen=True)
class EventRow:
    type: str
    reason: str
    message: str
    at: str
    count: int


@dataclass(frozen=True)
class ArgRow:
    run: str
    name: str
    value: str
    secret: bool


@dataclass(frozen=True)
class Detail:
    view: RolloutView
    pods: tuple[PodRow, ...]
    events: tuple[EventRow, ...]
    args: tuple[ArgRow, ...]
    charts: tuple[MetricChart, ...]
    weights: dict[str, Any]

    @property
    def id(self) -> str:
        return dom_id(self.view.namespace, self.view.name)

    def chart_data(self) -> dict[str, Any]:
        return {"weight": self.weights, "metrics": [chart.data() for chart in self.charts]}


def redacted_args(runs: Iterable[Mapping[str, Any]]) -> tuple[ArgRow, ...]:
    rows = []
    for run in runs:
        run_name = str((run.get("metadata") or {}).get("name", ""))
        for arg in (run.get("spec") or {}).get("args") or []:
            if not isinstance(arg, dict):
                continue
            ref = (arg.get("valueFrom") or {}).get("secretKeyRef") if isinstance(arg.get("valueFrom"), dict) else None
            if isinstance(ref, dict):
                rows.append(ArgRow(run_name, str(arg.get("name", "")),
                                   f"{REDACTED} (secret {ref.get('name', '?')}, key {ref.get('key', '?')})", True))
            elif isinstance(arg.get("valueFrom"), dict):
                rows.append(ArgRow(run_name, str(arg.get("name", "")), f"from {', '.join(sorted(arg['valueFrom']))}",
                                   False))
            else:
                rows.append(ArgRow(run_name, str(arg.get("name", "")), str(arg.get("value", "")), False))
    return tuple(rows)


def _pod_row(pod: Mapping[str, Any]) -> PodRow:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [] if isinstance(c, dict))
    owner = next((ref.get("name") for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
                  if isinstance(ref, dict) and ref.get("kind") == "ReplicaSet"), "")
    return PodRow(str((pod.get("metadata") or {}).get("name", "")), str(owner), str(status.get("phase") or "Pending"),
                  ready)


def _event_row(event: Mapping[str, Any]) -> EventRow:
    at = event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get("creationTimestamp")
    count = event.get("count")
    return EventRow(str(event.get("type") or "Normal"), str(event.get("reason") or ""), str(event.get("message") or ""),
                    str(at or ""), count if isinstance(count, int) and not isinstance(count, bool) else 1)


def detail(store: Store, namespace: str, name: str, now: datetime, *, events_shown: int = 30) -> Detail | None:
    rollout = store.rollout(namespace, name)
    if rollout is None:
        return None
    runs = store.analysis_runs(namespace, name)
    view = build(rollout, store.replica_sets(namespace, name), runs, now=now)
    return Detail(
        view=view,
        pods=tuple(_pod_row(pod) for pod in store.pods(namespace, name)),
        events=tuple(_event_row(e) for e in store.events(namespace, name))[-events_shown:][::-1],
        args=redacted_args(runs),
        charts=tuple(metric_charts(runs)),
        weights=weight_series(store.history(namespace, name), view.set_weight, view.actual_weight, now.timestamp()),
    )
