"""`rollout_events_total` series go with their object (issue 14: the controller's memory flat over a day).

Found by benchmarks/bench_scale.py's day measuring the controller alone: events are recorded on
AnalysisRuns too (labelled by the run's name), every run has a new name, and a deleted run kept its
event series for good, so the metric registry grew with every update. Now a deleted object's event
series are dropped with its other series; an existing object's stay counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from analysis.providers import Providers
from rollouts.controller.manager import Manager
from rollouts.controller.metrics import ControllerMetrics
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock


def event_names(metrics: ControllerMetrics) -> Counter[str]:
    """Object name -> how many rollout_events_total series name it."""
    return Counter(sample.labels["name"] for metric in metrics.registry.collect()
                   if metric.name == "rollout_events" for sample in metric.samples if sample.name.endswith("_total"))


def run(name: str) -> dict[str, object]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"metrics": []}}


def test_a_deleted_runs_event_series_go_and_a_present_ones_stay() -> None:
    clock = SteppedClock(datetime(2024, 1, 1, tzinfo=UTC))
    cluster = InMemoryCluster(clock=clock.now)
    manager = Manager(cluster, Providers({}), clock=clock, leader_election=False)
    for i in range(20):
        written = cluster.create(run(f"run-{i:02d}"))
        manager.recorder.record(written, reason="AnalysisRunRunning", message="m")
        manager.recorder.record(written, type="Warning", reason="MetricFailed", message="m")
    manager.step()
    assert set(event_names(manager.metrics)) == {f"run-{i:02d}" for i in range(20)}
    for i in range(19):
        cluster.delete("AnalysisRun", f"run-{i:02d}", "default")
    manager.step()  # the DELETED events reach the router, which forgets each run's series
    assert set(event_names(manager.metrics)) == {"run-19"}  # the present run keeps its series, counted
    assert event_names(manager.metrics)["run-19"] >= 2
    assert manager.metrics._event_series.keys() == {("default", "run-19")}


def test_a_relist_that_no_longer_has_a_run_drops_its_event_series() -> None:
    metrics = ControllerMetrics()
    metrics.rollout_events.labels("default", "r-1", "Normal", "X").inc()
    metrics.rollout_events.labels("default", "r-2", "Normal", "X").inc()
    metrics.set_analysis_run_info("default", "r-1", phase="Successful")
    metrics.set_analysis_run_info("default", "r-2", phase="Successful")
    metrics.retain("AnalysisRun", [("default", "r-2")])
    assert event_names(metrics) == {"r-2": 1}
