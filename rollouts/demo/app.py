"""The demo application: one real HTTP process per ReplicaSet revision.

Rules:
- Behaviour comes from the image tag, as a release's behaviour comes from its
  build: `demo:v1` and `demo:v2` are healthy; `demo:v3` answers 15% of requests
  with 500 and is slower; `demo:v4` is the subtle regression: 2.5% of requests
  answer 500 (a success rate of 97.5%, above the threshold template's 95%), no
  slower. Any other tag is healthy. Errors are deterministic
  (request i fails when floor(i*rate) grows), so a demo run is repeatable.
- `GET /` answers 200 or 500 with a small JSON body naming the version.
- `GET /metrics` is the destination sidecar's view in Prometheus text format:
  `istio_requests_total{reporter="destination",...}` and the latency histogram
  `istio_request_duration_milliseconds`.
- Started as `python -m rollouts.demo.app --image demo:v3 --service S --workload W`;
  it binds 127.0.0.1 on a free port and prints `listening on PORT` as its first
  line, so the parent never races for a port.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000)


@dataclass(frozen=True)
class Profile:
    error_rate: float  # share of requests answered with 500
    latency_ms: float  # time spent on each request


PROFILES = {
    "v1": Profile(error_rate=0.0, latency_ms=2),
    "v2": Profile(error_rate=0.0, latency_ms=2),
    "v3": Profile(error_rate=0.15, latency_ms=30),
    "v4": Profile(error_rate=0.025, latency_ms=2),
}
HEALTHY = Profile(error_rate=0.0, latency_ms=2)


def profile_for(image: str) -> Profile:
    """The behaviour of an image: by its tag (`demo:v3` → v3), healthy when unknown.

    >>> profile_for("demo:v3").error_rate, profile_for("registry/demo:v2").error_rate
    (0.15, 0.0)
    """
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    return PROFILES.get(tag, HEALTHY)


class FailurePattern:
    """Deterministic errors: request i (from 1) fails when floor(i*rate) > floor((i-1)*rate)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._count = 0
        self._lock = threading.Lock()

    def next_fails(self) -> bool:
        with self._lock:
            self._count += 1
            i = self._count
        return math.floor(i * self.rate + 1e-9) > math.floor((i - 1) * self.rate + 1e-9)


def make_server(*, image: str, service: str, workload: str, port: int = 0) -> ThreadingHTTPServer:
    profile = profile_for(image)
    registry = CollectorRegistry()
    labels = ["reporter", "destination_service", "destination_workload", "response_code"]
    requests_total = Counter("istio_requests", "Requests served.", labels, registry=registry)
    duration = Histogram(
        "istio_request_duration_milliseconds", "Request duration in ms.", labels,
        buckets=LATENCY_BUCKETS_MS, registry=registry,
    )
    failures = FailurePattern(profile.error_rate)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            started = time.perf_counter()
            time.sleep(profile.latency_ms / 1000)
            code = 500 if failures.next_fails() else 200
            body = json.dumps({"image": image, "workload": workload, "code": code}).encode()
            self._send(code, body, "application/json")
            elapsed_ms = (time.perf_counter() - started) * 1000
            values = ("destination", service, workload, str(code))
            requests_total.labels(*values).inc()
            duration.labels(*values).observe(elapsed_ms)

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollouts-demo-app")
    parser.add_argument("--image", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = make_server(image=args.image, service=args.service, workload=args.workload, port=args.port)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
