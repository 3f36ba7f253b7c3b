"""Building an AnalysisRun from templates, and the rules a run's spec must satisfy.

Rules:
- Templates (AnalysisTemplate and ClusterAnalysisTemplate alike) are flattened with
  their nested `templates[]` (depth first, each template once, cycles are an error),
  then merged: metrics are concatenated (a duplicate metric name is an error), args are
  merged (the same name with two different values is an error; a value beats a
  declaration without one), dryRun and measurementRetention rules are concatenated
  (the caller's first; identical rules once; one metricName with two limits is an error).
- The caller's args (a Rollout's, already resolved by `args.resolve_rollout_args`)
  override value/valueFrom only for names a template declares; others are ignored. Any
  arg left without value or valueFrom is `ArgError("args.X was not resolved: ...")`.
- `metric_rules` turns a run spec into numbers: durations in seconds, IntOrString
  fields as ints (after `{{args.*}}` substitution, secrets masked), the effective count
  (count unset/0: 1 without an interval, unbounded with one), the limits with their
  defaults, the dry-run flag, the retention limit and the inconclusive hold. The rules themselves are
  analysis.checks' (one checker for lint, the controller and the run); the first error
  is a `SpecError` saying `path: what (fix)`. The analysis core calls it on every
  assessment; `build_run` calls it so a bad template fails when the run is created.
- Pure: templates referenced by name are fetched by the caller (`resolve_ref`; `template_resolver`
  makes one of the documents fetched, for the Rollout's and the Experiment's runs alike).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import args as arguments
from analysis import checks
from analysis.model import (
    API_VERSION,
    AnalysisRun,
    AnalysisRunSpec,
    AnalysisTemplate,
    Argument,
    DryRun,
    MeasurementRetention,
    Metric,
    ObjectMeta,
    TemplateRef,
    int_or_string,
    parse_duration,
)

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
DEFAULT_RETENTION = 10

ResolveRef = Callable[[TemplateRef], AnalysisTemplate]


class SpecError(ValueError):
    """An AnalysisTemplate/AnalysisRun spec that cannot run; the message names the field and the fix."""


@dataclass(frozen=True)
class MetricRules:
    metric: Metric  # args substituted, secret values masked
    interval: int | None
    initial_delay: int | None
    count: int | None  # effective count; None = until the run is terminated
    failure_limit: int  # -1 = disabled
    inconclusive_limit: int
    consecutive_error_limit: int
    consecutive_success_limit: int  # 0 = disabled
    dry_run: bool
    retention: int
    hold: bool = False  # inconclusive.hold: an Inconclusive measurement waits for data (analysis.assess)

    @property
    def name(self) -> str:
        return self.metric.name


# ---------------------------------------------------------------- building


def build_run(
    *, name: str, namespace: str, templates: Sequence[AnalysisTemplate], args: Sequence[Argument] = (),
    labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
    owner: Mapping[str, Any] | None = None, dry_run: Sequence[DryRun] = (),
    measurement_retention: Sequence[MeasurementRetention] = (), resolve_ref: ResolveRef | None = None,
) -> AnalysisRun:
    """The AnalysisRun document for `templates` and the caller's `args` (validated)."""
    if not templates:
        raise SpecError(f"AnalysisRun {name!r}: no templates given; reference at least one AnalysisTemplate")
    flat = flatten(templates, resolve_ref=resolve_ref)
    metrics: list[Metric] = []
    origin: dict[str, str] = {}
    template_args: list[Argument] = []
    for template in flat:
        for metric in template.spec.metrics:
            if metric.name in origin:
                raise SpecError(
                    f"two metrics have the same name {metric.name!r} ({_describe(template)} and "
                    f"{origin[metric.name]}); rename one of them"
                )
            origin[metric.name] = _describe(template)
            metrics.append(metric)
        template_args = _merge_template_args(template_args, template.spec.args or [])
    spec = AnalysisRunSpec(
        metrics=metrics,
        args=merge_args(template_args, args) or None,
        dry_run=_merge_dry_run([*dry_run, *(r for t in flat for r in t.spec.dry_run or [])]) or None,
        measurement_retention=_merge_retention(
            [*measurement_retention, *(r for t in flat for r in t.spec.measurement_retention or [])]
        ) or None,
    )
    metric_rules(spec)
    metadata = ObjectMeta(name=name, namespace=namespace)
    if labels:
        metadata.labels = dict(labels)
    if annotations:
        metadata.annotations = dict(annotations)
    if owner:
        metadata.owner_references = [dict(owner)]
    return AnalysisRun(api_version=API_VERSION, kind="AnalysisRun", metadata=metadata, spec=spec)


