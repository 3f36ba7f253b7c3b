"""The state of one plan: what was observed, what a round works on, and what it returns. Pure.

Rules:
- `Observed` is everything a plan may look at; the shell builds it, nothing changes it.
- `Pass` is the working state of one round (see its docstring for who writes which field);
  `Plan` is what the planner returns: the new status, the actions in order, the requeue.
- A leaf of the plan package: every pass module imports it; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollouts.plan.outcomes import Outcome
from rollouts.plan.replicas import ReplicaSetView, pod_template_hash, replicaset_name, spec_replicas
from rollouts.plan.steplist import set_weight_at
from rollouts.platform.actions import Action, Event
from rollouts.spec.model import CanaryStatus, CanaryStep, CanaryStrategy, Rollout, RolloutStatus
from rollouts.spec.problems import Problem
from rollouts.traffic.router import TrafficRouter, router_for


def dump_status(st: RolloutStatus) -> dict[str, Any]:
    """The status as the wire has it (camelCase, no nulls)."""
    return st.model_dump(mode="json", by_alias=True, exclude_none=True)


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
    experiments: Sequence[Mapping[str, Any]] = ()  # the Rollout's Experiments (rollouts.plan.experiment_step)


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    actions: tuple[Action, ...]
    requeue_after: float | None
    outcomes: tuple[Outcome, ...] = ()  # promotions and aborts this plan made (rollouts.plan.outcomes)



@dataclass
class Pass:
    """The working state of one round of plan(): built by `start`, then handed to each pass
    function in the order of planner's rules; it never outlives the round.

    Set once by `start` (read-only afterwards): observed, now, old, views, runs, pod_hash,
    revision, router, entering. Written by the passes, each field by the passes named:
    - st: the status being computed (every pass; transitions names each change of step).
    - actions: what the shell must do, in order (every pass appends; never reordered).
    - wake: times this Rollout wants to be seen again (pause end, deadlines); may be empty.
    - step_done: the current step finished this round (steps.follow_pause_step for a pause,
      runs.follow for a step run); read by steps.advance. False until then.
    - progress: the round made progress (new revision, retry, step moved, promotion); read
      by conditions for the progress deadline. False until then.
    - restarted: a new pod template or step list sent the update back to step 0
      (planner._sync_revision); read by planner._sync_abort. False until then.
    - at_desired: the new ReplicaSet has every pod the current step needs available
      (scaling.scale); read by routing and steps. False until scaling ran.
    - weight: the canary weight routing set this round (routing.route); None without a
      traffic router or before routing ran.
    - held: why promotion waits for analysis evidence (runs.gate_promotion), or why the
      Rollout holds its step because an AnalysisRun waits for data (runs.follow); None when
      it may go on. Read by routing (weight_cap), scaling, steps.advance, steps.promote, conditions.
      A holding webhook gate sets it too, with gated/gate_cap/unstarted (rollouts.plan.hooks).
    - outcomes: the promotions and aborts made this round (transitions.abort/promote);
      returned in Plan.outcomes for the shell's counters. Empty until then.
    """

    observed: Observed
    now: datetime
    old: RolloutStatus  # the status as observed (never written)
    st: RolloutStatus
    views: list[ReplicaSetView]  # the ReplicaSets this Rollout owns
    runs: list[Mapping[str, Any]]  # the AnalysisRuns this Rollout owns
    pod_hash: str  # the hash of the current pod template
    revision: int  # the revision number of the current pod template
    router: TrafficRouter | None  # None: a basic canary (replica counts approximate the weight)
    actions: list[Action] = field(default_factory=list)
    wake: list[datetime] = field(default_factory=list)
    step_done: bool = False
    progress: bool = False
    restarted: bool = False
    entering: bool = False  # the second round of a plan: the step reached is entered, not completed
    at_desired: bool = False
    weight: int | None = None
    held: str | None = None
    gated: str | None = None  # why a webhook gate holds (rollouts.plan.hooks.decide): halted, no weight rise
    gate_cap: int | None = None  # the most weight a holding webhook gate allows (hooks.decide)
    unstarted: bool = False  # confirm-rollout/pre-rollout hold: no step is entered yet (hooks.decide)
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    def start(cls, observed: Observed, now: datetime, *, entering: bool = False) -> Pass:
        ro = observed.rollout
        old = ro.status or RolloutStatus()
        st = RolloutStatus.load(dump_status(old))  # a deep copy (pydantic's own deepcopy is 4x slower)
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
        cap = set_weight_at(self.steps, len(self.steps) - 1) if self.held and self.index >= len(self.steps) else 100
        return cap if self.gate_cap is None else min(cap, self.gate_cap)

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
        return (self.promoted or self.aborted or bool(self.ro.spec.paused) or bool(self.st.pause_conditions)
                or self.gated is not None)

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

    def forget_runs(self) -> None:
        assert self.st.canary is not None
        self.st.canary.current_step_analysis_run_status = None
        self.st.canary.current_background_analysis_run_status = None


def _owned(doc: Mapping[str, Any], ro: Rollout) -> bool:
    refs = (doc.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Rollout" and r.get("name") == ro.metadata.name for r in refs)
