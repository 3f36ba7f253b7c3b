"""The backtest replay (analysis.backtest): a run's own semantics on history, on a stepped clock.

Each case is a template, a history (a value per metric as a function of the time asked)
and the verdict and decision time the run semantics (argo-rollouts.md §3.4-3.6) give:
failureLimit reached at the Nth interval, initialDelay, the 10 s error retry, count with
consecutiveSuccessLimit, inconclusiveLimit and the hold, dryRun, measurementRetention, a run
still going at the end of the window. Every measurement is asked at its own time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import backtest
from analysis.model import AnalysisPhase, AnalysisRun, Metric
from analysis.providers import ProviderError, Providers, Result

T0 = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
END = T0 + timedelta(hours=1)
P = AnalysisPhase


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class History:
    """A provider answering from a function of (metric name, time); an Exception is raised as ProviderError."""

    values: Callable[[str, datetime], Any]
    asked: list[tuple[str, datetime]] = field(default_factory=list)

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.asked.append((metric.name, at))
        value = self.values(metric.name, at)
        if isinstance(value, Exception):
            raise ProviderError(str(value))
        return Result(value=value)


def run_of(*metrics: dict[str, Any], **spec: Any) -> AnalysisRun:
    return AnalysisRun.load({"metadata": {"name": "bt", "namespace": "default"},
                             "spec": {"metrics": list(metrics), **spec}})


def metric(name: str = "success-rate", **fields: Any) -> dict[str, Any]:
    return {"name": name, "successCondition": "result >= 0.95", "provider": {"prometheus": {"query": "q"}}, **fields}


def step_change(before: Any, after: Any, change: float) -> Callable[[str, datetime], Any]:
    return lambda _name, moment: before if moment < at(change) else after


def replay(run: AnalysisRun, history: History, end: datetime = END) -> backtest.Replay:
    return backtest.replay(run, Providers({"prometheus": history}), start=T0, end=end)


def times(result: backtest.Replay) -> list[float]:
    return [(t.measurement.started_at - T0).total_seconds() for t in result.timeline  # type: ignore[operator]
            if t.measurement.started_at is not None]


def test_a_bad_release_fails_when_failure_limit_is_passed_at_the_nth_interval() -> None:
    """Good until 10:05, bad after: failures at 5m, 6m, 7m; the third passes failureLimit 2 at 10:07."""
    history = History(step_change(0.99, 0.5, 300))
    result = replay(run_of(metric(interval="1m", count=10, failureLimit=2)), history)
    assert (result.phase, result.decided_at) == (P.FAILED, at(420))
    assert times(result) == [0, 60, 120, 180, 240, 300, 360, 420]
    assert [t.measurement.phase for t in result.timeline][-3:] == [P.FAILED] * 3
    assert history.asked == [("success-rate", at(s)) for s in times(result)]  # each asked at its own time
    assert "failed (3) > failureLimit (2)" in result.message


def test_a_good_release_succeeds_at_its_count_after_the_initial_delay() -> None:
    history = History(lambda _n, _t: 0.99)
    result = replay(run_of(metric(interval="1m", count=3, initialDelay="30s")), history)
    assert (result.phase, result.decided_at) == (P.SUCCESSFUL, at(150))
    assert times(result) == [30, 90, 150]


def test_errors_are_retried_every_ten_seconds_up_to_the_consecutive_error_limit() -> None:
    history = History(lambda _n, _t: RuntimeError("connection refused"))
    result = replay(run_of(metric(interval="1m", count=5, consecutiveErrorLimit=2)), history)
    assert (result.phase, result.decided_at) == (P.ERROR, at(20))
    assert times(result) == [0, 10, 20]
    assert all("connection refused" in (t.measurement.message or "") for t in result.timeline)


def test_consecutive_success_limit_needs_a_streak() -> None:
    script = iter([0.1, 0.99, 0.99, 0.1, 0.99, 0.99, 0.99])
    history = History(lambda _n, _t: next(script))
    result = replay(run_of(metric(interval="1m", failureLimit=-1, consecutiveSuccessLimit=3)), history)
    assert (result.phase, result.decided_at) == (P.SUCCESSFUL, at(360))


def test_inconclusive_limit_ends_the_run_as_argo_does() -> None:
    """Both conditions false is Inconclusive; the second passes inconclusiveLimit 1."""
    history = History(lambda _n, _t: 0.7)
    result = replay(run_of(metric(interval="1m", count=5, failureCondition="result < 0.5", inconclusiveLimit=1)),
                    history)
    assert (result.phase, result.decided_at) == (P.INCONCLUSIVE, at(60))


def test_with_hold_inconclusive_measurements_wait_for_data_and_the_run_goes_on_by_itself() -> None:
    """No data until 10:03 (Inconclusive, held), then three good measurements at 3m, 4m, 5m."""
    history = History(step_change(0.7, 0.99, 180))
    spec = metric(interval="1m", count=3, failureCondition="result < 0.5", inconclusiveLimit=1,
                  inconclusive={"hold": True})
    result = replay(run_of(spec), history)
    assert (result.phase, result.decided_at) == (P.SUCCESSFUL, at(300))
    assert [t.held for t in result.timeline] == [True, True, True, False, False, False]
    final = result.status.metric_results[0]  # type: ignore[index]
    assert (final.count, final.inconclusive, final.successful) == (3, 0, 3)


def test_a_dry_run_metric_is_measured_but_never_decides() -> None:
    history = History(lambda name, _t: 0.1 if name == "latency" else 0.99)
    result = replay(run_of(metric(interval="1m", count=2), metric("latency", interval="1m", count=2),
                           dryRun=[{"metricName": "latency"}]), history)
    assert (result.phase, result.decided_at) == (P.SUCCESSFUL, at(60))
    assert {(t.metric, t.dry_run) for t in result.timeline} == {("success-rate", False), ("latency", True)}


def test_the_timeline_keeps_what_measurement_retention_trims() -> None:
    history = History(lambda _n, _t: 0.99)
    result = replay(run_of(metric(interval="1m", count=5), measurementRetention=[{"metricName": ".*", "limit": 2}]),
                    history)
    assert len(result.timeline) == 5
    assert len(result.status.metric_results[0].measurements or []) == 2  # type: ignore[index]


def test_a_run_without_a_verdict_by_the_end_is_running_with_the_next_measurement_due() -> None:
    history = History(lambda _n, _t: 0.99)
    result = replay(run_of(metric(interval="1m")), history, end=at(150))
    assert (result.phase, result.decided_at, result.next_due) == (P.RUNNING, None, at(180))
    assert times(result) == [0, 60, 120]


def test_a_window_too_long_for_the_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backtest, "MAX_STEPS", 3)
    with pytest.raises(backtest.ReplayTooLong, match="more than 3 measurement times"):
        replay(run_of(metric(interval="1m")), History(lambda _n, _t: 0.99))
