"""Two controller processes sharing a real Lease; the leader is SIGKILLed mid-analysis.

Only the Lease holder writes: every Event carries its writer's identity (`reportingInstance`),
and the follower's log has no reconcile. When the leader is killed (no release, so the
follower waits out the lease), the follower takes over within the lease duration and
finishes the release from status alone: the step index a watch observed never goes back or
repeats, and the analysis step has one AnalysisRun, measured `count` times, not two.
Argo's counterpart: the leader election of cmd/rollouts-controller (client-go leaderelection).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rollouts.controller.leader import lock_name
from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.cluster import NotFound
from rollouts.platform.labels import HASH_LABEL
from tests.k8s.e2e import (
    Controller,
    Recorder,
    WebMetric,
    admin,
    controller_for,
    create_all,
    eventually,
    healthy,
    installed,
    namespace,
    rollout,
    set_image,
    status,
    web_template,
)

NAME = "leader"
COUNT = 8
STEPS = [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "web-slow"}]}}, {"pause": {"duration": "1s"}}]


def identity(controller: Controller) -> str | None:
    """The identity a controller logged when it took the lease (None: it never led)."""
    for message in controller.messages():
        found = re.search(r"leader election: (\S+) now leads", message)
        if found:
            return found.group(1)
    return None


def holder(cluster: KubeCluster, ns: str) -> str:
    try:
        return str(cluster.get("Lease", lock_name(namespace=ns), ns)["spec"].get("holderIdentity") or "")
    except NotFound:  # not created yet
        return ""


def writers(cluster: KubeCluster, ns: str) -> set[str]:
    """Who wrote the Events on Rollouts and AnalysisRuns (the ReplicaSet controller writes the others)."""
    return {str(e.get("reportingInstance")) for e in cluster.list("Event", ns)
            if e["involvedObject"]["kind"] in ("Rollout", "AnalysisRun")}


def canary_runs(cluster: KubeCluster, ns: str, pod_hash: str) -> list[dict[str, Any]]:
    return [r for r in cluster.list("AnalysisRun", ns) if r["metadata"]["labels"].get(HASH_LABEL) == pod_hash]


def measured(cluster: KubeCluster, ns: str, pod_hash: str) -> int:
    runs = canary_runs(cluster, ns, pod_hash)
    metrics = ((runs[0].get("status") or {}).get("metricResults") or [{}]) if runs else [{}]
    return len(metrics[0].get("measurements") or [])


def test_leader_election_only_the_leader_writes_and_a_killed_leader_is_taken_over_from_status(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    with namespace(control_plane, "e2e-leader") as ns, installed(control_plane, tmp_path, "e2e-leader", ns) as docs, \
            admin(control_plane, tmp_path, ns) as cluster, WebMetric() as metric, \
            controller_for(control_plane, tmp_path, docs, name="one", namespace=ns, leader_elect=True) as one, \
            controller_for(control_plane, tmp_path, docs, name="two", namespace=ns, leader_elect=True) as two:
        assert eventually(lambda: holder(cluster, ns)), (one.tail(), two.tail())
        leader, follower = (one, two) if identity(one) == holder(cluster, ns) else (two, one)
        assert identity(leader) == holder(cluster, ns) and identity(follower) is None

        create_all(cluster, ns, [web_template("web-slow", metric.url, count=COUNT),
                                 rollout(NAME, STEPS, replicas=2)])
        assert eventually(lambda: healthy(cluster, NAME, ns)), (status(cluster, NAME, ns), leader.tail())
        with Recorder(cluster, "Rollout", ns) as watch:
            set_image(cluster, NAME, ns, "app:v2")
            assert eventually(lambda: status(cluster, NAME, ns).get("currentPodHash") != status(cluster, NAME, ns)
                              .get("stableRS"))
            canary = status(cluster, NAME, ns)["currentPodHash"]
            assert eventually(lambda: measured(cluster, ns, canary) >= 2), (status(cluster, NAME, ns), leader.tail())
            assert writers(cluster, ns) == {identity(leader)}  # the follower wrote nothing
            assert not any("reconcile" in m.lower() or "measured" in m for m in follower.messages())
            old = identity(leader)
            leader.kill()  # SIGKILL: no release of the Lease, the follower must wait it out

            duration = int(cluster.get("Lease", lock_name(namespace=ns), ns)["spec"].get("leaseDurationSeconds") or 15)
            took_over = eventually(lambda: holder(cluster, ns) not in ("", old), timeout=duration + 10)
            assert took_over, follower.tail()
            assert holder(cluster, ns) == identity(follower)
            promoted = eventually(lambda: healthy(cluster, NAME, ns)
                                  and status(cluster, NAME, ns)["stableRS"] == canary)
            assert promoted, (status(cluster, NAME, ns), follower.tail())

        steps = [o["status"].get("currentStepIndex") for o in watch.objects(NAME)
                 if (o.get("status") or {}).get("currentPodHash") == canary]
        changes = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
        assert changes == sorted(set(changes)), steps  # never backwards, never the same step twice
        assert changes[-1] == len(STEPS)
        runs = canary_runs(cluster, ns, canary)
        assert len(runs) == 1, [r["metadata"]["name"] for r in runs]  # the analysis step ran once
        assert runs[0]["status"]["phase"] == "Successful"
        assert measured(cluster, ns, canary) == COUNT
        assert writers(cluster, ns) == {old, identity(follower)}
        assert not follower.forbidden(), follower.forbidden()
