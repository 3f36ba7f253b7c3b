"""The Argo CD health checks in integrations/argocd/, run by a real Lua interpreter.

Argo CD runs resource health checks in gopher-lua (Lua 5.1) with the live object as the
global `obj`; here lupa's embedded Lua 5.1 (and 5.4, to stay portable) does the same.
- Argo CD's own cases (resource_customizations/argoproj.io/{Rollout,Experiment}/testdata),
  re-expressed as the few status fields each verdict turns on, named for the case.
- The statuses OUR controller writes, from real scenarios on the InMemoryCluster (the
  Given/When/Then DSL): each is judged as written, and again with phase/message removed,
  so the pre-v1.0 field-by-field rules must agree with the phase the controller chose.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lupa.lua51
import lupa.lua54
import pytest
import yaml

from tests.controller.dsl import Scenario
from tests.controller.test_experiment import STANDALONE, experiment_scenario

ROOT = Path(__file__).resolve().parents[2]
ROLLOUT_CHECK = ROOT / "integrations" / "argocd" / "health-rollout.lua"
EXPERIMENT_CHECK = ROOT / "integrations" / "argocd" / "health-experiment.lua"
RUNTIMES = {"lua5.1": lupa.lua51.LuaRuntime, "lua5.4": lupa.lua54.LuaRuntime}
NOT_OBSERVED = "Waiting for rollout spec update to be observed"
NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def judge(script: Path, obj: dict[str, Any], runtime: str = "lua5.1") -> tuple[str | None, str]:
    """(status, message) the check returns for `obj`, as Argo CD would show them."""
    lua = RUNTIMES[runtime]()
    lua.globals().obj = lua.table_from(copy.deepcopy(obj), recursive=True)
    result = lua.execute(script.read_text())
    return result["status"], result["message"] or ""


def rollout(*, generation: int | None = 1, strategy: dict[str, Any] | None = None, replicas: int | None = 1,
            status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A Rollout with only what a health verdict can turn on."""
    meta: dict[str, Any] = {"name": "guestbook", "namespace": "default", "annotations": spec.pop("annotations", {})}
    if generation is not None:
        meta["generation"] = generation
    body: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta,
                            "spec": {**({} if replicas is None else {"replicas": replicas}),
                                     **({} if strategy is None else {"strategy": strategy}), **spec}}
    if status is not None:
        body["status"] = status
    return body


CANARY = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
BLUE_GREEN = {"blueGreen": {"activeService": "active", "previewService": "preview"}}
WORKLOAD_REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rollout-ref-deployment"}
FINISHED = {"currentPodHash": "754cb84d5", "stableRS": "754cb84d5", "replicas": 1, "updatedReplicas": 1,
            "availableReplicas": 1}


def replicas(total: int, updated: int, available: int) -> dict[str, int]:
    return {"replicas": total, "updatedReplicas": updated, "availableReplicas": available}


def condition(kind: str, reason: str, message: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "reason": reason, "status": status, "message": message}


