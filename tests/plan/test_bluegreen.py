"""The blueGreen plan (rollouts.plan.bluegreen): sizes, selectors, pause, pre/post-promotion runs,
scale-down deadlines, on a stepped clock (Argo's rollout/bluegreen_test.go cases, by name)."""

from __future__ import annotations

import dataclasses
from typing import Any

from rollouts.plan.planner import plan
from rollouts.plan.validation import References, validate_rollout
from rollouts.platform.actions import CreateAnalysisRun, CreateReplicaSet, DeletePod
from rollouts.platform.labels import SCALE_DOWN_DEADLINE
from rollouts.spec.model import Rollout
from tests.plan.builders import T0, World, analysis_template, hash_of, seconds, service, template

V1, V2 = hash_of("app:v1"), hash_of("app:v2")


def blue_green(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "0b5e3c1a-0000-4000-8000-000000000001",
                         "generation": 1},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("app:v1"),
                     "strategy": {"blueGreen": {"activeService": "web-active", "previewService": "web-preview",
                                                **fields}}}}


def world(**fields: Any) -> World:
    return World(rollout=blue_green(**fields), services=[service("web-active", managed_by=None),
                                                        service("web-preview", managed_by=None)],
                 templates=[analysis_template("smoke")])


def deployed(**fields: Any) -> World:
    w = world(**fields)
    w.settle()
    assert w.status["phase"] == "Healthy"
    return w


def test_first_deploy_is_promoted_at_once_and_both_services_select_it() -> None:
    w = world(autoPromotionEnabled=False)
    w.settle()
    assert w.status["stableRS"] == w.status["currentPodHash"] == V1
    assert (w.selector("web-active"), w.selector("web-preview")) == (V1, V1)
    assert w.status["blueGreen"] == {"activeSelector": V1, "previewSelector": V1}
    assert "pauseConditions" not in w.status


def test_update_scales_the_new_set_in_full_points_preview_then_pauses_when_auto_promotion_is_off() -> None:
    w = deployed(autoPromotionEnabled=False)
    w.set_image("app:v2")
    w.settle()
    assert w.rs("app:v2")["spec"]["replicas"] == 3 and w.rs("app:v1")["spec"]["replicas"] == 3
    assert (w.selector("web-active"), w.selector("web-preview")) == (V1, V2)
    assert [c["reason"] for c in w.status["pauseConditions"]] == ["BlueGreenPause"]
    assert w.status["controllerPause"] is True and w.status["phase"] == "Paused"
    assert w.status["stableRS"] == V1


def test_promote_switches_active_then_the_old_set_waits_scale_down_delay_with_its_deadline() -> None:
    w = deployed(autoPromotionEnabled=False)
    w.set_image("app:v2")
    w.settle()
    w.set_status(pauseConditions=None)  # `promote`: Argo's patch for a paused blueGreen
    w.settle()
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V2
    assert w.status["phase"] == "Healthy" and "controllerPause" not in w.status
    old = w.rs("app:v1")
    assert old["metadata"]["annotations"][SCALE_DOWN_DEADLINE] == "2024-05-01T12:00:30Z"
    assert old["spec"]["replicas"] == 3
    assert w.plan(T0 + seconds(29)).requeue_after == 1.0
    w.settle(T0 + seconds(30))
    assert w.rs("app:v1")["spec"]["replicas"] == 0


def test_auto_promotion_switches_when_the_new_set_is_ready_without_a_pause() -> None:
    w = deployed()
    w.set_image("app:v2")
    w.settle()
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V2
    assert not any(reason == "RolloutPaused" for reason, _ in w.recorded)


def test_auto_promotion_seconds_pauses_then_switches_at_start_plus_seconds() -> None:
    w = deployed(autoPromotionSeconds=60)
    w.set_image("app:v2")
    w.settle()
    [pause] = w.status["pauseConditions"]
    assert pause == {"reason": "BlueGreenPause", "startTime": "2024-05-01T12:00:00Z"}
    assert w.plan(T0 + seconds(10)).requeue_after == 50.0
    w.settle(T0 + seconds(59))
    assert w.selector("web-active") == V1
    w.settle(T0 + seconds(60))
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V2


def test_preview_replica_count_scales_preview_then_full_before_the_switch() -> None:
    w = deployed(previewReplicaCount=1, autoPromotionEnabled=False)
    w.set_image("app:v2")
    w.settle()
    assert w.rs("app:v2")["spec"]["replicas"] == 1 and w.selector("web-active") == V1
    assert w.status["phase"] == "Paused"
    w.set_status(pauseConditions=None)
    w.step()
    assert w.status["blueGreen"]["scaleUpPreviewCheckPoint"] is True
    assert w.selector("web-active") == V1  # never onto a ReplicaSet below spec.replicas
    w.settle()
    assert w.rs("app:v2")["spec"]["replicas"] == 3 and w.selector("web-active") == V2
    assert "scaleUpPreviewCheckPoint" not in w.status["blueGreen"]


