"""The named transitions (plan.transitions), as a table: from one status with every field
set, what each transition leaves, and the event it emits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from rollouts.plan import transitions
from rollouts.plan.state import Observed, Pass
from rollouts.platform.actions import Event
from rollouts.spec.model import CanaryStep, Rollout
from tests.plan.builders import hash_of, rollout

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]
BUSY = {  # a status in the middle of everything
    "currentPodHash": "oldhash", "currentStepHash": "oldsteps", "stableRS": "stablehash",
    "currentStepIndex": 2, "abort": True, "abortedAt": "2024-01-01T11:00:00Z", "controllerPause": True,
    "promoteFull": True, "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T11:30:00Z"}],
    "canary": {"currentStepAnalysisRunStatus": {"name": "step-run", "status": "Running"},
               "currentBackgroundAnalysisRunStatus": {"name": "bg-run", "status": "Running"}},
}
FIELDS = ("currentStepIndex", "abort", "abortedAt", "controllerPause", "promoteFull", "pauseConditions", "stableRS")


def a_pass() -> Pass:
    doc = rollout(steps=STEPS, image="app:v2", status=dict(BUSY))
    return Pass.start(Observed(rollout=Rollout.load(doc)), NOW)


def after(p: Pass) -> dict[str, Any]:
    status = p.st.model_dump(mode="json", by_alias=True, exclude_none=True)
    runs = status.get("canary") or {}
    return {**{key: status.get(key) for key in FIELDS},
            "runs": [key for key in ("currentStepAnalysisRunStatus", "currentBackgroundAnalysisRunStatus")
                     if key in runs]}


ZERO = {"currentStepIndex": 0, "controllerPause": None, "promoteFull": None, "pauseConditions": None}
TABLE: list[tuple[str, Callable[[Pass], None], dict[str, Any], str | None, bool]] = [
    # name, transition, fields after, event reason, progress
    ("restart", transitions.restart,
     {**ZERO, "abort": None, "abortedAt": None, "stableRS": "stablehash", "runs": []}, "RolloutUpdated", True),
    ("abort", lambda p: transitions.abort(p, "analysis failed", cause=transitions.AbortCause.ANALYSIS),
     {**ZERO, "abort": True, "abortedAt": "2024-01-01T12:00:00Z", "stableRS": "stablehash",
      "runs": ["currentStepAnalysisRunStatus", "currentBackgroundAnalysisRunStatus"]}, "RolloutAborted", False),
    ("retry", transitions.retry,
     {**ZERO, "abort": None, "abortedAt": None, "stableRS": "stablehash", "runs": []}, "RolloutRetried", True),
    ("advance", lambda p: transitions.advance(p, CanaryStep.load(STEPS[2])),
     {**{k: BUSY.get(k) for k in FIELDS}, "currentStepIndex": 3, "runs": ["currentBackgroundAnalysisRunStatus"]},
     "RolloutStepCompleted", True),
    ("promote", transitions.promote,
     {**{k: BUSY.get(k) for k in FIELDS}, "currentStepIndex": 3, "promoteFull": None, "pauseConditions": None,
      "controllerPause": None, "stableRS": hash_of("app:v2"),
      "runs": ["currentStepAnalysisRunStatus", "currentBackgroundAnalysisRunStatus"]}, None, True),
]


@pytest.mark.parametrize(("name", "transition", "fields", "reason", "progress"), TABLE, ids=[row[0] for row in TABLE])
def test_each_named_transition_changes_exactly_its_fields(name: str, transition: Callable[[Pass], None],
                                                         fields: dict[str, Any], reason: str | None,
                                                         progress: bool) -> None:
    p = a_pass()
    transition(p)
    assert after(p) == fields
    events = [a.reason for a in p.actions if isinstance(a, Event)]
    assert events == ([reason] if reason else [])
    assert p.progress is progress


def test_abort_names_the_reason_in_the_progressing_condition() -> None:
    p = a_pass()
    transitions.abort(p, "Background analysis phase Failed", cause=transitions.AbortCause.ANALYSIS)
    [cond] = [c for c in p.st.conditions or [] if c.type == "Progressing"]
    assert (cond.status, cond.reason) == ("False", "RolloutAborted")
    assert cond.message.endswith(": Background analysis phase Failed")
