"""The Prometheus provider on Argo's own cases (metricproviders/prometheus/prometheus.go and prometheus_test.go,
docs/analysis/prometheus.md): the address fallback, an empty query, unsupported result types, warnings and
rangeQuery. Against a local Prometheus stand-in (http.server) that records what it was asked, and the real
backfilled Prometheus for rangeQuery."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import tenacity

from analysis import checks
from analysis.expr.times import evaluate as evaluate_time
from analysis.measure import take
from analysis.model import AnalysisPhase, AnalysisTemplate, Metric
from analysis.providers import ProviderError
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.registry import default_providers

AT = datetime(2023, 8, 14, tzinfo=UTC)


class StandIn(BaseHTTPRequestHandler):
    """A Prometheus stand-in: answers `answer` (a JSON body) and records each request's path and params."""

    answer: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[tuple[str, dict[str, str], dict[str, str]]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.seen.append((parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, dict(self.headers)))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def vector(*values: str, warnings: list[str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"i": str(i)}, "value": [1692000000, v]} for i, v in enumerate(values)]}}
    if warnings is not None:
        answer["warnings"] = warnings
    return answer


@pytest.fixture
def stand_in() -> Iterator[str]:
    StandIn.seen = []
    StandIn.answer = vector("10")
    yield from serve(StandIn)


@pytest.fixture
def other() -> Iterator[str]:
    """A second server: the fallback, which must not be asked when the metric names its own."""

    class Other(StandIn):
        seen: ClassVar[list[tuple[str, dict[str, str], dict[str, str]]]] = []
        answer: ClassVar[dict[str, Any]] = vector("99")

    yield from serve(Other)


def metric(**prometheus: Any) -> Metric:
    return Metric.load({"name": "m", "successCondition": "result[0] == 10",
                        "provider": {"prometheus": {"query": "test", **prometheus}}})


def provider(**kwargs: Any) -> PrometheusProvider:
    return PrometheusProvider(retry_wait=tenacity.wait_none(), **kwargs)


def measure(metric: Metric, **kwargs: Any) -> Any:
    return take(default_providers(retry_wait=tenacity.wait_none(), **kwargs), metric, at=AT, clock=lambda: AT)


# ---------------------------------------------------------------- address: the metric's, else the fallback


def test_run_successfully_with_env_the_fallback_is_used_without_an_address(stand_in: str) -> None:
    """TestRunSuccessfullyWithEnv / TestNewPrometheusAPIWithEnv: ARGO_ROLLOUTS_PROMETHEUS_ADDRESS serves a metric
    that names no address."""
    taken = measure(metric(), prometheus_default=stand_in)
    assert (taken.phase, taken.value) == (AnalysisPhase.SUCCESSFUL, "[10]")
    assert [path for path, _, _ in StandIn.seen] == ["/api/v1/query"]


def test_new_prometheus_api_the_metrics_own_address_wins_over_the_fallback(stand_in: str, other: str) -> None:
    """TestNewPrometheusAPI: a metric's address is used as is; the environment's address is only a fallback,
    so a template that names several Prometheus servers keeps each."""
    taken = measure(metric(address=stand_in), prometheus_default=other)
    assert taken.value == "[10]"
    assert len(StandIn.seen) == 1


def test_new_prometheus_address_not_configured_is_an_error_naming_the_field_and_the_fix() -> None:
    """TestNewPrometheusAddressNotConfigured: neither an address nor a fallback."""
    taken = measure(metric())
    assert taken.phase is AnalysisPhase.ERROR
    assert "provider.prometheus.address: prometheus address is not configured" in (taken.message or "")
    assert "--prometheus URL or ARGO_ROLLOUTS_PROMETHEUS_ADDRESS" in (taken.message or "")


def test_an_unset_address_is_not_a_spec_problem() -> None:
    """Validation cannot know the controller's fallback: an unset address passes lint."""
    assert checks.metric_problems(metric(), "spec.metrics[0]", declared_args=set()) == []