def test_pre_promotion_analysis_must_succeed_before_the_switch() -> None:
    w = deployed(prePromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                       "args": [{"name": "service", "value": "web-preview"}]})
    w.set_image("app:v2")
    w.settle()
    name = f"web-{V2}-2-pre"
    assert w.run(name)["metadata"]["labels"]["rollout-type"] == "PrePromotion"
    assert w.status["blueGreen"]["prePromotionAnalysisRunStatus"]["name"] == name
    assert w.selector("web-active") == V1 and w.status["phase"] == "Progressing"
    w.finish_run(name, "Successful")
    w.settle()
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V2


def test_pre_promotion_analysis_failure_aborts_and_scales_preview_down_after_the_abort_delay() -> None:
    w = deployed(prePromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                       "args": [{"name": "service", "value": "web-preview"}]},
                 abortScaleDownDelaySeconds=10)
    w.set_image("app:v2")
    w.settle()
    w.finish_run(f"web-{V2}-2-pre", "Failed", "error rate too high")
    w.settle()
    assert w.status["abort"] is True and w.status["phase"] == "Degraded"
    assert "Blue/green pre-promotion analysis phase Failed: error rate too high" in w.status["message"]
    assert w.selector("web-active") == V1 and w.rs("app:v2")["spec"]["replicas"] == 3
    w.settle(T0 + seconds(10))
    assert w.rs("app:v2")["spec"]["replicas"] == 0 and w.selector("web-active") == V1


def test_pre_promotion_inconclusive_pauses() -> None:
    w = deployed(prePromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                       "args": [{"name": "service", "value": "web-preview"}]})
    w.set_image("app:v2")
    w.settle()
    w.finish_run(f"web-{V2}-2-pre", "Inconclusive")
    w.settle()
    assert [c["reason"] for c in w.status["pauseConditions"]] == ["InconclusiveAnalysisRun"]
    assert w.selector("web-active") == V1


def test_post_promotion_failure_switches_active_back_to_the_kept_previous_set() -> None:
    w = deployed(postPromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                        "args": [{"name": "service", "value": "web-active"}]})
    w.set_image("app:v2")
    w.settle()
    name = f"web-{V2}-2-post"
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V1
    assert w.run(name)["metadata"]["labels"]["rollout-type"] == "PostPromotion"
    assert w.rs("app:v1")["spec"]["replicas"] == 3 and w.status["message"] == "waiting for analysis to complete"
    w.finish_run(name, "Failed")
    w.settle()
    assert w.selector("web-active") == V1 and w.status["abort"] is True and w.status["stableRS"] == V1


def test_post_promotion_success_promotes() -> None:
    w = deployed(postPromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                        "args": [{"name": "service", "value": "web-active"}]})
    w.set_image("app:v2")
    w.settle()
    w.finish_run(f"web-{V2}-2-post", "Successful")
    w.settle()
    assert w.status["stableRS"] == V2 and w.status["phase"] == "Healthy"


def test_promote_full_skips_pause_and_analysis() -> None:
    w = deployed(autoPromotionEnabled=False, prePromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                                                   "args": [{"name": "service", "value": "x"}]})
    w.set_image("app:v2")
    w.settle()
    w.set_status(promoteFull=True)
    w.settle()
    assert w.selector("web-active") == V2 and w.status["stableRS"] == V2


def test_scale_down_delay_revision_limit_scales_the_rest_down_now() -> None:
    w = deployed(scaleDownDelayRevisionLimit=1, scaleDownDelaySeconds=600)
    for image in ("app:v2", "app:v3"):
        w.set_image(image)
        w.settle()
    assert w.rs("app:v2")["spec"]["replicas"] == 3  # the newest old one waits for its deadline
    assert w.rs("app:v1")["spec"]["replicas"] == 0


