"""Experiment steps and the Experiment kind end to end: both controllers, the InMemoryCluster,
a stepped clock, a scripted metric provider (Argo's test/e2e/experiment_test.go stories).

The canary stories start from the istio-canary example with its steps replaced by an
experiment step (its background analysis removed, so only the experiment's analysis
measures). Argo's examples/rollout-experiment-step.yaml runs as Argo ships it, with its
`random-fail` template measured through the scripted provider instead of a Job.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.providers import Providers
from rollouts.controller.manager import Manager
from rollouts.kube.cluster import KubeCluster
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.clock import SteppedClock
from rollouts.platform.labels import HASH_LABEL
from tests.controller.dsl import START, Scenario, wait_for

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
OLD_IMAGE = "argoproj/rollouts-demo:blue"
GATE_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "experiment-gate"},
    "spec": {"args": [{"name": "canary-hash"}],
             "metrics": [{"name": "gate", "interval": "1m", "count": 3, "failureLimit": 0,
                          "successCondition": "result[0] >= 0.95",
                          "provider": {"prometheus": {"address": "http://prometheus:9090",
                                                      "query": 'ok{hash="{{args.canary-hash}}"}'}}}]},
}
EXPERIMENT_STEP = {"experiment": {
    "duration": "5m",
    "templates": [{"name": "baseline", "specRef": "stable"}, {"name": "canary", "specRef": "canary"}],
    "analyses": [{"name": "gate", "templateName": "experiment-gate",
                  "args": [{"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"}]}],
}}


def experiment_scenario(step: dict[str, Any] = EXPERIMENT_STEP) -> Scenario:
    scenario = Scenario("istio-canary")
    rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    del canary["analysis"]
    canary["steps"] = [{"setWeight": 20}, copy.deepcopy(step), {"setWeight": 60}]
    scenario.docs.append({**copy.deepcopy(GATE_TEMPLATE), "metadata": {"name": "experiment-gate",
                                                                       "namespace": "default"}})
    return scenario


@pytest.fixture
def canary() -> Iterator[Scenario]:
    scenario = experiment_scenario()
    yield scenario
    scenario.close()


def experiments(scenario: Scenario) -> list[dict[str, Any]]:
    return scenario.cluster.list("Experiment", scenario.namespace)


def experiment_replica_sets(scenario: Scenario, name: str) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["annotations"]["experiment.argoproj.io/template-name"]: rs
            for rs in scenario.cluster.list("ReplicaSet", scenario.namespace)
            if any(ref["kind"] == "Experiment" and ref["name"] == name
                   for ref in rs["metadata"].get("ownerReferences") or [])}


def image(rs: dict[str, Any]) -> str:
    return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])


def stable_image(scenario: Scenario) -> str:
    stable = scenario.status["stableRS"]
    [rs] = [rs for rs in scenario.cluster.list("ReplicaSet", scenario.namespace)
            if rs["metadata"]["labels"].get(HASH_LABEL) == stable
            and rs["metadata"]["ownerReferences"][0]["kind"] == "Rollout"]
    return image(rs)


def at(value: str) -> timedelta:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) - START


def test_a_canary_whose_experiment_analysis_fails_is_aborted(canary: Scenario) -> None:
    # Given the canary, healthy, and an experiment analysis that measures badly
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.provider.script("gate", [0.42])  # type: ignore[attr-defined]
    # When a new image is rolled out
    canary.when_image(NEW_IMAGE).run_until(lambda: bool(experiments(canary)), between_reconciles=True)
    [ex] = experiments(canary)
    pod_hash = canary.status["currentPodHash"]
    name = f"rollout-example-{pod_hash}-2-1"
    # Then the experiment step created an Experiment owned by the Rollout, named as Argo names it
    assert ex["metadata"]["name"] == name
    assert ex["metadata"]["ownerReferences"][0]["kind"] == "Rollout"
    assert ex["metadata"]["labels"][HASH_LABEL] == pod_hash
    assert canary.status["canary"]["currentExperiment"] == name
    assert canary.vs_weights == (80, 20)
    canary.run_until(lambda: canary.phase == "Degraded")
    # Then the failed experiment analysis aborted the update: all traffic back to stable, no promotion
    assert "Experiment analysis phase is error/failed" in canary.status["message"]
    assert canary.status["abort"] is True
    assert canary.vs_weights == (100, 0)
    assert canary.weights.canary_weights == [0, 20, 0]
    assert stable_image(canary) == OLD_IMAGE
    ex = canary.cluster.get("Experiment", name, "default")
    assert ex["status"]["phase"] == "Failed"
    assert ex["spec"].get("terminate") is True, "the aborted Rollout terminates its Experiment"
    # and the Experiment's ReplicaSets (the stable and the canary pods) are scaled down after its delay
    canary.run_for(60)
    replica_sets = experiment_replica_sets(canary, name)
    assert {t: image(rs) for t, rs in replica_sets.items()} == {"baseline": OLD_IMAGE, "canary": NEW_IMAGE}
    assert {t: rs["spec"]["replicas"] for t, rs in replica_sets.items()} == {"baseline": 0, "canary": 0}
    # the measured failure is the experiment's own run, measured once (failureLimit 0)
    [run] = [r for r in canary.analysis_runs() if r["metadata"]["name"] == f"{name}-gate"]
    assert run["status"]["phase"] == "Failed"
    assert [metric for metric, _ in canary.provider.calls].count("gate") == 1  # type: ignore[attr-defined]
    assert canary.events("ExperimentCreated")


def test_a_canary_whose_experiment_passes_goes_on_and_is_promoted(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.when_image(NEW_IMAGE).run_until(lambda: canary.phase == "Healthy")
    [ex] = experiments(canary)
    name = ex["metadata"]["name"]
    # Then the Experiment ran its duration with its analysis, and ended Successful
    assert ex["status"]["phase"] == "Successful"
    available = at(ex["status"]["availableAt"])
    calls = [when - START for metric, when in canary.provider.calls if metric == "gate"]  # type: ignore[attr-defined]
    assert calls == [available, available + timedelta(minutes=1), available + timedelta(minutes=2)]
    [run] = [r for r in canary.analysis_runs() if r["metadata"]["name"] == f"{name}-gate"]
    canary_rs = experiment_replica_sets(canary, name)["canary"]
    assert run["spec"]["args"] == [{"name": "canary-hash", "value": canary_rs["metadata"]["labels"][HASH_LABEL]}]
    assert canary_rs["metadata"]["labels"][HASH_LABEL] != canary.status["currentPodHash"], (
        "experiment pods never carry the Rollout's own hash (its Services select by it)")
    # and the Rollout went on to the next step only after the Experiment passed, then was promoted
    assert [(at_ - START, c) for at_, _, c in canary.weights.entries][1:3] == [
        (timedelta(0), 20), (available + timedelta(minutes=5, seconds=1), 60)]
    assert canary.status["stableRS"] == canary.status["currentPodHash"]
    assert stable_image(canary) == NEW_IMAGE
    assert "currentExperiment" not in canary.status.get("canary", {})
    canary.run_for(60)
    assert {t: rs["spec"]["replicas"] for t, rs in experiment_replica_sets(canary, name).items()} == {
        "baseline": 0, "canary": 0}


ARGO_EXAMPLE = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: rollout-experiment-step
spec:
  replicas: 4
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: rollout-experiment-step
  template:
    metadata:
      labels:
        app: rollout-experiment-step
    spec:
      containers:
      - name: rollouts-demo
        image: argoproj/rollouts-demo:blue
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
  strategy:
    canary:
      steps:
      - setWeight: 25
      - experiment:
          templates:
          - name: canary
            specRef: canary
          analyses:
          - name: random-fail
            templateName: random-fail
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: random-fail
spec:
  metrics:
  - name: random-fail
    count: 2
    interval: 5s
    failureLimit: 1
    successCondition: result[0] == 1
    provider:
      prometheus:
        address: http://prometheus:9090
        query: flip()
"""