# ---------------------------------------------------------------- an empty query


@pytest.mark.parametrize("spec", [{}, {"query": ""}, {"query": "  "}])
def test_absent_query_is_valid_in_the_schema_and_an_error_when_run(spec: dict[str, Any], stand_in: str) -> None:
    """Argo's PrometheusMetric.Query is `omitempty`: a template without one loads and passes validation; the
    provider sends the empty query and Prometheus refuses it. Here no request is sent, and the Error says why."""
    template = AnalysisTemplate.load({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                                      "metadata": {"name": "t"},
                                      "spec": {"metrics": [{"name": "m", "provider": {"prometheus": {
                                          "address": stand_in, **spec}}}]}})
    assert checks.spec_problems(template) == []
    taken = measure(template.spec.metrics[0])
    assert taken.phase is AnalysisPhase.ERROR
    assert "provider.prometheus.query is empty" in (taken.message or "")
    assert "set provider.prometheus.query" in (taken.message or "")
    assert taken.metadata is None  # Argo's GetMetadata leaves ResolvedPrometheusQuery out for an empty query
    assert StandIn.seen == []


# ---------------------------------------------------------------- result types


@pytest.mark.parametrize("kind", ["string", "streams", None])
def test_run_with_evaluation_error_unsupported_result_type(kind: str | None, stand_in: str) -> None:
    """TestRunWithEvaluationError: a result type processResponse does not judge is "Prometheus metric type not
    supported", an Error with no value (never the string taken as a number)."""
    StandIn.answer = {"status": "success", "data": {"resultType": kind, "result": [1692000000, "10"]}}
    taken = measure(metric(address=stand_in))
    assert taken.phase is AnalysisPhase.ERROR
    assert "Prometheus metric type not supported" in (taken.message or "")
    assert taken.value is None


# ---------------------------------------------------------------- warnings


def test_run_successfully_with_warning_keeps_them_in_the_metadata(stand_in: str) -> None:
    """TestRunSuccessfullyWithWarning: metadata["warnings"] is `"warning", "warning2"`."""
    StandIn.answer = vector("10", warnings=["warning", "warning2"])
    taken = measure(metric(address=stand_in))
    assert taken.phase is AnalysisPhase.SUCCESSFUL
    assert taken.metadata == {"ResolvedPrometheusQuery": "test", "warnings": '"warning", "warning2"'}


def test_no_warnings_no_warnings_key(stand_in: str) -> None:
    StandIn.answer = vector("10", warnings=[])
    assert measure(metric(address=stand_in)).metadata == {"ResolvedPrometheusQuery": "test"}


# ---------------------------------------------------------------- rangeQuery


def matrix(*series: list[str]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"s": str(i)}, "values": [[1692000000 + 60 * j, v] for j, v in enumerate(values)]}
        for i, values in enumerate(series)]}}


def test_run_successfully_with_range_query(stand_in: str) -> None:
    """TestRunSuccessfullyWithRangeQuery: start/end/step sent as given, the matrix judged as one flat list."""
    StandIn.answer = matrix(["11", "12"], ["13", "14"])
    m = Metric.load({"name": "foo", "successCondition": "all(result, # > 10)",
                     "failureCondition": "all(result, # < 10)", "provider": {"prometheus": {
                         "address": stand_in, "query": "test", "rangeQuery": {
                             "start": 'date("2023-08-14 00:00:00", "2006-01-02 15:04:05", "UTC") - duration("1h")',
                             "end": 'date("2023-08-14 00:00:00", "2006-01-02 15:04:05", "UTC")', "step": "1m"}}}})
    taken = measure(m)
    assert (taken.phase, taken.value) == (AnalysisPhase.SUCCESSFUL, "[11,12,13,14]")
    [(path, params, _)] = StandIn.seen
    assert path == "/api/v1/query_range"
    assert params == {"query": "test", "start": str(datetime(2023, 8, 13, 23, tzinfo=UTC).timestamp()),
                      "end": str(AT.timestamp()), "step": "60"}


