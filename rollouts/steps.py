"""The canary step engine: where a Rollout is in its steps, and its AnalysisRuns.

Rules (Argo Rollouts, argo-rollouts.md §1.3, §3.8):
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
- AnalysisRuns are named `<rollout>-<podhash>-<revision>` (background) and
  `<rollout>-<podhash>-<revision>-<stepIndex>` (step), with `.1`, `.2`... when a new run
  is needed for the same name (after an inconclusive pause is resumed, after a retry).
  A run recorded in status is the run; else the newest same-name run that is not
  terminated and not Failed/Error/Inconclusive is adopted (a create whose status write
  was lost); else the next free name is created.
- Pure: templates are given by the caller; nothing here reads a clock or the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analysis import args as arguments
from analysis.build import SpecError, build_run
from analysis.model import AnalysisPhase, AnalysisTemplate, DurationError, TemplateRef, parse_duration
from rollouts.actions import NORMAL, Event
from rollouts.model import CanaryStep, PauseCondition, Rollout, RolloutAnalysis, SetCanaryScale, StepKind
from rollouts.problems import Problem
from rollouts.replicas import HASH_LABEL, REVISION, owner_reference, short_hash

CANARY_PAUSE_STEP = "CanaryPauseStep"
INCONCLUSIVE_PAUSE = "InconclusiveAnalysisRun"
STEP_RUN, BACKGROUND_RUN = "Step", "Background"
BAD_PHASES = frozenset({AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE})


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


def step_problems(steps: Sequence[CanaryStep]) -> list[Problem]:
    """What the engine cannot run at all (the full checks live in rollouts.validation)."""
    found: list[Problem] = []
    for index, step in enumerate(steps):
        path = f"spec.strategy.canary.steps[{index}]"
        if step.kind is None:
            found.append(Problem(path, f"a step must set exactly one kind, found {step.kinds() or 'none'}",
                                 "use one of setWeight, pause, analysis, setCanaryScale"))
        elif step.kind is StepKind.PAUSE:
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
    done = Event(NORMAL, "RolloutResumed", f"Rollout is resumed (pause of {step.pause.duration if step.pause else seconds} ended)")
    return PauseOutcome(others, bool(others), True, None, (done,))


# ---------------------------------------------------------------- analysis runs


def run_base_name(rollout_name: str, pod_hash: str, revision: int, step_index: int | None) -> str:
    base = f"{rollout_name}-{pod_hash}-{revision}"
    return base if step_index is None else f"{base}-{step_index}"


def _suffix(name: str, base: str) -> int | None:
    if name == base:
        return 0
    tail = name[len(base) + 1:]
    return int(tail) if name.startswith(base + ".") and tail.isdigit() else None


def run_phase(doc: Mapping[str, Any]) -> AnalysisPhase:
    phase = (doc.get("status") or {}).get("phase")
    return AnalysisPhase(phase) if phase in AnalysisPhase._value2member_map_ else AnalysisPhase.PENDING


def is_terminated(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("spec") or {}).get("terminate"))


def pick_run(runs: Sequence[Mapping[str, Any]], *, base: str,
             recorded: str | None) -> tuple[Mapping[str, Any] | None, str]:
    """(the run to follow, or None) and the name to create when it is None."""
    family = {str(r["metadata"]["name"]): r for r in runs if _suffix(str(r["metadata"]["name"]), base) is not None}
    if recorded is not None and _suffix(recorded, base) is not None:
        return family.get(recorded), recorded
    live = [n for n, r in family.items() if not is_terminated(r) and run_phase(r) not in BAD_PHASES]
    if live:
        newest = max(live, key=lambda n: _suffix(n, base) or 0)
        return family[newest], newest
    if not family:
        return None, base
    return None, f"{base}.{max(_suffix(n, base) or 0 for n in family) + 1}"


def verdict(doc: Mapping[str, Any]) -> str:
    """The run's message, or one built from its metric results (metric, phase, last value)."""
    status = doc.get("status") or {}
    if status.get("message"):
        return str(status["message"])
    phase = run_phase(doc)
    for result in status.get("metricResults") or []:
        if result.get("phase") == phase:
            last = (result.get("measurements") or [{}])[-1]
            detail = f": {result['message']}" if result.get("message") else ""
            value = f" (last value {last['value']})" if last.get("value") is not None else ""
            return f'Metric "{result.get("name")}" assessed {phase}{detail}{value}'
    return f"AnalysisRun phase {phase}"


@dataclass(frozen=True)
class RunRequest:
    kind: str  # STEP_RUN | BACKGROUND_RUN
    name: str
    analysis: RolloutAnalysis
    step_index: int | None
    pod_hash: str
    stable_hash: str | None
    revision: int


def build_run_doc(rollout: Rollout, request: RunRequest, templates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The AnalysisRun document (raises analysis.build.SpecError / analysis.args.ArgError)."""
    loaded = [AnalysisTemplate.load(doc) for doc in templates]

    def resolve(ref: TemplateRef) -> AnalysisTemplate:
        kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
        for template in loaded:
            if template.kind == kind and template.metadata.name == ref.template_name:
                return template
        raise SpecError(f"{kind} {ref.template_name!r} not found; create it or fix templateName")

    meta = rollout.metadata
    analysis = request.analysis
    selector = (rollout.spec.selector.match_labels if rollout.spec.selector else None) or {}
    labels = {**selector, HASH_LABEL: request.pod_hash, "rollout-type": request.kind}
    if request.step_index is not None:
        labels["step-index"] = str(request.step_index)
    extra = analysis.analysis_run_metadata
    args = arguments.resolve_rollout_args(analysis.args, rollout.dump(), stable_hash=request.stable_hash,
                                          latest_hash=request.pod_hash)
    run = build_run(
        name=request.name, namespace=str(meta.namespace or "default"),
        templates=[resolve(ref) for ref in analysis.templates or []], args=args,
        labels={**((extra.labels if extra else None) or {}), **labels},
        annotations={**((extra.annotations if extra else None) or {}), REVISION: str(request.revision)},
        owner=owner_reference(rollout),
        dry_run=analysis.dry_run or (), measurement_retention=analysis.measurement_retention or (),
        resolve_ref=resolve,
    )
    return run.model_dump(mode="json", by_alias=True, exclude_none=True)
