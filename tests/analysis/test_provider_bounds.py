"""Provider bounds against real local HTTP servers: deadlines, body caps, deep JSON, odd charsets,
which causes are told apart, and the spec checks (analysis.provider_checks) the providers share.

Each server behaviour is a path prefix on one ThreadingHTTPServer (127.0.0.1, free port). A
Prometheus address is `{server}/<behaviour>`, so its /api/v1/query lands on that behaviour.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import tenacity

from analysis.model import Metric
from analysis.providers import ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider
from tests.http_calls import calls_to

AT = datetime(2024, 1, 1, tzinfo=UTC)
OK = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]}})
SERIES = b'{"metric":{"__name__":"up","job":"a-rather-long-job-name"},"value":[1704067200,"1"]},'
CLOSING = threading.Event()  # set when the module's server shuts down: every waiting handler returns


def deep(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def trickle(handler: BaseHTTPRequestHandler, body: bytes, every: float) -> None:
    for byte in body:
        if CLOSING.wait(every):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


BEHAVIOURS: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}


def behaviour(prefix: str) -> Callable[[Callable[[BaseHTTPRequestHandler], None]], Callable[..., None]]:
    def register(function: Callable[[BaseHTTPRequestHandler], None]) -> Callable[..., None]:
        BEHAVIOURS[prefix] = function
        return function
    return register


def head(handler: BaseHTTPRequestHandler, length: int | None, content_type: str = "application/json") -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()
    handler.wfile.flush()


@behaviour("/one-byte-a-second")
def _one_byte(handler: BaseHTTPRequestHandler) -> None:
    body = OK.encode() if "/api/v1/" in handler.path else b'{"ok": true, "padding": "....................."}'
    head(handler, len(body))
    trickle(handler, body, 1.0)


@behaviour("/hang")
def _hang(handler: BaseHTTPRequestHandler) -> None:
    CLOSING.wait(60)


@behaviour("/stall-body")
def _stall_body(handler: BaseHTTPRequestHandler) -> None:
    body = OK.encode()
    head(handler, len(body))
    handler.wfile.write(body[:10])
    handler.wfile.flush()
    CLOSING.wait(60)


@behaviour("/endless")
def _endless(handler: BaseHTTPRequestHandler) -> None:
    head(handler, None)  # HTTP/1.0, no length: the body ends when the server closes
    handler.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
    block = SERIES * 1000
    for _ in range((64 << 20) // len(block)):  # 64 MiB unless the client hangs up first
        if CLOSING.is_set():
            return
        handler.wfile.write(block)


@behaviour("/declares-300mb")
def _declares(handler: BaseHTTPRequestHandler) -> None:
    head(handler, 300 << 20)
    handler.wfile.write(b'{"status":"success"')
    CLOSING.wait(60)


@behaviour("/deep")
def _deep(handler: BaseHTTPRequestHandler) -> None:
    levels = int(handler.path.split("/")[2])
    body = deep(levels)
    if "/api/v1/" in handler.path:
        body = b'{"status":"success","data":{"resultType":"vector","result":' + body + b"}}"
    head(handler, len(body))
    handler.wfile.write(body)


@behaviour("/ok")
def _ok(handler: BaseHTTPRequestHandler) -> None:
    head(handler, len(OK))
    handler.wfile.write(OK.encode())


@behaviour("/utf8mb4")
def _utf8mb4(handler: BaseHTTPRequestHandler) -> None:
    body = json.dumps({"ok": True, "name": "caf\u00e9"}, ensure_ascii=False).encode()
    head(handler, len(body), "application/json; charset=utf8mb4")
    handler.wfile.write(body)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        for prefix, function in BEHAVIOURS.items():
            if self.path.startswith(prefix):
                function(self)
                return
        self.send_error(404)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose (deadlines, caps): broken pipes are expected


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    CLOSING.clear()
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    CLOSING.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def web(url: str, **config: Any) -> Metric:
    return Metric.load({"name": "hook", "provider": {"web": {"url": url, **config}}})


def prom(address: str, query: str = "up", **config: Any) -> Metric:
    return Metric.load({"name": "m", "provider": {"prometheus": {"address": address, "query": query, **config}}})


def web_provider() -> WebProvider:
    return WebProvider(retry_wait=tenacity.wait_none())


def prom_provider() -> PrometheusProvider:
    return PrometheusProvider(retry_wait=tenacity.wait_none())


def failure(call: Callable[[], object]) -> str:
    """The ProviderError message of `call()`; any other exception (or a value) fails the test."""
    with pytest.raises(ProviderError) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------- defect 8: one deadline per measurement


@pytest.mark.timeout(20)
def test_prometheus_timeout_bounds_an_answer_sent_one_byte_a_second(server: str) -> None:
    message = failure(lambda: prom_provider().measure(prom(f"{server}/one-byte-a-second", timeout=2), at=AT))
    assert "deadline exceeded: the answer was not complete within the 2s timeout" in message


@pytest.mark.timeout(20)
def test_web_timeout_bounds_an_answer_sent_one_byte_a_second(server: str) -> None:
    message = failure(lambda: web_provider().measure(web(f"{server}/one-byte-a-second", timeoutSeconds=2), at=AT))
    assert "deadline exceeded: the answer was not complete within the 2s timeout" in message


@pytest.mark.timeout(20)
def test_a_hung_prometheus_holds_the_worker_one_timeout_not_one_per_attempt(server: str) -> None:
    started = time.monotonic()
    message = failure(lambda: prom_provider().measure(prom(f"{server}/hang", timeout=2), at=AT))
    assert "failed after 1 attempt: no answer within the 2s timeout" in message
    assert time.monotonic() - started < 3 * 2  # three attempts of 2 s each took 6 s and more


@pytest.mark.timeout(20)
def test_a_hung_web_backend_holds_the_worker_one_timeout_not_one_per_attempt(server: str) -> None:
    message = failure(lambda: web_provider().measure(web(f"{server}/hang", timeoutSeconds=1), at=AT))
    assert "failed after 1 attempt: no answer within the 1s timeout" in message


@pytest.mark.timeout(60)
def test_a_huge_prometheus_answer_is_cut_at_the_cap_while_streaming(server: str) -> None:
    tracemalloc.start()
    try:
        message = failure(lambda: prom_provider().measure(prom(f"{server}/endless"), at=AT))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "response body larger than 16777216 bytes" in message
    assert peak < 40 << 20, f"peak {peak >> 20} MiB while refusing a 64 MiB answer"


@pytest.mark.timeout(20)
def test_a_declared_huge_prometheus_answer_is_refused_before_reading(server: str) -> None:
    message = failure(lambda: prom_provider().measure(prom(f"{server}/declares-300mb", timeout=10), at=AT))
    assert "response body larger than 16777216 bytes" in message


@responses.activate
def test_retries_stop_at_the_deadline_not_only_after_the_attempts() -> None:
    responses.get("http://prom.test/api/v1/query", status=503, body="busy")
    wait = tenacity.wait_fixed(5)  # a 5 s wait does not fit into the 2 s timeout: no second attempt
    provider = PrometheusProvider(retry_wait=wait)
    message = failure(lambda: provider.measure(prom("http://prom.test", timeout=2), at=AT))
    assert "failed after 1 attempt (the 2s timeout left no time for another): HTTP 503: busy" in message
    assert len(calls_to("http://prom.test/api/v1/query")) == 1


# ---------------------------------------------------------------- defect 10: causes told apart


@pytest.mark.timeout(20)
def test_a_body_that_stops_coming_is_not_reported_as_cannot_connect(server: str) -> None:
    for provider, metric in ((prom_provider(), prom(f"{server}/stall-body", timeout=1)),
                             (web_provider(), web(f"{server}/stall-body", timeoutSeconds=1))):
        message = failure(lambda: provider.measure(metric, at=AT))  # noqa: B023 - called at once
        assert "cannot connect" not in message
        assert "deadline exceeded: the answer was not complete within the 1s timeout" in message


@responses.activate
def test_a_connect_timeout_is_cannot_connect_and_a_read_timeout_no_answer() -> None:
    responses.get("http://hooks.test/connect", body=requests.exceptions.ConnectTimeout("slow SYN"))
    responses.get("http://hooks.test/read", body=requests.exceptions.ReadTimeout("slow answer"))
    connect = failure(lambda: web_provider().measure(web("http://hooks.test/connect", timeoutSeconds=4), at=AT))
    read = failure(lambda: web_provider().measure(web("http://hooks.test/read", timeoutSeconds=4), at=AT))
    assert "failed after 3 attempts: cannot connect within the 4s timeout" in connect
    assert "failed after 3 attempts: no answer within the 4s timeout" in read


def test_connection_refused_is_cannot_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = failure(lambda: prom_provider().measure(prom(f"http://127.0.0.1:{port}"), at=AT))
    assert "failed after 3 attempts: cannot connect: [Errno 111] Connection refused" in message


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same behaviours over HTTPS with a self-signed certificate (made by the openssl CLI)."""
    where: Path = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_unless_insecure(tls_server: str) -> None:
    message = failure(lambda: web_provider().measure(web(f"{tls_server}/utf8mb4"), at=AT))
    assert "TLS verification failed ([SSL: CERTIFICATE_VERIFY_FAILED]" in message and "insecure: true" in message
    assert "Max retries" not in message and "/utf8mb4" in message
    assert web_provider().measure(web(f"{tls_server}/utf8mb4", insecure=True), at=AT).value == {
        "ok": True, "name": "caf\u00e9"}
    message = failure(lambda: prom_provider().measure(prom(f"{tls_server}/ok"), at=AT))
    assert "TLS verification failed" in message
    assert prom_provider().measure(prom(f"{tls_server}/ok", insecure=True), at=AT).value == [1.0]