@pytest.fixture
def argo_example() -> Iterator[Scenario]:
    scenario = Scenario("basic-canary", vs="none")
    scenario.docs = [{**doc, "metadata": {**doc["metadata"], "namespace": "default"}}
                     for doc in yaml.safe_load_all(ARGO_EXAMPLE)]
    scenario.rollout_name = "rollout-experiment-step"
    yield scenario
    scenario.close()


def test_argo_rollout_experiment_step_example_runs_its_experiment_and_its_analysis(argo_example: Scenario) -> None:
    scenario = argo_example
    scenario.provider.script("random-fail", [1])  # type: ignore[attr-defined]
    scenario.given_healthy()
    scenario.when_image("argoproj/rollouts-demo:yellow").run_for(3600)
    [ex] = experiments(scenario)
    name = ex["metadata"]["name"]
    assert name == f"rollout-experiment-step-{scenario.status['currentPodHash']}-2-1"
    # the experiment's analysis was measured: count 2, every 5s, from when the canary pods were available
    available = at(ex["status"]["availableAt"])
    calls = [when - START for metric, when in scenario.provider.calls]  # type: ignore[attr-defined]
    assert calls == [available, available + timedelta(seconds=5)]
    [run] = [r for r in scenario.analysis_runs() if r["metadata"]["name"] == f"{name}-random-fail"]
    assert run["status"]["phase"] == "Successful"
    assert ex["status"]["analysisRuns"] == [{"name": "random-fail", "analysisRun": f"{name}-random-fail",
                                             "phase": "Successful"}]
    # With no duration and no requiredForCompletion analysis the Experiment runs until terminated
    # (Argo's lifecycle, rule 7): the step waits, the canary keeps its 25%, nothing is promoted.
    assert ex["status"]["phase"] == "Running"
    assert scenario.status["currentStepIndex"] == 1 and scenario.phase == "Progressing"
    assert stable_image(scenario) == OLD_IMAGE
    assert experiment_replica_sets(scenario, name)["canary"]["spec"]["replicas"] == 1


