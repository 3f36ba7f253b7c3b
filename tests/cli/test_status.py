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
from rollouts.platform.cluster import Gone, Unavailable
from tests.cli.conftest import ABORT_MESSAGE, NS, Cli, Shop, rollout_status
from tests.controller.dsl import Scenario


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


# --- --until: the pipeline's target (argo-rollouts#1389) ------------------------------------


def new_image(cluster: InMemoryCluster) -> None:
    """`set image`: generation 2, while the status still tells of generation 1."""
    cluster.patch("Rollout", "checkout", NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "shop/checkout:1.6.0"}]}}}})


def test_until_paused_exits_zero_at_the_pause_not_at_the_stale_healthy(scripted: Callable[..., Cli],
                                                                         shop: Shop) -> None:
    """argo-rollouts#1389: wait for `Paused - BlueGreenPause`/a pause step, then promote by hand."""
    shop.seed("healthy")
    new_image(shop.cluster)
    cli = scripted(to_stage(shop.cluster, "analysis", observedGeneration="2", currentStepIndex=0),
                   to_stage(shop.cluster, "paused", observedGeneration="2"))
    result = cli("status", "checkout", "--until", "paused", "--timeout", "30m")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == ["Progressing - waiting for rollout spec update to be observed",
                                       "Progressing - waiting for all steps to complete", "Paused - CanaryPauseStep"]


def test_until_paused_on_a_rollout_that_finishes_without_pausing_exits_three(scripted: Callable[..., Cli],
                                                                               shop: Shop) -> None:
    shop.seed("analysis")
    result = scripted(to_stage(shop.cluster, "healthy"))("status", "checkout", "--until", "paused")
    assert result.code == status.EXIT_UNREACHABLE == 3
    assert result.out.splitlines() == ["Progressing - waiting for all steps to complete", "Healthy"]
    assert result.err == "rollouts status: The rollout finished (Healthy) without pausing\n"


