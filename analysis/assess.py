"""The AnalysisRun state machine: measurements in, new status, events and requeue out.

Rules (argo-rollouts.md §3.4-3.6), everything that decides a phase lives in this file:
- Pure. The caller passes `now` and the measurements it has just taken (built with
  `measurement`, which evaluates the conditions through `analysis.expr`); nothing here
  reads a clock, the cluster, a secret or a metric backend. All state is in the run's
  status, so a restarted controller resumes exactly where the last one stopped.
- Phases move only along `_MOVES` (below): Pending/unset -> anything, Running -> a
  completed phase or Running, and a completed phase never changes again (metric or run).
- Counters: count = successful + failed + inconclusive (errors excluded); an error
  increments error and consecutiveError; any other measurement resets consecutiveError;
  a success increments consecutiveSuccess, anything else resets it. Counters keep
  counting when old measurements are trimmed (measurementRetention, default 10).
- Metric phase, in order: failed > failureLimit (unless -1) -> Failed; inconclusive >
  inconclusiveLimit -> Inconclusive; consecutiveError > consecutiveErrorLimit -> Error
  (later checks win); consecutiveSuccessLimit reached -> Successful; effective count
  reached -> Successful (only failureLimit applies), Inconclusive (both apply) or
  Failed (only consecutiveSuccessLimit applies); terminating -> Successful; else Running.
- The run is terminating when spec.terminate is set or a non-dry-run metric is Failed,
  Error or Inconclusive. While terminating nothing is measured and every open metric
  concludes. Deliberate improvement on Argo: a metric that fails ends the run in the
  same assessment (Argo needs one more reconcile, at the next interval).
- Run phase: Running until every metric is complete (or terminating), then the worst
  (PHASE_SEVERITY) completed non-dry-run metric phase, Successful when there is none.
  Dry-run metrics are measured and summarised in dryRunSummary, never decide the run.
- Next measurement of a metric: startedAt + initialDelay for the first, the previous
  finishedAt + 10 s after an Error (whatever the interval), else finishedAt + interval;
  never once its effective count is reached. A metric is due AT that time (Argo waits for
  strictly after it, which a stepped clock would never satisfy). requeue_after is the
  earliest of these.
- Hold on "not enough data" (our extension, opt-in per metric with `inconclusive.hold:
  true`; Argo manifests never set it, so Argo's counting above stays the default): an
  Inconclusive measurement of such a metric (a judge's `insufficient data: n=3 <
  minSamples 20`, or both conditions false) is recorded, resets consecutiveError (the
  backend answered) and consecutiveSuccess (no evidence in between), and counts toward
  nothing else: not count, not inconclusive, so it never reaches inconclusiveLimit nor
  ends the run. The metric is measured again at the next interval and goes on by itself
  when data arrives. While a judged metric's latest measurement is held the Running run's
  message says it is waiting for data (`waiting_for_data`, which the Rollout plan reads to
  hold its weight), and one MetricWaitingForData event marks the start of each wait.
- A spec that cannot run (no metrics, bad duration or limit, unknown `{{args.x}}`,
  dry-run rule matching nothing) puts the run straight into Error with the reason.
- Timestamps are stored in whole seconds, as the Kubernetes API keeps them.
Size: over 300 lines because Argo's AnalysisRun state machine: the counters, limits and
  phases are one table of rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from analysis import expr
from analysis.args import ArgError, redact
from analysis.build import MetricRules, SpecError, metric_rules
from analysis.model import (
    PHASE_SEVERITY,
    AnalysisPhase,
    AnalysisRun,
    AnalysisRunStatus,
    Measurement,
    Metric,
    MetricResult,
    RunSummary,
)

ERROR_RETRY = timedelta(seconds=10)  # Argo's DefaultErrorRetryInterval
P = AnalysisPhase
_BAD = frozenset({P.FAILED, P.ERROR, P.INCONCLUSIVE})
_MOVES: dict[AnalysisPhase | None, frozenset[AnalysisPhase]] = {
    None: frozenset(P),
    P.PENDING: frozenset(P),
    P.RUNNING: frozenset(P) - {P.PENDING},
    **{phase: frozenset({phase}) for phase in P if phase.completed},
}


@dataclass(frozen=True)
class Observed:
    """A value the provider returned (what the conditions see as `result`)."""

    value: object
    metadata: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None  # measurement.value as the provider wrote it (else measured_value(value))


@dataclass(frozen=True)
class Unmeasured:
    """The provider could not measure; the message becomes an Error measurement."""

    message: str


Outcome = Observed | Unmeasured


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or "Warning"


@dataclass(frozen=True)
class Assessment:
    status: AnalysisRunStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


# ---------------------------------------------------------------- one measurement


def measurement(
    metric: Metric, outcome: Outcome, *, started_at: datetime, finished_at: datetime | None = None,
    secrets: Iterable[str] = (),
) -> Measurement:
    """The Measurement for one outcome of `metric` (args substituted), secrets redacted."""
    secrets = tuple(secrets)
    value: str | None = None
    metadata: dict[str, str] = {}
    if isinstance(outcome, Unmeasured):
        phase, message = P.ERROR, outcome.message
    else:
        value = redact(outcome.text if outcome.text is not None else measured_value(outcome.value), secrets)
        verdict = expr.evaluate_condition(metric.success_condition, metric.failure_condition, outcome.value)
        phase = AnalysisPhase(str(verdict.phase))
        message = verdict.message  # names the value and the condition that decided
        metadata = {k: redact(str(v), secrets) for k, v in outcome.metadata.items()}
    return Measurement(
        phase=phase,
        message=redact(message, secrets) or None,
        started_at=_second(started_at),
        finished_at=_second(finished_at or started_at),
        value=value,
        metadata=metadata or None,
    )


def measured_value(value: object) -> str:
    """`measurement.value` as Argo writes it: 0.98, NaN, +Inf, [0.98,0.97], raw strings, else JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return "[" + ",".join(_go_float(float(v)) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"), default=str)


def _go_float(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---------------------------------------------------------------- scheduling


def due_metrics(run: AnalysisRun, now: datetime) -> list[Metric]:
    """The spec metrics (args not substituted) that need a measurement at `now`."""
    status = run.status or AnalysisRunStatus()
    if status.phase is not None and status.phase.completed:
        return []
    try:
        rules = metric_rules(run.spec)
    except (SpecError, ArgError):
        return []  # assess() turns the spec error into the run's Error phase
    results = {r.name: r for r in status.metric_results or []}
    if _terminating(run, rules, results):
        return []
    started = status.started_at or _second(now)
    return [
        raw for raw, rule in zip(run.spec.metrics, rules, strict=True)
        if (due := _next_due(rule, results.get(rule.name), started)) is not None and due <= now
    ]


def _next_due(rule: MetricRules, result: MetricResult | None, started: datetime) -> datetime | None:
    if result is None or not result.measurements:
        return started + timedelta(seconds=rule.initial_delay or 0)
    if result.phase.completed:
        return None
    last = result.measurements[-1]
    finished = last.finished_at or last.started_at or started
    if last.phase == P.ERROR:
        return finished + ERROR_RETRY
    if rule.count is not None and (result.count or 0) >= rule.count:
        return None
    return None if rule.interval is None else finished + timedelta(seconds=rule.interval)


# ---------------------------------------------------------------- the run


def assess(run: AnalysisRun, *, now: datetime, measurements: Mapping[str, Measurement] | None = None) -> Assessment:
    """Record `measurements` (by metric name) and compute the run's new status."""
    status = run.status or AnalysisRunStatus()
    if status.phase is not None and status.phase.completed:
        return Assessment(status=status)
    try:
        rules = metric_rules(run.spec)
    except SpecError as err:
        return reject(status, now=now, message=f"Analysis spec invalid: {err}")
    except ArgError as err:
        return reject(status, now=now, message=f"Unable to resolve metric arguments: {err}")
    unknown = set(measurements or {}) - {r.name for r in rules}
    if unknown:
        raise ValueError(f"measurements for metrics the run does not have: {sorted(unknown)}")
    results = {r.name: r.model_copy(deep=True) for r in status.metric_results or []}
    for rule in rules:
        taken = (measurements or {}).get(rule.name)
        previous = results.get(rule.name)
        if taken is not None and (previous is None or not previous.phase.completed):
            results[rule.name] = _record(previous, rule, taken)
    events: list[Event] = [_wait_event(rule, results[rule.name]) for rule in rules
                           if rule.name in (measurements or {}) and _starts_waiting(rule, status, results)]
    terminating = _terminating(run, rules, results)
    events += _conclude_metrics(rules, results, terminating=terminating)
    if not terminating and _terminating(run, rules, results):  # a metric just failed: end the run now
        terminating = True
        events += _conclude_metrics(rules, results, terminating=True)
    phase, message = _run_phase(rules, results, terminating=terminating, requested=bool(run.spec.terminate))
    phase = _move("run", status.phase, phase)
    new = AnalysisRunStatus(
        phase=phase,
        started_at=status.started_at or _second(now),
        metric_results=_ordered(status.metric_results or [], rules, results),
        run_summary=_summary(rules, results, dry_run=False),
        dry_run_summary=_summary(rules, results, dry_run=True),
    )
    if message:
        new.message = message
    elif phase is P.RUNNING and (waiting := _waiting(rules, results)):
        new.message = waiting
    if not phase.completed:
        return Assessment(status=new, events=tuple(events), requeue_after=_requeue(rules, results, new, now))
    new.completed_at = _second(now)
    return Assessment(status=new, events=(*events, _run_event(phase, message)))


def reject(status: AnalysisRunStatus | None, *, now: datetime, message: str) -> Assessment:
    """The run ends in Error at once: its spec (or its args) cannot be run."""
    status = status or AnalysisRunStatus()
    if status.phase is not None and status.phase.completed:
        return Assessment(status=status)
    new = AnalysisRunStatus(phase=P.ERROR, message=message, started_at=status.started_at or _second(now),
                            completed_at=_second(now))
    if status.metric_results is not None:
        new.metric_results = status.metric_results
    return Assessment(status=new, events=(_run_event(P.ERROR, message),))


def _record(previous: MetricResult | None, rule: MetricRules, taken: Measurement) -> MetricResult:
    result = previous if previous is not None else _new_result(rule, taken)
    counts = {name: getattr(result, name) or 0 for name in
              ("count", "successful", "failed", "inconclusive", "error", "consecutive_error", "consecutive_success")}
    if is_held(rule, taken):
        counts["consecutive_error"] = counts["consecutive_success"] = 0
    elif taken.phase == P.ERROR:
        counts["error"] += 1
        counts["consecutive_error"] += 1
        counts["consecutive_success"] = 0
    else:
        counts["count"] += 1
        counts[taken.phase.value.lower()] += 1
        counts["consecutive_error"] = 0
        counts["consecutive_success"] = counts["consecutive_success"] + 1 if taken.phase == P.SUCCESSFUL else 0
    for name, value in counts.items():
        setattr(result, name, value)
    result.measurements = [*(result.measurements or []), taken][-rule.retention:]
    if taken.message:
        result.message = taken.message
    return result


def is_held(rule: MetricRules, taken: Measurement | None) -> bool:
    """The measurement waits for data instead of counting (inconclusive.hold)."""
    return rule.hold and taken is not None and taken.phase == P.INCONCLUSIVE


def _last(result: MetricResult | None) -> Measurement | None:
    return result.measurements[-1] if result is not None and result.measurements else None


def _waiting(rules: Sequence[MetricRules], results: Mapping[str, MetricResult]) -> str:
    """'waiting for data: ...' naming each judged open metric whose latest measurement is held; '' when none."""
    held = []
    for rule in rules:
        result = results.get(rule.name)
        last = _last(result)
        if not rule.dry_run and result is not None and not result.phase.completed and last and is_held(rule, last):
            held.append(f"metric '{rule.name}': {last.message or 'Inconclusive'}")
    return f"waiting for data: {'; '.join(held)}" if held else ""


def _starts_waiting(rule: MetricRules, status: AnalysisRunStatus, results: Mapping[str, MetricResult]) -> bool:
    before = next((r for r in status.metric_results or [] if r.name == rule.name), None)
    return is_held(rule, _last(results.get(rule.name))) and not is_held(rule, _last(before))


def _wait_event(rule: MetricRules, result: MetricResult) -> Event:
    return Event(reason="MetricWaitingForData",
                 message=f"Metric '{rule.name}' is waiting for data: {result.message or 'Inconclusive'}")


def waiting_for_data(doc: Mapping[str, object]) -> str | None:
    """'waiting for data: metric ...' while the Running run `doc` holds on a held measurement
    (inconclusive.hold), else None. The Rollout plan holds its weight on it."""
    try:
        run = AnalysisRun.load(dict(doc))
        rules = metric_rules(run.spec)
    except (ValueError, TypeError, SpecError, ArgError):  # pydantic's ValidationError is a ValueError
        return None
    status = run.status or AnalysisRunStatus()
    if status.phase is not None and status.phase.completed:
        return None
    return _waiting(rules, {r.name: r for r in status.metric_results or []}) or None


def _new_result(rule: MetricRules, taken: Measurement) -> MetricResult:
    result = MetricResult(name=rule.name, phase=P.RUNNING)
    if rule.dry_run:
        result.dry_run = True
    if taken.metadata:
        result.metadata = dict(taken.metadata)
    return result


def _terminating(run: AnalysisRun, rules: Sequence[MetricRules], results: Mapping[str, MetricResult]) -> bool:
    if run.spec.terminate:
        return True
    return any(r.name in results and results[r.name].phase in _BAD for r in rules if not r.dry_run)


def _conclude_metrics(
    rules: Sequence[MetricRules], results: dict[str, MetricResult], *, terminating: bool,
) -> list[Event]:
    """Move each open metric to its phase; an event for each one that completes."""
    events = []
    for rule in rules:
        result = results.get(rule.name)
        if result is None or result.phase.completed:
            continue
        phase, reason = _metric_phase(rule, result, terminating=terminating)
        result.phase = _move(f"metric {rule.name!r}", result.phase, phase)
        if not phase.completed:
            continue
        if rule.dry_run and reason:
            detail = f": {result.message}" if result.message else ""
            result.message = f"Metric assessed {phase} due to {reason}{detail}"
        warning = phase in (P.FAILED, P.ERROR)
        text = f"Metric '{rule.name}' Completed. Result: {phase}" + (f": {reason}" if reason else "")
        events.append(Event(reason=f"Metric{phase}", message=text, type="Warning" if warning else "Normal"))
    return events


def _metric_phase(rule: MetricRules, result: MetricResult, *, terminating: bool) -> tuple[AnalysisPhase, str]:
    """The phase the counters give, and the reason when it is not a plain success."""
    failed, inconclusive = result.failed or 0, result.inconclusive or 0
    phase, reason = P.RUNNING, ""
    if rule.failure_limit >= 0 and failed > rule.failure_limit:
        phase, reason = P.FAILED, f"failed ({failed}) > failureLimit ({rule.failure_limit})"
    if inconclusive > rule.inconclusive_limit:
        phase = P.INCONCLUSIVE
        reason = f"inconclusive ({inconclusive}) > inconclusiveLimit ({rule.inconclusive_limit})"
    if (result.consecutive_error or 0) > rule.consecutive_error_limit:
        phase, reason = P.ERROR, (f"consecutiveErrors ({result.consecutive_error}) > consecutiveErrorLimit "
                                  f"({rule.consecutive_error_limit})")
    if phase != P.RUNNING:
        return phase, reason
    streak, needed = result.consecutive_success or 0, rule.consecutive_success_limit
    if needed > 0 and streak >= needed:
        return P.SUCCESSFUL, ""
    if rule.count is not None and (result.count or 0) >= rule.count:
        if needed == 0:
            return P.SUCCESSFUL, ""
        reason = (f"count ({result.count}) reached before consecutiveSuccess ({streak}) "
                  f"reached consecutiveSuccessLimit ({needed})")
        return (P.INCONCLUSIVE if rule.failure_limit >= 0 else P.FAILED), reason
    return (P.SUCCESSFUL if terminating else P.RUNNING), ""


def _run_phase(
    rules: Sequence[MetricRules], results: Mapping[str, MetricResult], *, terminating: bool, requested: bool,
) -> tuple[AnalysisPhase, str]:
    worst: AnalysisPhase | None = None
    message = "Run Terminated" if requested else ""
    complete = True
    for rule in rules:
        result = results.get(rule.name)
        if result is None or not result.phase.completed:
            complete = False
            continue
        if rule.dry_run:
            worst = worst or P.SUCCESSFUL
            continue
        if worst is None or PHASE_SEVERITY[result.phase] > PHASE_SEVERITY[worst]:
            worst = result.phase
            phase, reason = _metric_phase(rule, result, terminating=True)
            if reason and phase == result.phase:
                message = f'Metric "{rule.name}" assessed {phase} due to {reason}'
                message += f": {result.message}" if result.message else ""
    if terminating:
        return worst or P.SUCCESSFUL, message
    if not complete or worst is None:
        return P.RUNNING, ""
    return worst, message


def _summary(rules: Sequence[MetricRules], results: Mapping[str, MetricResult], *, dry_run: bool) -> RunSummary:
    chosen = [r for r in rules if r.dry_run == dry_run]
    phases = [results[r.name].phase for r in chosen if r.name in results and results[r.name].phase.completed]
    return RunSummary(count=len(chosen), successful=phases.count(P.SUCCESSFUL), failed=phases.count(P.FAILED),
                      inconclusive=phases.count(P.INCONCLUSIVE), error=phases.count(P.ERROR))


def _requeue(rules: Sequence[MetricRules], results: Mapping[str, MetricResult], status: AnalysisRunStatus,
             now: datetime) -> float:
    started = status.started_at or _second(now)
    times = [t for r in rules if (t := _next_due(r, results.get(r.name), started)) is not None]
    # Unreachable while Running (an open metric always has a next time); retry rather than stall.
    earliest = min(times, default=now + ERROR_RETRY)
    return max(0.0, (earliest - now).total_seconds())


def _ordered(previous: Sequence[MetricResult], rules: Sequence[MetricRules],
             results: Mapping[str, MetricResult]) -> list[MetricResult] | None:
    names = [r.name for r in previous] + [r.name for r in rules if r.name not in {p.name for p in previous}]
    ordered = [results[name] for name in names if name in results]
    return ordered or None


def _run_event(phase: AnalysisPhase, message: str) -> Event:
    warning = phase in (P.FAILED, P.ERROR)
    text = f"Analysis Completed. Result: {phase}" + (f": {message}" if message else "")
    return Event(reason=f"AnalysisRun{phase}", message=text, type="Warning" if warning else "Normal")


def _move(what: str, old: AnalysisPhase | None, new: AnalysisPhase) -> AnalysisPhase:
    if new not in _MOVES[old]:
        raise AssertionError(f"illegal {what} transition {old} -> {new}")  # a bug in this module
    return new


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
