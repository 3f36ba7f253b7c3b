"""Rollout status conditions, replica counts and the phase (the end of every plan pass).

Rules (argo-rollouts.md §1.5, Argo's `CalculateRolloutPhase`, first match wins):
- InvalidSpec -> Degraded "InvalidSpec: ..."; a condition with reason RolloutAborted or
  ProgressDeadlineExceeded -> Degraded "<reason>: <message>"; `spec.paused` -> Paused
  "manually paused"; a step held because an AnalysisRun waits for data (runs.follow), with
  no pause condition but a pause step's -> Progressing with that reason ("... is waiting
  for data: metric ..."); a pause condition -> Paused "<its reason>"; a restart due and not
  finished -> Progressing "rollout is restarting" (Argo says so from the moment
  restartAt is set; a restart scheduled for later is not under way, so not here);
  fewer updated replicas than desired -> Progressing "more replicas need to be
  updated"; updated pods not all available -> "updated replicas are still becoming
  available"; blueGreen not promoted -> "active service cutover pending" (the active
  Service selects other pods) or "waiting for analysis to complete"; basic canary with
  old pods left -> "old replicas are pending termination"; promotion held for analysis
  evidence -> that reason; not fully promoted -> "waiting for all steps to complete";
  else Healthy.
- Counts: of every owned ReplicaSet; blueGreen (Argo's syncRolloutStatusBlueGreen) takes
  ready, available and HPAReplicas from the active ReplicaSet, and `selector` is its
  selector (the Rollout's plus `rollouts-pod-template-hash`), so an HPA scales on them.
- Progressing: False/RolloutAborted while aborted; True/NewReplicaSetAvailable when
  complete; Unknown/RolloutPaused while paused; True/AnalysisWaitingForData while a canary
  AnalysisRun waits for data; True/RolloutResumed on leaving a pause or that wait (so the
  deadline starts afresh);
  True/ReplicaSetUpdated (lastUpdateTime = now) whenever progress is made (step moved,
  pods updated/ready/available went up, new ReplicaSet, promotion); False/
  ProgressDeadlineExceeded when no progress for progressDeadlineSeconds (default 600)
  while progressing. The deadline is not counted while paused, during a pause or
  analysis step (or a blueGreen pre/post-promotion run), while a canary AnalysisRun waits
  for data (inconclusive.hold: a hold, not a stall), while aborted or complete, or
  while an old ReplicaSet waits for its scale-down deadline.
- A condition's lastUpdateTime moves only when its status/reason/message changes (or on
  progress); lastTransitionTime only when its status changes. So a pass that changes
  nothing leaves status byte-for-byte equal.
- `RolloutCompleted` is emitted once, when Completed turns True.
- A Rollout that cannot run as written (spec problems, or a document the models cannot
  load) gets `invalid_status`: its last status with the InvalidSpec condition (the
  problems, each `path: message (fix)`, joined by "; "), phase Degraded
  "InvalidSpec: ...", and nothing else changed: no step, weight or count moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from analysis import assess
from rollouts.plan import hook_checks
from rollouts.plan.replicas import ReplicaSetView, surge_and_unavailable
from rollouts.plan.restarts import restarting
from rollouts.plan.state import Pass, dump_status
from rollouts.platform.actions import NORMAL
from rollouts.platform.labels import HASH_LABEL
from rollouts.spec.model import RolloutCondition, RolloutPhase, RolloutStatus, StepKind
from rollouts.spec.problems import Problem

PROGRESSING, AVAILABLE, COMPLETED = "Progressing", "Available", "Completed"
WAITING_FOR_DATA = "AnalysisWaitingForData"  # Progressing's reason while a run waits for data (inconclusive.hold)
PAUSED, HEALTHY, INVALID_SPEC = "Paused", "Healthy", "InvalidSpec"
DEFAULT_PROGRESS_DEADLINE = 600
_DEGRADING = ("RolloutAborted", "ProgressDeadlineExceeded")


def get(st: RolloutStatus, kind: str) -> RolloutCondition | None:
    return next((c for c in st.conditions or [] if c.type == kind), None)


def put(st: RolloutStatus, now: datetime, kind: str, status: str, reason: str, message: str, *,
        touch: bool = False) -> None:
    conditions = list(st.conditions or [])
    for index, old in enumerate(conditions):
        if old.type != kind:
            continue
        if (old.status, old.reason, old.message) == (status, reason, message) and not touch:
            return
        moved = now if old.status != status else (old.last_transition_time or now)
        conditions[index] = RolloutCondition.load({"type": kind, "status": status, "reason": reason,
                                                   "message": message, "lastUpdateTime": now,
                                                   "lastTransitionTime": moved})
        st.conditions = conditions
        return
    conditions.append(RolloutCondition.load({"type": kind, "status": status, "reason": reason, "message": message,
                                             "lastUpdateTime": now, "lastTransitionTime": now}))
    st.conditions = conditions


def drop(st: RolloutStatus, kind: str) -> None:
    if get(st, kind) is not None:
        st.conditions = [c for c in st.conditions or [] if c.type != kind] or None


dump = dump_status


def problems_message(problems: Sequence[Problem]) -> str:
    return "; ".join(dict.fromkeys(str(problem) for problem in problems))


def invalid_status(status: Mapping[str, Any] | None, problems: Sequence[Problem], *, now: datetime,
                   generation: int | None) -> dict[str, Any]:
    """`status` (a status document, possibly unreadable itself) with InvalidSpec set (see the rules)."""
    try:
        st = RolloutStatus.load(dict(status or {}))
    except ValidationError:
        st = RolloutStatus()  # a status no model reads is written afresh
    message = problems_message(problems)
    put(st, now, INVALID_SPEC, "True", "InvalidSpec", message)
    st.phase, st.message = RolloutPhase.DEGRADED, f"InvalidSpec: {message}"
    if generation is not None:
        st.observed_generation = str(generation)
    return dump(st)


def deadline(p: Pass) -> timedelta:
    seconds = p.ro.spec.progress_deadline_seconds
    return timedelta(seconds=DEFAULT_PROGRESS_DEADLINE if seconds is None else seconds)


def complete(p: Pass) -> bool:
    new = p.view(p.pod_hash)
    return p.promoted and new is not None and new.replicas == p.replicas and new.available >= p.replicas


def counting(p: Pass) -> bool:
    """Whether the progress deadline runs right now."""
    step = p.step
    return not (
        p.aborted or p.ro.spec.paused or p.st.pause_conditions or complete(p)
        or (step is not None and step.kind in (StepKind.PAUSE, StepKind.ANALYSIS, StepKind.EXPERIMENT))
        or any(rs.deadline is not None and rs.replicas > 0 for rs in p.others)
        or _promotion_run_going(p) or _waiting_for_data(p)
        or hook_checks.holding(p.st)  # a webhook gate holds, as a pause does (rollouts.plan.hooks)
    )


def _waiting_for_data(p: Pass) -> bool:
    """A canary AnalysisRun the status follows waits for data (inconclusive.hold): a hold, not a stall."""
    cs = p.st.canary
    refs = (cs.current_step_analysis_run_status, cs.current_background_analysis_run_status) if cs else ()
    names = {ref.name for ref in refs if ref is not None}
    return any(assess.waiting_for_data(doc) for doc in p.runs if (doc.get("metadata") or {}).get("name") in names)


def _promotion_run_going(p: Pass) -> bool:
    """blueGreen: a pre- or post-promotion run is measuring (it counts as an analysis step does)."""
    bg = p.st.blue_green
    refs = (bg.pre_promotion_analysis_run_status, bg.post_promotion_analysis_run_status) if bg else ()
    return any(ref is not None and ref.status in ("", "Pending", "Running") for ref in refs)


def _active(p: Pass) -> ReplicaSetView | None:
    """blueGreen: the ReplicaSet the active Service selects (None for a canary, or before the first switch)."""
    return p.view(p.st.blue_green.active_selector) if p.st.blue_green is not None else None


def _counts(p: Pass) -> tuple[int, int, int, int]:
    new, active = p.view(p.pod_hash), _active(p)
    counted = [active] if active is not None else p.views
    return (sum(rs.created for rs in p.views), new.created if new else 0,
            sum(rs.ready for rs in counted), sum(rs.available for rs in counted))


def counts_progressed(p: Pass) -> bool:
    replicas, updated, ready, available = _counts(p)
    old = p.old
    old_updated = old.updated_replicas or 0
    return (updated != old_updated or replicas - updated < (old.replicas or 0) - old_updated
            or ready > (old.ready_replicas or 0) or available > (old.available_replicas or 0))


def finish(p: Pass) -> None:
    """Counts, conditions, phase and the progress-deadline wake-up for the final status."""
    st, now = p.st, p.now
    progressed = p.progress or counts_progressed(p)
    st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas = _counts(p)
    labels = (p.ro.spec.selector.match_labels if p.ro.spec.selector else None) or {}
    active = _active(p)
    st.hpa_replicas = active.created if active is not None else st.replicas
    if active is not None:  # blueGreen, as Argo counts it: the active ReplicaSet's pods and selector
        labels = {**labels, HASH_LABEL: active.pod_hash}
    st.selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    if p.ro.metadata.generation is not None:
        st.observed_generation = str(p.ro.metadata.generation)
    paused = bool(p.ro.spec.paused or st.pause_conditions)
    _progressing(p, progressed=progressed, paused=paused)
    _, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
    if (st.available_replicas or 0) >= p.replicas - unavailable:
        put(st, now, AVAILABLE, "True", "AvailableReason", "Rollout has minimum availability")
    else:
        put(st, now, AVAILABLE, "False", "AvailableReason", "Rollout does not have minimum availability")
    _completed(p)
    if paused:
        put(st, now, PAUSED, "True", "RolloutPaused", "Rollout is paused")
    else:
        drop(st, PAUSED)
    drop(st, INVALID_SPEC)
    st.phase, st.message = phase(p)
    healthy = st.phase is RolloutPhase.HEALTHY
    put(st, now, HEALTHY, "True" if healthy else "False", "RolloutHealthy",
        "Rollout is healthy" if healthy else "Rollout is not healthy")


def _progressing(p: Pass, *, progressed: bool, paused: bool) -> None:
    st, now = p.st, p.now
    before = get(st, PROGRESSING)
    name = p.new.name
    if p.aborted:
        if before is None or before.reason != "RolloutAborted":
            put(st, now, PROGRESSING, "False", "RolloutAborted", f"Rollout aborted update to revision {p.revision}")
    elif complete(p):
        put(st, now, PROGRESSING, "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
    elif paused:
        put(st, now, PROGRESSING, "Unknown", "RolloutPaused", "Rollout is paused")
    elif _waiting_for_data(p):
        put(st, now, PROGRESSING, "True", WAITING_FOR_DATA, "Rollout holds: an AnalysisRun is waiting for data")
    elif before is not None and before.reason in ("RolloutPaused", WAITING_FOR_DATA):
        put(st, now, PROGRESSING, "True", "RolloutResumed", "Rollout is resumed", touch=True)
    elif progressed or before is None:
        put(st, now, PROGRESSING, "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', touch=True)
    after = get(st, PROGRESSING)
    if after is not None and after.status != "False" and after.last_update_time and counting(p):
        p.wake.append(after.last_update_time + deadline(p))


def _completed(p: Pass) -> None:
    st = p.st
    before = get(st, COMPLETED)
    if complete(p):
        message = f"Rollout completed update to revision {p.revision} ({p.pod_hash})"
        put(st, p.now, COMPLETED, "True", "RolloutCompleted", message)
        if before is None or before.status != "True":
            p.event(NORMAL, "RolloutCompleted", message)
    else:
        put(st, p.now, COMPLETED, "False", "RolloutNotCompleted",
            f"Rollout not completed: update to revision {p.revision} ({p.pod_hash}) in progress")


def phase(p: Pass) -> tuple[RolloutPhase, str | None]:
    st = p.st
    for cond in st.conditions or []:
        if cond.type == INVALID_SPEC and cond.status == "True":
            return RolloutPhase.DEGRADED, f"InvalidSpec: {cond.message}"
    for cond in st.conditions or []:
        if cond.reason in _DEGRADING and cond.status == "False":
            return RolloutPhase.DEGRADED, f"{cond.reason}: {cond.message}"
    if p.ro.spec.paused:
        return RolloutPhase.PAUSED, "manually paused"
    if not p.promoted and p.held and p.index < len(p.steps) and all(
            c.reason == "CanaryPauseStep" for c in st.pause_conditions or []):  # steps.CANARY_PAUSE_STEP
        return RolloutPhase.PROGRESSING, p.held  # mid-steps only an AnalysisRun waiting for data holds
    if st.pause_conditions:
        return RolloutPhase.PAUSED, st.pause_conditions[0].reason
    if restarting(p.ro, st, p.now):
        return RolloutPhase.PROGRESSING, "rollout is restarting"
    if p.gated and not p.promoted:  # a webhook gate holds (rollouts.plan.hooks): say which, and why
        return RolloutPhase.PROGRESSING, p.gated
    new = p.view(p.pod_hash)
    updated = st.updated_replicas or 0
    if updated < p.replicas:
        return RolloutPhase.PROGRESSING, "more replicas need to be updated"
    if (new.available if new else 0) < updated:
        return RolloutPhase.PROGRESSING, "updated replicas are still becoming available"
    if p.ro.blue_green is not None and not p.promoted:  # Argo's blueGreen phase: the switch, then the analysis
        active = st.blue_green.active_selector if st.blue_green else None
        return RolloutPhase.PROGRESSING, ("active service cutover pending" if active != p.pod_hash
                                          else "waiting for analysis to complete")
    if p.router is None and p.ro.blue_green is None and (st.replicas or 0) > updated:
        return RolloutPhase.PROGRESSING, "old replicas are pending termination"
    if not p.promoted and p.held:
        return RolloutPhase.PROGRESSING, p.held
    if not p.promoted:
        return RolloutPhase.PROGRESSING, "waiting for all steps to complete"
    return RolloutPhase.HEALTHY, None