def test_argo_rollout_experiment_step_example_aborts_when_its_analysis_fails(argo_example: Scenario) -> None:
    scenario = argo_example
    scenario.provider.script("random-fail", [1])  # type: ignore[attr-defined]
    scenario.given_healthy()
    scenario.provider.script("random-fail", [0])  # type: ignore[attr-defined]
    scenario.when_image("argoproj/rollouts-demo:yellow").run_until(lambda: scenario.phase == "Degraded")
    [ex] = experiments(scenario)
    assert ex["status"]["phase"] == "Failed"
    assert len(scenario.provider.calls) == 2, "failureLimit 1: the second failure fails the run"  # type: ignore[attr-defined]
    assert "Experiment analysis phase is error/failed" in scenario.status["message"]
    assert stable_image(scenario) == OLD_IMAGE


STANDALONE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
    "metadata": {"name": "example-experiment", "namespace": "default"},
    "spec": {
        "duration": "2m", "scaleDownDelaySeconds": 0,
        "templates": [{"name": color, "selector": {"matchLabels": {"app": "demo", "color": color}},
                       "template": {"metadata": {"labels": {"app": "demo", "color": color}},
                                    "spec": {"containers": [{"name": "demo", "image": f"demo:{color}"}]}}}
                      for color in ("purple", "orange")],
        "analyses": [{"name": "purple", "templateName": "experiment-gate",
                      "args": [{"name": "canary-hash", "value": "{{templates.purple.podTemplateHash}}"}]}],
    },
}


