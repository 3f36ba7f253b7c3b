"""One bounded HTTP fetch for the metric providers: a deadline, a body cap, safe redirects.

Rules:
- `fetch(session, request, attempts=, wait=, describe=)` is one measurement's HTTP call,
  inside ONE deadline of `request.timeout` seconds that covers connecting, every attempt,
  the waits between attempts, waiting for the answer and reading the body. Every socket
  read waits at most the time left (rounded up to 0.1 s); the body is read piece by piece
  (`read1`), the deadline checked between pieces, so a server trickling bytes cannot hold
  a worker past it. Not bounded: name resolution (getaddrinfo) and headers trickled a byte
  at a time (each read is bounded, their number only by http.client's header limits).
- Transient faults (connection refused or reset, timeouts, HTTP 5xx and 429) are retried up
  to `attempts` times with the `wait` between them, never past the deadline; then
  ProviderError "`shown` failed after N attempt(s): cause". `describe(answer)` words a 5xx/429.
- Every other final answer (2xx, 4xx, ...) is returned as `Answer` for the provider to judge.
- Bodies are capped at `request.max_body` bytes, decompressed size, by Content-Length and
  while streaming; a body is never loaded first and measured after.
- Redirects are followed by hand (requests' own handling would read a redirect's body
  unbounded), at most MAX_REDIRECTS, to http(s) only; 302/303 go on as GET (301 only after a
  POST), 307/308 keep the method and body.
  A hop to another origin (scheme, host, port) carries none of the metric's headers and no
  basic auth or signature: tokens reach only the origin they were written for. A request whose
  body holds credentials (`secret_body`: an OAuth2 token request) is not sent to another
  origin at all (a 307/308 would repeat its body there).
- Causes are told apart: "cannot connect: [Errno ...]", "cannot connect within the Ns
  timeout", "no answer within the Ns timeout", "deadline exceeded: ...", "response body
  larger than N bytes". Messages start with `request.shown` and never hold a URL query,
  a header value or exception text (which may hold either), only an `[Errno N]` or
  `[SSL: ...]` reason or an exception's type name.
"""

from __future__ import annotations

import codecs
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
import urllib3.exceptions
from requests.utils import get_encoding_from_headers

from analysis.providers import ProviderError, Transient, with_retries

