"""The controller's series are bounded by the objects that exist (issue 14: memory flat over a day).

Found by benchmarks/bench_scale.py's simulated day: every Event (a new name each) and every
AnalysisRun or ReplicaSet name ever touched kept a `controller_clientset_k8s_request_total`
series, and a deleted run kept its `analysis_run_reconcile` histogram, so memory grew with every
update. Now Events are counted without a name, and an object's series go when it is deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from analysis.providers import Providers
from rollouts.controller.clientset import MeteredCluster
from rollouts.controller.manager import Manager
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.workqueue import Key
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock


def names_in(metrics: ControllerMetrics, family: str) -> set[str]:
    return {sample.labels.get("name", "") for metric in metrics.registry.collect() if metric.name == family
            for sample in metric.samples}


def run(name: str) -> dict[str, object]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"metrics": []}}


def event(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Rollout", "name": "r", "namespace": "default"}, "reason": "X",
            "message": "m", "type": "Normal"}


def test_events_are_counted_without_their_names_and_a_deleted_object_loses_its_series() -> None:
    metrics = ControllerMetrics()
    cluster = MeteredCluster(InMemoryCluster(), metrics)
    for i in range(50):
        cluster.create(event(f"r.{i:04d}"))
    cluster.create(run("r-1"))
    cluster.get("AnalysisRun", "r-1", "default")
    assert names_in(metrics, "controller_clientset_k8s_request") == {"", "r-1"}
    cluster.delete("AnalysisRun", "r-1", "default")
    assert names_in(metrics, "controller_clientset_k8s_request") == {""}
    counted = {(sample.labels["kind"], sample.labels["verb"]): sample.value for metric in metrics.registry.collect()
               if metric.name == "controller_clientset_k8s_request" for sample in metric.samples
               if sample.name.endswith("_total")}
    assert counted == {("Event", "create"): 50, ("AnalysisRun", "delete"): 1}  # the delete stays counted, by kind


def test_a_run_reconciled_after_it_is_gone_keeps_no_reconcile_series() -> None:
    clock = SteppedClock(datetime(2024, 1, 1, tzinfo=UTC))
    inner = InMemoryCluster(clock=clock.now)
    manager = Manager(inner, Providers({}), clock=clock, leader_election=False)
    inner.create(run("gone-1"))
    manager.step()
    assert "gone-1" in names_in(manager.metrics, "analysis_run_reconcile")
    inner.delete("AnalysisRun", "gone-1", "default")
    manager.step()  # the DELETED event empties the cache
    manager.process(Key("AnalysisRun", "default", "gone-1"))  # a requeue that comes after it went
    assert "gone-1" not in names_in(manager.metrics, "analysis_run_reconcile")
    assert "gone-1" not in names_in(manager.metrics, "controller_clientset_k8s_request")
