"""The blueGreen strategy: one round of the plan between the shared checks and the conditions. Pure.

Rules (Argo's docs/features/bluegreen.md, rollout/bluegreen.go, rollout/service.go):
- Roles: the active Service (`activeService`, production traffic) selects the stable pods
  until the switch; the preview Service (`previewService`, optional) selects the new pods
  once the new ReplicaSet has an available pod (not while aborted or `spec.paused`).
  Selectors are `rollouts-pod-template-hash`; status.blueGreen.activeSelector and
  previewSelector are what the Services select after this round.
- Sizes: the stable ReplicaSet keeps `spec.replicas` until it is replaced; the new one
  gets `previewReplicaCount` while the active Service selects another ReplicaSet and the
  preview checkpoint is not passed, else `spec.replicas`. "Ready" = the new ReplicaSet has
  exactly its target, all available; "saturated" = it has `spec.replicas`, all available.
  The new ReplicaSet of an update is created with the pod anti-affinity `antiAffinity`
  asks for against the stable pods (Argo's injected rule: hash In [stableRS], topology
  kubernetes.io/hostname, in the Rollout's namespace).
- prePromotionAnalysis: a run `<rollout>-<hash>-<revision>-pre` (rollout-type
  PrePromotion) once the new ReplicaSet is ready (while an update waits for the switch);
  it must be Successful and evidence (analysis.evidence) before the active Service
  switches. postPromotionAnalysis: `...-post` (PostPromotion) once the active Service
  selects the new pods; it must be Successful and evidence before `stableRS` moves, so
  the previous ReplicaSet keeps its pods until then. Failed/Error (or Successful without
  evidence) -> abort; Inconclusive -> pause InconclusiveAnalysisRun; a human resuming it
  measures again (`.1`, `.2`...).
- Pause (`BlueGreenPause`, `controllerPause: true`): once the new ReplicaSet is ready and
  the pre-promotion run is done, when autoPromotionEnabled is false or
  autoPromotionSeconds > 0, unless fast-tracked (no active selector yet, the active
  Service selects the new pods already, promote --full) or the preview checkpoint is
  passed. The pause is completed: with auto-promotion, at startTime + autoPromotionSeconds
  (or at once with 0 seconds); without, when a human removed the condition (promote:
  `controllerPause` true, no BlueGreenPause condition). A pause added in this round is
  not completed in it.
- Switch (the active Service's selector): while aborted -> back to `stableRS`; otherwise,
  with the new ReplicaSet ready and saturated, to the new pods when fast-tracked, or when
  the pause is completed and the pre-promotion run is done. Never while `spec.paused`.
- Promotion (`stableRS` = the new hash): the first deploy at once; an update once the
  active Service selects the new pods and (promote --full, or) the post-promotion run is
  done, not while aborted.
- Abort: the new ReplicaSet keeps its pods `abortScaleDownDelaySeconds` (default 30)
  after abortedAt, then goes to 0; 0 = never scaled down.
- Older ReplicaSets (neither new nor stable), newest revision first: one a Service still
  selects is left alone; one with pods and no `scale-down-deadline` annotation gets it
  (now + scaleDownDelaySeconds, default 30; 0 = scaled down at once), at most
  scaleDownDelayRevisionLimit of them (unbounded by default) keep their pods until their
  deadline, the rest are scaled to 0 now; past its deadline one goes to 0. Not while
  paused for an inconclusive run. The annotation leaves a ReplicaSet that is new or
  stable again.
- Time is an argument (`p.now`); every wait is a wake-up in `p.wake`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from analysis import evidence
from analysis.args import ArgError
from analysis.build import SpecError
from analysis.model import AnalysisPhase
from rollouts.plan import runs, scaling, transitions
from rollouts.plan.state import Pass
from rollouts.plan.steps import INCONCLUSIVE_PAUSE
from rollouts.platform import wire
from rollouts.platform.actions import NORMAL, AnnotateReplicaSet, CreateAnalysisRun, SetServiceSelector
from rollouts.platform.labels import HASH_LABEL, SCALE_DOWN_DEADLINE
from rollouts.platform.times import format_time
from rollouts.spec.model import (
    BlueGreenStatus,
    BlueGreenStrategy,
    PauseCondition,
    RolloutAnalysis,
    RunStatusRef,
)  # fmt: skip
from rollouts.spec.problems import Problem

BLUE_GREEN_PAUSE = "BlueGreenPause"
PRE, POST = "PrePromotion", "PostPromotion"
DEFAULT_DELAY = scaling.DEFAULT_DELAY
HOSTNAME = "kubernetes.io/hostname"


def run(p: Pass) -> None:
    """One blueGreen round, in the order of the module rules."""
    bg = p.ro.blue_green or BlueGreenStrategy()
    st = p.st.blue_green = p.st.blue_green or BlueGreenStatus()
    active_svc, preview_svc = _service(p, bg.active_service), _service(p, bg.preview_service)
    active = _selector(active_svc)
    new_target = _new_target(p, bg, active)
    scaling.put_sizes(p, new_target, p.replicas, shape=lambda doc: with_anti_affinity(p, bg, doc))
    ready = p.new.all_available(new_target)
    saturated = p.new.all_available(p.replicas)
    if not p.aborted and not p.promoted and not p.st.promote_full:
        st.pre_promotion_analysis_run_status = _follow_run(
            p, PRE, bg.pre_promotion_analysis, st.pre_promotion_analysis_run_status,
            wanted=active is not None and active != p.pod_hash and ready)
    pre_done = _done(p, bg.pre_promotion_analysis, st.pre_promotion_analysis_run_status)
    completed = completed_pause(p, bg)  # judged on the pause as observed, before this round's change
    completed = not _pause(p, bg, active, ready=ready, pre_done=pre_done) and completed
    st.preview_selector = _switch(p, preview_svc, _preview_target(p, preview_svc))
    target = switch_target(p, active, ready=ready and saturated, pre_done=pre_done, completed=completed)
    st.active_selector = active = _switch(p, active_svc, target)
    if not p.aborted and not p.promoted and not p.st.promote_full:
        st.post_promotion_analysis_run_status = _follow_run(
            p, POST, bg.post_promotion_analysis, st.post_promotion_analysis_run_status,
            wanted=active == p.pod_hash and saturated)
    _promote(p, bg, active)
    st.scale_up_preview_check_point = checkpoint(p, bg, pre_done=pre_done, completed=completed)
    _scale_down_old(p, bg, {h for h in (active, st.preview_selector) if h})
    runs.terminate_unwanted(p)
    scaling.collect_old(p)
    runs.collect(p)


# ---------------------------------------------------------------- Services


def _service(p: Pass, name: str | None) -> Mapping[str, Any] | None:
    return next((s for s in p.observed.services if name and wire.text(s, "metadata", "name") == name), None)


def _selector(service: Mapping[str, Any] | None) -> str | None:
    value = wire.text(service, "spec", "selector", HASH_LABEL) if service is not None else None
    return str(value) if value else None


def _switch(p: Pass, service: Mapping[str, Any] | None, target: str | None) -> str | None:
    """Point `service` at `target` (one patch and a SwitchService event); the hash it selects after."""
    current = _selector(service)
    if service is None or target is None or target == current:
        return current
    name = str(wire.text(service, "metadata", "name"))
    p.actions.append(SetServiceSelector(name, target))
    p.event(NORMAL, "SwitchService", f"Switched selector for service '{name}' from '{current or ''}' to '{target}'")
    return target


def _preview_target(p: Pass, preview: Mapping[str, Any] | None) -> str | None:
    if preview is None or p.aborted or p.ro.spec.paused:
        return None
    return p.pod_hash if p.new.available > 0 else None


def switch_target(p: Pass, active: str | None, *, ready: bool, pre_done: bool, completed: bool) -> str | None:
    """The hash the active Service should select after this round (see the rules; None: leave it)."""
    if p.ro.spec.paused:
        return None
    if p.aborted:
        stable = p.view(p.st.stable_rs)
        return p.st.stable_rs if stable is not None and stable.available > 0 else None
    if not ready:
        return None
    if fast_tracked(p, active) or (completed and pre_done):
        return p.pod_hash
    return None


def fast_tracked(p: Pass, active: str | None) -> bool:
    """No pause and no pre-promotion wait: first deploy, already switched, or promote --full."""
    return bool(p.st.promote_full) or active is None or active == p.pod_hash


# ---------------------------------------------------------------- sizes


def _new_target(p: Pass, bg: BlueGreenStrategy, active: str | None) -> int:
    current = p.new.replicas if p.view(p.pod_hash) is not None else 0
    if p.aborted and not p.promoted:
        delay = DEFAULT_DELAY if bg.abort_scale_down_delay_seconds is None else bg.abort_scale_down_delay_seconds
        if delay == 0 or p.st.aborted_at is None:
            return current
        ends = p.st.aborted_at + timedelta(seconds=delay)
        if p.now >= ends:
            return 0
        p.wake.append(ends)
        return current
    if p.promoted or p.st.promote_full or bg.preview_replica_count is None:
        return p.replicas
    if active is None or active == p.pod_hash or p.view(active) is None:
        return p.replicas
    if p.st.blue_green is not None and p.st.blue_green.scale_up_preview_check_point:
        return p.replicas
    return bg.preview_replica_count


def with_anti_affinity(p: Pass, bg: BlueGreenStrategy, doc: dict[str, Any]) -> dict[str, Any]:
    """The new ReplicaSet's document with Argo's injected anti-affinity against the stable pods."""
    anti = bg.anti_affinity
    if anti is None or p.st.stable_rs is None or p.promoted:
        return doc
    doc = json.loads(json.dumps(doc))
    term = {"labelSelector": {"matchExpressions": [{"key": HASH_LABEL, "operator": "In",
                                                     "values": [p.st.stable_rs]}]},
            "namespaces": [str(p.ro.metadata.namespace or "default")], "topologyKey": HOSTNAME}
    pod_spec = doc["spec"]["template"].setdefault("spec", {})
    rules = pod_spec.setdefault("affinity", {}).setdefault("podAntiAffinity", {})
    preferred = anti.preferred_during_scheduling_ignored_during_execution
    if preferred is not None:
        rules.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).append(
            {"weight": preferred.weight, "podAffinityTerm": term})
    else:
        rules.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append(term)
    return doc


def checkpoint(p: Pass, bg: BlueGreenStrategy, *, pre_done: bool, completed: bool) -> bool | None:
    """status.blueGreen.scaleUpPreviewCheckPoint: flips true (once) when the preview pods are all
    available, the pre-promotion run is done and the pause completed; None without previewReplicaCount."""
    if bg.preview_replica_count is None or p.promoted:
        return None
    before = p.st.blue_green.scale_up_preview_check_point if p.st.blue_green else None
    if before:
        return True
    if not (pre_done and completed):
        return None
    return True if p.new.available == bg.preview_replica_count else None


def _scale_down_old(p: Pass, bg: BlueGreenStrategy, selected: set[str]) -> None:
    for rs in p.views:
        if rs.pod_hash in (p.pod_hash, p.st.stable_rs) and rs.deadline is not None:
            p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: None}))
    if any(c.reason == INCONCLUSIVE_PAUSE for c in p.st.pause_conditions or []):
        return
    delay = DEFAULT_DELAY if bg.scale_down_delay_seconds is None else bg.scale_down_delay_seconds
    limit = bg.scale_down_delay_revision_limit
    waiting = 0
    for rs in sorted(p.others, key=lambda r: r.revision, reverse=True):
        if rs.pod_hash in selected or rs.replicas == 0:
            continue
        waiting += 1
        if limit is not None and waiting > limit:
            scaling.scale_to(p, rs, 0)
        elif rs.deadline is None and delay > 0:
            ends = p.now + timedelta(seconds=delay)
            p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: format_time(ends)}))
            p.wake.append(ends)
        elif rs.deadline is None or p.now >= rs.deadline:
            scaling.scale_to(p, rs, 0)
        else:
            p.wake.append(rs.deadline)


# ---------------------------------------------------------------- pause and promotion


def needs_pause(bg: BlueGreenStrategy) -> bool:
    """Argo's needsBlueGreenControllerPause."""
    return bg.auto_promotion_enabled is False or (bg.auto_promotion_seconds or 0) > 0


