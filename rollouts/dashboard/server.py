"""Running the dashboard: its parts wired together, on uvicorn, in the foreground or a thread.

Rules:
- `build` makes the one Store (and starts its watches), the Authenticator and the app's
  Dashboard. Tokens and access are reviewed by the cluster when it is a real API client
  (KubeCluster: TokenReview, SubjectAccessReview), else not at all (the in-memory API:
  only the own user on loopback may act).
- Bound to a loopback address, requests without credentials are the own user; anywhere
  else they are 401 (rollouts.dashboard.auth).
- `Served` runs uvicorn in a daemon thread (the demo, the tests, the benchmark) and stops it,
  and the store, on `close()`; `wait` keeps the foreground until interrupted.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from rollouts.dashboard.app import Dashboard, make_app
from rollouts.dashboard.auth import Authenticator, KubeReviews, NoReviews, Reviews, is_loopback
from rollouts.dashboard.store import Store
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import Cluster

__all__ = ["Options", "Served", "build", "parse_addr", "serve"]

DEFAULT_ADDR = "127.0.0.1:3100"


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 3100
    namespace: str | None = None  # None: every namespace
    read_only: bool = False
    proxy_header: str | None = None
    proxy_groups_header: str | None = None


def parse_addr(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (every address) or `[::1]:PORT`; ValueError says what to write."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:3100, or 0.0.0.0:3100 with a token)")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def build(cluster: Cluster, options: Options, *, reviews: Reviews | None = None, clock: Clock | None = None,
          store: Store | None = None) -> Dashboard:
    if reviews is None:
        reviews = KubeReviews(cluster) if hasattr(cluster, "api_client") else NoReviews()
    store = store or Store(cluster, options.namespace, clock=clock).start()
    auth = Authenticator(reviews, open_loopback=is_loopback(options.host), proxy_header=options.proxy_header,
                         proxy_groups_header=options.proxy_groups_header, read_only=options.read_only)
    scope = f'namespace "{options.namespace}"' if options.namespace else "all namespaces"
    return Dashboard(store, auth, cluster, scope=scope)


def _config(dash: Dashboard, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(make_app(dash), host=host, port=port, log_level="warning", access_log=False,
                          lifespan="on", timeout_graceful_shutdown=1)


class Served:
    """A dashboard served on a thread; `url` is where."""

    def __init__(self, dash: Dashboard, host: str = "127.0.0.1", port: int = 0) -> None:
        self.dash = dash
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._socket = sock
        bound = sock.getsockname()
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound[1]}"
        self.server = uvicorn.Server(_config(dash, host, bound[1]))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                        name=f"dashboard:{bound[1]}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)

    def wait(self) -> None:
        """Until the server stops (Ctrl-C in the foreground raises KeyboardInterrupt here)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def close(self) -> None:
        self.dash.broadcast.close()  # open streams end, so the server stops gracefully
        self.server.should_exit = True
        self._thread.join(timeout=3)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout=3)
        self._socket.close()
        self.dash.store.close()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(cluster: Cluster, options: Options, **kwargs: object) -> Served:
    return Served(build(cluster, options, **kwargs), options.host, options.port)  # type: ignore[arg-type]
