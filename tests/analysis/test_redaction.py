"""Secrets stay secret: `redact` masks every encoding we write, providers never put URLs or header
values into messages, and a redirect to another origin never carries the metric's headers.

The leak paths are real: a secret percent-encoded in a Prometheus request URL, repr-escaped in a
message, JSON-escaped in a web answer that echoes it, and a token header forwarded on a redirect
to a second local server on another port.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import responses
import tenacity

from analysis import assess
from analysis.args import REDACTED, redact
from analysis.model import Metric
from analysis.providers import ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider
from tests.analysis import test_prometheus_auth as cases

served = contextlib.contextmanager(cases.serve)

AT = datetime(2024, 1, 1, tzinfo=UTC)
SECRET = 'tok"en\\with/spaces & é+ü\'s'  # a quote, a backslash, a slash, a space, non-ASCII, an apostrophe
PLAIN = "s3cr3t-T0KEN-4242"
OK = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.5"]}]}}


def forms(secret: str) -> list[str]:
    """Every way a secret may be written: what must never be left after redaction."""
    return [secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1], repr(secret + '"')[1:-2]]


def assert_no_form(text: str, secret: str = SECRET) -> None:
    for form in forms(secret):
        assert form not in text, f"{form!r} leaked in {text!r}"


def measured(metric: Metric, outcome: assess.Outcome, secret: str = SECRET) -> str:
    """The Measurement's message, value and metadata as written to the AnalysisRun status."""
    written = assess.measurement(metric, outcome, started_at=AT, secrets=[secret])
    return "\n".join([written.message or "", written.value or "", *(written.metadata or {}).values()])


# ---------------------------------------------------------------- redact


@pytest.mark.parametrize("encode", [
    lambda s: s, lambda s: quote(s, safe=""), quote, quote_plus, lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1], lambda s: repr(s)[1:-1], lambda s: repr(s + '"')[1:-2],
])
def test_redact_masks_every_encoding(encode: Callable[[str], str]) -> None:
    text = f"before {encode(SECRET)} after"
    assert redact(text, [SECRET]) == f"before {REDACTED} after"


def test_redact_masks_inside_a_json_dump_and_a_repr_of_a_whole_message() -> None:
    document = json.dumps({"echo": f"x{SECRET}y", "n": 1})
    assert_no_form(redact(document, [SECRET]))
    assert_no_form(redact(repr(f'query up{{t="{SECRET}"}}'), [SECRET]))


def test_redact_longest_first_and_empty_secrets_ignored() -> None:
    assert redact("abc-abcdef", ["abc", "abcdef", ""]) == f"{REDACTED}-{REDACTED}"
    assert redact("nothing here", ["", "zzz"]) == "nothing here"


# ---------------------------------------------------------------- real servers


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Site:
    url: str
    seen: list[Seen] = field(default_factory=list)
    answer: Callable[[BaseHTTPRequestHandler], None] = lambda handler: None


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a refused redirect) is expected


@pytest.fixture
def sites() -> Iterator[Callable[[], Site]]:
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start() -> Site:
        site = Site("")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:
                site.seen.append(Seen(self.path, dict(self.headers)))
                site.answer(self)

            do_POST = do_GET

        httpd = QuietServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((httpd, thread))
        site.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        return site

    yield start
    for httpd, thread in started:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def reply(status: int, body: bytes = b"", **headers: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True  # no status line: the client sees the connection closed


def prom_metric(address: str, query: str, **config: Any) -> Metric:
    return Metric.load({"name": "m", "provider": {"prometheus": {"address": address, "query": query, **config}}})


def web_metric(url: str, **config: Any) -> Metric:
    return Metric.load({"name": "hook", "provider": {"web": {"url": url, **config}}})


def failure(call: Callable[[], object]) -> str:
    with pytest.raises(ProviderError) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------- leak paths


def test_a_secret_in_a_prometheus_query_is_not_in_the_error_in_any_encoding(sites: Callable[[], Site]) -> None:
    site = sites()
    site.answer = hang_up
    metric = prom_metric(site.url, f'sum(up{{token="{SECRET}"}})')
    provider = PrometheusProvider(retry_wait=tenacity.wait_none())
    message = failure(lambda: provider.measure(metric, at=AT))
    assert SECRET in site.seen[0].path or quote_plus(SECRET) in site.seen[0].path  # the request carried it
    for form in forms(SECRET)[1:4]:  # percent-encoded: only a request URL holds those
        assert form not in message
    assert_no_form(redact(message, [SECRET]))
    assert_no_form(measured(metric, assess.Unmeasured(message)))


@responses.activate
def test_a_secret_repr_escaped_in_a_prometheus_message_is_masked() -> None:
    responses.get("http://prom.test/api/v1/query", status=400,
                  json={"status": "error", "errorType": "bad_data", "error": "parse error at char 3"})
    metric = prom_metric("http://prom.test", f'up{{token="{SECRET}"}}')
    message = failure(lambda: PrometheusProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT))
    assert "HTTP 400" in message and "bad_data" in message
    assert_no_form(redact(message, [SECRET]))


