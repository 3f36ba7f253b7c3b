"""The Rollout core: plan(observed, now) -> Plan(status, actions, requeue_after). Pure.

Rules (Argo Rollouts' canary, argo-rollouts.md §1.4, §2.3, §3.8, §8; blueGreen: the middle of
the round is rollouts.plan.bluegreen.run, the rest is shared):
- Everything is derived from `Observed` (the Rollout with its status, its ReplicaSets,
  AnalysisRuns, AnalysisTemplates, VirtualServices, DestinationRule, Services, its
  pods while a restart is pending, and the spec problems found by rollouts.plan.validation)
  and `now`. No clock, network or cluster; no memory between calls: status plus
  cluster objects are the whole state, so a restarted controller carries on (a pause
  ends at its recorded startTime + duration).
- Spec problems -> InvalidSpec condition, phase Degraded, no action but one Warning
  event, requeue in 20 s. Nothing shifts traffic on an invalid spec. A Service or
  DestinationRule another existing Rollout manages is a spec problem (rollouts.plan.claims).
- A round, in this order (each a small function below): new pod template or step list
  -> restart at step 0 (first deploy: promoted at once, no steps); CLI abort/retry; the
  progress deadline; pod restarts (`spec.restartAt`, rollouts.plan.restarts); AnalysisRuns
  (Failed/Error -> abort, Inconclusive -> pause, Successful step run -> step done), and
  before them the experiment step's Experiment (rollouts.plan.experiment_step, the same);
  the promotion gate (the background run must be evidence); lifecycle webhooks
  (rollouts.plan.hooks: before the steps, before promotion, post-rollout after the round);
  the pause step; ReplicaSet scale; Service
  selectors and DestinationRule subsets; VirtualService weights; step advance (one
  step); promotion; scale-down of old ReplicaSets after their deadline; runs that are no
  longer wanted are terminated (and Experiments); history: old ReplicaSets beyond revisionHistoryLimit
  and completed AnalysisRuns (and Experiments) beyond the run history limits are deleted; conditions,
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
from datetime import UTC, datetime
from typing import Any

from rollouts.plan import (
    bluegreen,
    claims,
    conditions,
    hooks,
    restarts,
    routing,
    runs,
    scaling,
    steps,
    transitions,
    written,
)
from rollouts.plan import experiment_step as experiments
from rollouts.plan.outcomes import Outcome
from rollouts.plan.state import Observed, Pass, Plan
from rollouts.plan.steplist import step_hash, step_problems
from rollouts.plan.validation import TEMPLATE_REQUIRED, WORKLOAD_REF_NOT_RUN, strategy_problems
from rollouts.platform import wire
from rollouts.platform.actions import WARNING, Action, Event
from rollouts.spec.model import RolloutStatus
from rollouts.spec.problems import Problem, router_not_run
from rollouts.traffic.checks import service_problems

__all__ = ["INVALID_SPEC_REQUEUE", "Observed", "Pass", "Plan", "invalid", "plan", "result"]

INVALID_SPEC_REQUEUE = 20.0


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems


def plan(observed: Observed, now: datetime) -> Plan:
    now = now.astimezone(UTC).replace(microsecond=0)
    try:
        p = _round(observed, now)
        actions, outcomes = list(p.actions), list(p.outcomes)
        moved = (p.st.current_step_index, p.st.stable_rs) != (p.old.current_step_index, p.old.stable_rs)
        if moved and not p.aborted:  # enter the step reached (or finish the promotion) in this same pass
            entered = _round(written.after(observed, p.actions, p.st), now, entering=True)
            if written.may_follow(actions, entered.actions):
                actions, p = [*actions, *entered.actions], entered
                outcomes += entered.outcomes
    except _Invalid as invalid:
        return _invalid(observed, now, invalid.problems)
    except runs.RunSpecError as invalid:
        return _invalid(observed, now, [invalid.problem])
    return result(p, actions, outcomes)


def _round(observed: Observed, now: datetime, *, entering: bool = False) -> Pass:
    """One pass over the Rollout, in the order of the module rules."""
    p = Pass.start(observed, now, entering=entering)
    if not entering:  # the entering round runs the same spec, already checked
        _check_spec(p)
    _sync_revision(p)
    _sync_abort(p)
    _check_deadline(p)
    restarts.restart(p)
    (bluegreen.run if p.ro.blue_green is not None else _canary)(p)
    conditions.finish(p)
    hooks.finish(p)  # post-rollout webhooks, once per promotion or abort
    return p


def _canary(p: Pass) -> None:
    """The canary's part of a round (blueGreen's is rollouts.plan.bluegreen.run)."""
    hooks.decide(p)  # lifecycle webhooks: gates, rollout/rollback rounds, the failure limit
    if not p.unstarted:  # confirm-rollout/pre-rollout hold: no step is entered yet
        experiments.follow(p)
        runs.follow(p)
    runs.gate_promotion(p)
    if p.gated is None:  # a holding gate keeps a pause as it is: it ends once the gate opens
        steps.follow_pause_step(p)
    scaling.scale(p)
    selection = routing.select(p)
    routing.route(p, selection)
    before = p.index
    steps.advance(p)
    if p.index != before:  # the last step completed just now: the gate is looked at again before promoting
        runs.gate_promotion(p)
        hooks.gate_promotion(p)
    steps.promote(p)
    scaling.scale_down_old(p, selection.selected)
    runs.terminate_unwanted(p)
    experiments.terminate_unwanted(p)
    scaling.collect_old(p)
    runs.collect(p)
    experiments.collect(p)


# ---------------------------------------------------------------- the pass, in order


def _check_spec(p: Pass) -> None:
    problems = [problem for problem in p.observed.problems if problem.is_error]
    problems += strategy_problems(p.ro.spec.strategy)
    if p.ro.spec.template is None:
        problems.append(WORKLOAD_REF_NOT_RUN if p.ro.spec.workload_ref is not None else TEMPLATE_REQUIRED)
    routing = p.canary.traffic_routing
    others = sorted(routing.model_extra or {}) if routing is not None and routing.istio is None else []
    if others:  # run as a replica-count canary, its traffic would never move: refuse instead
        problems.append(router_not_run(others[0], f"spec.strategy.canary.trafficRouting.{others[0]}"))
    problems += step_problems(p.steps)
    problems += service_problems(p.canary, {str(wire.text(s, "metadata", "name")) for s in p.observed.services})
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
    if st.current_pod_hash != p.pod_hash or st.current_step_hash != step_hash(p.steps):
        transitions.restart(p)
    if st.stable_rs is None:  # the first deploy is promoted at once, without steps
        transitions.first_stable(p)
    if p.promoted and p.steps:
        st.current_step_index = len(p.steps)


def _sync_abort(p: Pass) -> None:
    st = p.st
    if p.promoted:
        st.abort = st.aborted_at = None  # nothing left to abort
    elif st.promote_full and not st.abort:
        st.pause_conditions = st.controller_pause = None  # promote --full skips pauses and analysis
    elif st.abort and st.aborted_at is None:
        transitions.abort(p, "", cause=transitions.AbortCause.MANUAL)
    elif not st.abort and not p.restarted and _was_aborted(st):
        transitions.retry(p)


def _was_aborted(st: RolloutStatus) -> bool:
    """Aborted before, whichever way `abort` was cleared: Argo's `retry` sends only
    `{abort: false}` (abortedAt stays), other tools clear abortedAt too; the Progressing
    condition RolloutAborted stays until this controller takes the retry in."""
    cond = conditions.get(st, conditions.PROGRESSING)
    return st.aborted_at is not None or (cond is not None and cond.reason == "RolloutAborted")


def _check_deadline(p: Pass) -> None:
    cond = conditions.get(p.st, conditions.PROGRESSING)
    if (cond is None or cond.last_update_time is None or p.progress or conditions.counts_progressed(p)
            or cond.reason in ("ProgressDeadlineExceeded", "RolloutAborted", "RolloutPaused",
                               conditions.WAITING_FOR_DATA)
            or not conditions.counting(p)):
        return
    if p.now >= cond.last_update_time + conditions.deadline(p):
        message = f'ReplicaSet "{p.new.name}" has timed out progressing.'
        conditions.put(p.st, p.now, conditions.PROGRESSING, "False", "ProgressDeadlineExceeded", message)
        p.event(WARNING, "ProgressDeadlineExceeded", message)
        if p.ro.spec.progress_deadline_abort and not p.promoted:
            transitions.abort(p, message, cause=transitions.AbortCause.DEADLINE)


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


def result(p: Pass, actions: Sequence[Action], outcomes: Sequence[Outcome] | None = None) -> Plan:
    """The plan a round produced: its status, `actions`, the earliest wake-up to come, and the
    promotions and aborts of its rounds (`outcomes`, default: the round's own)."""
    future = [w for w in p.wake if w > p.now]
    requeue = min(future, default=None)
    return Plan(conditions.dump(p.st), tuple(actions),
                None if requeue is None else (requeue - p.now).total_seconds(),
                tuple(p.outcomes if outcomes is None else outcomes))