def completed_pause(p: Pass, bg: BlueGreenStrategy) -> bool:
    """Argo's CompletedBlueGreenPause (see the rules)."""
    if p.st.blue_green is not None and p.st.blue_green.scale_up_preview_check_point:
        return True
    cond = next((c for c in p.st.pause_conditions or [] if c.reason == BLUE_GREEN_PAUSE), None)
    if bg.auto_promotion_enabled is not False:
        seconds = bg.auto_promotion_seconds or 0
        if seconds == 0:
            return True
        return cond is not None and p.now >= cond.start_time + timedelta(seconds=seconds)
    return bool(p.st.controller_pause) and cond is None


def _pause(p: Pass, bg: BlueGreenStrategy, active: str | None, *, ready: bool, pre_done: bool) -> bool:
    """Enter, wait on or leave the BlueGreenPause; True when it was entered in this round."""
    st = p.st
    if p.aborted or not ready or p.ro.spec.paused:
        return False
    cond = next((c for c in st.pause_conditions or [] if c.reason == BLUE_GREEN_PAUSE), None)
    checkpointed = st.blue_green is not None and bool(st.blue_green.scale_up_preview_check_point)
    if fast_tracked(p, active) or checkpointed or not needs_pause(bg):
        _drop_pause(p)
        return False
    if not pre_done:
        return False
    if cond is not None:
        seconds = bg.auto_promotion_seconds or 0
        if completed_pause(p, bg):
            _drop_pause(p)
        elif seconds > 0:
            p.wake.append(cond.start_time + timedelta(seconds=seconds))
        return False
    if st.controller_pause:
        return False  # a human resumed it (promote): the pause is completed
    st.pause_conditions = [*(st.pause_conditions or []), PauseCondition(reason=BLUE_GREEN_PAUSE, start_time=p.now)]
    st.controller_pause = True
    p.event(NORMAL, "RolloutPaused", f"Rollout is paused ({BLUE_GREEN_PAUSE})")
    if (bg.auto_promotion_seconds or 0) > 0 and bg.auto_promotion_enabled is not False:
        p.wake.append(p.now + timedelta(seconds=bg.auto_promotion_seconds or 0))
    return True


