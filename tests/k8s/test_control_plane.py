"""The real control plane itself: the parts the end-to-end suites lean on work as Kubernetes does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.cluster import Forbidden, NotFound

NS = "default"


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def replica_set(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}},
    }


def test_the_real_replica_set_controller_makes_pods_that_the_stand_in_marks_ready(control_plane: ControlPlane,
                                                                                   tmp_path: Any) -> None:
    with KubeCluster(kubeconfig=control_plane.kubeconfig(tmp_path / "admin"), request_timeout=10) as cluster:
        cluster.create(replica_set("ready", 3))
        available = eventually(lambda: (cluster.get("ReplicaSet", "ready", NS).get("status") or {})
                               .get("availableReplicas") == 3)
        assert available, cluster.get("ReplicaSet", "ready", NS).get("status")
        pods = cluster.list("Pod", NS, label_selector={"app": "ready"})
        assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
        owner = cluster.get("ReplicaSet", "ready", NS)["metadata"]["uid"]
        assert {p["metadata"]["ownerReferences"][0]["uid"] for p in pods} == {owner}

        cluster.delete("ReplicaSet", "ready", NS)  # the real garbage collector removes the pods
        assert eventually(lambda: not cluster.list("Pod", NS, label_selector={"app": "ready"}))


def test_rbac_is_enforced_for_an_impersonated_service_account(control_plane: ControlPlane, tmp_path: Any) -> None:
    who = "system:serviceaccount:default:nobody"
    with KubeCluster(kubeconfig=control_plane.kubeconfig(tmp_path / "nobody", as_user=who),
                     request_timeout=10) as cluster:
        with pytest.raises(Forbidden):
            cluster.list("Rollout", NS)
        with pytest.raises(Forbidden):
            cluster.get("Rollout", "missing", NS)
    admin = KubeCluster(kubeconfig=control_plane.kubeconfig(tmp_path / "admin"), request_timeout=10)
    with admin, pytest.raises(NotFound):
        admin.get("Rollout", "missing", NS)