def template_resolver(templates: Sequence[Mapping[str, Any]]) -> ResolveRef:
    """The `resolve_ref` of the template documents the caller fetched: a reference finds the one of its kind
    (ClusterAnalysisTemplate when cluster-scoped) and name, else a SpecError that names the fix."""
    loaded = [AnalysisTemplate.load(doc) for doc in templates]

    def resolve(ref: TemplateRef) -> AnalysisTemplate:
        kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
        for template in loaded:
            if template.kind == kind and template.metadata.name == ref.template_name:
                return template
        raise SpecError(f"{kind} {ref.template_name!r} not found; create it or fix templateName")

    return resolve


def flatten(templates: Sequence[AnalysisTemplate], *, resolve_ref: ResolveRef | None = None) -> list[AnalysisTemplate]:
    """Each template followed by its nested `templates[]`, depth first, each (kind, name) once."""
    seen: set[tuple[str, str | None]] = set()
    flat: list[AnalysisTemplate] = []

    def visit(template: AnalysisTemplate, trail: tuple[str, ...]) -> None:
        key = (template.kind, template.metadata.name)
        label = _describe(template)
        if label in trail:
            raise SpecError(f"templates reference each other in a cycle: {' -> '.join([*trail, label])}")
        if key in seen:
            return
        seen.add(key)
        flat.append(template)
        for ref in template.spec.templates or []:
            if resolve_ref is None:
                raise SpecError(f"{label} references template {ref.template_name!r} but it was not fetched")
            try:
                nested = resolve_ref(ref)
            except LookupError as err:
                raise SpecError(f"{label}: spec.templates references {ref.template_name!r}: {err}") from None
            visit(nested, (*trail, label))

    for template in templates:
        visit(template, ())
    return flat


def merge_args(template_args: Sequence[Argument], incoming: Sequence[Argument]) -> list[Argument]:
    """The templates' args with the caller's values; every arg must end with a value or valueFrom."""
    merged = [arg.model_copy(deep=True) for arg in template_args]
    for arg in incoming:
        index = next((i for i, declared in enumerate(merged) if declared.name == arg.name), None)
        if index is None:
            continue  # extra args are ignored, as Argo does
        if arg.value is not None:
            merged[index] = Argument(name=arg.name, value=arg.value)
        elif arg.value_from is not None:
            merged[index] = Argument(name=arg.name, value_from=arg.value_from.model_copy(deep=True))
    for arg in merged:
        if arg.value is None and arg.value_from is None:
            arguments.literal_value(arg)  # raises "args.X was not resolved: ..."
    return merged


def _merge_template_args(merged: list[Argument], new: Sequence[Argument]) -> list[Argument]:
    result = list(merged)
    for arg in new:
        index = next((i for i, prev in enumerate(result) if prev.name == arg.name), None)
        if index is None:
            result.append(arg)
            continue
        prev = result[index]
        if prev.value is not None and arg.value is not None and prev.value != arg.value:
            raise SpecError(
                f"Argument `{arg.name}` specified multiple times with different values: "
                f"{prev.value!r}, {arg.value!r}; give the templates the same value or drop one default"
            )
        if prev.value is None:
            result[index] = arg
    return result


