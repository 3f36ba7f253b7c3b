"""One plan per step transition: the step reached is entered in the same pass.

A plan that completes a step (or promotes) goes on, in the same call, to what entering
the next step needs and needs no waiting: its pause recorded, its AnalysisRun created,
its weight set when its pods are already available. It never completes that next step
(every step index is written to status once), never scales for it (the pods start in
the next pass), and never makes a second traffic change. `rollouts.plan.written` applies a
round's writes to the observed objects; it is tested here too.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.plan import written
from rollouts.platform.actions import (
    AnnotateReplicaSet,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeletePod,
    DeleteReplicaSet,
    Event,
    PatchDestinationRule,
    PatchVirtualService,
    ScaleReplicaSet,
    SetServiceSelector,
    TerminateAnalysisRun,
)  # fmt: skip
from rollouts.platform.labels import HASH_LABEL
from rollouts.spec.model import RolloutStatus
from tests.plan.builders import (
    T0,
    World,
    analysis_run,
    analysis_template,
    changes,
    destination_rule,
    events,
    hash_of,
    pod,
    replicaset,
    rollout,
    seconds,
    service,
    virtual_service,
    weights,
)  # fmt: skip

H1, H2 = hash_of("app:v1"), hash_of("app:v2")
ANALYSIS = {"analysis": {"templates": [{"templateName": "success-rate"}],
                         "args": [{"name": "service", "value": "web-canary"}]}}


def updated(steps: list[dict[str, Any]], **kwargs: Any) -> World:
    """Revision 1 Healthy, then app:v2 applied and settled; pods come up only when told."""
    world = World.of(rollout(steps=steps, **kwargs), templates=[analysis_template()])
    world.settle()
    world.auto_ready = False
    world.recorded.clear()
    world.set_image("app:v2")
    world.settle()
    return world


def kinds(result: Any) -> list[str]:
    return [type(action).__name__ for action in changes(result)]


def test_a_completed_set_weight_step_enters_its_pause_in_the_same_pass() -> None:
    world = updated([{"setWeight": 25}, {"pause": {"duration": 60}}, {"setWeight": 50}])
    world.set_ready("app:v2")
    result = world.step()
    assert kinds(result) == ["SetServiceSelector", "PatchVirtualService"]
    assert world.status["currentStepIndex"] == 1 and world.status["phase"] == "Paused"
    assert world.status["pauseConditions"] == [{"reason": "CanaryPauseStep", "startTime": "2024-05-01T12:00:00Z"}]
    assert [reason for reason, _ in events(result)] == [
        "TrafficWeightUpdated", "RolloutStepCompleted", "RolloutPaused"]
    assert result.requeue_after == 60.0, "the pause entered sets the requeue"
    assert world.plan().actions == () and world.plan().status == world.status, "a fixed point"


def test_a_pause_that_ends_sets_the_next_weight_when_its_pods_are_there() -> None:
    # 4 replicas: 10% and 25% both need one canary pod
    world = updated([{"setWeight": 10}, {"pause": {"duration": 60}}, {"setWeight": 25}, ANALYSIS])
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 1
    ended = world.step(T0 + seconds(60))
    assert kinds(ended) == ["PatchVirtualService"] and weights(world.vs)["web-canary"] == 25
    assert world.status["currentStepIndex"] == 2, "the setWeight step entered is not completed in this pass"
    assert "pauseConditions" not in world.status and world.status["phase"] == "Progressing"
    assert [reason for reason, _ in events(ended)] == ["RolloutResumed", "RolloutStepCompleted", "TrafficWeightUpdated"]
    # the next pass completes it and creates the step's AnalysisRun at once
    entered = world.step()
    assert kinds(entered) == ["CreateAnalysisRun"] and world.status["currentStepIndex"] == 3
    assert world.status["canary"]["currentStepAnalysisRunStatus"] == {"name": f"web-{H2}-2-3", "status": "Pending"}
    assert world.plan().actions == ()


def test_the_pods_a_step_needs_start_in_the_next_pass() -> None:
    world = updated([{"setWeight": 25}, {"pause": {"duration": 60}}, {"setWeight": 75}])
    world.set_ready("app:v2")
    world.settle()
    ended = world.step(T0 + seconds(60))
    assert world.status["currentStepIndex"] == 2 and kinds(ended) == [], "only the status moves"
    scaled = world.step()
    assert [(a.name, a.replicas) for a in changes(scaled) if isinstance(a, ScaleReplicaSet)] == [(f"web-{H2}", 3)]
    assert world.status == ended.status, "the scale pass writes no status"


@pytest.mark.parametrize("steps", [
    [{"setWeight": 25}, {"setWeight": 25}, {"setWeight": 25}],
    [{"setWeight": 10}, {"pause": {"duration": 0}}, {"setWeight": 25}, {"pause": {"duration": 0}}],
    [{"pause": {"duration": 0}}, {"setWeight": 25}, {"pause": {"duration": 0}}, {"setWeight": 25}],
    [{"setCanaryScale": {"replicas": 1}}, {"setWeight": 25}, {"pause": {"duration": 0}}],
])  # fmt: skip
def test_every_step_index_is_written_once_and_each_pass_changes_traffic_once(steps: list[dict[str, Any]]) -> None:
    world = updated(steps)
    world.set_ready("app:v2")
    world.auto_ready = True
    indices, passes = [world.status["currentStepIndex"]], 0
    while world.status["currentStepIndex"] < len(steps) or world.status["stableRS"] != H2:
        result = world.step()
        passes += 1
        assert passes < 3 * len(steps) + 5, "no progress"
        assert sum(isinstance(a, (PatchVirtualService, PatchDestinationRule, SetServiceSelector))
                   for a in result.actions) <= 2, "at most the selectors and one weight"
        assert sum(isinstance(a, PatchVirtualService) for a in result.actions) <= 1
        if world.status["currentStepIndex"] != indices[-1]:
            indices.append(world.status["currentStepIndex"])
    assert indices == list(range(indices[0], len(steps) + 1)), "no index skipped"
    world.settle()
    assert world.status["phase"] == "Healthy"


def test_an_entering_round_that_would_move_traffic_again_waits_for_the_next_pass() -> None:
    world = updated([{"setWeight": 50}])
    world.set_ready("app:v2")
    world.settle()
    world.set_ready("app:v2")
    promoted = world.step()
    assert kinds(promoted) == ["PatchVirtualService"] and world.status["stableRS"] == H2
    assert weights(world.vs)["web-canary"] == 100 and world.selector("web-stable") == H1
    switched = world.step()
    assert kinds(switched)[:2] == ["SetServiceSelector", "PatchVirtualService"]
    assert weights(world.vs)["web-canary"] == 0 and world.selector("web-stable") == H2


def test_an_entering_round_with_an_invalid_analysis_makes_the_whole_plan_invalid() -> None:
    world = updated([{"setWeight": 25}, ANALYSIS])
    world.templates.clear()
    world.set_ready("app:v2")
    result = world.step()
    assert [type(a) for a in result.actions] == [Event], "no traffic shift on an invalid spec"
    assert world.status["phase"] == "Degraded" and "success-rate" in world.status["message"]


# ---------------------------------------------------------------- rollouts.plan.written


def observed_world() -> World:
    world = World.of(rollout(steps=[{"setWeight": 25}], subsets=True),
                     replica_sets=[replicaset(replicas=4, annotations={"keep": "1", "drop": "x"})],
                     analysis_runs=[analysis_run("run-1", phase="Running")])
    world.destination_rule = destination_rule(canary=H1, stable=H1)
    world.services = [service("web-stable", H1), service("web-canary", H1, managed_by=None)]
    return world


def test_written_after_applies_each_action_as_the_api_server_would_store_it() -> None:
    world = observed_world()
    observed = world.observed()
    before = copy.deepcopy((observed.replica_sets, observed.analysis_runs, observed.services,
                            observed.virtual_services, observed.destination_rule))
    new_rs = replicaset(image="app:v2", replicas=1)
    del new_rs["status"]
    new_run = analysis_run("run-2")
    http = [{"name": "primary", "route": [{"destination": {"host": "web-stable"}, "weight": 75},
                                          {"destination": {"host": "web-canary"}, "weight": 25}]}]
    subsets = [{"name": "canary", "labels": {HASH_LABEL: H2}}, {"name": "stable", "labels": {HASH_LABEL: H1}}]
    status = RolloutStatus.load({"currentStepIndex": 1})
    after = written.after(observed, [
        CreateReplicaSet(new_rs), ScaleReplicaSet(f"web-{H1}", 2),
        AnnotateReplicaSet(f"web-{H1}", {"drop": None, "new": "y"}), CreateAnalysisRun(new_run),
        TerminateAnalysisRun("run-1"), SetServiceSelector("web-canary", H2),
        PatchVirtualService("web-vs", "shop", http, None, None, "1"),
        PatchDestinationRule("web-dr", "shop", subsets, {"note": "z"}, "1"), Event("Normal", "X", "y"),
    ], status)
    old_rs, created = after.replica_sets
    assert old_rs["spec"]["replicas"] == 2 and old_rs["status"]["availableReplicas"] == 4, "no pod moves"
    assert old_rs["metadata"]["annotations"] == {**replicaset(replicas=4)["metadata"]["annotations"],
                                                 "keep": "1", "new": "y"}
    assert created == new_rs and "status" not in created
    assert [r["metadata"]["name"] for r in after.analysis_runs] == ["run-1", "run-2"]
    assert after.analysis_runs[0]["spec"]["terminate"] is True and "status" not in after.analysis_runs[1]
    canary_svc = after.services[1]
    assert canary_svc["spec"]["selector"] == {"app": "web", HASH_LABEL: H2}
    assert canary_svc["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"] == "web"
    assert after.virtual_services[0]["spec"]["http"] == http
    assert after.virtual_services[0]["metadata"]["resourceVersion"] == "1", "observed version kept"
    assert after.destination_rule is not None and after.destination_rule["spec"]["subsets"] == subsets
    assert after.destination_rule["metadata"]["annotations"] == {"note": "z"}
    assert after.rollout.status == status and after.rollout.spec == observed.rollout.spec
    assert (observed.replica_sets, observed.analysis_runs, observed.services, observed.virtual_services,
            observed.destination_rule) == before, "the inputs are not changed"


@pytest.mark.parametrize(("first", "entering", "allowed"), [
    ([], [PatchVirtualService("vs", "ns", [], None, None, "1")], True),
    ([PatchVirtualService("vs", "ns", [], None, None, "1")], [CreateAnalysisRun({"metadata": {"name": "r"}})], True),
    ([PatchVirtualService("vs", "ns", [], None, None, "1")], [SetServiceSelector("svc", "h")], False),
    ([SetServiceSelector("svc", "h")], [PatchDestinationRule("dr", "ns", [])], False),
    ([], [ScaleReplicaSet("rs", 3)], False),
    ([], [CreateReplicaSet({"metadata": {"name": "rs"}})], False),
    ([], [AnnotateReplicaSet("rs", {"a": None}), Event("Normal", "R", "m")], True),
])  # fmt: skip
def test_may_follow(first: list[Any], entering: list[Any], allowed: bool) -> None:
    assert written.may_follow(first, entering) is allowed


def test_virtual_service_builder_is_untouched_by_after() -> None:
    vs = virtual_service()
    world = World.of(rollout(steps=[]), virtual_services=[vs])
    written.after(world.observed(), [PatchVirtualService("web-vs", "shop", [], None, None, "1")],
                  RolloutStatus())
    assert world.virtual_services[0]["spec"]["http"] != []


def test_written_after_removes_what_was_deleted_and_replaces_no_pod() -> None:
    world = observed_world()
    world.replica_sets.append(replicaset(image="app:v0", replicas=0, revision=0))
    world.analysis_runs.append(analysis_run("run-0", phase="Successful"))
    world.pods = [pod(world.replica_sets[0], name, created=T0) for name in ("p1", "p2")]
    observed = world.observed()
    after = written.after(observed, [DeletePod("p1"), DeleteReplicaSet(f"web-{hash_of('app:v0')}"),
                                     DeleteAnalysisRun("run-0")], RolloutStatus())
    assert [p["metadata"]["name"] for p in after.pods] == ["p2"], "its replacement is not there yet"
    assert [r["metadata"]["name"] for r in after.replica_sets] == [f"web-{H1}"]
    assert [r["metadata"]["name"] for r in after.analysis_runs] == ["run-1"]
    assert len(observed.pods) == 2 and len(observed.replica_sets) == 2, "the inputs are not changed"
