"""Prometheus provider: against the real backfilled Prometheus, and with `responses` for faults."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
import tenacity

from analysis.expr import MeasurementPhase, evaluate_condition
from analysis.model import Metric
from analysis.providers import ProviderError
from analysis.providers.prometheus import PrometheusProvider, instant_value
from rollouts.demo.prometheus import PrometheusServer
from tests.conftest import require_prometheus
from tests.fixtures import istio_history
from tests.http_calls import calls_to

AT = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
FAKE = "http://prometheus.test:9090"


class CountingWait(tenacity.wait.wait_base):
    """No sleeping; counts the attempts that failed with a retryable fault."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        self.calls += 1
        return 0.0


def metric(query: str, **prometheus: Any) -> Metric:
    return Metric.load({"name": "m", "provider": {"prometheus": {"query": query, **prometheus}}})


def success_rate_query(service: str) -> str:
    selector = f'reporter="source",destination_service=~"{service}"'
    return (
        f'sum(irate(istio_requests_total{{{selector},response_code!~"5.*"}}[5m])) / '
        f"sum(irate(istio_requests_total{{{selector}}}[5m]))"
    )


# ---------------------------------------------------------------- real Prometheus


@pytest.fixture
def provider(prometheus) -> PrometheusProvider:  # type: ignore[no-untyped-def]
    return PrometheusProvider(address_override=prometheus.url, retry_wait=tenacity.wait_none())


