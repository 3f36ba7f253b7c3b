"""blueGreen stories end to end: both controllers, the InMemoryCluster, a stepped clock.

The example is examples/blue-green (Argo's examples/rollout-bluegreen.yaml plus a
prePromotionAnalysis). The active Service's selector is recorded by watching the Service,
as an outside observer sees it; the metric provider is scripted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollouts import view
from rollouts.platform.labels import HASH_LABEL, SCALE_DOWN_DEADLINE
from rollouts.view import render
from tests.controller.dsl import Follower, Scenario

NEW_IMAGE = "argoproj/rollouts-demo:green"
ACTIVE, PREVIEW = "rollout-bluegreen-active", "rollout-bluegreen-preview"
METRIC = "preview-success-rate"
HEALTHY, FAILING = [0.99], [0.42]


class BlueGreen(Scenario):
    """The Scenario, with the active and preview Services' selectors followed by a watch."""

    def __init__(self, edit: Any = None) -> None:
        super().__init__("blue-green", vs="none")
        self.edit(edit)
        follow = {name: Follower(self.cluster, self.clock, kind="Service", name=name, namespace=self.namespace,
                                 extract=lambda svc: (svc.get("spec") or {}).get("selector", {}).get(HASH_LABEL))
                  for name in (ACTIVE, PREVIEW)}
        self.active, self.preview = follow[ACTIVE], follow[PREVIEW]

    def edit(self, change: Any) -> None:
        if change is not None:
            change(next(doc for doc in self.docs if doc["kind"] == "Rollout")["spec"]["strategy"]["blueGreen"])

    def observe(self) -> None:
        super().observe()
        if hasattr(self, "active"):
            self.active.poll()
            self.preview.poll()

    @property
    def active_selectors(self) -> list[str | None]:
        self.observe()
        return [value for _, value in self.active.values]

    def rs_replicas(self, pod_hash: str) -> int:
        rs = self.cluster.get("ReplicaSet", f"{self.rollout_name}-{pod_hash}", self.namespace)
        return int(rs["spec"]["replicas"])


def scenario_of(closing: list[Scenario], edit: Any = None, *, metric: list[float] = HEALTHY) -> BlueGreen:
    scenario = BlueGreen(edit)
    closing.append(scenario)
    scenario.provider.script(METRIC, metric)  # type: ignore[attr-defined]
    return scenario


def test_pre_promotion_analysis_passes_then_promote_switches_active_only_then(closing: list[Scenario]) -> None:
    # Given the example deployed: the first revision is promoted at once, the active Service selects it
    bg = scenario_of(closing).given_healthy()
    first = bg.status["stableRS"]
    assert bg.active_selectors == [None, first]
    # When a new image is rolled out, the preview is measured and the Rollout waits for promote
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    new = bg.status["currentPodHash"]
    [run] = bg.analysis_runs()
    assert run["metadata"]["name"] == f"rollout-bluegreen-{new}-2-pre" and run["status"]["phase"] == "Successful"
    assert bg.status["pauseConditions"][0]["reason"] == "BlueGreenPause"
    assert bg.status["blueGreen"]["prePromotionAnalysisRunStatus"]["status"] == "Successful"
    assert bg.active_selectors == [None, first] and bg.preview.values[-1][1] == new
    # Then nothing moves while it waits
    bg.run_for(3600)
    assert bg.active_selectors == [None, first] and bg.phase == "Paused"
    # When promoted, the active Service switches once, and the new ReplicaSet is the stable one
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    assert bg.active_selectors == [None, first, new]
    assert bg.status["stableRS"] == new and bg.status["blueGreen"]["activeSelector"] == new


def test_pre_promotion_failure_aborts_and_active_never_switches(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, metric=FAILING).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Degraded")
    new = bg.status["currentPodHash"]
    assert bg.status["abort"] is True
    assert "Blue/green pre-promotion analysis phase Failed" in bg.status["message"]
    # the verdict explains itself (analysis.explain): metric, value, condition, counts, resolved query
    assert 'preview-success-rate=[0.42] failed "result[0] >= 0.95" (1 failed > failureLimit 0); query: sum(irate(' \
        in bg.status["message"]
    bg.run_for(120)
    assert bg.active_selectors == [None, first] and bg.status["stableRS"] == first
    assert bg.rs_replicas(new) == 0 and bg.rs_replicas(first) == 2
    [scaled] = [e for e in bg.events("ScalingReplicaSet") if "to 0" in e["message"]]
    assert new in scaled["message"]
    assert bg.phase == "Degraded"


def _post_only(strategy: dict[str, Any]) -> None:
    strategy["postPromotionAnalysis"] = strategy.pop("prePromotionAnalysis")
    strategy["autoPromotionEnabled"] = True


def test_post_promotion_failure_switches_active_back_to_the_previous_set(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, _post_only, metric=FAILING).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Degraded")
    new = bg.status["currentPodHash"]
    assert "Blue/green post-promotion analysis phase Failed" in bg.status["message"]
    assert bg.active_selectors == [None, first, new, first]
    assert bg.status["stableRS"] == first and bg.rs_replicas(first) == 2


