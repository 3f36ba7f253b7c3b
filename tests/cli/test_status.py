"""`rollouts status`: the CI/CD gate. Exit 0 Healthy, 1 Degraded/aborted, 2 timeout; a
`Phase - Message` line per change; the phase trusted only once the generation is observed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rollouts.cli import connect, status
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.clock import SteppedClock
from tests.cli.conftest import ABORT_MESSAGE, NS, Cli, Shop, rollout_status


class Script:
    """A `sleep` for the runtime: advances the stepped clock, then applies the next change."""

    def __init__(self, clock: SteppedClock, changes: list[Callable[[], None]]) -> None:
        self.clock, self.changes = clock, list(changes)
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)
        if self.changes:
            self.changes.pop(0)()


def to_stage(cluster: InMemoryCluster, stage: str, **extra: Any) -> Callable[[], None]:
    return lambda: cluster.patch_status("Rollout", "checkout", NS, {"status": rollout_status(stage) | extra})


@pytest.fixture
def scripted(capsys: pytest.CaptureFixture[str], shop: Shop, clock: SteppedClock) -> Iterator[Callable[..., Cli]]:
    """A CLI on the in-memory cluster whose waits run `changes`, one per poll."""
    stack: list[Any] = []

    def make(*changes: Callable[[], None]) -> Cli:
        script = Script(clock, list(changes))
        manager = connect.use_runtime(connect.Runtime(clock=clock, sleep=script, tty=False, watch=False,
                                                      make_cluster=lambda _: shop.cluster))
        manager.__enter__()
        stack.append(manager)
        return Cli(capsys, ["-n", NS])

    yield make
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


def test_healthy_exits_zero(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    result = cli("status", "checkout")
    assert (result.code, result.out, result.err) == (0, "Healthy\n", "")


def test_degraded_exits_one_with_argos_message(cli: Cli, shop: Shop) -> None:
    shop.seed("aborted")
    result = cli("status", "checkout", "--timeout", "30m")
    assert result.code == 1
    assert result.out == f"Degraded - {ABORT_MESSAGE}\n"
    assert result.err == f"rollouts status: The rollout is in a degraded state with message: {ABORT_MESSAGE}\n"


def test_follows_the_rollout_to_healthy_printing_each_change(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("paused")
    cluster = shop.cluster
    cli = scripted(lambda: None, to_stage(cluster, "analysis"), lambda: None, to_stage(cluster, "healthy"))
    result = cli("status", "checkout", "--timeout", "30m")
    assert result.code == 0
    assert result.out.splitlines() == ["Paused - CanaryPauseStep", "Progressing - waiting for all steps to complete",
                                       "Healthy"]


def test_timeout_exits_two(scripted: Callable[..., Cli], shop: Shop, clock: SteppedClock) -> None:
    shop.seed("paused")
    start = clock.monotonic()
    result = scripted()("status", "checkout", "-t", "30s")
    assert result.code == 2
    assert result.out == "Paused - CanaryPauseStep\n"  # printed once: nothing changed
    assert result.err == "rollouts status: Rollout status watch exceeded timeout\n"
    assert clock.monotonic() - start == 30  # polled every 5 s, never past the deadline


def test_a_stale_healthy_phase_is_not_trusted(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("healthy")
    cluster = shop.cluster
    cluster.patch("Rollout", "checkout", NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "shop/checkout:1.6.0"}]}}}})  # generation 2; status still says Healthy for 1
    cli = scripted(to_stage(cluster, "paused", observedGeneration="2"),
                   to_stage(cluster, "healthy", observedGeneration="2"))
    result = cli("status", "checkout")
    assert result.code == 0
    assert result.out.splitlines() == ["Progressing - waiting for rollout spec update to be observed",
                                       "Paused - CanaryPauseStep", "Healthy"]


def test_user_resume_not_yet_seen_reads_unpausing(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("paused")
    cluster = shop.cluster
    cluster.patch_status("Rollout", "checkout", NS, {"status": {"pauseConditions": None}})  # as `promote` does
    result = scripted(to_stage(cluster, "aborted"))("status", "checkout")
    assert result.code == 1
    assert result.out.splitlines()[0] == "Progressing - waiting for rollout to unpause"


def test_abort_counts_as_degraded_before_the_controller_rewrites_the_phase(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    assert cli("abort", "checkout").code == 0
    result = cli("status", "checkout")
    assert result.code == 1
    assert "degraded state with message: RolloutAborted: the rollout was aborted" in result.err


@pytest.mark.parametrize(("stage", "code", "out"), [
    ("paused", 0, "Paused - CanaryPauseStep\n"), ("healthy", 0, "Healthy\n"),
    ("aborted", 1, "Degraded\n"),
])
def test_watch_false_prints_once(cli: Cli, shop: Shop, stage: str, code: int, out: str) -> None:
    shop.seed(stage)
    result = cli("status", "checkout", "--watch=false")
    assert (result.code, result.out) == (code, out)


class WatchSignal:
    """The in-memory cluster, telling when someone opens a watch (to start a writer then)."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner, self.opened = inner, threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        stream = self.inner.watch(*args, **kwargs)
        self.opened.set()
        return stream


