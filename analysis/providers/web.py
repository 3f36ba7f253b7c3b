"""Web provider: an HTTP request whose answer (or a JSONPath into it) is the result.

Rules (Argo's metricproviders/webmetric, argo-rollouts.md §4.2 and §6):
- `method` is GET (default), POST or PUT; `body` (text) or `jsonBody` (any JSON; sets
  Content-Type: application/json) only with POST/PUT, never both. Args are already
  substituted by the caller.
- A 2xx body that parses as JSON is narrowed by `jsonPath` (default `{$}`, the whole
  document): one match is the result, several are a list, none is an error. JSON numbers
  are floats, as in Go. A body that is not JSON (or empty) is the result as a string.
- JSONPath is the subset Argo users write, hand-parsed: `{$.data.ok}`, `$.a.b`, `{.a.b}`,
  `$.items[0].value`, `$.items[-1]`, `$['a.b']`, `$.items[*].value`; braces optional.
  Anything else (filters, slices, `..`) is a clear error, never a guess.
- Bounded: `timeoutSeconds` (default 10) per request and for reading the body, at most
  MAX_REDIRECTS redirects, bodies capped at `max_body_bytes` (1 MiB) while streaming.
- Connection failures, timeouts and HTTP 5xx/429 are retried `attempts` times with the
  injected tenacity wait; then, and for any other non-2xx, ProviderError with the status
  and a truncated body. Messages show the URL without its query string or credentials,
  and never header values, because args (and secrets) may sit there.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity

from analysis.model import Metric, WebMetric
from analysis.providers import ATTEMPTS, DEFAULT_WAIT, ProviderError, Result, with_retries
from analysis.providers import Transient as _Transient

DEFAULT_TIMEOUT = 10  # seconds, as Argo
MAX_REDIRECTS = 3
MAX_BODY_BYTES = 1 << 20
_SHOWN_BODY = 200  # characters of an error body kept in messages

_STEP = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]|\[\*\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_ALL = object()


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
        self._session.max_redirects = MAX_REDIRECTS
        self._wait = retry_wait
        self._attempts = attempts
        self._max_body = max_body_bytes

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        config = metric.provider.web
        if config is None:
            raise ProviderError(f"metric {metric.name!r} has no provider.web")
        request = _Request.build(metric.name, config)
        path = parse_json_path(config.json_path or "{$}", metric=metric.name)
        try:
            text = with_retries(lambda: self._fetch(request), attempts=self._attempts, wait=self._wait)
        except _Transient as err:
            raise ProviderError(f"{request.shown} failed after {self._attempts} attempts: {err}") from err
        try:
            document = json.loads(text, parse_int=float)
        except ValueError:
            return Result(value=text)
        return Result(value=select(document, path, json_path=config.json_path or "{$}"))

    def _fetch(self, request: _Request) -> str:
        deadline = time.monotonic() + request.timeout
        try:
            with self._session.request(
                request.method, request.url, headers=request.headers, data=request.data,
                timeout=request.timeout, verify=request.verify, stream=True, allow_redirects=True,
            ) as response:
                body = self._read(response, request, deadline)
                if response.status_code >= 500 or response.status_code == 429:
                    raise _Transient(_status_message(response.status_code, body))
                if not 200 <= response.status_code < 300:
                    raise ProviderError(f"{request.shown}: {_status_message(response.status_code, body)}")
                return body
        except requests.Timeout as err:
            raise _Transient(f"no answer within the {request.timeout}s timeout") from err
        except requests.exceptions.SSLError as err:
            raise ProviderError(
                f"{request.shown}: TLS verification failed; fix the certificate or set insecure: true"
            ) from err
        except requests.ConnectionError as err:
            raise _Transient(f"cannot connect: {_errno(err)}") from err
        except requests.TooManyRedirects as err:
            raise ProviderError(f"{request.shown}: more than {MAX_REDIRECTS} redirects") from err
        except requests.RequestException as err:
            raise ProviderError(f"{request.shown}: {type(err).__name__}: {_errno(err)}") from err

    def _read(self, response: requests.Response, request: _Request, deadline: float) -> str:
        too_big = f"{request.shown}: response body larger than {self._max_body} bytes"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise ProviderError(too_big)
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > self._max_body:
                raise ProviderError(too_big)
            if time.monotonic() > deadline:
                raise _Transient(f"body not read within the {request.timeout}s timeout")
            chunks.append(chunk)
        return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None
    timeout: int
    verify: bool
    shown: str  # "web metric 'x': GET http://host/path", safe for messages

    @classmethod
    def build(cls, metric: str, config: WebMetric) -> _Request:
        method = config.method or "GET"
        try:
            parts = urlsplit(config.url)
            port = f":{parts.port}" if parts.port else ""
        except ValueError as err:
            raise ProviderError(f"web metric {metric!r}: url is not valid: {err}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderError(f"web metric {metric!r}: url must be an http(s) URL like https://host/path")
        shown = f"web metric {metric!r}: {method} {parts.scheme}://{parts.hostname}{port}{parts.path}"
        if config.body is not None and config.json_body is not None:
            raise ProviderError(f"{shown}: set either body or jsonBody, not both")
        if (config.body is not None or config.json_body is not None) and method == "GET":
            raise ProviderError(f"{shown}: Body/JSONBody can only be used with POST or PUT WebMetric Method types")
        headers = {header.key: header.value for header in config.headers or []}
        data: bytes | None = None
        if config.json_body is not None:
            headers.setdefault("Content-Type", "application/json")
            data = json.dumps(config.json_body).encode()
        elif config.body is not None:
            data = config.body.encode()
        timeout = config.timeout_seconds if config.timeout_seconds and config.timeout_seconds > 0 else DEFAULT_TIMEOUT
        return cls(method, config.url, headers, data, timeout, not config.insecure, shown)


def _status_message(status: int, body: str) -> str:
    shown = body if len(body) <= _SHOWN_BODY else body[:_SHOWN_BODY] + "..."
    return f"received non 2xx response code: {status}: {shown.strip()}"


def _errno(err: BaseException) -> str:
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", str(err))
    return found.group(0).strip() if found else str(err)[:300]


# ---------------------------------------------------------------- JSONPath subset

JsonPath = tuple[str | int | object, ...]


def parse_json_path(text: str, *, metric: str = "?") -> JsonPath:
    """Steps of a JSONPath: keys (str), indexes (int) and `[*]`.

    >>> parse_json_path("{$.items[0].value}")
    ('items', 0, 'value')
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    body = body.removeprefix("$")
    steps: list[str | int | object] = []
    position = 0
    while position < len(body):
        match = _STEP.match(body, position)
        if match is None or body.startswith("..", position):
            raise ProviderError(
                f"web metric {metric!r}: jsonPath {text!r} is not supported at {body[position:]!r} "
                "(supported: $.a.b, $.items[0], $['a.b'], $.items[*].value, with or without braces)"
            )
        key, index, quoted, double = match.groups()
        if key is not None:
            steps.append(_ALL if key == "*" else key)
        elif index is not None:
            steps.append(int(index))
        elif quoted is not None or double is not None:
            steps.append(quoted if quoted is not None else double)
        else:
            steps.append(_ALL)
        position = match.end()
    return tuple(steps)


def select(document: Any, path: JsonPath, *, json_path: str) -> Any:
    """The value at `path`: one match as is, several as a list, none a ProviderError."""
    nodes = [document]
    for step in path:
        nodes = [child for node in nodes for child in _children(node, step)]
    if not nodes:
        raise ProviderError(f"Could not find JSONPath {json_path} in body")
    return nodes[0] if len(nodes) == 1 and _ALL not in path else nodes


def _children(node: Any, step: str | int | object) -> list[Any]:
    if step is _ALL:
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if isinstance(step, int):
        if isinstance(node, list) and -len(node) <= step < len(node):
            return [node[step]]
        return []
    if isinstance(node, dict) and step in node:
        return [node[step]]
    return []
