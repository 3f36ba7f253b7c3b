"""The demo's summary: what each release did, from the history the demo recorded.

Rules:
- Pure: built from `ReleaseRecord`s (what the demo observed: the Rollout's final state,
  every VirtualService canary weight in order, the AnalysisRun's measurements, the
  canary's requests by response code) and plain endpoint data; no clock, no I/O.
- Outcome: `Promoted` when the release's ReplicaSet became stable and the Rollout is
  not aborted; `Aborted` when `status.abort` is set; otherwise `Unfinished` (the demo
  gave up waiting). The demo succeeds when every outcome is the expected one.
- Weight history: the canary weight at the start, then each change, consecutive
  repeats dropped; the last value is marked `(stable)` when it is 0 (all traffic on
  the stable ReplicaSet: the old one after an abort, the new one after a promotion).
- Success rates: the analysis values are the AnalysisRun's measurements (Prometheus'
  answers to the template's query, as Argo stores them: `[0.85]`); the traffic rate is
  the share of non-5xx among the canary's requests counted by the traffic generator.
- A release the judge decided (rollouts.demo.judge) also carries the judge's message (its
  last measurement's: which metric moved, by how much, with what confidence), the stable's
  requests over the same time, and the threshold template's replay on the same history;
  the table shows them under the grid, side by side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

T = TypeVar("T")


class Outcome(StrEnum):
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    UNFINISHED = "Unfinished"


@dataclass(frozen=True)
class ReleaseRecord:
    image: str
    expected: Outcome
    started: datetime
    ended: datetime
    phase: str  # the Rollout's phase at the end
    message: str
    aborted: bool  # status.abort
    promoted: bool  # the release's pod hash is status.stableRS
    weights: tuple[int, ...]  # VirtualService canary weight: at the start, then each change
    canary: str  # the release's ReplicaSet
    analysis_run: str | None = None
    analysis_phase: str | None = None
    measurements: tuple[str, ...] = ()  # measurement values as stored in the AnalysisRun
    requests: Mapping[str, int] = field(default_factory=dict)  # canary requests by response code
    judge: str | None = None  # the judge's message, when the judge decided this release
    threshold: str | None = None  # what the threshold template says replayed on the same history
    baseline_requests: Mapping[str, int] = field(default_factory=dict)  # the stable's requests meanwhile


@dataclass(frozen=True)
class ReleaseSummary:
    image: str
    expected: Outcome
    outcome: Outcome
    duration_seconds: float
    weights: tuple[int, ...]
    phase: str
    message: str
    canary: str
    analysis_run: str | None
    analysis_phase: str | None
    analysis_values: tuple[float, ...]
    requests: int
    errors: int
    judge: str | None = None
    threshold: str | None = None
    baseline_requests: int = 0
    baseline_errors: int = 0

    @property
    def as_expected(self) -> bool:
        return self.outcome == self.expected

    @property
    def final_weight(self) -> int:
        return self.weights[-1] if self.weights else 0

    @property
    def success_rate(self) -> float | None:
        """Share of the canary's requests that were not 5xx (None without requests)."""
        return None if self.requests == 0 else (self.requests - self.errors) / self.requests

    @property
    def baseline_success_rate(self) -> float | None:
        return None if self.baseline_requests == 0 else (self.baseline_requests - self.baseline_errors) / \
            self.baseline_requests

    @property
    def weight_text(self) -> str:
        """`0 → 20 → 50 → 100 → 0(stable)`."""
        texts = [str(w) for w in self.weights]
        if texts and self.weights[-1] == 0 and len(texts) > 1:
            texts[-1] += "(stable)"
        return " → ".join(texts)


@dataclass(frozen=True)
class Summary:
    releases: tuple[ReleaseSummary, ...]
    duration_seconds: float
    endpoints: Mapping[str, str]  # name -> URL of everything the demo served or started
    kubeconfig: str

    @property
    def ok(self) -> bool:
        return bool(self.releases) and all(r.as_expected for r in self.releases)