def test_healthy_canary_exact_value_and_resolved_query(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    query = success_rate_query(prometheus.healthy_service)
    for at in (prometheus.hour_one, prometheus.hour_two):
        result = provider.measure(metric(query), at=at)
        assert result.value == [istio_history.success_rate(istio_history.HEALTHY, late=False)] == [0.99]
        assert result.metadata == {"ResolvedPrometheusQuery": query}


def test_degrading_canary_drops_in_the_second_hour(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    query = success_rate_query(prometheus.degrading_service)
    early = provider.measure(metric(query), at=prometheus.hour_one).value
    late = provider.measure(metric(query), at=prometheus.hour_two).value
    assert early == [istio_history.success_rate(istio_history.DEGRADING, late=False)] == [0.98]
    assert late == [istio_history.success_rate(istio_history.DEGRADING, late=True)]
    assert late[0] == pytest.approx(0.90)  # type: ignore[index]


def test_no_series_is_an_empty_list(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    query = success_rate_query("no-such-svc.default.svc.cluster.local")
    assert provider.measure(metric(query), at=prometheus.hour_one).value == []


@pytest.mark.parametrize(
    ("service", "hour", "phase"),
    [
        (istio_history.HEALTHY, "hour_one", MeasurementPhase.SUCCESSFUL),
        (istio_history.HEALTHY, "hour_two", MeasurementPhase.SUCCESSFUL),
        (istio_history.DEGRADING, "hour_one", MeasurementPhase.SUCCESSFUL),
        (istio_history.DEGRADING, "hour_two", MeasurementPhase.FAILED),
    ],
)
def test_success_condition_on_real_measurements(prometheus, provider, service, hour, phase) -> None:  # type: ignore[no-untyped-def]
    value = provider.measure(metric(success_rate_query(service)), at=getattr(prometheus, hour)).value
    assert evaluate_condition("result[0] >= 0.95", None, value).phase is phase


def test_no_series_makes_the_condition_an_error_saying_so(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    value = provider.measure(metric(success_rate_query("nobody")), at=prometheus.hour_one).value
    verdict = evaluate_condition("result[0] >= 0.95", None, value)
    assert verdict.phase is MeasurementPhase.ERROR
    assert "metric result is nil or empty" in verdict.message


def test_history_is_invisible_at_the_wrong_time(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    # `at` really is the evaluation time: an hour after the history ends there is no data.
    late = prometheus.end + timedelta(hours=1)
    assert provider.measure(metric(success_rate_query(prometheus.healthy_service)), at=late).value == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("scalar(vector(0.5))", 0.5),
        ("vector(1) / 0", [math.inf]),
        ("vector(-1) / 0", [-math.inf]),
        ('sort(sum by (response_code) (istio_requests_total{destination_service=~"healthy.*"}))', [121.0, 11979.0]),
    ],
)
def test_result_shapes(prometheus, provider, query: str, expected: object) -> None:  # type: ignore[no-untyped-def]
    assert provider.measure(metric(query), at=prometheus.hour_one).value == expected


def test_nan_is_kept_as_a_float(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    [value] = provider.measure(metric("vector(0) / 0"), at=prometheus.hour_one).value  # type: ignore[misc]
    assert math.isnan(value)


def test_matrix_is_flattened_series_then_time(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    query = f'istio_requests_total{{destination_service="{prometheus.healthy_service}"}}[30s]'
    value = provider.measure(metric(query), at=prometheus.hour_one).value
    assert value == [11781.0, 11880.0, 11979.0, 119.0, 120.0, 121.0]  # code 200 series, then 500


def test_syntax_error_is_clear_and_not_retried(prometheus) -> None:  # type: ignore[no-untyped-def]
    wait = CountingWait()
    provider = PrometheusProvider(address_override=prometheus.url, retry_wait=wait)
    with pytest.raises(ProviderError) as caught:
        provider.measure(metric("sum(rate(istio_requests_total[5m])"), at=prometheus.hour_one)
    message = str(caught.value)
    assert "sum(rate(istio_requests_total[5m])" in message
    assert "HTTP 400" in message and "bad_data" in message and "unclosed left parenthesis" in message
    assert wait.calls == 0


def test_query_range_for_the_judge(prometheus, provider) -> None:  # type: ignore[no-untyped-def]
    query = success_rate_query(prometheus.degrading_service)
    half = prometheus.start + timedelta(hours=1)
    samples = provider.query_range(
        metric(query).provider.prometheus,  # type: ignore[arg-type]
        start=half - timedelta(minutes=1), end=half + timedelta(minutes=6), step=timedelta(minutes=1),
    )
    assert [ts for ts, _ in samples] == [half.timestamp() + 60 * i for i in range(-1, 7)]
    values = [value for _, value in samples]
    assert values[0] == 0.98
    assert values[1] == pytest.approx(0.90)  # irate sees the change at the first late sample
    assert values[-1] == pytest.approx(0.90)


def test_prometheus_stopped_mid_test_gives_error_after_bounded_retries() -> None:
    require_prometheus()
    wait = CountingWait()
    with PrometheusServer() as server:
        provider = PrometheusProvider(address_override=server.url, retry_wait=wait)
        assert provider.measure(metric("scalar(vector(1))"), at=AT).value == 1.0
        server.stop()
        with pytest.raises(ProviderError) as caught:
            provider.measure(metric("scalar(vector(1))"), at=AT)
    message = str(caught.value)
    assert "'scalar(vector(1))'" in message and "failed after 3 attempts" in message
    assert "Connection refused" in message
    assert wait.calls == 3


# ---------------------------------------------------------------- faults with `responses`

OK_BODY = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.97"]}]}}
QUERY_URL = f"{FAKE}/api/v1/query"


def fake_provider(wait: tenacity.wait.wait_base | None = None) -> PrometheusProvider:
    return PrometheusProvider(address_override=FAKE, retry_wait=wait or tenacity.wait_none())


@responses.activate
def test_5xx_then_200_is_retried_and_succeeds() -> None:
    responses.get(QUERY_URL, status=503, body="overloaded")
    responses.get(QUERY_URL, json=OK_BODY)
    assert fake_provider().measure(metric("up"), at=AT).value == [0.97]
    assert len(calls_to(QUERY_URL)) == 2


@responses.activate
def test_repeated_5xx_is_an_error_with_the_query() -> None:
    responses.get(QUERY_URL, status=500, body="boom")
    wait = CountingWait()
    with pytest.raises(ProviderError) as caught:
        fake_provider(wait).measure(metric('sum(rate(x{a="b"}[1m]))'), at=AT)
    assert "'sum(rate(x{a=\"b\"}[1m]))'" in str(caught.value)
    assert "failed after 3 attempts: HTTP 500: boom" in str(caught.value)
    assert len(calls_to(QUERY_URL)) == 3 and wait.calls == 3


@responses.activate
def test_timeout_is_retried_then_reported() -> None:
    responses.get(QUERY_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError, match="failed after 3 attempts: no answer within the 7s timeout"):
        fake_provider().measure(metric("up", timeout=7), at=AT)
    assert len(calls_to(QUERY_URL)) == 3
    assert calls_to(QUERY_URL)[0].request.req_kwargs["timeout"] == 7  # type: ignore[attr-defined]


@responses.activate
def test_garbage_body_is_an_error_not_a_value() -> None:
    responses.get(QUERY_URL, body="<html>proxy login</html>")
    with pytest.raises(ProviderError, match="'up': the answer is not JSON"):
        fake_provider().measure(metric("up"), at=AT)
    assert len(calls_to(QUERY_URL)) == 1


@responses.activate
def test_json_without_result_is_an_error() -> None:
    responses.get(QUERY_URL, json={"status": "success"})
    with pytest.raises(ProviderError, match="not a Prometheus API response"):
        fake_provider().measure(metric("up"), at=AT)


@responses.activate
def test_time_param_and_default_timeout_and_tls_verify() -> None:
    responses.get(QUERY_URL, json=OK_BODY)
    fake_provider().measure(metric("up"), at=AT)
    request = calls_to(QUERY_URL)[0].request
    assert request.params == {"query": "up", "time": str(AT.timestamp())}  # type: ignore[attr-defined]
    assert request.req_kwargs["timeout"] == 30  # type: ignore[attr-defined]
    assert request.req_kwargs["verify"] not in (False, None)  # type: ignore[attr-defined]  # True or a CA bundle


@responses.activate
def test_insecure_disables_tls_verification() -> None:
    responses.get("https://prom.test/api/v1/query", json=OK_BODY)
    PrometheusProvider().measure(metric("up", address="https://prom.test", insecure=True), at=AT)
    assert calls_to("https://prom.test/api/v1/query")[0].request.req_kwargs["verify"] is False  # type: ignore[attr-defined]


@responses.activate
def test_basic_auth_and_custom_headers_are_sent() -> None:
    responses.get(QUERY_URL, json=OK_BODY)
    config = {"authentication": {"basicAuth": {"username": "ann", "password": "s3cret"}},
              "headers": [{"key": "X-Scope-OrgID", "value": "team-a"}]}
    fake_provider().measure(metric("up", **config), at=AT)
    headers = calls_to(QUERY_URL)[0].request.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert headers["X-Scope-OrgID"] == "team-a"


@responses.activate
def test_bearer_token_is_sent_and_never_shown() -> None:
    responses.get(QUERY_URL, status=502)
    with pytest.raises(ProviderError) as caught:
        fake_provider().measure(metric("up", authentication={"bearerToken": "tok-123"}), at=AT)
    assert calls_to(QUERY_URL)[0].request.headers["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in str(caught.value)


@responses.activate
def test_authorization_header_wins_over_bearer_token() -> None:
    responses.get(QUERY_URL, json=OK_BODY)
    config = {"authentication": {"bearerToken": "tok"}, "headers": [{"key": "Authorization", "value": "Bearer hdr"}]}
    fake_provider().measure(metric("up", **config), at=AT)
    assert calls_to(QUERY_URL)[0].request.headers["Authorization"] == "Bearer hdr"


@responses.activate
def test_metric_address_is_used_without_override() -> None:
    responses.get("http://prom.monitoring:9090/api/v1/query", json=OK_BODY)
    result = PrometheusProvider().measure(metric("up", address="http://prom.monitoring:9090/"), at=AT)
    assert result.value == [0.97]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "prometheus address is not configured"),
        ({"address": "prom:9090"}, r"is not an http\(s\) URL"),
        ({"address": FAKE, "timeout": -1}, "timeout must be positive"),
        ({"address": FAKE, "authentication": {"oauth2": {"tokenUrl": "x"}}}, r"oauth2\.tokenUrl: tokenUrl is not"),
        ({"address": FAKE, "rangeQuery": {"start": "now()"}}, r"rangeQuery\.end is missing"),
    ],
)
def test_bad_configuration_is_a_clear_error(config: dict[str, Any], message: str) -> None:
    with responses.RequestsMock(), pytest.raises(ProviderError, match=message):  # any HTTP call would fail the test
        PrometheusProvider().measure(metric("up", **config), at=AT)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], []),
        ([1, "12.5"], 12.5),
        ([{"metric": {"a": "1"}, "value": [1, "3"]}, {"metric": {"a": "2"}, "value": [1, "+Inf"]}], [3.0, math.inf]),
        ([{"metric": {}, "values": [[1, "1"], [2, "2"]]}], [1.0, 2.0]),
    ],
)
def test_instant_value_conversion(data: object, expected: object) -> None:
    assert instant_value(data) == expected


@pytest.mark.parametrize("data", [[1, 2, 3], [{"metric": {}}], "x", {"a": 1}])
def test_instant_value_rejects_unknown_shapes(data: object) -> None:
    with pytest.raises(ProviderError, match=r"unexpected result|metric type not supported"):
        instant_value(data, query="q")


def test_instant_value_string_is_metric_type_not_supported() -> None:
    """Argo's processResponse answers a string result "Prometheus metric type not supported"."""
    with pytest.raises(ProviderError, match="Prometheus metric type not supported"):
        instant_value([1, "hello"], query="q")