def test_range_query_now_is_the_measurement_time(stand_in: str) -> None:
    """`now()` is the time the measurement is taken at (a backtest's time), never the wall clock."""
    StandIn.answer = matrix(["10"])
    measure(metric(address=stand_in, rangeQuery={"start": 'now() - duration("5m")', "end": "now()", "step": "30s"}))
    [(_, params, _)] = StandIn.seen
    assert (params["start"], params["end"], params["step"]) == (
        str((AT - timedelta(minutes=5)).timestamp()), str(AT.timestamp()), "30")


@pytest.mark.parametrize(
    ("range_query", "path", "message"),
    [
        ({"start": "yesterday", "end": "now()", "step": "1m"}, "start", "start is not a time expression"),
        ({"start": "now()", "end": "now() * 2", "step": "1m"}, "end", "end is not a time expression"),
        ({"start": "now()", "end": "now()", "step": "one minute"}, "step", "is not a duration"),
        ({"start": "now()", "end": "now()", "step": "0s"}, "step", "'0s' is not positive"),
        ({"start": "now()", "end": "now()"}, "step", "step is missing"),
        ({"end": "now()", "step": "1m"}, "start", "start is missing"),
    ],
)
def test_run_unparsable_start_end_step_are_spec_problems_and_errors(
    range_query: dict[str, str], path: str, message: str, stand_in: str
) -> None:
    """TestRunUnparsableStartTime / EndTime / Step: Argo fails the measurement; here lint and the controller
    refuse the template up front (the same rule), and a run built without validation is an Error."""
    m = metric(address=stand_in, rangeQuery=range_query)
    [problem] = checks.metric_problems(m, "spec.metrics[0]", declared_args=set())
    assert problem.path == f"spec.metrics[0].provider.prometheus.rangeQuery.{path}"
    assert message in problem.message
    taken = measure(m)
    assert taken.phase is AnalysisPhase.ERROR and f"rangeQuery.{path}" in (taken.message or "")
    assert StandIn.seen == []


def test_range_query_placeholders_are_checked_once_substituted() -> None:
    m = metric(rangeQuery={"start": 'now() - duration("{{args.lookback}}")', "end": "now()", "step": "{{args.s}}"})
    assert checks.metric_problems(m, "spec.metrics[0]", declared_args={"lookback", "s"}) == []


def test_range_query_against_the_real_prometheus(prometheus) -> None:  # type: ignore[no-untyped-def]
    """docs/analysis/prometheus.md's range query, against the real backfilled Prometheus: every sample in the
    window, one series, in time order."""
    half = prometheus.start + timedelta(hours=1)
    service = prometheus.healthy_service
    query = f'sum(istio_requests_total{{destination_service="{service}",response_code="500"}})'
    m = metric(query=query, rangeQuery={"start": 'now() - duration("2m")', "end": "now()", "step": "1m"})
    value = provider(address_override=prometheus.url).measure(m, at=half).value
    instant = [provider(address_override=prometheus.url).measure(metric(query=query), at=half + timedelta(minutes=k))
               .value for k in (-2, -1, 0)]
    assert value == [v for [v] in instant]  # type: ignore[misc]
    assert len(value) == 3  # type: ignore[arg-type]


def test_time_expressions() -> None:
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert evaluate_time('now() - duration("1h30m") + duration("10s")', now=now) == now - timedelta(seconds=5390)
    assert evaluate_time("date('2024-01-01T00:00:00Z')", now=now) == datetime(2024, 1, 1, tzinfo=UTC)


def test_range_query_errors_never_reach_the_server() -> None:
    with pytest.raises(ProviderError, match=r"rangeQuery\.step must be a positive duration"):
        provider(address_override="http://127.0.0.1:1").measure(
            metric(rangeQuery={"start": "now()", "end": "now()", "step": "0"}), at=AT)
