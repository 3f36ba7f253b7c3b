"""The judge provider against the real Prometheus fixture (tests/fixtures/istio_history.py): a good
and a bad canary at fixed times, not enough data, a bad config, and an AnalysisRun end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import tenacity

from analysis import measure
from analysis.checks import metric_problems
from analysis.controller import AnalysisController
from analysis.model import AnalysisPhase, Metric
from analysis.providers import ProviderError, UnsupportedProvider
from analysis.providers.registry import default_providers
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock

ALL = 'sum(increase(istio_requests_total{{destination_service="{svc}"}}[1m]))'
ERRORS = 'sum(increase(istio_requests_total{{destination_service="{svc}",response_code=~"5.*"}}[1m]))'
LATENCY = ('sum(rate(istio_request_duration_milliseconds_sum{{destination_service="{svc}"}}[1m])) / '
           'sum(rate(istio_request_duration_milliseconds_count{{destination_service="{svc}"}}[1m]))')


def judge_metric(canary: str, baseline: str, *, mode: str = "fixed", lookback: str = "20m",
                 **extra: Any) -> dict[str, Any]:
    return {
        "name": "judge", "successCondition": "result.score >= 80",
        "provider": {"plugin": {"rollouts/judge": {
            "mode": mode, "lookback": lookback, "step": "1m", "minSamples": 10, **extra,
            "metrics": [
                {"name": "errors", "direction": "increase", "canary": ERRORS.format(svc=canary),
                 "baseline": ERRORS.format(svc=baseline), "canaryTotal": ALL.format(svc=canary),
                 "baselineTotal": ALL.format(svc=baseline)},
                {"name": "latency", "direction": "increase", "canary": LATENCY.format(svc=canary),
                 "baseline": LATENCY.format(svc=baseline)},
            ]}}},
    }


@pytest.fixture
def providers(prometheus):  # type: ignore[no-untyped-def]
    return default_providers(prometheus_default=prometheus.url, retry_wait=tenacity.wait_none())


def take(providers, metric: dict[str, Any], at: datetime):  # type: ignore[no-untyped-def]
    return measure.take(providers, Metric.load(metric), at=at, clock=lambda: at)


def test_good_canary_passes(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    taken = take(providers, judge_metric(prometheus.healthy_service, prometheus.healthy_service), prometheus.hour_two)
    value = json.loads(taken.value or "")
    assert taken.phase is AnalysisPhase.SUCCESSFUL
    assert (value["score"], value["verdict"]) == (100, "Pass")
    assert [m["canaryN"] for m in value["metrics"]] == [21, 21]
    assert taken.metadata == {"verdict": "Pass"}
    assert taken.message is not None and taken.message.startswith("Pass (score 100): no metric moved (errors, latency)")


def test_bad_canary_fails_naming_what_moved(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    taken = take(providers, judge_metric(prometheus.degrading_service, prometheus.healthy_service),
                 prometheus.hour_two)
    value = json.loads(taken.value or "")
    assert taken.phase is AnalysisPhase.FAILED
    assert (value["score"], value["verdict"]) == (0, "Fail")
    errors, latency = value["metrics"]
    assert errors["classification"] == "High" and errors["estimate"] == pytest.approx(0.09)  # 10% against 1%
    assert latency["classification"] == "High" and latency["ratio"] > 2
    message = taken.message or ""
    assert message.startswith("Fail (score 0): errors rose: shift +0.09 (mean +900.0%)")
    assert "latency rose" in message and "98% CI" in message


def test_sequential_mode_aborts_the_bad_canary_and_passes_the_good_one(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    bad = take(providers, judge_metric(prometheus.degrading_service, prometheus.healthy_service, mode="sequential"),
               prometheus.hour_two)
    # 8 errors a minute between both sides: safety takes longer to be decisive than harm does
    good = take(providers, judge_metric(prometheus.healthy_service, prometheus.healthy_service, mode="sequential",
                                        lookback="80m"), prometheus.hour_two)
    assert json.loads(bad.value or "")["verdict"] == "Fail" and bad.phase is AnalysisPhase.FAILED
    assert "errors rose decisively at bucket 1" in (bad.message or "")
    assert json.loads(good.value or "")["verdict"] == "Pass" and good.phase is AnalysisPhase.SUCCESSFUL


def test_no_canary_series_is_an_inconclusive_measurement(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    taken = take(providers, judge_metric("no-such-svc", prometheus.healthy_service), prometheus.hour_two)
    assert taken.phase is AnalysisPhase.INCONCLUSIVE
    assert taken.message is not None and taken.message.startswith("Inconclusive (score 0): insufficient data")
    assert "insufficient data: n=0 < minSamples 10 (canary)" in taken.message


def test_a_window_shorter_than_min_samples_is_inconclusive(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    metric = judge_metric(prometheus.healthy_service, prometheus.healthy_service, lookback="2m")
    taken = take(providers, metric, prometheus.hour_two)
    assert taken.phase is AnalysisPhase.INCONCLUSIVE
    assert "insufficient data: n=3 < minSamples 10 (canary)" in (taken.message or "")


def test_bad_config_is_an_error_measurement_and_a_lint_problem(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    metric = judge_metric(prometheus.healthy_service, prometheus.healthy_service, mode="fast")
    taken = take(providers, metric, prometheus.hour_two)
    assert taken.phase is AnalysisPhase.ERROR
    assert taken.message == ("metric 'judge': provider.plugin.rollouts/judge.mode: Input should be 'fixed' or "
                             "'sequential'; use fixed or sequential")
    problems = metric_problems(Metric.load(metric), "spec.metrics[0]", declared_args=None)
    assert [(p.path, p.fix) for p in problems] == [("spec.metrics[0].provider.plugin.rollouts/judge.mode",
                                                    "use fixed or sequential")]


def test_other_plugins_stay_unsupported(providers) -> None:  # type: ignore[no-untyped-def]
    metric = Metric.load({"name": "m", "provider": {"plugin": {"argoproj-labs/metric-plugin": {}}}})
    with pytest.raises(UnsupportedProvider, match="not supported"):
        providers.for_metric(metric).measure(metric, at=datetime(2024, 1, 1, tzinfo=UTC))
    assert issubclass(UnsupportedProvider, ProviderError)


def test_analysis_run_with_the_judge_end_to_end(prometheus, providers) -> None:  # type: ignore[no-untyped-def]
    clock = SteppedClock(prometheus.hour_two)
    cluster = InMemoryCluster(clock=clock.now, workloads=False)
    good = judge_metric(prometheus.healthy_service, prometheus.healthy_service)
    bad = judge_metric(prometheus.degrading_service, prometheus.healthy_service)
    phases = {}
    for name, metric in (("good", good), ("bad", bad)):
        cluster.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                        "metadata": {"name": name, "namespace": "shop"},
                        "spec": {"metrics": [{**metric, "interval": "5m", "count": 2}]}})
        controller = AnalysisController(cluster, providers, clock=clock)
        for _ in range(5):
            delay = controller.reconcile("shop", name)
            if delay is None:
                break
            clock.advance(delay)
        status = cluster.get("AnalysisRun", name, "shop")["status"]
        phases[name] = status["phase"]
        measurements = status["metricResults"][0]["measurements"]
        assert all(json.loads(m["value"])["verdict"] == ("Pass" if name == "good" else "Fail") for m in measurements)
    assert phases == {"good": "Successful", "bad": "Failed"}
