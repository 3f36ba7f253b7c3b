"""Housekeeping stories end to end: `rollouts restart`, revisionHistoryLimit and the
AnalysisRun history limits, with both controllers, the InMemoryCluster (its pods
included) and a stepped clock.

Each test reads as Given / When / Then. The restart story runs pods that take 10 s to
become Ready, and moves the clock in 5 s ticks, letting the cluster's kubelet stand-in
settle before each controller step, so a missing pod is visible to an outside observer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from rollouts.cli import connect
from rollouts.cli import main as cli_main
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.workloads import ReplicaSets, is_ready
from rollouts.platform.clock import SteppedClock
from tests.controller.dsl import START, Scenario

HEALTHY, FAILING = [0.99], [0.42]
IMAGES = ["argoproj/rollouts-demo:yellow", "argoproj/rollouts-demo:green", "argoproj/rollouts-demo:red",
          "argoproj/rollouts-demo:purple"]
LABELS = {"app": "rollout-example"}


def rollout_doc(scenario: Scenario) -> dict[str, Any]:
    return next(doc for doc in scenario.docs if doc["kind"] == "Rollout")


@pytest.fixture
def slow_pods() -> Iterator[Scenario]:
    """The istio-canary example on a cluster whose pods are Ready 10 s after they start."""
    clock = SteppedClock(START)
    cluster = InMemoryCluster(clock=clock.now, workloads=ReplicaSets(ready_delay=timedelta(seconds=10)))
    scenario = Scenario("istio-canary", cluster=cluster, clock=clock)
    yield scenario
    scenario.close()


@pytest.fixture
def istio() -> Iterator[Scenario]:
    scenario = Scenario("istio-canary")
    yield scenario
    scenario.close()


def pods(scenario: Scenario) -> list[dict[str, Any]]:
    return scenario.cluster.list("Pod", scenario.namespace, label_selector=LABELS)


def drive(scenario: Scenario, until: Callable[[], bool], *, each: Callable[[], None] = lambda: None,
          tick: float = 5.0, limit: float = 3600.0) -> None:
    """Settle the pods, step the controllers, look; then move the clock one tick."""
    for _ in range(int(limit / tick)):
        scenario.cluster.settle(scenario.clock.now())
        scenario.manager.step()
        scenario.observe()
        each()
        if until():
            return
        scenario.clock.advance(tick)
    raise AssertionError(f"not reached in {limit:.0f} s; status: {scenario.status}")


def restart_with_cli(scenario: Scenario) -> None:
    """`rollouts restart NAME`, through the CLI's main(), against the scenario's cluster."""
    runtime = connect.Runtime(clock=scenario.clock, sleep=scenario.clock.advance, tty=False, watch=False,
                              make_cluster=lambda _: scenario.cluster)
    with connect.use_runtime(runtime):
        assert cli_main(["restart", scenario.rollout_name, "-n", scenario.namespace]) == 0


def test_restart_replaces_every_pod_within_max_unavailable_and_changes_nothing_else(slow_pods: Scenario) -> None:
    # Given the istio-canary example (5 replicas, maxUnavailable 25% -> 1), Healthy, pods up for a minute
    scenario = slow_pods
    scenario.provider.script("success-rate", HEALTHY)
    scenario.given_objects()
    drive(scenario, lambda: scenario.phase == "Healthy")
    drive(scenario, lambda: scenario.clock.now() >= START + timedelta(minutes=1))
    before = {p["metadata"]["name"] for p in pods(scenario)}
    status, weights = scenario.status, list(scenario.weights.entries)
    replica_sets = sorted(rs["metadata"]["name"] for rs in scenario.cluster.list("ReplicaSet", "default"))
    assert len(before) == 5
    # When a human runs `rollouts restart`
    restart_with_cli(scenario)
    restart_at = scenario.rollout["spec"]["restartAt"]
    missing: list[int] = []
    messages: set[str] = set()

    def look() -> None:
        missing.append(5 - sum(is_ready(p) for p in pods(scenario)))
        messages.add(str(scenario.status.get("message")))

    drive(scenario, lambda: scenario.status.get("restartedAt") == restart_at and scenario.phase == "Healthy",
          each=look)
    # Then every pod was replaced by one created at or after restartAt, one at a time
    after = pods(scenario)
    assert len(after) == 5 and not before & {p["metadata"]["name"] for p in after}
    assert all(p["metadata"]["creationTimestamp"] >= restart_at for p in after)
    assert max(missing) == 1, "never more than maxUnavailable pods missing at once"
    assert missing.count(1) >= 5, "each replacement took its 10 s to become Ready"
    assert "rollout is restarting" in messages
    assert len(scenario.events("RestartingPods")) == 5 and len(scenario.events("RolloutRestarted")) == 1
    # and nothing else moved: no traffic change, no new revision, the same ReplicaSets
    assert scenario.weights.entries == weights
    assert sorted(rs["metadata"]["name"] for rs in scenario.cluster.list("ReplicaSet", "default")) == replica_sets
    now = scenario.status
    assert (now["currentPodHash"], now["stableRS"]) == (status["currentPodHash"], status["stableRS"])
    assert not scenario.events("RolloutUpdated") and scenario.analysis_runs() == []


def test_a_new_controller_carries_on_a_restart_where_the_old_one_stopped(slow_pods: Scenario) -> None:
    # Given a restart under way: two pods of five replaced
    scenario = slow_pods
    scenario.provider.script("success-rate", HEALTHY)
    scenario.given_objects()
    drive(scenario, lambda: scenario.phase == "Healthy")
    scenario.clock.advance(60)
    restart_with_cli(scenario)
    restart_at = scenario.rollout["spec"]["restartAt"]
    missing: list[int] = []

    def look() -> None:
        missing.append(5 - sum(is_ready(p) for p in pods(scenario)))

    drive(scenario, lambda: len(scenario.events("RestartingPods")) == 2, each=look)
    # When the controller is replaced (nothing carried over but the cluster)
    scenario.manager = scenario.new_manager()
    drive(scenario, lambda: scenario.status.get("restartedAt") == restart_at and scenario.phase == "Healthy",
          each=look)
    # Then the new one finishes the restart within the same limit, deleting each old pod once
    assert max(missing) == 1
    assert all(p["metadata"]["creationTimestamp"] >= restart_at for p in pods(scenario)) and len(pods(scenario)) == 5
    assert len(scenario.events("RestartingPods")) == 5


def test_a_scheduled_restart_waits_for_its_time(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    before = {p["metadata"]["name"] for p in pods(istio)}
    istio.cluster.patch("Rollout", istio.rollout_name, "default", {"spec": {"restartAt": "2024-01-01T01:00:00Z"}})
    istio.run_for(3599)
    assert {p["metadata"]["name"] for p in pods(istio)} == before and istio.phase == "Healthy"
    istio.run_until(lambda: istio.status.get("restartedAt") == "2024-01-01T01:00:00Z")
    assert not before & {p["metadata"]["name"] for p in pods(istio)}
    assert istio.clock.now() <= START + timedelta(hours=1, minutes=3), "one pod every 30 s at most"


def release(scenario: Scenario, image: str, value: list[float], *, until: str = "Healthy") -> None:
    scenario.provider.script("success-rate", value)
    scenario.when_image(image).run_until(lambda: scenario.phase == until)


def revisions(docs: list[dict[str, Any]]) -> list[int]:
    return sorted(int(d["metadata"]["annotations"]["rollout.argoproj.io/revision"]) for d in docs)


def test_revision_history_limit_keeps_one_old_replica_set(istio: Scenario) -> None:
    # Given the example with revisionHistoryLimit 1, deployed (revision 1)
    rollout_doc(istio)["spec"]["revisionHistoryLimit"] = 1
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    # When four more releases are promoted
    for image in IMAGES:
        release(istio, image, HEALTHY)
    istio.run_for(120)  # the last old stable is scaled down after its 30 s delay
    # Then only the stable (revision 5) and one older ReplicaSet (revision 4) are left, without pods
    replica_sets = istio.cluster.list("ReplicaSet", "default")
    assert revisions(replica_sets) == [4, 5]
    stable = next(rs for rs in replica_sets if rs["metadata"]["labels"]["rollouts-pod-template-hash"]
                  == istio.status["stableRS"])
    assert revisions([stable]) == [5]
    assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods(istio)} == {stable["metadata"]["name"]}
    assert istio.phase == "Healthy"


def test_analysis_run_history_limits_keep_the_newest_runs(istio: Scenario) -> None:
    # Given the example with a 30m pause (so a failing analysis aborts before promotion), keeping
    # 2 successful runs and no unsuccessful one
    rollout_doc(istio)["spec"]["analysis"] = {"successfulRunHistoryLimit": 2, "unsuccessfulRunHistoryLimit": 0}
    steps = rollout_doc(istio)["spec"]["strategy"]["canary"]["steps"]
    steps[next(i for i, step in enumerate(steps) if "pause" in step)] = {"pause": {"duration": "30m"}}
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    release(istio, IMAGES[0], HEALTHY)
    # When the next release fails its analysis
    release(istio, IMAGES[1], FAILING, until="Degraded")
    # Then the failed run is kept while the aborted revision still shows it
    failed = istio.status["canary"]["currentBackgroundAnalysisRunStatus"]["name"]
    assert {r["metadata"]["name"]: r["status"]["phase"] for r in istio.analysis_runs()}[failed] == "Failed"
    # When three more releases are promoted
    for image in [*IMAGES[2:], IMAGES[0].replace("yellow", "orange")]:
        release(istio, image, HEALTHY)
    # Then only the two newest successful runs are left; the failed one is gone
    runs = istio.analysis_runs()
    assert [r["status"]["phase"] for r in runs] == ["Successful", "Successful"]
    assert revisions(runs) == [5, 6] and failed not in {r["metadata"]["name"] for r in runs}
