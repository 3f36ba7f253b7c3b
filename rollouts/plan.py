"""The Rollout core: plan(observed, now) -> Plan(status, actions, requeue_after). Pure.

Rules (Argo Rollouts' canary, argo-rollouts.md §1.4, §2.3, §3.8, §8):
- Everything is derived from `Observed` (the Rollout with its status, its ReplicaSets,
  AnalysisRuns, AnalysisTemplates, VirtualServices, DestinationRule, Services, and the
  spec problems found by rollouts.validation) and `now`. No clock, network or cluster;
  no memory between calls: status plus cluster objects are the whole state, so a
  restarted controller carries on (a pause ends at its recorded startTime + duration).
- Spec problems -> InvalidSpec condition, phase Degraded, no action but one Warning
  event, requeue in 20 s. Nothing shifts traffic on an invalid spec.
- One pass, in this order (each a small function below): new pod template or step list
  -> restart at step 0 (first deploy: promoted at once, no steps); CLI abort/retry; the
  progress deadline; AnalysisRuns (Failed/Error -> abort, Inconclusive -> pause,
  Successful step run -> step done); the pause step; ReplicaSet scale; Service
  selectors and DestinationRule subsets; VirtualService weights; step advance (one per
  pass); promotion; scale-down of old ReplicaSets after their deadline; runs that are no
  longer wanted are terminated; conditions, counts and the phase.
- Applied to the state it produced (its actions applied, its status written), plan
  reaches a fixed point: no actions and the same status. Events are emitted only on
  transitions, so a pass that changes nothing emits nothing.
- Timestamps are whole seconds, UTC. `requeue_after` is the earliest of the pause end,
  a scale-down deadline, the abort scale-down delay and the progress deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis.args import ArgError
from analysis.build import SpecError
from analysis.model import AnalysisPhase
from rollouts import conditions
from rollouts import steps as engine
from rollouts.actions import NORMAL, WARNING, Action, AnnotateReplicaSet, CreateAnalysisRun, CreateReplicaSet, \
    Event, ScaleReplicaSet, SetServiceSelector, TerminateAnalysisRun
from rollouts.model import CanaryStatus, CanaryStep, CanaryStrategy, PauseCondition, Rollout, RolloutAnalysis, \
    RolloutPhase, RolloutStatus, RunStatusRef, StepKind, TrafficWeights, WeightDestination
from rollouts.problems import Problem
from rollouts.replicas import HASH_LABEL, SCALE_DOWN_DEADLINE, ReplicaSetView, basic_canary_counts, \
    basic_old_scale_down, format_time, new_replicaset, pod_template_hash, replicaset_name, routed_canary_replicas, \
    spec_replicas, surge_and_unavailable
from rollouts.traffic import istio
from rollouts.traffic.router import TrafficRouter, desired_weight, router_for

INVALID_SPEC_REQUEUE = 20.0
DEFAULT_SCALE_DOWN_DELAY = 30


@dataclass(frozen=True)
class Observed:
    rollout: Rollout
    replica_sets: Sequence[Mapping[str, Any]] = ()
    analysis_runs: Sequence[Mapping[str, Any]] = ()
    templates: Sequence[Mapping[str, Any]] = ()  # AnalysisTemplates/ClusterAnalysisTemplates it references
    virtual_services: Sequence[Mapping[str, Any]] = ()
    destination_rule: Mapping[str, Any] | None = None
    services: Sequence[Mapping[str, Any]] = ()
    problems: Sequence[Problem] = ()  # from rollouts.validation


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    actions: tuple[Action, ...]
    requeue_after: float | None


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems


def plan(observed: Observed, now: datetime) -> Plan:
    now = now.astimezone(UTC).replace(microsecond=0)
    p = _Pass.start(observed, now)
    try:
        _check_spec(p)
        _sync_revision(p)
        _sync_abort(p)
        _check_deadline(p)
        _follow_analysis(p)
        _follow_pause_step(p)
        _scale(p)
        selection = _select(p)
        _route(p, selection)
        _advance(p)
        _promote(p)
        _scale_down_old(p, selection)
        _terminate_runs(p)
        conditions.finish(p)
    except _Invalid as invalid:
        return _invalid(observed, now, invalid.problems)
    return p.result()


@dataclass
class _Pass:
    """The working state of one plan() call (never outlives it)."""

    observed: Observed
    now: datetime
    old: RolloutStatus
    st: RolloutStatus
    views: list[ReplicaSetView]
    runs: list[Mapping[str, Any]]
    pod_hash: str
    revision: int
    router: TrafficRouter | None
    actions: list[Action] = field(default_factory=list)
    wake: list[datetime] = field(default_factory=list)
    step_done: bool = False
    progress: bool = False
    at_desired: bool = False
    weight: int | None = None

    @classmethod
    def start(cls, observed: Observed, now: datetime) -> _Pass:
        ro = observed.rollout
        old = ro.status or RolloutStatus()
        st = old.model_copy(deep=True)
        st.canary = st.canary or CanaryStatus()
        views = [ReplicaSetView.of(d) for d in observed.replica_sets if _owned(d, ro)]
        pod_hash = pod_template_hash(ro.spec.template, st.collision_count)
        newest_other = max((v.revision for v in views if v.pod_hash != pod_hash), default=0)
        mine = next((v.revision for v in views if v.pod_hash == pod_hash), 0)
        router = router_for(ro, virtual_services=observed.virtual_services,
                            destination_rule=observed.destination_rule)
        return cls(observed, now, old, st, views, [r for r in observed.analysis_runs if _owned(r, ro)], pod_hash,
                   mine if mine > newest_other else newest_other + 1, router)

    # -- derived facts
    @property
    def ro(self) -> Rollout:
        return self.observed.rollout

    @property
    def canary(self) -> CanaryStrategy:
        return self.ro.canary or CanaryStrategy()

    @property
    def steps(self) -> list[CanaryStep]:
        return self.ro.steps

    @property
    def replicas(self) -> int:
        return spec_replicas(self.ro)

    @property
    def index(self) -> int:
        return self.st.current_step_index or 0

    @property
    def step(self) -> CanaryStep | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    @property
    def promoted(self) -> bool:
        return self.st.stable_rs == self.pod_hash

    @property
    def aborted(self) -> bool:
        return bool(self.st.abort)

    @property
    def halted(self) -> bool:
        """No step may advance and nothing may be promoted."""
        return self.promoted or self.aborted or bool(self.ro.spec.paused) or bool(self.st.pause_conditions)

    def view(self, pod_hash: str | None) -> ReplicaSetView | None:
        return next((v for v in self.views if pod_hash and v.pod_hash == pod_hash), None)

    @property
    def new(self) -> ReplicaSetView:
        """The ReplicaSet of the current template (a zero-sized stand-in before it exists)."""
        return self.view(self.pod_hash) or ReplicaSetView(
            replicaset_name(str(self.ro.metadata.name), self.pod_hash), self.pod_hash, 0, 0, 0, 0, self.revision,
            None, {})

    @property
    def stable(self) -> ReplicaSetView | None:
        """The stable ReplicaSet when it is not the new one."""
        return None if self.promoted else self.view(self.st.stable_rs)

    @property
    def others(self) -> list[ReplicaSetView]:
        return [v for v in self.views if v.pod_hash not in (self.pod_hash, self.st.stable_rs)]

    # -- output
    def event(self, kind: str, reason: str, message: str) -> None:
        self.actions.append(Event(kind, reason, message))

    def scale(self, rs: ReplicaSetView, count: int) -> None:
        if rs.replicas != count:
            way = "up" if count > rs.replicas else "down"
            self.actions.append(ScaleReplicaSet(rs.name, count))
            self.event(NORMAL, "ScalingReplicaSet",
                       f"Scaled {way} ReplicaSet {rs.name} (revision {rs.revision}) from {rs.replicas} to {count}")

    def result(self) -> Plan:
        future = [w for w in self.wake if w > self.now]
        requeue = min(future, default=None)
        return Plan(conditions.dump(self.st), tuple(self.actions),
                    None if requeue is None else (requeue - self.now).total_seconds())


def _owned(doc: Mapping[str, Any], ro: Rollout) -> bool:
    refs = (doc.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Rollout" and r.get("name") == ro.metadata.name for r in refs)


# ---------------------------------------------------------------- the pass, in order


def _check_spec(p: _Pass) -> None:
    problems = [problem for problem in p.observed.problems if problem.is_error]
    if p.ro.canary is None:
        problems.append(Problem("spec.strategy", "only the canary strategy is run by this controller",
                                "set spec.strategy.canary"))
    if p.ro.spec.template is None:
        problems.append(Problem("spec.template", "a pod template is required (workloadRef is not run here)",
                                "inline the pod template in spec.template"))
    problems += engine.step_problems(p.steps)
    names = {(s.get("metadata") or {}).get("name") for s in p.observed.services}
    for key, name in (("canaryService", p.canary.canary_service), ("stableService", p.canary.stable_service)):
        if name and name not in names:
            problems.append(Problem(f"spec.strategy.canary.{key}", f"Service '{name}' not found",
                                    "create the Service, or fix the name"))
    if p.router is not None:
        problems += p.router.problems()
    known = {problem.path for problem in p.observed.problems}
    problems = [pr for pr in problems if pr in p.observed.problems or pr.path not in known]
    if problems:
        raise _Invalid(problems)


def _sync_revision(p: _Pass) -> None:
    st = p.st
    if st.current_pod_hash != p.pod_hash or st.current_step_hash != engine.step_hash(p.steps):
        if st.current_pod_hash is not None:
            what = f"revision {p.revision}" if st.current_pod_hash != p.pod_hash else "new steps"
            p.event(NORMAL, "RolloutUpdated", f"Rollout updated to {what}")
        st.current_pod_hash, st.current_step_hash = p.pod_hash, engine.step_hash(p.steps)
        st.current_step_index = 0 if p.steps else None
        st.pause_conditions = st.controller_pause = st.abort = st.aborted_at = st.promote_full = None
        _forget_runs(st)
        p.progress = True
    if st.stable_rs is None:  # the first deploy is promoted at once, without steps
        st.stable_rs = p.pod_hash
    if p.promoted and p.steps:
        st.current_step_index = len(p.steps)


def _forget_runs(st: RolloutStatus) -> None:
    assert st.canary is not None
    st.canary.current_step_analysis_run_status = None
    st.canary.current_background_analysis_run_status = None


def _sync_abort(p: _Pass) -> None:
    st = p.st
    if p.promoted:
        st.abort = st.aborted_at = None  # nothing left to abort
    elif st.promote_full and not st.abort:
        st.pause_conditions = st.controller_pause = None  # promote --full skips pauses and analysis
    elif st.abort and st.aborted_at is None:
        _abort(p, "")
    elif not st.abort and st.aborted_at is not None:
        st.abort = st.aborted_at = st.pause_conditions = st.controller_pause = None
        _forget_runs(st)
        p.event(NORMAL, "RolloutRetried", f"Rollout retried: update to revision {p.revision} starts from step 1")
        p.progress = True


def _abort(p: _Pass, reason: str) -> None:
    st = p.st
    message = f"Rollout aborted update to revision {p.revision}" + (f": {reason}" if reason else "")
    st.abort, st.aborted_at = True, p.now
    st.current_step_index = 0 if p.steps else None
    st.pause_conditions = st.controller_pause = st.promote_full = None
    conditions.put(st, p.now, conditions.PROGRESSING, "False", "RolloutAborted", message)
    p.event(WARNING, "RolloutAborted", message)


def _check_deadline(p: _Pass) -> None:
    cond = conditions.get(p.st, conditions.PROGRESSING)
    if (cond is None or cond.last_update_time is None or p.progress or conditions.counts_progressed(p)
            or cond.reason in ("ProgressDeadlineExceeded", "RolloutAborted", "RolloutPaused")
            or not conditions.counting(p)):
        return
    if p.now >= cond.last_update_time + conditions.deadline(p):
        message = f'ReplicaSet "{p.new.name}" has timed out progressing.'
        conditions.put(p.st, p.now, conditions.PROGRESSING, "False", "ProgressDeadlineExceeded", message)
        p.event(WARNING, "ProgressDeadlineExceeded", message)
        if p.ro.spec.progress_deadline_abort and not p.promoted:
            _abort(p, message)


def _follow_analysis(p: _Pass) -> None:
    cs = p.st.canary
    assert cs is not None
    if p.promoted or p.aborted or p.st.promote_full:
        _forget_runs(p.st)
        return
    resumed = bool(p.st.controller_pause) and not p.st.pause_conditions
    background = p.canary.analysis
    if background and background.templates and p.index >= (background.starting_step or 0):
        cs.current_background_analysis_run_status = _follow_run(
            p, engine.BACKGROUND_RUN, background, None, cs.current_background_analysis_run_status, resumed)
    else:
        cs.current_background_analysis_run_status = None
    step = p.step
    if step is not None and step.analysis is not None and not p.aborted and not p.ro.spec.paused:
        cs.current_step_analysis_run_status = _follow_run(
            p, engine.STEP_RUN, step.analysis, p.index, cs.current_step_analysis_run_status, resumed)
    else:
        cs.current_step_analysis_run_status = None


def _follow_run(p: _Pass, kind: str, analysis: RolloutAnalysis, step_index: int | None,
                recorded: RunStatusRef | None, resumed: bool) -> RunStatusRef:
    base = engine.run_base_name(str(p.ro.metadata.name), p.pod_hash, p.revision, step_index)
    known = recorded.name if recorded else None
    if recorded and resumed and recorded.status == AnalysisPhase.INCONCLUSIVE:
        known = None  # a human resumed the inconclusive pause: measure again
    doc, name = engine.pick_run(p.runs, base=base, recorded=known)
    if doc is None:
        request = engine.RunRequest(kind, name, analysis, step_index, p.pod_hash, p.st.stable_rs, p.revision)
        try:
            run = engine.build_run_doc(p.ro, request, p.observed.templates)
        except (SpecError, ArgError) as err:
            where = "spec.strategy.canary." + ("analysis" if step_index is None else f"steps[{step_index}].analysis")
            raise _Invalid([Problem(where, str(err), "fix the AnalysisTemplate reference or the args")]) from err
        p.actions.append(CreateAnalysisRun(run))
        p.event(NORMAL, "AnalysisRunCreated", f"Created {kind} AnalysisRun '{name}'")
        return RunStatusRef(name=name, status=AnalysisPhase.PENDING.value)
    phase = engine.run_phase(doc)
    message = engine.verdict(doc) if phase.completed and phase is not AnalysisPhase.SUCCESSFUL else None
    if phase.completed and (recorded is None or (recorded.name, recorded.status) != (name, phase.value)):
        kind_of = WARNING if phase in engine.BAD_PHASES else NORMAL
        p.event(kind_of, f"AnalysisRun{phase.value}", f"{kind} AnalysisRun '{name}' {phase.value}"
                + (f": {message}" if message else ""))
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        label = "Step-based" if kind == engine.STEP_RUN else "Background"
        _abort(p, f"{label} analysis phase {phase.value}: {message}")
    elif phase is AnalysisPhase.INCONCLUSIVE and not resumed and not any(
            c.reason == engine.INCONCLUSIVE_PAUSE for c in p.st.pause_conditions or []):
        p.st.pause_conditions = [*(p.st.pause_conditions or []),
                                 PauseCondition(reason=engine.INCONCLUSIVE_PAUSE, start_time=p.now)]
        p.st.controller_pause = True
        p.event(NORMAL, "RolloutPaused", f"Rollout is paused ({engine.INCONCLUSIVE_PAUSE})")
    elif phase is AnalysisPhase.SUCCESSFUL and kind == engine.STEP_RUN:
        p.step_done = True
    return RunStatusRef(name=name, status=phase.value, message=message)


def _follow_pause_step(p: _Pass) -> None:
    st, step = p.st, p.step
    if p.ro.spec.paused:
        return
    if step is not None and step.pause is not None and not (p.promoted or p.aborted or st.promote_full):
        outcome = engine.pause_step(step, conditions=st.pause_conditions or [],
                                    controller_pause=bool(st.controller_pause), now=p.now)
        st.pause_conditions, st.controller_pause = outcome.conditions, outcome.controller_pause
        p.actions += outcome.events
        p.wake += [outcome.wake_at] if outcome.wake_at else []
        p.step_done = outcome.completed
    if not st.pause_conditions:
        st.pause_conditions = st.controller_pause = None


def _scale(p: _Pass) -> None:
    new, stable = p.new, p.stable
    new_target, stable_target = _routed_targets(p) if p.router else _basic_targets(p)
    if p.view(p.pod_hash) is None:
        doc = new_replicaset(p.ro, pod_hash=p.pod_hash, revision=p.revision, replicas=new_target)
        p.actions.append(CreateReplicaSet(doc))
        p.event(NORMAL, "NewReplicaSetCreated",
                f"Created ReplicaSet {new.name} (revision {p.revision}) with size {new_target}")
        p.progress = True
    else:
        fixes = {key: value for key, value in (("rollout.argoproj.io/revision", str(p.revision)),
                                                ("rollout.argoproj.io/desired-replicas", str(p.replicas)))
                 if new.annotations.get(key) != value}
        if fixes:
            p.actions.append(AnnotateReplicaSet(new.name, fixes))
        p.scale(new, new_target)
    if stable is not None:
        p.scale(stable, stable_target)
    if p.router is None:
        _, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
        targets = basic_old_scale_down(replicas=p.replicas, max_unavailable=unavailable, all_sets=p.views,
                                       old=p.others)
        for rs in p.others:
            if rs.name in targets:
                p.scale(rs, targets[rs.name])
    stable_ok = stable is not None and stable.replicas == stable_target == stable.created
    p.at_desired = new.all_available(new_target) and (stable_ok or (stable is None and p.promoted))
    if p.router is None:
        p.at_desired = p.at_desired and not any(rs.available for rs in p.others)


def _routed_targets(p: _Pass) -> tuple[int, int]:
    replicas, st = p.replicas, p.st
    if p.promoted:
        return replicas, replicas
    if p.aborted:
        delay = p.canary.abort_scale_down_delay_seconds
        delay = DEFAULT_SCALE_DOWN_DELAY if delay is None else delay
        current = p.new.replicas
        if delay == 0 or st.aborted_at is None:
            return current, replicas
        ends = st.aborted_at + timedelta(seconds=delay)
        if p.now >= ends:
            return 0, replicas
        p.wake.append(ends)
        return current, replicas
    if st.promote_full or p.index >= len(p.steps):
        return replicas, replicas
    return routed_canary_replicas(replicas=replicas, weight=engine.set_weight_at(p.steps, p.index),
                                  scale=engine.canary_scale_at(p.steps, p.index),
                                  min_pods=p.canary.min_pods_per_replica_set), replicas


def _basic_targets(p: _Pass) -> tuple[int, int]:
    if p.aborted:
        weight = 0
    elif p.promoted or p.st.promote_full or p.index >= len(p.steps):
        weight = 100
    else:
        weight = engine.set_weight_at(p.steps, p.index)
    surge, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
    return basic_canary_counts(replicas=p.replicas, weight=weight, max_surge=surge, max_unavailable=unavailable,
                               new=p.new, stable=p.stable, others=p.others)


@dataclass(frozen=True)
class _Selection:
    canary: str | None  # the hash the canary side selects after this pass
    stable: str | None
    canary_selected: bool  # every canary-side selector points at the new pods
    referenced: frozenset[str]


def _select(p: _Pass) -> _Selection:
    """Point the stable/canary Services and DestinationRule subsets at their ReplicaSets."""
    stable_target = p.st.stable_rs
    canary_target = stable_target if p.aborted else p.pod_hash
    chosen: dict[str, str | None] = {}
    for role, name, target in (("stable", p.canary.stable_service, stable_target),
                               ("canary", p.canary.canary_service, canary_target)):
        service = next((s for s in p.observed.services if (s.get("metadata") or {}).get("name") == name), None)
        if service is None:
            continue
        current = ((service.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)
        managed = ((service.get("metadata") or {}).get("annotations") or {}).get(istio.MANAGED_BY) == p.ro.metadata.name
        chosen[role] = _gate(p, role, current, target, managed=managed)
        if chosen[role] != current and chosen[role] is not None:
            p.actions.append(SetServiceSelector(str(name), str(chosen[role])))
    rule = p.observed.destination_rule
    targets = p.router.targets() if isinstance(p.router, istio.IstioRouter) else None
    if p.router is not None and rule is not None and targets and targets.canary_subset and targets.stable_subset:
        managed = ((rule.get("metadata") or {}).get("annotations") or {}).get(istio.MANAGED_BY) == p.ro.metadata.name
        chosen["canary-subset"] = _gate(p, "canary", istio.subset_hash(rule, targets.canary_subset), canary_target,
                                        managed=managed)
        chosen["stable-subset"] = _gate(p, "stable", istio.subset_hash(rule, targets.stable_subset), stable_target,
                                        managed=managed)
        p.actions += p.router.update_hash(canary_hash=chosen["canary-subset"], stable_hash=chosen["stable-subset"])
    canary_side = [value for key, value in chosen.items() if key.startswith("canary")]
    stable_side = [value for key, value in chosen.items() if key.startswith("stable")]
    return _Selection(
        canary=canary_side[0] if canary_side else p.pod_hash,
        stable=stable_side[0] if stable_side else stable_target,
        canary_selected=all(value == p.pod_hash for value in canary_side),
        referenced=frozenset(value for value in chosen.values() if value),
    )


def _gate(p: _Pass, role: str, current: str | None, target: str | None, *, managed: bool) -> str | None:
    """The hash a selector may point at this pass: traffic first leaves a canary, then it moves;
    a selector moves only onto available pods (all of them when adopting an unmanaged one)."""
    if target is None or current == target:
        return current
    recorded = p.old.canary.weights.canary.weight if p.old.canary and p.old.canary.weights else 0
    if role == "canary" and current is not None and recorded > 0 and p.router is not None:
        return current
    rs = p.view(target)
    if rs is None:
        return current
    ready = rs.available > 0 if managed else 0 < rs.replicas <= rs.available
    return target if ready else current


def _route(p: _Pass, selection: _Selection) -> None:
    if p.router is None:
        return
    cs = p.old.canary
    recorded = cs.weights.canary.weight if cs and cs.weights else None
    weight = desired_weight(steps=p.steps, index=p.index, aborted=p.aborted, promoted=p.promoted,
                            promote_full=bool(p.st.promote_full), canary_selected=selection.canary_selected,
                            canary_available=p.new.available, at_desired=p.at_desired, recorded=recorded or 0)
    p.actions += p.router.set_weight(weight)
    if weight != (recorded or 0):
        p.event(NORMAL, "TrafficWeightUpdated", f"Traffic weight updated from {recorded or 0} to {weight}")
    assert p.st.canary is not None
    p.st.canary.weights = TrafficWeights(
        canary=WeightDestination(weight=weight, service_name=p.canary.canary_service,
                                 pod_template_hash=selection.canary),
        stable=WeightDestination(weight=100 - weight, service_name=p.canary.stable_service,
                                 pod_template_hash=selection.stable))
    p.weight = weight


def _advance(p: _Pass) -> None:
    step = p.step
    if p.halted or step is None or p.st.promote_full:
        return
    if step.kind in (StepKind.PAUSE, StepKind.ANALYSIS):
        done = p.step_done
    elif step.kind is StepKind.SET_WEIGHT:
        done = p.at_desired and (p.router is None or p.weight == step.set_weight)
    elif step.kind is StepKind.SET_CANARY_SCALE:
        done = p.at_desired
    else:
        done = True  # kinds this controller does not run are passed over (lint warns)
    if done:
        completed = p.index
        p.st.current_step_index = completed + 1
        if p.st.canary is not None:
            p.st.canary.current_step_analysis_run_status = None
        p.event(NORMAL, "RolloutStepCompleted",
                f"Rollout step {completed + 1}/{len(p.steps)} completed ({engine.describe(step)})")
        p.progress = True


def _promote(p: _Pass) -> None:
    st = p.st
    if p.halted or not (st.promote_full or p.index >= len(p.steps)):
        return
    if p.new.available < p.replicas or p.new.replicas != p.replicas:
        return
    st.stable_rs = p.pod_hash
    st.current_step_index = len(p.steps) if p.steps else None
    st.promote_full = st.pause_conditions = st.controller_pause = None
    p.progress = True


def _scale_down_old(p: _Pass, selection: _Selection) -> None:
    """Old ReplicaSets of a routed canary keep their pods until `scaleDownDelaySeconds`
    after no Service or subset selects them any more (Envoy needs time to follow)."""
    for rs in p.views:
        if rs.pod_hash in (p.pod_hash, p.st.stable_rs):
            if rs.deadline is not None:
                p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: None}))
            continue
        if p.router is None or rs.replicas == 0 or rs.pod_hash in selection.referenced:
            continue
        delay = p.canary.scale_down_delay_seconds
        delay = DEFAULT_SCALE_DOWN_DELAY if delay is None else delay
        if rs.deadline is None and delay > 0:
            ends = p.now + timedelta(seconds=delay)
            p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: format_time(ends)}))
            p.wake.append(ends)
        elif rs.deadline is None or p.now >= rs.deadline:
            p.scale(rs, 0)
        else:
            p.wake.append(rs.deadline)


def _terminate_runs(p: _Pass) -> None:
    cs = p.st.canary
    wanted = set()
    if not p.aborted and not p.promoted and cs is not None:
        wanted = {ref.name for ref in (cs.current_step_analysis_run_status,
                                       cs.current_background_analysis_run_status) if ref}
    for doc in p.runs:
        if engine.is_terminated(doc):
            continue
        labels = (doc.get("metadata") or {}).get("labels") or {}
        mine = p.aborted and labels.get(HASH_LABEL) == p.pod_hash  # a retry must measure again
        if mine or (not engine.run_phase(doc).completed and doc["metadata"]["name"] not in wanted):
            p.actions.append(TerminateAnalysisRun(str(doc["metadata"]["name"])))


def _invalid(observed: Observed, now: datetime, problems: list[Problem]) -> Plan:
    ro = observed.rollout
    st = (ro.status or RolloutStatus()).model_copy(deep=True)
    message = "; ".join(dict.fromkeys(str(problem) for problem in problems))
    before = conditions.get(st, conditions.INVALID_SPEC)
    events: tuple[Action, ...] = ()
    if before is None or before.status != "True" or before.message != message:
        events = (Event(WARNING, "InvalidSpec", message),)
    conditions.put(st, now, conditions.INVALID_SPEC, "True", "InvalidSpec", message)
    st.phase, st.message = RolloutPhase.DEGRADED, f"InvalidSpec: {message}"
    if ro.metadata.generation is not None:
        st.observed_generation = str(ro.metadata.generation)
    return Plan(conditions.dump(st), events, INVALID_SPEC_REQUEUE)
