"""rollouts.plan.validation as the controller uses it: References semantics, Problem values, and
no exception for any input the models accept."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from analysis.model import AnalysisTemplate
from rollouts.cli import lint
from rollouts.plan import validation
from rollouts.spec import manifests
from rollouts.spec.model import Rollout

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "examples" / "istio-canary"


def load(kind: str, directory: Path = ISTIO) -> dict[str, Any]:
    return next(d.data for d in manifests.load([str(directory)]).documents if d.data["kind"] == kind)


def rollout(mutate: Any = None) -> Rollout:
    doc = copy.deepcopy(load("Rollout"))
    if mutate:
        mutate(doc["spec"]["strategy"]["canary"])
    return Rollout.load(doc)


def test_unknown_references_are_skipped_and_known_ones_are_authoritative() -> None:
    assert validation.validate_rollout(rollout()) == []
    [problem] = validation.validate_rollout(rollout(), validation.References(templates={}))
    assert str(problem) == ("spec.strategy.canary.analysis.templates[0].templateName: AnalysisTemplate 'success-rate' "
                            "not found (create it, or use one of: (none))")  # fmt: skip
    template = AnalysisTemplate.load(load("AnalysisTemplate"))
    refs = validation.References(templates={"success-rate": template},
                                 virtual_services={"rollout-vsvc": load("VirtualService")},
                                 services={"canary-svc", "stable-svc"})  # fmt: skip
    [late] = validation.validate_rollout(rollout(), refs)  # its metric fails after the pause: tests/spec/test_timing.py
    assert late.severity is validation.Severity.WARNING and "can fail at the earliest after 15m" in late.message


def test_problem_is_a_value_with_severity() -> None:
    problem = validation.Problem("spec.replicas", "-1 is negative", "use 0 or more")
    assert str(problem) == "spec.replicas: -1 is negative (use 0 or more)"
    assert problem.is_error and problem.severity is validation.Severity.ERROR
    warned = rollout(lambda c: c.update(antiAffinity={"requiredDuringSchedulingIgnoredDuringExecution": {}}))
    problems = validation.validate_rollout(warned)
    assert [p.severity for p in problems] == [validation.Severity.WARNING]
    assert validation.errors(problems) == []
    refused = rollout(lambda c: c["trafficRouting"].update(smi={}))  # a router not run: never passed over
    assert [(p.path, p.severity) for p in validation.validate_rollout(refused)] == [
        ("spec.strategy.canary.trafficRouting.smi", validation.Severity.ERROR)]


def test_missing_args_follow_nested_templates() -> None:
    outer = AnalysisTemplate.load({"metadata": {"name": "outer"}, "spec": {"templates": [{"templateName": "inner"}]}})
    inner = AnalysisTemplate.load({"metadata": {"name": "inner"}, "spec": {
        "args": [{"name": "host"}], "metrics": [{"name": "m", "provider": {"web": {"url": "http://{{args.host}}"}}}]}})
    r = rollout(lambda c: c["analysis"].update(templates=[{"templateName": "outer"}]))
    problems = validation.validate_rollout(r, validation.References(templates={"outer": outer, "inner": inner}))
    assert [str(p) for p in problems] == ["spec.strategy.canary.analysis.args: AnalysisTemplate 'inner' requires arg "
                                          "'host' (add {name: host, value: ...} under args)"]  # fmt: skip


def test_duplicate_metric_across_templates() -> None:
    template = AnalysisTemplate.load(load("AnalysisTemplate"))
    twin = template.model_copy(update={"metadata": template.metadata.model_copy(update={"name": "twin"})})
    r = rollout(lambda c: c["analysis"]["templates"].append({"templateName": "twin"}))
    problems = validation.validate_rollout(r, validation.References(templates={"success-rate": template, "twin": twin}))
    assert [p.message for p in validation.errors(problems)] == [
        "metric 'success-rate' is defined by both 'success-rate' and 'twin'"]


VALUES: list[Any] = [None, "x", "10x", -1, 0, 10**12, True, [], {}, [{}], {"a": 1}, "{{args.x}}"]


def mutations(doc: Any, rng: random.Random, count: int) -> list[Any]:
    """`count` copies of `doc`, each with one random node replaced by an odd value."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            walk(value, (*path, key))

    walk(doc, ())
    out = []
    for _ in range(count):
        path = rng.choice(paths[1:])
        copy_ = copy.deepcopy(doc)
        parent = copy_
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = rng.choice(VALUES)
        out.append(copy_)
    return out


@pytest.mark.parametrize("example", ["istio-canary", "multi-step", "basic-canary"])
def test_lint_never_raises_on_mutated_examples(example: str) -> None:
    rng = random.Random(f"lint-{example}")
    loaded = manifests.load([str(ROOT / "examples" / example)])
    for doc in [d for d in loaded.documents if d.data["kind"] in lint.ARGO_KINDS]:
        for data in mutations(doc.data, rng, 150):
            mutated = manifests.Loaded(files=[doc.file], documents=[manifests.Document(doc.file, 1, data)])
            others = [d for d in loaded.documents if d is not doc]
            mutated.documents.extend(others)
            for finding in lint.lint(mutated):
                assert finding.problem.message and finding.problem.fix


def test_metadata_written_by_the_api_server_is_not_a_problem() -> None:
    doc = copy.deepcopy(load("Rollout"))
    doc["metadata"].update(finalizers=["x"], managedFields=[{"manager": "kubectl"}], selfLink="/x",
                           deletionTimestamp="2024-01-01T00:00:00Z")  # fmt: skip
    doc["status"] = {"phase": "Healthy", "workloadObservedGeneration": "1", "alb": {}}
    assert validation.validate_rollout(Rollout.load(doc)) == []
