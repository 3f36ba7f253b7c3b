"""The canary step engine: where a Rollout is in its steps, and its pause steps.

Rules (Argo Rollouts, argo-rollouts.md §1.3):
- `status.currentStepIndex` is the step being worked on; `len(steps)` means all done.
  The step list's hash is `status.currentStepHash`; a new hash restarts at step 0.
- Weight in force at step i = the last `setWeight` at or before i (0 if none); after the
  last step it is 100. A `setCanaryScale` stays in force for later steps until a
  `matchTrafficWeight: true` one (walking back from step i).
- `pause: {duration: D}`: entering the step appends `{reason: CanaryPauseStep,
  startTime: now}` to `status.pauseConditions` and sets `controllerPause: true`; it ends
  when now >= startTime + D. The start time lives in status, so a restarted controller
  resumes the same timer. `duration: 0` ends at once; no duration waits for promote.
- "Resumed by a human" = `controllerPause: true` with the condition gone.
- Promote, as the CLI must do it (status patches only, Argo's `promote`):
  on a pause (any pauseConditions) -> remove `pauseConditions` (keep `controllerPause`);
  after an inconclusive step analysis -> also `controllerPause: false` and
  `currentStepIndex + 1`; on any other step -> `currentStepIndex + 1`;
  `spec.paused: true` -> `spec.paused: false`; `--full` -> `status.promoteFull: true`.
  Abort -> `status.abort: true`; retry -> `status.abort: false`.
- One plan pass (`follow_pause_step`, `advance`, `promote`, called by rollouts.plan.planner):
  a step is done when its pause ended, its step run succeeded, or (setWeight,
  setCanaryScale) its pods are all available and the router carries its weight; done
  moves `currentStepIndex` by one and emits `RolloutStepCompleted`. Promotion sets
  `stableRS` once past the last step (or on promote --full) with every pod available.
- Pure: nothing here reads a clock or the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from analysis.model import DurationError, parse_duration
from rollouts.platform.actions import NORMAL, Event
from rollouts.spec.model import SUPPORTED_STEPS, CanaryStep, PauseCondition, SetCanaryScale, StepKind
from rollouts.spec.problems import Problem
from rollouts.plan.replicas import short_hash

if TYPE_CHECKING:
    from rollouts.plan.planner import Pass

CANARY_PAUSE_STEP = "CanaryPauseStep"
INCONCLUSIVE_PAUSE = "InconclusiveAnalysisRun"


# ---------------------------------------------------------------- the step list


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


def not_run_problem(step: CanaryStep, path: str) -> Problem | None:
    """A step kind Argo runs and this engine does not: an error, never passed over (it may gate
    the canary, as an experiment's analysis does). The one rule lint and the controller share."""
    kind = step.kind
    if kind is None or kind in SUPPORTED_STEPS:
        return None
    return Problem(f"{path}.{kind.value}", f"the {kind.value} step is not run by this controller",
                   "remove the step, or leave this Rollout to Argo Rollouts "
                   "with its own controller-instance-id label")


def step_problems(steps: Sequence[CanaryStep]) -> list[Problem]:
    """What the engine cannot run at all (the full checks live in rollouts.spec.validation)."""
    found: list[Problem] = []
    for index, step in enumerate(steps):
        path = f"spec.strategy.canary.steps[{index}]"
        kind = step.kind
        if kind is None:
            found.append(Problem(path, f"a step must set exactly one kind, found {step.kinds() or 'none'}",
                                 "use one of setWeight, pause, analysis, setCanaryScale"))
        elif (problem := not_run_problem(step, path)) is not None:
            found.append(problem)
        elif kind is StepKind.PAUSE:
            try:
                pause_seconds(step)
            except DurationError as err:
                found.append(Problem(f"{path}.pause.duration", str(err), "use seconds (30) or 30s, 10m, 1h"))
    return found


# ---------------------------------------------------------------- pause steps


@dataclass(frozen=True)
class PauseOutcome:
    conditions: list[PauseCondition]
    controller_pause: bool
    completed: bool
    wake_at: datetime | None
    events: tuple[Event, ...] = ()


def pause_step(step: CanaryStep, *, conditions: Sequence[PauseCondition], controller_pause: bool,
               now: datetime) -> PauseOutcome:
    """One pass over a pause step: enter it, wait, or complete it."""
    seconds = pause_seconds(step)
    mine = next((c for c in conditions if c.reason == CANARY_PAUSE_STEP), None)
    others = [c for c in conditions if c.reason != CANARY_PAUSE_STEP]
    if mine is None and (controller_pause or seconds == 0):
        resumed = (Event(NORMAL, "RolloutResumed", "Rollout is resumed"),) if controller_pause else ()
        return PauseOutcome(others, bool(others), True, None, resumed)
    if mine is None:
        entered = [*conditions, PauseCondition(reason=CANARY_PAUSE_STEP, start_time=now)]
        wake = None if seconds is None else now + timedelta(seconds=seconds)
        paused = Event(NORMAL, "RolloutPaused", f"Rollout is paused ({CANARY_PAUSE_STEP})")
        return PauseOutcome(entered, True, False, wake, (paused,))
    if seconds is None:
        return PauseOutcome(list(conditions), True, False, None)
    ends = mine.start_time + timedelta(seconds=seconds)
    if now < ends:
        return PauseOutcome(list(conditions), True, False, ends)
    written = step.pause.duration if step.pause else seconds
    done = Event(NORMAL, "RolloutResumed", f"Rollout is resumed (pause of {written} ended)")
    return PauseOutcome(others, bool(others), True, None, (done,))


# ---------------------------------------------------------------- one plan pass


def follow_pause_step(p: Pass) -> None:
    """Enter, wait on or complete the current pause step (not while paused, aborted or promoted)."""
    st, step = p.st, p.step
    if p.ro.spec.paused:
        return
    if step is not None and step.pause is not None and not (p.promoted or p.aborted or st.promote_full):
        outcome = pause_step(step, conditions=st.pause_conditions or [],
                             controller_pause=bool(st.controller_pause), now=p.now)
        st.pause_conditions, st.controller_pause = outcome.conditions, outcome.controller_pause
        p.actions += outcome.events
        p.wake += [outcome.wake_at] if outcome.wake_at else []
        p.step_done = outcome.completed
    if not st.pause_conditions:
        st.pause_conditions = st.controller_pause = None


def advance(p: Pass) -> None:
    """Move to the next step when the current one is done (never in an entering round)."""
    step = p.step
    if p.entering or p.halted or step is None or p.st.promote_full:
        return
    if step.kind in (StepKind.PAUSE, StepKind.ANALYSIS):
        done = p.step_done
    elif step.kind is StepKind.SET_WEIGHT:
        done = p.at_desired and (p.router is None or p.weight == step.set_weight)
    elif step.kind is StepKind.SET_CANARY_SCALE:
        done = p.at_desired
    else:
        done = False  # a kind this engine does not run is InvalidSpec (not_run_problem), never passed over
    if done:
        completed = p.index
        p.st.current_step_index = completed + 1
        if p.st.canary is not None:
            p.st.canary.current_step_analysis_run_status = None
        p.event(NORMAL, "RolloutStepCompleted",
                f"Rollout step {completed + 1}/{len(p.steps)} completed ({describe(step)})")
        p.progress = True


def promote(p: Pass) -> None:
    """Past the last step (or promote --full) with every new pod available: the new stable."""
    st = p.st
    if p.entering or p.halted or p.held or not (st.promote_full or p.index >= len(p.steps)):
        return
    if p.new.available < p.replicas or p.new.replicas != p.replicas:
        return
    st.stable_rs = p.pod_hash
    st.current_step_index = len(p.steps) if p.steps else None
    st.promote_full = st.pause_conditions = st.controller_pause = None
    p.progress = True
