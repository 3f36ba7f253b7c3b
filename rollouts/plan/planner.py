"""The Rollout core: plan(observed, now) -> Plan(status, actions, requeue_after). Pure.

Rules (Argo Rollouts' canary, argo-rollouts.md §1.4, §2.3, §3.8, §8):
- Everything is derived from `Observed` (the Rollout with its status, its ReplicaSets,
  AnalysisRuns, AnalysisTemplates, VirtualServices, DestinationRule, Services, its
  pods while a restart is pending, and the spec problems found by rollouts.spec.validation)
  and `now`. No clock, network or cluster; no memory between calls: status plus
  cluster objects are the whole state, so a restarted controller carries on (a pause
  ends at its recorded startTime + duration).
- Spec problems -> InvalidSpec condition, phase Degraded, no action but one Warning
  event, requeue in 20 s. Nothing shifts traffic on an invalid spec. A Service or
  DestinationRule another existing Rollout manages is a spec problem (rollouts.plan.claims).
- A round, in this order (each a small function below): new pod template or step list
  -> restart at step 0 (first deploy: promoted at once, no steps); CLI abort/retry; the
  progress deadline; pod restarts (`spec.restartAt`, rollouts.plan.restarts); AnalysisRuns
  (Failed/Error -> abort, Inconclusive -> pause, Successful step run -> step done);
  the promotion gate (the background run must be evidence);
  the pause step; ReplicaSet scale; Service
  selectors and DestinationRule subsets; VirtualService weights; step advance (one
  step); promotion; scale-down of old ReplicaSets after their deadline; runs that are no
  longer wanted are terminated; history: old ReplicaSets beyond revisionHistoryLimit
  and completed AnalysisRuns beyond the run history limits are deleted; conditions,
  counts and the phase.
- A plan is one round, and when that round moved the step index or promoted (and did
  not abort), a second, entering round on the objects as the first round's writes
  leave them (rollouts.plan.written): the step reached is entered at once (its pause
  recorded, its AnalysisRun created, its weight set when its pods are available; after
  a promotion the selectors and weight move to the new stable). The entering round
  never completes a step or promotes (every step index is written to status once:
  `get rollout`, restart safety), and it is dropped when it would scale a ReplicaSet
  (the pods start in the next pass, after the step change is written, as Argo scales
  for the step it read: the same writes either way) or change traffic a second time.
  So a step transition costs one status write and at most one weight patch.
- Retry: `abort` false after an abort this controller recorded (abortedAt, or the
  Progressing condition RolloutAborted when a client cleared abortedAt too) restarts
  the update at step 0 with new AnalysisRuns (`.1`, `.2`...), once.
- Applied to the state it produced (its actions applied, its status written), plan
  reaches a fixed point: no actions and the same status. Events are emitted only on
  transitions, so a pass that changes nothing emits nothing.
- Timestamps are whole seconds, UTC. `requeue_after` is the earliest of the pause end,
  a scale-down deadline, the abort scale-down delay, the progress deadline, a
  restartAt to come and the next look at a restart under way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollouts.plan import claims
from rollouts.plan import conditions
from rollouts.plan import restarts
from rollouts.plan import runs
from rollouts.plan import scaling
from rollouts.plan import written
from rollouts.plan import steps as engine
from rollouts.plan.steps import set_weight_at
from rollouts.platform.actions import NORMAL, WARNING, Action, Event
from rollouts.spec.model import CanaryStatus, CanaryStep, CanaryStrategy, Rollout, RolloutStatus
from rollouts.spec.problems import Problem, router_not_run
from rollouts.plan.replicas import ReplicaSetView, pod_template_hash, replicaset_name, spec_replicas
from rollouts.traffic import router
from rollouts.traffic.router import TrafficRouter, router_for
from rollouts.spec.validation import WORKLOAD_REF_NOT_RUN

INVALID_SPEC_REQUEUE = 20.0


@dataclass(frozen=True)
class Observed:
    rollout: Rollout
    replica_sets: Sequence[Mapping[str, Any]] = ()
    analysis_runs: Sequence[Mapping[str, Any]] = ()
    templates: Sequence[Mapping[str, Any]] = ()  # AnalysisTemplates/ClusterAnalysisTemplates it references
    virtual_services: Sequence[Mapping[str, Any]] = ()
    destination_rule: Mapping[str, Any] | None = None
    services: Sequence[Mapping[str, Any]] = ()
    problems: Sequence[Problem] = ()  # from rollouts.spec.validation
    pods: Sequence[Mapping[str, Any]] = ()  # the Rollout's pods, while a restart is pending (restarts.wants_pods)
    live_claimants: frozenset[str] = frozenset()  # other Rollouts named by managed-by annotations that exist


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
    try:
        p = _round(observed, now)
        actions = list(p.actions)
        moved = (p.st.current_step_index, p.st.stable_rs) != (p.old.current_step_index, p.old.stable_rs)
        if moved and not p.aborted:  # enter the step reached (or finish the promotion) in this same pass
            entered = _round(written.after(observed, p.actions, p.st), now, entering=True)
            if written.may_follow(actions, entered.actions):
                actions, p = [*actions, *entered.actions], entered
    except _Invalid as invalid:
        return _invalid(observed, now, invalid.problems)
    except runs.RunSpecError as invalid:
        return _invalid(observed, now, [invalid.problem])
    return p.result(actions)


def _round(observed: Observed, now: datetime, *, entering: bool = False) -> Pass:
    """One pass over the Rollout, in the order of the module rules."""
    p = Pass.start(observed, now, entering=entering)
    if not entering:  # the entering round runs the same spec, already checked
        _check_spec(p)
    _sync_revision(p)
    _sync_abort(p)
    _check_deadline(p)
    restarts.restart(p)
    runs.follow(p)
    runs.gate_promotion(p)
    engine.follow_pause_step(p)
    scaling.scale(p)
    selection = router.select(p)
    router.route(p, selection)
    engine.advance(p)
    runs.gate_promotion(p)
    engine.promote(p)
    scaling.scale_down_old(p, selection.selected)
    runs.terminate_unwanted(p)
    scaling.collect_old(p)
    runs.collect(p)
    conditions.finish(p)
    return p


@dataclass
class Pass:
    """The working state of one plan() call, shared by the pass modules (runs, scaling,
    traffic.router, conditions); it never outlives the call."""

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
    restarted: bool = False  # a new pod template or step list: back to step 0
    entering: bool = False  # the second round of a plan: the step reached is entered, not completed
    at_desired: bool = False
    weight: int | None = None
    held: str | None = None  # why promotion waits for analysis evidence (runs.gate_promotion); None: it may

    @classmethod
    def start(cls, observed: Observed, now: datetime, *, entering: bool = False) -> Pass:
        ro = observed.rollout
        old = ro.status or RolloutStatus()
        st = RolloutStatus.load(conditions.dump(old))  # a deep copy (pydantic's own deepcopy is 4x slower)
        st.canary = st.canary or CanaryStatus()
        views = [ReplicaSetView.of(d) for d in observed.replica_sets if _owned(d, ro)]
        pod_hash = pod_template_hash(ro.spec.template, st.collision_count)
        newest_other = max((v.revision for v in views if v.pod_hash != pod_hash), default=0)
        mine = next((v.revision for v in views if v.pod_hash == pod_hash), 0)
        router = router_for(ro, virtual_services=observed.virtual_services,
                            destination_rule=observed.destination_rule)
        return cls(observed, now, old, st, views, [r for r in observed.analysis_runs if _owned(r, ro)], pod_hash,
                   mine if mine > newest_other else newest_other + 1, router, entering=entering)

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
    def weight_cap(self) -> int:
        """The most traffic the canary may get: 100, or the last step's weight while promotion waits
        for analysis evidence (never all traffic onto an unproven canary; 0 with no steps)."""
        return set_weight_at(self.steps, len(self.steps) - 1) if self.held and self.index >= len(self.steps) else 100

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

    def abort(self, reason: str) -> None:
        """Abort the update: traffic back to stable, back to step 0, every run terminated."""
        st = self.st
        message = f"Rollout aborted update to revision {self.revision}" + (f": {reason}" if reason else "")
        st.abort, st.aborted_at = True, self.now
        st.current_step_index = 0 if self.steps else None
        st.pause_conditions = st.controller_pause = st.promote_full = None
        conditions.put(st, self.now, conditions.PROGRESSING, "False", "RolloutAborted", message)
        self.event(WARNING, "RolloutAborted", message)

    def forget_runs(self) -> None:
        assert self.st.canary is not None
        self.st.canary.current_step_analysis_run_status = None
        self.st.canary.current_background_analysis_run_status = None

    def result(self, actions: Sequence[Action]) -> Plan:
        future = [w for w in self.wake if w > self.now]
        requeue = min(future, default=None)
        return Plan(conditions.dump(self.st), tuple(actions),
                    None if requeue is None else (requeue - self.now).total_seconds())


def _owned(doc: Mapping[str, Any], ro: Rollout) -> bool:
    refs = (doc.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Rollout" and r.get("name") == ro.metadata.name for r in refs)


# ---------------------------------------------------------------- the pass, in order


def _check_spec(p: Pass) -> None:
    problems = [problem for problem in p.observed.problems if problem.is_error]
    if p.ro.canary is None:
        problems.append(Problem("spec.strategy", "only the canary strategy is run by this controller",
                                "set spec.strategy.canary"))
    if p.ro.spec.template is None:
        problems.append(WORKLOAD_REF_NOT_RUN if p.ro.spec.workload_ref is not None else
                        Problem("spec.template", "is required", "add a pod template, or a workloadRef"))
    routing = p.canary.traffic_routing
    others = sorted(routing.model_extra or {}) if routing is not None and routing.istio is None else []
    if others:  # run as a replica-count canary, its traffic would never move: refuse instead
        problems.append(router_not_run(others[0], f"spec.strategy.canary.trafficRouting.{others[0]}"))
    problems += engine.step_problems(p.steps)
    names = {(s.get("metadata") or {}).get("name") for s in p.observed.services}
    for key, name in (("canaryService", p.canary.canary_service), ("stableService", p.canary.stable_service)):
        if name and name not in names:
            problems.append(Problem(f"spec.strategy.canary.{key}", f"Service '{name}' not found",
                                    "create the Service, or fix the name"))
    problems += claims.claim_problems(p.ro, services=p.observed.services, destination_rule=p.observed.destination_rule,
                                      live_claimants=p.observed.live_claimants)
    if p.router is not None:
        problems += p.router.problems()
    known = {problem.path for problem in p.observed.problems if problem.is_error}  # said once, not twice
    problems = [pr for pr in problems if pr in p.observed.problems or pr.path not in known]
    if problems:
        raise _Invalid(problems)


def _sync_revision(p: Pass) -> None:
    st = p.st
    if st.current_pod_hash != p.pod_hash or st.current_step_hash != engine.step_hash(p.steps):
        if st.current_pod_hash is not None and st.current_pod_hash != p.pod_hash:
            p.event(NORMAL, "RolloutUpdated", f"Rollout updated to revision {p.revision}")
        elif st.current_pod_hash is not None and not p.promoted:
            p.event(NORMAL, "RolloutUpdated", "Rollout steps changed: starting again from step 1")
        st.current_pod_hash, st.current_step_hash = p.pod_hash, engine.step_hash(p.steps)
        st.current_step_index = 0 if p.steps else None
        st.pause_conditions = st.controller_pause = st.abort = st.aborted_at = st.promote_full = None
        p.forget_runs()
        p.progress = p.restarted = True
    if st.stable_rs is None:  # the first deploy is promoted at once, without steps
        st.stable_rs = p.pod_hash
    if p.promoted and p.steps:
        st.current_step_index = len(p.steps)


def _sync_abort(p: Pass) -> None:
    st = p.st
    if p.promoted:
        st.abort = st.aborted_at = None  # nothing left to abort
    elif st.promote_full and not st.abort:
        st.pause_conditions = st.controller_pause = None  # promote --full skips pauses and analysis
    elif st.abort and st.aborted_at is None:
        p.abort("")
    elif not st.abort and not p.restarted and _was_aborted(st):
        st.abort = st.aborted_at = st.pause_conditions = st.controller_pause = st.promote_full = None
        st.current_step_index = 0 if p.steps else None
        p.forget_runs()
        p.event(NORMAL, "RolloutRetried", f"Rollout retried: update to revision {p.revision} starts from step 1")
        p.progress = True


def _was_aborted(st: RolloutStatus) -> bool:
    """Aborted before, whichever way `abort` was cleared: Argo's `retry` sends only
    `{abort: false}` (abortedAt stays), other tools clear abortedAt too; the Progressing
    condition RolloutAborted stays until this controller takes the retry in."""
    cond = conditions.get(st, conditions.PROGRESSING)
    return st.aborted_at is not None or (cond is not None and cond.reason == "RolloutAborted")


def _check_deadline(p: Pass) -> None:
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
            p.abort(message)


def _invalid(observed: Observed, now: datetime, problems: list[Problem]) -> Plan:
    ro = observed.rollout
    status = conditions.dump(ro.status) if ro.status is not None else None
    return invalid(status, problems, now=now, generation=ro.metadata.generation)


def invalid(status: Mapping[str, Any] | None, problems: Sequence[Problem], *, now: datetime,
            generation: int | None) -> Plan:
    """The plan for a Rollout that cannot run as written: spec problems, or a document the
    models cannot load (the shell turns its errors into Problems). InvalidSpec, phase
    Degraded, no action but one Warning event when the message is new, requeue in 20 s."""
    now = now.astimezone(UTC).replace(microsecond=0)
    status = status if isinstance(status, Mapping) else None
    message = conditions.problems_message(problems)
    found = (status or {}).get("conditions")
    before = next((c for c in found if isinstance(c, Mapping) and c.get("type") == conditions.INVALID_SPEC),
                  None) if isinstance(found, list) else None
    events: tuple[Action, ...] = ()
    if before is None or before.get("status") != "True" or before.get("message") != message:
        events = (Event(WARNING, "InvalidSpec", message),)
    return Plan(conditions.invalid_status(status, problems, now=now, generation=generation), events,
                INVALID_SPEC_REQUEUE)