def test_post_promotion_success_promotes_and_the_old_set_waits_scale_down_delay(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, _post_only).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Healthy")
    new = bg.status["currentPodHash"]
    assert bg.active_selectors == [None, first, new] and bg.status["stableRS"] == new
    promoted = bg.clock.now()
    old = bg.cluster.get("ReplicaSet", f"rollout-bluegreen-{first}", "default")
    deadline = old["metadata"]["annotations"][SCALE_DOWN_DEADLINE]
    assert deadline == (promoted + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bg.run_until(lambda: bg.rs_replicas(first) == 0)
    assert bg.clock.now() - promoted == timedelta(seconds=30)


def test_manual_promote_with_auto_promotion_disabled_and_no_analysis(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, lambda s: s.pop("prePromotionAnalysis")).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    assert bg.status["controllerPause"] is True and bg.active_selectors == [None, first]
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    assert bg.active_selectors == [None, first, bg.status["currentPodHash"]]
    assert "pauseConditions" not in bg.status and "controllerPause" not in bg.status


def _argo_example(strategy: dict[str, Any]) -> None:
    """Argo's examples/rollout-bluegreen.yaml: the same Rollout without this example's additions."""
    strategy.pop("prePromotionAnalysis")
    strategy.pop("scaleDownDelaySeconds")


def test_argo_example_rollout_bluegreen_reaches_healthy(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, _argo_example).given_healthy()
    assert set(bg.rollout["spec"]["strategy"]["blueGreen"]) == {"activeService", "previewService",
                                                                "autoPromotionEnabled"}
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    status = bg.status
    assert status["stableRS"] == status["currentPodHash"] == status["blueGreen"]["activeSelector"]
    assert status["blueGreen"]["previewSelector"] == status["currentPodHash"]
    # Argo counts a blueGreen Rollout on its active ReplicaSet (the HPA's selector too)
    assert status["selector"] == f"app=rollout-bluegreen,rollouts-pod-template-hash={status['stableRS']}"
    assert (status["HPAReplicas"], status["availableReplicas"], status["readyReplicas"]) == (2, 2, 2)
    assert {c["type"]: c["status"] for c in status["conditions"]}["Completed"] == "True"


def test_a_controller_restarted_mid_release_carries_on_from_status(closing: list[Scenario]) -> None:
    bg = scenario_of(closing).given_healthy()
    first = bg.status["stableRS"]
    calls = bg.provider.calls  # type: ignore[attr-defined]
    bg.when_image(NEW_IMAGE).run_until(lambda: bool(bg.analysis_runs()) and calls != [])
    # the first measurement is taken; the controller is abandoned and a new one starts
    bg.manager = bg.new_manager()
    bg.run_until(lambda: bg.phase == "Paused")
    bg.manager = bg.new_manager()
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    new = bg.status["currentPodHash"]
    assert [r["metadata"]["name"] for r in bg.analysis_runs()] == [f"rollout-bluegreen-{new}-2-pre"]
    assert len(calls) == 3, "no measurement taken twice"
    assert bg.active_selectors == [None, first, new]


def test_get_rollout_shows_blue_green_with_active_and_preview(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, lambda s: s.pop("prePromotionAnalysis")).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    new = bg.status["currentPodHash"]
    got = view.build(bg.rollout, bg.cluster.list("ReplicaSet", "default"), bg.analysis_runs(), now=bg.clock.now())
    assert got.strategy == "BlueGreen" and got.step == "" and got.set_weight is None
    infos = {rs.name: rs.info for revision in got.revisions for rs in revision.replica_sets}
    assert infos == {f"rollout-bluegreen-{new}": "preview,ready:2/2",
                     f"rollout-bluegreen-{first}": "stable,active,ready:2/2"}
    images = {row.image: row.tags for row in got.images}
    assert images == {"argoproj/rollouts-demo:blue": ("active", "stable"),
                      NEW_IMAGE: ("preview",)}
    text = render.to_text(render.rollout(got))
    assert "Strategy:" in text and "BlueGreen" in text and "stable,active,ready:2/2" in text


def test_abort_then_retry_measures_again_and_promote_finishes(closing: list[Scenario]) -> None:
    bg = scenario_of(closing).given_healthy()
    first = bg.status["stableRS"]
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    new = bg.status["currentPodHash"]
    # `rollouts abort`: the active Service stays, the preview pods go after abortScaleDownDelaySeconds (30)
    bg.when_abort().run_until(lambda: bg.phase == "Degraded")
    bg.run_until(lambda: bg.rs_replicas(new) == 0, max_seconds=60)
    assert bg.active_selectors == [None, first] and bg.rs_replicas(first) == 2
    # `rollouts retry`: the update starts again with a new pre-promotion run, and waits for promote again
    bg.when_retry().run_until(lambda: bg.phase == "Paused")
    assert sorted(r["metadata"]["name"] for r in bg.analysis_runs()) == [
        f"rollout-bluegreen-{new}-2-pre", f"rollout-bluegreen-{new}-2-pre.1"]
    assert bg.status["blueGreen"]["prePromotionAnalysisRunStatus"]["name"].endswith("-pre.1")
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    assert bg.active_selectors == [None, first, new]


def test_pause_holds_the_switch_and_resume_lets_promote_through(closing: list[Scenario]) -> None:
    bg = scenario_of(closing, lambda s: s.pop("prePromotionAnalysis")).given_healthy()
    first = bg.status["stableRS"]
    bg.cluster.patch("Rollout", bg.rollout_name, "default", {"spec": {"paused": True}})  # `rollouts pause`
    bg.when_image(NEW_IMAGE).run_for(300)
    assert bg.phase == "Paused" and bg.status["message"] == "manually paused"
    assert bg.active_selectors == [None, first]
    bg.when_promote().run_until(lambda: bg.phase == "Paused" and not bg.rollout["spec"].get("paused"))
    assert bg.status["pauseConditions"][0]["reason"] == "BlueGreenPause"  # the manual gate still holds
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    assert bg.active_selectors == [None, first, bg.status["currentPodHash"]]
