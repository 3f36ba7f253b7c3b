"""Prometheus authentication as Argo 1.8+ has it (metricproviders/prometheus/prometheus.go NewPrometheusAPI,
prometheus_test.go TestRunSuccessfulWithOAuth / TestRunErrorOAuthFailure / TestNewPromApiErrorWithIncompleteOAuthParams,
docs/analysis/prometheus.md "Utilizing Amazon Managed Prometheus" and "With OAuth2").

Real local servers: an OAuth2 token endpoint that checks the client credentials grant, a Prometheus stand-in that
checks the bearer token, an STS stand-in for AssumeRole; SigV4 signatures are verified by an independent
computation of AWS's published algorithm (canonical request, string to sign, HMAC-SHA256 key chain)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import tenacity

from analysis import checks
from analysis.measure import take
from analysis.model import AnalysisPhase, Metric
from analysis.providers import Providers
from analysis.providers.prometheus import PrometheusProvider
from tests.http_server import HttpServer, Request, Response

AT = datetime(2024, 1, 1, tzinfo=UTC)
CLIENT_ID, CLIENT_SECRET, TOKEN = "someId", "my$ecret&+=", "access-T0KEN-1"
AKID, AWS_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ROLE_AKID, ROLE_SECRET, ROLE_TOKEN = "ASIAROLE", "role/Secret+Key", "role-session-token"
VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "10"]}]}}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Site:
    url: str
    seen: list[Seen] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


def serve(answer: Any) -> Iterator[Site]:
    """A real HTTP server; `answer(site, seen) -> (status, content_type, body)`."""
    site = Site("")

    def handle(request: Request) -> Response:
        parts = urlsplit(request.path)
        seen = Seen(request.method, parts.path, parts.query, {k.lower(): v for k, v in request.headers.items()},
                    request.body)
        site.seen.append(seen)
        status, kind, payload = answer(site, seen)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        return Response(status, data, {"Content-Type": kind})

    with HttpServer(handle) as httpd:
        site.url = httpd.url
        yield site


# ---------------------------------------------------------------- OAuth2


def token_endpoint(site: Site, seen: Seen) -> tuple[int, str, Any]:
    """Client credentials grant: HTTP Basic (or, on /body-only, the form) must carry the client's id and secret."""
    form = {k: v[-1] for k, v in parse_qs(seen.body.decode()).items()}
    if seen.method != "POST" or form.get("grant_type") != "client_credentials":
        return 400, "application/json", {"error": "unsupported_grant_type"}
    if seen.path == "/body-only":
        if "authorization" in seen.headers:
            return 401, "application/json", {"error": "invalid_client"}
        given = (form.get("client_id"), form.get("client_secret"))
    else:
        basic = seen.headers.get("authorization", "")
        user, _, password = base64.b64decode(basic.removeprefix("Basic ")).decode().partition(":")
        given = (user, password.replace("%24", "$").replace("%26", "&").replace("%2B", "+").replace("%3D", "="))
    if seen.path == "/ko" or given != (CLIENT_ID, CLIENT_SECRET):
        return 401, "application/json", {"error": "invalid_client", "error_description": f"bad {CLIENT_SECRET}"}
    site.state["scope"] = form.get("scope")
    number = len([s for s in site.seen if s.path == seen.path])
    return 200, "application/json", {"access_token": f"{TOKEN}-{number}", "token_type": "bearer", "expires_in": 60}


def bearer_prometheus(site: Site, seen: Seen) -> tuple[int, str, Any]:
    if not seen.headers.get("authorization", "").startswith(f"Bearer {TOKEN}-"):
        return 401, "text/plain", "Missing OAuth2 token"
    return 200, "application/json", VECTOR


@pytest.fixture
def tokens() -> Iterator[Site]:
    yield from serve(token_endpoint)


