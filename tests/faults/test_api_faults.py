"""API faults (DESIGN §6): 409s and 5xx from the API server, and watches that expire.

The Cluster the controller talks to is a FaultyCluster (tests.faults.faulty) around the
InMemoryCluster: chosen calls raise `Conflict` or `Unavailable` before they reach it.
The story with faults must end exactly as the story without: the same VirtualService
weight history (watched on the cluster) at the same times, the same final status, the
same measurements. Every fault is retried with bounded backoff and recorded as data
(Argo's `controller_clientset_k8s_request_total{status_code}`, and a Warning event when a
pass gave up). Then over HTTP in the threaded production mode: the embedded API server
on an InMemoryCluster that keeps one change per kind, so watches expire (410 Gone) and
the controller has to list again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from analysis.providers import Providers
from rollouts.controller.manager import Manager
from rollouts.kube.cluster import KubeCluster
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Conflict, Unavailable
from tests.controller.dsl import START, Outcome, ScriptedProvider, load_example, route_weights, wait_for
from tests.faults.faulty import FaultyCluster
from tests.faults.harness import NEW_IMAGE, FaultScenario, through_faults

ROLLOUT = "rollout-example"
Arrange = Callable[[FaultyCluster], None]


def story(arrange: Arrange | None = None) -> tuple[Outcome, FaultScenario, FaultyCluster]:
    """istio-canary: deployed, then a new image, to the end; `arrange` injects faults after the first deploy."""
    scenario, faulty = through_faults()
    try:
        scenario.given_healthy()
        if arrange is not None:
            arrange(faulty)
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: scenario.promoted)
        return scenario.outcome(), scenario, faulty
    finally:
        scenario.close()


def requests(scenario: FaultScenario | Manager, **labels: str) -> float:
    """Sum of controller_clientset_k8s_request_total over the series matching `labels`."""
    manager = scenario if isinstance(scenario, Manager) else scenario.manager
    total = 0.0
    for family in manager.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "controller_clientset_k8s_request_total" and all(
                    sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_409s_and_5xx_are_retried_recorded_and_change_nothing_about_the_outcome() -> None:
    expected, _, _ = story()

    def arrange(faulty: FaultyCluster) -> None:
        # two 409s on the VirtualService weight patch (someone else's edit won the race)
        faulty.fail("patch", "VirtualService", "rollout-vsvc", [Conflict("the object has been modified")] * 2)
        # 5xx on creating the canary ReplicaSet and the AnalysisRun, and on the analysis status write
        faulty.fail("create", "ReplicaSet", None, [Unavailable("etcdserver: leader changed")] * 2)
        faulty.fail("create", "AnalysisRun", None, [Unavailable("etcdserver: request timed out")])
        # a 409 then a 5xx on the analysis status write (it reads the run again, then retries)
        faulty.fail("patch_status", "AnalysisRun", None,
                    [Conflict("the object has been modified"), Unavailable("the server is currently unable")])
        # an outage longer than one pass's retry budget (4 attempts) on the Rollout's status
        faulty.fail("patch_status", "Rollout", ROLLOUT, [Unavailable("connection refused")] * 6)

    got, scenario, faulty = story(arrange)
    # Then every fault was met, and the story is exactly the same
    assert len(faulty.faults) == 2 + 2 + 1 + 1 + 1 + 6
    assert got.history == expected.history
    assert [canary for _, _, canary in got.history] == [0, 50, 100, 0]
    assert got.end == expected.end == START + timedelta(minutes=10)
    assert got.measured_at == expected.measured_at, "nothing measured twice, nothing skipped"
    assert got.runs == expected.runs, "no AnalysisRun created twice"
    assert got.status == expected.status
    # and a 409 on the VirtualService read it again from the API before patching again
    conflicts_at = [i for i, f in enumerate(faulty.faults) if f[:2] == ("patch", "VirtualService")]
    assert len(conflicts_at) == 2
    assert faulty.calls[("get", "VirtualService", "rollout-vsvc")] >= 2, "refetched after each 409"
    # and every fault is recorded as data: the API request counter by status code...
    assert requests(scenario, verb="patch", kind="VirtualService", status_code="409") == 2
    assert requests(scenario, verb="create", kind="ReplicaSet", status_code="503") == 2
    assert requests(scenario, verb="patch_status", kind="Rollout", name=ROLLOUT, status_code="503") == 6
    assert requests(scenario, verb="create", kind="AnalysisRun", status_code="503") == 1
    assert requests(scenario, verb="patch_status", kind="AnalysisRun", status_code="409") == 1
    assert requests(scenario, verb="patch_status", kind="AnalysisRun", status_code="503") == 1
    assert requests(scenario, verb="patch", kind="VirtualService", status_code="200") >= 3
    # ...and the pass that ran out of its 4 attempts failed, was counted, shown as an event, requeued
    metrics = scenario.manager.metrics
    assert metrics.value("rollout_reconcile_error_total", {"namespace": "default", "name": ROLLOUT}) == 1
    [event] = scenario.events("ReconcileError")
    assert event["type"] == "Warning" and "Unavailable: connection refused" in event["message"]
    assert metrics.value("workqueue_retries_total", {"name": "rollouts"}) >= 1


def test_a_persistent_5xx_is_retried_with_bounded_backoff_never_in_a_hot_loop() -> None:
    # Given the status write of the Rollout fails for a whole stepped minute
    def arrange(faulty: FaultyCluster) -> None:
        faulty.fail("patch_status", "Rollout", ROLLOUT, [Unavailable("apiserver down")] * 10_000)

    scenario, faulty = through_faults()
    try:
        scenario.given_healthy()
        healthy = scenario.status
        arrange(faulty)
        before_update = faulty.calls[("patch_status", "Rollout", ROLLOUT)]
        scenario.when_image(NEW_IMAGE).run_for(60)
        # Then each pass tried 4 times and gave up; passes were retried with the queue's
        # backoff (5 ms doubling, capped at 10 s): about 16 passes in the first minute
        attempts = faulty.calls[("patch_status", "Rollout", ROLLOUT)] - before_update
        passes = scenario.manager.metrics.value("rollout_reconcile_error_total",
                                                {"namespace": "default", "name": ROLLOUT})
        assert attempts == 4 * passes
        assert 12 <= passes <= 20, passes
        # the next minute, at the 10 s cap: 6 passes
        before = passes
        scenario.run_for(60)
        passes = scenario.manager.metrics.value("rollout_reconcile_error_total",
                                                {"namespace": "default", "name": ROLLOUT})
        assert 5 <= passes - before <= 7
        assert requests(scenario, verb="patch_status", kind="Rollout", status_code="503") == attempts + 4 * (
            passes - before)
        # and nothing got past the first step: the status is the one before the update, the
        # stable ReplicaSet never changed, the canary never had more than the first step's 50%
        assert scenario.status == healthy
        assert max(scenario.weights.canary_weights) <= 50, scenario.weights.canary_weights
    finally:
        scenario.close()


# ---------------------------------------------------------------- watches that expire, over HTTP


def test_cut_and_expired_watches_over_http_are_resumed_or_relisted_and_the_rollout_completes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rollouts.controller.threads")
    # Given the embedded API server on a cluster that keeps ONE change per kind, so any watch
    # that falls one change behind is 410 Gone; and the next two resumed watches of Rollouts and
    # VirtualServices are answered 410 too
    clock = SteppedClock(START)
    backing = InMemoryCluster(clock=clock.now, history=1)
    faulty = FaultyCluster(backing)
    faulty.expire_watches("Rollout", 2)
    faulty.expire_watches("VirtualService", 2)
    # and the next two watch connections of Rollouts and AnalysisRuns are cut mid-stream
    faulty.drop_watches("Rollout", 2)
    faulty.drop_watches("AnalysisRun", 2)
    provider = ScriptedProvider()
    provider.script("success-rate", [0.99])
    for doc in load_example("istio-canary"):
        backing.create(doc)

    def rollout() -> dict[str, Any]:
        return backing.get("Rollout", ROLLOUT, "default")

    def phase() -> str | None:
        return (rollout().get("status") or {}).get("phase")

    def weights(vs: dict[str, Any]) -> tuple[int, int]:
        return route_weights(vs, "primary", stable="stable-svc", canary="canary-svc")

    with serve(faulty) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        with KubeCluster(kubeconfig=config, request_timeout=10) as kube:
            manager = Manager(kube, Providers({"prometheus": provider}), clock=clock, leader_election=False,
                              workers=2, watch_timeout=2.0)
            manager.start()
            try:
                wait_for(lambda: phase() == "Healthy", "the first revision")
                first = rollout()["status"]["stableRS"]
                # When a new image is rolled out (the new ReplicaSet's create and status land in one
                # go, so the ReplicaSet watch is sure to expire)
                updated = rollout()
                updated["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
                backing.replace(updated)
                wait_for(lambda: phase() == "Paused"
                         and weights(backing.get("VirtualService", "rollout-vsvc")) == (50, 50), "the 50% pause")
                clock.advance(timedelta(minutes=10))
                wait_for(lambda: phase() == "Healthy" and rollout()["status"].get("stableRS") != first
                         and weights(backing.get("VirtualService", "rollout-vsvc")) == (100, 0), "promotion")
                # a cut is injected when a watch stream is first read, which needs an event on it:
                # on a busy machine the rollout can finish before the last cut was met, so touch the
                # Rollout and its runs (no-ops for the controllers) until every fault was met and seen
                def every_fault_met_and_seen() -> bool:
                    return (faulty.dropped["Rollout"] == 2 and faulty.dropped["AnalysisRun"] == 2
                            and faulty.gone["Rollout"] >= 2 and faulty.gone["VirtualService"] >= 2
                            and sum("dropped" in r.getMessage() for r in caplog.records) >= 4
                            and requests(manager, verb="watch", kind="Rollout", status_code="503") == 2)

                for touch in range(240):  # up to 2 minutes on a loaded machine; usually a few
                    if every_fault_met_and_seen():
                        break
                    touched = {"metadata": {"annotations": {"touch": str(touch)}}}
                    backing.patch("Rollout", ROLLOUT, "default", touched)
                    for run in backing.list("AnalysisRun", "default"):
                        backing.patch("AnalysisRun", run["metadata"]["name"], "default", touched)
                    time.sleep(0.5)
                assert every_fault_met_and_seen(), (faulty.dropped, faulty.gone)
            finally:
                manager.stop()
    # Then watches really were cut and expired, and the controller listed again after each 410
    assert faulty.dropped["Rollout"] == 2 and faulty.dropped["AnalysisRun"] == 2
    assert faulty.gone["Rollout"] >= 2 and faulty.gone["VirtualService"] >= 2
    assert faulty.gone["ReplicaSet"] >= 1
    relists = sum(n for (verb, kind, _), n in faulty.calls.items() if verb == "list" and kind in
                  ("Rollout", "VirtualService", "ReplicaSet"))
    assert relists >= 3 + sum(faulty.gone[k] for k in ("Rollout", "VirtualService", "ReplicaSet"))
    cut = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(cut) == 4 and all("resuming" in line for line in cut), cut
    # and the faults are data: the controller's API request counter has the 410s and the cut watches
    assert 4 <= requests(manager, verb="watch", status_code="410") <= sum(faulty.gone.values())
    assert requests(manager, verb="watch", kind="Rollout", status_code="503") == 2
    # and the rollout went exactly as it should: 50%, 100%, stable switch
    assert [weights(vs) for vs in faulty.writes_of("VirtualService")] == [(50, 50), (0, 100), (100, 0)]
    status = rollout()["status"]
    assert status["stableRS"] == status["currentPodHash"] != first
    assert len(backing.list("AnalysisRun", "default")) == 1
