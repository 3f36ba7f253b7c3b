"""Wire models for the Argo Rollouts `Rollout` (canary strategy) and its status.

Rules:
- `argoproj.io/v1alpha1` Rollout exactly as Argo Rollouts accepts it; camelCase on
  the wire; `Rollout.load(doc).dump() == doc` for every document we accept (only
  fields that were set are written back).
- Fields Argo has for features this controller does not run (header, mirror and
  plugin steps, other traffic routers) are preserved, never dropped; lint and the
  controller refuse or warn about each (spec.problems).
- The pod template is kept as a raw dict: the controller hashes and copies it,
  it never interprets containers beyond images.
- Status has Argo's shape (`stableRS`, `HPAReplicas`, `observedGeneration` as a
  string) so Argo CD health checks and `kubectl argo rollouts` keep working.
Size: over 300 lines because the Rollout's wire models: one class per Argo type, nothing
  else.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt

from analysis.model import (
    API_VERSION,
    ArgoModel,
    Argument,
    DryRun,
    IntOrString,
    MeasurementRetention,
    ObjectMeta,
    TemplateRef,
)

__all__ = ["API_VERSION", "CanaryStep", "ObjectMeta", "Rollout", "RolloutPhase", "StepKind"]


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class StepKind(StrEnum):
    SET_WEIGHT = "setWeight"
    PAUSE = "pause"
    ANALYSIS = "analysis"
    SET_CANARY_SCALE = "setCanaryScale"
    EXPERIMENT = "experiment"  # run by rollouts.plan.experiment_step (the step kept raw: rollouts.spec.experiment)
    # Accepted by Argo, preserved here, not run by this controller:
    SET_HEADER_ROUTE = "setHeaderRoute"
    SET_MIRROR_ROUTE = "setMirrorRoute"
    PLUGIN = "plugin"


SUPPORTED_STEPS = frozenset({StepKind.SET_WEIGHT, StepKind.PAUSE, StepKind.ANALYSIS, StepKind.SET_CANARY_SCALE,
                             StepKind.EXPERIMENT})


# ---------------------------------------------------------------- steps


class RolloutPause(ArgoModel):
    duration: IntOrString | None = None  # None: wait for promote


class AnalysisRunMetadata(ArgoModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class RolloutAnalysis(ArgoModel):
    """An analysis step, or (with `startingStep`) the background analysis."""

    templates: list[TemplateRef] | None = None
    args: list[Argument] | None = None
    dry_run: list[DryRun] | None = None
    measurement_retention: list[MeasurementRetention] | None = None
    analysis_run_metadata: AnalysisRunMetadata | None = None


class RolloutBackgroundAnalysis(RolloutAnalysis):
    starting_step: StrictInt | None = None


class SetCanaryScale(ArgoModel):
    weight: StrictInt | None = None
    replicas: StrictInt | None = None
    match_traffic_weight: StrictBool | None = None


class CanaryStep(ArgoModel):
    """One step: exactly one of the fields is set."""

    set_weight: StrictInt | None = None
    pause: RolloutPause | None = None
    analysis: RolloutAnalysis | None = None
    set_canary_scale: SetCanaryScale | None = None
    experiment: dict[str, Any] | None = None
    set_header_route: dict[str, Any] | None = None
    set_mirror_route: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None

    def kinds(self) -> list[str]:
        """Wire names of the keys set on this step (known kinds first, then unknown keys)."""
        known = [kind.value for kind in StepKind if getattr(self, _FIELD_OF[kind]) is not None]
        return known + sorted(self.model_extra or {})

    @property
    def kind(self) -> StepKind | None:
        """The step kind when exactly one known kind is set, else None. A setCanaryScale
        goes with one other kind (Argo forbids combining only setWeight, pause, experiment
        and analysis): the step's kind is then the other one, and the scale is in force too."""
        kinds = self.kinds()
        main = [k for k in kinds if k != StepKind.SET_CANARY_SCALE.value] or kinds
        if len(main) != 1 or main[0] not in StepKind._value2member_map_:
            return None
        return StepKind(main[0])


_FIELD_OF = {
    StepKind.SET_WEIGHT: "set_weight",
    StepKind.PAUSE: "pause",
    StepKind.ANALYSIS: "analysis",
    StepKind.SET_CANARY_SCALE: "set_canary_scale",
    StepKind.EXPERIMENT: "experiment",
    StepKind.SET_HEADER_ROUTE: "set_header_route",
    StepKind.SET_MIRROR_ROUTE: "set_mirror_route",
    StepKind.PLUGIN: "plugin",
}


# ---------------------------------------------------------------- traffic routing


class IstioVirtualService(ArgoModel):
    name: str
    routes: list[str] | None = None
    tls_routes: list[dict[str, Any]] | None = None
    tcp_routes: list[dict[str, Any]] | None = None


