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
  defaults, the dry-run flag and the retention limit. Every rule violation is a
  `SpecError` naming the field path and the fix. The analysis core calls it on every
  assessment; `build_run` calls it so a bad template fails when the run is created.
- Pure: templates referenced by name are fetched by the caller (`resolve_ref`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import args as arguments
from analysis.model import (
    API_VERSION,
    AnalysisRun,
    AnalysisRunSpec,
    AnalysisTemplate,
    Argument,
    DryRun,
    DurationError,
    MeasurementRetention,
    Metric,
    ObjectMeta,
    TemplateRef,
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
    """Per metric, the numbers the core runs on; SpecError/ArgError when the spec cannot run."""
    if not spec.metrics:
        raise SpecError("no metrics specified; an AnalysisRun needs at least one metric under spec.metrics")
    values = arguments.values_without_secrets(spec.args)
    dry = _matches("dryRun", [r.metric_name for r in spec.dry_run or []], spec.metrics)
    keep = _matches("measurementRetention", [r.metric_name for r in spec.measurement_retention or []], spec.metrics)
    limits = [r.limit for r in spec.measurement_retention or []]
    seen: set[str] = set()
    rules = []
    for index, raw in enumerate(spec.metrics):
        if raw.name in seen:
            raise SpecError(f"metrics[{index}]: duplicate name {raw.name!r}; metric names must be unique")
        seen.add(raw.name)
        metric = arguments.substitute(raw, values)
        retention = next((limits[i] for i in reversed(range(len(limits))) if raw.name in keep[i]), 0)
        rules.append(_rules_for(metric, f"metrics[{index}]", dry_run=any(raw.name in names for names in dry),
                                retention=retention if retention > 0 else DEFAULT_RETENTION))
    return rules


def _rules_for(metric: Metric, path: str, *, dry_run: bool, retention: int) -> MetricRules:
    where = f"{path} ({metric.name!r})"
    kinds = metric.provider.kinds()
    if len(kinds) != 1:
        problem = "no provider specified" if not kinds else f"multiple providers specified ({', '.join(kinds)})"
        raise SpecError(f"{where}.provider: {problem}; set exactly one provider (prometheus, web, ...)")
    interval = _duration(metric.interval, f"{where}.interval")
    count = _integer(metric.count, f"{where}.count", minimum=0)
    failure_limit = _integer(metric.failure_limit, f"{where}.failureLimit", minimum=-1)
    inconclusive_limit = _integer(metric.inconclusive_limit, f"{where}.inconclusiveLimit", minimum=0)
    error_limit = _integer(metric.consecutive_error_limit, f"{where}.consecutiveErrorLimit", minimum=0,
                           default=DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    success_limit = _integer(metric.consecutive_success_limit, f"{where}.consecutiveSuccessLimit", minimum=0)
    if failure_limit == -1 and success_limit == 0:
        raise SpecError(f"{where}.failureLimit: -1 (no failure limit) needs consecutiveSuccessLimit > 0, "
                        "or the metric could never conclude; set consecutiveSuccessLimit or a failureLimit >= 0")
    if count > 1 and interval is None:
        raise SpecError(f"{where}.interval: interval must be specified when count > 1 (count is {count})")
    if count > 0:
        needed = max(failure_limit, 0) + success_limit
        if count < needed:
            raise SpecError(f"{where}.count: count ({count}) must be >= failureLimit + consecutiveSuccessLimit "
                            f"({needed}), or the limits could never be reached")
        if count < inconclusive_limit:
            raise SpecError(f"{where}.count: count ({count}) must be >= inconclusiveLimit ({inconclusive_limit})")
    return MetricRules(
        metric=metric,
        interval=interval,
        initial_delay=_duration(metric.initial_delay, f"{where}.initialDelay"),
        count=count if count > 0 else (None if interval is not None else 1),
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        consecutive_error_limit=error_limit,
        consecutive_success_limit=success_limit,
        dry_run=dry_run,
        retention=retention,
    )


def _matches(field: str, patterns: Sequence[str], metrics: Sequence[Metric]) -> list[set[str]]:
    """For each rule, the metric names its Go-style (unanchored) regexp matches."""
    found = []
    for index, pattern in enumerate(patterns):
        try:
            regexp = re.compile(pattern)
        except re.error as err:
            raise SpecError(f"{field}[{index}].metricName: {pattern!r} is not a valid regular expression ({err}); "
                            "use '.*' to match every metric") from None
        names = {m.name for m in metrics if regexp.search(m.name)}
        if not names:
            raise SpecError(f"{field}[{index}]: Rule didn't match any metric name(s) ({pattern!r})")
        found.append(names)
    return found


def _duration(value: int | str | None, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except DurationError as err:
        raise SpecError(f"{where}: {err}") from None


def _integer(value: int | str | None, where: str, *, minimum: int, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise SpecError(f"{where}: {value!r} is not an integer")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?\d+\s*", value):
            raise SpecError(f"{where}: {value!r} is not an integer; use a whole number or an arg holding one")
        value = int(value)
    if value < minimum:
        raise SpecError(f"{where}: {value} is not allowed; the smallest valid value is {minimum}")
    return value