def test_a_standalone_experiment_runs_to_successful_after_its_duration(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_objects()
    canary.cluster.create(copy.deepcopy(STANDALONE))

    def phase() -> str | None:
        return (canary.cluster.get("Experiment", "example-experiment", "default").get("status") or {}).get("phase")

    canary.run_until(lambda: phase() == "Running")
    running_at = canary.clock.now() - START
    canary.run_until(lambda: phase() == "Successful")
    ex = canary.cluster.get("Experiment", "example-experiment", "default")
    assert at(ex["status"]["availableAt"]) == running_at
    assert canary.clock.now() - START == running_at + timedelta(minutes=2, seconds=1)
    assert [t["status"] for t in ex["status"]["templateStatuses"]] == ["Successful", "Successful"]
    assert ex["status"]["analysisRuns"][0]["phase"] == "Successful"
    assert ex["status"]["conditions"][-1]["reason"] == "ExperimentCompleted"
    canary.run_for(10)
    assert {t: rs["spec"]["replicas"] for t, rs in experiment_replica_sets(canary, "example-experiment").items()} == {
        "purple": 0, "orange": 0}
    reasons = [e["reason"] for e in canary.cluster.list("Event", "default")
               if e["involvedObject"]["kind"] == "Experiment"]
    assert {"ExperimentRunning", "ExperimentSuccessful", "TemplateRunning"} <= set(reasons)


def test_a_controller_restart_mid_experiment_carries_on_without_a_second_experiment(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.when_image(NEW_IMAGE).run_until(
        lambda: any((ex.get("status") or {}).get("phase") == "Running" for ex in experiments(canary)))
    [before] = experiments(canary)
    # When the controller stops mid-experiment and a new one starts from the cluster alone
    restarted = canary.new_manager()
    canary.run_until(lambda: canary.phase == "Healthy", manager=restarted)
    # Then it followed the same Experiment to its end and promoted: no second Experiment, no second run
    [after] = experiments(canary)
    assert after["metadata"]["name"] == before["metadata"]["name"]
    assert after["status"]["phase"] == "Successful"
    assert len(canary.analysis_runs()) == 1
    assert stable_image(canary) == NEW_IMAGE


def test_retry_after_an_aborted_experiment_runs_a_new_experiment(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.provider.script("gate", [0.42])  # type: ignore[attr-defined]
    canary.when_image(NEW_IMAGE).run_until(lambda: canary.phase == "Degraded")
    [failed] = experiments(canary)
    # When the update is retried with a healthy canary
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.when_retry().run_until(lambda: canary.phase == "Healthy")
    # Then the step ran a fresh Experiment under Argo's collision name, never the failed one again
    names = sorted(ex["metadata"]["name"] for ex in experiments(canary))
    assert names == [failed["metadata"]["name"], f"{failed['metadata']['name']}-1"]
    retried = canary.cluster.get("Experiment", names[1], "default")
    assert retried["status"]["phase"] == "Successful"
    assert stable_image(canary) == NEW_IMAGE


def test_an_inconclusive_experiment_pauses_the_rollout(canary: Scenario) -> None:
    template = next(doc for doc in canary.docs if doc["metadata"]["name"] == "experiment-gate")
    template["spec"]["metrics"][0]["failureCondition"] = "result[0] < 0.5"
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.provider.script("gate", [0.7])  # type: ignore[attr-defined]
    canary.when_image(NEW_IMAGE).run_until(lambda: canary.phase == "Paused")
    [ex] = experiments(canary)
    assert ex["status"]["phase"] == "Inconclusive"
    assert [c["reason"] for c in canary.status["pauseConditions"]] == ["InconclusiveExperiment"]
    assert canary.vs_weights == (80, 20), "the canary keeps the weight it had: nothing promoted, nothing aborted"
    canary.run_for(3600)
    assert canary.phase == "Paused" and stable_image(canary) == OLD_IMAGE
    # When a human promotes, the step is done and the update goes on (a human's decision, as for a step run)
    canary.when_promote().run_until(lambda: canary.phase == "Healthy")
    assert stable_image(canary) == NEW_IMAGE
    assert len(experiments(canary)) == 1


def test_a_new_revision_mid_experiment_terminates_the_running_experiment(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.when_image(NEW_IMAGE).run_until(
        lambda: any((ex.get("status") or {}).get("phase") == "Running" for ex in experiments(canary)))
    [first] = experiments(canary)
    canary.when_image("argoproj/rollouts-demo:green").run_until(lambda: canary.phase == "Healthy")
    old = canary.cluster.get("Experiment", first["metadata"]["name"], "default")
    assert old["spec"].get("terminate") is True
    assert len(experiments(canary)) == 2, "the new revision ran its own experiment step"
    assert stable_image(canary) == "argoproj/rollouts-demo:green"


def test_a_standalone_experiment_runs_over_http_with_the_kubernetes_client(tmp_path: Path) -> None:
    """The embedded API server serves the kind and KubeCluster knows its plural (`experiments`)."""
    clock = SteppedClock(START)
    backing = InMemoryCluster(clock=clock.now)
    doc = copy.deepcopy(STANDALONE)
    del doc["spec"]["analyses"]
    backing.create(doc)

    def phase() -> str | None:
        return (backing.get("Experiment", "example-experiment", "default").get("status") or {}).get("phase")

    with serve(backing) as api, KubeCluster(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                                            request_timeout=10) as kube:
        manager = Manager(kube, Providers({}), clock=clock, leader_election=False)
        manager.start()
        try:
            wait_for(lambda: phase() == "Running", "the Experiment to run")
            clock.advance(timedelta(minutes=2, seconds=1))
            wait_for(lambda: phase() == "Successful", "the Experiment's duration to pass")
            wait_for(lambda: all(rs["spec"]["replicas"] == 0 for rs in backing.list("ReplicaSet", "default")),
                     "the scale-down")
        finally:
            manager.stop()
    assert len(backing.list("ReplicaSet", "default")) == 2


def test_completed_experiments_beyond_the_history_limit_are_deleted(canary: Scenario) -> None:
    rollout = next(doc for doc in canary.docs if doc["kind"] == "Rollout")
    rollout["spec"]["analysis"] = {"successfulRunHistoryLimit": 1}
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.when_image(NEW_IMAGE).run_until(lambda: canary.phase == "Healthy")
    [first] = experiments(canary)
    canary.when_image("argoproj/rollouts-demo:green").run_until(lambda: canary.phase == "Healthy")
    canary.run_for(60)
    [kept] = experiments(canary)
    assert kept["metadata"]["name"] != first["metadata"]["name"]
    assert kept["metadata"]["labels"][HASH_LABEL] == canary.status["currentPodHash"]
    assert kept["status"]["phase"] == "Successful"


EXPERIMENT_WITH_SERVICE_NAME = """
apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata:
  name: experiment-with-service-name
  namespace: default
spec:
  duration: 10s
  scaleDownDelaySeconds: 5
  templates:
    - name: test
      replicas: 1
      service:
        name: test-service-name
      selector:
        matchLabels:
          app: experiment-with-service-name
      template:
        metadata:
          labels:
            app: experiment-with-service-name
        spec:
          containers:
            - name: experiment-with-service-name
              image: nginx:1.19-alpine
              ports:
                - protocol: TCP
                  containerPort: 8080
"""


def test_experiment_with_service_name_and_scale_down_delay(canary: Scenario) -> None:
    """Argo's e2e TestExperimentWithServiceNameAndScaleDownDelay (functional/experiment-with-service-name.yaml)."""
    name = "experiment-with-service-name"
    canary.given_objects()
    canary.cluster.create(yaml.safe_load(EXPERIMENT_WITH_SERVICE_NAME))

    def ex() -> dict[str, Any]:
        return canary.cluster.get("Experiment", name, "default")

    def services() -> list[dict[str, Any]]:
        return [s for s in canary.cluster.list("Service", "default")
                if any(r["kind"] == "Experiment" for r in s["metadata"].get("ownerReferences") or [])]

    canary.run_until(lambda: (ex().get("status") or {}).get("phase") == "Running")
    [rs] = experiment_replica_sets(canary, name).values()
    assert rs["spec"]["replicas"] == 1
    [svc] = services()
    assert svc["metadata"]["name"] == "test-service-name"
    assert svc["spec"]["selector"] == rs["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"] == [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]
    [status] = ex()["status"]["templateStatuses"]
    assert (status["serviceName"], status["podTemplateHash"]) == ("test-service-name",
                                                                  rs["metadata"]["labels"][HASH_LABEL])
    canary.run_until(lambda: ex()["status"]["phase"] == "Successful")
    assert services(), "the pods still run for scaleDownDelaySeconds, and so does their Service"
    canary.run_for(10)
    [rs] = experiment_replica_sets(canary, name).values()
    assert rs["spec"]["replicas"] == 0
    assert services() == []


def test_an_experiment_deleted_mid_step_is_created_again(canary: Scenario) -> None:
    canary.provider.script("gate", [0.99])  # type: ignore[attr-defined]
    canary.given_healthy()
    canary.when_image(NEW_IMAGE).run_until(
        lambda: any((ex.get("status") or {}).get("phase") == "Running" for ex in experiments(canary)))
    [ex] = experiments(canary)
    canary.cluster.delete("Experiment", ex["metadata"]["name"], "default")
    canary.run_until(lambda: canary.phase == "Healthy")
    [again] = experiments(canary)
    assert again["metadata"]["name"] == ex["metadata"]["name"]
    assert again["metadata"]["uid"] != ex["metadata"]["uid"]
    assert again["status"]["phase"] == "Successful", "the step completed on the Experiment that ran"


def test_an_experiment_the_models_cannot_read_is_invalid_spec_and_never_crashes(canary: Scenario) -> None:
    canary.given_objects()
    broken = copy.deepcopy(STANDALONE)
    broken["spec"]["templates"] = "purple"
    canary.cluster.create(broken)
    canary.run_for(120)
    ex = canary.cluster.get("Experiment", "example-experiment", "default")
    assert ex["status"]["phase"] == "Error"
    assert ex["status"]["message"].startswith("spec.templates: ")
    assert [c["type"] for c in ex["status"]["conditions"]] == ["InvalidSpec"]
    assert canary.manager.metrics.experiment_reconcile_error.labels("default", "example-experiment")._value.get() == 0
    events = [e for e in canary.cluster.list("Event", "default") if e["involvedObject"]["kind"] == "Experiment"]
    assert [e["reason"] for e in events] == ["InvalidSpec"]
    assert experiment_replica_sets(canary, "example-experiment") == {}, "nothing is created"


def test_an_experiment_whose_analysis_only_failed_within_its_limit_does_not_pass_the_canary() -> None:
    """Safety (promotion only on evidence): Argo ends this Experiment Successful — its duration
    passed, its run was terminated with two failures inside failureLimit 5 — and goes on to
    promote. Here the run ended without a successful measurement, so the analysis is Failed,
    the Experiment is Failed and the canary is aborted."""
    lenient = {"experiment": {**EXPERIMENT_STEP["experiment"], "duration": "2m"}}
    scenario = experiment_scenario(lenient)
    template = next(doc for doc in scenario.docs if doc["kind"] == "AnalysisTemplate"
                    and doc["metadata"]["name"] == "experiment-gate")
    template["spec"]["metrics"][0].update(count=10, failureLimit=5)
    try:
        scenario.provider.script("gate", [0.99])  # type: ignore[attr-defined]
        scenario.given_healthy()
        scenario.provider.script("gate", [0.42])  # type: ignore[attr-defined]
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Degraded")
        [ex] = experiments(scenario)
        assert ex["status"]["phase"] == "Failed"
        [run] = ex["status"]["analysisRuns"]
        assert run["phase"] == "Failed" and "ended without evidence" in run["message"], run
        assert "has no successful measurement" in run["message"]
        assert scenario.status["abort"] is True
        assert stable_image(scenario) == OLD_IMAGE
        assert scenario.weights.canary_weights == [0, 20, 0]
        assert 1 <= [m for m, _ in scenario.provider.calls].count("gate") <= 3  # type: ignore[attr-defined]
    finally:
        scenario.close()