# (Argo CD's testdata file, the object, the expected (status, message))
ARGO_CD_ROLLOUT_CASES: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("newRolloutWithoutStatus", rollout(strategy=CANARY, replicas=None), ("Progressing", NOT_OBSERVED)),
    ("progressing_newGeneration",
     rollout(generation=2, strategy=CANARY, status={**FINISHED, "observedGeneration": "1"}),
     ("Progressing", NOT_OBSERVED)),
    ("progressing_newWorkloadGeneration",
     rollout(generation=3, strategy=CANARY, replicas=5, workloadRef=WORKLOAD_REF,
             annotations={"rollout.argoproj.io/workload-generation": "2"},
             status={"observedGeneration": "3", "workloadObservedGeneration": "1", "phase": "Healthy"}),
     ("Progressing", NOT_OBSERVED)),
    ("degraded_statusPhaseMessage",
     rollout(strategy=CANARY, status={**FINISHED, "observedGeneration": "8575574967", "phase": "Degraded",
                                      "message": "InvalidSpec", "conditions": []}),
     ("Degraded", "InvalidSpec")),
    ("healthy_legacy_v0.9_observedGeneration",
     rollout(strategy=CANARY, status={**FINISHED, "observedGeneration": "abc123"}), ("Healthy", "")),
    ("healthy_legacy_v0.9_observedGeneration_numeric",
     rollout(strategy=CANARY, status={**FINISHED, "observedGeneration": "8575574967"}), ("Healthy", "")),
    ("healthy_legacy_v1.0_newWorkloadGeneration",
     rollout(generation=3, strategy=CANARY, replicas=5, workloadRef=WORKLOAD_REF,
             annotations={"rollout.argoproj.io/revision": "1"},
             status={"observedGeneration": "3", "phase": "Healthy"}),
     ("Healthy", "")),
    ("healthy_newWorkloadGeneration",
     rollout(generation=3, strategy=CANARY, replicas=5, workloadRef=WORKLOAD_REF,
             annotations={"rollout.argoproj.io/workload-generation": "1"},
             status={"observedGeneration": "3", "workloadObservedGeneration": "1", "phase": "Healthy"}),
     ("Healthy", "")),
    ("degraded_invalidSpec",
     rollout(generation=3, status={**FINISHED, "observedGeneration": "3", "conditions": [
         condition("Progressing", "NewReplicaSetAvailable", 'ReplicaSet "basic-754cb84d5" has progressed.'),
         condition("InvalidSpec", "InvalidSpec", "The Rollout \"basic\" is invalid: spec.strategy.strategy: Required "
                   "value: Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'")]}),
     ("Degraded", "The Rollout \"basic\" is invalid: spec.strategy.strategy: Required value: Rollout has missing "
                  "field '.spec.strategy.canary or .spec.strategy.blueGreen'")),
    ("degraded_rolloutTimeout",
     rollout(strategy=BLUE_GREEN, replicas=3, status={
         **replicas(4, 1, 3), "observedGeneration": "7bcdbf7bd9", "currentPodHash": "6b8cf6f7db",
         "blueGreen": {"activeSelector": "8464d8564d"}, "conditions": [
             condition("Available", "AvailableReason", "Rollout has minimum availability"),
             condition("Progressing", "ProgressDeadlineExceeded", 'ReplicaSet "guestbook-bluegreen-helm-guestbook-'
                       '6b8cf6f7db" has timed out progressing.', status="False")]}),
     ("Degraded", 'ReplicaSet "guestbook-bluegreen-helm-guestbook-6b8cf6f7db" has timed out progressing.')),
    ("degraded_abortedRollout",
     rollout(generation=None, strategy=CANARY, replicas=5, status={
         "abort": True, "observedGeneration": "58b949649c", "currentPodHash": "6758949f55",
         "canary": {"stableRS": "645d5dbc4c"}, "replicas": 5, "availableReplicas": 5, "conditions": [
             condition("Available", "AvailableReason", "Rollout has minimum availability"),
             condition("Progressing", "RolloutAborted", "Rollout is aborted", status="False")]}),
     ("Degraded", "Rollout is aborted")),
    ("bluegreen/healthy_servingActiveService",
     rollout(strategy=BLUE_GREEN, status={**replicas(1, 1, 1), "observedGeneration": "77646c9d4c",
                                          "currentPodHash": "dc689d967",
                                          "blueGreen": {"activeSelector": "dc689d967", "previewSelector": ""}}),
     ("Healthy", "")),
    ("bluegreen/progressing_addingMoreReplicas",
     rollout(strategy=BLUE_GREEN, replicas=3, status={**replicas(3, 0, 3), "observedGeneration": "767f98959f",
                                                      "currentPodHash": "697fb9575c", "activeSelector": "85f9884f5d"}),
     ("Progressing", "Waiting for roll out to finish: More replicas need to be updated")),
    ("bluegreen/progressing_waitingUntilAvailable",
     rollout(strategy=BLUE_GREEN, replicas=3, status={**replicas(3, 3, 0), "observedGeneration": "767f98959f",
                                                      "currentPodHash": "697fb9575c", "activeSelector": "697fb9575c"}),
     ("Progressing", "Waiting for roll out to finish: updated replicas are still becoming available")),
    ("canary/progressing_setWeightStep",
     rollout(strategy=CANARY, replicas=5, status={**replicas(5, 2, 5), "observedGeneration": "6df79499bc",
                                                  "currentPodHash": "6b566f47b7", "currentStepIndex": 3,
                                                  "canary": {"stableRS": "df986d68"}}),
     ("Progressing", "Waiting for roll out to finish: More replicas need to be updated")),
    ("canary/progressing_killingOldReplicas",
     rollout(generation=101, strategy={"canary": {}}, replicas=5, status={
         **replicas(6, 5, 5), "observedGeneration": "7fcc96c7b7", "currentPodHash": "694fb7759c",
         "canary": {"stableRS": "74d6dc8544"}}),
     ("Progressing", "Waiting for roll out to finish: old replicas are pending termination")),
    ("suspended_controllerPause",
     rollout(generation=None, strategy=CANARY, replicas=5, status={
         **replicas(5, 1, 5), "observedGeneration": "5b9f9dd6c6", "currentPodHash": "6758949f55",
         "controllerPause": True,
         "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2019-12-09T18:34:12Z"}],
         "canary": {"stableRS": "75c96899b8"},
         "conditions": [condition("Progressing", "RolloutPaused", "Rollout is paused", status="Unknown")]}),
     ("Suspended", "Rollout is paused")),
    ("suspended_userPause",
     rollout(generation=None, strategy=CANARY, replicas=5, paused=True, status={
         **replicas(5, 1, 5), "observedGeneration": "5c788f4484", "currentPodHash": "6b566f47b7",
         "canary": {"stableRS": "df986d68"},
         "conditions": [condition("Progressing", "RolloutPaused", "Rollout is paused", status="Unknown")]}),
     ("Suspended", "Rollout is paused")),
    ("suspended_v1.0_pausedRollout",
     rollout(generation=5, strategy=CANARY, replicas=5, status={
         **replicas(6, 2, 6), "observedGeneration": "5", "currentPodHash": "8566c77b97", "stableRS": "77f4f8ff97",
         "controllerPause": True, "phase": "Paused", "message": "CanaryPauseStep",
         "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2021-07-15T21:08:55Z"}]}),
     ("Suspended", "CanaryPauseStep")),
    ("canary/healthy_executedAllStepsPreV0.8",
     rollout(strategy=CANARY, replicas=5, status={**replicas(5, 5, 5), "observedGeneration": "c45557fd9",
                                                  "currentPodHash": "84ccfddd66", "currentStepIndex": 4,
                                                  "canary": {"stableRS": "84ccfddd66"}}),
     ("Healthy", "")),
    ("canary/healthy_executedAllSteps",
     rollout(strategy=CANARY, replicas=5, status={**replicas(5, 5, 5), "observedGeneration": "c45557fd9",
                                                  "currentPodHash": "84ccfddd66", "currentStepIndex": 4,
                                                  "stableRS": "84ccfddd66", "canary": {}}),
     ("Healthy", "")),
    ("canary/progressing_noSteps",
     rollout(strategy={"canary": {"maxSurge": 1}}, replicas=5, status={
         **replicas(6, 5, 2), "observedGeneration": "6886f85bff", "currentPodHash": "567dd56d89",
         "canary": {"stableRS": "567dd56d89"}}),
     ("Progressing", "Waiting for roll out to finish: updated replicas are still becoming available")),
    ("canary/healthy_noSteps",
     rollout(strategy={"canary": {"maxSurge": 1}}, replicas=5, status={
         **replicas(5, 5, 5), "observedGeneration": "6886f85bff", "currentPodHash": "567dd56d89",
         "canary": {"stableRS": "567dd56d89"}}),
     ("Healthy", "")),
    ("canary/healthy_emptyStepsList",
     rollout(strategy={"canary": {"steps": []}}, replicas=5, status={
         **replicas(5, 5, 5), "observedGeneration": "6886f85bff", "currentPodHash": "567dd56d89",
         "canary": {"stableRS": "567dd56d89"}}),
     ("Healthy", "")),
]


