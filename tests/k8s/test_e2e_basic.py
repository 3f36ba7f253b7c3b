"""A basic canary (no traffic router) on the real control plane, with the chart's namespace-scoped RBAC.

The weight is approximated by replica counts (Argo's basic canary): the controller scales the
two ReplicaSets and the real ReplicaSet controller creates and deletes the Pods, which are
counted by their pod-template-hash label at each paused step. The controller runs with
`--namespace` and `--leader-elect` as the chart deploys it with `controller.namespaceScope`:
a Role and RoleBinding in the namespace, a ClusterRole for ClusterAnalysisTemplates only.
Argo's e2e counterpart: test/e2e/canary_test.go (TestCanaryScaleDownOnAbort's basic steps).
"""

from __future__ import annotations

from pathlib import Path

from rollouts.cli.actions import promote_patches
from rollouts.controller.leader import lock_name
from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from tests.k8s.e2e import (
    admin,
    controller_for,
    create_all,
    eventually,
    healthy,
    installed,
    namespace,
    pods_by_hash,
    rollout,
    set_image,
    status,
)

NAME = "basic"
STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}]


def promote(cluster: KubeCluster, ns: str) -> None:
    spec, state = promote_patches(cluster.get("Rollout", NAME, ns), full=False)
    if spec:
        cluster.patch("Rollout", NAME, ns, spec)
    if state:
        cluster.patch_status("Rollout", NAME, ns, state)


def paused_at(cluster: KubeCluster, ns: str, index: int) -> bool:
    current = status(cluster, NAME, ns)
    return current.get("currentStepIndex") == index and bool(current.get("pauseConditions"))


def test_basic_canary_replica_counts_follow_the_steps_with_real_pods(control_plane: ControlPlane,
                                                                     tmp_path: Path) -> None:
    values = {"controller": {"namespaceScope": "e2e-basic"}}
    with namespace(control_plane, "e2e-basic") as ns, installed(control_plane, tmp_path, "e2e-basic", ns,
                                                                 values) as docs, \
            admin(control_plane, tmp_path, ns) as cluster, \
            controller_for(control_plane, tmp_path, docs, namespace=ns, leader_elect=True) as controller:
        assert {d["kind"] for d in docs} >= {"Role", "RoleBinding"}
        create_all(cluster, ns, [rollout(NAME, STEPS, replicas=4)])
        assert eventually(lambda: healthy(cluster, NAME, ns)), (status(cluster, NAME, ns), controller.tail())
        stable = status(cluster, NAME, ns)["stableRS"]
        assert eventually(lambda: pods_by_hash(cluster, ns, NAME) == {stable: 4})

        set_image(cluster, NAME, ns, "app:v2")
        assert eventually(lambda: paused_at(cluster, ns, 1)), (status(cluster, NAME, ns), controller.tail())
        canary = status(cluster, NAME, ns)["currentPodHash"]
        assert canary != stable
        seen = eventually(lambda: pods_by_hash(cluster, ns, NAME) == {stable: 3, canary: 1})
        assert seen, pods_by_hash(cluster, ns, NAME)

        promote(cluster, ns)
        assert eventually(lambda: paused_at(cluster, ns, 3)), (status(cluster, NAME, ns), controller.tail())
        seen = eventually(lambda: pods_by_hash(cluster, ns, NAME) == {stable: 1, canary: 3})
        assert seen, pods_by_hash(cluster, ns, NAME)

        promote(cluster, ns)
        assert eventually(lambda: healthy(cluster, NAME, ns) and status(cluster, NAME, ns)["stableRS"] == canary)
        seen = eventually(lambda: pods_by_hash(cluster, ns, NAME) == {canary: 4})
        assert seen, pods_by_hash(cluster, ns, NAME)
        replica_sets = {rs["metadata"]["labels"]["rollouts-pod-template-hash"]: rs["spec"]["replicas"]
                        for rs in cluster.list("ReplicaSet", ns)}
        assert replica_sets == {stable: 0, canary: 4}
        assert cluster.get("Lease", lock_name(namespace=ns), ns)  # a namespace shard's Lease["spec"]["holderIdentity"]
        assert not controller.forbidden(), controller.forbidden()
