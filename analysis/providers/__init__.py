"""Metric providers: one method each, behind a registry.

Rules:
- A provider takes a metric whose `{{args.*}}` are already substituted and the
  evaluation time, and returns a `Result` (the value the conditions see as
  `result`, plus metadata such as the resolved query), or raises `ProviderError`
  with a message fit for an Error measurement. Secrets never appear in messages.
  `Result.text`, when set, is `measurement.value` as Argo writes it for that provider (the web
  provider's Go JSON text); unset, the value is written by `analysis.assess.measured_value`.
- A provider raises nothing but `ProviderError`: every failure to measure (a broken,
  huge, slow or deeply nested answer, an unknown charset, a setting that can never work)
  is one, with a clear message. Metrics that can never succeed are found up front by
  `analysis.provider_checks.metric_problems`; the providers run the same checks.
- Transient faults are retried inside the provider a bounded number of times
  (tenacity) and never past the measurement's deadline (its timeout covers every
  attempt and the waits between them) before `ProviderError` is raised; a provider
  never returns a value it did not measure.
- `Providers.for_metric` picks the provider by the metric's provider key; an
  unknown or unsupported key is `UnsupportedProvider` (the run goes to Error with
  an InvalidSpec-style message), never a silent default.
- Only this package does HTTP to metric backends, all of it through
  `analysis.providers.fetch` (deadline, body cap, redirects that keep headers on their origin).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic
from typing import Protocol, TypeVar

import tenacity

from analysis.model import Metric

T = TypeVar("T")

ATTEMPTS = 3
DEFAULT_WAIT = tenacity.wait_exponential(multiplier=0.2, max=2)


@dataclass(frozen=True)
class Result:
    value: object
    metadata: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None  # measurement.value, when the provider writes it itself
    note: str | None = None  # measurement.message, when the provider words it itself
    inconclusive: bool = False  # not enough data to measure: an Inconclusive measurement


class ProviderError(Exception):
    """A measurement could not be taken; the message goes into the Error measurement."""


class Transient(Exception):
    """A fault worth another attempt (connection refused, timeout, 5xx); its message is the cause.

    `timed_out`: the fault is the deadline running out; `attempts`: set by `with_retries`.
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.attempts = 0


def with_retries(
    call: Callable[[], T], *, attempts: int, wait: tenacity.wait.wait_base, deadline: float | None = None
) -> T:
    """`call()`, again after each `Transient` up to `attempts` tries; the last `Transient` is raised.

    With `deadline` (a `time.monotonic()` instant) no wait runs past it and no attempt starts
    after it. The raised `Transient` carries the number of attempts made.
    """
    made = 0

    def counted() -> T:
        nonlocal made
        made += 1
        return call()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_any(tenacity.stop_after_attempt(attempts), _PastDeadline(deadline)),
        wait=wait,
        retry=tenacity.retry_if_exception_type(Transient),
        reraise=True,
    )
    try:
        return retrying(counted)
    except Transient as err:
        err.attempts = made
        raise


class _PastDeadline(tenacity.stop.stop_base):
    """Stop when the wait before the next attempt would end at or after `deadline` (None: never)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.deadline is not None and monotonic() + (retry_state.upcoming_sleep or 0.0) >= self.deadline


class UnsupportedProvider(ProviderError):
    """The metric names a provider this controller does not run."""


class Provider(Protocol):
    def measure(self, metric: Metric, *, at: datetime) -> Result: ...


class Providers:
    """Registry from provider key (`prometheus`, `web`, ...) to a provider instance."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)

    def for_metric(self, metric: Metric) -> Provider:
        kinds = metric.provider.kinds()
        if len(kinds) != 1:
            raise UnsupportedProvider(
                f"metric {metric.name!r}: provider must set exactly one of "
                f"{', '.join(sorted(self._providers))} (found {', '.join(kinds) or 'none'})"
            )
        provider = self._providers.get(kinds[0])
        if provider is None:
            raise UnsupportedProvider(
                f"metric {metric.name!r}: provider {kinds[0]!r} is not supported by this controller "
                f"(supported: {', '.join(sorted(self._providers))})"
            )
        return provider
