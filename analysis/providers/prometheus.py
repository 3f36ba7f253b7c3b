"""Prometheus provider: one instant query at an explicit time, with bounded retries.

Rules (Argo's metricproviders/prometheus, argo-rollouts.md §4.2 and §5):
- The query is evaluated at `at` (`time=` on /api/v1/query), never at the server's now,
  so backtests and tests with history at fixed times are exact.
- Result shape: scalar → float; vector → list of floats in the order Prometheus returned
  them (labels dropped); no series → `[]`; matrix → flat list of floats, series order then
  time order; string → str. NaN and ±Inf stay floats. (prometheus-api-client hands back
  only `data.result`, so a string result that parses as a number reads as a scalar.)
- Metadata is `{"ResolvedPrometheusQuery": query}` so users see what was really asked.
- Address: `address_override` (the CLI's --prometheus, the demo) wins over the metric's
  `address`; neither → ProviderError. It must be an http(s) URL.
- `timeout` (seconds, default 30, negative is an error) bounds each HTTP request.
  `headers`, `authentication.basicAuth` and `authentication.bearerToken` are sent on every
  request (an explicit `Authorization` header wins); TLS is verified unless `insecure: true`.
- Transient faults (connection refused, timeouts, HTTP 5xx/429) are retried `attempts`
  times with the injected tenacity wait, then ProviderError naming the query and the cause.
  A rejected query (HTTP 4xx, e.g. a PromQL syntax error) is not retried; its message is
  Prometheus' own error text. Secrets never appear in messages.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
import tenacity
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from analysis.model import Metric, PrometheusMetric
from analysis.providers import ATTEMPTS, DEFAULT_WAIT, ProviderError, Result, with_retries
from analysis.providers import Transient as _Transient

DEFAULT_TIMEOUT = 30  # seconds per request, as Argo

T = TypeVar("T")
_STATUS = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


@dataclass(frozen=True)
class _Settings:
    """Everything that shapes the HTTP connection; one PrometheusConnect per distinct value."""

    address: str
    verify: bool
    headers: tuple[tuple[str, str], ...]
    auth: tuple[str, str] | None


class PrometheusProvider:
    """`measure(metric, at=...)` for metrics with `provider.prometheus`."""

    def __init__(
        self,
        *,
        address_override: str | None = None,
        retry_wait: tenacity.wait.wait_base = DEFAULT_WAIT,
        attempts: int = ATTEMPTS,
    ) -> None:
        self._address_override = address_override
        self._wait = retry_wait
        self._attempts = attempts
        self._connections: dict[_Settings, PrometheusConnect] = {}
        self._lock = threading.Lock()

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        config = metric.provider.prometheus
        if config is None:
            raise ProviderError(f"metric {metric.name!r} has no provider.prometheus")
        if config.range_query is not None:
            raise ProviderError(
                f"metric {metric.name!r}: provider.prometheus.rangeQuery is not supported yet; "
                "use an instant query such as sum(rate(...[5m]))"
            )
        query = config.query
        params = {"time": _epoch(at)}
        data = self._call(config, query, lambda pc, timeout: pc.custom_query(query, params=params, timeout=timeout))
        return Result(value=instant_value(data, query=query), metadata={"ResolvedPrometheusQuery": query})

    def query_range(
        self, source: PrometheusMetric, *, start: datetime, end: datetime, step: timedelta
    ) -> list[tuple[float, float]]:
        """(timestamp, value) samples of `source.query` over [start, end], series then time order.

        Aggregate to one series in the query (e.g. `sum(...)`) when the caller wants one.
        """
        query, seconds = source.query, step.total_seconds()
        if seconds <= 0:
            raise ProviderError(f"prometheus range query {query!r}: step must be positive, got {step}")
        data = self._call(
            source, query,
            lambda pc, timeout: pc.custom_query_range(
                query, start_time=_aware(start), end_time=_aware(end), step=f"{seconds:g}", timeout=timeout
            ),
        )
        try:
            return [(float(ts), float(value)) for series in data for ts, value in series["values"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ProviderError(f"prometheus range query {query!r}: unexpected result {_short(data)}") from err

    def close(self) -> None:
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

    # -- plumbing

    def _call(self, config: PrometheusMetric, query: str, request: Callable[[PrometheusConnect, int], T]) -> T:
        settings = self._settings(config, query)
        timeout = _timeout(config, query)
        connection = self._connection(settings)

        def attempt() -> T:
            return _classify(lambda: request(connection, timeout), query=query, timeout=timeout)

        try:
            return with_retries(attempt, attempts=self._attempts, wait=self._wait)
        except _Transient as err:
            raise ProviderError(
                f"prometheus query {query!r} against {settings.address} failed after "
                f"{self._attempts} attempts: {err}"
            ) from err

    def _settings(self, config: PrometheusMetric, query: str) -> _Settings:
        address = (self._address_override or config.address or "").strip().rstrip("/")
        if not address:
            raise ProviderError(
                f"prometheus query {query!r}: prometheus address is not configured "
                "(set provider.prometheus.address, or pass --prometheus URL)"
            )
        parsed = urlparse(address)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ProviderError(
                f"prometheus query {query!r}: address {address!r} is not an http(s) URL "
                "(write it like http://prometheus.monitoring:9090)"
            )
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        authentication = config.authentication
        if authentication is not None:
            if authentication.oauth2 is not None or authentication.sigv4 is not None:
                raise ProviderError(
                    f"prometheus query {query!r}: authentication.oauth2 and authentication.sigv4 are not "
                    "supported; use authentication.basicAuth, authentication.bearerToken or an Authorization header"
                )
            if authentication.basic_auth is not None:
                auth = (authentication.basic_auth.username, authentication.basic_auth.password)
            if authentication.bearer_token:
                headers["Authorization"] = f"Bearer {authentication.bearer_token}"
        for header in config.headers or []:
            headers[header.key] = header.value
        return _Settings(address, not config.insecure, tuple(sorted(headers.items())), auth)

    def _connection(self, settings: _Settings) -> PrometheusConnect:
        with self._lock:
            connection = self._connections.get(settings)
            if connection is None:
                connection = PrometheusConnect(
                    url=settings.address,
                    headers=dict(settings.headers) or None,
                    disable_ssl=not settings.verify,
                    retry=Retry(total=0, raise_on_status=False),  # tenacity retries, not urllib3
                    auth=settings.auth,
                )
                self._connections[settings] = connection
            return connection


def instant_value(data: Any, *, query: str = "") -> float | str | list[float]:
    """The `result` the conditions see, from /api/v1/query's `data.result`."""
    try:
        if data == []:
            return []
        if isinstance(data, list) and isinstance(data[0], dict):
            values: list[float] = []
            for series in data:
                if "value" in series:
                    values.append(float(series["value"][1]))
                else:
                    values.extend(float(value) for _, value in series["values"])
            return values
        if isinstance(data, list) and len(data) == 2 and isinstance(data[1], str):
            try:
                return float(data[1])
            except ValueError:
                return data[1]
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ProviderError(f"prometheus query {query!r}: unexpected result {_short(data)}") from err
    raise ProviderError(f"prometheus query {query!r}: unexpected result {_short(data)}")