MAX_REDIRECTS = 3
_CHUNK = 65536
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")
_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\][^'\"()]*")
_GET_AFTER = {303: ("HEAD",), 302: ("HEAD",), 301: ("GET", "HEAD", "PUT")}  # methods kept; others become GET
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    shown: str  # "web metric 'x': GET http://host/path": safe for messages
    timeout: float  # seconds for the whole measurement
    max_body: int
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # the metric's: sent to its own origin only
    auth: tuple[str, str] | requests.auth.AuthBase | None = None  # basic auth, or a signer (SigV4)
    data: bytes | None = None
    content_type: str | None = None  # of `data`, when the provider chose it
    verify: bool = True
    secret_body: bool = False  # `data` holds credentials: never sent to another origin


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    charset: str | None = None  # from Content-Type, as requests reads it

    def text(self) -> str:
        """The body decoded by its charset; an unknown or non-text charset decodes as UTF-8 with replacement."""
        if self.charset:
            try:
                if codecs.lookup(self.charset)._is_text_encoding:
                    return self.body.decode(self.charset, errors="replace")
            except (LookupError, ValueError, TypeError):
                pass
        return self.body.decode("utf-8", errors="replace")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def socket_timeout(self) -> float:
        """The time left rounded up to 0.1 s (at least 0.1): what one connect or read may wait."""
        return max(math.ceil(self.left() * 10) / 10, 0.1)


def fetch(
    session: requests.Session, request: Request, *, attempts: int, wait: tenacity.wait.wait_base,
    describe: Callable[[Answer], str],
) -> Answer:
    deadline = Deadline(request.timeout)

    def attempt() -> Answer:
        answer = _follow(session, request, deadline)
        if answer.status >= 500 or answer.status == 429:
            raise Transient(describe(answer))
        return answer

    try:
        return with_retries(attempt, attempts=attempts, wait=wait, deadline=deadline.at)
    except Transient as err:
        tries = f"{err.attempts} attempt" + ("s" if err.attempts != 1 else "")
        cut = err.attempts < attempts and not err.timed_out
        why = f" (the {_seconds(request.timeout)}s timeout left no time for another)" if cut else ""
        raise ProviderError(f"{request.shown} failed after {tries}{why}: {err}") from err


def _follow(session: requests.Session, request: Request, deadline: Deadline) -> Answer:
    """One attempt: the request and its redirects, the final answer read within the deadline."""
    origin = _origin(request.url)
    method, url, data, params = request.method, request.url, request.data, dict(request.params)
    for _ in range(MAX_REDIRECTS + 1):
        own = _origin(url) == origin
        if not own and request.secret_body and data is not None:
            raise ProviderError(f"{request.shown}: redirected to another origin, and the request carries credentials")
        headers = dict(request.headers) if own else {}
        if data is not None and request.content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = request.content_type
        response = _send(session, request, method, url, params, headers, request.auth if own else None, data,
                         deadline)
        with response:
            target = session.get_redirect_target(response)
            if target is None:
                return _read(response, request, deadline)
        url = urljoin(response.url, target).split("#", 1)[0]
        if urlsplit(url).scheme not in ("http", "https"):
            raise ProviderError(f"{request.shown}: redirected to a URL that is not http(s)")
        params = {}
        if method not in _GET_AFTER.get(response.status_code, (method,)):
            method, data = "GET", None
    raise ProviderError(f"{request.shown}: more than {MAX_REDIRECTS} redirects")


def _send(
    session: requests.Session, request: Request, method: str, url: str, params: Mapping[str, str],
    headers: Mapping[str, str], auth: tuple[str, str] | requests.auth.AuthBase | None, data: bytes | None,
    deadline: Deadline,
) -> requests.Response:
    timeout = _seconds(deadline.seconds)
    if deadline.left() <= 0:
        raise Transient(f"deadline exceeded: no complete answer within the {timeout}s timeout", timed_out=True)
    try:
        prepared = session.prepare_request(
            requests.Request(method, url, params=params or None, headers=dict(headers), auth=auth, data=data))
        settings = session.merge_environment_settings(prepared.url, {}, True, request.verify, None)
        verify = settings["verify"] if settings["verify"] is not None else request.verify
        adapter = session.get_adapter(prepared.url or url)
        return adapter.send(prepared, stream=True, timeout=deadline.socket_timeout(), verify=verify,
                            cert=settings.get("cert"), proxies=settings["proxies"])
    except requests.exceptions.ConnectTimeout as err:
        raise Transient(f"cannot connect within the {timeout}s timeout", timed_out=True) from err
    except requests.exceptions.ReadTimeout as err:
        raise Transient(f"no answer within the {timeout}s timeout", timed_out=True) from err
    except requests.exceptions.SSLError as err:
        found = _SSL_REASON.search(str(err))
        reason = found.group(0).strip() if found else cause(err)
        what = "TLS verification failed" if "CERTIFICATE_VERIFY_FAILED" in reason else "TLS failed"
        raise ProviderError(f"{request.shown}: {what} ({reason}); fix the certificate or set insecure: true") from err
    except requests.ConnectionError as err:
        raise Transient(f"cannot connect: {cause(err)}") from err
    except (requests.RequestException, ValueError, urllib3.exceptions.HTTPError) as err:
        raise ProviderError(f"{request.shown}: the request could not be sent ({type(err).__name__})") from err


def _read(response: requests.Response, request: Request, deadline: Deadline) -> Answer:
    too_big = f"{request.shown}: response body larger than {request.max_body} bytes"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > request.max_body:
        raise ProviderError(too_big)
    timeout = _seconds(deadline.seconds)
    late = f"deadline exceeded: the answer was not complete within the {timeout}s timeout"
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if deadline.left() <= 0:
                raise Transient(late, timed_out=True)
            _limit_socket_wait(response, deadline.socket_timeout())
            chunk = response.raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > request.max_body:
                raise ProviderError(too_big)
            chunks.append(chunk)
        response.raw.release_conn()  # read to the end: the connection may serve the next request
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as err:
        raise Transient(late, timed_out=True) from err
    except urllib3.exceptions.DecodeError as err:
        raise ProviderError(f"{request.shown}: the answer's Content-Encoding could not be decoded") from err
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
        raise Transient(f"the answer broke off ({type(err).__name__})") from err
    charset = None
    try:
        charset = get_encoding_from_headers(response.headers)
    except (ValueError, TypeError, LookupError):
        pass
    return Answer(response.status_code, b"".join(chunks), charset)


def _limit_socket_wait(response: requests.Response, seconds: float) -> None:
    """The next read of `response`'s socket waits at most `seconds` (no socket, e.g. a fake: nothing)."""
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(seconds)
        except OSError:
            pass


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        return parts.scheme.lower(), (parts.hostname or "").lower(), port
    except ValueError:
        return "", url, None


def cause(err: BaseException) -> str:
    """The `[Errno N] reason` inside a requests error, else the innermost error's type: never the
    text, where URLs (with their queries) sit."""
    found = _ERRNO.search(str(err))
    if found:
        return found.group(0).strip()
    node: object = err
    for _ in range(6):
        inner = getattr(node, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in getattr(node, "args", ()) if isinstance(a, BaseException)), None)
        if inner is None:
            break
        node = inner
    return type(node).__name__


def shown_url(url: str) -> str:
    """scheme://host:port/path of `url`: no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    except ValueError:
        return "(an invalid URL)"


def _seconds(value: float) -> str:
    return f"{value:g}"
