"""Wire models for Argo's `Experiment` kind and for a canary `experiment` step.

Rules (Argo's `pkg/apis/rollouts/v1alpha1/experiment_types.go`, `manifests/crds/experiment-crd.yaml`):
- `argoproj.io/v1alpha1` Experiment exactly as Argo accepts it: `spec.templates[]` (name,
  replicas, selector, template, minReadySeconds, service, weight), `duration`,
  `progressDeadlineSeconds`, `terminate`, `analyses[]` (name, templateName, clusterScope,
  args, requiredForCompletion), `dryRun`, `measurementRetention`, `analysisRunMetadata`,
  `scaleDownDelaySeconds`; camelCase on the wire, unknown fields preserved.
- Status in Argo's shape: `phase` (an AnalysisPhase), `message`, `templateStatuses[]`,
  `analysisRuns[]`, `availableAt`, `conditions[]`.
- The canary step (`steps[].experiment`) is kept as a raw dict on the Rollout model (so the
  Rollout round-trips untouched); `ExperimentStep.load` reads it where it is run or checked.
- Models only: the rules of a run live in rollouts.plan.experiment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt

from analysis.model import API_VERSION, ArgoModel, Argument, DryRun, IntOrString, MeasurementRetention, ObjectMeta
from rollouts.spec.model import AnalysisRunMetadata, LabelSelector, RolloutCondition

__all__ = ["Experiment", "ExperimentAnalysis", "ExperimentStatus", "ExperimentStep", "ExperimentTemplate"]


class TemplateService(ArgoModel):
    name: str | None = None


class ExperimentTemplate(ArgoModel):
    name: str
    replicas: StrictInt | None = None  # default 1
    selector: LabelSelector | None = None
    template: dict[str, Any] = Field(default_factory=dict)  # a pod template, kept raw (as the Rollout's)
    min_ready_seconds: StrictInt | None = None
    service: TemplateService | None = None
    weight: StrictInt | None = None


class ExperimentAnalysis(ArgoModel):
    name: str
    template_name: str
    cluster_scope: StrictBool | None = None
    args: list[Argument] | None = None
    required_for_completion: StrictBool | None = None


class ExperimentSpec(ArgoModel):
    templates: list[ExperimentTemplate] = Field(default_factory=list)
    duration: IntOrString | None = None
    progress_deadline_seconds: StrictInt | None = None
    terminate: StrictBool | None = None
    analyses: list[ExperimentAnalysis] | None = None
    dry_run: list[DryRun] | None = None
    measurement_retention: list[MeasurementRetention] | None = None
    analysis_run_metadata: AnalysisRunMetadata | None = None
    scale_down_delay_seconds: StrictInt | None = None


class TemplateStatus(ArgoModel):
    name: str
    replicas: StrictInt = 0
    updated_replicas: StrictInt = 0
    ready_replicas: StrictInt = 0
    available_replicas: StrictInt = 0
    collision_count: StrictInt | None = None
    status: str | None = None  # Progressing | Running | Successful | Failed | Error
    message: str | None = None
    last_transition_time: datetime | None = None
    service_name: str | None = None
    pod_template_hash: str | None = None


class ExperimentRunStatus(ArgoModel):
    name: str
    analysis_run: str | None = None
    phase: str | None = None
    message: str | None = None


ExperimentCondition = RolloutCondition  # the same condition shape Argo writes on a Rollout


class ExperimentStatus(ArgoModel):
    phase: str | None = None
    message: str | None = None
    template_statuses: list[TemplateStatus] | None = None
    analysis_runs: list[ExperimentRunStatus] | None = None
    available_at: datetime | None = None
    conditions: list[ExperimentCondition] | None = None


class Experiment(ArgoModel):
    api_version: str = API_VERSION
    kind: Literal["Experiment"] = "Experiment"
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: ExperimentStatus | None = None


# ---------------------------------------------------------------- the canary step


class StepTemplateMetadata(ArgoModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class StepTemplate(ArgoModel):
    name: str
    spec_ref: str  # stable | canary
    replicas: StrictInt | None = None
    selector: LabelSelector | None = None
    metadata: StepTemplateMetadata | None = None
    service: TemplateService | None = None
    weight: StrictInt | None = None


class ExperimentStep(ArgoModel):
    templates: list[StepTemplate] = Field(default_factory=list)
    duration: IntOrString | None = None
    analyses: list[ExperimentAnalysis] | None = None
    dry_run: list[DryRun] | None = None
    measurement_retention: list[MeasurementRetention] | None = None
    analysis_run_metadata: AnalysisRunMetadata | None = None
    scale_down_delay_seconds: StrictInt | None = None