# ---------------------------------------------------------------- defect 1: only ProviderError escapes


def test_an_unknown_charset_decodes_as_utf8(server: str) -> None:
    value = web_provider().measure(web(f"{server}/utf8mb4"), at=AT).value
    assert value == {"ok": True, "name": "caf\u00e9"}


@pytest.mark.parametrize("levels", [65, 400, 5000])
def test_deep_web_json_is_a_provider_error(server: str, levels: int) -> None:
    message = failure(lambda: web_provider().measure(web(f"{server}/deep/{levels}"), at=AT))
    assert "JSON nested deeper than 64 levels" in message


def test_web_json_at_the_depth_limit_is_a_value(server: str) -> None:
    value = web_provider().measure(web(f"{server}/deep/63"), at=AT).value
    for _ in range(63):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 1.0


@pytest.mark.parametrize("levels", [400, 5000])
def test_deep_prometheus_json_is_a_provider_error(server: str, levels: int) -> None:
    message = failure(lambda: prom_provider().measure(prom(f"{server}/deep/{levels}"), at=AT))
    assert "JSON nested deeper than 64 levels" in message


# ---------------------------------------------------------------- defect 2: metrics that can never succeed


@pytest.mark.parametrize("timeout", [0, -1])
def test_prometheus_timeout_zero_or_negative_is_refused_without_a_request(timeout: int) -> None:
    with responses.RequestsMock():  # any HTTP call fails the test
        message = failure(lambda: prom_provider().measure(prom("http://prom.test", timeout=timeout), at=AT))
    assert f"timeout must be positive seconds, got {timeout}" in message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://files.test/x", "data:application/json,{}"])
