"""A setCanaryScale goes with one other step kind, and both parts run (Argo:
pkg/apis/rollouts/validation/validation.go hasMultipleStepsType, which forbids combining only
setWeight, pause, experiment and analysis; validation_test.go TestHasMultipleStepsType;
utils/replicaset/canary.go UseSetCanaryScale, which reads the scale of any step that has one).
"""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.cli import lint
from rollouts.spec import manifests
from tests.conformance.harness import Run, istio_host_split

TEMPLATE = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "ok"},
            "spec": {"metrics": [{"name": "ok", "count": 2, "interval": "5m", "successCondition": "result >= 0.9",
                                  "provider": {"prometheus": {"address": "http://prom:9090", "query": "up"}}}]}}


def lint_errors(docs: list[dict[str, Any]]) -> list[str]:
    loaded = manifests.Loaded(files=["mem.yaml"], documents=[manifests.Document("mem.yaml", i, d)
                                                             for i, d in enumerate(docs, 1)])
    return [f"{f.problem.path}: {f.problem.message}" for f in lint.lint(loaded) if f.problem.is_error]


def canary_replicas(run: Run) -> int:
    new = run.status["currentPodHash"]
    return next(int(rs["spec"]["replicas"]) for rs in run.replica_sets() if rs["metadata"]["name"].endswith(new))


@pytest.mark.parametrize("other", [{"setWeight": 25}, {"pause": {}}])
def test_has_multiple_steps_type_allows_set_canary_scale_beside(other: dict[str, Any]) -> None:
    docs = istio_host_split("web", {"steps": [{**other, "setCanaryScale": {"replicas": 3}}, {"pause": {}}]})
    assert lint_errors(docs) == []


def test_has_multiple_steps_type_set_weight_and_pause_refused() -> None:
    """TestHasMultipleStepsType: setWeight with pause is InvalidStepMessage."""
    docs = istio_host_split("web", {"steps": [{"setWeight": 25, "pause": {}}]})
    assert lint_errors(docs) == ["spec.strategy.canary.steps[0]: a step sets setWeight and pause"]
    run = Run(docs).given().until_phase("Degraded")
    assert run.condition("InvalidSpec") is not None and run.replica_sets() == []


def test_set_weight_with_set_canary_scale_runs_both_parts() -> None:
    """The step sets 25% of the traffic and 3 canary pods (of 4): both are in force at the pause."""
    docs = istio_host_split("web", {"steps": [{"setWeight": 25, "setCanaryScale": {"replicas": 3}}, {"pause": {}}]})
    run = Run(docs).given().until_phase("Healthy").new_image().until_phase("Paused")
    assert run.status["currentStepIndex"] == 1
    assert run.weight_of("web-vsvc", "web-canary") == 25
    assert canary_replicas(run) == 3
    run.promote().until_phase("Healthy")
    assert run.weight_of("web-vsvc", "web-canary") == 0 and canary_replicas(run) == 4


def test_pause_with_set_canary_scale_scales_while_paused() -> None:
    docs = istio_host_split("web", {"steps": [{"setWeight": 10}, {"pause": {}, "setCanaryScale": {"weight": 50}}]})
    run = Run(docs).given().until_phase("Healthy").new_image().until_phase("Paused")
    assert run.status["currentStepIndex"] == 1
    assert run.weight_of("web-vsvc", "web-canary") == 10
    assert canary_replicas(run) == 2


@pytest.mark.parametrize(("value", "phase", "promoted"), [(0.95, "Healthy", True), (0.5, "Degraded", False)])
def test_analysis_with_set_canary_scale_waits_for_the_analysis(value: float, phase: str, promoted: bool) -> None:
    """Both parts run: the canary is scaled, and the step completes only on a successful
    analysis (a failing one aborts; the scale alone never completes it)."""
    docs = [TEMPLATE, *istio_host_split("web", {"steps": [
        {"setWeight": 20}, {"analysis": {"templates": [{"templateName": "ok"}]}, "setCanaryScale": {"replicas": 2}}]})]
    run = Run(docs, script={"ok": [value]}).given().until_phase("Healthy")
    first = run.status["stableRS"]
    run.new_image().run_for(120)  # the scale is reached at once; the run's second measurement is due at 5m
    if promoted:
        assert run.status["currentStepIndex"] == 1 and canary_replicas(run) == 2
        assert run.weight_of("web-vsvc", "web-canary") == 20
    run.until_phase("Healthy", "Degraded")
    assert run.phase == phase
    assert len(run.cluster.list("AnalysisRun", "default")) == 1
    assert (run.status["stableRS"] != first) is promoted
    assert 2 in run.replica_history[f"web-{run.status['currentPodHash']}"]
