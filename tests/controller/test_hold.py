"""Hold on "not enough data" end to end: both controllers, the InMemoryCluster, a stepped clock.

A metric with `inconclusive.hold: true` that answers `[]` (no canary traffic: both
conditions false, Inconclusive) holds the Rollout where it is: the weight stays, an
inline analysis step does not complete, a background run keeps the next step (and the
promotion) from starting, the phase message says it waits for data; when data arrives
the Rollout goes on by itself. Without the field (Argo's manifests), the same answers end
the run Inconclusive and pause the Rollout, as Argo does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.controller.dsl import START, Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
NO_DATA: list[float] = []


def with_hold(scenario: Scenario, template: str, *, ok: str, bad: str, hold: bool = True) -> Scenario:
    """The template's metric judges only when there is data, and (with `hold`) waits when there is none."""
    doc = next(d for d in scenario.docs if d["kind"] == "AnalysisTemplate" and d["metadata"]["name"] == template)
    metric: dict[str, Any] = doc["spec"]["metrics"][0]
    metric["successCondition"] = f"len(result) > 0 && {ok}"
    metric["failureCondition"] = f"len(result) > 0 && {bad}"
    if hold:
        metric["inconclusive"] = {"hold": True}
    return scenario


@pytest.fixture
def multi_step() -> Iterator[Scenario]:
    scenario = with_hold(Scenario("multi-step", stable="stable", canary="canary"), "error-rate",
                         ok="result[0] <= 0.05", bad="result[0] > 0.05")
    scenario.provider.script("error-rate", [0.0])
    scenario.given_healthy()
    yield scenario
    scenario.close()


def test_a_step_analysis_without_data_holds_the_weight_and_resumes_when_data_arrives(multi_step: Scenario) -> None:
    s = multi_step
    # Given no canary traffic for the first four measurements (1m, 2m, 3m, 4m), then a good error rate
    s.provider.script("error-rate", NO_DATA, NO_DATA, NO_DATA, NO_DATA, [0.01])
    s.when_image(NEW_IMAGE).run_until(lambda: len(s.provider.calls) == 4)
    s.run_for(30)
    # Then the canary stays at 25%, the step is not done, the Rollout says it is waiting for data
    assert s.vs_weights == (75, 25) and s.status["currentStepIndex"] == 3
    assert s.phase == "Progressing"
    assert "waiting for data: metric 'error-rate'" in s.status["message"]
    [run] = [r for r in s.analysis_runs() if r["metadata"]["labels"].get("rollout-type") == "Step"]
    assert run["status"]["phase"] == "Running" and run["status"]["metricResults"][0].get("inconclusive", 0) == 0
    waits = [e for e in s.cluster.list("Event", "default") if e["reason"] == "MetricWaitingForData"]
    assert [(e["involvedObject"]["kind"], e["involvedObject"]["name"]) for e in waits] == [
        ("AnalysisRun", run["metadata"]["name"])]  # one event for the wait, not one per measurement
    # When data arrives it goes on by itself: three good measurements (5m, 6m, 7m), 50% 2m, 100% 30s
    s.run_until(lambda: s.phase == "Healthy")
    assert s.weights.canary_weights == [0, 10, 25, 50, 100, 0]
    assert s.clock.now() == START + timedelta(minutes=9, seconds=30)
    assert [at - START for _, at in s.provider.calls] == [timedelta(minutes=m) for m in range(1, 8)]


def test_a_failure_after_the_wait_still_aborts(multi_step: Scenario) -> None:
    s = multi_step
    s.provider.script("error-rate", NO_DATA, NO_DATA, [0.30])
    s.when_image(NEW_IMAGE).run_until(lambda: s.phase == "Degraded")
    assert s.weights.canary_weights == [0, 10, 25, 0]
    assert s.clock.now() == START + timedelta(minutes=3)


def test_a_background_analysis_without_data_keeps_the_next_step_from_starting() -> None:
    s = with_hold(Scenario("istio-canary"), "success-rate", ok="result[0] >= 0.95", bad="result[0] < 0.95")
    try:
        s.provider.script("success-rate", [0.99])
        s.given_healthy()
        # Given no data at 0, 5m and 10m (the pause ends at 10m), data from 15m
        s.provider.script("success-rate", NO_DATA, NO_DATA, NO_DATA, [0.99])
        s.when_image(NEW_IMAGE).run_until(lambda: len(s.provider.calls) == 3).run_for(120)
        assert s.clock.now() == START + timedelta(minutes=12)
        # Then the pause is over but the canary stays at 50%, waiting for data, not promoted
        assert s.vs_weights == (50, 50) and s.phase == "Progressing"
        assert "Background AnalysisRun" in s.status["message"] and "waiting for data" in s.status["message"]
        assert s.status["stableRS"] != s.status["currentPodHash"]
        # When data arrives at 15m the Rollout promotes by itself
        s.run_until(lambda: s.phase == "Healthy")
        assert s.clock.now() == START + timedelta(minutes=15)
        assert s.weights.canary_weights == [0, 50, 100, 0]
    finally:
        s.close()


def test_without_the_hold_argo_pauses_on_the_inconclusive_run() -> None:
    s = with_hold(Scenario("multi-step", stable="stable", canary="canary"), "error-rate",
                  ok="result[0] <= 0.05", bad="result[0] > 0.05", hold=False)
    try:
        s.provider.script("error-rate", [0.0])
        s.given_healthy()
        s.provider.script("error-rate", NO_DATA)
        s.when_image(NEW_IMAGE).run_until(lambda: [c["reason"] for c in s.status.get("pauseConditions") or []]
                                          == ["InconclusiveAnalysisRun"])
        assert s.phase == "Paused"
        assert s.clock.now() == START + timedelta(minutes=1) and s.vs_weights == (75, 25)
    finally:
        s.close()


def test_waiting_for_data_is_not_a_stall_for_the_progress_deadline() -> None:
    """progressDeadlineSeconds 60 with progressDeadlineAbort: ten minutes without data must not abort."""
    s = with_hold(Scenario("istio-canary"), "success-rate", ok="result[0] >= 0.95", bad="result[0] < 0.95")
    rollout = next(doc for doc in s.docs if doc["kind"] == "Rollout")
    rollout["spec"] |= {"progressDeadlineSeconds": 60, "progressDeadlineAbort": True}
    rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}]
    try:
        s.provider.script("success-rate", [0.99])
        s.given_healthy()
        s.provider.script("success-rate", NO_DATA, NO_DATA, NO_DATA, [0.99])
        s.when_image(NEW_IMAGE).run_until(lambda: len(s.provider.calls) == 3).run_for(120)
        assert s.vs_weights == (50, 50) and s.phase == "Progressing" and not s.status.get("abort")
        assert "waiting for data" in s.status["message"]
        s.run_until(lambda: s.phase in ("Healthy", "Degraded"))
        assert (s.phase, s.clock.now()) == ("Healthy", START + timedelta(minutes=15))
        assert not s.events("ProgressDeadlineExceeded")
    finally:
        s.close()