def experiment(status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                            "metadata": {"name": "example-experiment", "generation": 1}, "spec": {"templates": []}}
    return body if status is None else {**body, "status": status}


ARGO_CD_EXPERIMENT_CASES: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("pendingExperiment", experiment({"phase": "Pending", "running": False}), ("Progressing", "Experiment is pending")),
    ("noStatusExperiment", experiment(None),
     ("Progressing", "Waiting for experiment to finish: status has not been reconciled.")),
    ("runningExperiment", experiment({"phase": "Running"}), ("Progressing", "Experiment is running")),
    ("successfulExperiment", experiment({"phase": "Successful"}), ("Healthy", "Experiment is successful")),
    ("failedExperiment", experiment({"phase": "Failed"}), ("Degraded", "Experiment has failed")),
    ("errorExperiment", experiment({"phase": "Error", "message": "AnalysisTemplate verification failed"}),
     ("Degraded", "Experiment had an error")),
]


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize(("case", "obj", "expected"), ARGO_CD_ROLLOUT_CASES, ids=[c[0] for c in ARGO_CD_ROLLOUT_CASES])
def test_argo_cd_rollout_testdata(case: str, obj: dict[str, Any], expected: tuple[str, str], runtime: str) -> None:
    assert judge(ROLLOUT_CHECK, obj, runtime) == expected


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize(("case", "obj", "expected"), ARGO_CD_EXPERIMENT_CASES,
                         ids=[c[0] for c in ARGO_CD_EXPERIMENT_CASES])