class IstioDestinationRule(ArgoModel):
    name: str
    canary_subset_name: str
    stable_subset_name: str
    additional_subset_names: list[str] | None = None


class IstioTrafficRouting(ArgoModel):
    virtual_service: IstioVirtualService | None = None
    virtual_services: list[IstioVirtualService] | None = None
    destination_rule: IstioDestinationRule | None = None

    def all_virtual_services(self) -> list[IstioVirtualService]:
        single = [self.virtual_service] if self.virtual_service else []
        return single + list(self.virtual_services or [])


class ManagedRoute(ArgoModel):
    name: str


class TrafficRouting(ArgoModel):
    """Only Istio is run by this controller; other routers are preserved (extra)."""

    istio: IstioTrafficRouting | None = None
    managed_routes: list[ManagedRoute] | None = None
    max_traffic_weight: StrictInt | None = None


# ---------------------------------------------------------------- strategy


class PreferredAntiAffinity(ArgoModel):
    weight: StrictInt


class AntiAffinity(ArgoModel):
    """Pod anti-affinity of the new ReplicaSet against the previous one (blueGreen runs it; canary does not)."""

    preferred_during_scheduling_ignored_during_execution: PreferredAntiAffinity | None = None
    required_during_scheduling_ignored_during_execution: dict[str, Any] | None = None


class PingPong(ArgoModel):
    """Ping-pong Services that take turns as stable and canary (run with Istio: rollouts.traffic.pingpong)."""

    ping_service: str
    pong_service: str


class Webhook(ArgoModel):
    """A lifecycle webhook (our superset, Flagger's model: rollouts.plan.hooks says when each type is called)."""

    name: str
    type: str
    url: str
    timeout: IntOrString | None = None  # the whole call, retries included (default 10s)
    retries: StrictInt | None = None  # more attempts after a connection error, 429 or 5xx (default 0)
    interval: IntOrString | None = None  # how often a gate that holds, or a rollout/rollback hook, is asked (10s)
    metadata: dict[str, str] | None = None


class CanaryStrategy(ArgoModel):
    canary_service: str | None = None
    stable_service: str | None = None
    steps: list[CanaryStep] | None = None
    traffic_routing: TrafficRouting | None = None
    analysis: RolloutBackgroundAnalysis | None = None
    max_surge: IntOrString | None = None
    max_unavailable: IntOrString | None = None
    scale_down_delay_seconds: StrictInt | None = None
    scale_down_delay_revision_limit: StrictInt | None = None
    abort_scale_down_delay_seconds: StrictInt | None = None
    dynamic_stable_scale: StrictBool | None = None
    min_pods_per_replica_set: StrictInt | None = None
    canary_metadata: AnalysisRunMetadata | None = None
    stable_metadata: AnalysisRunMetadata | None = None
    anti_affinity: AntiAffinity | None = None
    ping_pong: PingPong | None = None
    replica_progress_threshold: dict[str, Any] | None = None
    webhooks: list[Webhook] | None = None  # our superset (pruned by Argo's own CRDs)
    webhook_failure_limit: StrictInt | None = None  # failed pre-rollout/rollout checks allowed (default 0)


class PodMetadata(ArgoModel):
    """Labels and annotations added to the pods of one role (blueGreen active/preview)."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class BlueGreenStrategy(ArgoModel):
    """Argo's blueGreen strategy (run by rollouts.plan.bluegreen; activeService is required by validation)."""

    active_service: str | None = None
    preview_service: str | None = None
    preview_replica_count: StrictInt | None = None
    auto_promotion_enabled: StrictBool | None = None
    auto_promotion_seconds: StrictInt | None = None
    max_unavailable: IntOrString | None = None
    scale_down_delay_seconds: StrictInt | None = None
    scale_down_delay_revision_limit: StrictInt | None = None
    abort_scale_down_delay_seconds: StrictInt | None = None
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    active_metadata: PodMetadata | None = None
    preview_metadata: PodMetadata | None = None
    anti_affinity: AntiAffinity | None = None
    webhooks: list[Webhook] | None = None  # refused (InvalidSpec): lifecycle webhooks run for canary only


class RolloutStrategy(ArgoModel):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None


class LabelSelector(ArgoModel):
    match_labels: dict[str, str] | None = None
    match_expressions: list[dict[str, Any]] | None = None


class WorkloadRef(ArgoModel):
    api_version: str
    kind: Literal["Deployment", "ReplicaSet", "PodTemplate"]
    name: str
    scale_down: Literal["never", "onsuccess", "progressively"] | None = None


class RolloutHistoryLimits(ArgoModel):
    successful_run_history_limit: StrictInt | None = None
    unsuccessful_run_history_limit: StrictInt | None = None


