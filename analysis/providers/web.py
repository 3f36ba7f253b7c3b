"""Web provider: an HTTP request whose answer (or a JSONPath into it) is the result.

Rules (Argo's metricproviders/webmetric, argo-rollouts.md §4.2 and §6):
- `method` is GET (default), POST or PUT; `body` (text) or `jsonBody` (any JSON; sets
  Content-Type: application/json) only with POST/PUT, never both. Args are already
  substituted by the caller.
- The url must be http(s), the jsonPath in the supported subset and timeoutSeconds not
  negative: the checks of `analysis.provider_checks`, run again here before any request.
- A 2xx body that parses as JSON is narrowed by `jsonPath` (default `{$}`, the whole
  document): one match is the result, several are a list, none is an error. JSON numbers
  are floats, as in Go. `measurement.value` is that result as Go's json.Marshal writes it
  (analysis.providers.gojson: `1` not `1.0`, strings quoted, keys sorted), as Argo's getValue.
  A body that is not JSON (or empty, or with NaN/Infinity tokens or a number beyond float64,
  which Go does not read either) is the
  result as a string, and `measurement.value` is the body as it came. A
  body whose brackets nest deeper than 64 levels (outside JSON strings) is an error, found
  by a linear scan, never by Python recursion. The body is decoded by its charset; an
  unknown or non-text charset decodes as UTF-8 with replacement characters.
- JSONPath is the subset Argo users write (analysis.jsonpath): `{$.data.ok}`,
  `$.a.b`, `{.a.b}`, `$.items[0].value`, `$.items[-1]`, `$['a.b']`, `$.items[*].value`;
  braces optional. Anything else (filters, slices, `..`) is a clear error, never a guess.
- Bounded (analysis.providers.fetch): `timeoutSeconds` (default 10) is the deadline of the
  whole measurement (connecting, every attempt, reading the body); at most MAX_REDIRECTS
  redirects, the metric's headers never sent to another origin; bodies capped at
  `max_body_bytes` (1 MiB) while streaming.
- Connection failures, timeouts and HTTP 5xx/429 are retried `attempts` times with the
  injected tenacity wait, within the deadline; then, and for any other non-2xx,
  ProviderError with the status and a truncated body. Messages show the URL without its
  query string or credentials, and never header values, because args (and secrets) may
  sit there. Nothing but ProviderError leaves `measure`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import requests
import tenacity

from analysis import jsonpath
from analysis import provider_checks as checks
from analysis.jsonpath import ALL, JsonPath
from analysis.model import Metric, WebMetric
from analysis.providers import ATTEMPTS, DEFAULT_WAIT, ProviderError, Result, gojson
from analysis.providers.fetch import MAX_REDIRECTS, Request, fetch, shown_url

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY_BYTES", "MAX_REDIRECTS", "WebProvider", "parse_json_path", "select"]

DEFAULT_TIMEOUT = 10  # seconds, as Argo
MAX_BODY_BYTES = 1 << 20
_SHOWN_BODY = 200  # characters of an error body kept in messages


class WebProvider:
    """`measure(metric, at=...)` for metrics with `provider.web` (`at` is not used: the web is live)."""

    def __init__(
        self,
        *,
        session: requests.Session | None = None,
        retry_wait: tenacity.wait.wait_base = DEFAULT_WAIT,
        attempts: int = ATTEMPTS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._session = session or requests.Session()
        self._wait = retry_wait
        self._attempts = attempts
        self._max_body = max_body_bytes

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        config = metric.provider.web
        if config is None:
            raise ProviderError(f"metric {metric.name!r} has no provider.web")
        shown = f"web metric {metric.name!r}"
        try:
            request = _build(shown, config, self._max_body)
            path = parse_json_path(config.json_path or "{$}", metric=metric.name)
            answer = fetch(self._session, request, attempts=self._attempts, wait=self._wait,
                           describe=lambda a: _status_message(a.status, a.text()))
            if not 200 <= answer.status < 300:
                raise ProviderError(f"{request.shown}: {_status_message(answer.status, answer.text())}")
            text = answer.text()
            try:
                document = jsonpath.load_json(text, parse_int=float, strict=True)
            except jsonpath.TooDeep as err:
                raise ProviderError(f"{request.shown}: the answer is {err}") from None
            except ValueError:
                return Result(value=text)
            value = select(document, path, json_path=config.json_path or "{$}")
            try:
                return Result(value=value, text=gojson.marshal(value))
            except ValueError as err:  # unreachable: strict reading lets no NaN or infinity in
                raise ProviderError(f"{request.shown}: the value cannot be written as JSON ({err})") from None
        except ProviderError:
            raise
        except Exception as err:  # the contract: nothing but ProviderError leaves a provider
            raise ProviderError(f"{shown}: the measurement failed unexpectedly ({type(err).__name__})") from err


def _build(shown: str, config: WebMetric, max_body: int) -> Request:
    for problem in (checks.web_url_problem(config.url), checks.json_path_problem(config.json_path),
                    checks.web_timeout_problem(config.timeout_seconds)):
        if problem is not None:
            raise ProviderError(f"{shown}: {problem.sentence()}")
    method = config.method or "GET"
    shown = f"{shown}: {method} {shown_url(config.url)}"
    if config.body is not None and config.json_body is not None:
        raise ProviderError(f"{shown}: set either body or jsonBody, not both")
    if (config.body is not None or config.json_body is not None) and method == "GET":
        raise ProviderError(f"{shown}: Body/JSONBody can only be used with POST or PUT WebMetric Method types")
    headers = {header.key: header.value for header in config.headers or []}
    data: bytes | None = None
    content_type = None
    if config.json_body is not None:
        content_type = "application/json"
        data = json.dumps(config.json_body).encode()
    elif config.body is not None:
        data = config.body.encode()
    timeout = config.timeout_seconds if config.timeout_seconds and config.timeout_seconds > 0 else DEFAULT_TIMEOUT
    return Request(method, config.url, shown, timeout, max_body, headers=headers, data=data,
                   content_type=content_type, verify=not config.insecure)


def _status_message(status: int, body: str) -> str:
    shown = body if len(body) <= _SHOWN_BODY else body[:_SHOWN_BODY] + "..."
    return f"received non 2xx response code: {status}: {shown.strip()}"


# ---------------------------------------------------------------- JSONPath subset


def parse_json_path(text: str, *, metric: str = "?") -> JsonPath:
    """Steps of a JSONPath: keys (str), indexes (int) and `[*]`.

    >>> parse_json_path("{$.items[0].value}")
    ('items', 0, 'value')
    """
    try:
        return jsonpath.parse(text)
    except jsonpath.JsonPathError as err:
        raise ProviderError(f"web metric {metric!r}: {err} ({jsonpath.SUPPORTED})") from None


def select(document: Any, path: JsonPath, *, json_path: str) -> Any:
    """The value at `path`: one match as is, several as a list, none a ProviderError."""
    nodes = jsonpath.select(document, path)
    if not nodes:
        raise ProviderError(f"Could not find JSONPath {json_path} in body")
    return nodes[0] if len(nodes) == 1 and ALL not in path else nodes
