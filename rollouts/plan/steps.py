"""The canary step engine: where a Rollout is in its steps, and its pause steps.

Rules (Argo Rollouts, argo-rollouts.md §1.3):
- `status.currentStepIndex` is the step being worked on; `len(steps)` means all done
  (the step list itself, its weights and durations: plan.steplist).
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
  a step is done when its pause ended, its step run or Experiment succeeded, or (setWeight,
  setCanaryScale) its pods are all available and the router carries its weight; done
  moves `currentStepIndex` by one and emits `RolloutStepCompleted`. While an AnalysisRun
  waits for data (`Pass.held`, runs.follow) no step is done: a pause that ends keeps its
  condition until the wait is over, then completes. Promotion sets
  `stableRS` once past the last step (or on promote --full) with every pod available.
- Pure: nothing here reads a clock or the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollouts.plan import transitions
from rollouts.plan.state import Pass
from rollouts.plan.steplist import pause_seconds
from rollouts.platform.actions import NORMAL, Event
from rollouts.spec.model import CanaryStep, PauseCondition, StepKind

CANARY_PAUSE_STEP = "CanaryPauseStep"
INCONCLUSIVE_PAUSE = "InconclusiveAnalysisRun"


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
        if outcome.completed and p.held:  # an AnalysisRun waits for data (runs.follow): the pause ends with the wait
            outcome = PauseOutcome(list(st.pause_conditions or []), bool(st.controller_pause), False, None)
        st.pause_conditions, st.controller_pause = outcome.conditions, outcome.controller_pause
        p.actions += outcome.events
        p.wake += [outcome.wake_at] if outcome.wake_at else []
        p.step_done = outcome.completed
    if not st.pause_conditions:
        st.pause_conditions = st.controller_pause = None


def advance(p: Pass) -> None:
    """Move to the next step when the current one is done (never in an entering round)."""
    step = p.step
    if p.entering or p.halted or p.held or step is None or p.st.promote_full:
        return  # held: an AnalysisRun waits for data (runs.follow), the weight stays
    if step.kind in (StepKind.ANALYSIS, StepKind.EXPERIMENT) and step.set_canary_scale is not None:
        done = p.step_done and p.at_desired  # both parts run (Argo would not wait for the analysis here)
    elif step.kind in (StepKind.PAUSE, StepKind.ANALYSIS, StepKind.EXPERIMENT):
        done = p.step_done
    elif step.kind is StepKind.SET_WEIGHT:
        done = p.at_desired and (p.router is None or p.weight == step.set_weight)
    elif step.kind is StepKind.SET_CANARY_SCALE:
        done = p.at_desired
    else:
        done = False  # a kind this engine does not run is InvalidSpec (not_run_problem), never passed over
    if done:
        transitions.advance(p, step)


def promote(p: Pass) -> None:
    """Past the last step (or promote --full) with every new pod available: the new stable."""
    st = p.st
    if p.entering or p.halted or p.held or not (st.promote_full or p.index >= len(p.steps)):
        return
    if p.new.available < p.replicas or p.new.replicas != p.replicas:
        return
    transitions.promote(p)