def test_argo_cd_experiment_testdata(case: str, obj: dict[str, Any], expected: tuple[str, str], runtime: str) -> None:
    assert judge(EXPERIMENT_CHECK, obj, runtime) == expected


def test_an_experiment_phase_the_check_does_not_know_gives_no_verdict() -> None:
    """Argo CD shows Unknown for an empty result; the check must not guess Healthy."""
    assert judge(EXPERIMENT_CHECK, experiment({"phase": "Paused"})) == (None, "")


def test_a_legacy_status_without_conditions_is_read_not_a_lua_error() -> None:
    """Argo CD's built-in check indexes status.conditions unguarded; a status written
    before the first condition must read as not reconciled yet, not fail the check."""
    assert judge(ROLLOUT_CHECK, rollout(strategy=CANARY, status={"observedGeneration": "1"})) == (
        "Progressing", "Waiting for rollout to finish: status has not been reconciled.")


def test_a_spec_edit_the_controller_has_not_seen_hides_a_stale_phase() -> None:
    stale = rollout(generation=4, strategy=CANARY, status={**FINISHED, "observedGeneration": "3", "phase": "Healthy"})
    assert judge(ROLLOUT_CHECK, stale) == ("Progressing", NOT_OBSERVED)


# ------------------------------------------------------------ the statuses our controller writes


def legacy(obj: dict[str, Any]) -> dict[str, Any]:
    """The same Rollout with phase/message removed: judged by the pre-v1.0 field rules."""
    stripped = copy.deepcopy(obj)
    for key in ("phase", "message"):
        stripped["status"].pop(key, None)
    return stripped


def verdicts(obj: dict[str, Any]) -> tuple[tuple[str | None, str], str | None]:
    """(the verdict as written, the status the legacy field-by-field rules give)."""
    return judge(ROLLOUT_CHECK, obj), judge(ROLLOUT_CHECK, legacy(obj))[0]


@pytest.fixture
def scenarios() -> Iterator[Callable[..., Scenario]]:
    opened: list[Scenario] = []

    def make(example: str, **options: Any) -> Scenario:
        scenario = Scenario(example, **options)
        opened.append(scenario)
        return scenario

    yield make
    for scenario in opened:
        scenario.close()


def with_canary_steps(scenario: Scenario, steps: list[dict[str, Any]]) -> Scenario:
    rollout_doc = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    rollout_doc["spec"]["strategy"]["canary"]["steps"] = steps
    return scenario


def test_our_canary_paused_at_an_indefinite_pause_is_suspended_then_healthy_after_promote(
        scenarios: Callable[..., Scenario]) -> None:
    istio = with_canary_steps(scenarios("istio-canary"), [{"setWeight": 50}, {"pause": {}}])
    istio.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
    istio.given_healthy()
    assert verdicts(istio.rollout) == (("Healthy", ""), "Healthy")
    istio.when_image(NEW_IMAGE)
    assert verdicts(istio.rollout)[0] == ("Progressing", NOT_OBSERVED), "the new generation is not observed yet"
    istio.run_until(lambda: istio.phase == "Paused")
    assert verdicts(istio.rollout) == (("Suspended", "CanaryPauseStep"), "Suspended")
    istio.when_promote().run_until(lambda: istio.phase == "Healthy")
    # Argo's phase ignores the old pods a traffic-routed canary keeps for scaleDownDelaySeconds
    # (30 s); the pre-v1.0 field rules still count them until they are gone
    assert judge(ROLLOUT_CHECK, istio.rollout) == ("Healthy", "")
    assert judge(ROLLOUT_CHECK, legacy(istio.rollout)) == (
        "Progressing", "Waiting for roll out to finish: old replicas are pending termination")
    istio.run_for(30)
    assert verdicts(istio.rollout) == (("Healthy", ""), "Healthy")