def outcome(record: ReleaseRecord) -> Outcome:
    if record.aborted:
        return Outcome.ABORTED
    if record.promoted:
        return Outcome.PROMOTED
    return Outcome.UNFINISHED


def repeats_dropped(values: Iterable[T]) -> tuple[T, ...]:
    """Consecutive repeats dropped (a weight or selector history): (0, 0, 20, 20, 50) -> (0, 20, 50).

    >>> repeats_dropped([0, 0, 20, 20, 50, 0]), repeats_dropped(["a", None, None])
    ((0, 20, 50, 0), ('a', None))
    """
    kept: list[T] = []
    for value in values:
        if not kept or kept[-1] != value:
            kept.append(value)
    return tuple(kept)


def measurement_value(value: str) -> float | None:
    """The first number of a stored measurement value: `[0.85]` -> 0.85, `0.9` -> 0.9, `[]` -> None.

    >>> [measurement_value(v) for v in ("[0.8529]", "1", "[]", "NaN", "[0.5,0.7]", "x")]
    [0.8529, 1.0, None, nan, 0.5, None]
    """
    first = value.strip().strip("[]").split(",")[0].strip()
    try:
        return float(first)
    except ValueError:
        return None


def server_errors(requests: Mapping[str, int]) -> int:
    """The 5xx answers among requests counted by status code."""
    return sum(n for code, n in requests.items() if code.startswith("5"))


def release_summary(record: ReleaseRecord) -> ReleaseSummary:
    values = tuple(v for v in (measurement_value(m) for m in record.measurements) if v is not None)
    return ReleaseSummary(
        image=record.image,
        expected=record.expected,
        outcome=outcome(record),
        duration_seconds=round((record.ended - record.started).total_seconds(), 1),
        weights=repeats_dropped(record.weights),
        phase=record.phase,
        message=record.message,
        canary=record.canary,
        analysis_run=record.analysis_run,
        analysis_phase=record.analysis_phase,
        analysis_values=values,
        requests=sum(record.requests.values()),
        errors=server_errors(record.requests),
        judge=record.judge,
        threshold=record.threshold,
        baseline_requests=sum(record.baseline_requests.values()),
        baseline_errors=server_errors(record.baseline_requests),
    )


def summarize(records: Sequence[ReleaseRecord], *, duration_seconds: float, endpoints: Mapping[str, str],
              kubeconfig: str) -> Summary:
    return Summary(tuple(release_summary(r) for r in records), round(duration_seconds, 1), dict(endpoints), kubeconfig)


# ---------------------------------------------------------------- output


def json_number(value: float | None) -> float | None:
    """A figure for the JSON summary: rounded, and null for a missing, NaN or infinite one."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


def release_json(r: ReleaseSummary) -> dict[str, Any]:
    """What every strategy's JSON says of a release first: image, outcomes, duration, the Rollout's last phase."""
    return {
        "image": r.image,
        "expected": str(r.expected),
        "outcome": str(r.outcome),
        "as_expected": r.as_expected,
        "duration_seconds": r.duration_seconds,
        "phase": r.phase,
        "message": r.message,
    }


def analysis_json(r: ReleaseSummary) -> dict[str, Any]:
    """The JSON of a release's AnalysisRun: name, phase, the measured values, their minimum and the last."""
    return {
        "run": r.analysis_run,
        "phase": r.analysis_phase,
        "values": [json_number(v) for v in r.analysis_values],
        "min": json_number(min(r.analysis_values, default=None)),
        "last": json_number(r.analysis_values[-1] if r.analysis_values else None),
    }


