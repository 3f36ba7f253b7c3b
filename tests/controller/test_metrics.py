"""Controller metrics: Argo's names, one info series per object, a private registry, served over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

from rollouts.controller.metrics import ControllerMetrics, serve


def test_info_keeps_one_series_per_rollout_across_phase_changes() -> None:
    metrics = ControllerMetrics()
    metrics.set_rollout_info("shop", "web", phase="Progressing", traffic_router="istio")
    metrics.set_rollout_info("shop", "web", phase="Healthy", traffic_router="istio")
    base = {"namespace": "shop", "name": "web", "strategy": "canary", "traffic_router": "istio"}
    assert metrics.value("rollout_info", {**base, "phase": "Healthy"}) == 1
    assert metrics.registry.get_sample_value("rollout_info", {**base, "phase": "Progressing"}) is None
    metrics.forget("Rollout", "shop", "web")
    assert metrics.registry.get_sample_value("rollout_info", {**base, "phase": "Healthy"}) is None


def test_two_managers_in_one_process_do_not_collide() -> None:
    one, two = ControllerMetrics(), ControllerMetrics()
    one.rollout_reconcile_error.labels("shop", "web").inc()
    assert one.value("rollout_reconcile_error_total", {"namespace": "shop", "name": "web"}) == 1
    assert two.value("rollout_reconcile_error_total", {"namespace": "shop", "name": "web"}) == 0


def test_metrics_and_health_are_served() -> None:
    metrics = ControllerMetrics()
    metrics.set_analysis_run_info("shop", "web-abc-2-1", phase="Running")
    metrics.rollout_reconcile.labels("shop", "web").observe(0.002)
    healthy = [True]
    server = serve(metrics, "127.0.0.1:0", healthy=lambda: healthy[0])
    try:
        base = f"http://127.0.0.1:{server.port}"
        body = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        assert 'analysis_run_info{name="web-abc-2-1",namespace="shop",phase="Running"} 1.0' in body
        assert 'rollout_reconcile_count{name="web",namespace="shop"} 1.0' in body
        assert "rollouts_controller_info" in body
        assert urllib.request.urlopen(f"{base}/healthz", timeout=10).status == 200
        healthy[0] = False
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=10)
            raise AssertionError("an unhealthy controller must answer 503")
        except urllib.error.HTTPError as err:
            assert err.code == 503
    finally:
        server.close()
