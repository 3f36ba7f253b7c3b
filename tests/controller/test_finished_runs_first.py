"""A restarted controller measures the run that is still going before anything else: finished
runs are never queued for the analysis controller.

Found by the kill storm (tests/storm): every restart queued all of a namespace's AnalysisRuns
from the watch's initial list, oldest first, and the analysis workers read each finished
one from the API (to find it finished) before they reached the new run at the end of the
queue. A controller SIGKILLed a second or two after its start never got there: on a loaded
machine a background run stayed unmeasured for minutes while the Rollouts moved on (their
reconciles read the cache). Here: thirty finished runs and one new run, a new Manager in
step mode, and the count of AnalysisRun reads the analysis controller made before the new
run's first measurement.
"""

from __future__ import annotations

from typing import Any

from analysis.providers import Providers
from rollouts.controller.fanin import Scope, urgent
from rollouts.controller.informer import Cache
from rollouts.controller.manager import Manager
from rollouts.controller.threads import resync_keys
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from tests.controller.dsl import START, ScriptedProvider

FINISHED = 30


def create_run(cluster: InMemoryCluster, name: str, phase: str | None) -> None:
    cluster.create({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metrics": [{"name": "verdict", "count": 1, "successCondition": "result == 1",
                              "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "up"}}}]},
    })
    if phase is not None:  # the status subresource: written apart, as the analysis controller does
        cluster.patch_status("AnalysisRun", name, "default", {"status": {
            "phase": phase, "startedAt": "2024-01-01T00:00:00Z", "completedAt": "2024-01-01T00:00:01Z"}})


class ReadCounting:
    """The cluster, with every `get` of an AnalysisRun recorded by name."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        if kind == "AnalysisRun":
            self.reads.append(name)
        return self.inner.get(kind, name, namespace)


def test_a_restarted_controller_measures_the_live_run_without_reading_a_finished_one() -> None:
    clock = SteppedClock(START)
    cluster = InMemoryCluster(clock=clock.now)
    for i in range(FINISHED):  # older than the live run: listed (and once queued) before it
        create_run(cluster, f"finished-{i}", ("Successful", "Failed", "Error", "Inconclusive")[i % 4])
    create_run(cluster, "live", None)
    provider = ScriptedProvider()
    provider.script("verdict", 1)
    counting = ReadCounting(cluster)
    manager = Manager(counting, Providers({"prometheus": provider}), clock=clock, leader_election=False)

    manager.step(stop_when=lambda: bool(provider.calls))

    assert provider.calls, "the live run was measured"
    assert [name for name in counting.reads if name != "live"] == [], "no finished run was read before it"
    manager.run_until(lambda: (cluster.get("AnalysisRun", "live", "default").get("status") or {}).get("phase")
                      == "Successful")
    assert [name for name in counting.reads if name != "live"] == [], "nor after: a finished run costs nothing"
    assert all((cluster.get("AnalysisRun", f"finished-{i}", "default")["status"]["completedAt"]
                == "2024-01-01T00:00:01Z") for i in range(FINISHED)), "finished runs untouched"


def test_a_failed_or_errored_run_makes_its_rollout_urgent_and_nothing_else_does() -> None:
    run = {"kind": "AnalysisRun", "metadata": {"name": "r", "namespace": "ns"}}
    assert [urgent("AnalysisRun", {**run, "status": {"phase": phase}})
            for phase in ("Failed", "Error", "Running", "Successful", "Inconclusive", "")] == [
        True, True, False, False, False, False]
    assert not urgent("AnalysisRun", run)
    assert not urgent("Rollout", {"metadata": {"name": "r"}, "status": {"phase": "Failed"}})


def test_a_resync_queues_every_rollout_and_live_run_but_no_finished_run() -> None:
    cache = Cache()
    for kind, name, phase in [("Rollout", "web", "Healthy"), ("AnalysisRun", "web-1", "Successful"),
                              ("AnalysisRun", "web-2", "Failed"), ("AnalysisRun", "web-3", "Running"),
                              ("AnalysisRun", "web-4", "")]:
        cache.update({"kind": kind, "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
                      "status": {"phase": phase}})
    keys = resync_keys(cache, Scope())
    assert sorted(str(k) for k in keys) == ["AnalysisRun/ns/web-3", "AnalysisRun/ns/web-4", "Rollout/ns/web"]


def owned_run(name: str, rollout: str, phase: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "1",
                         "ownerReferences": [{"kind": "Rollout", "name": rollout, "controller": True}]},
            "status": {"phase": phase}}


def test_taking_in_a_failed_run_queues_its_rollout_ahead_of_a_wave_in_the_order_the_runs_failed() -> None:
    """Manager.take_in is what both modes call for every watch event (step mode's poll, the threads'
    watches): the owners of runs that turned Failed or Error come first, oldest failure first; a
    finished run itself is never queued, a live one is queued as any key."""
    clock = SteppedClock(START)
    manager = Manager(InMemoryCluster(clock=clock.now), Providers({}), clock=clock, leader_election=False)
    wave = [f"wave-{i}" for i in range(3)]
    for name in wave:
        manager.take_in("Rollout", "MODIFIED", {"kind": "Rollout", "metadata": {
            "name": name, "namespace": "default", "resourceVersion": "1"}})
    manager.take_in("AnalysisRun", "MODIFIED", owned_run("live-1", "live", "Running"))
    manager.take_in("AnalysisRun", "MODIFIED", owned_run("older-1", "older", "Failed"))
    manager.take_in("AnalysisRun", "MODIFIED", owned_run("newer-1", "newer", "Error"))
    taken = []
    while (key := manager.queue.pop_ready()) is not None:
        taken.append(str(key))
        manager.queue.done(key)
    assert taken == ["Rollout/default/older", "Rollout/default/newer", *(f"Rollout/default/{n}" for n in wave),
                     "AnalysisRun/default/live-1", "Rollout/default/live"]