def test_web_url_schemes_other_than_http_are_refused(url: str) -> None:
    with responses.RequestsMock():
        assert "url must be an http(s) URL" in failure(lambda: web_provider().measure(web(url), at=AT))


def test_metric_problems_lists_every_rule_with_paths_relative_to_the_metric() -> None:
    from analysis.provider_checks import SpecProblem, metric_problems

    bad_web = web("ftp://files.test/x", jsonPath="$..a", timeoutSeconds=-1)
    assert [p.path for p in metric_problems(bad_web)] == [
        "provider.web.url", "provider.web.jsonPath", "provider.web.timeoutSeconds"]
    bad_prom = prom("prom:9090", timeout=0)
    problems = metric_problems(bad_prom)
    assert [p.path for p in problems] == ["provider.prometheus.address", "provider.prometheus.timeout"]
    assert all(isinstance(p, SpecProblem) and p.message and p.fix for p in problems)
    assert problems[0].message == "address is not an http(s) URL (scheme 'prom:')"
    assert metric_problems(web("https://x.test/a", jsonPath="{$.items[*].value}", timeoutSeconds=0)) == []
    assert metric_problems(prom("http://prom:9090", timeout=5)) == []
    assert metric_problems(Metric.load({"name": "m", "provider": {"prometheus": {"query": "up"}}})) == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("{{args.url}}", None),  # the scheme comes from an arg: not checked before substitution
        ("{{ args.scheme }}://host/x", None),
        ("https://{{args.host}}:{{args.port}}/x", None),  # only the scheme is checked
        ("ftp://{{args.host}}/x", "url must be an http(s) URL (scheme 'ftp:')"),
        ("data:text/plain,hello", "url must be an http(s) URL (scheme 'data:')"),
        ("FILE:///etc/passwd", "url must be an http(s) URL (scheme 'FILE:')"),
        ("host.test/path", "url must be an http(s) URL (no http:// or https:// scheme)"),
        ("http:///x", "url must be an http(s) URL with a host"),
        ("http://host:port/x", "url is not valid: Port could not be cast to integer value as 'port'"),
        ("HTTPS://host.test/x?token=abc", None),
    ],
)
def test_web_url_rule(url: str, problem: str | None) -> None:
    from analysis.provider_checks import web_url_problem

    found = web_url_problem(url)
    assert (found.message if found else None) == problem
    assert found is None or (found.path == "provider.web.url" and "token" not in found.message)


@pytest.mark.parametrize(
    ("json_path", "bad"),
    [(None, False), ("{$}", False), ("$.a['b.c'][0]", False), ("$..a", True), ("$.a[?(@.b)]", True),
     ("$.a[0:2]", True), ("{$.{{args.key}}}", False)],
)
def test_json_path_rule(json_path: str | None, bad: bool) -> None:
    from analysis.provider_checks import json_path_problem

    found = json_path_problem(json_path)
    assert (found is not None) is bad
    assert found is None or ("is not supported" in found.message and "$.a.b" in found.fix)


@pytest.mark.parametrize(("address", "bad"), [(None, False), ("", False), ("http://p:9090", False),
                                              ("{{args.prom}}", False), ("prom:9090", True), ("ftp://p", True)])
def test_prometheus_address_rule(address: str | None, bad: bool) -> None:
    from analysis.provider_checks import prometheus_address_problem

    assert (prometheus_address_problem(address) is not None) is bad


def test_timeout_rules() -> None:
    from analysis.provider_checks import prometheus_timeout_problem, web_timeout_problem

    assert [prometheus_timeout_problem(t) is not None for t in (None, 1, 0, -1)] == [False, False, True, True]
    assert [web_timeout_problem(t) is not None for t in (None, 1, 0, -1)] == [False, False, False, True]