class RollbackWindow(ArgoModel):
    revisions: StrictInt | None = None


class RolloutSpec(ArgoModel):
    replicas: StrictInt | None = None
    selector: LabelSelector | None = None
    template: dict[str, Any] | None = None
    workload_ref: WorkloadRef | None = None
    min_ready_seconds: StrictInt | None = None
    revision_history_limit: StrictInt | None = None
    paused: StrictBool | None = None
    progress_deadline_seconds: StrictInt | None = None
    progress_deadline_abort: StrictBool | None = None
    restart_at: datetime | None = None
    rollback_window: RollbackWindow | None = None
    strategy: RolloutStrategy
    analysis: RolloutHistoryLimits | None = None


# ---------------------------------------------------------------- status


class PauseCondition(ArgoModel):
    reason: str
    start_time: datetime


class RunStatusRef(ArgoModel):
    name: str
    status: str
    message: str | None = None


class WeightDestination(ArgoModel):
    weight: StrictInt
    service_name: str | None = None
    pod_template_hash: str | None = None


class TrafficWeights(ArgoModel):
    canary: WeightDestination
    stable: WeightDestination
    additional: list[WeightDestination] | None = None
    verified: StrictBool | None = None


class CanaryStatus(ArgoModel):
    current_step_analysis_run_status: RunStatusRef | None = None
    current_background_analysis_run_status: RunStatusRef | None = None
    current_experiment: str | None = None
    weights: TrafficWeights | None = None
    stable_ping_pong: str | None = None
    step_plugin_statuses: list[dict[str, Any]] | None = None  # Argo's step plugins (not run here)


class BlueGreenStatus(ArgoModel):
    active_selector: str | None = None
    preview_selector: str | None = None
    pre_promotion_analysis_run_status: RunStatusRef | None = None
    post_promotion_analysis_run_status: RunStatusRef | None = None
    scale_up_preview_check_point: StrictBool | None = None


class RolloutCondition(ArgoModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_update_time: datetime | None = None
    last_transition_time: datetime | None = None


class HookStatus(ArgoModel):
    """What a lifecycle webhook was last asked and answered (our superset; rollouts.plan.hooks)."""

    name: str
    type: str
    decision: str | None = None  # the decision last asked: "<update>/<point>"; None after a new update
    asked_at: datetime | None = None
    answered_at: datetime | None = None  # None while the ask has no answer (or the controller stopped)
    code: StrictInt | None = None  # the HTTP status of the answer; None: no answer (error)
    ok: StrictBool | None = None  # a 2xx answer
    latency_ms: StrictInt | None = None
    error: str | None = None
    failures: StrictInt | None = None  # failed checks counted this update (pre-rollout, rollout)
    held_since: datetime | None = None  # a gate's first refusal of this decision; None once it said yes


class RolloutStatus(ArgoModel):
    phase: RolloutPhase | None = None
    message: str | None = None
    current_step_index: StrictInt | None = None
    current_step_hash: str | None = None
    current_pod_hash: str | None = None
    stable_rs: str | None = Field(default=None, alias="stableRS")
    pause_conditions: list[PauseCondition] | None = None
    controller_pause: StrictBool | None = None
    abort: StrictBool | None = None
    aborted_at: datetime | None = None
    promote_full: StrictBool | None = None
    canary: CanaryStatus | None = None
    conditions: list[RolloutCondition] | None = None
    replicas: StrictInt | None = None
    updated_replicas: StrictInt | None = None
    ready_replicas: StrictInt | None = None
    available_replicas: StrictInt | None = None
    hpa_replicas: StrictInt | None = Field(default=None, alias="HPAReplicas")
    selector: str | None = None
    observed_generation: str | None = None
    restarted_at: datetime | None = None
    collision_count: StrictInt | None = None
    workload_observed_generation: str | None = None
    blue_green: BlueGreenStatus | None = None
    hooks: list[HookStatus] | None = None  # our superset: lifecycle webhooks (rollouts.plan.hooks)
    # Written by Argo for features this controller does not run; kept as they are.
    alb: dict[str, Any] | None = None
    albs: list[dict[str, Any]] | None = None


class Rollout(ArgoModel):
    api_version: str = API_VERSION
    kind: Literal["Rollout"] = "Rollout"
    metadata: ObjectMeta
    spec: RolloutSpec
    status: RolloutStatus | None = None

    @property
    def canary(self) -> CanaryStrategy | None:
        return self.spec.strategy.canary

    @property
    def blue_green(self) -> BlueGreenStrategy | None:
        return self.spec.strategy.blue_green

    @property
    def steps(self) -> list[CanaryStep]:
        canary = self.canary
        return list(canary.steps or []) if canary else []

