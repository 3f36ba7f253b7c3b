"""Shared fixtures: a real Prometheus with deterministic history, the real Kubernetes control
plane and the installed wheel (all session-scoped, made only for the tests that ask for them);
`closing`, the list of what a test opened (Scenarios), each closed after it.

A missing `prometheus` binary fails the tests that need it, with the install hint: the
suite never skips a real component.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pytest

from rollouts.demo.prometheus import INSTALL_HINT, PrometheusServer
from rollouts.kube.controlplane import ControlPlane
from tests.fixtures import istio_history
from tests.fixtures import wheel as wheels


class Closable(Protocol):
    """What `closing` takes: anything a test opens that must be closed."""

    def close(self) -> None: ...


@pytest.fixture
def closing() -> Iterator[list[Closable]]:
    """Append what the test opens (a Scenario, anything with `close()`); each is closed after the test."""
    opened: list[Closable] = []
    yield opened
    for thing in opened:
        thing.close()


@dataclass(frozen=True)
class PrometheusHistory:
    """A running Prometheus and the fixed times of its backfilled history."""

    url: str
    start: datetime
    end: datetime
    hour_one: datetime  # healthy and degrading canaries both succeed here
    hour_two: datetime  # the degrading canary's error rate is 10% here
    healthy_service: str
    degrading_service: str
    samples: int


def require_prometheus() -> None:
    """Fail (never skip) when Debian's prometheus is not installed."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail(f"prometheus/promtool not on PATH: {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusHistory]:
    require_prometheus()
    with PrometheusServer(backfill=istio_history.openmetrics()) as server:
        yield PrometheusHistory(
            url=server.url,
            start=istio_history.START,
            end=istio_history.END,
            hour_one=istio_history.HOUR_ONE,
            hour_two=istio_history.HOUR_TWO,
            healthy_service=istio_history.HEALTHY,
            degrading_service=istio_history.DEGRADING,
            samples=server.backfilled_samples,
        )


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager 1.20.2, CRDs applied, pods made Ready."""
    from tests.fixtures.control_plane import running

    yield from running()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout (tests/fixtures/wheel.py)."""
    return wheels.build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its runtime dependencies: its bin/."""
    return wheels.install(wheel, tmp_path_factory.mktemp("venv"))


# The long proofs: real processes (the real control plane among them) and the full fuzz and
# property runs. `make test` (and CI) runs them; `make check`, the fast developer loop, leaves
# them out with `-m "not slow"`.
SLOW = ("tests/demo/", "tests/fuzz/", "tests/faults/test_promotion_property.py",
        "tests/dashboard/test_browser.py", "tests/dashboard/test_kube_auth.py",  # a real Chromium; the control plane
        "tests/dashboard/test_command.py::test_the_command_prints_its_url",  # a process importing the client
        "tests/faults/test_fault_classes.py",  # 19 two-Rollout stories against real local backends (~45 s)
        "tests/faults/test_hostile.py",  # 83 hostile manifests beside healthy Rollouts, and a baseline (~15 s)
        "tests/analysis/test_provider_bounds.py", "tests/analysis/test_expr_bounds.py", "tests/k8s/",
        "tests/controller/test_metrics_prometheus.py",  # a real Prometheus scraping a release story
        "tests/shards/test_shards_embedded.py",  # six controller processes splitting 900 Rollouts
        "tests/shards/test_shards_control_plane.py",  # the real control plane
        "tests/storm/",  # kill storms: controller processes SIGKILLed hundreds of times
        "tests/benchmarks/",  # bench_scale at 1,000 Rollouts and a simulated day (about 30 s)
        # kubernetes-validate loads the whole OpenAPI schema set per value set (seconds each)
        "tests/chart/test_chart.py::test_every_rendered_object_passes_kubernetes_validate_strict")


def xdist_group(item: pytest.Item, where: str) -> str:
    """The worker group of a slow test under `make test`'s `-n 2 --dist loadgroup`: every test on the
    real control plane in one group (one etcd and kube-apiserver for the run), the installed wheel's
    tests in one (one build), else one group per file (its module fixtures made once)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if "control_plane" in fixtures or "[real" in item.nodeid:  # tests/adapters' "real" backend asks for it late
        return "control-plane"
    if fixtures & {"wheel", "installed"}:
        return "wheel"
    return where


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if where.startswith(SLOW) or item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.xdist_group(xdist_group(item, where)))
