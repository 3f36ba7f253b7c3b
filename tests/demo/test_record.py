"""The demo's recorders: every VirtualService weight in order, live traffic rates, facts off objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollouts.demo import record
from rollouts.memory.cluster import InMemoryCluster


def virtual_service(canary: int) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "default"},
            "spec": {"http": [{"name": "primary", "route": [
                {"destination": {"host": "stable-svc"}, "weight": 100 - canary},
                {"destination": {"host": "canary-svc"}, "weight": canary}]}]}}


def test_weight_log_keeps_every_change_even_between_drains() -> None:
    cluster = InMemoryCluster()
    cluster.create(virtual_service(0))
    log = record.WeightLog(cluster, namespace="default", name="vs", route="primary", canary_service="canary-svc")
    log.restart()
    assert log.weights == [0]
    for weight in (20, 20, 50, 100, 0):  # a promotion writes 100 and 0 back to back
        cluster.patch("VirtualService", "vs", "default", {"spec": virtual_service(weight)["spec"]})
    cluster.create(dict(virtual_service(70), metadata={"name": "other", "namespace": "default"}))
    log.drain()
    assert log.weights == [0, 20, 50, 100, 0]
    log.restart()
    assert log.weights == [0]


def test_traffic_window_rates_from_the_oldest_and_newest_sample() -> None:
    counts: dict[str, dict[str, int]] = {"stable": {"200": 100}}
    window = record.TrafficWindow(lambda: {k: dict(v) for k, v in counts.items()}, window=5)
    window.sample(0.0)
    assert window.rates() == {}
    counts = {"stable": {"200": 180}, "canary": {"200": 17, "500": 3}}
    window.sample(2.0)
    assert window.rates() == {"stable": (40.0, 1.0), "canary": (10.0, 0.85)}
    window.sample(10.0)  # the first sample left the window: nothing moved since t=2
    assert window.rates() == {}


@pytest.mark.parametrize(("status", "generation", "expected"), [
    ({"phase": "Healthy", "stableRS": "abc", "observedGeneration": "2"}, 2, True),
    ({"phase": "Healthy", "stableRS": "abc", "observedGeneration": "1"}, 2, False),  # spec not seen yet
    ({"phase": "Healthy", "observedGeneration": "2"}, 2, False),
    ({"phase": "Paused", "stableRS": "abc", "observedGeneration": "2"}, 2, False),
    ({"phase": "Healthy", "stableRS": "abc", "observedGeneration": "x"}, 2, False),
    ({}, 1, False),
])
def test_healthy(status: dict[str, Any], generation: int, expected: bool) -> None:
    assert record.healthy({"metadata": {"generation": generation}, "status": status}) is expected


def test_run_for_and_measurements() -> None:
    def run(name: str, pod_hash: str, values: list[str | None]) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"rollouts-pod-template-hash": pod_hash}},
                "status": {"phase": "Failed", "metricResults": [
                    {"name": "m", "measurements": [{"phase": "Failed", "value": v} for v in values]}]}}

    runs = [run("a-1", "aaa", ["[1]"]), run("b-1", "bbb", ["[0.9]"]), run("b-2", "bbb", ["[0.8]", None, "[0.7]"])]
    found = record.run_for(runs, "bbb")
    assert found is not None and found["metadata"]["name"] == "b-2"
    assert record.measurements(found) == ("[0.8]", "[0.7]") and record.run_phase(found) == "Failed"
    assert record.run_for(runs, "ccc") is None and record.measurements(None) == () and record.run_phase(None) is None
    assert record.delta({"200": 5, "500": 1}, {"200": 2, "500": 1}) == {"200": 3}


def judge_run(hash_: str, *, mode: str = "sequential", value: str | None = None) -> dict[str, Any]:
    judged = {"score": 0.0, "verdict": "Fail", "mode": mode, "metrics": [
        {"name": "errors", "classification": "High", "message": "errors rose decisively at bucket 7: harm e=167"},
        {"name": "latency-p99", "classification": "Undecided", "message": "latency-p99 undecided"}]}
    return {"metadata": {"name": f"run-{hash_}", "labels": {record.HASH_LABEL: hash_}},
            "spec": {"metrics": [{"name": "judge", "provider": {"plugin": {"rollouts/judge": {
                "mode": mode, "sequential": {"alpha": 0.01}}}}}]},
            "status": {"phase": "Failed", "metricResults": [{"name": "judge", "measurements": [
                {"value": value if value is not None else json.dumps(judged), "message": "... result {...}"}]}]}}


def test_the_judge_run_is_found_by_its_metric_and_its_message_read_off_its_value() -> None:
    background = {"metadata": {"name": "bg", "labels": {record.HASH_LABEL: "abc"}},
                  "spec": {"metrics": [{"name": "success-rate"}]}}
    judged = judge_run("abc")
    assert record.run_for([judged, background], "abc") is background  # the newest
    assert record.run_for([judged, background], "abc", metric="judge") is judged
    assert record.run_for([judged, background], "other", metric="judge") is None
    assert record.judge_message(judged) == (
        "Fail (score 0): errors rose decisively at bucket 7: harm e=167 [anytime-valid at alpha 0.01: a canary no "
        "worse than stable is aborted with probability at most 1%, however often it is checked]")
    assert record.judge_message(judge_run("abc", mode="fixed")) == "Fail (score 0): errors rose decisively at " \
        "bucket 7: harm e=167"
    assert record.judge_message(judge_run("abc", value="[0.97]")) is None
    assert record.judge_message(None) is None