def _merge_dry_run(rules: Sequence[DryRun]) -> list[DryRun]:
    merged: dict[str, DryRun] = {}
    for rule in rules:
        merged.setdefault(rule.metric_name, rule)
    return list(merged.values())


def _merge_retention(rules: Sequence[MeasurementRetention]) -> list[MeasurementRetention]:
    merged: dict[str, MeasurementRetention] = {}
    for rule in rules:
        prev = merged.setdefault(rule.metric_name, rule)
        if prev.limit != rule.limit:
            raise SpecError(
                f"measurementRetention for metricName {rule.metric_name!r} is given twice with different "
                f"limits ({prev.limit} and {rule.limit}); keep one"
            )
    return list(merged.values())


def _describe(template: AnalysisTemplate) -> str:
    return f"{template.kind} {template.metadata.name!r}"


# ---------------------------------------------------------------- rules


def metric_rules(spec: AnalysisRunSpec) -> list[MetricRules]:
    """Per metric, the numbers the core runs on. A spec that breaks a rule of analysis.checks
    (the checker lint and the controller call too) is a SpecError naming its first error;
    an arg that cannot be substituted is an ArgError."""
    values = arguments.values_without_secrets(spec.args)
    metrics = [arguments.substitute(raw, values) for raw in spec.metrics]
    # checked with every value but the secrets in place (a secret is read only when measuring: it stays templated)
    secret = {name: f"{{{{args.{name}}}}}" for name, value in values.items() if value == arguments.REDACTED}
    checked = [arguments.substitute(raw, {**values, **secret}) for raw in spec.metrics]
    errors = [problem for problem in checks.spec_problems(spec.model_copy(update={"metrics": checked}))
              if problem.is_error]
    if errors:
        raise SpecError(str(errors[0]))
    dry = _matches([r.metric_name for r in spec.dry_run or []], spec.metrics)
    keep = _matches([r.metric_name for r in spec.measurement_retention or []], spec.metrics)
    limits = [r.limit for r in spec.measurement_retention or []]
    rules = []
    for raw, metric in zip(spec.metrics, metrics, strict=True):
        retention = next((limits[i] for i in reversed(range(len(limits))) if raw.name in keep[i]), 0)
        rules.append(_rules_for(metric, dry_run=any(raw.name in names for names in dry),
                                retention=retention if retention > 0 else DEFAULT_RETENTION))
    return rules


def _rules_for(metric: Metric, *, dry_run: bool, retention: int) -> MetricRules:
    interval = _duration(metric.interval)
    count = _integer(metric.count)
    return MetricRules(
        metric=metric,
        interval=interval,
        initial_delay=_duration(metric.initial_delay),
        count=count if count > 0 else (None if interval is not None else 1),
        failure_limit=_integer(metric.failure_limit),
        inconclusive_limit=_integer(metric.inconclusive_limit),
        consecutive_error_limit=_integer(metric.consecutive_error_limit, default=DEFAULT_CONSECUTIVE_ERROR_LIMIT),
        consecutive_success_limit=_integer(metric.consecutive_success_limit),
        dry_run=dry_run,
        retention=retention,
        hold=bool(metric.inconclusive and metric.inconclusive.hold),
    )


def _matches(patterns: Sequence[str], metrics: Sequence[Metric]) -> list[set[str]]:
    """For each rule (already checked: it compiles and matches), the metric names its Go-style
    (unanchored) regexp matches."""
    return [{m.name for m in metrics if re.search(pattern, m.name)} for pattern in patterns]


def _duration(value: int | str | None) -> int | None:
    """Seconds of a checked duration; None when unset."""
    return None if value is None or value == "" else parse_duration(value)


def _integer(value: int | str | None, *, default: int = 0) -> int:
    """A checked IntOrString field as an int; `default` when unset."""
    return default if value is None or value == "" else int_or_string(value) or 0