@pytest.fixture
def prometheus() -> Iterator[Site]:
    yield from serve(bearer_prometheus)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth_metric(prometheus: Site, token_url: str, **oauth2: Any) -> Metric:
    return Metric.load({"name": "foo", "successCondition": "result[0] == 10", "failureCondition": "result[0] != 10",
                        "provider": {"prometheus": {"address": prometheus.url, "query": "test", "authentication": {
                            "oauth2": {"tokenUrl": token_url, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                                       "scopes": ["myFirstScope", "mySecondScope"], **oauth2}}}}})


def run(provider: PrometheusProvider, metric: Metric) -> Any:
    return take(Providers({"prometheus": provider}), metric, at=AT, clock=lambda: AT)


def test_run_successful_with_oauth(tokens: Site, prometheus: Site) -> None:
    """TestRunSuccessfulWithOAuth: the client credentials grant, the scopes space-separated, the token as Bearer."""
    taken = run(PrometheusProvider(retry_wait=tenacity.wait_none()), oauth_metric(prometheus, f"{tokens.url}/ok"))
    assert (taken.phase, taken.value) == (AnalysisPhase.SUCCESSFUL, "[10]")
    assert tokens.state["scope"] == "myFirstScope mySecondScope"
    assert prometheus.seen[0].headers["authorization"] == f"Bearer {TOKEN}-1"


def test_oauth_token_is_cached_until_it_expires(tokens: Site, prometheus: Site) -> None:
    clock = Clock()
    provider = PrometheusProvider(retry_wait=tenacity.wait_none(), clock=clock)
    metric = oauth_metric(prometheus, f"{tokens.url}/ok")
    for _ in range(3):
        assert run(provider, metric).phase is AnalysisPhase.SUCCESSFUL
    assert len(tokens.seen) == 1  # one token for three queries
    clock.now += 49  # expires_in 60, renewed 10 s early: still fresh
    run(provider, metric)
    assert len(tokens.seen) == 1
    clock.now += 2
    run(provider, metric)
    assert len(tokens.seen) == 2
    assert prometheus.seen[-1].headers["authorization"] == f"Bearer {TOKEN}-2"


def test_oauth_credentials_in_the_body_when_the_endpoint_refuses_basic(tokens: Site, prometheus: Site) -> None:
    """Go's AuthStyleAutoDetect: header first, then the form; the style that worked is remembered."""
    clock = Clock()
    provider = PrometheusProvider(retry_wait=tenacity.wait_none(), clock=clock)
    metric = oauth_metric(prometheus, f"{tokens.url}/body-only", scopes=None)
    assert run(provider, metric).phase is AnalysisPhase.SUCCESSFUL
    assert ["authorization" in s.headers for s in tokens.seen] == [True, False]
    clock.now += 100
    assert run(provider, metric).phase is AnalysisPhase.SUCCESSFUL
    assert ["authorization" in s.headers for s in tokens.seen] == [True, False, False]
    assert tokens.state["scope"] is None


def test_run_error_oauth_failure(tokens: Site, prometheus: Site) -> None:
    """TestRunErrorOAuthFailure: a refused token request is an Error; Prometheus is never asked without a token."""
    taken = run(PrometheusProvider(retry_wait=tenacity.wait_none()), oauth_metric(prometheus, f"{tokens.url}/ko"))
    assert taken.phase is AnalysisPhase.ERROR
    assert "oauth2 token request" in (taken.message or "") and "HTTP 401 (invalid_client)" in (taken.message or "")
    assert CLIENT_SECRET not in (taken.message or "") and prometheus.seen == []


