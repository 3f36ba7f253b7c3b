"""Whether a background analysis can fail before the steps end and the canary is promoted.

Rules (argo-rollouts.md §3.3, §3.5-§3.8):
- The background AnalysisRun starts when the Rollout enters step `startingStep` (0
  when unset). When the last step completes, promotion waits for the run to hold a
  successful measurement of each metric (plan.runs.gate_promotion): a canary failing
  every time keeps the last step's weight until its metric fails, one that succeeded
  once is promoted and the run terminated (a terminated unbounded metric ends
  Successful), so a failure that comes later can no longer abort anything.
- A metric's first measurement is taken `initialDelay` after the run starts, each
  next one `interval` after the previous one finished. A failing canary fails every
  measurement, and the metric is Failed at failure failureLimit + 1 (`failed >
  failureLimit`). So the earliest failure is initialDelay + failureLimit × interval
  (measurements taking no time: the real moment is later still).
- Errors are not counted: a broken query retries every 10 s whatever the interval
  and ends in Error after consecutiveErrorLimit + 1; this check is about a canary
  that answers, and answers badly.
- The steps from `startingStep` on end no sooner than the sum of their timed pauses
  (setWeight, setCanaryScale and the route steps take as long as pods and routers
  take: counted as 0). An indefinite pause, an analysis step, an experiment, a
  plugin or an unknown step waits for a human or for another run: the end is
  unknown and nothing is reported. So is a Rollout with no steps (promotion then
  waits only for the pods).
- Warn (never an error: Argo accepts it) when a metric's earliest failure is strictly
  later than the end; at equal times the pause and the measurement race.
- Skipped: dry-run metrics (the Rollout's `analysis.dryRun` and every template's
  `spec.dryRun`, regexps searched in the name: they never abort), metrics that cannot
  fail through failureLimit at all (failureLimit -1, or a count <= failureLimit), and
  numbers that are `{{args.*}}` placeholders or invalid (known only when the run is
  built, or reported by `template_checks`).
- Pure: no I/O, no clock, never raises for input the models accept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analysis.model import AnalysisTemplate, DurationError, Metric, int_or_string, parse_duration
from rollouts.spec.model import CanaryStep, CanaryStrategy, StepKind
from rollouts.spec.problems import Problem, join, warning

__all__ = ["background_timing_problems", "earliest_failure", "format_seconds", "steps_end"]

_INSTANT_STEPS = frozenset({StepKind.SET_WEIGHT, StepKind.SET_CANARY_SCALE, StepKind.SET_HEADER_ROUTE,
                            StepKind.SET_MIRROR_ROUTE})  # fmt: skip


def format_seconds(seconds: int) -> str:
    """Go's way of writing a duration, whole seconds only.

    >>> format_seconds(900), format_seconds(5400), format_seconds(3690), format_seconds(45), format_seconds(0)
    ('15m', '1h30m', '1h1m30s', '45s', '0s')
    """
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def _seconds(value: int | str | None) -> int | None:
    if value is None:
        return 0
    try:
        return parse_duration(value)
    except DurationError:
        return None


def _integer(value: int | str | None, default: int) -> int | None:
    return default if value is None else int_or_string(value)


def earliest_failure(metric: Metric) -> int | None:
    """Seconds from the run's start to the earliest moment `metric` can be Failed.

    None when it cannot fail through failureLimit, or its numbers are not known yet.
    Worked examples (initialDelay + failureLimit × interval):

    >>> def m(**fields): return Metric.load({"name": "m", "provider": {"web": {"url": "http://x"}}, **fields})
    >>> earliest_failure(m(interval="5m", failureLimit=3))        # 0 + 3 × 300
    900
    >>> earliest_failure(m(interval="1m", initialDelay="30s"))     # 30 + 0 × 60
    30
    >>> earliest_failure(m(interval="1m", count=3, failureLimit=3)) is None  # 3 measurements, 4 failures needed
    True
    >>> earliest_failure(m(interval="{{args.every}}", failureLimit=1)) is None
    True
    """
    limit = _integer(metric.failure_limit, 0)
    interval, delay = _seconds(metric.interval), _seconds(metric.initial_delay)
    count = _integer(metric.count, 0)
    if limit is None or limit < 0 or interval is None or delay is None or count is None:
        return None
    if metric.interval is None:
        count = 1  # Argo's effective count: no interval, one measurement
    if 0 < count <= limit:
        return None
    return delay + limit * interval


def steps_end(steps: Sequence[CanaryStep], starting_step: int = 0) -> int | None:
    """Seconds of timed pauses from `starting_step` to the end of `steps`.

    None when a step from there on waits for a human or for a run, so the end is unknown.

    >>> def s(*raw): return [CanaryStep.load(r) for r in raw]
    >>> steps_end(s({"setWeight": 50}, {"pause": {"duration": "10m"}}))
    600
    >>> steps_end(s({"pause": {"duration": 60}}, {"setWeight": 50}, {"pause": {"duration": "2m"}}), starting_step=1)
    120
    >>> steps_end(s({"setWeight": 20}, {"pause": {}}, {"pause": {"duration": "1m"}})) is None
    True
    """
    total = 0
    for step in steps[starting_step:]:
        kind = step.kind
        if kind in _INSTANT_STEPS:
            continue
        if kind is not StepKind.PAUSE or step.pause is None or step.pause.duration is None:
            return None
        seconds = _seconds(step.pause.duration)
        if seconds is None:
            return None
        total += seconds
    return total


def _dry_run_rules(canary: CanaryStrategy, templates: Sequence[AnalysisTemplate]) -> list[re.Pattern[str]]:
    texts = [r.metric_name for r in (canary.analysis.dry_run if canary.analysis else None) or []]
    texts += [r.metric_name for t in templates for r in t.spec.dry_run or []]
    rules = []
    for text in texts:
        try:
            rules.append(re.compile(text))
        except re.error:
            continue  # reported by template_checks
    return rules


def _explain(metric: Metric, *, earliest: int, end: int, starting_step: int) -> tuple[str, str]:
    limit = _integer(metric.failure_limit, 0) or 0
    delay = _seconds(metric.initial_delay) or 0
    detail = f"initialDelay {format_seconds(delay)}, then " if delay else ""
    detail += f"failureLimit {limit} + 1 failures"
    if limit and metric.interval is not None:
        detail += f", every {format_seconds(_seconds(metric.interval) or 0)}"
    steps = f"the steps from startingStep {starting_step} on" if starting_step else "the steps"
    ending = f"{steps} end after {format_seconds(end)}" if end else f"{steps} have no timed pause"
    message = (f"metric {metric.name!r} can fail at the earliest after {format_seconds(earliest)} ({detail}), "
               f"but {ending}, so a failing canary keeps the last step's weight until then, "
               "and one that succeeded once is promoted")
    levers = ["lower failureLimit", "shorten interval"] if limit else []
    levers += ["shorten initialDelay"] if delay else []
    levers += ["start the analysis at an earlier step"] if starting_step else []
    levers.append("lengthen the pauses")
    fix = levers[0] if len(levers) == 1 else f"{', '.join(levers[:-1])}, or {levers[-1]}"
    return message, fix


def background_timing_problems(
    canary: CanaryStrategy, resolved: Sequence[Sequence[AnalysisTemplate] | None], *, path: str
) -> list[Problem]:
    """Warnings for background metrics that cannot fail before the steps end.

    `resolved[i]` is the flattened list of templates that `canary.analysis.templates[i]`
    names (nested ones included), None when it is not known; then nothing is reported.
    `path` is the background analysis' path (`spec.strategy.canary.analysis`).
    """
    analysis, steps = canary.analysis, canary.steps or []
    if analysis is None or not steps or not resolved or any(r is None for r in resolved):
        return []
    starting = analysis.starting_step or 0
    end = steps_end(steps, starting) if 0 <= starting <= len(steps) else None
    if end is None:
        return []
    everything = [t for templates in resolved for t in templates or []]
    dry = _dry_run_rules(canary, everything)
    found: list[Problem] = []
    seen: set[str] = set()  # a metric twice is an error reported elsewhere; warn once
    for index, templates in enumerate(resolved):
        where = join(join(join(path, "templates"), index), "templateName")
        for metric in (m for t in templates or [] for m in t.spec.metrics):
            earliest = earliest_failure(metric)
            if earliest is None or earliest <= end or metric.name in seen or any(r.search(metric.name) for r in dry):
                continue
            seen.add(metric.name)
            message, fix = _explain(metric, earliest=earliest, end=end, starting_step=starting)
            found.append(warning(where, message, fix))
    return found
