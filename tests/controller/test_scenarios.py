"""Canary stories end to end: both controllers, the InMemoryCluster, a stepped clock.

Each test reads as Given / When / Then. The examples are loaded from examples/; the
metric provider is scripted (injected, not patched); the VirtualService weight history
is recorded by a watch on the cluster, as an outside observer would see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from rollouts.cli import connect
from rollouts.cli import main as cli_main
from tests.controller.dsl import START, Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
HEALTHY, FAILING = [0.99], [0.42]


@pytest.fixture
def istio() -> Iterator[Scenario]:
    scenario = Scenario("istio-canary")
    yield scenario
    scenario.close()


def with_pause(scenario: Scenario, pause: dict[str, object]) -> Scenario:
    """Replace the example's pause step before the objects are created."""
    rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    steps[next(i for i, step in enumerate(steps) if "pause" in step)] = {"pause": pause}
    return scenario


def hashes(scenario: Scenario) -> tuple[str, str]:
    status = scenario.status
    return status["stableRS"], status["currentPodHash"]


def service_hash(scenario: Scenario, name: str) -> str:
    return scenario.cluster.get("Service", name, "default")["spec"]["selector"]["rollouts-pod-template-hash"]


def test_a_healthy_canary_goes_50_then_100_then_switches_stable(istio: Scenario) -> None:
    # Given the istio-canary example, deployed and healthy, with a healthy success rate
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    first_stable, _ = hashes(istio)
    # When a new image is rolled out
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    # Then half the traffic goes to the canary, and the rollout pauses for 10 minutes
    assert istio.vs_weights == (50, 50)
    assert istio.status["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    istio.run_until(lambda: istio.phase == "Healthy")
    # Then the whole update took exactly the pause; the weight history is 0 -> 50 -> 100 -> stable switch
    assert istio.clock.now() == START + timedelta(minutes=10)
    assert [(at - START, stable, canary) for at, stable, canary in istio.weights.entries] == [
        (timedelta(0), 100, 0),
        (timedelta(0), 50, 50),
        (timedelta(minutes=10), 0, 100),
        (timedelta(minutes=10), 100, 0),
    ]
    stable, current = hashes(istio)
    assert stable == current != first_stable, "the new ReplicaSet is the stable one"
    assert service_hash(istio, "stable-svc") == current
    assert istio.status["canary"]["weights"]["stable"] == {"weight": 100, "serviceName": "stable-svc",
                                                           "podTemplateHash": current}
    # and the analysis measured every 5 minutes of the canary (0, 5m, 10m), then was terminated
    assert [at - START for _, at in istio.provider.calls] == [timedelta(0), timedelta(minutes=5), timedelta(minutes=10)]
    [run] = istio.analysis_runs()
    assert run["spec"].get("terminate") is True and run["status"]["phase"] == "Successful"
    assert {e["reason"] for e in istio.events()} >= {"RolloutStepCompleted", "TrafficWeightUpdated", "RolloutCompleted"}


def test_a_failing_success_rate_aborts_after_the_failure_limit(istio: Scenario) -> None:
    # Given the example with a 30m pause (with its 10m pause the canary is promoted at 10m,
    # before the 4th failed measurement at 15m could exceed failureLimit 3)
    with_pause(istio, {"duration": "30m"})
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    # When the new version's success rate is bad
    istio.provider.script("success-rate", FAILING)
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Degraded")
    # Then the 4th failure (t = 15m) aborts the update: all traffic back on stable
    assert istio.clock.now() == START + timedelta(minutes=15)
    assert len(istio.provider.calls) == 4
    assert istio.vs_weights == (100, 0)
    assert istio.weights.canary_weights == [0, 50, 0]
    status = istio.status
    assert status["abort"] is True
    assert "success-rate" in status["message"] and "RolloutAborted" in status["message"]
    [run] = istio.analysis_runs()
    assert run["status"]["phase"] == "Failed"
    assert istio.events("RolloutAborted")
    # and it stays aborted: nothing moves for another hour
    istio.run_for(3600)
    assert istio.phase == "Degraded" and istio.vs_weights == (100, 0)


def test_an_indefinite_pause_waits_for_promote(istio: Scenario) -> None:
    with_pause(istio, {})
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    # When a day passes without a human
    istio.run_for(24 * 3600)
    # Then it still waits at 50%
    assert istio.phase == "Paused" and istio.vs_weights == (50, 50)
    # When promoted
    istio.when_promote().run_until(lambda: istio.phase == "Healthy")
    # Then it finishes right away
    assert istio.clock.now() == START + timedelta(hours=24)
    assert istio.weights.canary_weights == [0, 50, 100, 0]
    stable, current = hashes(istio)
    assert stable == current


def test_a_new_image_mid_canary_restarts_the_steps(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    _, yellow = hashes(istio)
    # When, 4 minutes into the pause, another image arrives
    istio.run_for(240)
    istio.when_image("argoproj/rollouts-demo:green").run_until(
        lambda: istio.phase == "Paused" and hashes(istio)[1] != yellow)
    # Then the steps start again for the newest revision, with a fresh 10 minute pause
    status = istio.status
    assert status["currentStepIndex"] == 1
    assert istio.paused_at() == START + timedelta(minutes=4)
    assert istio.vs_weights == (50, 50)
    istio.run_until(lambda: istio.phase == "Healthy")
    assert istio.clock.now() == START + timedelta(minutes=14)
    stable, green = hashes(istio)
    assert stable == green != yellow
    # and the superseded canary is scaled away
    istio.run_for(60)
    sets = {rs["metadata"]["labels"]["rollouts-pod-template-hash"]: rs["spec"]["replicas"]
            for rs in istio.cluster.list("ReplicaSet", "default")}
    assert sets[yellow] == 0 and sets[green] == 5


def test_retry_after_abort_replays_every_step(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    # When a human aborts
    istio.when_abort().run_until(lambda: istio.phase == "Degraded")
    assert istio.vs_weights == (100, 0)
    istio.run_for(120)
    # and retries two minutes later
    istio.when_retry().run_until(lambda: istio.phase == "Paused")
    # Then the steps run again from the first, with a new pause
    assert istio.vs_weights == (50, 50)
    assert istio.paused_at() == START + timedelta(minutes=2)
    istio.run_until(lambda: istio.phase == "Healthy")
    assert istio.clock.now() == START + timedelta(minutes=12)
    assert istio.weights.canary_weights == [0, 50, 0, 50, 100, 0]
    assert len({run["metadata"]["name"] for run in istio.analysis_runs()}) == 2, "the retry measures again"


def test_promote_full_skips_the_remaining_steps(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    istio.run_for(60)
    istio.when_promote(full=True).run_until(lambda: istio.phase == "Healthy")
    assert istio.clock.now() == START + timedelta(minutes=1)
    stable, current = hashes(istio)
    assert stable == current
    assert istio.vs_weights == (100, 0)
    assert not istio.status.get("promoteFull")


def test_the_multi_step_example_walks_every_weight_with_its_step_analysis() -> None:
    scenario = Scenario("multi-step", stable="stable", canary="canary")
    try:
        scenario.provider.script("error-rate", [0.01])
        scenario.given_healthy()
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Healthy")
        # 10% 1m, 25% + analysis (3 measurements a minute apart: 0, 1m, 2m), 50% 2m, 100% 30s
        assert scenario.weights.canary_weights == [0, 10, 25, 50, 100, 0]
        assert scenario.clock.now() == START + timedelta(minutes=1 + 2 + 2, seconds=30)
        assert len(scenario.provider.calls) == 3
        rule = scenario.cluster.get("DestinationRule", "multi-step-destrule", "default")
        labels = {s["name"]: s["labels"]["rollouts-pod-template-hash"] for s in rule["spec"]["subsets"]}
        _, current = hashes(scenario)
        assert labels == {"canary": current, "stable": current}
    finally:
        scenario.close()


def test_a_failing_step_analysis_aborts_the_multi_step_canary_at_25_percent() -> None:
    scenario = Scenario("multi-step", stable="stable", canary="canary")
    try:
        scenario.provider.script("error-rate", [0.0])
        scenario.given_healthy()
        scenario.provider.script("error-rate", [0.01], [0.30])
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Degraded")
        assert scenario.weights.canary_weights == [0, 10, 25, 0]
        assert "error-rate" in scenario.status["message"]
    finally:
        scenario.close()


def retry_with_cli(scenario: Scenario) -> None:
    """`rollouts retry rollout NAME`, through the CLI's main(), against the scenario's cluster."""
    runtime = connect.Runtime(clock=scenario.clock, sleep=scenario.clock.advance, tty=False, watch=False,
                              make_cluster=lambda _: scenario.cluster)
    with connect.use_runtime(runtime):
        assert cli_main(["retry", "rollout", scenario.rollout_name, "-n", scenario.namespace]) == 0


def retry_clearing_aborted_at(scenario: Scenario) -> None:
    """A tool that clears abortedAt as well (the shape this CLI used to send)."""
    scenario.cluster.patch_status("Rollout", scenario.rollout_name, scenario.namespace,
                                  {"status": {"abort": False, "abortedAt": None}})


def step_runs(scenario: Scenario) -> dict[str, dict[str, Any]]:
    return {run["metadata"]["name"]: run for run in scenario.analysis_runs()
            if run["metadata"]["labels"].get("rollout-type") == "Step"}


@pytest.fixture
def aborted_at_25() -> Iterator[Scenario]:
    """multi-step, its step analysis failed at 25%: aborted, all traffic back on stable."""
    scenario = Scenario("multi-step", stable="stable", canary="canary")
    scenario.provider.script("error-rate", [0.0])
    scenario.given_healthy()
    scenario.provider.script("error-rate", [0.01], [0.30])
    scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Degraded")
    assert scenario.weights.canary_weights == [0, 10, 25, 0] and len(scenario.provider.calls) == 2
    [failed] = step_runs(scenario).values()
    assert failed["status"]["phase"] == "Failed" and failed["spec"]["terminate"] is True
    scenario.run_for(60)
    yield scenario
    scenario.close()


@pytest.mark.parametrize("retry", [retry_with_cli, retry_clearing_aborted_at])
def test_retry_measures_the_canary_again_and_promotes_on_good_measurements(
        aborted_at_25: Scenario, retry: Callable[[Scenario], None]) -> None:
    scenario = aborted_at_25
    [old] = step_runs(scenario)
    # When the error rate is good again and a human retries
    scenario.provider.script("error-rate", [0.01])
    retry(scenario)
    scenario.run_until(lambda: scenario.phase == "Healthy")
    # Then every step is replayed from the first, with a new step run `<name>.1` measured 3 times
    assert scenario.weights.canary_weights == [0, 10, 25, 0, 10, 25, 50, 100, 0]
    assert len(scenario.provider.calls) == 2 + 3
    runs = step_runs(scenario)
    assert sorted(runs) == [old, f"{old}.1"]
    assert runs[f"{old}.1"]["status"]["phase"] == "Successful"
    assert len(runs[f"{old}.1"]["status"]["metricResults"][0]["measurements"]) == 3
    status = scenario.status
    assert "abort" not in status and "abortedAt" not in status and status["stableRS"] == status["currentPodHash"]
    assert sum(event["count"] for event in scenario.events("RolloutRetried")) == 1
    # retried at 3m; then 10% for 1m, 25% with 3 measurements a minute apart, 50% 2m, 100% 30s
    assert scenario.clock.now() == START + timedelta(minutes=3 + 1 + 2 + 2, seconds=30)


@pytest.mark.parametrize("retry", [retry_with_cli, retry_clearing_aborted_at])
def test_a_retry_that_measures_badly_again_aborts_again(aborted_at_25: Scenario,
                                                          retry: Callable[[Scenario], None]) -> None:
    scenario = aborted_at_25
    [old] = step_runs(scenario)
    scenario.provider.script("error-rate", [0.30])
    retry(scenario)
    scenario.run_until(lambda: f"{old}.1" in step_runs(scenario) and scenario.status.get("abort") is True)
    # Then the new run measured once, failed, and the rollout is aborted again, naming it
    assert len(scenario.provider.calls) == 2 + 1
    assert step_runs(scenario)[f"{old}.1"]["status"]["phase"] == "Failed"
    assert scenario.weights.canary_weights == [0, 10, 25, 0, 10, 25, 0]
    assert scenario.phase == "Degraded" and "error-rate" in scenario.status["message"]
    assert sum(event["count"] for event in scenario.events("RolloutAborted")) == 2
    scenario.run_for(3600)
    assert len(step_runs(scenario)) == 2 and len(scenario.provider.calls) == 3, "nothing measures while aborted"


@pytest.mark.parametrize("retry", [retry_with_cli, retry_clearing_aborted_at])
def test_retry_after_a_failed_background_analysis_starts_a_new_background_run(
        istio: Scenario, retry: Callable[[Scenario], None]) -> None:
    # Given the istio example aborted by its background analysis (4th failure at 15m)
    with_pause(istio, {"duration": "30m"})
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.provider.script("success-rate", FAILING)
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Degraded")
    [old] = [run["metadata"]["name"] for run in istio.analysis_runs()]
    # When the success rate is good again and a human retries at 20m
    istio.run_for(300)
    istio.provider.script("success-rate", HEALTHY)
    retry(istio)
    istio.run_until(lambda: istio.phase == "Healthy")
    # Then a new background run `<name>.1` measured the canary every 5 minutes of the 30m pause
    assert istio.clock.now() == START + timedelta(minutes=20 + 30)
    runs = {run["metadata"]["name"]: run for run in istio.analysis_runs()}
    assert sorted(runs) == [old, f"{old}.1"]
    values = [m["value"] for m in runs[f"{old}.1"]["status"]["metricResults"][0]["measurements"]]
    assert values == ["[0.99]"] * 7, "0, 5, ... 30 minutes after the retry"
    assert [at - START for _, at in istio.provider.calls][4:] == [timedelta(minutes=m) for m in range(20, 51, 5)]
    assert istio.weights.canary_weights == [0, 50, 0, 50, 100, 0]
    assert "abort" not in istio.status and "abortedAt" not in istio.status