def _drop_pause(p: Pass) -> None:
    st = p.st
    if any(c.reason == BLUE_GREEN_PAUSE for c in st.pause_conditions or []):
        st.pause_conditions = [c for c in st.pause_conditions or [] if c.reason != BLUE_GREEN_PAUSE] or None
        p.event(NORMAL, "RolloutResumed", "Rollout is resumed")


def _promote(p: Pass, bg: BlueGreenStrategy, active: str | None) -> None:
    if p.promoted or p.aborted or active != p.pod_hash or p.ro.spec.paused:
        return
    status = p.st.blue_green
    if p.st.promote_full or _done(p, bg.post_promotion_analysis,
                                  status.post_promotion_analysis_run_status if status else None):
        transitions.promote(p)


# ---------------------------------------------------------------- pre/post-promotion runs


def _done(p: Pass, analysis: RolloutAnalysis | None, ref: RunStatusRef | None) -> bool:
    """No such analysis, or its run is Successful and evidence."""
    if analysis is None or not analysis.templates:
        return True
    doc = next((r for r in p.runs if ref is not None and r["metadata"]["name"] == ref.name), None)
    return doc is not None and runs.run_phase(doc) is AnalysisPhase.SUCCESSFUL and evidence.missing(doc) is None


def _follow_run(p: Pass, kind: str, analysis: RolloutAnalysis | None, recorded: RunStatusRef | None, *,
                wanted: bool) -> RunStatusRef | None:
    """Create, read and act on the pre- or post-promotion run (see the rules)."""
    if analysis is None or not analysis.templates or (recorded is None and not wanted):
        return recorded if analysis is not None and analysis.templates else None
    suffix = "pre" if kind == PRE else "post"
    base = f"{runs.run_base_name(str(p.ro.metadata.name), p.pod_hash, p.revision, None)}-{suffix}"
    known = recorded.name if recorded else None
    paused_on_it = any(c.reason == INCONCLUSIVE_PAUSE for c in p.st.pause_conditions or [])
    again = recorded is not None and recorded.status == AnalysisPhase.INCONCLUSIVE and not paused_on_it
    if again:
        known = None  # a human resumed the inconclusive pause: measure again
    doc, name = runs.pick_run(p.runs, base=base, recorded=known, again=again)
    if doc is None:
        request = runs.RunRequest(kind, name, analysis, None, p.pod_hash, p.st.stable_rs, p.revision)
        try:
            created = runs.build_run_doc(p.ro, request, p.observed.templates)
        except (SpecError, ArgError) as err:
            where = f"spec.strategy.blueGreen.{suffix}PromotionAnalysis"
            raise runs.RunSpecError(Problem(where, str(err), "fix the AnalysisTemplate reference or the args")) from err
        p.actions.append(CreateAnalysisRun(created))
        p.event(NORMAL, "AnalysisRunCreated", f"Created {kind} AnalysisRun '{name}'")
        return RunStatusRef(name=name, status=AnalysisPhase.PENDING.value)
    phase = runs.run_phase(doc)
    message = runs.verdict(doc) if phase.completed and phase is not AnalysisPhase.SUCCESSFUL else None
    why = runs.explained(doc) if message is not None else None  # analysis.explain after Argo's head
    if phase.completed and (recorded is None or (recorded.name, recorded.status) != (name, phase.value)):
        p.event("Warning" if phase in runs.BAD_PHASES else NORMAL, f"AnalysisRun{phase.value}",
                f"{kind} AnalysisRun '{name}' {phase.value}" + (f": {why}" if why else ""))
    which = "pre-promotion" if kind == PRE else "post-promotion"
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        transitions.abort(p, f"Blue/green {which} analysis phase {phase.value}: {why}",
                          cause=transitions.AbortCause.ANALYSIS)
    elif phase is AnalysisPhase.INCONCLUSIVE and not paused_on_it and known is not None:
        p.st.pause_conditions = [*(p.st.pause_conditions or []),
                                 PauseCondition(reason=INCONCLUSIVE_PAUSE, start_time=p.now)]
        p.st.controller_pause = True
        p.event(NORMAL, "RolloutPaused", f"Rollout is paused ({INCONCLUSIVE_PAUSE})")
    elif phase is AnalysisPhase.SUCCESSFUL and (lacking := evidence.missing(doc)) is not None:
        transitions.abort(p, f"Blue/green {which} analysis ended without evidence: {lacking}",
                          cause=transitions.AbortCause.ANALYSIS)
    return RunStatusRef(name=name, status=phase.value, message=message)
