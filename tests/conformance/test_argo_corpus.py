"""The Argo conformance corpus: every file in argo/ is an Argo-shaped Rollout with what it
needs, written from Argo's documented semantics and its public examples (each file names
its source), and says what must happen in annotations on the Rollout:

- `conformance.rollouts/expect-phase`: Healthy | Paused | Degraded, after an update of the
  pod template (the first revision is promoted at once and must be Healthy), or at once
  with `expect-condition: InvalidSpec` (refused: the message names the field path and a
  fix, and says each error lint finds on the Rollout; nothing is created or moved, one
  Warning event);
- `expect-lint`: clean (the default: `rollouts lint` finds nothing) | error | warning;
- `metric-script`: `metric=v1|v2; other=v` fed to the scripted provider (prometheus and
  web), values in YAML, `error` for a backend that does not answer;
- `expect-weight`, `expect-step`: the canary weight and currentStepIndex at the end;
- `expect-message`: a text the InvalidSpec message holds;
- `new-pods-ready: never`: the new revision's pods never become Ready.

Invariants, every file: weights only take step values (w or 100 - w of a setWeight, 0,
100), and each setWeight is in force at some point of an update that is promoted; the new
pods become the stable only when Healthy is expected (never on failing metrics); no
reconcile raises. Adding a file is all a new case takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import lint
from rollouts.spec import manifests
from tests.compat.test_manifests import argo_validator
from tests.conformance.harness import Run, assert_refused

HERE = Path(__file__).parent
FILES = sorted((HERE / "argo").glob("*.yaml"))
PREFIX = "conformance.rollouts/"
PHASES = ("Healthy", "Paused", "Degraded")


@dataclass(frozen=True)
class Case:
    path: Path
    docs: list[dict[str, Any]]
    rollout: dict[str, Any]
    expect: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Case:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
        [rollout] = [d for d in docs if d.get("kind") == "Rollout"]
        annotations = (rollout.get("metadata") or {}).get("annotations") or {}
        expect = {k.removeprefix(PREFIX): str(v) for k, v in annotations.items() if k.startswith(PREFIX)}
        assert expect.get("expect-phase") in PHASES, f"{path.name}: expect-phase must be one of {PHASES}"
        return cls(path, docs, rollout, expect)

    @property
    def script(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for part in filter(None, (p.strip() for p in self.expect.get("metric-script", "").split(";"))):
            metric, _, values = part.partition("=")
            found[metric.strip()] = [RuntimeError("scripted: the backend does not answer") if v.strip() == "error"
                                     else yaml.safe_load(v) for v in values.split("|")]
        return found

    @property
    def set_weights(self) -> set[int]:
        steps = (((self.rollout["spec"].get("strategy") or {}).get("canary") or {}).get("steps")) or []
        return {int(s["setWeight"]) for s in steps if isinstance(s, dict) and "setWeight" in s}

    @property
    def step_weights(self) -> set[int]:
        return {0, 100} | self.set_weights | {100 - w for w in self.set_weights}


CASES = [Case.load(path) for path in FILES]
IDS = [case.path.stem for case in CASES]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert {c.expect["expect-phase"] for c in CASES} == set(PHASES)


ARGO_KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")
ARGO_DOCS = [(case, doc) for case in CASES for doc in case.docs if doc.get("kind") in ARGO_KINDS]


@pytest.mark.parametrize(("case", "doc"), ARGO_DOCS,
                         ids=[f"{c.path.stem}:{d['kind']}/{d['metadata']['name']}" for c, d in ARGO_DOCS])
def test_argo_has_every_field_the_manifest_uses(case: Case, doc: dict[str, Any]) -> None:
    """Argo's own schema (tests/compat/argo_paths) accepts each object: the corpus is Argo's shape."""
    errors = sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                    for e in argo_validator(doc["kind"]).iter_errors(doc))
    assert errors == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_lint(case: Case) -> None:
    findings = lint.lint(manifests.load([str(case.path)]))
    errors = [str(f) for f in findings if f.problem.is_error]
    warnings = [str(f) for f in findings if not f.problem.is_error]
    wanted = case.expect.get("expect-lint", "clean")
    if wanted == "clean":
        assert errors == [] and warnings == []
    elif wanted == "error":
        assert errors
    else:
        assert errors == [] and warnings


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_to_the_documented_phase(case: Case) -> None:
    run = Run(case.docs, script=case.script).given()
    if case.expect.get("expect-condition") == "InvalidSpec":
        run.run_until(lambda: run.condition("InvalidSpec") is not None, max_seconds=600)
        assert_refused(run, None)
        message = (run.condition("InvalidSpec") or {})["message"]
        assert case.expect.get("expect-message", "") in message
        rollout_errors = [f.problem for f in lint.lint(manifests.load([str(case.path)]))
                          if f.problem.is_error and f.subject.startswith("Rollout/")]
        assert all(f"{problem.path}: {problem.message}" in message for problem in rollout_errors), message
        return
    run.until_phase("Healthy", "Degraded")
    assert run.phase == "Healthy" and run.condition("InvalidSpec") is None, run.status
    first = run.status["stableRS"]
    if case.expect.get("new-pods-ready") == "never":
        assert run.cluster.workloads is not None
        run.cluster.workloads.ready_delay = timedelta(days=365)  # type: ignore[attr-defined]
    run.new_image()
    wanted = case.expect["expect-phase"]
    run.run_until(lambda: run.status.get("currentPodHash") not in (None, first)
                  and run.phase in {wanted, "Healthy", "Degraded"}, max_seconds=12 * 3600)
    if wanted == "Paused":
        run.run_for(3600)  # an indefinite pause (or an inconclusive run) stays paused
    assert run.phase == wanted, (run.phases, run.status)
    new = run.status["currentPodHash"]
    if wanted == "Healthy":
        assert run.status["stableRS"] == new
    else:
        assert run.status["stableRS"] == first and new not in run.stable_history  # never promoted
    if wanted == "Degraded":
        progressing = run.condition("Progressing") or {}
        assert progressing.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"), run.status
    for name, history in run.vs_history.items():
        seen = {w for snapshot in history for *_, w in snapshot}
        assert seen <= case.step_weights, (name, history)
        if wanted == "Healthy":  # every step ran: each setWeight was in force on the VirtualService
            assert case.set_weights <= seen, (name, history)
    if "expect-weight" in case.expect:
        assert run.status["canary"]["weights"]["canary"]["weight"] == int(case.expect["expect-weight"])
    if "expect-step" in case.expect:
        assert run.status["currentStepIndex"] == int(case.expect["expect-step"])
    assert run.reconcile_errors() == 0
