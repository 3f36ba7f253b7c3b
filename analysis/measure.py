"""One measurement of one metric: the function the AnalysisRun controller, `rollouts analyze`
and the backtest all call.

Rules:
- `observe(providers, metric, at=...)` asks the metric's provider for its value at `at`.
  Every failure to measure is an `Unmeasured` outcome, never an exception: a provider's
  `ProviderError` keeps its message; anything else a provider raises (a bug, a
  LookupError for an unknown charset, a RecursionError on deep JSON, a MemoryError) is
  `Unmeasured` too, named by its type, and logged. An Error measurement counts against
  `consecutiveErrorLimit`; silence would let a run end Successful with no measurement.
- `take(...)` turns that outcome into the run's `Measurement` (judged by the conditions,
  secrets redacted). A value the verdict or the formatting cannot handle is an Error
  measurement as well. So `take` never raises for anything a backend can answer.
- A provider's own account (`Result.note`, the judge's message) is the measurement's message,
  the condition's verdict after it; `Result.inconclusive` (the judge's "not enough data") makes
  the measurement Inconclusive with that note, whatever the conditions say.
- Messages are bounded (MAX_MESSAGE characters), so one huge error text cannot swell a
  run's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from analysis import assess
from analysis.args import redact
from analysis.model import AnalysisPhase, Measurement, Metric
from analysis.providers import ProviderError, Providers

log = logging.getLogger(__name__)
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Noted(assess.Observed):
    """A value with the provider's own account of it (`Result.note`, `Result.inconclusive`)."""

    note: str = ""
    inconclusive: bool = False


def observe(providers: Providers, metric: Metric, *, at: datetime) -> assess.Outcome:
    """What the metric's provider answers at `at`, or why it could not measure."""
    try:
        result = providers.for_metric(metric).measure(metric, at=at)
    except ProviderError as err:
        return assess.Unmeasured(_bounded(str(err) or type(err).__name__))
    except Exception as err:  # noqa: BLE001 - any failure to measure is an Error measurement
        log.warning("metric %r: the provider failed unexpectedly (%s)", metric.name, type(err).__name__)
        return assess.Unmeasured(_bounded(f"measurement failed: {type(err).__name__}: {_safe_text(err)}"))
    if result.note is not None or result.inconclusive:
        return Noted(result.value, dict(result.metadata), result.text, _bounded(result.note or ""), result.inconclusive)
    return assess.Observed(result.value, dict(result.metadata), result.text)


def take(providers: Providers, metric: Metric, *, at: datetime, clock: Callable[[], datetime],
         secrets: Iterable[str] = ()) -> Measurement:
    """The Measurement of `metric` (args substituted) at `at`; `clock` stamps start and finish."""
    secrets = tuple(secrets)
    started = clock()
    outcome = observe(providers, metric, at=at)
    try:
        taken = assess.measurement(metric, outcome, started_at=started, finished_at=clock(), secrets=secrets)
        return _noted(taken, outcome, secrets) if isinstance(outcome, Noted) else taken
    except Exception as err:  # noqa: BLE001 - a value that cannot be judged or written is an Error
        log.warning("metric %r: the value could not be judged (%s)", metric.name, type(err).__name__)
        message = f"the measured value could not be judged: {type(err).__name__}"
        return assess.measurement(metric, assess.Unmeasured(redact(message, secrets)), started_at=started,
                                  finished_at=clock(), secrets=secrets)


def _noted(taken: Measurement, outcome: Noted, secrets: tuple[str, ...]) -> Measurement:
    if outcome.inconclusive:
        return taken.model_copy(update={"phase": AnalysisPhase.INCONCLUSIVE,
                                        "message": redact(outcome.note, secrets) or None})
    message = "; ".join(part for part in (redact(outcome.note, secrets), taken.message or "") if part)
    return taken.model_copy(update={"message": _bounded(message) or None})


def _safe_text(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:  # noqa: BLE001 - an exception whose str() fails still names its type
        return ""


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
