"""The AnalysisRun state machine (analysis.assess), as tables over the pure core."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import assess
from analysis.assess import Assessment, Observed, Unmeasured
from analysis.model import AnalysisPhase, AnalysisRun, Measurement, Metric

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PHASES = {"S": "Successful", "F": "Failed", "I": "Inconclusive", "E": "Error", "R": "Running"}


def metric(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"prometheus": {"query": "up"}}, **fields}


def new_run(*metrics: dict[str, Any], **spec: Any) -> AnalysisRun:
    return AnalysisRun.load({"metadata": {"name": "r", "namespace": "ns"}, "spec": {"metrics": list(metrics), **spec}})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(letter: str, when: float) -> Measurement:
    phase = AnalysisPhase(PHASES[letter])
    stamp = at(int(when))  # the API keeps whole seconds
    return Measurement(phase=phase, started_at=stamp, finished_at=stamp, value="1",
                       message=f"{phase} at {when:g}s")


def step(run: AnalysisRun, when: float, **letters: str) -> tuple[AnalysisRun, Assessment]:
    """Assess at T0+when with one measurement per keyword (metric name, '_' for '-'), then persist."""
    taken = {name.replace("_", "-"): sample(letter, when) for name, letter in letters.items()}
    result = assess.assess(run, now=at(when), measurements=taken)
    stored = AnalysisRun.load({**run.dump(), "status": result.status.dump()})  # round trip, as the cluster would
    return stored, result


def result_of(run: AnalysisRun, name: str = "m") -> Any:
    assert run.status is not None and run.status.metric_results is not None
    return next(r for r in run.status.metric_results if r.name == name)


def play(run: AnalysisRun, letters: str, *, every: float = 60) -> tuple[AnalysisRun, list[str], Assessment]:
    """Measure metric "m" once per letter, `every` seconds apart; the metric phase after each."""
    phases = []
    result = None
    for index, letter in enumerate(letters):
        run, result = step(run, index * every, m=letter)
        phases.append(result_of(run).phase.value[0])
    assert result is not None
    return run, phases, result


# ---------------------------------------------------------------- metric phase table


@pytest.mark.parametrize(("fields", "measured", "expected"), [
    pytest.param({}, "S", "S", id="no-count-no-interval: one measurement, success"),
    pytest.param({}, "F", "F", id="no-count-no-interval: one measurement, failure"),
    pytest.param({}, "I", "I", id="first inconclusive is Inconclusive"),
    pytest.param({}, "EEEEE", "RRRRE", id="5th consecutive error is Error (default limit 4)"),
    pytest.param({}, "EES", "RRS", id="errors do not count towards count"),
    pytest.param({"interval": "1m", "count": 3}, "SSS", "RRS", id="count 3 with interval"),
    pytest.param({"interval": "1m", "count": 3}, "SF", "RF", id="failureLimit 0: first failure fails"),
    pytest.param({"interval": "1m", "count": 5, "failureLimit": 2}, "FFSF", "RRRF", id="failureLimit 2: third failure"),
    pytest.param({"interval": "1m", "count": 5, "failureLimit": 2}, "FFSSS", "RRRRS",
                 id="failureLimit 2: two tolerated"),
    pytest.param({"interval": "1m", "count": 3, "inconclusiveLimit": 1}, "ISI", "RRI", id="inconclusiveLimit 1"),
    pytest.param({"interval": "1m", "count": 3, "inconclusiveLimit": 1}, "ISS", "RRS", id="inconclusiveLimit 1 kept"),
    pytest.param({"interval": "1m", "consecutiveErrorLimit": 2}, "EEE", "RRE", id="consecutiveErrorLimit 2"),
    pytest.param({"interval": "1m", "consecutiveErrorLimit": 0}, "E", "E", id="consecutiveErrorLimit 0"),
    pytest.param({"interval": "1m", "count": 4, "consecutiveErrorLimit": 1}, "ESESSS", "RRRRRS",
                 id="a success resets the error streak"),
    pytest.param({"interval": "1m", "count": 4, "consecutiveErrorLimit": 1}, "SEE", "RRE", id="two errors in a row"),
    pytest.param({"interval": "1m", "count": 5, "consecutiveSuccessLimit": 2}, "SS", "RS",
                 id="consecutiveSuccessLimit reached before count"),
    pytest.param({"interval": "1m", "count": 5, "failureLimit": -1, "consecutiveSuccessLimit": 2}, "FSFSS", "RRRRS",
                 id="failureLimit -1: failures ignored until the streak"),
    pytest.param({"interval": "1m", "count": 4, "failureLimit": -1, "consecutiveSuccessLimit": 2}, "FSFS", "RRRF",
                 id="only consecutiveSuccessLimit: count reached is Failed"),
    pytest.param({"interval": "1m", "count": 4, "failureLimit": 2, "consecutiveSuccessLimit": 2}, "FSFS", "RRRI",
                 id="both limits: count reached is Inconclusive"),
    pytest.param({"interval": "1m", "count": 4, "failureLimit": 1, "consecutiveSuccessLimit": 2}, "FSF", "RRF",
                 id="both limits: failureLimit still fails"),
    pytest.param({"interval": "1m", "count": 5, "consecutiveSuccessLimit": 3}, "SSES", "RRRR",
                 id="an error breaks the success streak"),
    pytest.param({"interval": "1m"}, "SSSSS", "RRRRR", id="interval without count runs until terminated"),
    pytest.param({"interval": "1m"}, "SSF", "RRF", id="unbounded metric still fails"),
    pytest.param({"interval": "1m", "failureLimit": 1, "inconclusiveLimit": 0}, "FI", "RI",
                 id="inconclusive checked after failed"),
])
def test_metric_phase_after_each_measurement(fields: dict[str, Any], measured: str, expected: str) -> None:
    _run, phases, result = play(new_run(metric(**fields)), measured)
    assert "".join(phases) == expected
    final = PHASES[expected[-1]]
    assert result.status.phase == (final if final != "Running" else "Running")
    if final != "Running":
        assert result.requeue_after is None and result.status.completed_at is not None
    else:
        assert result.requeue_after is not None and result.status.completed_at is None


def test_counters_keep_counting() -> None:
    run, _, _ = play(new_run(metric(interval="1m", failureLimit=10, inconclusiveLimit=10)), "SSEFIES")
    r = result_of(run)
    assert (r.count, r.successful, r.failed, r.inconclusive, r.error, r.consecutive_error, r.consecutive_success) == (
        5, 3, 1, 1, 2, 0, 1)
    assert [m.phase.value[0] for m in r.measurements] == list("SSEFIES")


def test_completed_metric_never_changes_phase() -> None:
    run, _, _ = play(new_run(metric(interval="1m", count=3)), "SF")
    assert result_of(run).phase == "Failed"
    again = assess.assess(run, now=at(200))
    assert again.status == run.status and again.events == () and again.requeue_after is None
    assert assess.due_metrics(run, at(200)) == []
    # a stray measurement for a completed metric of a running run is ignored
    two = new_run(metric("a", interval="1m"), metric("b", interval="1m", count=2), dryRun=[{"metricName": "^a$"}])
    two, _ = step(two, 0, a="F", b="S")
    assert result_of(two, "a").phase == "Failed" and two.status is not None and two.status.phase == "Running"
    two, _ = step(two, 60, a="S", b="S")
    assert result_of(two, "a").phase == "Failed" and result_of(two, "a").count == 1


def test_phase_transition_table_is_closed_for_completed_phases() -> None:
    for phase in AnalysisPhase:
        allowed = assess._MOVES[phase]
        assert allowed == ({phase} if phase.completed else allowed)
    with pytest.raises(AssertionError, match="illegal run transition Failed -> Running"):
        assess._move("run", AnalysisPhase.FAILED, AnalysisPhase.RUNNING)


# ---------------------------------------------------------------- run phase, messages, events


def test_success_sets_times_summary_and_events() -> None:
    run, first = step(new_run(metric(interval="1m", count=2)), 0.5, m="S")
    assert first.status.started_at == T0 and first.status.phase == "Running" and first.events == ()
    assert first.requeue_after == 59.5  # stored times are whole seconds
    run, done = step(run, 60, m="S")
    assert done.status.phase == "Successful" and done.status.completed_at == at(60)
    assert done.status.started_at == T0 and done.status.message is None
    assert done.status.run_summary is not None and done.status.run_summary.dump() == {
        "count": 1, "successful": 1, "failed": 0, "inconclusive": 0, "error": 0}
    assert [(e.reason, e.type) for e in done.events] == [
        ("MetricSuccessful", "Normal"), ("AnalysisRunSuccessful", "Normal")]


def test_failure_message_names_metric_limit_and_measurement() -> None:
    run = new_run(metric("success-rate", successCondition="result[0] >= 0.95"))
    taken = assess.measurement(run.spec.metrics[0], Observed([0.91]), started_at=T0)
    result = assess.assess(run, now=T0, measurements={"success-rate": taken})
    assert result.status.phase == "Failed"
    assert result.status.message == (
        'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0): '
        'result [0.91] did not satisfy successCondition "result[0] >= 0.95"')
    assert result_of(AnalysisRun.load({**run.dump(), "status": result.status.dump()}), "success-rate").message == (
        'result [0.91] did not satisfy successCondition "result[0] >= 0.95"')
    assert [(e.reason, e.type) for e in result.events] == [
        ("MetricFailed", "Warning"), ("AnalysisRunFailed", "Warning")]
    assert "failed (1) > failureLimit (0)" in result.events[1].message


def test_error_message_names_consecutive_errors() -> None:
    run = new_run(metric())
    for second in range(0, 50, 10):
        taken = assess.measurement(run.spec.metrics[0], Unmeasured("connection refused"), started_at=at(second))
        result = assess.assess(run, now=at(second), measurements={"m": taken})
        run = AnalysisRun.load({**run.dump(), "status": result.status.dump()})
    assert result.status.phase == "Error"
    assert result.status.message == (
        'Metric "m" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): connection refused')
    assert result.events[-1].reason == "AnalysisRunError" and result.events[-1].type == "Warning"


def test_worst_metric_decides_the_run() -> None:
    run = new_run(metric("a"), metric("b"), metric("c"))
    run, result = step(run, 0, a="S", b="I", c="S")
    assert result.status.phase == "Inconclusive"
    assert result.status.run_summary is not None and (result.status.run_summary.successful,
                                                      result.status.run_summary.inconclusive) == (2, 1)
    _, worse = step(new_run(metric("a"), metric("b"), metric("c")), 0, a="I", b="F", c="E")
    assert worse.status.phase == "Failed"  # c is only one error: it is concluded Successful by the termination


# ---------------------------------------------------------------- termination


def test_terminate_by_spec_concludes_open_metrics() -> None:
    run = new_run(metric("bg", interval="1m"), metric("late", initialDelay="10m"))
    run, _ = step(run, 0, bg="S")
    run, _ = step(run, 60, bg="S")
    terminated = AnalysisRun.load({**run.dump(), "spec": {**run.dump()["spec"], "terminate": True}})
    assert assess.due_metrics(terminated, at(120)) == []
    result = assess.assess(terminated, now=at(90))
    assert result.status.phase == "Successful" and result.status.message == "Run Terminated"
    assert [(r.name, r.phase.value) for r in result.status.metric_results or []] == [("bg", "Successful")]
    assert result.status.completed_at == at(90)
    assert result.events[-1].message == "Analysis Completed. Result: Successful: Run Terminated"


def test_terminate_before_anything_was_measured() -> None:
    result = assess.assess(new_run(metric(), terminate=True), now=T0)
    assert result.status.phase == "Successful" and result.status.message == "Run Terminated"
    assert result.status.metric_results is None


def test_terminated_run_keeps_a_violated_limit() -> None:
    run = new_run(metric("a", interval="1m", failureLimit=0), metric("b", interval="1m"))
    run, result = step(run, 0, a="F", b="S")
    assert result.status.phase == "Failed"


def test_a_failing_metric_ends_the_whole_run_at_once() -> None:
    run = new_run(metric("background", interval="1m"), metric("gate", interval="1m", count=3))
    run, first = step(run, 0, background="S", gate="S")
    assert first.status.phase == "Running"
    run, second = step(run, 60, background="S", gate="F")
    assert second.status.phase == "Failed"
    assert {r.name: r.phase.value for r in second.status.metric_results or []} == {
        "background": "Successful", "gate": "Failed"}
    assert second.status.message is not None and second.status.message.startswith('Metric "gate" assessed Failed')
    assert [e.reason for e in second.events] == ["MetricFailed", "MetricSuccessful", "AnalysisRunFailed"]
    assert assess.due_metrics(run, at(600)) == []


def test_dry_run_metrics_are_measured_but_never_decide() -> None:
    run = new_run(metric("real", interval="1m", count=2), metric("shadow-rate", interval="1m", count=2),
                  dryRun=[{"metricName": "shadow"}])
    assert [m.name for m in assess.due_metrics(run, T0)] == ["real", "shadow-rate"]
    run, first = step(run, 0, real="S", shadow_rate="F")
    assert first.status.phase == "Running"
    shadow = result_of(run, "shadow-rate")
    assert shadow.phase == "Failed" and shadow.dry_run is True
    assert shadow.message == "Metric assessed Failed due to failed (1) > failureLimit (0): Failed at 0s"
    run, done = step(run, 60, real="S")
    assert done.status.phase == "Successful" and done.status.message is None
    assert done.status.dry_run_summary is not None and done.status.dry_run_summary.dump() == {
        "count": 1, "successful": 0, "failed": 1, "inconclusive": 0, "error": 0}
    assert done.status.run_summary is not None and done.status.run_summary.dump() == {
        "count": 1, "successful": 1, "failed": 0, "inconclusive": 0, "error": 0}


def test_only_dry_run_metrics_make_a_successful_run() -> None:
    _, result = step(new_run(metric("a"), dryRun=[{"metricName": ".*"}]), 0, a="F")
    assert result.status.phase == "Successful"


# ---------------------------------------------------------------- retention


@pytest.mark.parametrize(("retention", "taken", "kept"), [
    ({}, 12, 10),
    ({"measurementRetention": [{"metricName": "m", "limit": 2}]}, 5, 2),
    ({"measurementRetention": [{"metricName": "m", "limit": 20}]}, 12, 12),
])
def test_measurement_retention_trims_but_counters_keep_counting(
    retention: dict[str, Any], taken: int, kept: int
) -> None:
    run, _, _ = play(new_run(metric(interval="1m"), **retention), "S" * taken)
    r = result_of(run)
    assert len(r.measurements) == kept and r.count == taken and r.successful == taken
    assert r.measurements[-1].started_at == at((taken - 1) * 60)


# ---------------------------------------------------------------- scheduling


def names(metrics: list[Metric]) -> list[str]:
    return [m.name for m in metrics]


def test_interval_is_measured_from_the_previous_finish() -> None:
    run, result = step(new_run(metric(interval="1m", count=3)), 0, m="S")
    assert result.requeue_after == 60
    assert names(assess.due_metrics(run, at(59))) == []
    assert names(assess.due_metrics(run, at(60))) == ["m"]


def test_error_is_retried_after_ten_seconds_whatever_the_interval() -> None:
    run, result = step(new_run(metric(interval="5m", count=3)), 0, m="E")
    assert result.requeue_after == 10
    assert names(assess.due_metrics(run, at(9))) == [] and names(assess.due_metrics(run, at(10))) == ["m"]
    run, result = step(run, 10, m="S")
    assert result.requeue_after == 300


def test_initial_delay_counts_from_started_at() -> None:
    run = new_run(metric("now"), metric("later", initialDelay="30s", interval="1m", count=2))
    assert names(assess.due_metrics(run, T0)) == ["now"]
    run, result = step(run, 0, now="S")
    assert result.status.phase == "Running" and result.requeue_after == 30
    assert names(assess.due_metrics(run, at(29))) == [] and names(assess.due_metrics(run, at(30))) == ["later"]
    run, result = step(run, 31, later="S")
    assert result.requeue_after == 60


def test_requeue_is_the_earliest_next_measurement() -> None:
    run = new_run(metric("slow", interval="5m"), metric("fast", interval="30s"), metric("flaky", interval="10m"))
    _, result = step(run, 0, slow="S", fast="S", flaky="E")
    assert result.requeue_after == 10
    _, result = step(run, 0, slow="S", fast="S", flaky="S")
    assert result.requeue_after == 30


def test_count_reached_is_not_due() -> None:
    run = new_run(metric("a", interval="1m", count=1), metric("b", interval="1m", count=3))
    run, _ = step(run, 0, a="S", b="S")
    assert names(assess.due_metrics(run, at(60))) == ["b"]


def test_nothing_due_leaves_the_status_unchanged() -> None:
    run, _ = step(new_run(metric(interval="1m", count=3)), 0, m="S")
    again = assess.assess(run, now=at(30))
    assert again.status.dump() == (run.status.dump() if run.status else None)
    assert again.requeue_after == 30


def test_assess_does_not_mutate_its_input() -> None:
    run, _ = step(new_run(metric(interval="1m", count=2)), 0, m="S")
    before = run.dump()
    assess.assess(run, now=at(60), measurements={"m": sample("F", 60)})
    assert run.dump() == before


def test_measurement_for_an_unknown_metric_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match=r"metrics the run does not have: \['nope'\]"):
        assess.assess(new_run(metric()), now=T0, measurements={"nope": sample("S", 0)})


# ---------------------------------------------------------------- spec errors


@pytest.mark.parametrize(("spec", "message"), [
    ({"metrics": []},
     r"Analysis spec invalid: spec.metrics: no metrics \(add at least one metric under spec.metrics\)"),
    ({"metrics": [metric(interval="often")]},
     r"Analysis spec invalid: spec.metrics\[0\].interval: 'often' is not a duration"),
    ({"metrics": [metric(provider={})]},
     r"Analysis spec invalid: spec.metrics\[0\].provider: metric 'm' sets no provider"),
    ({"metrics": [metric(count="{{args.n}}")]},
     r"Unable to resolve metric arguments: failed to resolve \{\{args.n\}\}"),
    ({"metrics": [metric()], "args": [{"name": "x"}]}, r"Unable to resolve metric arguments: args.x was not resolved"),
    ({"metrics": [metric()], "dryRun": [{"metricName": "zzz"}]},
     r"spec.dryRun\[0\].metricName: 'zzz' matches no metric"),
])
def test_spec_errors_put_the_run_straight_into_error(spec: dict[str, Any], message: str) -> None:
    run = AnalysisRun.load({"metadata": {"name": "r"}, "spec": spec})
    assert assess.due_metrics(run, T0) == []
    result = assess.assess(run, now=T0)
    assert result.status.phase == "Error" and result.requeue_after is None
    assert result.status.message is not None
    assert result.status.completed_at == T0 and result.status.started_at == T0
    assert re.search(message, result.status.message)
    assert [(e.reason, e.type) for e in result.events] == [("AnalysisRunError", "Warning")]


def test_reject_keeps_results_and_ignores_completed_runs() -> None:
    run, _ = step(new_run(metric(interval="1m", count=2)), 0, m="S")
    rejected = assess.reject(run.status, now=at(5),
                             message="Unable to resolve metric arguments: key 'k' does not exist")
    assert rejected.status.phase == "Error"
    assert rejected.status.metric_results == (run.status.metric_results if run.status else None)
    assert rejected.status.started_at == T0 and rejected.status.completed_at == at(5)
    assert assess.reject(rejected.status, now=at(9), message="again").status == rejected.status


# ---------------------------------------------------------------- one measurement


@pytest.mark.parametrize(("value", "shown"), [
    (10.0, "10"), (0.98, "0.98"), (1e-05, "0.00001"), (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
    ([0.98, 0.97], "[0.98,0.97]"), ([], "[]"), ([10, 11.5], "[10,11.5]"), ("raw body", "raw body"),
    ({"a": 1, "b": [True, None]}, '{"a":1,"b":[true,null]}'), (True, "true"), (None, "null"), (3, "3"),
])
def test_measured_value_is_formatted_like_argo(value: object, shown: str) -> None:
    assert assess.measured_value(value) == shown


@pytest.mark.parametrize(("success", "failure", "value", "phase", "message"), [
    ("result[0] >= 0.95", None, [0.98], "Successful", 'result [0.98] satisfied successCondition "result[0] >= 0.95"'),
    ("result[0] >= 0.95", None, [0.91], "Failed", 'result [0.91] did not satisfy successCondition "result[0] >= 0.95"'),
    ("result > 1", "result < 0", 0.5, "Inconclusive", "satisfied neither"),
    ("result[0] >= 0.95", None, [], "Error", "no data returned from the metric provider"),
    (None, None, 7.0, "Successful", "result 7"),
])
def test_measurement_evaluates_conditions(success: str | None, failure: str | None, value: object, phase: str,
                                          message: str) -> None:
    fields = {k: v for k, v in (("successCondition", success), ("failureCondition", failure)) if v}
    taken = assess.measurement(Metric.load(metric(**fields)), Observed(value), started_at=at(1.7), finished_at=at(2.2))
    assert taken.phase == phase and taken.message is not None and message in taken.message
    assert taken.started_at == at(1) and taken.finished_at == at(2)
    assert taken.value == assess.measured_value(value)


def test_measurement_redacts_secrets_everywhere() -> None:
    target = Metric.load(metric(successCondition='result == "hunter2"'))
    taken = assess.measurement(target, Observed("hunter2-ok", {"ResolvedQuery": "q?token=hunter2"}), started_at=T0,
                               secrets={"hunter2"})
    dumped = str(taken.dump())
    assert "hunter2" not in dumped and "*****" in (taken.message or "")
    assert taken.value == "*****-ok" and taken.metadata == {"ResolvedQuery": "q?token=*****"}
    failed = assess.measurement(target, Unmeasured("401 for token hunter2"), started_at=T0, secrets={"hunter2"})
    assert failed.phase == "Error" and failed.message == "401 for token *****" and failed.value is None


def test_provider_metadata_is_kept_on_the_measurement_and_result() -> None:
    run = new_run(metric())
    taken = assess.measurement(run.spec.metrics[0], Observed(1.0, {"ResolvedPrometheusQuery": "up"}), started_at=T0)
    result = assess.assess(run, now=T0, measurements={"m": taken})
    r = (result.status.metric_results or [])[0]
    assert r.metadata == {"ResolvedPrometheusQuery": "up"}
    assert r.measurements[0].metadata == {"ResolvedPrometheusQuery": "up"}