@pytest.mark.parametrize(("oauth2", "paths"), [
    ({"tokenUrl": "http://tokenurl", "clientSecret": "mySecret"}, ["clientId"]),
    ({"tokenUrl": "http://tokenurl", "clientId": "someId"}, ["clientSecret"]),
    ({"tokenUrl": "http://tokenurl", "clientId": "someId", "clientSecret": "mySecret"}, []),  # scopes are optional
    ({"clientId": "someId", "clientSecret": "mySecret"}, ["tokenUrl"]),
    ({"tokenUrl": "tokenurl", "clientId": "someId", "clientSecret": "s"}, ["tokenUrl"]),
    ({}, []),  # Argo's zero value: no OAuth2
])
def test_new_prom_api_error_with_incomplete_oauth_params(oauth2: dict[str, Any], paths: list[str]) -> None:
    """TestNewPromApiErrorWithIncompleteOAuthParams: lint and the controller refuse it up front, naming the field."""
    metric = Metric.load({"name": "m", "provider": {"prometheus": {"address": "http://promurl", "query": "test",
                                                                   "authentication": {"oauth2": oauth2}}}})
    found = checks.metric_problems(metric, "spec.metrics[0]", declared_args=set())
    assert [p.path.rsplit(".", 1)[1] for p in found] == paths
    assert all(p.path.startswith("spec.metrics[0].provider.prometheus.authentication.oauth2.") for p in found)


# ---------------------------------------------------------------- SigV4


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify_signature(seen: Seen, secret: str, service: str) -> tuple[str, bool]:
    """(the credential's access key, whether the signature is the one recomputed from the request as received,
    by AWS's algorithm with `secret`)."""
    authorization = seen.headers["authorization"]
    algorithm, _, rest = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    access_key, day, region, scope_service, terminal = fields["Credential"].split("/")
    assert (scope_service, terminal) == (service, "aws4_request")
    signed = fields["SignedHeaders"].split(";")
    assert "host" in signed and "x-amz-date" in signed
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, vs in parse_qs(seen.query, keep_blank_values=True).items() for v in vs)
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{' '.join(seen.headers[name].split())}\n" for name in signed)
    payload = hashlib.sha256(seen.body).hexdigest()
    canonical = "\n".join([seen.method, quote(seen.path, safe="/-_.~"), canonical_query, canonical_headers,
                           ";".join(signed), payload])
    amz_date = seen.headers["x-amz-date"]
    assert amz_date.startswith(day)
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), day), region), service), "aws4_request")
    return access_key, hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(),
                                           fields["Signature"])


def signed_prometheus(site: Site, seen: Seen) -> tuple[int, str, Any]:
    if "authorization" not in seen.headers:
        return 403, "application/json", {"message": "Missing Authentication Token"}
    return 200, "application/json", VECTOR


def sts(site: Site, seen: Seen) -> tuple[int, str, Any]:
    query = {k: v[-1] for k, v in parse_qs(seen.query).items()}
    site.state["query"] = query
    if verify_signature(seen, AWS_SECRET, "sts") != (AKID, True):
        return 403, "text/xml", "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>"
    return 200, "text/xml", (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{ROLE_AKID}</AccessKeyId><SecretAccessKey>{ROLE_SECRET}</SecretAccessKey>"
        f"<SessionToken>{ROLE_TOKEN}</SessionToken><Expiration>2999-01-01T00:00:00Z</Expiration>"
        "</Credentials></AssumeRoleResult></AssumeRoleResponse>")


@pytest.fixture
def amp() -> Iterator[Site]:
    yield from serve(signed_prometheus)


@pytest.fixture
def sts_site() -> Iterator[Site]:
    yield from serve(sts)


def sigv4_metric(address: str, **sigv4: Any) -> Metric:
    return Metric.load({"name": "m", "successCondition": "result[0] == 10", "provider": {"prometheus": {
        "address": f"{address}/workspaces/ws-1234", "query": 'up{job="checkout"}',
        "authentication": {"sigv4": sigv4}}}})