def _classify(call: Callable[[], T], *, query: str, timeout: int) -> T:
    """Run one request; transient faults become `_Transient`, the rest `ProviderError`."""
    try:
        return call()
    except requests.Timeout as err:
        raise _Transient(f"no answer within the {timeout}s timeout") from err
    except requests.exceptions.SSLError as err:
        raise ProviderError(
            f"prometheus query {query!r}: TLS verification failed ({_cause(err)}); "
            "fix the certificate or set insecure: true"
        ) from err
    except requests.ConnectionError as err:
        raise _Transient(f"cannot connect: {_cause(err)}") from err
    except PrometheusApiClientException as err:
        status, text = _http_error(err)
        if status is None or status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}: {text}") from err
        raise ProviderError(f"prometheus rejected query {query!r} (HTTP {status}): {text}") from err
    except requests.exceptions.JSONDecodeError as err:
        raise ProviderError(f"prometheus query {query!r}: the answer is not JSON ({_short(err)})") from err
    except requests.RequestException as err:
        raise ProviderError(f"prometheus query {query!r} failed: {_cause(err)}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise ProviderError(
            f"prometheus query {query!r}: the answer is not a Prometheus API response ({_short(err)})"
        ) from err


def _http_error(err: PrometheusApiClientException) -> tuple[int | None, str]:
    """Status and readable text from the client's 'HTTP Status Code N (b'...')' message."""
    match = _STATUS.match(str(err))
    if match is None:
        return None, _short(err)
    status = int(match.group(1))
    try:
        body = ast.literal_eval(match.group(2))
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    except (ValueError, SyntaxError):
        text = match.group(2)
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and "error" in payload:
            return status, f"{payload.get('errorType', 'error')}: {payload['error']}"
    except ValueError:
        pass
    return status, _short(text)


def _timeout(config: PrometheusMetric, query: str) -> int:
    if config.timeout is None or config.timeout == 0:
        return DEFAULT_TIMEOUT
    if config.timeout < 0:
        raise ProviderError(f"prometheus query {query!r}: timeout must be positive seconds, got {config.timeout}")
    return config.timeout


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    return _aware(moment).timestamp()


def _cause(err: BaseException) -> str:
    found = _ERRNO.search(str(err))
    return found.group(0).strip() if found else _short(err)


def _short(thing: object, limit: int = 300) -> str:
    text = str(thing)
    return text if len(text) <= limit else text[:limit] + "..."
