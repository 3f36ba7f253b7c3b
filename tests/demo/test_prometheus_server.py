"""The real-Prometheus helper: backfill, readiness, queries at fixed times, clean stop."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from rollouts.demo.prometheus import (
    PrometheusError,
    PrometheusServer,
    Series,
    count_samples,
    counter,
    render_openmetrics,
)
from tests.conftest import require_prometheus
from tests.fixtures import istio_history


def _query(url: str, query: str, at: float) -> dict[str, object]:
    params = urllib.parse.urlencode({"query": query, "time": at})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=5) as response:
        return json.loads(response.read())["data"]  # type: ignore[no-any-return]


def test_render_counter_in_seconds_with_eof() -> None:
    text = render_openmetrics([counter("c_total", {"a": 'x"y'}, start=1704067200, step=15, increments=[1, 2])])
    assert text == (
        'c_total{a="x\\"y"} 1 1704067200\n'
        'c_total{a="x\\"y"} 3 1704067215\n'
        "# EOF\n"
    )
    assert count_samples(text) == 2


def test_render_nan_and_inf_values() -> None:
    text = render_openmetrics([Series("g", {}, [(1, math.nan), (2, math.inf), (3, -math.inf), (4, 0.25)])])
    assert text.splitlines()[:4] == ["g NaN 1", "g +Inf 2", "g -Inf 3", "g 0.25 4"]


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([(1704067200000, 1.0)], "looks like milliseconds"),
        ([(20, 1.0), (10, 2.0)], "must increase"),
        ([(10, 1.0), (10, 2.0)], "must increase"),
    ],
)
def test_render_rejects_what_promtool_would_silently_drop(samples: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_openmetrics([Series("c_total", {}, samples)])


def test_session_prometheus_serves_the_exact_history(prometheus) -> None:  # type: ignore[no-untyped-def]
    assert prometheus.samples == count_samples(istio_history.openmetrics())
    query = f'istio_requests_total{{destination_service="{prometheus.healthy_service}",response_code="500"}}'
    data = _query(prometheus.url, query, prometheus.end.timestamp())
    assert data["resultType"] == "vector"
    [series] = data["result"]  # type: ignore[misc]
    assert series["value"] == [prometheus.end.timestamp(), str(istio_history.SAMPLES)]  # 1 error per step


def test_history_is_older_than_lookback_at_current_time(prometheus) -> None:  # type: ignore[no-untyped-def]
    # Proof that queries must pass time=: at "now" the 2024 history is out of the 5 m lookback.
    data = _query(prometheus.url, "istio_requests_total", prometheus.end.timestamp() + 301)
    assert data["result"] == []


def test_latency_histogram_quantile(prometheus) -> None:  # type: ignore[no-untyped-def]
    query = (
        "histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket"
        f'{{destination_service="{prometheus.degrading_service}"}}[1m])))'
    )
    early = _query(prometheus.url, query, prometheus.hour_one.timestamp())["result"]
    late = _query(prometheus.url, query, prometheus.hour_two.timestamp())["result"]
    assert float(early[0]["value"][1]) < 25  # type: ignore[index]
    assert float(late[0]["value"][1]) > 50  # type: ignore[index]


def test_start_stop_scrape_config_and_cleanup() -> None:
    require_prometheus()
    server = PrometheusServer(scrape_targets=["127.0.0.1:9"], scrape_interval="1s")
    with server:
        workdir = server._workdir
        assert workdir is not None
        assert "127.0.0.1:9" in (workdir / "prometheus.yml").read_text()
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as response:
            assert response.status == 200
        assert server.running
    assert not server.running
    assert not Path(workdir).exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/-/ready", timeout=2)


def test_missing_binary_names_the_install_command() -> None:
    with pytest.raises(PrometheusError, match="apt-get install --no-install-recommends prometheus"):
        PrometheusServer(binary="prometheus-not-installed-here").start()


def test_bad_backfill_shows_promtool_error_and_cleans_up() -> None:
    require_prometheus()
    server = PrometheusServer(backfill="c_total 1\n")  # no timestamp, no # EOF
    with pytest.raises(PrometheusError, match="promtool could not backfill"):
        server.start()
    assert server._workdir is None and not server.running


def test_failed_start_includes_log_tail() -> None:
    require_prometheus()
    server = PrometheusServer(scrape_interval="not-a-duration")
    with pytest.raises(PrometheusError, match=r"did not become ready(.|\n)*not-a-duration"):
        server.start()
    assert not server.running
