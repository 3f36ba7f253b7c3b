"""The Argo conformance corpus: every file in argo/ is an Argo-shaped Rollout with what it
needs, written from Argo's documented semantics and its public examples (each file names
its source), and says what must happen in annotations on the Rollout:

- `conformance.rollouts/expect-phase`: Healthy | Paused | Degraded | Progressing (still so
  four hours on: a step that never ends on its own), after an update of the
  pod template (the first revision is promoted at once and must be Healthy), or at once
  with `expect-condition: InvalidSpec` (refused: the message names the field path and a
  fix, and says each error lint finds on the Rollout; nothing is created or moved, one
  Warning event);
- `expect-lint`: clean (the default: `rollouts lint` finds nothing) | error | warning;
- `metric-script`: `metric=v1|v2; other=v` fed to the scripted provider (prometheus and
  web), values in YAML, `error` for a backend that does not answer;
- `expect-weight`, `expect-step`: the canary weight and currentStepIndex at the end;
- `expect-message`: a text the InvalidSpec message holds;
- `new-pods-ready: never`: the new revision's pods never become Ready;
- `actions`: `promote; abort; ...`, done in turn, each once the update is Paused (what a
  human does with `rollouts promote` / `abort`), before the phase is awaited;
- `expect-selectors`: `active=stable; preview=new`, the hash each Service selects at the
  end (`stable`: the first revision, `new`: the update's);
- `expect-old-replicas`, `expect-new-replicas`: `0=4; 660=0`, the first / new revision's
  ReplicaSet replicas that many seconds after the phase is reached;
- `expect-anti-affinity`: preferred | required, the pod anti-affinity of the new pods.

Invariants, every file: weights only take step values (w or 100 - w of a setWeight, 0,
100), and each setWeight is in force at some point of an update that is promoted; the new
pods become the stable only when Healthy is expected (never on failing metrics); no
reconcile raises. blueGreen: the active Service moves to the new pods only once a
pre-promotion run of them is Successful (when there is a prePromotionAnalysis), selects
them at the end of a promoted update and the stable pods at the end of a failed one.
Experiment steps: a revision one of whose Experiments Failed (or Errored) never becomes
the stable; a promoted update without a human ran each experiment step to Successful.
Adding a file is all a new case takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import lint
from rollouts.platform.labels import HASH_LABEL
from rollouts.spec import manifests
from tests.compat.test_manifests import argo_validator
from tests.conformance.harness import Run, assert_refused

HERE = Path(__file__).parent
FILES = sorted((HERE / "argo").glob("*.yaml"))
PREFIX = "conformance.rollouts/"
PHASES = ("Healthy", "Paused", "Degraded", "Progressing")
ENDS = {"Healthy", "Paused", "Degraded"}


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
    def strategy(self) -> dict[str, Any]:
        return dict(self.rollout["spec"].get("strategy") or {})

    @property
    def steps(self) -> list[Any]:
        return list((self.strategy.get("canary") or {}).get("steps") or [])

    @property
    def set_weights(self) -> set[int]:
        return {int(s["setWeight"]) for s in self.steps if isinstance(s, dict) and "setWeight" in s}

    def pairs(self, key: str) -> list[tuple[str, str]]:
        """`a=b; c=d` of annotation `key`, in order."""
        found = [p.partition("=") for p in filter(None, (p.strip() for p in self.expect.get(key, "").split(";")))]
        return [(a.strip(), b.strip()) for a, _, b in found]

    @property
    def step_weights(self) -> set[int]:
        return {0, 100} | self.set_weights | {100 - w for w in self.set_weights}


CASES = [Case.load(path) for path in FILES]
IDS = [case.path.stem for case in CASES]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert {c.expect["expect-phase"] for c in CASES} == set(PHASES)
    blue_green = [c for c in CASES if "blueGreen" in c.strategy]
    experiments = [c for c in CASES if any(isinstance(s, dict) and "experiment" in s for s in c.steps)]
    assert len(blue_green) >= 15 and {c.expect["expect-phase"] for c in blue_green} >= ENDS
    assert len(experiments) >= 10 and {c.expect["expect-phase"] for c in experiments} >= ENDS


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
    for action in filter(None, (a.strip() for a in case.expect.get("actions", "").split(";"))):
        act(run, action, first)
    wanted = case.expect["expect-phase"]
    if wanted == "Progressing":
        run.run_for(4 * 3600)
    else:
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
    hashes = {"stable": first, "new": new}
    for service, which in case.pairs("expect-selectors"):
        assert run.selector(service if "-" in service else service_of(case, service)) == hashes[which], \
            (service, run.selector_history)
    if "expect-anti-affinity" in case.expect:
        anti = ((replica_set(run, new)["spec"]["template"]["spec"].get("affinity") or {}).get("podAntiAffinity"))
        assert list(anti or {}) == [f"{case.expect['expect-anti-affinity']}DuringSchedulingIgnoredDuringExecution"]
    check_replicas(run, case, hashes)
    check_blue_green(run, case, first, new, wanted)
    check_experiments(run, case, new, wanted)
    assert run.reconcile_errors() == 0


def act(run: Run, action: str, first: str) -> None:
    """Wait for the update to pause, then do what a human does; wait until the phase moves."""
    run.run_until(lambda: run.status.get("currentPodHash") not in (None, first) and run.phase == "Paused",
                  max_seconds=12 * 3600)
    assert run.phase == "Paused", (action, run.phases, run.status)
    seen = len(run.phases)
    if action == "promote":
        run.promote()
    elif action == "abort":
        run.abort()
    else:
        raise AssertionError(f"unknown action {action!r}")
    run.run_until(lambda: len(run.phases) > seen, max_seconds=600)


def service_of(case: Case, role: str) -> str:
    return str(case.strategy["blueGreen"][f"{role}Service"])


def replica_set(run: Run, pod_hash: str) -> dict[str, Any]:
    [found] = [rs for rs in run.replica_sets() if rs["metadata"].get("labels", {}).get(HASH_LABEL) == pod_hash]
    return found


def check_replicas(run: Run, case: Case, hashes: dict[str, str]) -> None:
    wanted = sorted((int(at), which, int(n)) for which in ("old", "new")
                    for at, n in case.pairs(f"expect-{which}-replicas"))
    elapsed = 0
    for at, which, replicas in wanted:
        if at > elapsed:
            run.run_for(at - elapsed)
            elapsed = at
        pod_hash = hashes["stable" if which == "old" else "new"]
        assert replica_set(run, pod_hash)["spec"]["replicas"] == replicas, (at, which, run.replica_history)


def check_blue_green(run: Run, case: Case, first: str, new: str, wanted: str) -> None:
    """The active Service switches to the new pods only on a Successful pre-promotion run of
    them (read from the timeline, as written), and ends where the update ended."""
    blue_green = case.strategy.get("blueGreen")
    if blue_green is None:
        return
    active, gated = str(blue_green["activeService"]), "prePromotionAnalysis" in blue_green
    runs: dict[str, Any] = {}
    selected: str | None = None
    for moment in run.timeline:
        if moment.kind == "AnalysisRun":
            runs[moment.name] = moment
        elif moment.kind == "Service" and moment.name == active:
            assert moment.value in (None, first, new), run.selector_history
            if gated and moment.value == new and selected != new:
                passed = [r for r in runs.values() if r.labels.get("rollout-type") == "PrePromotion"
                          and r.labels.get(HASH_LABEL) == new and r.value == "Successful"]
                assert passed, ("the active Service switched before a Successful pre-promotion run", runs)
            selected = moment.value
    if wanted == "Healthy":
        assert run.selector(active) == new
    elif wanted == "Degraded":
        assert run.selector(active) == first == run.status["stableRS"], run.selector_history


def check_experiments(run: Run, case: Case, new: str, wanted: str) -> None:
    """A revision whose Experiment failed is never promoted; a promoted one ran its experiments."""
    mine = [m for m in run.timeline if m.kind == "Experiment" and m.labels.get(HASH_LABEL) == new]
    if any(m.value in ("Failed", "Error") for m in mine):
        assert wanted != "Healthy" and new not in run.stable_history, run.stable_history
    steps = sum(1 for s in case.steps if isinstance(s, dict) and "experiment" in s)
    if wanted == "Healthy" and steps and "actions" not in case.expect:
        assert len({m.name for m in mine if m.value == "Successful"}) == steps, mine
