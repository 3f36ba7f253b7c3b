"""Restart safety: a controller stopped at any point is replaced by a new one on the same
cluster, and nothing about the rollout changes.

For each stop point (every step boundary, the middle of a pause, the middle of a step
analysis) the story runs twice: straight through, and with the Manager abandoned right
after the reconcile that reached the stop point (work still queued is lost, as in a
crash) and a NEW Manager (empty cache, empty queue) started on the same cluster and
stepped clock. The VirtualService weight history (watched on the cluster), the final
status, the end time and the measurements must be identical: the pause ends at its
original startTime + duration, and no AnalysisRun is measured twice or recreated.
Once more over HTTP: the embedded API server and the real Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from rollouts.kube.cluster import KubeCluster
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.clock import SteppedClock
from tests.controller.dsl import START, Outcome, Scenario, wait_for

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
Stop = Callable[[Scenario, str], None]  # drives the scenario's manager to the stop point


EXAMPLES = {
    "istio-canary": {"metric": "success-rate", "value": [0.99], "stable": "stable-svc", "canary": "canary-svc"},
    "multi-step": {"metric": "error-rate", "value": [0.01], "stable": "stable", "canary": "canary"},
}


def story(example: str, stop: Stop | None = None, *, leader_election: bool = False) -> Outcome:
    config = EXAMPLES[example]
    scenario = Scenario(example, stable=config["stable"], canary=config["canary"],
                        manager_options={"leader_election": leader_election})
    try:
        scenario.provider.script(config["metric"], config["value"])
        scenario.given_healthy()
        first = scenario.status["stableRS"]
        scenario.when_image(NEW_IMAGE)
        if stop is not None:
            stop(scenario, first)
            scenario.manager = scenario.new_manager()  # the old one is simply abandoned
        scenario.run_until(lambda: scenario.promoted)
        return scenario.outcome()
    finally:
        scenario.close()


def at_step(index: int) -> Stop:
    """Stop right after the reconcile that moved the new revision to step `index`."""
    def stop(scenario: Scenario, first: str) -> None:
        def reached() -> bool:
            status = scenario.status
            return status.get("currentPodHash") != first and status.get("currentStepIndex") == index
        scenario.run_until(reached, between_reconciles=True)
    stop.__name__ = f"step {index}"
    return stop


def into_pause(seconds: float) -> Stop:
    """Stop `seconds` into the first pause."""
    def stop(scenario: Scenario, first: str) -> None:
        scenario.run_until(lambda: scenario.paused_at() is not None, between_reconciles=True)
        scenario.run_for(seconds)
        assert scenario.paused_at() is not None, "still paused when stopped"
    stop.__name__ = f"{seconds:.0f}s into a pause"
    return stop


def mid_analysis(scenario: Scenario, first: str) -> None:
    """Stop right after the step analysis took its second of three measurements."""
    def reached() -> bool:
        runs = [r for r in scenario.analysis_runs() if "step-index" in r["metadata"]["labels"]]
        results = [(r.get("status") or {}).get("metricResults") or [] for r in runs]
        return any(result and result[0].get("count") == 2 for result in results)
    scenario.run_until(reached, between_reconciles=True)


REFERENCE: dict[str, Outcome] = {}


def reference(example: str) -> Outcome:
    if example not in REFERENCE:
        REFERENCE[example] = story(example)
    return REFERENCE[example]


CASES = [
    *[("istio-canary", at_step(i)) for i in range(3)],
    ("istio-canary", into_pause(240)),
    *[("multi-step", at_step(i)) for i in range(9)],
    ("multi-step", into_pause(20)),
    ("multi-step", mid_analysis),
]


@pytest.mark.parametrize(("example", "stop"), CASES, ids=[f"{e}-{s.__name__}" for e, s in CASES])
def test_a_new_controller_carries_on_exactly_where_the_old_one_stopped(example: str, stop: Stop) -> None:
    expected = reference(example)
    got = story(example, stop)
    assert got.history == expected.history
    assert got.paused_at == expected.paused_at, "no pause timer restarted"
    assert got.end == expected.end
    assert got.measured_at == expected.measured_at, "nothing measured twice, nothing skipped"
    assert got.runs == expected.runs, "no AnalysisRun recreated"
    assert got.status == expected.status


def test_the_reference_stories_are_what_the_examples_say() -> None:
    istio = reference("istio-canary")
    assert [canary for _, _, canary in istio.history] == [0, 50, 100, 0]
    assert istio.end == START + timedelta(minutes=10)
    multi = reference("multi-step")
    assert [canary for _, _, canary in multi.history] == [0, 10, 25, 50, 100, 0]
    assert len(multi.paused_at) == 3


def test_a_crashed_leader_is_replaced_after_its_lease_and_the_pause_still_ends_on_time() -> None:
    expected = reference("istio-canary")
    got = story("istio-canary", into_pause(240), leader_election=True)
    assert got.paused_at == expected.paused_at
    assert got.end == expected.end == START + timedelta(minutes=10)
    assert got.history == expected.history


# ------------------------------------------------------------ over HTTP, with threads


def test_a_restart_over_http_with_the_kubernetes_client(tmp_path: Path) -> None:
    clock = SteppedClock(START)
    backing = InMemoryCluster(clock=clock.now)
    scenario = Scenario("istio-canary", cluster=backing, clock=clock,
                        manager_options={"leader_election": True, "workers": 2})
    scenario.provider.script("success-rate", [0.99])
    with serve(backing) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        try:
            scenario.given_objects()
            with KubeCluster(kubeconfig=config, request_timeout=10) as kube:
                first = scenario.new_manager(cluster=kube)
                first.start()
                try:
                    wait_for(lambda: scenario.phase == "Healthy", "the first revision")
                    scenario.when_image(NEW_IMAGE)
                    wait_for(lambda: scenario.phase == "Paused" and scenario.vs_weights == (50, 50), "the 50% pause")
                    scenario.observe()
                    clock.advance(timedelta(minutes=4))
                finally:
                    first.stop()
            assert scenario.paused_at() == START
            with KubeCluster(kubeconfig=config, request_timeout=10) as kube:
                second = scenario.new_manager(cluster=kube)
                second.start()
                try:
                    wait_for(lambda: second.metrics.value("rollouts_controller_leader") == 1, "the new leader")
                    scenario.observe()
                    clock.advance(timedelta(minutes=5, seconds=59))
                    wait_for(lambda: len(scenario.provider.calls) >= 2, "the analysis to go on")
                    assert scenario.phase == "Paused", f"9m59s into a 10m pause: {scenario.status}"
                    scenario.observe()
                    clock.advance(timedelta(seconds=1))
                    wait_for(lambda: scenario.phase == "Healthy" and scenario.vs_weights == (100, 0), "promotion")
                finally:
                    second.stop()
            scenario.settle_history()
            assert [(at - START, canary) for at, _, canary in scenario.weights.entries] == [
                (timedelta(0), 0), (timedelta(0), 50), (timedelta(minutes=10), 100), (timedelta(minutes=10), 0)]
            status = scenario.status
            assert status["stableRS"] == status["currentPodHash"]
            assert len(scenario.analysis_runs()) == 1
        finally:
            scenario.close()
