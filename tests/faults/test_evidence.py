"""A canary is promoted only on evidence (the safety issue, defects 1-3).

Each test is a canary story on the InMemoryCluster with a stepped clock and both
controllers. The metric provider misbehaves the way real ones did: it raises something
other than ProviderError, or it never yields a successful measurement. In every case the
canary never gets all the traffic and is never promoted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from analysis.model import Metric
from analysis.providers import ProviderError, Result
from tests.controller.dsl import START, Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


class Raising:
    """A provider with a bug: it raises `error` (not a ProviderError) on every call, or the
    scripted value after `healthy_calls` good answers."""

    def __init__(self, error: BaseException, *, healthy_calls: int = 0) -> None:
        self.error, self.healthy_calls = error, healthy_calls
        self.calls: list[datetime] = []

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.calls.append(at)
        if len(self.calls) <= self.healthy_calls:
            return Result(value=[0.99])
        raise self.error


def rollout_of(scenario: Scenario) -> dict[str, Any]:
    return next(doc for doc in scenario.docs if doc["kind"] == "Rollout")


def metric_of(scenario: Scenario) -> dict[str, Any]:
    template = next(doc for doc in scenario.docs if doc["kind"] == "AnalysisTemplate")
    metric: dict[str, Any] = template["spec"]["metrics"][0]
    return metric


def as_step_analysis(scenario: Scenario) -> None:
    """The example's background analysis becomes an analysis step after a 20% step."""
    canary = rollout_of(scenario)["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "success-rate"}],
                                                        "args": canary.pop("analysis")["args"]}}]


def istio(provider: Any) -> Scenario:
    return Scenario("istio-canary", provider=provider)


def deploy_then_update(scenario: Scenario, closing: list[Scenario], *, healthy_first: bool = True) -> Scenario:
    """The first revision is promoted without steps (no analysis), then a new image starts the canary."""
    closing.append(scenario)
    scenario.given_healthy()
    return scenario.when_image(NEW_IMAGE)


def never_promoted(scenario: Scenario) -> None:
    stable = scenario.status["stableRS"]
    [rs] = [rs for rs in scenario.cluster.list("ReplicaSet", "default")
            if rs["metadata"]["labels"].get("rollouts-pod-template-hash") == stable]
    assert rs["spec"]["template"]["spec"]["containers"][0]["image"] != NEW_IMAGE, "the canary was promoted"
    assert 100 not in scenario.weights.canary_weights, scenario.weights.entries


@pytest.mark.parametrize("error", [LookupError("unknown encoding: utf8mb4"), RecursionError("maximum recursion"),
                                   ValueError("Exceeds the limit (4300 digits)")], ids=type)
def test_a_provider_bug_is_an_error_measurement_and_the_background_run_aborts(
        error: BaseException, closing: list[Scenario]) -> None:
    # Given a background analysis whose condition can never pass and a provider that raises
    scenario = istio(Raising(error))
    metric = metric_of(scenario)
    metric.update(successCondition="false", failureLimit=0)
    deploy_then_update(scenario, closing).run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
    # Then each failure to measure is an Error measurement, counted against consecutiveErrorLimit (4)
    [run] = scenario.analysis_runs()
    [result] = run["status"]["metricResults"]
    assert run["status"]["phase"] == "Error"
    assert result["error"] == 5 and result.get("successful", 0) == 0
    assert type(error).__name__ in result["measurements"][-1]["message"]
    # and the canary is aborted, never promoted
    assert scenario.status["abort"] is True and scenario.vs_weights == (100, 0)
    never_promoted(scenario)


def test_a_step_analysis_whose_provider_raises_aborts_instead_of_hanging(closing: list[Scenario]) -> None:
    scenario = istio(Raising(LookupError("unknown encoding: utf8mb4")))
    as_step_analysis(scenario)
    metric_of(scenario).update(count=1, failureLimit=0)
    deploy_then_update(scenario, closing).run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
    [run] = scenario.analysis_runs()
    assert run["status"]["phase"] in ("Error", "Successful")
    assert run["status"]["metricResults"][0]["error"] >= 1
    assert "RolloutAborted" in scenario.status["message"]
    never_promoted(scenario)


def test_a_step_run_that_ends_successful_without_a_success_is_not_evidence(closing: list[Scenario]) -> None:
    # Argo reads count 1 with one failure within failureLimit 1 as a Successful run
    scenario = Scenario("istio-canary")
    scenario.provider.script("success-rate", [0.42])  # type: ignore[attr-defined]
    as_step_analysis(scenario)
    metric_of(scenario).update(count=1, failureLimit=1)
    deploy_then_update(scenario, closing).run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
    [run] = scenario.analysis_runs()
    assert run["status"]["phase"] == "Successful"  # Argo's verdict on the run is kept
    assert "ended without evidence" in scenario.status["message"]
    assert "has no successful measurement" in scenario.status["message"]
    never_promoted(scenario)


def test_a_background_run_without_a_verdict_holds_promotion_at_the_last_weight(closing: list[Scenario]) -> None:
    # Given a background analysis that can only ever error, with a limit too high to end the run in the pause
    scenario = istio(Raising(ProviderError("Post \"ftp://metrics\": unsupported protocol scheme")))
    metric_of(scenario).update(consecutiveErrorLimit=200)
    deploy_then_update(scenario, closing)
    # When the steps are over (the 10m pause ended)
    scenario.run_until(lambda: scenario.clock.now() >= START + timedelta(minutes=12))
    # Then promotion waits at the last step's weight, and says for what
    assert scenario.phase == "Progressing"
    assert scenario.status["message"].startswith("waiting for background analysis evidence: ")
    assert scenario.vs_weights == (50, 50)
    assert scenario.weights.canary_weights == [0, 50]  # never all traffic, not even for the pass that ended the steps
    never_promoted(scenario)
    # and when the run finally ends in Error, the canary is aborted (the progress deadline may fire first)
    scenario.run_until(lambda: bool(scenario.status.get("abort")), max_seconds=4 * 3600)
    assert scenario.phase == "Degraded" and scenario.vs_weights == (100, 0)
    assert "Background analysis phase Error" in scenario.status["message"]
    never_promoted(scenario)