def test_until_step_exits_zero_once_the_step_index_reaches_it(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("paused")  # step 1
    result = scripted(to_stage(shop.cluster, "analysis"))("status", "checkout", "--until", "step=2")
    assert result.code == 0
    assert result.out.splitlines() == ["Paused - CanaryPauseStep", "Progressing - waiting for all steps to complete"]


def test_until_step_of_a_new_revision_ignores_the_last_revisions_index(scripted: Callable[..., Cli],
                                                                         shop: Shop) -> None:
    shop.seed("healthy")  # step 5/5 of revision 3
    new_image(shop.cluster)
    cli = scripted(to_stage(shop.cluster, "paused", observedGeneration="2"),
                   to_stage(shop.cluster, "analysis", observedGeneration="2"))
    result = cli("status", "checkout", "--until", "step=2")
    assert result.code == 0
    assert result.out.splitlines() == ["Progressing - waiting for rollout spec update to be observed",
                                       "Paused - CanaryPauseStep", "Progressing - waiting for all steps to complete"]


@pytest.mark.parametrize(("stage", "until", "code"), [("healthy", "step=5", 0), ("healthy", "step=0", 0),
                                                       ("paused", "step=1", 0)])
def test_until_step_already_reached(cli: Cli, shop: Shop, stage: str, until: str, code: int) -> None:
    shop.seed(stage)
    assert cli("status", "checkout", "--until", until).code == code


def test_until_a_step_the_rollout_does_not_have_exits_three(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    result = cli("status", "checkout", "--until", "step=6", "--timeout", "1h")
    assert (result.code, result.err) == (3, "rollouts status: The rollout has no step 6: it has 5 steps\n")


def test_until_completed_waits_for_the_old_pods_to_go(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("healthy")
    shop.cluster.patch_status("Rollout", "checkout", NS, {"status": {"replicas": 10}})  # within scaleDownDelay
    changes = [lambda: None, to_stage(shop.cluster, "healthy")]
    result = scripted(*changes)("status", "checkout", "--until", "completed", "--timeout", "10m")
    assert (result.code, result.out) == (0, "Healthy\n")
    assert shop.rollout()["status"]["replicas"] == 5


@pytest.mark.parametrize("until", ["healthy", "paused", "step=2", "completed"])
def test_degraded_ends_every_target_with_one(cli: Cli, shop: Shop, until: str) -> None:
    shop.seed("aborted")
    result = cli("status", "checkout", "--until", until)
    assert result.code == 1 and result.err.startswith("rollouts status: The rollout is in a degraded state")


def test_until_paused_times_out_with_two(scripted: Callable[..., Cli], shop: Shop) -> None:
    shop.seed("analysis")
    result = scripted()("status", "checkout", "--until", "paused", "-t", "20s")
    assert (result.code, result.err) == (2, "rollouts status: Rollout status watch exceeded timeout\n")


@pytest.mark.parametrize(("stage", "until", "code"), [
    ("paused", "paused", 0), ("analysis", "paused", 2), ("healthy", "paused", 3), ("aborted", "paused", 1),
    ("analysis", "step=2", 0), ("paused", "step=2", 2), ("healthy", "completed", 0),
])
def test_watch_false_with_until_exits_as_a_wait_with_no_time_left(cli: Cli, shop: Shop, stage: str, until: str,
                                                                   code: int) -> None:
    shop.seed(stage)
    assert cli("status", "checkout", "--watch=false", "--until", until).code == code


def test_bad_until_is_a_usage_error(cli: Cli, shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("status", "checkout", "--until", "step=two")
    assert exit_info.value.code == 2 and "'step=two' is not one of healthy|paused|step=N|completed" in (
        capsys.readouterr().err)


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        Cli(capsys, [])("status", "--help")
    text = " ".join(capsys.readouterr().out.split())
    for code in ("0 the target is reached", "1 Degraded or aborted", "2 the timeout passed",
                 "3 the target cannot be reached"):
        assert code in text


# --- the watch: dropped streams resume, 410 Gone relists ------------------------------------


class Watches:
    """The in-memory cluster with a script for its watches: each `watch` call records the
    resourceVersion asked for, then runs the next scripted opener (default: the real watch)."""

    def __init__(self, inner: InMemoryCluster, *openers: Callable[..., Any]) -> None:
        self.inner, self.openers = inner, list(openers)
        self.asked: list[str | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def watch(self, kind: str, namespace: str | None = None, **kwargs: Any) -> Any:
        self.asked.append(kwargs.get("resource_version"))
        if self.openers:
            return self.openers.pop(0)(kind, namespace, **kwargs)
        return self.inner.watch(kind, namespace, **kwargs)


class Breaking:
    """A stream that yields what `inner` has, then breaks as a reset connection does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __iter__(self) -> Breaking:
        return self

    def __next__(self) -> Any:
        try:
            return next(self.inner)
        except StopIteration:
            raise Unavailable("the watch on rollouts broke: connection reset by peer") from None

    @property
    def resource_version(self) -> str | None:
        return self.inner.resource_version  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def in_process(cluster: Any, clock: SteppedClock, slept: list[float]) -> Any:
    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    return connect.use_runtime(connect.Runtime(clock=clock, sleep=sleep, tty=False, watch=True,
                                               make_cluster=lambda _: cluster))


@pytest.mark.parametrize("drop", ["ends", "breaks"])
def test_a_dropped_watch_resumes_from_the_last_resource_version_it_read(
        capsys: pytest.CaptureFixture[str], shop: Shop, clock: SteppedClock, drop: str) -> None:
    shop.seed("paused")
    shop.seed("paused", name="cart")
    cluster = shop.cluster

    def dropping(kind: str, namespace: str | None, **kwargs: Any) -> Any:
        cluster.patch("Rollout", "cart", NS, {"metadata": {"labels": {"touched": "yes"}}})  # another Rollout moves
        stream = cluster.watch(kind, namespace, **{**kwargs, "timeout": 0})  # the server closes it at once
        return stream if drop == "ends" else Breaking(stream)

    def resumed(kind: str, namespace: str | None, **kwargs: Any) -> Any:
        to_stage(cluster, "healthy")()
        return cluster.watch(kind, namespace, **kwargs)

    watches, slept = Watches(cluster, dropping, resumed), []
    before = shop.rollout()["metadata"]["resourceVersion"]
    with in_process(watches, clock, slept):
        result = Cli(capsys, ["-n", NS])("status", "checkout", "--timeout", "10m")
    touched = cluster.get("Rollout", "cart", NS)["metadata"]["resourceVersion"]
    assert (result.code, result.out.splitlines()) == (0, ["Paused - CanaryPauseStep", "Healthy"])
    assert watches.asked == [before, touched], "resumed after the last event read, not from the start"
    assert slept == ([] if drop == "ends" else [status.POLL_SECONDS])


def test_gone_relists_at_once_and_sees_the_rollout_as_it_is(capsys: pytest.CaptureFixture[str],
                                                            clock: SteppedClock) -> None:
    cluster = InMemoryCluster(clock=lambda: clock.now(), workloads=False, history=1)
    Shop(cluster).seed("paused")
    to_stage(cluster, "analysis")()
    for touch in range(3):  # push the paused version out of the kept history: watching from it is 410 Gone
        cluster.patch("Rollout", "checkout", NS, {"metadata": {"labels": {"touch": str(touch)}}})
    stale = cluster.get("Rollout", "checkout", NS)
    stale["metadata"]["resourceVersion"] = "1"
    watches, slept = Watches(cluster), []
    with in_process(watches, clock, slept):
        follow = status.Follow(watches, stale)  # type: ignore[arg-type]
        seen = follow.next(60)
    assert seen is not None and seen["status"]["phase"] == "Progressing"
    assert watches.asked == ["1", None] and slept == [], "a relist, not a poll"


def test_a_relisted_rollout_that_did_not_change_is_no_change(shop: Shop, clock: SteppedClock) -> None:
    cluster = shop.cluster
    shop.seed("paused")

    def gone(kind: str, namespace: str | None, **kwargs: Any) -> Any:
        raise Gone("too old resource version")

    watches, slept = Watches(cluster, gone), []
    judged = shop.rollout()
    with in_process(watches, clock, slept):
        follow = status.Follow(watches, judged)  # type: ignore[arg-type]
        assert follow.next(0) is None  # the relist's ADDED is the version already judged
        to_stage(cluster, "healthy")()
        seen = follow.next(0)
    assert seen is not None and seen["status"]["phase"] == "Healthy"
    assert watches.asked[:2] == [judged["metadata"]["resourceVersion"], None] and slept == []
    assert watches.asked[2] is not None, "after the relist it watches on from the list's resourceVersion"


def test_a_rollout_deleted_while_waiting_ends_the_wait_as_not_found(capsys: pytest.CaptureFixture[str], shop: Shop,
                                                                     clock: SteppedClock) -> None:
    shop.seed("paused")

    def deleting(kind: str, namespace: str | None, **kwargs: Any) -> Any:
        shop.cluster.delete("Rollout", "checkout", NS)
        return shop.cluster.watch(kind, namespace, **kwargs)

    with in_process(Watches(shop.cluster, deleting), clock, []):
        result = Cli(capsys, ["-n", NS])("status", "checkout", "--timeout", "10m")
    assert (result.code, result.err) == (1, 'rollouts status: rollout "checkout" not found in namespace "shop"\n')


# --- a controller restart while a pipeline waits ---------------------------------------------


def test_a_controller_restarted_mid_wait_neither_ends_the_wait_early_nor_stalls_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """`status` over the embedded API server while the controller is replaced twice: once
    right after it observed the new revision, once in the middle of the 10m pause (the old
    Manager abandoned with its queue, as in a crash). The wait ends at Healthy, exit 0."""
    scenario = Scenario("istio-canary")
    try:
        scenario.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
        scenario.given_healthy()
        scenario.when_image("argoproj/rollouts-demo:yellow")
        generation = str(scenario.rollout["metadata"]["generation"])
        cluster = WatchSignal(scenario.cluster)  # type: ignore[arg-type]
        slept: list[float] = []
        outcome: list[Any] = []
        with serve(cluster) as api, connect.use_runtime(  # type: ignore[arg-type]
                connect.Runtime(clock=scenario.clock, sleep=slept.append, tty=False, watch=True)):
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="ci", namespace="default")
            pipeline = threading.Thread(target=lambda: outcome.append(Cli(capsys, ["--kubeconfig", str(kubeconfig)])(
                "status", "rollout-example", "--timeout", "2h")))
            pipeline.start()
            assert cluster.opened.wait(30), "the pipeline is watching"
            scenario.run_until(lambda: scenario.status.get("observedGeneration") == generation,
                               between_reconciles=True)
            scenario.manager = scenario.new_manager()  # restart 1: the new revision just observed
            scenario.run_until(lambda: scenario.phase == "Paused")
            scenario.run_for(240)
            assert pipeline.is_alive() and scenario.phase == "Paused", "still waiting, 4 minutes into the pause"
            scenario.manager = scenario.new_manager()  # restart 2: mid-pause
            scenario.run_until(lambda: scenario.phase == "Healthy")
            pipeline.join(60)
        assert not pipeline.is_alive(), "the wait ended once the rollout was Healthy"
        [result] = outcome
        assert (result.code, result.err, slept) == (0, "", [])
        assert result.out.splitlines() == [  # every status the controllers wrote, in order, and nothing else
            "Progressing - waiting for rollout spec update to be observed",
            "Progressing - more replicas need to be updated", "Paused - CanaryPauseStep",
            "Progressing - more replicas need to be updated", "Healthy"]
    finally:
        scenario.close()