def test_anti_affinity_is_added_against_the_stable_pods() -> None:
    w = deployed(antiAffinity={"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}})
    w.set_image("app:v2")
    passes = w.settle()
    [created] = [a for p in passes for a in p.actions if isinstance(a, CreateReplicaSet)]
    rules = created.doc["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [term] = rules["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["weight"] == 40
    assert term["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["values"] == [V1]
    assert not [a for p in passes for a in p.actions if isinstance(a, CreateAnalysisRun)]


def _problems(**fields: Any) -> list[str]:
    doc = blue_green(**fields)
    refs = References(services={"web-active", "web-preview"}, templates={}, cluster_templates={})
    return [f"{p.path}: {p.message}" for p in validate_rollout(Rollout.load(doc), refs) if p.is_error]


def test_validation_blue_green_rules() -> None:
    assert _problems() == []
    assert _problems(activeService="web-preview") == [
        "spec.strategy.blueGreen.activeService: activeService and previewService are both 'web-preview'"]
    assert _problems(activeService="nope") == ["spec.strategy.blueGreen.activeService: Service 'nope' not found"]
    assert _problems(autoPromotionSeconds=-1) == ["spec.strategy.blueGreen.autoPromotionSeconds: -1 is negative"]
    assert _problems(prePromotionAnalysis={"templates": [{"templateName": "gone"}]}) == [
        "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: AnalysisTemplate 'gone' not found"]
    assert _problems(antiAffinity={}) == ["spec.strategy.blueGreen.antiAffinity: antiAffinity must set exactly "
                                          "one strategy"]
    doc = blue_green()
    del doc["spec"]["strategy"]["blueGreen"]["activeService"]
    assert [p.path for p in validate_rollout(Rollout.load(doc)) if p.is_error] == [
        "spec.strategy.blueGreen.activeService"]


def test_unrun_blue_green_fields_are_invalid_spec_and_nothing_moves() -> None:
    assert _problems(activeMetadata={"labels": {"role": "active"}}) == [
        "spec.strategy.blueGreen.activeMetadata: activeMetadata is not run by this controller: active pods "
        "would not get these labels and annotations"]
    w = world(previewMetadata={"labels": {"role": "preview"}})
    p = w.plan()
    assert p.status["phase"] == "Degraded" and "spec.strategy.blueGreen.previewMetadata" in p.status["message"]
    assert [type(a).__name__ for a in p.actions] == ["Event"]


def test_an_active_service_managed_by_another_live_rollout_is_invalid_spec() -> None:
    w = world()
    w.services[0] = service("web-active", managed_by="other")
    p = plan(dataclasses.replace(w.observed(), live_claimants=frozenset({"other"})), T0)
    assert p.status["phase"] == "Degraded"
    assert "spec.strategy.blueGreen.activeService: Service 'web-active' is managed by Rollout 'other'" in \
        p.status["message"]


def test_a_long_pre_promotion_run_does_not_exceed_the_progress_deadline() -> None:
    w = deployed(prePromotionAnalysis={"templates": [{"templateName": "smoke"}],
                                       "args": [{"name": "service", "value": "web-preview"}]})
    w.set_image("app:v2")
    w.settle()
    w.run(f"web-{V2}-2-pre")["status"] = {"phase": "Running"}
    w.settle(T0 + seconds(3600))
    [progressing] = [c for c in w.status["conditions"] if c["type"] == "Progressing"]
    assert progressing["reason"] != "ProgressDeadlineExceeded" and w.status["phase"] == "Progressing"
    assert w.status["message"] == "active service cutover pending"


def test_status_counts_the_active_replica_set_during_the_update() -> None:
    w = deployed(autoPromotionEnabled=False)
    w.set_image("app:v2")
    w.settle()
    assert (w.status["replicas"], w.status["updatedReplicas"]) == (6, 3)
    assert (w.status["availableReplicas"], w.status["HPAReplicas"]) == (3, 3)
    assert w.status["selector"] == f"app=web,rollouts-pod-template-hash={V1}"


def test_a_later_pass_changes_nothing_paused_or_healthy() -> None:
    w = deployed(autoPromotionEnabled=False)
    w.set_image("app:v2")
    w.settle()
    for moment in (T0 + seconds(900), T0 + seconds(7200)):  # paused: the same status, no action, no event
        p = w.plan(moment)
        assert (p.status, p.actions) == (w.status, ())
    w.set_status(pauseConditions=None)
    w.settle(T0 + seconds(7200))
    w.settle(T0 + seconds(7230))
    p = w.plan(T0 + seconds(9000))
    assert (p.status, p.actions, p.status["phase"]) == (w.status, (), "Healthy")


def test_restart_at_replaces_the_active_pods_one_at_a_time() -> None:
    w = deployed()
    w.add_pods("app:v1", created=T0 - seconds(3600))
    w.rollout["spec"]["restartAt"] = "2024-05-01T12:00:00Z"
    oldest = w.pods_of("app:v1")[0]["metadata"]["name"]
    p = w.step()
    assert [a.name for a in p.actions if isinstance(a, DeletePod)] == [oldest]
    assert p.status["message"] == "rollout is restarting"
    for _ in range(6):
        w.set_pods_ready()
        w.step(w.advance(seconds(30)))
    assert w.status["restartedAt"] == "2024-05-01T12:00:00Z" and w.status["phase"] == "Healthy"
    assert all(pod["metadata"]["name"].endswith("-r") for pod in w.pods_of("app:v1"))