def to_json(summary: Summary) -> dict[str, Any]:
    return {
        "ok": summary.ok,
        "duration_seconds": summary.duration_seconds,
        "releases": [
            {
                **release_json(r),
                "canary_replicaset": r.canary,
                "weights": list(r.weights),
                "weight_history": r.weight_text,
                "final_canary_weight": r.final_weight,
                "success_rate": json_number(r.success_rate),
                "traffic": {"requests": r.requests, "errors": r.errors, "success_rate": json_number(r.success_rate)},
                "analysis": analysis_json(r),
            } | ({} if r.judge is None else {"judge": {
                "message": r.judge,
                "threshold_template": r.threshold,
                "stable_traffic": {"requests": r.baseline_requests, "errors": r.baseline_errors,
                                   "success_rate": json_number(r.baseline_success_rate)},
            }})
            for r in summary.releases
        ],
        "endpoints": dict(summary.endpoints),
        "kubeconfig": summary.kubeconfig,
    }


def rate_text(value: float | None) -> str:
    """A success rate for the table: `99.5%`, or `-` for none."""
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def last_rates_text(values: Sequence[float]) -> str:
    """The last four analysis values as rates, `…, ` before them when there were more: `…, 99.0%, 98.5%`."""
    more = "…, " if len(values) > 4 else ""
    return more + ", ".join(rate_text(v) for v in values[-4:])


def _analysis_text(r: ReleaseSummary) -> str:
    if r.judge is not None:
        return f"{r.analysis_phase or '-'}: the judge (below)"
    if not r.analysis_values:
        return f"{r.analysis_phase or '-'} (no values)"
    if len(set(r.analysis_values)) == 1:
        return f"{r.analysis_phase}: {rate_text(r.analysis_values[0])} × {len(r.analysis_values)}"
    return f"{r.analysis_phase}: {last_rates_text(r.analysis_values)}"


def outcome_text(r: ReleaseSummary) -> Text:
    """The outcome column: `✔ Promoted` in green, or `✖ Aborted (expected Promoted)` in red."""
    verdict = Text(f"{'✔' if r.as_expected else '✖'} {r.outcome}", style="green" if r.as_expected else "red")
    if not r.as_expected:
        verdict.append(f" (expected {r.expected})", style="red")
    return verdict


def verdict_line(summary: Summary, releases: Sequence[ReleaseSummary]) -> Text:
    """The line under the table: every release's outcome when all were as expected, else the ones that were not."""
    if summary.ok:
        done = ", ".join(f"{r.image} {r.outcome}" for r in releases)
        return Text(f"✔ as expected: {done} (demo took {summary.duration_seconds:.0f}s)", style="bold green")
    wrong = ", ".join(f"{r.image} {r.outcome} (expected {r.expected}: {r.message or r.phase})"
                      for r in releases if not r.as_expected) or "no release ran"
    return Text(f"✖ not as expected: {wrong}", style="bold red")


def table(summary: Summary) -> RenderableType:
    """The end-of-demo table, then one verdict line."""
    grid = Table(title="rollouts demo: summary", title_justify="left", header_style="bold")
    for column in ("release", "outcome", "took", "canary weight", "analysis (success rate)", "canary traffic"):
        grid.add_column(column, no_wrap=column != "analysis (success rate)")
    for r in summary.releases:
        traffic = f"{rate_text(r.success_rate)} ok of {r.requests}"
        grid.add_row(r.image, outcome_text(r), f"{r.duration_seconds:.0f}s", r.weight_text, _analysis_text(r), traffic)
    notes = [note for r in summary.releases for note in judged_lines(r)]
    return Group(grid, *notes, verdict_line(summary, summary.releases))


def judged_lines(r: ReleaseSummary) -> list[Text]:
    """Under the grid, for a release the judge decided: its message, the traffic, the threshold's replay."""
    if r.judge is None:
        return []
    canary, stable = (None if ok is None else 1 - ok for ok in (r.success_rate, r.baseline_success_rate))
    traffic = (f"   canary {rate_text(canary)} errors of {r.requests}, "
               f"stable {rate_text(stable)} of {r.baseline_requests}")
    return [Text(f"{r.image} judge: {r.judge}", style="bold"), Text(traffic),
            Text(f"   {r.threshold or 'threshold template: not replayed'}", style="yellow")]
