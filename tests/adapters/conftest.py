"""Fixtures for the Cluster port: one contract, two adapters.

`backend` is parametrized over "memory" (InMemoryCluster in process) and "kube"
(KubeCluster over real HTTP against rollouts.memory.server serving an InMemoryCluster, reached
through a kubeconfig written by the server). Every server and client is closed at the end
of its test, and a test fails if it leaves a thread or a file descriptor behind.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollouts.kube.cluster import KubeCluster
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import ApiServer, serve
from rollouts.platform.cluster import Cluster

START = datetime(2024, 1, 1, tzinfo=UTC)


class SteppedClock:
    """The clock the in-memory cluster stamps creationTimestamp with; moves only when told."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Backend:
    """Builds the adapter under test; `memory` is the InMemoryCluster behind it."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name, self.tmp_path = name, tmp_path
        self.clock = SteppedClock()
        self.memory: InMemoryCluster | None = None
        self._closers: list[Any] = []

    def make(self, **memory_kwargs: Any) -> Cluster:
        self.memory = InMemoryCluster(clock=self.clock, **memory_kwargs)
        if self.name == "memory":
            return self.memory
        server = serve(self.memory)
        self._closers.append(server.close)
        kubeconfig = server.write_kubeconfig(self.tmp_path / f"kubeconfig-{len(self._closers)}")
        kube = KubeCluster(kubeconfig=kubeconfig, context="rollouts-local", request_timeout=10)
        self._closers.append(kube.close)
        return kube

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads or sockets open (servers and clients must be closed)."""
    threads, fds = set(threading.enumerate()), _open_fds()
    yield
    leaked = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
    if _open_fds() > fds:
        gc.collect()  # only unreachable objects may still hold a descriptor
    assert _open_fds() <= fds, f"file descriptors leaked: {_open_fds() - fds}"


@pytest.fixture(params=["memory", "kube"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    made.close()


@pytest.fixture
def cluster(backend: Backend) -> Cluster:
    return backend.make()


@pytest.fixture
def memory() -> InMemoryCluster:
    return InMemoryCluster(clock=SteppedClock())


@pytest.fixture
def server(memory: InMemoryCluster) -> Iterator[ApiServer]:
    with serve(memory) as running:
        yield running