def test_our_canary_mid_step_analysis_is_progressing(scenarios: Callable[..., Scenario]) -> None:
    multi = scenarios("multi-step", stable="stable", canary="canary")
    multi.provider.script("error-rate", [0.01])  # type: ignore[attr-defined]
    multi.given_healthy()
    multi.when_image(NEW_IMAGE).run_until(lambda: multi.status.get("currentStepIndex") == 3)  # the analysis step
    assert multi.phase == "Progressing"
    (status, _), legacy_status = verdicts(multi.rollout)
    assert (status, legacy_status) == ("Progressing", "Progressing")


def test_our_canary_aborted_by_its_analysis_is_degraded(scenarios: Callable[..., Scenario]) -> None:
    istio = with_canary_steps(scenarios("istio-canary"), [{"setWeight": 50}, {"pause": {"duration": "30m"}}])
    istio.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
    istio.given_healthy()
    istio.provider.script("success-rate", [0.42])  # type: ignore[attr-defined]
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Degraded")
    (status, message), legacy_status = verdicts(istio.rollout)
    assert (status, legacy_status) == ("Degraded", "Degraded")
    assert message == istio.status["message"] and "RolloutAborted" in message


def test_our_invalid_spec_is_degraded_with_the_problem(scenarios: Callable[..., Scenario]) -> None:
    istio = scenarios("istio-canary")
    next(doc for doc in istio.docs if doc["kind"] == "Rollout")["spec"]["strategy"]["canary"]["steps"][0][
        "setWeight"] = "abc"
    istio.given_objects().run_until(lambda: istio.phase == "Degraded")
    (status, message), legacy_status = verdicts(istio.rollout)
    assert (status, legacy_status) == ("Degraded", "Degraded")
    assert message.startswith("InvalidSpec: spec.strategy.canary.steps[0].setWeight")


def test_our_blue_green_paused_before_promotion_is_suspended_then_healthy(scenarios: Callable[..., Scenario]) -> None:
    bg = scenarios("blue-green", vs="none")
    bg.provider.script("preview-success-rate", [0.99])  # type: ignore[attr-defined]
    bg.given_healthy()
    assert verdicts(bg.rollout) == (("Healthy", ""), "Healthy")
    bg.when_image(NEW_IMAGE).run_until(lambda: bg.phase == "Paused")
    assert verdicts(bg.rollout) == (("Suspended", "BlueGreenPause"), "Suspended")
    bg.when_promote().run_until(lambda: bg.phase == "Healthy")
    assert verdicts(bg.rollout) == (("Healthy", ""), "Healthy")


def test_our_standalone_experiment_is_progressing_while_running_then_healthy() -> None:
    scenario = experiment_scenario()
    try:
        scenario.provider.script("gate", [0.99])  # type: ignore[attr-defined]
        scenario.given_objects()
        scenario.cluster.create(copy.deepcopy(STANDALONE))

        def live() -> dict[str, Any]:
            return scenario.cluster.get("Experiment", "example-experiment", "default")

        assert judge(EXPERIMENT_CHECK, live())[0] == "Progressing"
        scenario.run_until(lambda: (live().get("status") or {}).get("phase") == "Running")
        assert judge(EXPERIMENT_CHECK, live()) == ("Progressing", "Experiment is running")
        scenario.run_until(lambda: (live().get("status") or {}).get("phase") == "Successful")
        assert judge(EXPERIMENT_CHECK, live()) == ("Healthy", "Experiment is successful")
    finally:
        scenario.close()


def test_the_argocd_cm_snippet_carries_the_scripts_verbatim() -> None:
    config = yaml.safe_load((ROOT / "integrations" / "argocd" / "argocd-cm.yaml").read_text())
    assert (config["kind"], config["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert config["data"] == {"resource.customizations.health.argoproj.io_Rollout": ROLLOUT_CHECK.read_text(),
                              "resource.customizations.health.argoproj.io_Experiment": EXPERIMENT_CHECK.read_text()}
