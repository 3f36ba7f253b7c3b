"""A backtest: an AnalysisRun replayed on metric history with a stepped clock.

Rules:
- Nothing here decides a phase. `replay` drives the one run state machine (analysis.assess:
  `due_metrics`, then `assess`) and the one measurement function (analysis.measure.take),
  exactly as the AnalysisRun controller does, on a SteppedClock that starts at `start`:
  at each step the due metrics are measured AT the clock's time (the Prometheus provider
  queries `time=` that instant, so history answers as it would have then), the
  measurements are assessed, and the clock steps by the assessment's requeue_after (the
  run's own next wake-up: initialDelay, interval, the error retry). So initialDelay,
  interval, count, every limit, dryRun, measurementRetention and inconclusive.hold mean
  what they mean in a cluster.
- The replay ends at the verdict (the run completed; `decided_at` is the time it would
  have been reached) or when the next wake-up falls after `end`: the run is Running at
  `end`, and `next_due` says when it would have measured next.
- Every measurement taken is in the timeline, in order, also those the run's retention
  later trims from its status.
- The run's args must hold literal values (the caller resolves them; nothing here reads a
  secret or a cluster). A spec that cannot run is the SpecError/ArgError of analysis.build.
- Bounded: at most MAX_STEPS wake-ups (a 1 s interval over a day fits); more is a
  ReplayTooLong naming the number, never an endless loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from analysis import args, assess, build, measure
from analysis.model import AnalysisPhase, AnalysisRun, AnalysisRunStatus, Measurement
from analysis.providers import Providers
from rollouts.platform.clock import SteppedClock

MAX_STEPS = 100_000


class ReplayTooLong(ValueError):
    """The window needs more wake-ups than MAX_STEPS."""


@dataclass(frozen=True)
class Taken:
    """One measurement of the timeline."""

    metric: str
    measurement: Measurement
    dry_run: bool
    held: bool  # inconclusive.hold: it waited for data instead of counting


@dataclass(frozen=True)
class Replay:
    phase: AnalysisPhase  # Running when no verdict was reached by `end`
    message: str
    start: datetime
    end: datetime
    decided_at: datetime | None  # when the run completed; None while Running at `end`
    next_due: datetime | None  # Running at `end`: when the next measurement was due
    timeline: tuple[Taken, ...]
    status: AnalysisRunStatus


def replay(run: AnalysisRun, providers: Providers, *, start: datetime, end: datetime) -> Replay:
    """The verdict `run` (its spec; any status is ignored) reaches between `start` and `end`."""
    start = start.replace(microsecond=0)
    rules = {rule.name: rule for rule in build.metric_rules(run.spec)}
    values = args.resolve_values(run.spec.args, secret_lookup=None).values
    run = run.model_copy(deep=True, update={"status": None})
    clock = SteppedClock(start)
    timeline: list[Taken] = []
    for _ in range(MAX_STEPS):
        now = clock.now()
        taken = {metric.name: measure.take(providers, args.substitute(metric, values), at=now, clock=clock.now)
                 for metric in assess.due_metrics(run, now)}
        result = assess.assess(run, now=now, measurements=taken)
        run.status = result.status
        timeline += [Taken(name, m, rules[name].dry_run, assess.is_held(rules[name], m)) for name, m in taken.items()]
        phase = result.status.phase or AnalysisPhase.RUNNING
        if phase.completed:
            return Replay(phase, result.status.message or "", start, end, now, None, tuple(timeline), result.status)
        wake = now + timedelta(seconds=max(result.requeue_after or 0.0, 1.0))
        if wake > end:
            return Replay(AnalysisPhase.RUNNING, result.status.message or "", start, end, None, wake,
                          tuple(timeline), result.status)
        clock.advance(wake - now)
    raise ReplayTooLong(f"the window from {start.isoformat()} to {end.isoformat()} needs more than {MAX_STEPS} "
                        "measurement times; shorten it or lengthen the metrics' interval")
