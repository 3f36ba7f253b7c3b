"""One rule, one place: every file of the lint corpus gives the same field path, message and fix
from `rollouts lint` as from the controller.

Each bad manifest is applied to an InMemoryCluster and both controllers run over it on a
stepped clock. Every error lint reports must then appear, word for word:
- for a Rollout: in its InvalidSpec condition (`path: message (fix)`);
- for an AnalysisTemplate: in the InvalidSpec condition of a Rollout that uses it, as
  `templateName: AnalysisTemplate 'name' is invalid: path: message (fix)`;
- for an AnalysisRun: in the run's Error message (`Analysis spec invalid: path: message (fix)`);
- for an Experiment: in its status message (phase Error, the InvalidSpec condition).
The few files no controller ever sees (not YAML, no kind, no name, a kind or apiVersion the
API server does not serve) are listed by name: the API server refuses them before any
controller could.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analysis.providers import Providers
from rollouts.cli import lint
from rollouts.controller.manager import Manager
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.spec import manifests

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad").glob("*.yaml"))
BEFORE_ANY_CONTROLLER = {"yaml-syntax", "missing-kind", "not-a-mapping", "unknown-kind", "wrong-api-version",
                         "missing-name"}
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun", "Experiment")
APPLIED = (*KINDS, "VirtualService", "DestinationRule", "Service")
USER = {  # a Rollout that uses a template under test (its problems become this Rollout's InvalidSpec)
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "user", "namespace": "default"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "user"}},
             "template": {"metadata": {"labels": {"app": "user"}},
                          "spec": {"containers": [{"name": "app", "image": "app:v1"}]}},
             "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}},
}


def controller_messages(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Apply `docs`, run both controllers for a minute, and return what each object says:
    a Rollout's InvalidSpec message, an AnalysisRun's status message."""
    clock = SteppedClock(datetime(2024, 1, 1, tzinfo=UTC))
    cluster = InMemoryCluster(clock=clock.now)
    for doc in docs:
        placed = copy.deepcopy(doc)
        if placed.get("kind") != "ClusterAnalysisTemplate":
            placed.setdefault("metadata", {})["namespace"] = "default"
        cluster.create(placed)
    Manager(cluster, Providers({}), clock=clock, leader_election=False).run_for(60)
    said: dict[str, str] = {}
    for rollout in cluster.list("Rollout", "default"):
        [condition] = [c for c in rollout["status"]["conditions"] if c["type"] == "InvalidSpec"]
        said[f"Rollout/{rollout['metadata']['name']}"] = condition["message"]
    for ex in cluster.list("Experiment", "default"):
        said[f"Experiment/{ex['metadata']['name']}"] = (ex.get("status") or {}).get("message", "")
    for run in cluster.list("AnalysisRun", "default"):
        said[f"AnalysisRun/{run['metadata']['name']}"] = (run.get("status") or {}).get("message", "")
    return said


def with_a_user(template: dict[str, Any]) -> dict[str, Any]:
    user = copy.deepcopy(USER)
    ref: dict[str, Any] = {"templateName": template["metadata"]["name"]}
    if template["kind"] == "ClusterAnalysisTemplate":
        ref["clusterScope"] = True
    args = [{"name": arg["name"], "value": "x"} for arg in (template.get("spec") or {}).get("args") or []
            if isinstance(arg, dict) and "name" in arg]
    user["spec"]["strategy"]["canary"]["analysis"] = {"templates": [ref], **({"args": args} if args else {})}
    return user


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_lint_and_the_controller_say_the_same_path_message_and_fix(path: Path) -> None:
    loaded = manifests.load([str(path)])
    errors = [f for f in lint.lint(loaded) if f.problem.is_error]
    assert errors, "every file of the corpus has an error"
    if path.stem in BEFORE_ANY_CONTROLLER:
        assert all(f.subject.split("/")[0] not in KINDS or f.problem.path in ("apiVersion", "kind", "metadata.name")
                   for f in errors)
        return
    docs = [d.data for d in loaded.documents if isinstance(d.data, dict) and d.data.get("kind") in APPLIED]
    templates = [d for d in docs if d["kind"] in ("AnalysisTemplate", "ClusterAnalysisTemplate")]
    users = [with_a_user(t) for t in templates] if not any(d["kind"] == "Rollout" for d in docs) else []
    said = controller_messages(docs + users)
    for finding in errors:
        kind, _, name = finding.subject.partition("/")
        problem = finding.problem
        if kind in ("Rollout", "Experiment"):
            assert str(problem) in said[finding.subject], (str(problem), said)
        elif kind == "AnalysisRun":  # a generateName (`web-*`) is given a name by the API server
            [run] = [s for s in said if s.startswith(finding.subject.rstrip("*"))]
            assert f"Analysis spec invalid: {problem}" in said[run], (str(problem), said)
        else:
            quoted = f"{kind} '{name}' is invalid: {problem.path}: {problem.message} ({problem.fix})"
            owner = "Rollout/user" if users else next(s for s in said if s.startswith("Rollout/"))
            assert quoted in said[owner], (quoted, said)


def test_the_files_no_controller_sees_are_exactly_those_the_api_server_refuses() -> None:
    stems = {p.stem for p in BAD}
    assert stems >= BEFORE_ANY_CONTROLLER
    for stem in sorted(stems - BEFORE_ANY_CONTROLLER):
        loaded = manifests.load([str(HERE / "bad" / f"{stem}.yaml")])
        assert any(isinstance(d.data, dict) and d.data.get("kind") in KINDS for d in loaded.documents), stem
