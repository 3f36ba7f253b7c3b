"""PodRunner: real app processes follow ReplicaSets; routes follow VirtualService weights and Service selectors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rollouts.demo.pods import PodRunner
from rollouts.memory.cluster import InMemoryCluster

NS = "default"
SERVICE = "web.default.svc.cluster.local"


def replica_set(name: str, image: str, *, replicas: int = 1, pod_hash: str | None = None) -> dict[str, Any]:
    labels = {"app": "web", "rollouts-pod-template-hash": pod_hash or name.rsplit("-", 1)[-1]}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": selector, "ports": [{"port": 80}]}}


def virtual_service(stable: int, canary: int) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": NS},
            "spec": {"hosts": ["web"], "http": [
                {"name": "other", "route": [{"destination": {"host": "elsewhere"}, "weight": 100}]},
                {"name": "primary", "route": [
                    {"destination": {"host": "stable-svc.default.svc.cluster.local"}, "weight": stable},
                    {"destination": {"host": "canary-svc"}, "weight": canary}]}]}}


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster()


@pytest.fixture
def runner(cluster: InMemoryCluster) -> Iterator[PodRunner]:
    pods = PodRunner(cluster, namespace=NS, service=SERVICE)
    yield pods
    pods.close()


def test_a_process_per_live_replica_set_serving_its_image(cluster: InMemoryCluster, runner: PodRunner) -> None:
    cluster.create(replica_set("web-aaa", "demo:v2"))
    cluster.create(replica_set("web-bbb", "demo:v3"))
    cluster.create(replica_set("web-ccc", "demo:v1", replicas=0))
    assert runner.sync() is True
    apps = runner.apps
    assert sorted(apps) == ["web-aaa", "web-bbb"]
    body = requests.get(apps["web-aaa"].url, timeout=5).json()
    assert body == {"image": "demo:v2", "workload": "web-aaa", "code": 200}
    requests.get(apps["web-bbb"].url, timeout=5)
    metrics = requests.get(apps["web-bbb"].url + "metrics", timeout=5).text
    assert f'destination_service="{SERVICE}",destination_workload="web-bbb"' in metrics
    assert runner.metrics_targets() == sorted(f"127.0.0.1:{a.port}" for a in apps.values())
    assert runner.sync() is False  # converged: nothing restarted
    assert runner.apps["web-aaa"].port == apps["web-aaa"].port


def test_scale_to_zero_delete_and_image_change_stop_processes(cluster: InMemoryCluster, runner: PodRunner) -> None:
    cluster.create(replica_set("web-aaa", "demo:v2"))
    cluster.create(replica_set("web-bbb", "demo:v2"))
    runner.sync()
    first = runner.apps
    cluster.patch("ReplicaSet", "web-aaa", NS, {"spec": {"replicas": 0}})
    cluster.delete("ReplicaSet", "web-bbb", NS)
    runner.sync()
    assert runner.apps == {}
    assert all(app.process.poll() is not None for app in first.values())
    assert not any(accepts(app.port) for app in first.values())

    cluster.patch("ReplicaSet", "web-aaa", NS, {"spec": {"replicas": 2}})
    runner.sync()
    old = runner.apps["web-aaa"]
    cluster.patch("ReplicaSet", "web-aaa", NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "demo:v3"}]}}}})
    runner.sync()
    new = runner.apps["web-aaa"]
    assert old.process.poll() is not None and new.image == "demo:v3"
    assert requests.get(new.url, timeout=5).json()["image"] == "demo:v3"


def test_close_stops_everything_and_later_syncs_start_nothing(cluster: InMemoryCluster) -> None:
    runner = PodRunner(cluster, namespace=NS, service=SERVICE)
    cluster.create(replica_set("web-aaa", "demo:v2"))
    runner.sync()
    app = runner.apps["web-aaa"]
    runner.close()
    assert app.process.poll() is not None and not accepts(app.port)
    assert runner.sync() is False and runner.apps == {}


def test_routes_follow_weights_and_service_selectors(cluster: InMemoryCluster, runner: PodRunner) -> None:
    cluster.create(replica_set("web-aaa", "demo:v2"))
    cluster.create(replica_set("web-bbb", "demo:v3"))
    cluster.create(service("stable-svc", {"app": "web", "rollouts-pod-template-hash": "aaa"}))
    cluster.create(service("canary-svc", {"app": "web", "rollouts-pod-template-hash": "bbb"}))
    cluster.create(virtual_service(80, 20))
    runner.sync()
    apps = runner.apps
    routes = runner.routes("vs", "primary")
    assert [(b.workload, b.url, b.weight) for b in routes] == [
        ("web-aaa", apps["web-aaa"].url, 80), ("web-bbb", apps["web-bbb"].url, 20)]

    # the controller moves the weights and the canary Service's selector: routes follow
    cluster.patch("VirtualService", "vs", NS, {"spec": {"http": [virtual_service(0, 100)["spec"]["http"][1]]}})
    cluster.patch("Service", "canary-svc", NS, {"spec": {"selector": {"rollouts-pod-template-hash": "aaa"}}})
    assert [(b.workload, b.weight) for b in runner.routes("vs", "primary")] == [("web-aaa", 0), ("web-aaa", 100)]


def test_routes_leave_out_what_does_not_run(cluster: InMemoryCluster, runner: PodRunner) -> None:
    assert runner.routes("vs", "primary") == []  # no VirtualService yet
    cluster.create(virtual_service(50, 50))
    cluster.create(service("stable-svc", {"rollouts-pod-template-hash": "aaa"}))
    # canary-svc does not exist; the stable Service selects a ReplicaSet with no process yet
    cluster.create(replica_set("web-aaa", "demo:v2"))
    assert runner.routes("vs", "primary") == []
    runner.sync()
    assert [b.workload for b in runner.routes("vs", "primary")] == ["web-aaa"]
    assert runner.routes("vs", "missing-route") == []
    cluster.patch("ReplicaSet", "web-aaa", NS, {"spec": {"replicas": 0}})
    runner.sync()
    assert runner.routes("vs", "primary") == []
