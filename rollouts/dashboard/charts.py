"""The detail page's charts as data: the canary weight over time, each metric's measurements.

Rules:
- Pure: functions of plain AnalysisRun dicts and the store's weight points; no clock.
- A measurement is plotted when its value reads as one number: a JSON number, a one-item
  list of numbers (`[0.87]`, Prometheus' vector), or `true`/`false` (1/0). Other values
  are listed in the table under the chart, never guessed at.
- The threshold is the condition's single threshold as analysis.expr.thresholds reads it
  from the parse tree (`result[0] >= 0.95` → 0.95, `>=`; guards such as `len(result) > 0 &&`
  looked through), from the successCondition, else the failureCondition; a condition with
  no single threshold draws no line. The chart's label is the condition itself.
- A point is failing when its measurement phase is Failed or Error; those points are a
  series of their own (marked, not only coloured), and the verdict message is the run's
  (or the metric's) message.
- Times are Unix seconds (uPlot's x axis).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.expr.thresholds import threshold
from rollouts.dashboard.store import WeightPoint
from rollouts.platform.times import parse_time

__all__ = ["MetricChart", "Point", "metric_charts", "number_of", "threshold_of", "weight_series"]

FAILING = frozenset({"Failed", "Error"})


def number_of(value: Any) -> float | None:
    """The one number a measurement value stands for, or None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if number == number and abs(number) != float("inf") else None
    return None


def threshold_of(condition: str) -> tuple[str, float] | None:
    """(operator, number) of the condition's single threshold (analysis.expr.thresholds, the rule
    the controller's threshold metric uses too), or None."""
    found = threshold(condition)
    return (found.op, found.value) if found is not None else None


@dataclass(frozen=True)
class Point:
    at: float
    value: float | None
    text: str
    phase: str
    message: str = ""

    @property
    def failing(self) -> bool:
        return self.phase in FAILING


@dataclass(frozen=True)
class MetricChart:
    run: str
    metric: str
    phase: str
    condition: str
    threshold: float | None
    points: tuple[Point, ...]
    message: str = ""
    dry_run: bool = False
    chart_id: str = field(default="")

    def data(self) -> dict[str, Any]:
        """What dashboard.js draws: x, the values, the failing values alone, the threshold."""
        xs = [p.at for p in self.points]
        return {
            "id": self.chart_id, "title": f"{self.metric} ({self.run})", "condition": self.condition,
            "x": xs, "values": [p.value for p in self.points],
            "failing": [p.value if p.failing else None for p in self.points],
            "threshold": [self.threshold] * len(xs) if self.threshold is not None else None,
        }


def _seconds(text: Any) -> float | None:
    moment = parse_time(text)
    return moment.timestamp() if moment is not None else None


def _metric_specs(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    metrics = (run.get("spec") or {}).get("metrics") or []
    return {str(m.get("name")): m for m in metrics if isinstance(m, dict)}


def _dry_run(run: Mapping[str, Any]) -> set[str]:
    return {str(d.get("metricName")) for d in (run.get("spec") or {}).get("dryRun") or [] if isinstance(d, dict)}


def metric_charts(runs: Iterable[Mapping[str, Any]]) -> list[MetricChart]:
    """One chart per metric of each run (newest run first), its measurements oldest first."""
    charts: list[MetricChart] = []
    ordered = sorted(runs, key=lambda r: str((r.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    for run in ordered:
        name = str((run.get("metadata") or {}).get("name", ""))
        specs, status = _metric_specs(run), run.get("status") or {}
        results = {str(r.get("name")): r for r in status.get("metricResults") or [] if isinstance(r, dict)}
        for metric, spec in specs.items():
            condition = str(spec.get("successCondition") or spec.get("failureCondition") or "")
            threshold = threshold_of(condition)
            result = results.get(metric, {})
            points = []
            for m in result.get("measurements") or []:
                if not isinstance(m, dict):
                    continue
                at = _seconds(m.get("finishedAt")) or _seconds(m.get("startedAt"))
                if at is None:
                    continue
                raw = m.get("value")
                points.append(Point(at, number_of(raw), "" if raw is None else str(raw), str(m.get("phase") or ""),
                                    str(m.get("message") or "")))
            charts.append(MetricChart(
                run=name, metric=metric, phase=str(result.get("phase") or "Pending"), condition=condition,
                threshold=threshold[1] if threshold else None, points=tuple(points),
                message=str(result.get("message") or status.get("message") or ""),
                dry_run=metric in _dry_run(run), chart_id=f"metric-{len(charts)}",
            ))
    return charts


def weight_series(points: Sequence[WeightPoint], now_set: int | None, now_actual: int | None,
                  now: float) -> dict[str, Any]:
    """The weight chart: every recorded change, then what status says now (a step line)."""
    xs = [p.at.timestamp() for p in points]
    sets: list[int | None] = [p.set_weight for p in points]
    actuals: list[int | None] = [p.actual_weight for p in points]
    if not xs or xs[-1] < now:
        xs.append(now)
        sets.append(now_set)
        actuals.append(now_actual)
    return {"id": "weight", "title": "canary weight", "x": xs, "set": sets, "actual": actuals}
