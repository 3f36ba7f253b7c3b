"""The rules of an analysis spec (AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun), written once.

`rollouts lint`, the controller's InvalidSpec (plan.template_checks, plan.validation) and
AnalysisRun building (`analysis.build.metric_rules`, which refuses a run on the first
error) all call these checkers, so a mistake gets the same path, message and fix everywhere.

Rules (Argo's, argo-rollouts.md §3):
- At least one metric; metric names unique; each metric sets exactly one provider.
  prometheus and web are run; job and the other providers Argo has are kept and
  reported as WARNING "not supported"; a `plugin` whose name this controller does not
  know is an ERROR (the run could only end in Error).
- interval and initialDelay parse as Go durations (no `d` unit); count and the limits
  are integers or `{{args.*}}` placeholders; failureLimit >= -1 (and -1 only with
  consecutiveSuccessLimit > 0), the other limits >= 0; count > 1 needs an interval;
  count >= failureLimit + consecutiveSuccessLimit and count >= inconclusiveLimit.
- successCondition / failureCondition parse in the condition language (placeholders
  are replaced by `0` before parsing); `{{args.X}}` must name a declared arg.
- dryRun / measurementRetention rules must compile and match some metric.
- `inconclusive.hold: true` (our extension) needs an interval: a held measurement is taken
  again at the next interval, and without one the run would wait for ever.
- A provider's settings that can never measure (a web url that is not http(s), a
  jsonPath outside the supported subset, a Prometheus address that is not http(s), a
  timeout of 0 or less) are errors here, from analysis.provider_checks, which the
  providers run again at measure time.
- Values holding placeholders are resolved when the run is built; they are not judged here.
- Pure: returns `Problem`s, never raises for bad input, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analysis import provider_checks
from analysis.args import PLACEHOLDER
from analysis.model import (
    AnalysisRunSpec,
    AnalysisTemplate,
    Argument,
    DryRun,
    DurationError,
    MeasurementRetention,
    Metric,
    int_or_string,
    parse_duration,
)  # fmt: skip
from rollouts.platform.problems import Problem, did_you_mean, join, warning

RUN_PROVIDERS = ("prometheus", "web")  # analysis/providers/registry.py
SUPPORTED_PLUGINS: frozenset[str] = frozenset({"rollouts/judge"})  # analysis/providers/judge.py
_ARGO_NOT_RUN = ("job", "kayenta", "datadog", "wavefront", "newRelic", "cloudWatch", "graphite",
                 "influxdb", "skywalking")  # fmt: skip


def duration_problem(value: int | str, path: str) -> Problem | None:
    """A Problem when `value` is not an Argo duration (placeholders pass)."""
    if isinstance(value, str) and PLACEHOLDER.search(value):
        return None
    try:
        parse_duration(value)
    except DurationError:
        match = re.fullmatch(r"\s*(\d+)\s*d\s*", value) if isinstance(value, str) else None
        if match:
            return Problem(path, f"{value!r} is not a duration",
                           f"Go durations have no 'd' unit: write {int(match.group(1)) * 24}h")
        return Problem(path, f"{value!r} is not a duration", "use seconds like 30 or Go units like 30s, 5m, 1h30m")
    return None


def _integer(value: int | str | None, path: str, found: list[Problem]) -> int | None:
    """The int in an IntOrString field; None when unset, templated or invalid (reported)."""
    if value is None or (isinstance(value, str) and PLACEHOLDER.search(value)):
        return None
    number = int_or_string(value)
    if number is None:
        found.append(Problem(path, f"{value!r} is not an integer",
                             "use a whole number or an {{args.NAME}} placeholder"))
    return number


def _provider_problems(metric: Metric, path: str) -> list[Problem]:
    provider = metric.provider
    kinds = provider.kinds()
    where = join(path, "provider")
    extras = set(provider.model_extra or {})
    if len(kinds) > 1:
        return [Problem(where, f"metric {metric.name!r} sets {len(kinds)} providers: {', '.join(kinds)}",
                        "keep exactly one provider per metric")]
    if not kinds:
        return [Problem(where, f"metric {metric.name!r} sets no provider", f"add one of: {', '.join(RUN_PROVIDERS)}")]
    kind = kinds[0]
    if kind in extras:
        return []  # unknown or Argo-only key: reported by field_problems
    if kind == "plugin":
        names = sorted((provider.plugin or {}).keys()) or ["(none)"]
        unknown = [n for n in names if n not in SUPPORTED_PLUGINS]
        if unknown:
            return [Problem(join(where, "plugin"), f"metric plugin {unknown[0]!r} is not supported by this controller",
                            f"use the {' or '.join(RUN_PROVIDERS)} provider, or the rollouts/judge plugin")]
        return [Problem(join(path, found.path), found.message, found.fix)
                for found in provider_checks.metric_problems(metric)]
    if kind in _ARGO_NOT_RUN:
        return [warning(join(where, kind), f"the {kind} provider is not supported by this controller",
                        f"measurements would end in Error; use {' or '.join(RUN_PROVIDERS)}")]
    # what can never be measured (a file:// URL, a timeout of 0, a jsonPath we cannot run): the
    # providers refuse the same at measure time (analysis.provider_checks)
    problems = [Problem(join(path, found.path), found.message, found.fix)
                for found in provider_checks.metric_problems(metric)]
    web = provider.web
    if web is not None:
        if web.body is not None and web.json_body is not None:
            problems.append(Problem(join(where, "web.body"), "body and jsonBody are both set", "keep one of them"))
        if (web.body is not None or web.json_body is not None) and (web.method or "GET") == "GET":
            problems.append(Problem(join(where, "web.method"), "a request body needs method POST or PUT",
                                    "set method: POST, or remove the body"))
    return problems


def _condition_problems(metric: Metric, path: str) -> list[Problem]:
    from analysis import expr  # lazily: `rollouts lint` of a file without conditions never builds the language

    check = getattr(expr, "check_syntax", None)
    problems = []
    for alias, text in (("successCondition", metric.success_condition), ("failureCondition", metric.failure_condition)):
        if not text or check is None:
            continue
        error = check(PLACEHOLDER.sub("0", text))
        if error is not None:
            problems.append(Problem(join(path, alias), f"{error} in {text!r}",
                                    "fix the expression; conditions look like result[0] >= 0.95"))
    return problems


def _templated(value: int | str | None) -> bool:
    return isinstance(value, str) and bool(PLACEHOLDER.search(value))


def _limit_problems(metric: Metric, path: str) -> list[Problem]:
    found: list[Problem] = []
    count = _integer(metric.count, join(path, "count"), found)
    failure = _integer(metric.failure_limit, join(path, "failureLimit"), found)
    inconclusive = _integer(metric.inconclusive_limit, join(path, "inconclusiveLimit"), found)
    errors = _integer(metric.consecutive_error_limit, join(path, "consecutiveErrorLimit"), found)
    success = _integer(metric.consecutive_success_limit, join(path, "consecutiveSuccessLimit"), found)
    if failure is not None and failure < -1:
        found.append(Problem(join(path, "failureLimit"), f"{failure} is below -1",
                             "use a number of failures >= 0, or -1 with consecutiveSuccessLimit"))
    elif failure == -1 and not success and not _templated(metric.consecutive_success_limit):
        found.append(Problem(join(path, "failureLimit"), "-1 (no failure limit) needs consecutiveSuccessLimit > 0",
                             "set consecutiveSuccessLimit, or a failureLimit >= 0"))
    for alias, value in (("inconclusiveLimit", inconclusive), ("consecutiveErrorLimit", errors),
                         ("consecutiveSuccessLimit", success), ("count", count)):  # fmt: skip
        if value is not None and value < 0:
            found.append(Problem(join(path, alias), f"{value} is negative", "use 0 or more"))
    if metric.inconclusive is not None and metric.inconclusive.hold and metric.interval is None:
        found.append(Problem(join(path, "inconclusive.hold"), "holding on an Inconclusive measurement needs an "
                             "interval to measure again", "add interval, e.g. interval: 1m, or remove the hold"))
    if count is not None and count > 1 and metric.interval is None:
        found.append(Problem(join(path, "interval"), f"count {count} needs an interval between measurements",
                             "add interval, e.g. interval: 1m"))
    if count is not None and count > 0:
        needed = max(failure or 0, 0) + max(success or 0, 0)
        if count < needed:
            found.append(Problem(join(path, "count"), f"count {count} is less than failureLimit + "
                                 f"consecutiveSuccessLimit ({needed}), so that limit can never be reached",
                                 "raise count or lower the limits"))
        if inconclusive is not None and count < inconclusive:
            found.append(Problem(join(path, "count"), f"count {count} is less than inconclusiveLimit {inconclusive}",
                                 "raise count or lower inconclusiveLimit"))
    return found


def _arg_use_problems(metric: Metric, path: str, declared: set[str]) -> list[Problem]:
    used = sorted(set(PLACEHOLDER.findall(str(metric.dump()))))
    return [
        Problem(path, f"metric {metric.name!r} uses {{{{args.{name}}}}} but no arg {name!r} is declared",
                f"did you mean {guess}?" if (guess := did_you_mean(name, declared)) else "declare it under spec.args")
        for name in used if name not in declared
    ]  # fmt: skip


def metric_problems(metric: Metric, path: str, *, declared_args: set[str] | None) -> list[Problem]:
    found = _provider_problems(metric, path)
    for alias, value in (("interval", metric.interval), ("initialDelay", metric.initial_delay)):
        if value is not None:
            problem = duration_problem(value, join(path, alias))
            found.extend([problem] if problem else [])
    found.extend(_limit_problems(metric, path))
    found.extend(_condition_problems(metric, path))
    if declared_args is not None:
        found.extend(_arg_use_problems(metric, path, declared_args))
    return found


def _arg_problems(args: Sequence[Argument], path: str) -> list[Problem]:
    found, seen = [], set()
    for index, arg in enumerate(args):
        if arg.name in seen:
            found.append(Problem(join(join(path, index), "name"), f"arg {arg.name!r} is declared twice", "keep one"))
        seen.add(arg.name)
        if arg.value is not None and arg.value_from is not None:
            found.append(Problem(join(path, index), f"arg {arg.name!r} sets both value and valueFrom", "keep one"))
    return found


def _rule_problems(rules: Sequence[DryRun | MeasurementRetention], path: str, names: list[str]) -> list[Problem]:
    found = []
    for index, rule in enumerate(rules):
        where = join(join(path, index), "metricName")
        try:
            pattern = re.compile(rule.metric_name)
        except re.error as err:
            found.append(Problem(where, f"{rule.metric_name!r} is not a valid regular expression ({err})",
                                 "use '.*' to match every metric"))
            continue
        if not any(pattern.search(name) for name in names):
            found.append(Problem(where, f"{rule.metric_name!r} matches no metric", f"use one of: {', '.join(names)}"))
    return found


def spec_problems(spec: AnalysisRunSpec | AnalysisTemplate) -> list[Problem]:
    """Problems of a template (`spec.*` paths), or of a run spec when given an AnalysisRunSpec."""
    body = spec.spec if isinstance(spec, AnalysisTemplate) else spec
    prefix = "spec"
    found: list[Problem] = []
    nested = isinstance(spec, AnalysisTemplate) and bool(spec.spec.templates)
    if not body.metrics and not nested:
        found.append(Problem(join(prefix, "metrics"), "no metrics", "add at least one metric under spec.metrics"))
    declared = None if nested else {a.name for a in body.args or []}
    found.extend(_arg_problems(body.args or [], join(prefix, "args")))
    seen: set[str] = set()
    for index, metric in enumerate(body.metrics):
        path = join(join(prefix, "metrics"), index)
        if metric.name in seen:
            found.append(Problem(join(path, "name"), f"metric name {metric.name!r} is used twice",
                                 "give each metric a unique name"))
        seen.add(metric.name)
        found.extend(metric_problems(metric, path, declared_args=declared))
    names = [m.name for m in body.metrics]
    if names:
        found.extend(_rule_problems(body.dry_run or [], join(prefix, "dryRun"), names))
        found.extend(_rule_problems(body.measurement_retention or [], join(prefix, "measurementRetention"), names))
    return found


def runs_indefinitely(metric: Metric) -> bool:
    """True when the metric has an interval and no count (Argo's EffectiveCount is nil)."""
    count = metric.count
    if isinstance(count, str) and PLACEHOLDER.search(count):
        return False
    no_count = (count is None or (isinstance(count, int) and count == 0)
                or (isinstance(count, str) and count.strip() in ("", "0")))
    return no_count and metric.interval not in (None, "")


def required_args(template: AnalysisTemplate) -> list[str]:
    return [a.name for a in template.spec.args or [] if a.value is None and a.value_from is None]
