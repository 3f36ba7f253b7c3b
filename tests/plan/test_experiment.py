"""The pure Experiment state machine (rollouts.plan.experiment): phases, the duration end,
requiredForCompletion, scale-down and terminate, on Argo's cases (experiments/experiment_test.go,
docs/features/experiment.md "Experiment Lifecycle")."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis.model import AnalysisTemplate
from rollouts.plan.experiment import (
    EXPERIMENT_NAME,
    TEMPLATE_NAME,
    ExperimentObserved,
    ExperimentPlan,
    plan_experiment,
    template_hash,
)  # fmt: skip
from rollouts.plan.validation import References, validate_rollout
from rollouts.platform.actions import CreateAnalysisRun, Event, TerminateAnalysisRun, apply_request
from rollouts.platform.labels import HASH_LABEL, SCALE_DOWN_DEADLINE
from rollouts.spec.experiment import Experiment
from rollouts.spec.model import Rollout

T0 = datetime(2024, 1, 1, tzinfo=UTC)

TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "http-benchmark", "namespace": "default"},
    "spec": {"args": [{"name": "host"}],
             "metrics": [{"name": "ok", "count": 1, "successCondition": "result == 1",
                          "provider": {"web": {"url": "http://{{args.host}}/ok"}}}]},
}


def experiment(**spec: Any) -> dict[str, Any]:
    templates = [{"name": name, "replicas": 1, "selector": {"matchLabels": {"app": "demo", "color": name}},
                  "template": {"metadata": {"labels": {"app": "demo", "color": name}},
                               "spec": {"containers": [{"name": "demo", "image": f"demo:{name}"}]}}}
                 for name in ("purple", "orange")]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "example-experiment", "namespace": "default", "uid": "ex-uid"},
            "spec": {"templates": templates, **spec}}


class Sim:
    """The Experiment and the objects its plans create, as an API server and kubelet would keep them."""

    def __init__(self, doc: dict[str, Any], *, pods_start: bool = True) -> None:
        self.doc, self.now = doc, T0
        self.replica_sets: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.pods_start = pods_start
        self.plans: list[ExperimentPlan] = []

    def step(self, seconds: float = 0) -> ExperimentPlan:
        self.now += timedelta(seconds=seconds)
        result = plan_experiment(ExperimentObserved(Experiment.load(self.doc), self.replica_sets, self.runs,
                                                    [TEMPLATE]), self.now)
        for action in result.actions:
            if isinstance(action, Event):
                continue
            request = action.request("default", "example-experiment")
            if request.kind == "ReplicaSet":
                self.replica_sets = apply_request(self.replica_sets, request)
            else:
                self.runs = apply_request(self.runs, request)
        for rs in self.replica_sets:
            count = rs["spec"]["replicas"] if self.pods_start else 0
            rs["status"] = {"replicas": count, "readyReplicas": count, "availableReplicas": count}
        self.doc["status"] = result.status
        self.plans.append(result)
        return result

    def settle(self, *, seconds: float = 0) -> ExperimentPlan:
        """Plan until nothing more happens at this time (then `seconds` later once)."""
        for _ in range(10):
            before = self.status
            result = self.step()
            if not [a for a in result.actions if not isinstance(a, Event)] and self.status == before:
                break
        return self.step(seconds) if seconds else result

    def run_phase(self, name: str, phase: str, message: str | None = None, *, evidence: bool = True) -> None:
        """The run's phase as the analysis controller writes it; a Successful run has a successful
        measurement of each metric unless `evidence` is off."""
        run = next(r for r in self.runs if r["metadata"]["name"] == name)
        run["status"] = {"phase": phase, **({"message": message} if message else {})}
        if phase == "Successful" and evidence:
            run["status"]["metricResults"] = [
                {"name": m["name"], "phase": "Successful", "count": 1, "successful": 1,
                 "measurements": [{"phase": "Successful", "value": "1"}]} for m in run["spec"]["metrics"]]

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.doc.get("status") or {})

    def replicas(self) -> dict[str, int]:
        return {rs["metadata"]["annotations"][TEMPLATE_NAME]: rs["spec"]["replicas"] for rs in self.replica_sets}

    def events(self) -> list[str]:
        return [a.reason for p in self.plans for a in p.actions if isinstance(a, Event)]


def test_templates_become_owned_replicasets_with_their_own_hash_then_running_sets_available_at() -> None:
    sim = Sim(experiment(duration="20m"))
    first = sim.step()
    assert sim.status["phase"] == "Pending"
    [purple, orange] = sim.replica_sets
    assert purple["metadata"]["name"] == "example-experiment-purple"
    assert purple["metadata"]["annotations"] == {EXPERIMENT_NAME: "example-experiment", TEMPLATE_NAME: "purple"}
    assert purple["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment", "name": "example-experiment", "uid": "ex-uid",
        "controller": True, "blockOwnerDeletion": True}
    hashes = {rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] for rs in sim.replica_sets}
    assert len(hashes) == 2, "each template has its own pod-template hash"
    assert purple["spec"]["selector"]["matchLabels"] == {"app": "demo", "color": "purple",
                                                         HASH_LABEL: purple["metadata"]["labels"][HASH_LABEL]}
    assert first.requeue_after == 601.0, "the progress deadline is the next look while pods start"
    sim.step()
    assert sim.status["phase"] == "Running"
    assert sim.status["availableAt"] == "2024-01-01T00:00:00Z"
    assert [t["status"] for t in sim.status["templateStatuses"]] == ["Running", "Running"]
    assert sim.plans[-1].requeue_after == 20 * 60 + 1
    assert orange["metadata"]["name"] == "example-experiment-orange"


def test_the_experiment_hash_differs_from_the_same_pod_template_in_another_experiment_or_template() -> None:
    ex = Experiment.load(experiment())
    same_pods = ex.spec.templates[0].model_copy(update={"name": "other"})
    assert template_hash("example-experiment", ex.spec.templates[0]) != template_hash("example-experiment", same_pods)
    assert template_hash("a", ex.spec.templates[0]) != template_hash("b", ex.spec.templates[0])


def test_duration_end_makes_the_experiment_successful_then_scales_down_after_the_delay() -> None:
    sim = Sim(experiment(duration="20m", scaleDownDelaySeconds=30))
    sim.settle()
    sim.step(20 * 60)
    assert sim.status["phase"] == "Running", "the duration passes strictly after availableAt + 20m"
    sim.step(1)
    assert sim.status["phase"] == "Successful"
    assert [t["status"] for t in sim.status["templateStatuses"]] == ["Successful", "Successful"]
    assert sim.status["conditions"][-1]["reason"] == "ExperimentCompleted"
    # the scale-down waits scaleDownDelaySeconds behind the annotation, then goes to 0
    annotated = sim.step()
    assert sim.replicas() == {"purple": 1, "orange": 1}
    assert all(SCALE_DOWN_DEADLINE in rs["metadata"]["annotations"] for rs in sim.replica_sets)
    assert annotated.requeue_after == 30
    sim.step(30)
    assert sim.replicas() == {"purple": 0, "orange": 0}
    assert sim.status["phase"] == "Successful"
    assert "ExperimentSuccessful" in sim.events()


def test_no_scale_down_delay_scales_to_zero_at_once() -> None:
    sim = Sim(experiment(duration="1m", scaleDownDelaySeconds=0))
    sim.settle(seconds=61)
    sim.step()
    assert sim.replicas() == {"purple": 0, "orange": 0}


def test_analyses_start_once_available_and_a_failed_run_fails_the_experiment_and_ends_it() -> None:
    sim = Sim(experiment(duration="1h", scaleDownDelaySeconds=0, analyses=[
        {"name": "purple", "templateName": "http-benchmark", "args": [{"name": "host", "value": "purple"}]}]))
    sim.step()
    assert sim.runs == [], "no run before every template is available"
    sim.step()
    assert sim.runs == [] and sim.status["availableAt"]
    created = sim.step()
    [run] = sim.runs
    assert [type(a) for a in created.actions if not isinstance(a, Event)] == [CreateAnalysisRun]
    assert run["metadata"]["name"] == "example-experiment-purple"
    assert run["metadata"]["ownerReferences"][0]["kind"] == "Experiment"
    assert run["spec"]["args"] == [{"name": "host", "value": "purple"}]
    assert sim.status["analysisRuns"] == [{"name": "purple", "analysisRun": "example-experiment-purple",
                                           "phase": "Pending"}]
    sim.run_phase("example-experiment-purple", "Running")
    sim.step()
    assert sim.status["phase"] == "Running"
    sim.run_phase("example-experiment-purple", "Failed", 'Metric "ok" assessed Failed')
    sim.step()
    assert sim.status["phase"] == "Failed"
    assert sim.status["message"] == 'Metric "ok" assessed Failed'
    sim.step()
    assert sim.replicas() == {"purple": 0, "orange": 0}, "a failed experiment scales its ReplicaSets down"


def test_required_for_completion_ends_the_experiment_without_a_duration() -> None:
    sim = Sim(experiment(scaleDownDelaySeconds=0, analyses=[
        {"name": "purple", "templateName": "http-benchmark", "args": [{"name": "host", "value": "p"}]},
        {"name": "compare", "templateName": "http-benchmark", "requiredForCompletion": True,
         "args": [{"name": "host", "value": "c"}]}]))
    sim.settle()
    assert len(sim.runs) == 2
    sim.run_phase("example-experiment-purple", "Running")
    sim.run_phase("example-experiment-compare", "Successful")
    result = sim.step()
    assert sim.status["phase"] == "Running", "the other run still measures"
    assert TerminateAnalysisRun("example-experiment-purple") not in result.actions
    result = sim.step()
    # every required run is Successful: terminating, the running one is terminated
    assert TerminateAnalysisRun("example-experiment-purple") in result.actions
    assert sim.replicas() == {"purple": 0, "orange": 0}
    sim.run_phase("example-experiment-purple", "Successful")
    sim.step()
    assert sim.status["phase"] == "Successful"


def test_without_duration_or_required_analysis_it_runs_until_terminated() -> None:
    sim = Sim(experiment(scaleDownDelaySeconds=0))
    sim.settle()
    sim.step(7 * 24 * 3600)
    assert sim.status["phase"] == "Running"
    assert sim.plans[-1].requeue_after is None
    sim.doc["spec"]["terminate"] = True
    sim.step()
    assert sim.status["phase"] == "Successful", "Argo: a terminated experiment's templates end Successful"
    assert sim.replicas() == {"purple": 0, "orange": 0}


def test_terminate_terminates_running_analysis_runs() -> None:
    sim = Sim(experiment(scaleDownDelaySeconds=0, duration="1h", analyses=[
        {"name": "purple", "templateName": "http-benchmark", "args": [{"name": "host", "value": "p"}]}]))
    sim.settle()
    sim.run_phase("example-experiment-purple", "Running")
    sim.doc["spec"]["terminate"] = True
    result = sim.step()
    assert TerminateAnalysisRun("example-experiment-purple") in result.actions


def test_a_template_that_never_becomes_available_fails_at_its_progress_deadline() -> None:
    sim = Sim(experiment(progressDeadlineSeconds=30, duration="1h"), pods_start=False)
    first = sim.step()
    assert first.requeue_after == 31
    sim.step(30)
    assert sim.status["phase"] == "Pending"
    sim.step(1)
    assert sim.status["phase"] == "Failed"
    assert sim.status["message"] == "Template 'purple' exceeded its progressDeadlineSeconds (30)"
    assert "TemplateFailed" in sim.events()


def test_an_inconclusive_run_makes_the_experiment_inconclusive() -> None:
    sim = Sim(experiment(duration="1h", analyses=[
        {"name": "purple", "templateName": "http-benchmark", "args": [{"name": "host", "value": "p"}]}]))
    sim.settle()
    sim.run_phase("example-experiment-purple", "Inconclusive")
    sim.step()
    assert sim.status["phase"] == "Inconclusive"


def test_a_missing_template_is_an_error_of_that_analysis() -> None:
    sim = Sim(experiment(duration="1h", analyses=[{"name": "x", "templateName": "nope"}]))
    sim.settle()
    assert sim.status["phase"] == "Error"
    assert "AnalysisTemplate 'nope' not found" in sim.status["message"]


def test_experiment_args_resolve_template_hashes_and_replicaset_names() -> None:
    sim = Sim(experiment(duration="1h", analyses=[
        {"name": "purple", "templateName": "http-benchmark",
         "args": [{"name": "host",
                   "value": "{{templates.purple.replicaset.name}}/{{templates.orange.podTemplateHash}}"}]}]))
    sim.settle()
    orange = next(rs for rs in sim.replica_sets if rs["metadata"]["annotations"][TEMPLATE_NAME] == "orange")
    [run] = sim.runs
    assert run["spec"]["args"] == [{"name": "host", "value": f"example-experiment-purple/"
                                    f"{orange['metadata']['labels'][HASH_LABEL]}"}]


@pytest.mark.parametrize(("change", "path"), [
    (lambda s: s["templates"][1].update(name="purple"), "spec.templates[1].name"),
    (lambda s: s["templates"][0].update(selector={}), "spec.templates[0].selector"),
    (lambda s: s.update(duration="1d"), "spec.duration"),
    (lambda s: s["templates"][0].update(weight=5), "spec.templates[0].weight"),
])
def test_an_invalid_experiment_creates_nothing_and_says_where(change: Any, path: str) -> None:
    doc = experiment()
    change(doc["spec"])
    sim = Sim(doc)
    result = sim.step()
    assert sim.replica_sets == [] and sim.runs == []
    assert sim.status["phase"] == "Error" and path in sim.status["message"]
    assert [c["type"] for c in sim.status["conditions"]] == ["InvalidSpec"]
    assert [a.reason for a in result.actions if isinstance(a, Event)] == ["InvalidSpec"]
    again = plan_experiment(ExperimentObserved(Experiment.load(copy.deepcopy(sim.doc))), sim.now)
    assert again.actions == () and again.status == sim.status, "one event, then a fixed point"


# ---------------------------------------------------------------- the canary step's checks (lint and controller)


def rollout_with(step: dict[str, Any]) -> Rollout:
    return Rollout.load({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"experiment": step}]}}}})


STEP = "spec.strategy.canary.steps[1].experiment"


@pytest.mark.parametrize(("step", "path", "message"), [
    ({"templates": []}, f"{STEP}.templates", "the experiment step has no templates"),
    ({"templates": [{"name": "a", "specRef": "stable"}, {"name": "a", "specRef": "canary"}]},
     f"{STEP}.templates[1].name", "template name 'a' is repeated"),
    ({"templates": [{"name": "a", "specRef": "baseline"}]}, f"{STEP}.templates[0].specRef",
     "'baseline' is not stable or canary"),
    ({"templates": [{"name": "a", "specRef": "canary"}], "duration": "1d"}, f"{STEP}.duration", ""),
    ({"templates": [{"name": "a", "specRef": "canary"}], "analyses": [{"name": "x", "templateName": "nope"}]},
     f"{STEP}.analyses[0].templateName", "AnalysisTemplate 'nope' not found"),
    ({"templates": [{"name": "a", "specRef": "canary"}],
      "analyses": [{"name": "x", "templateName": "http-benchmark"}]},
     f"{STEP}.analyses[0].args", "AnalysisTemplate 'http-benchmark' requires arg 'host'"),
    ({"templates": [{"name": "a", "specRef": "canary"}],
      "analyses": [{"name": "x", "templateName": "http-benchmark", "args": [{"name": "host"}]}]},
     f"{STEP}.analyses[0].args[0]", "arg 'host' has no value"),
    ({"templates": [{"name": "a"}]}, f"{STEP}.templates[0].specRef", "field required"),
])
def test_experiment_step_problems_name_the_field(step: dict[str, Any], path: str, message: str) -> None:
    refs = References(templates={"http-benchmark": AnalysisTemplate.load(TEMPLATE)}, cluster_templates={})
    found = [p for p in validate_rollout(rollout_with(step), refs) if p.is_error]
    assert [p.path for p in found] == [path]
    assert message in found[0].message


def test_a_valid_experiment_step_has_no_problems() -> None:
    refs = References(templates={"http-benchmark": AnalysisTemplate.load(TEMPLATE)}, cluster_templates={})
    step = {"duration": "5m", "templates": [{"name": "baseline", "specRef": "stable"},
                                            {"name": "canary", "specRef": "canary"}],
            "analyses": [{"name": "x", "templateName": "http-benchmark",
                          "args": [{"name": "host", "valueFrom": {"podTemplateHashValue": "Latest"}}]}]}
    assert validate_rollout(rollout_with(step), refs) == []
