"""/metrics scraped by a real Prometheus after a release story, and read back through its HTTP API.

The istio-canary example on the stepped clock releases three times: v2 promoted, v3 aborted by
its analysis (success rate 0.42 < 0.95), v4 promoted. Debian's Prometheus scrapes the
controller's /metrics every second; after each release the test waits (bounded) until a scrape
shows it, then asks Prometheus for the measured value, the threshold, the abort reason and the
README's change-failure-rate and lead-time PromQL."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from rollouts.controller.metrics import serve
from rollouts.demo.prometheus import PrometheusServer
from tests.conftest import require_prometheus
from tests.controller.dsl import Scenario

SELECT = 'namespace="default",rollout="rollout-example"'
# The README's dashboard queries (section "Controller metrics"), for one Rollout and a one-hour window
CHANGE_FAILURE_RATE = (
    f"sum by (namespace, rollout) (increase(rollouts_aborts_total{{{SELECT}}}[1h])) / ("
    f"sum by (namespace, rollout) (increase(rollouts_promotions_total{{{SELECT}}}[1h])) + "
    f"sum by (namespace, rollout) (increase(rollouts_aborts_total{{{SELECT}}}[1h])))"
)
MEAN_LEAD_TIME = (
    f"sum by (namespace, rollout) (increase(rollouts_lead_time_seconds_sum{{{SELECT}}}[1h])) / "
    f"sum by (namespace, rollout) (increase(rollouts_lead_time_seconds_count{{{SELECT}}}[1h]))"
)


@pytest.fixture
def story() -> Iterator[tuple[Scenario, str]]:
    require_prometheus()
    scenario = Scenario("istio-canary")
    rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": "30m"}}
    server = serve(scenario.manager.metrics, "127.0.0.1:0")
    try:
        with PrometheusServer(scrape_targets=[f"127.0.0.1:{server.port}"], scrape_interval="1s") as prometheus:
            yield scenario, prometheus.url
    finally:
        server.close()
        scenario.close()


def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    params = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]


def one(url: str, promql: str) -> float:
    [(_, value)] = query(url, promql)
    return value


def scraped(url: str, promql: str, expected: float, *, timeout: float = 20.0) -> None:
    """Wait until Prometheus has scraped `promql` at `expected` (bounded: a scrape is due every second)."""
    deadline = time.monotonic() + timeout
    found: list[tuple[dict[str, str], float]] = []
    while time.monotonic() < deadline:
        found = query(url, promql)
        if [value for _, value in found] == [expected]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{promql}: {found}, expected {expected}")


def test_prometheus_reads_the_values_thresholds_abort_reasons_and_the_change_failure_rate(
        story: tuple[Scenario, str]) -> None:
    istio, url = story
    promotions = f"rollouts_promotions_total{{{SELECT}}}"
    analysis_aborts = f'rollouts_aborts_total{{{SELECT},reason="analysis"}}'
    value = f'rollouts_analysis_metric_value{{{SELECT},analysis="Background",metric="success-rate"}}'
    istio.provider.script("success-rate", [0.99])
    istio.given_healthy()
    scraped(url, promotions, 0)  # every counter starts at 0, so increase() counts the first event
    scraped(url, analysis_aborts, 0)
    istio.when_image("argoproj/rollouts-demo:v2").run_until(lambda: istio.phase == "Healthy")
    scraped(url, promotions, 1)
    istio.provider.script("success-rate", [0.42])
    istio.when_image("argoproj/rollouts-demo:v3").run_until(lambda: istio.phase == "Degraded")
    scraped(url, analysis_aborts, 1)
    scraped(url, value, 0.42)
    istio.provider.script("success-rate", [0.99])
    istio.when_image("argoproj/rollouts-demo:v4").run_until(lambda: istio.phase == "Healthy")
    scraped(url, promotions, 2)
    scraped(url, value, 0.99)

    # the measured values over the story, and the threshold they were judged against
    assert one(url, f"min_over_time({value}[1h])") == 0.42
    assert one(url, f'rollouts_analysis_metric_threshold{{{SELECT},metric="success-rate",condition="success"}}') == 0.95
    # one abort, by its analysis; none by the other reasons
    reasons = {labels["reason"]: count for labels, count in query(url, f"rollouts_aborts_total{{{SELECT}}}")}
    assert reasons == {"analysis": 1, "gate": 0, "deadline": 0, "manual": 0}
    # the dashboard: 1 failed of 3 deployments; lead time: v2 and v4 each waited the 30-minute pause
    assert one(url, CHANGE_FAILURE_RATE) == pytest.approx(1 / 3)
    assert one(url, MEAN_LEAD_TIME) == pytest.approx(1800)
    assert one(url, f"max_over_time(rollouts_rollout_set_weight{{{SELECT}}}[1h])") == 100
    assert one(url, 'rollout_duration_seconds_count{status="Aborted"}') == 1
