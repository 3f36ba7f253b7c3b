"""Metric providers: one method each, behind a registry.

Rules:
- A provider takes a metric whose `{{args.*}}` are already substituted and the
  evaluation time, and returns a `Result` (the value the conditions see as
  `result`, plus metadata such as the resolved query), or raises `ProviderError`
  with a message fit for an Error measurement. Secrets never appear in messages.
- Transient faults are retried inside the provider a bounded number of times
  (tenacity) before `ProviderError` is raised; a provider never returns a value
  it did not measure.
- `Providers.for_metric` picks the provider by the metric's provider key; an
  unknown or unsupported key is `UnsupportedProvider` (the run goes to Error with
  an InvalidSpec-style message), never a silent default.
- Only this package does HTTP to metric backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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


class ProviderError(Exception):
    """A measurement could not be taken; the message goes into the Error measurement."""


class Transient(Exception):
    """A fault worth another attempt (connection refused, timeout, 5xx); its message is the cause."""


def with_retries(call: Callable[[], T], *, attempts: int, wait: tenacity.wait.wait_base) -> T:
    """`call()`, again after each `Transient` up to `attempts` tries; the last `Transient` is raised."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(Transient),
        reraise=True,
    )
    return retrying(call)


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
