"""plan(observed, now): every step kind and transition, on a stepped clock.

Each test drives `World` (plan + actions applied to plain dicts) and asserts the state
reached: status, weights, ReplicaSet sizes, runs, events. Nothing sleeps.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.plan import runs, transitions
from rollouts.plan.planner import invalid, plan
from rollouts.plan.state import Pass
from rollouts.platform.actions import (
    CreateAnalysisRun,
    CreateReplicaSet,
    Event,
    PatchVirtualService,
    ScaleReplicaSet,
    SetServiceSelector,
    TerminateAnalysisRun,
)  # fmt: skip
from rollouts.spec.problems import Problem
from tests.plan.builders import (
    T0,
    UID,
    World,
    analysis_template,
    changes,
    events,
    hash_of,
    reasons,
    rollout,
    seconds,
    stamp,
    weights,
)  # fmt: skip

H1, H2, H3 = hash_of("app:v1"), hash_of("app:v2"), hash_of("app:v3")
ANALYSIS = {"analysis": {"templates": [{"templateName": "success-rate"}],
                         "args": [{"name": "service", "value": "web-canary"}]}}
STEPS = [{"setWeight": 25}, {"pause": {"duration": 60}}, {"setWeight": 50}, {"pause": {}}]
FAILED = 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'


def deployed(steps: list[dict[str, Any]] = STEPS, **kwargs: Any) -> World:
    """Revision 1 fully deployed and Healthy; pods then only come up when the test says so."""
    world = World.of(rollout(steps=steps, **{k: v for k, v in kwargs.items() if k != "templates"}),
                     templates=kwargs.get("templates", []))
    world.settle()
    assert world.status["phase"] == "Healthy"
    world.recorded.clear()
    world.auto_ready = False
    return world


def updated(steps: list[dict[str, Any]] = STEPS, image: str = "app:v2", **kwargs: Any) -> World:
    world = deployed(steps, **kwargs)
    world.set_image(image)
    world.settle()
    return world


def at_the_indefinite_pause(**kwargs: Any) -> World:
    """`updated(**kwargs)` taken through STEPS to its last, indefinite pause: v2's pods ready at each weight,
    the 60 s pause waited out."""
    world = updated(**kwargs)
    world.set_ready("app:v2")
    world.settle()
    world.step(T0 + seconds(60))
    world.settle()
    world.set_ready("app:v2")
    world.settle()
    return world


def sizes(world: World) -> dict[str, int]:
    return {r["metadata"]["labels"]["rollouts-pod-template-hash"]: r["spec"]["replicas"] for r in world.replica_sets}


# ---------------------------------------------------------------- first deploy


def test_first_deploy_is_promoted_at_once_without_steps() -> None:
    world = World.of(rollout(steps=STEPS), auto_ready=False)
    first = world.step()
    created = [a for a in first.actions if isinstance(a, CreateReplicaSet)]
    assert [a.doc["spec"]["replicas"] for a in created] == [4]
    doc = created[0].doc
    assert doc["metadata"]["name"] == f"web-{H1}"
    assert doc["metadata"]["labels"]["rollouts-pod-template-hash"] == H1
    assert doc["metadata"]["annotations"] == {"rollout.argoproj.io/revision": "1",
                                              "rollout.argoproj.io/desired-replicas": "4"}
    assert doc["metadata"]["ownerReferences"] == [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                                   "name": "web", "uid": UID, "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert world.status["stableRS"] == H1 and world.status["currentStepIndex"] == 4
    assert world.status["phase"] == "Progressing"
    assert world.selector("web-stable") is None  # an unmanaged Service is adopted only onto available pods
    world.set_ready("app:v1")
    world.settle()
    assert world.status["phase"] == "Healthy"
    assert (world.selector("web-stable"), world.selector("web-canary")) == (H1, H1)
    assert weights(world.vs) == {"web-stable": 100, "web-canary": 0}
    assert ("RolloutCompleted", f"Rollout completed update to revision 1 ({H1})") in world.recorded
    assert not any(r == "RolloutStepCompleted" for r, _ in world.recorded)
    status = world.status
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "HPAReplicas", "selector", "observedGeneration", "currentPodHash")} == {
        "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4, "HPAReplicas": 4,
        "selector": "app=web", "observedGeneration": "1", "currentPodHash": H1}
    kinds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert kinds == {"Progressing": ("True", "NewReplicaSetAvailable"), "Available": ("True", "AvailableReason"),
                     "Completed": ("True", "RolloutCompleted"), "Healthy": ("True", "RolloutHealthy")}
    world.rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 5}]  # new steps on a healthy rollout
    result = world.step()
    assert world.status["currentStepIndex"] == 1 and world.status["phase"] == "Healthy" and not changes(result)


# ---------------------------------------------------------------- setWeight


def test_new_revision_creates_the_canary_and_keeps_weight_zero_until_its_pods_are_available() -> None:
    world = updated()
    assert sizes(world) == {H1: 4, H2: 1}  # ceil(25% of 4)
    assert world.status["currentPodHash"] == H2 and world.status["stableRS"] == H1
    assert world.status["currentStepIndex"] == 0
    assert weights(world.vs) == {"web-stable": 100, "web-canary": 0}
    assert world.selector("web-canary") == H1  # not moved onto pods that do not exist yet
    assert ("RolloutUpdated", "Rollout updated to revision 2") in world.recorded
    world.set_ready("app:v2")
    result = world.step()
    assert [type(a) for a in changes(result)] == [SetServiceSelector, PatchVirtualService]  # selector, then weight
    assert weights(world.vs) == {"web-stable": 75, "web-canary": 25}
    assert ("TrafficWeightUpdated", "Traffic weight updated from 0 to 25") in events(result)
    assert ("RolloutStepCompleted", "Rollout step 1/4 completed (setWeight: 25)") in events(result)
    assert world.status["canary"]["weights"] == {
        "canary": {"weight": 25, "serviceName": "web-canary", "podTemplateHash": H2},
        "stable": {"weight": 75, "serviceName": "web-stable", "podTemplateHash": H1}}


def test_a_higher_weight_waits_for_the_pods_it_needs() -> None:
    world = updated([{"setWeight": 25}, {"setWeight": 75}])
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 1 and sizes(world)[H2] == 3
    assert weights(world.vs)["web-canary"] == 25  # previous setWeight while 1 of 3 pods is up
    world.set_ready("app:v2", 2)
    world.settle()
    assert weights(world.vs)["web-canary"] == 25
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 2 and sizes(world)[H2] == 4  # past the last step: all pods
    assert weights(world.vs)["web-canary"] == 75 and world.status["stableRS"] == H1


def test_set_canary_scale_decouples_pods_from_weight() -> None:
    steps = [{"setCanaryScale": {"replicas": 2}}, {"setWeight": 25}, {"pause": {}},
             {"setCanaryScale": {"matchTrafficWeight": True}}, {"setWeight": 75}, {"pause": {}}]
    world = updated(steps)
    assert sizes(world)[H2] == 2 and weights(world.vs)["web-canary"] == 0
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 2  # setCanaryScale, then setWeight 25 on the same 2 pods
    assert sizes(world)[H2] == 2 and weights(world.vs)["web-canary"] == 25
    world.set_status(pauseConditions=None)
    world.settle()
    assert sizes(world)[H2] == 3 and world.status["currentStepIndex"] == 4  # back to ceil(75% of 4)
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 5 and weights(world.vs)["web-canary"] == 75


# ---------------------------------------------------------------- pause


@pytest.mark.parametrize(("duration", "elapsed", "paused", "requeue"), [
    (60, 0, True, 60.0),
    (60, 59, True, 1.0),
    (60, 60, False, None),
    ("1m30s", 89, True, 1.0),
    ("1m30s", 90, False, None),
    ("2h", 7199, True, 1.0),
])  # fmt: skip
def test_a_timed_pause_ends_at_start_plus_duration(duration: Any, elapsed: int, paused: bool,
                                                  requeue: float | None) -> None:
    world = updated([{"setWeight": 25}, {"pause": {"duration": duration}}, {"setWeight": 50}])
    world.set_ready("app:v2")
    world.settle()
    start = world.now
    assert world.status["pauseConditions"] == [{"reason": "CanaryPauseStep", "startTime": "2024-05-01T12:00:00Z"}]
    assert world.status["controllerPause"] is True and world.status["phase"] == "Paused"
    result = world.step(start + seconds(elapsed))
    if paused:
        assert world.status["phase"] == "Paused" and world.status["currentStepIndex"] == 1
        assert result.requeue_after == requeue and not changes(result)
    else:
        assert world.status["currentStepIndex"] == 2 and "pauseConditions" not in world.status
        assert "controllerPause" not in world.status
        assert ("RolloutResumed", f"Rollout is resumed (pause of {duration} ended)") in events(result)


def test_a_pause_of_zero_completes_without_pausing() -> None:
    world = updated([{"setWeight": 25}, {"pause": {"duration": 0}}, {"setWeight": 50}])
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 2 and "RolloutPaused" not in [r for r, _ in world.recorded]


def test_the_pause_timer_survives_a_restart() -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle(T0 + seconds(10))
    assert world.status["pauseConditions"][0]["startTime"] == "2024-05-01T12:00:10Z"
    # a new controller: nothing but the objects, planned afresh 50 s later
    restarted = copy.deepcopy(world)
    result = restarted.plan(T0 + seconds(60))
    assert result.requeue_after == 10.0 and result.status == world.status and not result.actions
    assert restarted.step(T0 + seconds(70)).status["currentStepIndex"] == 2


def test_an_indefinite_pause_waits_for_promote() -> None:
    world = at_the_indefinite_pause()
    assert world.status["currentStepIndex"] == 3 and world.status["phase"] == "Paused"
    later = world.plan(T0 + seconds(86_400))
    assert later.requeue_after is None and not later.actions
    world.set_status(pauseConditions=None)  # `promote`: the CLI removes the pause condition
    result = world.step()
    assert world.status["currentStepIndex"] == 4 and world.status["phase"] == "Progressing"
    assert ("RolloutResumed", "Rollout is resumed") in events(result)
    assert ("RolloutStepCompleted", "Rollout step 4/4 completed (pause)") in events(result)


# ---------------------------------------------------------------- step analysis


def analysis_world(background: bool = False) -> World:
    steps = [{"setWeight": 25}, ANALYSIS, {"setWeight": 50}]
    extra = {"analysis": {"templates": [{"templateName": "success-rate"}], "startingStep": 1,
                          "args": [{"name": "service", "value": "web"}]}} if background else {}
    world = updated(steps, templates=[analysis_template()], **extra)
    world.set_ready("app:v2")
    world.settle()
    return world


def test_an_analysis_step_creates_its_run_and_waits() -> None:
    world = analysis_world()
    assert world.status["currentStepIndex"] == 1
    (run,) = world.analysis_runs
    meta = run["metadata"]
    assert meta["name"] == f"web-{H2}-2-1"
    assert meta["labels"] == {"app": "web", "rollouts-pod-template-hash": H2, "rollout-type": "Step",
                              "step-index": "1"}
    assert meta["annotations"] == {"rollout.argoproj.io/revision": "2"}
    assert run["spec"]["args"] == [{"name": "service", "value": "web-canary"}]
    assert run["spec"]["metrics"][0]["name"] == "success-rate"
    assert world.status["canary"]["currentStepAnalysisRunStatus"] == {"name": f"web-{H2}-2-1", "status": "Pending"}
    world.finish_run(f"web-{H2}-2-1", "Running")
    result = world.step(T0 + seconds(3600))
    assert not changes(result) and world.status["currentStepIndex"] == 1
    assert result.requeue_after is None  # an analysis step does not count against the progress deadline


@pytest.mark.parametrize(("phase", "index", "phase_after", "message_start"), [
    ("Successful", 2, "Progressing", "more replicas"),
    ("Failed", 0, "Degraded", "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase "
                              f"Failed: {FAILED}"),
    ("Error", 0, "Degraded", "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase Error"),
    ("Inconclusive", 1, "Paused", "InconclusiveAnalysisRun"),
    ("Running", 1, "Progressing", "more replicas"),
])  # fmt: skip
def test_the_step_run_verdict(phase: str, index: int, phase_after: str, message_start: str) -> None:
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", phase, FAILED if phase == "Failed" else "metric errored")
    world.step()
    assert world.status["currentStepIndex"] == index
    assert world.status["phase"] == phase_after and world.status["message"].startswith(message_start)
    if phase in ("Failed", "Error"):
        assert world.status["abort"] is True and world.status["abortedAt"] == "2024-05-01T12:00:00Z"
        assert weights(world.vs) == {"web-stable": 100, "web-canary": 0}  # at once, in the same pass
        assert not world.run(f"web-{H2}-2-1")["spec"].get("terminate")  # not before the abort is on record...
        world.step()
        assert world.run(f"web-{H2}-2-1")["spec"]["terminate"] is True  # ...then, so that a retry measures again
        world.settle()
        assert world.status["canary"]["currentStepAnalysisRunStatus"]["status"] == phase  # kept for display
    if phase == "Inconclusive":
        assert world.status["pauseConditions"][0]["reason"] == "InconclusiveAnalysisRun"
        assert weights(world.vs)["web-canary"] == 25


def test_an_abort_whose_status_write_was_lost_is_made_again_from_the_same_verdict() -> None:
    # Given a step run that failed before any status named it (its creator killed first), and the
    # pass that adopts its verdict and aborts on it (weight 0 at once)...
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Failed", FAILED)
    world.status["canary"].pop("currentStepAnalysisRunStatus")
    before = copy.deepcopy(world.status)
    world.step()
    assert world.status["abort"] is True and weights(world.vs)["web-canary"] == 0
    # ...when that pass's status write was lost (its controller killed after the VirtualService write)
    world.rollout["status"] = before
    world.settle()
    # Then the next controller aborts again on the same verdict: the step is measured once, not twice
    assert world.status["abort"] is True and world.status["message"].startswith("RolloutAborted")
    assert [r["metadata"]["name"] for r in world.analysis_runs] == [f"web-{H2}-2-1"]
    assert weights(world.vs)["web-canary"] == 0


@pytest.mark.parametrize(("on_record", "terminated"), [(H1, False), (H2, True)])
def test_a_finished_run_is_terminated_only_once_its_own_revisions_abort_is_on_record(on_record: str,
                                                                                     terminated: bool) -> None:
    # Given revision 2's step run Failed, and an observed status whose abort is revision 1's (a
    # pass that moves to revision 2 and aborts it at once) or revision 2's own
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Failed", FAILED)
    world.set_status(abort=True, currentPodHash=on_record)
    p = Pass.start(world.observed(), world.now)
    transitions.abort(p, "Step-based analysis phase Failed", cause=transitions.AbortCause.ANALYSIS)
    runs.terminate_unwanted(p)
    # Then the Failed run is terminated (so a retry measures afresh) only on its own abort's record:
    # else a lost status write would leave the next controller a terminated verdict, measured twice
    assert (TerminateAnalysisRun(f"web-{H2}-2-1") in p.actions) is terminated


def test_resuming_an_inconclusive_pause_measures_again() -> None:
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Inconclusive")
    world.settle()
    world.set_status(pauseConditions=None)  # a human resumes (controllerPause stays true)
    world.settle()
    assert [r["metadata"]["name"] for r in world.analysis_runs] == [f"web-{H2}-2-1", f"web-{H2}-2-1.1"]
    assert world.status["currentStepIndex"] == 1 and world.status["phase"] == "Progressing"
    world.finish_run(f"web-{H2}-2-1.1", "Successful")
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 2


def test_promote_on_an_analysis_step_skips_it_and_terminates_its_run() -> None:
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Running")
    world.set_status(currentStepIndex=2)  # `promote` on a non-pause step: index + 1
    result = world.step()
    assert TerminateAnalysisRun(f"web-{H2}-2-1") in result.actions
    assert "currentStepAnalysisRunStatus" not in world.status["canary"]


# ---------------------------------------------------------------- background analysis


def test_background_analysis_starts_at_its_starting_step_and_ends_at_promotion() -> None:
    world = analysis_world(background=True)
    names = {r["metadata"]["name"]: r["metadata"]["labels"]["rollout-type"] for r in world.analysis_runs}
    assert names == {f"web-{H2}-2": "Background", f"web-{H2}-2-1": "Step"}
    for name in names:
        world.finish_run(name, "Running")
    world.finish_run(f"web-{H2}-2-1", "Successful")
    world.auto_ready = True
    world.settle()
    # past the last step, promotion waits for the background run's evidence (at the last step's weight)
    assert world.status["stableRS"] != H2 and world.status["phase"] == "Progressing"
    assert world.status["message"] == (f"waiting for background analysis evidence: AnalysisRun 'web-{H2}-2': "
                                       "metric 'success-rate' has no successful measurement yet")
    assert world.status["canary"]["weights"]["canary"]["weight"] < 100
    world.run(f"web-{H2}-2")["status"]["metricResults"] = [
        {"name": "success-rate", "phase": "Running", "count": 1, "successful": 1}]
    world.settle()
    assert world.status["stableRS"] == H2 and world.status["phase"] == "Healthy"
    assert world.run(f"web-{H2}-2")["spec"]["terminate"] is True


def test_the_round_that_enters_past_the_steps_holds_an_unproven_canary_at_the_last_weight() -> None:
    # Given background analysis without evidence yet, past the last step (held at its weight, 50)
    world = analysis_world(background=True)
    for name in (f"web-{H2}-2", f"web-{H2}-2-1"):
        world.finish_run(name, "Running")
    world.finish_run(f"web-{H2}-2-1", "Successful")
    world.auto_ready = True
    world.settle()
    assert world.status["currentStepIndex"] == 3 and world.status["stableRS"] != H2
    # When a plan's second round enters what lies past the steps (the last step completed in the
    # first, e.g. again after a status write lost to a kill), the gate holds there too
    entering = Pass.start(world.observed(), world.now, entering=True)
    runs.gate_promotion(entering)
    # Then the canary may get no more than the last step's weight: never all traffic, unproven
    assert entering.held is not None and entering.held.startswith("waiting for background analysis evidence")
    assert entering.weight_cap == 50


def test_background_analysis_is_not_started_before_its_starting_step() -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]
    world = updated(steps, templates=[analysis_template()],
                    analysis={"templates": [{"templateName": "success-rate"}], "startingStep": 2,
                              "args": [{"name": "service", "value": "web"}]})
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 1 and world.analysis_runs == []


@pytest.mark.parametrize(("phase", "degraded", "paused"), [
    ("Failed", True, False), ("Error", True, False), ("Inconclusive", False, True), ("Successful", False, False),
])  # fmt: skip
def test_the_background_run_verdict(phase: str, degraded: bool, paused: bool) -> None:
    world = analysis_world(background=True)
    world.finish_run(f"web-{H2}-2", phase, FAILED)
    world.step()
    assert (world.status["phase"] == "Degraded") is degraded
    assert bool(world.status.get("pauseConditions")) is paused
    if degraded:
        assert world.status["message"].startswith("RolloutAborted: Rollout aborted update to revision 2: "
                                                  f"Background analysis phase {phase}: {FAILED}: success-rate")
        assert world.status["message"].endswith("; query: rate(web)")  # analysis.explain: ours after Argo's
        assert world.run(f"web-{H2}-2-1")["spec"]["terminate"] is True
    if phase == "Successful":  # a finite background run is not created again for this revision
        world.settle()
        assert len(world.analysis_runs) == 2


# ---------------------------------------------------------------- abort, retry, promote-full, paused


def test_abort_from_the_cli_shifts_traffic_back_and_scales_the_canary_down_after_the_delay() -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle()
    world.set_status(abort=True)
    result = world.step(T0 + seconds(5))
    assert weights(world.vs) == {"web-stable": 100, "web-canary": 0}
    assert world.status["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert world.status["currentStepIndex"] == 0 and "pauseConditions" not in world.status
    assert result.requeue_after == 30.0 and sizes(world)[H2] == 1
    world.settle()
    assert world.selector("web-canary") == H1  # after the weight is 0
    world.step(T0 + seconds(35))
    assert sizes(world) == {H1: 4, H2: 0}
    assert world.plan(T0 + seconds(36)).actions == ()


def test_abort_scale_down_delay_zero_keeps_the_canary() -> None:
    world = updated(abortScaleDownDelaySeconds=0)
    world.set_ready("app:v2")
    world.settle()
    world.set_status(abort=True)
    world.settle(T0 + seconds(3600))
    assert sizes(world)[H2] == 1 and weights(world.vs)["web-canary"] == 0


def test_retry_starts_again_from_step_zero() -> None:
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Failed", FAILED)
    world.settle()
    world.set_status(abort=False)  # `retry`
    world.set_ready("app:v2")
    world.settle()
    assert "abort" not in world.status and "abortedAt" not in world.status
    assert world.status["currentStepIndex"] == 1 and world.status["phase"] == "Progressing"
    assert world.analysis_runs[-1]["metadata"]["name"] == f"web-{H2}-2-1.1"
    assert "RolloutRetried" in [r for r, _ in world.recorded]


@pytest.mark.parametrize("cleared", [("abort",), ("abort", "abortedAt")], ids=["argo-retry", "abortedAt-cleared"])
def test_retry_is_taken_in_whichever_way_abort_was_cleared(cleared: tuple[str, ...]) -> None:
    world = analysis_world(background=True)
    world.finish_run(f"web-{H2}-2", "Failed", FAILED)
    world.settle()
    assert world.status["abort"] is True and world.run(f"web-{H2}-2")["spec"]["terminate"] is True
    world.set_status(abort=False)  # Argo's `retry rollout` sends exactly {"status": {"abort": false}}
    for key in cleared[1:]:
        world.status.pop(key)
    result = world.step()
    assert ("RolloutRetried", "Rollout retried: update to revision 2 starts from step 1") in events(result)
    assert world.status["currentStepIndex"] == 1  # step 0 (setWeight 25 on the available pod) done again
    assert "abort" not in world.status and "abortedAt" not in world.status and world.status["phase"] != "Degraded"
    world.settle()
    names = [r["metadata"]["name"] for r in world.analysis_runs]
    assert names[-2:] == [f"web-{H2}-2.1", f"web-{H2}-2-1.1"], "a retry measures again, with new runs"
    assert world.status["canary"]["currentBackgroundAnalysisRunStatus"]["name"] == f"web-{H2}-2.1"
    assert reasons(world.step()).count("RolloutRetried") == 0, "taken in once"


def test_a_new_revision_after_an_abort_is_not_a_retry() -> None:
    world = _abort(_ready(updated()))
    world.set_image("app:v3")
    result = world.step()
    assert "RolloutRetried" not in reasons(result) and "RolloutUpdated" in reasons(result)
    assert world.status["currentPodHash"] == H3 and "abort" not in world.status


def test_promote_full_skips_the_remaining_steps() -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle()
    world.set_status(promoteFull=True)
    world.settle()
    assert sizes(world)[H2] == 4 and weights(world.vs)["web-canary"] == 25  # kept until promotion
    world.set_ready("app:v2")
    world.settle()
    assert world.status["stableRS"] == H2 and "promoteFull" not in world.status
    assert weights(world.vs) == {"web-stable": 100, "web-canary": 0} and world.selector("web-stable") == H2


def test_spec_paused_halts_progress() -> None:
    world = updated()
    world.rollout["spec"]["paused"] = True
    world.set_ready("app:v2")
    world.settle()
    assert world.status["phase"] == "Paused" and world.status["message"] == "manually paused"
    assert world.status["currentStepIndex"] == 0
    world.rollout["spec"]["paused"] = False
    world.settle()
    assert world.status["currentStepIndex"] == 1


# ---------------------------------------------------------------- new revisions and new steps


def test_a_new_image_mid_canary_starts_over_at_step_zero() -> None:
    world = analysis_world()
    world.finish_run(f"web-{H2}-2-1", "Running")
    world.set_image("app:v3")
    result = world.step(T0 + seconds(100))
    assert world.status["currentPodHash"] == H3 and world.status["currentStepIndex"] == 0
    assert TerminateAnalysisRun(f"web-{H2}-2-1") in result.actions
    assert weights(world.vs)["web-canary"] == 0 and world.selector("web-canary") == H2  # traffic leaves first
    world.settle()
    world.set_ready("app:v3")
    world.settle()
    assert world.selector("web-canary") == H3 and weights(world.vs)["web-canary"] == 25
    deadline = next(r for r in world.replica_sets if r["metadata"]["labels"]["rollouts-pod-template-hash"] == H2)
    assert deadline["metadata"]["annotations"]["scale-down-deadline"] == "2024-05-01T12:02:10Z"
    assert world.status["stableRS"] == H1 and sizes(world)[H2] == 1
    world.settle(T0 + seconds(130))
    assert sizes(world) == {H1: 4, H2: 0, H3: 1}
    assert world.rs("app:v3")["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "3"


def test_changing_the_steps_starts_over() -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 1
    hash_before = world.status["currentStepHash"]
    world.rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 10}, {"pause": {}}]
    result = world.step()
    assert world.status["currentStepHash"] != hash_before
    assert ("RolloutUpdated", "Rollout steps changed: starting again from step 1") in events(result)
    # back at step 0 (setWeight 10: 1 pod, available), which completes in the same pass
    assert ("RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 10)") in events(result)
    assert world.status["currentStepIndex"] == 1 and weights(world.vs)["web-canary"] == 10


def test_rolling_back_to_the_stable_template_skips_the_steps() -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle()
    world.set_image("app:v1")
    world.auto_ready = True
    world.settle(T0 + seconds(1))
    assert world.status["currentPodHash"] == H1 and world.status["stableRS"] == H1
    assert world.status["phase"] == "Healthy" and weights(world.vs)["web-canary"] == 0
    assert world.rs("app:v1")["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "3"


# ---------------------------------------------------------------- the end of the steps


def test_end_of_steps_weight_100_then_stable_switch_then_weight_0_then_old_scaled_down() -> None:
    world = updated([{"setWeight": 50}])
    world.set_ready("app:v2")
    world.settle()
    assert world.status["currentStepIndex"] == 1 and sizes(world) == {H1: 4, H2: 4}
    assert weights(world.vs)["web-canary"] == 50  # 100 only once all canary pods are available
    world.set_ready("app:v2")
    first = world.step(T0 + seconds(10))
    assert weights(world.vs)["web-canary"] == 100 and world.status["stableRS"] == H2
    assert world.selector("web-stable") == H1
    second = world.step()
    assert [type(a) for a in changes(second)][:2] == [SetServiceSelector, PatchVirtualService]
    assert world.selector("web-stable") == H2 and weights(world.vs) == {"web-stable": 100, "web-canary": 0}
    assert second.requeue_after == 30.0
    assert world.rs("app:v1")["metadata"]["annotations"]["scale-down-deadline"] == "2024-05-01T12:00:40Z"
    assert world.status["phase"] == "Healthy"
    assert world.plan(T0 + seconds(39)).actions == ()
    world.step(T0 + seconds(40))
    assert sizes(world) == {H1: 0, H2: 4}
    assert "RolloutCompleted" in reasons(first)


# ---------------------------------------------------------------- progress deadline


@pytest.mark.parametrize("abort", [False, True])
def test_progress_deadline(abort: bool) -> None:
    world = deployed(spec={"progressDeadlineSeconds": 120, "progressDeadlineAbort": abort})
    world.set_image("app:v2")
    first = world.step()
    assert first.requeue_after == 120.0
    world.settle()  # the ReplicaSet shows up with its (unavailable) pod
    assert world.step(T0 + seconds(119)).actions == ()
    result = world.step(T0 + seconds(120))
    message = f'ReplicaSet "web-{H2}" has timed out progressing.'
    assert ("ProgressDeadlineExceeded", message) in events(result)
    assert world.status["phase"] == "Degraded"
    if abort:
        assert world.status["message"] == f"RolloutAborted: Rollout aborted update to revision 2: {message}"
        assert world.status["abort"] is True
    else:
        assert world.status["message"] == f"ProgressDeadlineExceeded: {message}" and "abort" not in world.status
        world.set_ready("app:v2")
        world.step(T0 + seconds(121))
        # out of Degraded: step 0 completes and, in the same pass, the pause step is entered
        # (the phase went Progressing -> Paused in two passes before plans entered the next step)
        assert world.status["phase"] == "Paused" and world.status["currentStepIndex"] == 1
        progressing = next(c for c in world.status["conditions"] if c["type"] == "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("Unknown", "RolloutPaused")


def test_pauses_do_not_count_against_the_progress_deadline() -> None:
    world = at_the_indefinite_pause(spec={"progressDeadlineSeconds": 60})
    assert world.status["currentStepIndex"] == 3
    world.settle(T0 + seconds(10_000))
    assert world.status["phase"] == "Paused"
    world.set_status(pauseConditions=None)
    world.step()
    assert world.status["phase"] == "Progressing"
    progressing = next(c for c in world.status["conditions"] if c["type"] == "Progressing")
    assert progressing["lastUpdateTime"] == "2024-05-01T14:46:40Z"


# ---------------------------------------------------------------- basic canary (no traffic router)


def test_basic_canary_approximates_the_weight_with_replica_counts() -> None:
    world = deployed([{"setWeight": 20}, {"pause": {}}], replicas=10, routed=False, services=False,
                     maxSurge=1, maxUnavailable=1)
    world.set_image("app:v2")
    world.step()
    assert sizes(world) == {H1: 9, H2: 1}  # one surge pod, one stable pod within maxUnavailable
    world.step()
    assert sizes(world) == {H1: 9, H2: 2}  # surge again: 9 stable pods are still available
    assert world.step().actions == ()  # nothing more until the canary pods are available
    world.set_ready("app:v2")
    world.settle()
    assert sizes(world) == {H1: 8, H2: 2} and world.status["currentStepIndex"] == 1
    world.auto_ready = True
    world.set_status(pauseConditions=None)
    world.settle()
    assert sizes(world) == {H1: 0, H2: 10} and world.status["phase"] == "Healthy"


# ---------------------------------------------------------------- subset mode


def test_destination_rule_subsets_follow_the_replicasets() -> None:
    world = updated([{"setWeight": 25}, {"pause": {}}], subsets=True, services=False)
    subsets = {s["name"]: s["labels"].get("rollouts-pod-template-hash")
               for s in world.destination_rule["spec"]["subsets"]}
    assert subsets == {"canary": H1, "stable": H1}
    world.set_ready("app:v2")
    world.settle()
    subsets = {s["name"]: s["labels"].get("rollouts-pod-template-hash")
               for s in world.destination_rule["spec"]["subsets"]}
    assert subsets == {"canary": H2, "stable": H1}
    assert weights(world.vs) == {"web/stable": 75, "web/canary": 25}
    world.set_status(pauseConditions=None)
    world.set_ready("app:v2")
    world.auto_ready = True
    world.settle()
    subsets = {s["name"]: s["labels"].get("rollouts-pod-template-hash")
               for s in world.destination_rule["spec"]["subsets"]}
    assert subsets == {"canary": H2, "stable": H2} and weights(world.vs) == {"web/stable": 100, "web/canary": 0}


# ---------------------------------------------------------------- invalid specs


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: w.vs["spec"]["http"][0].update(name="other"), None),
    (lambda w: w.rollout["spec"]["strategy"]["canary"]["trafficRouting"]["istio"]["virtualService"].update(
        routes=["missing"]), "HTTP route 'missing' is not in VirtualService 'web-vs' (routes there: primary)"),
    (lambda w: w.vs["spec"]["http"][0]["route"].pop(1), "has no destination for canaryService 'web-canary'"),
    (lambda w: w.virtual_services.clear(), "VirtualService 'web-vs' not found in namespace 'shop'"),
    (lambda w: w.services.pop(1), "Service 'web-canary' not found"),
    (lambda w: w.rollout["spec"]["strategy"]["canary"]["steps"].append({"pause": {"duration": "1d"}}), "'1d'"),
    (lambda w: w.problems.append(Problem("spec.strategy.canary.steps[0].setWeight", "120 is not 0..100", "use 0..100")),
     "spec.strategy.canary.steps[0].setWeight: 120 is not 0..100 (use 0..100)"),
])  # fmt: skip
def test_an_invalid_spec_changes_no_traffic(change: Any, message: str | None) -> None:
    world = updated()
    world.set_ready("app:v2")
    world.settle()
    change(world)
    before = copy.deepcopy(world.virtual_services)
    world.set_image("app:v3")
    result = world.step(T0 + seconds(1))
    if message is None:  # renaming the only http route is still valid
        assert world.status["phase"] != "Degraded"
        return
    assert world.status["phase"] == "Degraded" and world.status["message"].startswith("InvalidSpec: ")
    assert message in world.status["message"]
    assert [type(a).__name__ for a in result.actions] == ["Event"] and result.requeue_after == 20.0
    assert world.virtual_services == before or not world.virtual_services
    assert world.status["currentPodHash"] == H2  # nothing moved
    again = world.step(T0 + seconds(21))
    assert again.actions == () and again.requeue_after == 20.0  # the event is not repeated


@pytest.mark.parametrize("status", [None, {"currentStepIndex": "x", "phase": "Healthy"}, "healthy"])
def test_invalid_is_the_status_path_for_a_document_the_models_cannot_load(status: Any) -> None:
    problems = [Problem("spec.strategy.canary.steps[0].setWeight", "must be an integer, got 'abc'",
                        "write a whole number such as 20, without quotes")]
    message = "spec.strategy.canary.steps[0].setWeight: must be an integer, got 'abc' " \
              "(write a whole number such as 20, without quotes)"
    if status == "healthy":
        status = deployed().status
    result = invalid(status, problems, now=T0 + seconds(0.5), generation=7)
    assert result.status["phase"] == "Degraded" and result.status["message"] == f"InvalidSpec: {message}"
    [condition] = [c for c in result.status["conditions"] if c["type"] == "InvalidSpec"]
    assert condition == {"type": "InvalidSpec", "status": "True", "reason": "InvalidSpec", "message": message,
                         "lastUpdateTime": "2024-05-01T12:00:00Z", "lastTransitionTime": "2024-05-01T12:00:00Z"}
    assert result.status["observedGeneration"] == "7" and result.requeue_after == 20.0
    assert result.actions == (Event("Warning", "InvalidSpec", message),)
    if isinstance(status, dict) and status.get("stableRS"):  # a readable status keeps everything else
        moved = ("conditions", "phase", "message", "observedGeneration")
        assert {k: v for k, v in result.status.items() if k not in moved} == {
            k: v for k, v in status.items() if k not in moved}
    elif status is not None:
        assert "currentStepIndex" not in result.status  # an unreadable status is written afresh
    again = invalid(result.status, problems, now=T0 + seconds(60), generation=7)
    assert again.status == result.status and again.actions == (), "the same problems: no new event, no write"
    other = invalid(result.status, [Problem("spec", "x", "y")], now=T0 + seconds(60), generation=7)
    assert [a.reason for a in other.actions] == ["InvalidSpec"]


def test_a_missing_analysis_template_is_an_invalid_spec() -> None:
    world = updated([{"setWeight": 25}, ANALYSIS])
    world.set_ready("app:v2")
    world.settle()
    assert world.status["phase"] == "Degraded"
    assert "AnalysisTemplate 'success-rate' not found" in world.status["message"]
    assert not [a for a in world.plan().actions if isinstance(a, CreateAnalysisRun)]


# ---------------------------------------------------------------- fixed point and determinism


CHECKPOINTS = {
    "deployed": lambda: deployed(),
    "canary-pending": lambda: updated(),
    "paused": lambda: _ready(updated()),
    "analysis-running": lambda: analysis_world(background=True),
    "aborted": lambda: _finish(analysis_world(), "Failed"),
    "inconclusive": lambda: _finish(analysis_world(), "Inconclusive"),
    "subsets": lambda: _ready(updated(subsets=True, services=False)),
    "basic": lambda: _ready(updated(routed=False, services=False)),
    "promote-full": lambda: _promote_full(_ready(updated())),
    "scale-down-delay": lambda: _end(updated([{"setWeight": 50}])),
    "abort-delay": lambda: _abort(_ready(updated())),
    "restarted": lambda: _restarted(),
    "history": lambda: _history(),
}


def _restarted() -> World:
    world = deployed()
    world.auto_ready = True
    world.add_pods("app:v1", created=T0 - seconds(60))
    world.rollout["spec"]["restartAt"] = stamp(T0)
    world.settle()
    assert world.status["restartedAt"] == stamp(T0) and world.status["phase"] == "Healthy"
    return world


def _history() -> World:
    world = deployed([], spec={"revisionHistoryLimit": 1})
    world.auto_ready = True
    for image in ("app:v2", "app:v3", "app:v4"):
        world.set_image(image)
        world.settle()
        world.settle(world.advance(seconds(30)))
    assert sorted(sizes(world).values()) == [0, 4], "the stable and one old ReplicaSet are left"
    return world


def _promote_full(world: World) -> World:
    world.set_status(promoteFull=True)
    world.settle()
    return world


def _end(world: World) -> World:
    world.auto_ready = True
    world.set_ready("app:v2")
    world.settle()
    assert world.plan().requeue_after == 30.0  # waiting for the old ReplicaSet's deadline
    return world


def _abort(world: World) -> World:
    world.set_status(abort=True)
    world.settle()
    assert world.plan().requeue_after == 30.0
    return world


def _ready(world: World) -> World:
    world.set_ready("app:v2")
    world.settle()
    return world


def _finish(world: World, phase: str) -> World:
    world.finish_run(f"web-{H2}-2-1", phase, FAILED)
    world.settle()
    return world


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_plan_is_a_fixed_point_of_its_own_result(name: str) -> None:
    world = CHECKPOINTS[name]()
    result = world.plan()
    assert result.actions == () and result.status == world.status
    # deterministic: a second controller with the same objects decides the same
    assert plan(world.observed(), world.now) == result


def test_scale_actions_are_absolute_and_idempotent() -> None:
    world = updated()
    world.set_status()
    lost = world.plan()  # the shell crashed before applying: the same plan comes back
    assert world.plan() == lost
    world.set_ready("app:v2")
    assert all(not isinstance(a, ScaleReplicaSet) or a.replicas >= 0 for a in world.plan().actions)
