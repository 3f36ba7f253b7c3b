"""Prometheus provider: one instant query at an explicit time, or a range query, within one deadline.

Rules (Argo's metricproviders/prometheus, argo-rollouts.md §4.2 and §5):
- The query is evaluated at `at` (`time=` on /api/v1/query), never at the server's now,
  so backtests and tests with history at fixed times are exact. With `rangeQuery {start, end,
  step}` it is /api/v1/query_range: `start` and `end` are time expressions
  (analysis.expr.times, `now()` being `at`), `step` a duration (`1m`, or seconds); the matrix
  comes back as one flat list of floats, series then time order, as Argo's conditions see it.
- An empty `query` is valid in Argo's schema and fails when run: an Error measurement here, and
  no request is sent (Prometheus would refuse it: "no expression found in input").
- HTTP is a plain `requests` call through analysis.providers.fetch, not prometheus-api-client:
  the status comes from the response (that client reported it only inside exception text,
  parsed back with regexes), and the deadline, body cap and redirect rules are the ones the
  web provider has (architecture review).
- Only a genuine answer is a value: HTTP 2xx, `status: "success"` and a well-formed `data`
  of resultType scalar → float; vector → list of floats in the order Prometheus returned
  them (labels dropped); no series → `[]`; matrix → flat list of floats, series order then
  time order. NaN and ±Inf stay floats. resultType string, or any other, is Argo's
  "Prometheus metric type not supported" (an Error). Any other answer (not JSON, nested
  deeper than 64 levels, another shape, `status: "error"`) is ProviderError.
- Metadata is `{"ResolvedPrometheusQuery": query}` so users see what was really asked, and
  `warnings` when Prometheus sent some: each quoted, joined by ", " (`"w1", "w2"`), as Argo.
- Address: `address_override` (the demo, pointing templates written for a cluster at a
  local server) wins over everything; then the metric's own `address`; then
  `default_address`, the fallback for metrics without one (the CLI's --prometheus or
  ARGO_ROLLOUTS_PROMETHEUS_ADDRESS, as Argo's environment variable). None of them → ProviderError
  naming the field and the fix. It must be an http(s) URL (analysis.provider_checks).
- `timeout` (seconds, default 30; 0 or negative is an error) bounds the whole measurement:
  connecting, every attempt, the waits between them and reading the answer. Answers are
  capped at MAX_BODY_BYTES (16 MiB) while streaming.
  `headers`, `authentication.basicAuth`, `authentication.bearerToken`, `authentication.oauth2`
  (a cached client-credentials token) and `authentication.sigv4` (a signature), from
  analysis.providers.auth, are sent on every request (an explicit `Authorization` header
  wins over all of them) to the address's origin only, never to another host a redirect
  points at; TLS is verified unless `insecure: true` (for the token endpoint too).
- Transient faults (connection refused, timeouts, HTTP 5xx/429) are retried `attempts`
  times with the injected tenacity wait, within the deadline, then ProviderError naming the
  query and the cause. A rejected query (HTTP 4xx, e.g. a PromQL syntax error) is not
  retried; its message is Prometheus' own error text. Messages never hold the request URL,
  its query string or header values. Nothing but ProviderError leaves `measure`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

import requests
import tenacity

from analysis import jsonpath
from analysis import provider_checks as checks
from analysis.expr import times
from analysis.model import DurationError, Metric, PrometheusMetric, RangeQuery, parse_duration
from analysis.providers import ATTEMPTS, DEFAULT_WAIT, ProviderError, Result, auth
from analysis.providers.fetch import Answer, Request, fetch, shown_url

DEFAULT_TIMEOUT = 30  # seconds for one measurement, as Argo's per-query timeout
MAX_BODY_BYTES = 16 << 20

_NUMBER = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.IGNORECASE)


class PrometheusProvider:
    """`measure(metric, at=...)` for metrics with `provider.prometheus`."""

    def __init__(
        self,
        *,
        address_override: str | None = None,
        default_address: str | None = None,
        retry_wait: tenacity.wait.wait_base = DEFAULT_WAIT,
        attempts: int = ATTEMPTS,
        session: requests.Session | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._address_override = address_override
        self._default_address = default_address
        self._wait = retry_wait
        self._attempts = attempts
        self._session = session or requests.Session()
        self._max_body = max_body_bytes
        self._tokens = auth.OAuth2Tokens(self._session, attempts=attempts, wait=retry_wait, clock=clock)
        self._sigv4 = auth.SigV4(self._session, attempts=attempts, wait=retry_wait, environ=environ, clock=clock)

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        config = metric.provider.prometheus
        if config is None:
            raise ProviderError(f"metric {metric.name!r} has no provider.prometheus")
        query = config.query
        if not query.strip():
            raise ProviderError(
                f"metric {metric.name!r}: provider.prometheus.query is empty, and Prometheus answers an empty "
                "query with an error (no expression found in input); set provider.prometheus.query")
        if config.range_query is not None:
            start, end, step = range_window(config.range_query, at=at, query=query)
            params = {"query": query, "start": str(_epoch(start)), "end": str(_epoch(end)), "step": f"{step:g}"}
            data, warnings = self._call(config, query, "query_range", params)
        else:
            data, warnings = self._call(config, query, "query", {"query": query, "time": str(_epoch(at))})
        metadata = {"ResolvedPrometheusQuery": query}
        if warnings:
            metadata["warnings"] = ", ".join(f'"{warning}"' for warning in warnings)
        return Result(value=result_value(data, query=query), metadata=metadata)

    def query_range(
        self, source: PrometheusMetric, *, start: datetime, end: datetime, step: timedelta
    ) -> list[tuple[float, float]]:
        """(timestamp, value) samples of `source.query` over [start, end], series then time order.

        Aggregate to one series in the query (e.g. `sum(...)`) when the caller wants one.
        """
        query, seconds = source.query, step.total_seconds()
        if seconds <= 0:
            raise ProviderError(f"prometheus range query {query!r}: step must be positive, got {step}")
        params = {"query": query, "start": str(_epoch(start)), "end": str(_epoch(end)), "step": f"{seconds:g}"}
        data, _ = self._call(source, query, "query_range", params)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise ProviderError(f"prometheus range query {query!r}: unexpected result {_short(data)}")
        try:
            return [(_time(ts), _sample(ts, value)) for series in data["result"]
                    for ts, value in map(_point, _list(_series(series)["values"]))]
        except (KeyError, TypeError, ValueError) as err:
            raise ProviderError(f"prometheus range query {query!r}: unexpected result {_short(data)}") from err

    def close(self) -> None:
        self._session.close()

    # -- plumbing

    def _call(self, config: PrometheusMetric, query: str, endpoint: str,
              params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        """`data` and `warnings` of a successful /api/v1/<endpoint> answer; every failure a ProviderError."""
        try:
            request = self._request(config, query, endpoint, params)
            answer = fetch(self._session, request, attempts=self._attempts, wait=self._wait,
                           describe=lambda a: f"HTTP {a.status}: {_error_text(a)}")
            return _data(answer, query)
        except ProviderError:
            raise
        except Exception as err:  # the contract: nothing but ProviderError leaves a provider
            raise ProviderError(
                f"prometheus query {query!r}: the measurement failed unexpectedly ({type(err).__name__})") from err

    def _request(self, config: PrometheusMetric, query: str, endpoint: str, params: Mapping[str, str]) -> Request:
        address = (self._address_override or (config.address or "").strip() or self._default_address or "")
        address = address.strip().rstrip("/")
        if not address:
            raise ProviderError(
                f"prometheus query {query!r}: provider.prometheus.address: prometheus address is not configured "
                "(set provider.prometheus.address, or give the controller a default with --prometheus URL "
                "or ARGO_ROLLOUTS_PROMETHEUS_ADDRESS)"
            )
        for problem in (checks.prometheus_address_problem(address), checks.prometheus_timeout_problem(config.timeout)):
            if problem is not None:
                raise ProviderError(f"prometheus query {query!r}: {problem.sentence()}")
        shown = f"prometheus query {query!r} against {shown_url(address)}"
        timeout = config.timeout or DEFAULT_TIMEOUT
        for problem in checks.authentication_problems(config.authentication):
            raise ProviderError(f"{shown}: {problem.path}: {problem.sentence()}")
        headers: dict[str, str] = {}
        signer: tuple[str, str] | requests.auth.AuthBase | None = None
        explicit = any(header.key.lower() == "authorization" for header in config.headers or [])
        authentication = config.authentication
        if authentication is not None and not explicit:
            if authentication.basic_auth is not None:
                signer = (authentication.basic_auth.username, authentication.basic_auth.password)
            if authentication.bearer_token:
                headers["Authorization"] = f"Bearer {authentication.bearer_token}"
            if checks.oauth2_set(authentication.oauth2):
                headers["Authorization"] = self._tokens.authorization(
                    authentication.oauth2, timeout=timeout, verify=not config.insecure, shown=shown)  # type: ignore[arg-type]
                signer = None
            if checks.sigv4_set(authentication.sigv4):
                signer = self._sigv4.auth(authentication.sigv4, timeout=timeout, verify=not config.insecure,  # type: ignore[arg-type]
                                          shown=shown)
        for header in config.headers or []:
            headers[header.key] = header.value
        return Request("GET", f"{address}/api/v1/{endpoint}", shown, timeout,
                       self._max_body, params=dict(params), headers=headers, auth=signer, verify=not config.insecure)


def _data(answer: Answer, query: str) -> tuple[dict[str, Any], list[str]]:
    """`data` and `warnings` of a 2xx `status: "success"` answer; a rejected query or anything else is
    ProviderError."""
    if 400 <= answer.status < 500:
        raise ProviderError(f"prometheus rejected query {query!r} (HTTP {answer.status}): {_error_text(answer)}")
    if not 200 <= answer.status < 300:
        raise ProviderError(f"prometheus query {query!r}: unexpected HTTP {answer.status}: {_error_text(answer)}")
    try:
        payload = jsonpath.load_json(answer.text())
    except jsonpath.TooDeep as err:
        raise ProviderError(f"prometheus query {query!r}: the answer is {err}") from None
    except ValueError as err:
        raise ProviderError(f"prometheus query {query!r}: the answer is not JSON ({_short(err)})") from None
    if isinstance(payload, dict) and payload.get("status") == "error":
        raise ProviderError(f"prometheus query {query!r} failed: {_error_text(answer)}")
    data = payload.get("data") if isinstance(payload, dict) and payload.get("status") == "success" else None
    if not isinstance(data, dict) or "result" not in data:
        raise ProviderError(f"prometheus query {query!r}: the answer is not a Prometheus API response "
                            f"(no status \"success\" with data.result)")
    warnings = payload.get("warnings")
    return data, [str(w) for w in warnings] if isinstance(warnings, list) else []


def range_window(range_query: RangeQuery, *, at: datetime, query: str = "") -> tuple[datetime, datetime, float]:
    """(start, end, step seconds) of a rangeQuery measured at `at`; a field that cannot work is ProviderError."""
    where = f"prometheus query {query!r}: provider.prometheus.rangeQuery"
    moments = []
    for name, text in (("start", range_query.start), ("end", range_query.end)):
        if text is None or not text.strip():
            raise ProviderError(f"{where}.{name} is missing; {times.SUPPORTED}")
        try:
            moments.append(times.evaluate(text, now=at))
        except times.TimeExprError as err:
            raise ProviderError(f"{where}.{name}: failed to parse as time: {err}") from None
    try:
        step = parse_duration(range_query.step) if range_query.step is not None else 0
    except DurationError as err:
        raise ProviderError(f"{where}.step: failed to parse as duration: {err}") from None
    if step <= 0:
        raise ProviderError(f"{where}.step must be a positive duration such as 1m (Prometheus refuses "
                            "zero or negative steps)")
    return moments[0], moments[1], float(step)


def result_value(data: Mapping[str, Any], *, query: str = "") -> float | list[float]:
    """The `result` the conditions see, from a successful answer's `data` (resultType and result)."""
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            return _sample(*_point(result))
        if kind == "vector" and isinstance(result, list):
            return [_sample(*_point(_series(series)["value"])) for series in result]
        if kind == "matrix" and isinstance(result, list):
            return [_sample(*_point(point)) for series in result for point in _list(_series(series)["values"])]
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ProviderError(f"prometheus query {query!r}: unexpected result {_short(result)}") from err
    if kind in ("scalar", "vector", "matrix"):
        raise ProviderError(f"prometheus query {query!r}: unexpected result {_short(result)}")
    raise ProviderError(f"prometheus query {query!r}: Prometheus metric type not supported "
                        f"(resultType {_short(kind)}; Argo judges scalar, vector and matrix results)")


