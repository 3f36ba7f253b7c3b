"""Wire models for AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun.

Rules:
- These are Argo Rollouts' `argoproj.io/v1alpha1` types, camelCase on the wire.
  `load(...)` then `dump()` gives back the same document: only fields that were set
  are written (`exclude_unset`), and unknown fields are kept as they came (`extra="allow"`)
  so that nothing Argo accepts is silently dropped; `unknown_fields()` lists them for lint.
- Fields that Argo lets users template with `{{args.x}}` (count, limits) accept
  strings; they are resolved when an AnalysisRun is built, not here.
- Durations stay strings (`"5m"`, `"1h30s"`) or ints (seconds) as written;
  `parse_duration` turns them into seconds with Go's rules (no `d` unit).
- No I/O here: these are values.
Size: over 300 lines because the analysis wire models: one class per Argo type, and
  Argo's duration syntax they use.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

API_VERSION = "argoproj.io/v1alpha1"


class ArgoModel(BaseModel):
    """Base of every wire model: camelCase aliases, unknown fields preserved."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="allow",
        validate_assignment=False,
        defer_build=True,  # a model's validator is built on its first use: `rollouts lint` of a Rollout builds no other
    )

    @classmethod
    def load(cls, data: Any) -> Self:
        return cls.model_validate(data)

    def dump(self) -> dict[str, Any]:
        """The wire document: camelCase, only fields that were set, JSON types."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def unknown_fields(self, path: str = "") -> list[str]:
        """Dotted paths of fields this model does not know, recursively."""
        found = [f"{path}{key}" for key in (self.model_extra or {})]
        fields = type(self).model_fields
        for name in self.model_fields_set & fields.keys():
            value = getattr(self, name)
            alias = fields[name].alias or name
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if isinstance(item, ArgoModel):
                    suffix = f"[{index}]" if isinstance(value, list) else ""
                    found.extend(item.unknown_fields(f"{path}{alias}{suffix}."))
        return found


class AnalysisPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        return self not in (AnalysisPhase.PENDING, AnalysisPhase.RUNNING)


# Severity, best to worst (argo-rollouts.md §3.6): the run takes the worst metric phase.
PHASE_SEVERITY = {
    AnalysisPhase.SUCCESSFUL: 0,
    AnalysisPhase.RUNNING: 1,
    AnalysisPhase.PENDING: 2,
    AnalysisPhase.INCONCLUSIVE: 3,
    AnalysisPhase.ERROR: 4,
    AnalysisPhase.FAILED: 5,
}


class ObjectMeta(ArgoModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: StrictInt | None = None
    creation_timestamp: str | None = None
    owner_references: list[dict[str, Any]] | None = None


# ---------------------------------------------------------------- arguments


class SecretKeyRef(ArgoModel):
    name: str
    key: str


class FieldRef(ArgoModel):
    field_path: str


class ValueFrom(ArgoModel):
    secret_key_ref: SecretKeyRef | None = None
    field_ref: FieldRef | None = None
    # Rollout-side only: the pod-template hash of the stable or the new ReplicaSet.
    pod_template_hash_value: Literal["Stable", "Latest"] | None = None


class Argument(ArgoModel):
    """A template arg (no value = required) or a Rollout/AnalysisRun arg."""

    name: str
    value: str | None = None
    value_from: ValueFrom | None = None


# ---------------------------------------------------------------- providers


class KeyValue(ArgoModel):
    key: str
    value: str


class OAuth2Config(ArgoModel):
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] | None = None


class BasicAuth(ArgoModel):
    """HTTP basic auth for Prometheus (Argo's `authentication.basicAuth`)."""

    username: str
    password: str


class Sigv4Config(ArgoModel):
    """AWS SigV4 signing (Amazon Managed Prometheus): analysis.providers.auth."""

    region: str | None = None
    profile: str | None = None
    role_arn: str | None = None


class PrometheusAuth(ArgoModel):
    sigv4: Sigv4Config | None = None
    oauth2: OAuth2Config | None = None
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None  # extension


class RangeQuery(ArgoModel):
    """A range query: `start`/`end` are expressions such as `now() - duration("5m")`, `step` a duration."""

    start: str | None = None
    end: str | None = None
    step: str | None = None


class PrometheusMetric(ArgoModel):
    address: str | None = None
    query: str = ""  # optional in Argo's schema; an empty query is an Error measurement when run
    timeout: StrictInt | None = None  # seconds
    insecure: StrictBool | None = None
    headers: list[KeyValue] | None = None
    authentication: PrometheusAuth | None = None
    range_query: RangeQuery | None = None


class WebMetric(ArgoModel):
    url: str
    method: Literal["GET", "POST", "PUT"] | None = None
    headers: list[KeyValue] | None = None
    body: str | None = None
    json_body: Any | None = None
    timeout_seconds: StrictInt | None = None
    json_path: str | None = None
    insecure: StrictBool | None = None


class MetricProvider(ArgoModel):
    """Exactly one provider is set; others Argo supports are kept as raw dicts."""

    prometheus: PrometheusMetric | None = None
    web: WebMetric | None = None
    job: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None

    def kinds(self) -> list[str]:
        """Names of the providers that are set (known or preserved unknown)."""
        known = [name for name in ("prometheus", "web", "job", "plugin") if getattr(self, name) is not None]
        return known + sorted(self.model_extra or {})


# ---------------------------------------------------------------- metrics

IntOrString = StrictInt | StrictStr


class InconclusivePolicy(ArgoModel):
    """Extension (our CRD superset; Argo's CRDs prune it): what an Inconclusive measurement does.

    `hold: true`: an Inconclusive measurement ("insufficient data: n=3 < minSamples 20", or
    both conditions false) counts toward nothing and the run waits for the next measurement
    (analysis.assess). Unset: Argo's behaviour, it counts toward inconclusiveLimit.
    """

    hold: StrictBool | None = None


def int_or_string(value: int | str) -> int | None:
    """The whole number an IntOrString field holds (`3` or `" 3 "`), or None when it holds none
    (an `{{args.x}}` placeholder, text, a bool). The one parser lint, the run and the timing use."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isdigit() and len(digits) <= 18 else None


class Metric(ArgoModel):
    name: str
    interval: IntOrString | None = None
    initial_delay: IntOrString | None = None
    count: IntOrString | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: IntOrString | None = None
    inconclusive_limit: IntOrString | None = None
    consecutive_error_limit: IntOrString | None = None
    consecutive_success_limit: IntOrString | None = None
    inconclusive: InconclusivePolicy | None = None  # extension: hold on "not enough data"
    provider: MetricProvider


class DryRun(ArgoModel):
    metric_name: str


class MeasurementRetention(ArgoModel):
    metric_name: str
    limit: StrictInt


class TemplateRef(ArgoModel):
    template_name: str
    cluster_scope: StrictBool | None = None


class AnalysisTemplateSpec(ArgoModel):
    metrics: list[Metric] = Field(default_factory=list)
    args: list[Argument] | None = None
    dry_run: list[DryRun] | None = None
    measurement_retention: list[MeasurementRetention] | None = None
    templates: list[TemplateRef] | None = None


class AnalysisTemplate(ArgoModel):
    api_version: str = API_VERSION
    kind: Literal["AnalysisTemplate", "ClusterAnalysisTemplate"] = "AnalysisTemplate"
    metadata: ObjectMeta
    spec: AnalysisTemplateSpec


# ---------------------------------------------------------------- runs


class Measurement(ArgoModel):
    phase: AnalysisPhase
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    value: str | None = None
    metadata: dict[str, str] | None = None
    resume_at: datetime | None = None


class MetricResult(ArgoModel):
    name: str
    phase: AnalysisPhase
    measurements: list[Measurement] | None = None
    message: str | None = None
    count: StrictInt | None = None
    successful: StrictInt | None = None
    failed: StrictInt | None = None
    inconclusive: StrictInt | None = None
    error: StrictInt | None = None
    consecutive_error: StrictInt | None = None
    consecutive_success: StrictInt | None = None
    dry_run: StrictBool | None = None
    metadata: dict[str, str] | None = None


class RunSummary(ArgoModel):
    count: StrictInt | None = None
    successful: StrictInt | None = None
    failed: StrictInt | None = None
    inconclusive: StrictInt | None = None
    error: StrictInt | None = None


class AnalysisRunStatus(ArgoModel):
    phase: AnalysisPhase | None = None
    message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metric_results: list[MetricResult] | None = None
    run_summary: RunSummary | None = None
    dry_run_summary: RunSummary | None = None


class TTLStrategy(ArgoModel):
    """Seconds after which a completed run is deleted (Argo's analysis controller)."""

    seconds_after_completion: StrictInt | None = None
    seconds_after_success: StrictInt | None = None
    seconds_after_failure: StrictInt | None = None


class AnalysisRunSpec(ArgoModel):
    metrics: list[Metric] = Field(default_factory=list)
    args: list[Argument] | None = None
    terminate: StrictBool | None = None
    dry_run: list[DryRun] | None = None
    measurement_retention: list[MeasurementRetention] | None = None
    ttl_strategy: TTLStrategy | None = None


class AnalysisRun(ArgoModel):
    api_version: str = API_VERSION
    kind: Literal["AnalysisRun"] = "AnalysisRun"
    metadata: ObjectMeta
    spec: AnalysisRunSpec
    status: AnalysisRunStatus | None = None


# ---------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


class DurationError(ValueError):
    """A duration that Go's time.ParseDuration (plus plain integers) would reject."""


def parse_duration(value: int | str) -> int:
    """Seconds in an Argo duration, truncated to whole seconds.

    An int or a string of digits is seconds; otherwise Go syntax: `10m`, `1h30s`,
    `1.5m` (= 90), `500ms` (= 0). There is no `d` unit. Negative values, and values
    beyond Go's longest duration (about 292 years), are errors.

    >>> parse_duration("1h30s"), parse_duration(45), parse_duration("1.5m")
    (3630, 45, 90)
    """
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise DurationError(f"{value} is negative")
        return _bounded_duration(value, value)
    text = value.strip()
    if len(text) > 64:
        raise DurationError(f"{text[:20]}... is not a duration (longer than 64 characters)")
    if text.isdigit():
        return _bounded_duration(int(text), value)
    if text in ("0",):
        return 0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise DurationError(
                f"{value!r} is not a duration (use seconds like 30 or Go units like 30s, 10m, 1h30m; there is no 'd')"
            )
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text:
        raise DurationError("empty duration")
    return _bounded_duration(total, value)


MAX_DURATION_SECONDS = 9_223_372_036  # Go's time.Duration holds at most 2^63-1 ns (about 292 years)


def _bounded_duration(seconds: float, written: int | str) -> int:
    if not seconds <= MAX_DURATION_SECONDS:  # also NaN
        raise DurationError(
            f"{written!r} is longer than the longest duration ({MAX_DURATION_SECONDS}s, about 292 years)")
    return int(seconds)
