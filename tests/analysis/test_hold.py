"""Hold on "not enough data" (metric `inconclusive.hold`, analysis.assess and analysis.checks).

Covers: a held Inconclusive counts toward nothing and never ends the run; the run says it
is waiting for data (status message, `waiting_for_data`, one event per wait); data arriving
goes on by itself, a failure after a wait still counts; dry-run metrics never hold the
Rollout; without the field Argo's counting is unchanged; the field's one rule (an interval).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import assess, checks
from analysis.model import AnalysisPhase, AnalysisRun, AnalysisTemplate, Measurement

T0 = datetime(2024, 1, 1, tzinfo=UTC)
P = AnalysisPhase
NO_DATA = "insufficient data: n=3 < minSamples 20"


def metric(name: str = "judge", *, hold: bool | None = True, **fields: Any) -> dict[str, Any]:
    extra = {"inconclusive": {"hold": hold}} if hold is not None else {}
    return {"name": name, "interval": "1m", "count": 2, "inconclusiveLimit": 0,
            "provider": {"prometheus": {"query": "up"}}, **extra, **fields}


def run_of(*metrics: dict[str, Any], **spec: Any) -> AnalysisRun:
    return AnalysisRun.load({"metadata": {"name": "r", "namespace": "ns"}, "spec": {"metrics": list(metrics), **spec}})


def taken(phase: AnalysisPhase, seconds: int, message: str | None = None) -> Measurement:
    stamp = T0 + timedelta(seconds=seconds)
    return Measurement(phase=phase, started_at=stamp, finished_at=stamp, value="3", message=message)


def play(run: AnalysisRun, *steps: tuple[int, dict[str, Measurement]]) -> tuple[AnalysisRun, list[assess.Assessment]]:
    results = []
    for seconds, measurements in steps:
        result = assess.assess(run, now=T0 + timedelta(seconds=seconds), measurements=measurements)
        run = AnalysisRun.load({**run.dump(), "status": result.status.dump()})
        results.append(result)
    return run, results


def only(run: AnalysisRun) -> Any:
    assert run.status is not None and run.status.metric_results
    return run.status.metric_results[0]


def test_a_held_measurement_counts_toward_nothing_and_the_run_waits_for_data() -> None:
    run, results = play(run_of(metric()), (0, {"judge": taken(P.INCONCLUSIVE, 0, NO_DATA)}),
                        (60, {"judge": taken(P.INCONCLUSIVE, 60, NO_DATA)}))
    result = only(run)
    assert run.status is not None and run.status.phase is P.RUNNING  # inconclusiveLimit 0 not reached
    assert (result.phase, result.count or 0, result.inconclusive or 0) == (P.RUNNING, 0, 0)
    assert len(result.measurements) == 2  # recorded, for `get analysisrun` and the backtest
    assert run.status.message == f"waiting for data: metric 'judge': {NO_DATA}"
    assert assess.waiting_for_data(run.dump()) == run.status.message
    assert results[-1].requeue_after == 60  # measured again at the next interval
    assert [e.reason for r in results for e in r.events] == ["MetricWaitingForData"]  # one per wait


def test_data_arriving_goes_on_by_itself_and_a_failure_still_counts() -> None:
    run, _ = play(run_of(metric(failureLimit=0)), (0, {"judge": taken(P.INCONCLUSIVE, 0, NO_DATA)}),
                  (60, {"judge": taken(P.SUCCESSFUL, 60)}))
    assert assess.waiting_for_data(run.dump()) is None
    assert run.status is not None and run.status.phase is P.RUNNING and not run.status.message
    run, _ = play(run, (120, {"judge": taken(P.INCONCLUSIVE, 120, NO_DATA)}), (180, {"judge": taken(P.FAILED, 180)}))
    assert run.status is not None and run.status.phase is P.FAILED
    assert (only(run).count, only(run).successful, only(run).failed) == (2, 1, 1)


def test_without_the_field_argo_counts_the_inconclusive_and_ends_the_run() -> None:
    run, _ = play(run_of(metric(hold=None)), (0, {"judge": taken(P.INCONCLUSIVE, 0, NO_DATA)}))
    assert run.status is not None and run.status.phase is P.INCONCLUSIVE
    assert assess.waiting_for_data(run.dump()) is None
    run, _ = play(run_of(metric(hold=False)), (0, {"judge": taken(P.INCONCLUSIVE, 0, NO_DATA)}))
    assert run.status is not None and run.status.phase is P.INCONCLUSIVE


def test_a_dry_run_metric_waiting_for_data_holds_nothing() -> None:
    run, _ = play(run_of(metric(), metric("ok", hold=None), dryRun=[{"metricName": "judge"}]),
                  (0, {"judge": taken(P.INCONCLUSIVE, 0, NO_DATA), "ok": taken(P.SUCCESSFUL, 0)}))
    assert assess.waiting_for_data(run.dump()) is None


def test_a_held_measurement_resets_the_error_streak_the_backend_answered() -> None:
    run, _ = play(run_of(metric()), (0, {"judge": taken(P.ERROR, 0, "timeout")}),
                  (10, {"judge": taken(P.INCONCLUSIVE, 10, NO_DATA)}))
    assert (only(run).consecutive_error, only(run).error) == (0, 1)


def test_hold_needs_an_interval() -> None:
    template = AnalysisTemplate.load({"metadata": {"name": "t"}, "spec": {"metrics": [
        {"name": "judge", "inconclusive": {"hold": True}, "provider": {"prometheus": {"query": "up"}}}]}})
    found = [(p.path, p.fix) for p in checks.spec_problems(template) if p.is_error]
    assert found == [("spec.metrics[0].inconclusive.hold", "add interval, e.g. interval: 1m, or remove the hold")]
