"""The step list of a canary, pure: its hash, the weight and scale in force at a step, pauses.

Rules (Argo Rollouts, argo-rollouts.md §1.3):
- The step list's hash is `status.currentStepHash`; a new hash restarts at step 0.
- Weight in force at step i = the last `setWeight` at or before i (0 if none); after the
  last step it is 100. A `setCanaryScale` stays in force for later steps until a
  `matchTrafficWeight: true` one (walking back from step i).
- `pause_seconds` is a pause step's duration in seconds (None: until promoted).
- `step_problems` is what no pass can run at all (no kind, two kinds but setCanaryScale
  with one other, a kind not run, a duration that does not parse); the full checks live in
  spec.validation. A setCanaryScale beside another kind is in force from that step on.
- A leaf: the step list only, no pass state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from analysis.model import DurationError, parse_duration
from rollouts.platform.labels import short_hash
from rollouts.spec.model import CanaryStep, SetCanaryScale, StepKind
from rollouts.spec.problems import Problem, not_run_problem


def step_hash(steps: Sequence[CanaryStep]) -> str:
    return short_hash([step.dump() for step in steps])


def set_weight_at(steps: Sequence[CanaryStep], index: int) -> int:
    if index >= len(steps):
        return 100
    return next((s.set_weight for s in reversed(steps[: index + 1]) if s.set_weight is not None), 0)


def previous_set_weight(steps: Sequence[CanaryStep], index: int) -> int:
    """The weight of the last setWeight strictly before step `index` (0 if none)."""
    return next((s.set_weight for s in reversed(steps[: min(index, len(steps))]) if s.set_weight is not None), 0)


def canary_scale_at(steps: Sequence[CanaryStep], index: int) -> SetCanaryScale | None:
    for step in reversed(steps[: index + 1] if index < len(steps) else []):
        if step.set_canary_scale is not None:
            return None if step.set_canary_scale.match_traffic_weight else step.set_canary_scale
    return None


def pause_seconds(step: CanaryStep) -> int | None:
    """Seconds of a pause step; None = until promoted. Raises DurationError."""
    if step.pause is None or step.pause.duration is None:
        return None
    return parse_duration(step.pause.duration)


def describe(step: CanaryStep) -> str:
    """`setWeight: 50`, `pause: 10m`, `pause`, `analysis: success-rate`, ..."""
    kind = step.kind
    if kind is StepKind.SET_WEIGHT:
        return f"setWeight: {step.set_weight}"
    if kind is StepKind.PAUSE:
        duration = step.pause.duration if step.pause else None
        return "pause" if duration is None else f"pause: {duration}"
    if kind is StepKind.ANALYSIS and step.analysis is not None:
        return "analysis: " + ",".join(t.template_name for t in step.analysis.templates or [])
    scale = step.set_canary_scale.dump() if step.set_canary_scale else {}
    return f"{kind or 'step'}: {json.dumps(scale, sort_keys=True)}" if scale else str(kind or "step")


def step_problems(steps: Sequence[CanaryStep]) -> list[Problem]:
    """What the engine cannot run at all (the full checks live in rollouts.spec.validation)."""
    found: list[Problem] = []
    for index, step in enumerate(steps):
        path = f"spec.strategy.canary.steps[{index}]"
        kind = step.kind
        if (problem := not_run_problem(step, path)) is not None:
            found.append(problem)
        elif kind is None:
            found.append(Problem(path, f"a step must set exactly one kind, found {step.kinds() or 'none'}",
                                 "use one of setWeight, pause, analysis, setCanaryScale, or setCanaryScale "
                                 "with one other"))
        elif kind is StepKind.PAUSE:
            try:
                pause_seconds(step)
            except DurationError as err:
                found.append(Problem(f"{path}.pause.duration", str(err), "use seconds (30) or 30s, 10m, 1h"))
    return found