def instant_value(data: Any, *, query: str = "") -> float | list[float]:
    """The `result` from `data.result` alone, its resultType guessed from the shape."""
    kind = ("vector" if data == [] or (isinstance(data, list) and data and isinstance(data[0], dict)) else
            "scalar" if isinstance(data, list) and len(data) == 2 and isinstance(data[1], str) else None)
    if kind == "vector" and data and "value" not in data[0]:
        kind = "matrix"
    if kind == "scalar" and not _NUMBER.fullmatch(data[1]):
        kind = "string"
    return result_value({"resultType": kind, "result": data}, query=query)


def _series(series: Any) -> dict[str, Any]:
    if not isinstance(series, dict) or not isinstance(series.get("metric", {}), dict):
        raise ValueError("a series is not an object with metric labels")
    return series


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


def _point(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("a sample is not [time, value]")
    return value[0], value[1]


def _sample(at: Any, value: Any) -> float:
    """A Prometheus sample value: a string such as "0.97", "NaN", "+Inf"; anything else is ValueError."""
    _time(at)
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        raise ValueError(f"not a sample value: {_short(value, 40)}")
    return float(value)


def _time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("a sample time is not a number")
    return float(value)


def _error_text(answer: Answer) -> str:
    """`errorType: error` of a Prometheus error answer, else the start of its body."""
    text = answer.text()
    try:
        payload = jsonpath.load_json(text)
    except ValueError:
        return _short(text.strip())
    if isinstance(payload, dict) and "error" in payload:
        return _short(f"{payload.get('errorType', 'error')}: {payload['error']}")
    return _short(text.strip())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    return _aware(moment).timestamp()


def _short(thing: object, limit: int = 300) -> str:
    text = str(thing)
    return text if len(text) <= limit else text[:limit] + "..."

