"""Fixtures for the Cluster port: one contract, two adapters, three backends.

`backend` is parametrized over "memory" (InMemoryCluster in process), "kube" (KubeCluster
over real HTTP against rollouts.memory.server serving an InMemoryCluster, reached through a
kubeconfig written by the server) and "real" (KubeCluster against the real kube-apiserver
1.20 of the session's `control_plane`, in namespaces of the test's own: tests/adapters/
isolated.py; `slow`, so `make check` leaves it out). `simulated` is "memory" and "kube"
only, for the tests of the InMemoryCluster's own workload simulation and stepped clock.
Every server and client is closed at the end of its test, and a test fails if it leaves a
thread or a file descriptor behind.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import ApiServer, serve
from rollouts.platform.cluster import Cluster
from tests.adapters.isolated import Isolated

START = datetime(2024, 1, 1, tzinfo=UTC)
SETTLE_SECONDS = 90.0  # the real ReplicaSet controller and garbage collector act within seconds; on a loaded
# machine the garbage collector took 40 s (it finds the CRD kinds by discovery every 30 s): a bound, not a wait


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
    """Builds the adapter under test; `memory` is the InMemoryCluster behind it (None on "real")."""

    def __init__(self, name: str, tmp_path: Path, plane: ControlPlane | None = None) -> None:
        self.name, self.tmp_path, self.plane = name, tmp_path, plane
        self.clock = SteppedClock()
        self.memory: InMemoryCluster | None = None
        self.isolated: Isolated | None = None
        self._closers: list[Any] = []

    @property
    def real(self) -> bool:
        return self.name == "real"

    def make(self, **memory_kwargs: Any) -> Cluster:
        if self.plane is not None:
            assert not memory_kwargs, f"{memory_kwargs} configure the InMemoryCluster: use the `simulated` backend"
            kube = KubeCluster(kubeconfig=self.plane.kubeconfig(self.tmp_path / "kubeconfig"), request_timeout=10)
            self._closers.append(kube.close)
            self.isolated = Isolated(kube, self.plane)
            self._closers.append(self.isolated.close)
            return self.isolated
        self.memory = InMemoryCluster(clock=self.clock, prune=True, **memory_kwargs)  # as a real server
        if self.name == "memory":
            return self.memory
        server = serve(self.memory)
        self._closers.append(server.close)
        kubeconfig = server.write_kubeconfig(self.tmp_path / f"kubeconfig-{len(self._closers)}")
        kube = KubeCluster(kubeconfig=kubeconfig, context="rollouts-local", request_timeout=10)
        self._closers.append(kube.close)
        return kube

    def settled(self, check: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> bool:
        """`check()`, polled until true or `timeout` on the real cluster (its controllers act
        asynchronously); checked once elsewhere (the in-memory cluster acts within the write)."""
        if not self.real:
            return check()
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads or sockets open (servers and clients must be closed)."""
    real = "real" in getattr(getattr(request.node, "callspec", None), "params", {}).values()
    if real or "control_plane" in request.fixturenames:
        request.getfixturevalue("control_plane")  # session-wide: started before the count, not a leak
    threads, fds = set(threading.enumerate()), _open_fds()
    yield
    leaked = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
    if _open_fds() > fds:
        gc.collect()  # only unreachable objects may still hold a descriptor
    assert _open_fds() <= fds, f"file descriptors leaked: {_open_fds() - fds}"


REAL = pytest.param("real", marks=pytest.mark.slow)


@pytest.fixture(params=["memory", "kube", REAL])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    plane = request.getfixturevalue("control_plane") if request.param == "real" else None
    made = Backend(request.param, tmp_path, plane)
    yield made
    made.close()


@pytest.fixture
def real_only(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Backend]:
    """The "real" backend alone, for what only the real server can show (mark the test slow)."""
    made = Backend("real", tmp_path, control_plane)
    yield made
    made.close()


@pytest.fixture(params=["memory", "kube"])
def simulated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The InMemoryCluster's own workload simulation and stepped clock: not a real cluster's."""
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
