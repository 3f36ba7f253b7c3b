"""The demo's traffic generator: the client side of the mesh.

Rules:
- Requests are split between backends by their current weights with smooth
  weighted round-robin (nginx's algorithm): deterministic, and over any window of
  sum(weights) requests each backend gets exactly its share. Weight 0 gets none.
- The routing table is read through a callable on every request batch, so a
  VirtualService weight the controller writes takes effect on the next batch.
- Each request is recorded as the source sidecar would report it:
  `istio_requests_total{reporter="source",destination_service,destination_workload,
  response_code}` and `istio_request_duration_milliseconds`; a connection error is
  recorded as response_code 503 (Envoy's "no healthy upstream"). A workload's
  `response_code="500"` counter exists (at 0) from its first request, so a query for
  its 5xx reads 0 before the first error, and `increase()` counts that first error.
- `Backend` and `SmoothWeighted` are pure; `TrafficGenerator` is the shell that
  does HTTP, sleeps and serves /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from rollouts.demo.app import LATENCY_BUCKETS_MS


@dataclass(frozen=True)
class Backend:
    workload: str  # e.g. the ReplicaSet name
    url: str  # where its app process listens
    weight: int


class SmoothWeighted:
    """Smooth weighted round-robin over a changing set of backends.

    With weights a=5, b=1, c=1 the order is a a b a c a a (repeat): each pick adds
    every backend's weight to its current score, takes the highest, and subtracts
    the total from the winner.

    >>> picker = SmoothWeighted()
    >>> backends = [Backend("a", "", 5), Backend("b", "", 1), Backend("c", "", 1)]
    >>> "".join(picker.pick(backends).workload for _ in range(7))
    'aabacaa'
    """

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, backends: Sequence[Backend]) -> Backend | None:
        live = [b for b in backends if b.weight > 0]
        if not live:
            return None
        names = {b.workload for b in live}
        self._current = {k: v for k, v in self._current.items() if k in names}
        total = sum(b.weight for b in live)
        best: Backend | None = None
        for backend in live:
            score = self._current.get(backend.workload, 0) + backend.weight
            self._current[backend.workload] = score
            if best is None or score > self._current[best.workload]:
                best = backend
        assert best is not None
        self._current[best.workload] -= total
        return best


class TrafficGenerator:
    """Sends `rate` requests per second to the backends `routes()` returns."""

    def __init__(
        self,
        routes: Callable[[], Sequence[Backend]],
        *,
        service: str,
        rate: float = 40.0,
        timeout: float = 2.0,
    ) -> None:
        self._routes = routes
        self._service = service
        self._interval = 1.0 / rate
        self._timeout = timeout
        self._picker = SmoothWeighted()
        self._session = requests.Session()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.registry = CollectorRegistry()
        labels = ["reporter", "destination_service", "destination_workload", "response_code"]
        self._requests = Counter("istio_requests", "Requests sent.", labels, registry=self.registry)
        self._duration = Histogram(
            "istio_request_duration_milliseconds", "Request duration in ms.", labels,
            buckets=LATENCY_BUCKETS_MS, registry=self.registry,
        )
        self.sent: dict[str, dict[str, int]] = {}  # workload -> response code -> count

    def serve_metrics(self, port: int = 0) -> int:
        """Serve /metrics on 127.0.0.1; returns the bound port."""
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def send_one(self) -> Backend | None:
        backend = self._picker.pick(self._routes())
        if backend is None:
            return None
        started = time.perf_counter()
        try:
            code = str(self._session.get(backend.url, timeout=self._timeout).status_code)
        except requests.RequestException:
            code = "503"
        elapsed_ms = (time.perf_counter() - started) * 1000
        values = ("source", self._service, backend.workload, code)
        if backend.workload not in self.sent:
            self._requests.labels("source", self._service, backend.workload, "500")  # 0 until the first error
        self._requests.labels(*values).inc()
        self._duration.labels(*values).observe(elapsed_ms)
        by_code = self.sent.setdefault(backend.workload, {})
        by_code[code] = by_code.get(code, 0) + 1
        return backend

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.send_one()
            next_at += self._interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._session.close()
