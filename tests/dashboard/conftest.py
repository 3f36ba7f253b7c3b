"""Fixtures for the dashboard: the shop's `checkout` Rollout (tests/cli/conftest.py) in an
InMemoryCluster, and the dashboard served by a real uvicorn on a free loopback port.

`served(cluster, **options)` starts one (its Store watching the cluster, synced before it
returns); every one started is closed after the test. `Sse` reads a server-sent event stream
with a bound, so a test waits for an update without sleeping on a guess.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from rollouts.dashboard.auth import Reviews
from rollouts.dashboard.server import Options, Served, build
from rollouts.platform.clock import SteppedClock
from tests.cli.conftest import NOW, cluster, shop

__all__ = ["cluster", "shop"]  # tests/cli's fixtures: the shop in its InMemoryCluster, as the CLI tests have them

Serve = Callable[..., Served]


@pytest.fixture
def served() -> Iterator[Serve]:
    started: list[Served] = []

    def start(cluster: Any, *, reviews: Reviews | None = None, host: str = "127.0.0.1", **options: Any) -> Served:
        dash = build(cluster, Options(host=host, port=0, **options), reviews=reviews, clock=SteppedClock(NOW))
        assert dash.store.wait_synced(10), "the dashboard's watches did not list in time"
        server = Served(dash, host, 0)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]


class Sse:
    """A server-sent event stream, read event by event (`next_event` waits at most `timeout` s)."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        self.response = http().get(url, stream=True, timeout=timeout, headers=headers or {})
        self.response.raise_for_status()
        self.lines = self.response.iter_lines(decode_unicode=True)

    def next_event(self, name: str) -> dict[str, Any]:
        event, data = "", []
        for line in self.lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif line == "" and data:
                if event == name:
                    parsed: dict[str, Any] = json.loads("\n".join(data))
                    return parsed
                event, data = "", []
        raise AssertionError(f"the stream ended before a {name!r} event")

    def close(self) -> None:
        self.response.close()
