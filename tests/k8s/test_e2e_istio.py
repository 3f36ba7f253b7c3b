"""An Istio canary with a web-metric analysis, end to end on the real control plane.

The controller runs as the chart's ServiceAccount (its RBAC applied from `helm template`), the
real ReplicaSet controller makes the pods, the analysis asks a real local HTTP server. A good
release is promoted, a bad one aborted by its analysis; the VirtualService, watched for the
whole story, only ever carries the step weights; Events are in the namespace; and the real
garbage collector removes the AnalysisRuns (owned by the Rollout) when the Rollout is deleted.
Argo's e2e counterpart: test/e2e/istio_test.go (TestIstioHostSplit, TestIstioAbortUpdate).
"""

from __future__ import annotations

from pathlib import Path

from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.labels import HASH_LABEL
from tests.k8s.e2e import (
    Recorder,
    WebMetric,
    admin,
    canary_weight,
    controller_for,
    create_all,
    eventually,
    healthy,
    installed,
    istio_canary,
    namespace,
    set_image,
    status,
    web_template,
)

NAME = "guestbook"
STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "web-ok"}]}},
         {"setWeight": 50}, {"pause": {"duration": "1s"}}]
STEP_WEIGHTS = {0, 20, 50, 100}


def changes(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_istio_canary_good_release_promoted_bad_one_aborted_weights_events_and_gc(control_plane: ControlPlane,
                                                                                  tmp_path: Path) -> None:
    with namespace(control_plane, "e2e-istio") as ns, installed(control_plane, tmp_path, "e2e-istio", ns) as docs, \
            admin(control_plane, tmp_path, ns) as cluster, WebMetric() as metric, \
            controller_for(control_plane, tmp_path, docs, namespace=ns) as controller:
        create_all(cluster, ns, [web_template("web-ok", metric.url), *istio_canary(NAME, STEPS, replicas=2)])
        assert eventually(lambda: healthy(cluster, NAME, ns)), (status(cluster, NAME, ns), controller.tail())
        first = status(cluster, NAME, ns)["stableRS"]

        with Recorder(cluster, "VirtualService", ns) as vs_watch:
            set_image(cluster, NAME, ns, "app:v2")  # healthy: promoted
            promoted = eventually(lambda: healthy(cluster, NAME, ns) and status(cluster, NAME, ns)["stableRS"] != first)
            assert promoted, (status(cluster, NAME, ns), controller.tail())
            assert eventually(lambda: canary_weight(vs_watch.objects()[-1], f"{NAME}-canary") == 0)
            good_weights = [canary_weight(vs, f"{NAME}-canary") for vs in vs_watch.objects()]
            second = status(cluster, NAME, ns)["stableRS"]

            metric.healthy = False
            mark = len(vs_watch.objects())
            set_image(cluster, NAME, ns, "app:v3")  # failing: aborted by the step analysis
            aborted = eventually(lambda: status(cluster, NAME, ns).get("abort") is True
                                 and status(cluster, NAME, ns).get("phase") == "Degraded")
            assert aborted, (status(cluster, NAME, ns), controller.tail())
            assert eventually(lambda: canary_weight(vs_watch.objects()[-1], f"{NAME}-canary") == 0)
            bad_weights = [canary_weight(vs, f"{NAME}-canary") for vs in vs_watch.objects()[mark:]]

        assert set(good_weights) <= STEP_WEIGHTS and changes(good_weights)[:3] == [0, 20, 50], good_weights
        assert changes(good_weights)[-1] == 0  # the promoted version is the stable one again
        assert set(bad_weights) <= {0, 20} and 20 in bad_weights and bad_weights[-1] == 0, bad_weights
        assert status(cluster, NAME, ns)["stableRS"] == second  # the bad canary never became stable
        assert metric.served >= 3

        runs = cluster.list("AnalysisRun", ns)
        by_hash = {r["metadata"]["labels"][HASH_LABEL]: r for r in runs}
        assert by_hash[second]["status"]["phase"] == "Successful"
        bad_hash = status(cluster, NAME, ns)["currentPodHash"]
        assert by_hash[bad_hash]["status"]["phase"] == "Failed"
        rollout_uid = cluster.get("Rollout", NAME, ns)["metadata"]["uid"]
        for run in runs:
            owners = run["metadata"]["ownerReferences"]
            assert [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [("Rollout", rollout_uid, True)]

        events = cluster.list("Event", ns)
        reasons = {e["reason"] for e in events if e["involvedObject"]["kind"] == "Rollout"}
        assert {"RolloutStepCompleted", "RolloutCompleted", "RolloutAborted"} <= reasons, reasons
        assert not controller.forbidden(), controller.forbidden()

        cluster.delete("Rollout", NAME, ns)  # the real garbage collector takes what the Rollout owns
        gone = eventually(lambda: not cluster.list("AnalysisRun", ns) and not cluster.list("ReplicaSet", ns)
                          and not cluster.list("Pod", ns))
        assert gone, ([r["metadata"]["name"] for r in cluster.list("AnalysisRun", ns)],
                      [r["metadata"]["name"] for r in cluster.list("ReplicaSet", ns)])
