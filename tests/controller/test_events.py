"""Events: core/v1 shape, de-duplication by reason+message, best effort, counted in metrics."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.controller.metrics import ControllerMetrics
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Unavailable
from rollouts.platform.events import EventRecorder


@pytest.fixture
def rollout(cluster: InMemoryCluster) -> dict[str, Any]:
    return cluster.create({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"strategy": {"canary": {}}},
    })


def test_an_event_is_a_core_v1_event_on_the_object(
    cluster: InMemoryCluster, clock: SteppedClock, rollout: dict[str, Any]
) -> None:
    recorder = EventRecorder(cluster, clock=clock, instance="host-1")
    recorder.record(rollout, reason="RolloutStepCompleted", message="Rollout step 1/2 completed (setWeight: 50)")
    [event] = cluster.list("Event", "shop")
    assert event["involvedObject"] == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "namespace": "shop",
        "uid": rollout["metadata"]["uid"], "resourceVersion": rollout["metadata"]["resourceVersion"],
    }
    assert (event["type"], event["reason"], event["count"]) == ("Normal", "RolloutStepCompleted", 1)
    assert event["message"] == "Rollout step 1/2 completed (setWeight: 50)"
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2024-01-01T00:00:00Z"
    assert event["source"] == {"component": "rollouts-controller", "host": "host-1"}
    assert event["metadata"]["name"].startswith("web.")


def test_the_same_reason_and_message_bump_count_and_last_timestamp(
    cluster: InMemoryCluster, clock: SteppedClock, rollout: dict[str, Any]
) -> None:
    recorder = EventRecorder(cluster, clock=clock)
    recorder.record(rollout, type="Warning", reason="TrafficRoutingError", message="VirtualService not found")
    clock.advance(30)
    recorder.record(rollout, type="Warning", reason="TrafficRoutingError", message="VirtualService not found")
    recorder.record(rollout, type="Warning", reason="TrafficRoutingError", message="route 'x' not found")
    events = sorted(cluster.list("Event", "shop"), key=lambda e: e["message"])
    assert [(e["message"], e["count"]) for e in events] == [("VirtualService not found", 2), ("route 'x' not found", 1)]
    assert events[0]["firstTimestamp"] == "2024-01-01T00:00:00Z"
    assert events[0]["lastTimestamp"] == "2024-01-01T00:00:30Z"


def test_a_deleted_aggregate_is_created_again(
    cluster: InMemoryCluster, clock: SteppedClock, rollout: dict[str, Any]
) -> None:
    recorder = EventRecorder(cluster, clock=clock)
    recorder.record(rollout, reason="RolloutPaused", message="Rollout is paused (CanaryPauseStep)")
    [event] = cluster.list("Event", "shop")
    cluster.delete("Event", event["metadata"]["name"], "shop")
    recorder.record(rollout, reason="RolloutPaused", message="Rollout is paused (CanaryPauseStep)")
    [again] = cluster.list("Event", "shop")
    assert again["count"] == 1


def test_many_events_in_one_instant_get_distinct_names(
    cluster: InMemoryCluster, clock: SteppedClock, rollout: dict[str, Any]
) -> None:
    recorder = EventRecorder(cluster, clock=clock)
    for step in range(5):
        recorder.record(rollout, reason="RolloutStepCompleted", message=f"Rollout step {step + 1}/5 completed")
    assert len(cluster.list("Event", "shop")) == 5


class _DownCluster:
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise Unavailable("apiserver is down")

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise Unavailable("apiserver is down")


def test_recording_is_best_effort_and_always_counted(clock: SteppedClock, rollout: dict[str, Any]) -> None:
    metrics = ControllerMetrics()
    recorder = EventRecorder(_DownCluster(), clock=clock, metrics=metrics)  # type: ignore[arg-type]
    recorder.record(rollout, type="Warning", reason="RolloutAborted", message="aborted")
    recorder.record(rollout, type="Warning", reason="RolloutAborted", message="aborted")
    labels = {"namespace": "shop", "name": "web", "type": "Warning", "reason": "RolloutAborted"}
    assert metrics.value("rollout_events_total", labels) == 2
    assert [e.reason for e in recorder.for_object("Rollout", "shop", "web")] == ["RolloutAborted"] * 2