@responses.activate
def test_a_secret_in_a_successful_query_is_masked_in_metadata() -> None:
    responses.get("http://prom.test/api/v1/query", json=OK)
    metric = prom_metric("http://prom.test", f'up{{token="{SECRET}"}}')
    result = PrometheusProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT)
    assert_no_form(measured(metric, assess.Observed(result.value, result.metadata)))


def test_a_web_answer_echoing_the_secret_json_escaped_is_masked(sites: Callable[[], Site]) -> None:
    site = sites()
    site.answer = reply(200, json.dumps({"echo": SECRET, "ok": True}).encode())
    metric = web_metric(f"{site.url}/echo", headers=[{"key": "X-Token", "value": SECRET}])
    result = WebProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT)
    assert result.value == {"echo": SECRET, "ok": True}
    assert_no_form(measured(metric, assess.Observed(result.value)))


def test_a_web_error_echoing_the_secret_json_escaped_is_masked(sites: Callable[[], Site]) -> None:
    site = sites()
    site.answer = reply(500, json.dumps({"error": f"bad token {SECRET}"}).encode())
    metric = web_metric(f"{site.url}/echo?key={quote_plus(SECRET)}")
    message = failure(lambda: WebProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT))
    assert "received non 2xx response code: 500" in message
    assert_no_form(redact(message, [SECRET]))
    assert_no_form(measured(metric, assess.Unmeasured(message)))


# ---------------------------------------------------------------- redirects


def test_web_headers_are_not_forwarded_to_another_host_on_a_redirect(sites: Callable[[], Site]) -> None:
    first, other = sites(), sites()
    first.answer = reply(302, Location=f"{other.url}/landing")
    other.answer = reply(200, b'{"ok": true}')
    headers = [{"key": "X-Api-Key", "value": PLAIN}, {"key": "Authorization", "value": f"Bearer {PLAIN}"}]
    metric = web_metric(f"{first.url}/start", headers=headers, jsonPath="{$.ok}")
    assert WebProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT).value is True
    assert first.seen[0].headers["X-Api-Key"] == PLAIN  # the origin it was written for got it
    [landing] = other.seen
    assert "X-Api-Key" not in landing.headers and "Authorization" not in landing.headers
    assert PLAIN not in json.dumps(landing.headers)


def test_prometheus_credentials_are_not_forwarded_to_another_host_on_a_redirect(sites: Callable[[], Site]) -> None:
    first, other = sites(), sites()
    first.answer = reply(307, Location=f"{other.url}/api/v1/query?query=up&time=1")
    other.answer = reply(200, json.dumps(OK).encode())
    for auth in ({"bearerToken": PLAIN}, {"basicAuth": {"username": "ann", "password": PLAIN}}):
        metric = prom_metric(first.url, "up", authentication=auth, headers=[{"key": "X-Scope-OrgID", "value": PLAIN}])
        assert PrometheusProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT).value == [0.5]
    assert all("Authorization" in seen.headers and seen.headers["X-Scope-OrgID"] == PLAIN for seen in first.seen)
    assert len(other.seen) == 2
    for landing in other.seen:
        assert "Authorization" not in landing.headers and "X-Scope-OrgID" not in landing.headers


