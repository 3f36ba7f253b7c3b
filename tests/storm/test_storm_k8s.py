"""Kill storm on the real control plane: a smaller run, with the chart's RBAC.

One `rollouts controller --namespace` process acting as the chart's ServiceAccount (a
missing permission is a real 403) reconciles one Rollout of every shape in a namespace of
its own, and is SIGKILLed at seeded random moments (`ROLLOUTS_STORM_K8S_KILLS`, default 20),
each time replaced at once; the real ReplicaSet controller makes the Pods and the real
garbage collector removes what the Rollout no longer owns. The same invariants as on the
embedded API judge the history a watch on the real API server recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from tests.k8s.e2e import admin, controller_for, installed, namespace
from tests.storm import fleet, invariants
from tests.storm.history import History
from tests.storm.storm import Shard, Storm, assert_survived, figures

KILLS = int(os.environ.get("ROLLOUTS_STORM_K8S_KILLS", "20"))
SEED = int(os.environ.get("ROLLOUTS_STORM_SEED", "14"))


@pytest.mark.timeout(KILLS * 6 + 300)
def test_a_controller_killed_at_random_moments_on_the_real_control_plane_keeps_every_invariant(
        control_plane: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with namespace(control_plane, "storm-k8s") as ns, installed(control_plane, tmp_path, "storm-k8s", ns) as docs, \
            admin(control_plane, tmp_path, ns) as cluster, fleet.Verdicts() as verdicts, \
            History(cluster, namespace=ns) as history:
        names, objects = fleet.fleet(ns, verdicts.url, 1)
        for obj in objects:
            cluster.create(obj)
        kubeconfig = controller_for(control_plane, tmp_path, docs, name="storm", namespace=ns).kubeconfig
        storm = Storm(cluster, [Shard(ns, kubeconfig, tmp_path / "storm.log")], {ns: names}, seed=SEED, exec_every=4)
        for name in names:
            storm.begin(ns, name)
        with storm.forking():
            unsettled = storm.run(KILLS, give_up=KILLS * 6.0 + 240, settle=lambda: _settled(cluster, ns))
        report = invariants.check(history, cluster, [ns], storm.promoted())
        with capsys.disabled():
            print("\n" + "\n".join(figures(storm, history, report, "real control plane", SEED)))
        assert_survived(storm, report, KILLS, unsettled)


def _settled(cluster: KubeCluster, ns: str) -> list[str]:
    report = invariants.Report()
    invariants.at_rest(cluster, [ns], report)
    return report.violations