def test_watch_events_over_the_api_server(capsys: pytest.CaptureFixture[str], shop: Shop, tmp_path: Any,
                                          clock: SteppedClock) -> None:
    """The real path: a watch over HTTP from the last resourceVersion sees every change, in order."""
    shop.seed("paused")
    cluster = WatchSignal(shop.cluster)
    changes = [to_stage(shop.cluster, stage) for stage in ("analysis", "inconclusive", "analysis", "healthy")]

    def writer() -> None:
        if cluster.opened.wait(30):
            for change in changes:
                change()

    thread = threading.Thread(target=writer)
    with serve(cluster) as api, connect.use_runtime(  # type: ignore[arg-type]
            connect.Runtime(clock=clock, sleep=clock.advance, tty=False, watch=True)):
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="ci", namespace=NS)
        thread.start()
        result = Cli(capsys, ["--kubeconfig", str(kubeconfig)])("status", "checkout", "--timeout", "60s")
    thread.join()
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Paused - CanaryPauseStep", "Progressing - waiting for all steps to complete",
        "Paused - InconclusiveAnalysisRun", "Progressing - waiting for all steps to complete", "Healthy"]


def test_gone_watch_falls_back_to_polling(capsys: pytest.CaptureFixture[str], shop: Shop, clock: SteppedClock) -> None:
    cluster = InMemoryCluster(clock=lambda: clock.now(), workloads=False, history=1)
    Shop(cluster).seed("paused")
    for _ in range(3):  # push the paused version out of the kept history: watching from it is 410 Gone
        cluster.patch("Rollout", "checkout", NS, {"metadata": {"labels": {"touch": str(_)}}})
    stale = cluster.get("Rollout", "checkout", NS)
    stale["metadata"]["resourceVersion"] = "1"
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        to_stage(cluster, "healthy")()

    with connect.use_runtime(connect.Runtime(clock=clock, sleep=sleep, watch=True, make_cluster=lambda _: cluster)):
        seen = status._next(cluster, "checkout", NS, stale, 60)
    assert seen["status"]["phase"] == "Healthy" and slept == [status.POLL_SECONDS]


def test_missing_rollout(cli: Cli, shop: Shop) -> None:
    result = cli("status", "payments")
    assert (result.code, result.err) == (1, 'rollouts status: rollout "payments" not found in namespace "shop"\n')


def test_bad_watch_value_is_a_usage_error(cli: Cli, shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("status", "checkout", "--watch=maybe")
    assert exit_info.value.code == 2 and "'maybe' is not true or false" in capsys.readouterr().err


def test_bad_timeout_is_a_usage_error(cli: Cli, shop: Shop) -> None:
    result = cli("status", "checkout", "--timeout", "3d")
    assert result.code == 2 and "there is no 'd'" in result.err