def test_headers_stay_on_a_redirect_within_the_same_origin(sites: Callable[[], Site]) -> None:
    site = sites()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/start":
            reply(302, Location="/landing")(handler)
        else:
            reply(200, b'{"ok": true}')(handler)

    site.answer = answer
    metric = web_metric(f"{site.url}/start", headers=[{"key": "X-Api-Key", "value": PLAIN}], jsonPath="{$.ok}")
    assert WebProvider(retry_wait=tenacity.wait_none()).measure(metric, at=AT).value is True
    assert [(seen.path, seen.headers.get("X-Api-Key")) for seen in site.seen] == [("/start", PLAIN),
                                                                                   ("/landing", PLAIN)]


def test_a_redirect_to_another_scheme_is_refused(sites: Callable[[], Site]) -> None:
    site = sites()
    site.answer = reply(302, Location="file:///etc/passwd")
    message = failure(lambda: WebProvider(retry_wait=tenacity.wait_none()).measure(web_metric(site.url), at=AT))
    assert "redirected to a URL that is not http(s)" in message


# ---------------------------------------------------------------- OAuth2 and SigV4 credentials


def everything_written(taken: Any, caplog: pytest.LogCaptureFixture) -> str:
    """A measurement as written to the run's status (message, value, metadata) and every log line."""
    return "\n".join([taken.message or "", taken.value or "", *(taken.metadata or {}).values(), caplog.text])


def test_an_oauth2_client_secret_echoed_by_the_token_endpoint_is_not_written(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    with served(cases.token_endpoint) as token_site, served(cases.bearer_prometheus) as prom_site:
        taken = cases.run(PrometheusProvider(retry_wait=tenacity.wait_none()),
                          cases.oauth_metric(prom_site, f"{token_site.url}/ko"))
    assert taken.phase == "Error"
    assert_no_form(everything_written(taken, caplog), cases.CLIENT_SECRET)


def test_an_oauth2_access_token_is_never_written(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    with served(cases.token_endpoint) as token_site, served(cases.bearer_prometheus) as prom_site:
        taken = cases.run(PrometheusProvider(retry_wait=tenacity.wait_none()),
                          cases.oauth_metric(prom_site, f"{token_site.url}/ok"))
    assert taken.phase == "Successful"
    assert prom_site.seen[0].headers["authorization"].startswith(f"Bearer {cases.TOKEN}")  # the token was used
    assert cases.TOKEN not in everything_written(taken, caplog)


def test_a_token_request_is_not_redirected_to_another_origin(sites: Callable[[], Site]) -> None:
    """Neither a 307 repeating the secret-bearing form there, nor a token minted by another host."""
    elsewhere, token_site, prom = sites(), sites(), sites()
    elsewhere.answer = reply(200, b'{"access_token": "x"}')
    token_site.answer = reply(307, Location=f"{elsewhere.url}/steal")
    prom.answer = reply(200, json.dumps(OK).encode())
    taken = cases.run(PrometheusProvider(retry_wait=tenacity.wait_none()),
                      cases.oauth_metric(prom, f"{token_site.url}/t"))  # type: ignore[arg-type]
    assert taken.phase == "Error" and "redirected to another origin" in (taken.message or "")
    assert elsewhere.seen == [] and prom.seen == []
    assert cases.CLIENT_SECRET not in (taken.message or "")


def test_aws_keys_and_session_tokens_are_never_written(caplog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    with served(cases.signed_prometheus) as amp, served(cases.sts) as sts_site:
        for secret in (cases.AWS_SECRET, "wrong/secret+key"):  # a granted role, and a refused AssumeRole
            environ = {"AWS_ACCESS_KEY_ID": cases.AKID, "AWS_SECRET_ACCESS_KEY": secret,
                       "AWS_SESSION_TOKEN": "base-token", "AWS_ENDPOINT_URL_STS": sts_site.url,
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
            taken = cases.run(PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ),
                              cases.sigv4_metric(amp.url, region="eu-west-1", roleArn="arn:aws:iam::1:role/r"))
            written = everything_written(taken, caplog)
            for value in (secret, "base-token", cases.ROLE_SECRET, cases.ROLE_TOKEN):
                assert_no_form(written, value)
    assert len(sts_site.seen) == 2 and len(amp.seen) == 1  # the role was granted once and refused once