def test_sigv4_signs_the_query_for_aps(amp: Site, tmp_path: Path) -> None:
    """docs/analysis/prometheus.md: Amazon Managed Prometheus with region; credentials from the environment."""
    environ = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "HOME": str(tmp_path),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    provider = PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ)
    taken = run(provider, sigv4_metric(amp.url, region="eu-west-1"))
    assert (taken.phase, taken.value) == (AnalysisPhase.SUCCESSFUL, "[10]")
    [seen] = amp.seen
    assert seen.path == "/workspaces/ws-1234/api/v1/query"
    assert verify_signature(seen, AWS_SECRET, "aps") == (AKID, True)
    assert verify_signature(seen, AWS_SECRET + "x", "aps") == (AKID, False)  # the check can fail
    assert "/eu-west-1/aps/aws4_request" in seen.headers["authorization"]
    assert "x-amz-security-token" not in seen.headers


def test_sigv4_profile_from_the_shared_credentials_file_and_region_from_env(amp: Site, tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(f"[team]\naws_access_key_id = {AKID}\naws_secret_access_key = {AWS_SECRET}\n"
                                          "aws_session_token = sess-1\n")
    environ = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_REGION": "us-east-2",
               "AWS_CONFIG_FILE": str(tmp_path / "none")}
    taken = run(PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ),
                sigv4_metric(amp.url, profile="team"))
    assert taken.phase is AnalysisPhase.SUCCESSFUL
    [seen] = amp.seen
    assert verify_signature(seen, AWS_SECRET, "aps") == (AKID, True)
    assert "/us-east-2/aps/" in seen.headers["authorization"] and seen.headers["x-amz-security-token"] == "sess-1"


def test_sigv4_role_arn_assumes_the_role_once_and_signs_with_its_credentials(
    amp: Site, sts_site: Site, tmp_path: Path
) -> None:
    """docs/analysis/prometheus.md's sigv4 {region, profile, roleArn}: STS AssumeRole signed with the base
    credentials, then every query signed with the role's, cached until they expire."""
    role = "arn:aws:iam::123456789012:role/rollouts-amp"
    environ = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_ENDPOINT_URL_STS": sts_site.url,
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    provider = PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ)
    metric = sigv4_metric(amp.url, region="eu-west-1", roleArn=role)
    for _ in range(2):
        assert run(provider, metric).phase is AnalysisPhase.SUCCESSFUL
    assert len(sts_site.seen) == 1
    assert sts_site.state["query"]["Action"] == "AssumeRole" and sts_site.state["query"]["RoleArn"] == role
    for seen in amp.seen:
        assert verify_signature(seen, ROLE_SECRET, "aps") == (ROLE_AKID, True)
        assert seen.headers["x-amz-security-token"] == ROLE_TOKEN


def test_sigv4_a_refused_assume_role_is_an_error(amp: Site, sts_site: Site, tmp_path: Path) -> None:
    environ = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": "not-the-secret",
               "AWS_ENDPOINT_URL_STS": sts_site.url, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    taken = run(PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ),
                sigv4_metric(amp.url, region="eu-west-1", roleArn="arn:aws:iam::1:role/r"))
    assert taken.phase is AnalysisPhase.ERROR
    assert "AssumeRole" in (taken.message or "") and "HTTP 403 (SignatureDoesNotMatch)" in (taken.message or "")
    assert amp.seen == []


@pytest.mark.parametrize(("environ", "sigv4", "message"), [
    ({}, {"region": "eu-west-1"}, "no AWS credentials found"),
    ({"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}, {"roleArn": "arn:aws:iam::1:role/r"},
     "sigv4.region: no AWS region"),
    ({}, {"region": "eu-west-1", "profile": "nobody"}, "profile 'nobody' is not in the shared credentials file"),
])
def test_sigv4_without_credentials_or_region_is_an_error_never_an_unsigned_request(
    amp: Site, tmp_path: Path, environ: dict[str, str], sigv4: dict[str, str], message: str
) -> None:
    environ = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
               **environ}
    taken = run(PrometheusProvider(retry_wait=tenacity.wait_none(), environ=environ), sigv4_metric(amp.url, **sigv4))
    assert taken.phase is AnalysisPhase.ERROR and message in (taken.message or "")
    assert amp.seen == []
    assert AWS_SECRET not in (taken.message or "")
