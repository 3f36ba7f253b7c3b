"""Controller metrics in Prometheus format, named as Argo Rollouts names them.

Rules:
- Every metric lives in a `CollectorRegistry` passed in (never the global one), so
  two managers in one test process do not collide.
- Names and labels follow Argo's (argo-rollouts.md §8) where we have the same thing:
  `rollout_info{namespace,name,strategy,traffic_router,phase}` (1 per Rollout, the
  old phase series is removed when the phase changes), `rollout_reconcile`
  (histogram, seconds), `rollout_reconcile_error`, `rollout_events_total{namespace,
  name,type,reason}`, `analysis_run_info{namespace,name,phase}`,
  `analysis_run_reconcile`, `analysis_run_reconcile_error`, `experiment_reconcile`,
  `experiment_reconcile_error`,
  `controller_clientset_k8s_request_total{kind,namespace,name,verb,status_code}` (every
  API request, faults included; counted by rollouts.controller.clientset), and client-go style
  `workqueue_*` series for the shared queue.
- Extra series (ours): `rollouts_controller_leader` (1 while this replica leads)
  and `rollouts_controller_info{version}`.
- `serve(...)` exposes `/metrics` and `/healthz` on an address; health is a callable
  so the HTTP thread never touches controller state directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

import rollouts

__all__ = ["ControllerMetrics", "MetricsServer", "serve"]

_RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.15, 0.25, 0.5, 1.0, 5.0)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.rollout_info = Gauge(
            "rollout_info", "Information about a Rollout (1 per Rollout).",
            ["namespace", "name", "strategy", "traffic_router", "phase"], registry=reg,
        )
        self.rollout_reconcile = Histogram(
            "rollout_reconcile", "Rollout reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.rollout_reconcile_error = Counter(
            "rollout_reconcile_error", "Rollout reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self.rollout_events = Counter(
            "rollout_events", "Kubernetes events recorded by the controller.",
            ["namespace", "name", "type", "reason"], registry=reg,
        )
        self.analysis_run_info = Gauge(
            "analysis_run_info", "Information about an AnalysisRun (1 per run).",
            ["namespace", "name", "phase"], registry=reg,
        )
        self.analysis_run_reconcile = Histogram(
            "analysis_run_reconcile", "AnalysisRun reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.analysis_run_reconcile_error = Counter(
            "analysis_run_reconcile_error", "AnalysisRun reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self.experiment_reconcile = Histogram(
            "experiment_reconcile", "Experiment reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.experiment_reconcile_error = Counter(
            "experiment_reconcile_error", "Experiment reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self.k8s_requests = Counter(
            "controller_clientset_k8s_request", "API requests made by the controller, by verb and status code.",
            ["kind", "namespace", "name", "verb", "status_code"], registry=reg,
        )
        self.workqueue_adds = Counter("workqueue_adds", "Keys added to the work queue.", ["name"], registry=reg)
        self.workqueue_retries = Counter("workqueue_retries", "Keys requeued after a failure.", ["name"], registry=reg)
        self.watch_event_errors = Counter("controller_watch_event_errors", "Watch events that could not be routed.",
                                          ["kind"], registry=reg)
        self.workqueue_depth = Gauge("workqueue_depth", "Keys queued or waiting.", ["name"], registry=reg)
        self.leader = Gauge("rollouts_controller_leader", "1 while this replica holds the lease.", registry=reg)
        info = Gauge("rollouts_controller_info", "Controller version.", ["version"], registry=reg)
        info.labels(version=rollouts.__version__).set(1)
        self._info_labels: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._lock = threading.Lock()

    # The info gauges keep exactly one series per object: the old phase is removed.

    def set_rollout_info(self, namespace: str, name: str, *, phase: str, traffic_router: str) -> None:
        labels = (namespace, name, "canary", traffic_router, phase)
        self._set_info(self.rollout_info, ("Rollout", namespace, name), labels)

    def set_analysis_run_info(self, namespace: str, name: str, *, phase: str) -> None:
        self._set_info(self.analysis_run_info, ("AnalysisRun", namespace, name), (namespace, name, phase))

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop the info series of an object that is gone."""
        gauge = self.rollout_info if kind == "Rollout" else self.analysis_run_info
        with self._lock:
            labels = self._info_labels.pop((kind, namespace, name), None)
            if labels is not None:
                gauge.remove(*labels)

    def _set_info(self, gauge: Gauge, key: tuple[str, str, str], labels: tuple[str, ...]) -> None:
        with self._lock:
            old = self._info_labels.get(key)
            if old == labels:
                return
            if old is not None:
                gauge.remove(*old)
            gauge.labels(*labels).set(1)
            self._info_labels[key] = labels

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0.0 when absent), for tests and the CLI."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class MetricsServer:
    """A running `/metrics` + `/healthz` endpoint; `close()` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    metrics: ControllerMetrics, address: str = "127.0.0.1:8090", *, healthy: Callable[[], bool] = lambda: True
) -> MetricsServer:
    """Serve metrics on `host:port` (port 0 picks a free one) in a daemon thread."""
    host, _, port = address.rpartition(":")
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"unhealthy\n"]
        served: Iterable[bytes] = metrics_app(environ, start_response)
        return served

    server = make_server(host or "127.0.0.1", int(port), app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="rollouts-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
