"""Web provider: end to end against a real local HTTP server, and with `responses` for faults."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests
import responses
import tenacity

from analysis.model import Metric
from analysis.providers import ProviderError
from analysis.providers.web import MAX_BODY_BYTES, WebProvider, parse_json_path, select
from tests.http_calls import calls_to

AT = datetime(2024, 1, 1, tzinfo=UTC)


def metric(url: str, **web: Any) -> Metric:
    return Metric.load({"name": "hook", "provider": {"web": {"url": url, **web}}})


def provider() -> WebProvider:
    return WebProvider(retry_wait=tenacity.wait_none())


# ---------------------------------------------------------------- a real server


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep test output clean

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        if "no-length" not in self.path:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, dict(self.headers), b""))
        if self.path == "/status":
            payload = {"data": {"ok": True, "rate": 0.97}, "items": [{"value": 3}, {"value": 4}]}
            self._send(200, json.dumps(payload).encode())
        elif self.path == "/text":
            self._send(200, b"all good", "text/plain")
        elif self.path == "/empty":
            self._send(200, b"", "text/plain")
        elif self.path.startswith("/giant"):
            self._send(200, b"x" * (MAX_BODY_BYTES + 1), "text/plain")
        elif self.path == "/loop":
            self._send(302, b"", Location="/loop")
        elif self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            self._send(302, b"", Location=f"/hop/{left - 1}" if left > 1 else "/status")
        else:
            self._send(404, b'{"error": "no such page"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.seen.append(("POST", self.path, dict(self.headers), body))
        self._send(200, json.dumps({"received": body.decode(), "type": self.headers.get("Content-Type")}).encode())

    do_PUT = do_POST


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hangs up on purpose in the giant-body test; a broken pipe is expected


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.parametrize(
    ("json_path", "expected"),
    [
        ("{$.data.ok}", True),
        ("$.data.rate", 0.97),
        ("{.data.rate}", 0.97),
        ("{$.items[0].value}", 3.0),
        ("{$.items[-1].value}", 4.0),
        ("$.items[*].value", [3.0, 4.0]),
        ("{$['data']['ok']}", True),
        (None, {"data": {"ok": True, "rate": 0.97}, "items": [{"value": 3.0}, {"value": 4.0}]}),
    ],
)
def test_json_with_json_path(server: str, json_path: str | None, expected: object) -> None:
    extra = {"jsonPath": json_path} if json_path else {}
    assert provider().measure(metric(f"{server}/status", **extra), at=AT).value == expected


def test_json_numbers_are_floats_as_in_go(server: str) -> None:
    value = provider().measure(metric(f"{server}/status", jsonPath="{$.items[0].value}"), at=AT).value
    assert type(value) is float


def test_missing_json_path_is_an_error(server: str) -> None:
    with pytest.raises(ProviderError, match=r"Could not find JSONPath \{\$.data.missing\} in body"):
        provider().measure(metric(f"{server}/status", jsonPath="{$.data.missing}"), at=AT)


def test_post_with_body_and_headers(server: str) -> None:
    config = {"method": "POST", "body": "canary=web-canary", "headers": [{"key": "X-Token", "value": "t1"}],
              "jsonPath": "{$.received}"}
    assert provider().measure(metric(f"{server}/judge", **config), at=AT).value == "canary=web-canary"
    method, path, headers, body = Handler.seen[-1]
    assert (method, path, headers["X-Token"], body) == ("POST", "/judge", "t1", b"canary=web-canary")


def test_put_with_json_body_sets_content_type(server: str) -> None:
    config = {"method": "PUT", "jsonBody": {"weight": 20}}
    value = provider().measure(metric(f"{server}/gate", **config), at=AT).value
    assert value == {"received": '{"weight": 20}', "type": "application/json"}


def test_non_json_body_is_a_string(server: str) -> None:
    assert provider().measure(metric(f"{server}/text"), at=AT).value == "all good"
    assert provider().measure(metric(f"{server}/empty"), at=AT).value == ""


@pytest.mark.parametrize("path", ["/giant", "/giant-no-length"])
def test_giant_body_is_refused(server: str, path: str) -> None:
    with pytest.raises(ProviderError, match=f"response body larger than {MAX_BODY_BYTES} bytes"):
        provider().measure(metric(f"{server}{path}"), at=AT)


def test_redirects_are_followed_but_bounded(server: str) -> None:
    assert provider().measure(metric(f"{server}/hop/3", jsonPath="$.data.ok"), at=AT).value is True
    with pytest.raises(ProviderError, match="more than 3 redirects"):
        provider().measure(metric(f"{server}/hop/4"), at=AT)
    with pytest.raises(ProviderError, match="more than 3 redirects"):
        provider().measure(metric(f"{server}/loop"), at=AT)


def test_404_is_an_error_with_status_and_body_not_retried(server: str) -> None:
    before = len(Handler.seen)
    with pytest.raises(ProviderError) as caught:
        provider().measure(metric(f"{server}/nope?token=abc"), at=AT)
    assert "received non 2xx response code: 404" in str(caught.value)
    assert "no such page" in str(caught.value)
    assert "token=abc" not in str(caught.value)  # query strings may carry secrets
    assert len(Handler.seen) == before + 1


def test_connection_refused_after_bounded_retries() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError, match=r"failed after 3 attempts: cannot connect: .*Connection refused"):
        provider().measure(metric(f"http://127.0.0.1:{port}/x"), at=AT)


# ---------------------------------------------------------------- faults with `responses`

URL = "http://hooks.test/check"


@responses.activate
def test_5xx_then_200_is_retried_and_succeeds() -> None:
    responses.get(URL, status=503, body="busy")
    responses.get(URL, json={"ok": True})
    assert provider().measure(metric(URL, jsonPath="{$.ok}"), at=AT).value is True
    assert len(calls_to(URL)) == 2


@responses.activate
def test_repeated_5xx_is_an_error_with_status_and_truncated_body() -> None:
    responses.get(URL, status=500, body="E" * 1000)
    with pytest.raises(ProviderError) as caught:
        provider().measure(metric(URL), at=AT)
    message = str(caught.value)
    assert message.startswith("web metric 'hook': GET http://hooks.test/check failed after 3 attempts")
    assert "received non 2xx response code: 500: " + "E" * 200 + "..." in message
    assert "E" * 201 not in message
    assert len(calls_to(URL)) == 3


@responses.activate
def test_timeout_is_retried_then_reported() -> None:
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(ProviderError, match="failed after 3 attempts: no answer within the 4s timeout"):
        provider().measure(metric(URL, timeoutSeconds=4), at=AT)
    assert len(calls_to(URL)) == 3
    assert calls_to(URL)[0].request.req_kwargs["timeout"] == 4  # type: ignore[attr-defined]


@responses.activate
def test_default_timeout_and_tls_verification() -> None:
    responses.get("https://hooks.test/a", body="ok")
    responses.get("https://hooks.test/b", body="ok")
    provider().measure(metric("https://hooks.test/a"), at=AT)
    provider().measure(metric("https://hooks.test/b", insecure=True, timeoutSeconds=0), at=AT)
    [first], [second] = ([call.request.req_kwargs for call in calls_to(f"https://hooks.test/{path}")]  # type: ignore[attr-defined]
                         for path in "ab")
    assert first["timeout"] == 10 and first["verify"] not in (False, None)
    assert second["timeout"] == 10 and second["verify"] is False


@responses.activate
def test_garbage_json_is_a_string_result() -> None:
    responses.get(URL, body='{"half": ', content_type="application/json")
    assert provider().measure(metric(URL, jsonPath="{$.half}"), at=AT).value == '{"half": '


@responses.activate
def test_header_values_are_sent_but_never_shown() -> None:
    responses.get(URL, status=401, body="denied")
    config = {"headers": [{"key": "Authorization", "value": "Bearer very-secret"}]}
    with pytest.raises(ProviderError) as caught:
        provider().measure(metric(URL, **config), at=AT)
    assert calls_to(URL)[0].request.headers["Authorization"] == "Bearer very-secret"
    assert "very-secret" not in str(caught.value) and "401" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"body": "x"}, "Body/JSONBody can only be used with POST or PUT"),
        ({"method": "POST", "body": "x", "jsonBody": {}}, "either body or jsonBody"),
        ({"jsonPath": "$..deep"}, "jsonPath '\\$..deep' is not supported"),
        ({"jsonPath": "$.items[?(@.a)]"}, "is not supported"),
    ],
)
def test_bad_configuration_is_a_clear_error(config: dict[str, Any], message: str) -> None:
    with responses.RequestsMock(), pytest.raises(ProviderError, match=message):  # any HTTP call would fail the test
        provider().measure(metric(URL, **config), at=AT)


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://files.test/x", r"url must be an http\(s\) URL"), ("http:///x", "url must be"),
     ("http://host:port/x", "url is not valid: Port could not be cast")],
)
def test_url_must_be_http(url: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        provider().measure(metric(url), at=AT)


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("{$}", ()),
        ("$", ()),
        ("{$.a.b}", ("a", "b")),
        ("$.a.b", ("a", "b")),
        ("{.a[2]}", ("a", 2)),
        ("$['a.b'][0]", ("a.b", 0)),
        ('$["x"]', ("x",)),
        ("$.service-name", ("service-name",)),
    ],
)
def test_json_path_parsing(path: str, steps: tuple[object, ...]) -> None:
    assert parse_json_path(path) == steps


def test_select_index_out_of_range_is_no_match() -> None:
    with pytest.raises(ProviderError, match="Could not find JSONPath"):
        select({"a": [1]}, parse_json_path("$.a[5]"), json_path="$.a[5]")