def test_a_background_run_that_measures_again_lets_the_held_promotion_go(closing: list[Scenario]) -> None:
    # Given a backend that errors through the pause and then answers: the hold ends by itself
    class Recovering(Raising):
        def measure(self, metric: Metric, *, at: datetime) -> Result:
            self.calls.append(at)
            if at < START + timedelta(minutes=11):
                raise ProviderError("connection refused")
            return Result(value=[0.99])

    scenario = istio(Recovering(ProviderError("")))
    metric_of(scenario).update(consecutiveErrorLimit=200)
    deploy_then_update(scenario, closing).run_until(lambda: scenario.phase == "Healthy", max_seconds=3600)
    assert scenario.clock.now() >= START + timedelta(minutes=11)
    assert scenario.weights.canary_weights == [0, 50, 100, 0]
    [run] = scenario.analysis_runs()
    assert run["status"]["metricResults"][0]["successful"] >= 1


def test_the_istio_example_as_written_now_aborts_a_failing_canary(closing: list[Scenario]) -> None:
    # Its 4th failure (15m) comes after its 10m pause: before, the canary was promoted at 10m on
    # three failures within failureLimit 3 and no success. Now promotion waits for evidence.
    scenario = Scenario("istio-canary")
    scenario.provider.script("success-rate", [0.42])  # type: ignore[attr-defined]
    deploy_then_update(scenario, closing).run_until(lambda: scenario.phase in ("Degraded", "Healthy"))
    assert scenario.phase == "Degraded"
    assert scenario.clock.now() == START + timedelta(minutes=15)
    assert scenario.weights.canary_weights == [0, 50, 0]
    never_promoted(scenario)


@pytest.mark.parametrize(("strategy", "path"), [
    ({"blueGreen": {"activeService": "stable-svc", "previewService": "canary-svc",
                    "activeMetadata": {"labels": {"role": "active"}}}}, "spec.strategy.blueGreen.activeMetadata"),
    ({}, "spec.strategy"),
])
def test_a_strategy_not_run_is_invalid_spec_and_never_crashes(strategy: dict[str, Any], path: str,
                                                              closing: list[Scenario]) -> None:
    scenario = Scenario("istio-canary")
    closing.append(scenario)
    rollout_of(scenario)["spec"]["strategy"] = strategy
    scenario.given_objects().run_for(120)
    status = scenario.status
    assert status["phase"] == "Degraded"
    [condition] = [c for c in status["conditions"] if c["type"] == "InvalidSpec"]
    assert condition["message"].startswith(f"{path}: ")
    assert scenario.manager.metrics.rollout_reconcile_error.labels("default", scenario.rollout_name)._value.get() == 0
    assert scenario.vs_weights == (100, 0)
    assert len(scenario.events("InvalidSpec")) == 1


def test_an_experiment_step_whose_analysis_fails_aborts_and_is_never_passed_over(closing: list[Scenario]) -> None:
    scenario = Scenario("istio-canary")
    scenario.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
    closing.append(scenario)
    scenario.given_healthy()
    scenario.provider.script("success-rate", [0.42])  # type: ignore[attr-defined]
    rollout = scenario.rollout
    canary = rollout["spec"]["strategy"]["canary"]
    del canary["analysis"]  # only the experiment's own analysis measures
    canary["steps"] = [
        {"setWeight": 20},
        {"experiment": {"duration": "1h", "templates": [{"name": "canary", "specRef": "canary"}],
                        "analyses": [{"name": "gate", "templateName": "success-rate",
                                      "args": [{"name": "service-name", "value": "canary-svc"}]}]}},
        {"setWeight": 100}]
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
    scenario.cluster.replace(rollout)
    scenario.run_for(3 * 3600)
    assert scenario.phase == "Degraded"
    assert "Experiment analysis phase is error/failed" in scenario.status["message"]
    assert scenario.weights.canary_weights == [0, 20, 0]
    never_promoted(scenario)


@pytest.mark.parametrize(("provider", "path"), [
    ({"web": {"url": "file:///etc/passwd"}}, "provider.web.url"),
    ({"web": {"url": "ftp://metrics.example/ok"}}, "provider.web.url"),
    ({"web": {"url": "data:text/plain,1"}}, "provider.web.url"),
    ({"web": {"url": "http://metrics:8080/ok", "jsonPath": "$..a"}}, "provider.web.jsonPath"),
    ({"prometheus": {"address": "http://prometheus:9090", "query": "up", "timeout": -1}},
     "provider.prometheus.timeout"),
    ({"prometheus": {"address": "file:///etc/passwd", "query": "up"}}, "provider.prometheus.address"),
], ids=["file", "ftp", "data", "recursive-jsonpath", "negative-timeout", "file-address"])
def test_a_metric_that_can_never_measure_is_refused_before_any_traffic_moves(
        provider: dict[str, Any], path: str, closing: list[Scenario]) -> None:
    scenario = Scenario("istio-canary")
    scenario.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
    metric_of(scenario)["provider"] = provider
    closing.append(scenario)
    scenario.given_objects().run_for(120)
    status = scenario.status
    assert status["phase"] == "Degraded"
    assert f"AnalysisTemplate 'success-rate' is invalid: spec.metrics[0].{path}: " in status["message"]
    assert scenario.analysis_runs() == [] and scenario.vs_weights == (100, 0)
