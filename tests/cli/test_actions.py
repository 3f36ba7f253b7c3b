"""promote / abort / retry / pause / resume / restart / set image: the patches Argo's plugin
sends, end to end through the API server, and the errors a user can hit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollouts.cli import actions, connect, main
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Forbidden, Unavailable
from tests.cli.conftest import IMAGES, NOW, NS, SIDECAR, STABLE, Cli, Shop, rollout_manifest, rollout_status

# --- what promote sends (pure, Argo's getPatches) ------------------------------------------

STEPS = [{"setWeight": 20}, {"pause": {}}, {"analysis": {}}]


def ro(status: dict[str, Any], *, paused: bool = False, steps: list[Any] = STEPS) -> dict[str, Any]:
    return {"spec": {"paused": paused, "strategy": {"canary": {"steps": steps}}}, "status": status}


PAUSE = [{"reason": "CanaryPauseStep", "startTime": "2024-05-01T12:03:00Z"}]


@pytest.mark.parametrize(("rollout", "full", "spec", "status"), [
    (ro({"currentStepIndex": 1, "pauseConditions": PAUSE, "controllerPause": True}), False,
     None, {"pauseConditions": None}),
    (ro({"currentStepIndex": 1, "pauseConditions": PAUSE}, paused=True), False,
     {"paused": False}, {"pauseConditions": None}),
    (ro({"currentStepIndex": 2}), False, None, {"pauseConditions": None, "currentStepIndex": 3}),
    (ro({}), False, None, {"pauseConditions": None, "currentStepIndex": 1}),  # unset index reads as 0
    (ro({"currentStepIndex": 3}), False, None, {"pauseConditions": None, "currentStepIndex": 3}),  # capped
    (ro({"currentStepIndex": 2, "controllerPause": True, "pauseConditions": PAUSE,
         "canary": {"currentStepAnalysisRunStatus": {"name": "x", "status": "Inconclusive"}}}), False,
     None, {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3}),
    (ro({}, steps=[]), False, None, None),
    (ro({"currentPodHash": "b", "stableRS": "a"}), True, None, {"promoteFull": True}),
    (ro({"currentPodHash": "a", "stableRS": "a"}), True, None, None),  # already fully promoted
])
def test_promote_patches_follow_argo(rollout: dict[str, Any], full: bool, spec: dict[str, Any] | None,
                                     status: dict[str, Any] | None) -> None:
    got_spec, got_status = actions.promote_patches(rollout, full=full)
    assert got_spec == (None if spec is None else {"spec": spec})
    assert got_status == (None if status is None else {"status": status})


# --- the commands over the API server -----------------------------------------------------

def status_of(shop: Shop) -> dict[str, Any]:
    return shop.rollout()["status"]


def test_promote_a_pause_step_clears_the_pause_condition(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    result = cli("promote", "checkout")
    assert (result.code, result.out) == (0, "rollout 'checkout' promoted\n")
    status = status_of(shop)
    assert "pauseConditions" not in status
    assert status["currentStepIndex"] == 1 and status["controllerPause"] is True  # the controller moves on


def test_promote_mid_analysis_skips_the_step(cli: Cli, shop: Shop) -> None:
    shop.seed("analysis")
    assert cli("promote", "checkout").code == 0
    assert status_of(shop)["currentStepIndex"] == 3


def test_promote_an_inconclusive_analysis_moves_past_it(cli: Cli, shop: Shop) -> None:
    shop.seed("inconclusive")
    assert cli("promote", "checkout").code == 0
    status = status_of(shop)
    assert (status.get("pauseConditions"), status["controllerPause"], status["currentStepIndex"]) == (None, False, 3)


def test_promote_unpauses_a_manually_paused_rollout(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    shop.cluster.patch("Rollout", "checkout", NS, {"spec": {"paused": True}})
    assert cli("promote", "checkout").code == 0
    rollout = shop.rollout()
    assert rollout["spec"]["paused"] is False and "pauseConditions" not in rollout["status"]


def test_promote_full(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    result = cli("promote", "checkout", "--full")
    assert (result.code, result.out) == (0, "rollout 'checkout' fully promoted\n")
    assert status_of(shop)["promoteFull"] is True


def test_abort_then_retry(cli: Cli, shop: Shop) -> None:
    shop.seed("analysis")
    result = cli("abort", "checkout")
    assert (result.code, result.out) == (0, "rollout 'checkout' aborted\n")
    assert status_of(shop)["abort"] is True
    shop.cluster.patch_status("Rollout", "checkout", NS, {"status": {"abortedAt": "2024-05-01T12:06:00Z"}})
    result = cli("retry", "rollout", "checkout")  # Argo's spelling; `retry checkout` works too
    assert (result.code, result.out) == (0, "rollout 'checkout' retried\n")
    status = status_of(shop)
    # Argo's patch, {"status": {"abort": false}}: abortedAt is left for the controller to clear
    assert status["abort"] is False and status["abortedAt"] == "2024-05-01T12:06:00Z"


def test_retry_sends_exactly_argos_patch(capsys: pytest.CaptureFixture[str], shop: Shop,
                                         clock: SteppedClock) -> None:
    shop.seed("aborted")
    sent: list[tuple[Any, ...]] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            method = getattr(shop.cluster, name)
            if name not in ("patch", "patch_status", "replace", "create", "delete"):
                return method

            def record(*args: Any) -> Any:
                sent.append((name, *args))
                return method(*args)
            return record

    recording: Any = Recording()
    with connect.use_runtime(connect.Runtime(clock=clock, sleep=clock.advance, tty=False, watch=False,
                                             make_cluster=lambda _: recording)):
        result = Cli(capsys, ["-n", NS])("retry", "checkout")
    assert (result.code, result.out) == (0, "rollout 'checkout' retried\n")
    assert sent == [("patch_status", "Rollout", "checkout", NS, {"status": {"abort": False}})]
    assert status_of(shop)["abortedAt"] == rollout_status("aborted")["abortedAt"]


def test_pause_and_resume(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    generation = shop.rollout()["metadata"]["generation"]
    assert cli("pause", "checkout").out == "rollout 'checkout' paused\n"
    rollout = shop.rollout()
    assert rollout["spec"]["paused"] is True and rollout["metadata"]["generation"] == generation + 1
    assert cli("resume", "checkout").out == "rollout 'checkout' resumed\n"
    rollout = shop.rollout()
    assert rollout["spec"]["paused"] is False and "pauseConditions" not in rollout["status"]


def test_restart_sets_restart_at_from_the_clock(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    assert cli("restart", "checkout").out == "rollout 'checkout' restarts in 0s\n"
    assert shop.rollout()["spec"]["restartAt"] == "2024-05-01T12:07:00Z"
    assert cli("restart", "checkout", "--in", "1h30m").out == "rollout 'checkout' restarts in 1h30m\n"
    assert shop.rollout()["spec"]["restartAt"] == "2024-05-01T13:37:00Z"
    bad = cli("restart", "checkout", "--in", "soon")
    assert bad.code == 2 and "--in" in bad.err


def containers(obj: dict[str, Any]) -> dict[str, str]:
    pod = obj["spec"]["template"]["spec"]
    return {c["name"]: c["image"] for c in pod.get("initContainers", []) + pod["containers"]}


def test_set_image_changes_only_that_container(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    result = cli("set", "image", "checkout", "app=shop/checkout:1.6.0")
    assert (result.code, result.out) == (0, 'rollout "checkout" image updated\n')
    assert containers(shop.rollout()) == {"migrate": "shop/checkout-migrate:1.5.0", "app": "shop/checkout:1.6.0",
                                          "log-shipper": SIDECAR}


def test_set_image_star_sets_every_container(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    assert cli("set", "image", "checkout", "*=busybox:1.36").code == 0
    assert set(containers(shop.rollout()).values()) == {"busybox:1.36"}


def test_set_image_unknown_container_lists_the_real_ones(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    before = shop.rollout()
    result = cli("set", "image", "checkout", "web=shop/checkout:1.6.0")
    assert result.code == 1
    assert result.err == ('rollouts set: rollout "checkout" has no container named "web" (containers: "migrate", '
                          '"app", "log-shipper"); use one of those names, or \'*\' for all\n')
    assert shop.rollout() == before


@pytest.mark.parametrize("assignment", ["app", "=img", "app=", "app=a=b"])
def test_set_image_bad_assignment_is_a_usage_error(cli: Cli, shop: Shop, assignment: str) -> None:
    shop.seed("healthy")
    result = cli("set", "image", "checkout", assignment)
    assert result.code == 2 and "CONTAINER=IMAGE" in result.err


def test_set_image_of_a_workload_ref_rollout_updates_the_deployment(cli: Cli, cluster: InMemoryCluster) -> None:
    manifest = rollout_manifest("checkout")
    del manifest["spec"]["template"]
    manifest["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout-app"}
    cluster.create(manifest)
    cluster.create({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "checkout-app", "namespace": NS},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "checkout"}},
                             "template": {"metadata": {"labels": {"app": "checkout"}},
                                          "spec": {"containers": [{"name": "app", "image": IMAGES[STABLE]}]}}}})
    result = cli("set", "image", "checkout", "app=shop/checkout:1.6.0")
    assert (result.code, result.out) == (0, 'deployment "checkout-app" image updated\n')
    assert containers(cluster.get("Deployment", "checkout-app", NS)) == {"app": "shop/checkout:1.6.0"}


@pytest.mark.parametrize("argv", [
    ["promote", "nope"], ["promote", "nope", "--full"], ["abort", "nope"], ["retry", "nope"], ["pause", "nope"],
    ["resume", "nope"], ["restart", "nope"], ["set", "image", "nope", "app=x:1"],
])
def test_missing_rollout_is_one_clear_line(cli: Cli, shop: Shop, argv: list[str]) -> None:
    shop.seed("paused")
    result = cli(*argv)
    assert result.code == 1 and result.out == ""
    assert result.err.endswith('rollout "nope" not found in namespace "shop"\n')
    assert result.err.count("\n") == 1


def test_namespace_flag_and_context_namespace(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    assert cli("abort", "checkout", "-n", "default").code == 1  # -n overrides the context's "shop"
    assert "abort" not in status_of(shop)


class ReadOnly:
    """A cluster where this user may read but not write Rollouts (RBAC says 403)."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _deny(self, kind: str, name: str, verb: str) -> None:
        raise Forbidden(f'{kind.lower()}s.argoproj.io "{name}" is forbidden: User "dev@shop" cannot {verb} '
                        f'resource "{kind.lower()}s" in API group "argoproj.io" in the namespace "{NS}"')

    def patch(self, kind: str, name: str, namespace: str | None, patch: Any, *, patch_type: str = "merge") -> Any:
        self._deny(kind, name, "patch")

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: Any) -> Any:
        self._deny(kind, name, "patch")

    def replace(self, obj: dict[str, Any]) -> Any:
        self._deny(obj["kind"], obj["metadata"]["name"], "update")


@pytest.mark.parametrize("argv", [["promote", "checkout"], ["abort", "checkout"], ["pause", "checkout"],
                                  ["set", "image", "checkout", "app=x:1"]])
def test_forbidden_is_reported_without_a_traceback(capsys: pytest.CaptureFixture[str], shop: Shop, tmp_path: Path,
                                                   runtime: Any, argv: list[str]) -> None:
    shop.seed("paused")
    with serve(ReadOnly(shop.cluster)) as api:  # type: ignore[arg-type]
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="dev", namespace=NS)
        result = Cli(capsys, ["--kubeconfig", str(kubeconfig)])(*argv)
    assert result.code == 1 and "Traceback" not in result.err
    assert 'forbidden by context "dev"' in result.err and 'cannot' in result.err
    assert "ask for RBAC" in result.err


def test_connection_errors(capsys: pytest.CaptureFixture[str], kubeconfig: Path, tmp_path: Path,
                           runtime: Any, shop: Shop) -> None:
    run = Cli(capsys, [])
    missing = run("promote", "checkout", "--kubeconfig", str(tmp_path / "nope"))
    assert missing.code == 1 and f"kubeconfig {tmp_path / 'nope'} does not exist" in missing.err
    wrong = run("promote", "checkout", "--kubeconfig", str(kubeconfig), "--context", "staging")
    assert wrong.code == 1
    assert 'context "staging" is not in kubeconfig' in wrong.err and "(contexts: shop-prod)" in wrong.err


def test_unreachable_server(capsys: pytest.CaptureFixture[str], tmp_path: Path, runtime: Any) -> None:
    with serve(InMemoryCluster()) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="gone")
    result = Cli(capsys, ["--kubeconfig", str(kubeconfig)])("promote", "checkout")  # the server is closed now
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err == (f'rollouts promote: cannot reach the cluster of context "gone" ({api.url}): Connection '
                          "refused; check that the server is up and that --context names the right cluster\n")


def test_no_command_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["set"])
    assert exit_info.value.code == 2
    assert NOW  # the fixture module's clock is what the other tests read


class Overloaded(ReadOnly):
    """An API server that is up but answers 503 (etcd down, say)."""

    def get(self, kind: str, name: str, namespace: str | None = None) -> Any:
        raise Unavailable("etcdserver: request timed out, possibly due to leader failure")


def test_server_errors_are_not_called_unreachable(capsys: pytest.CaptureFixture[str], shop: Shop, tmp_path: Path,
                                                  runtime: Any) -> None:
    shop.seed("paused")
    with serve(Overloaded(shop.cluster)) as api:  # type: ignore[arg-type]
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="prod", namespace=NS)
        result = Cli(capsys, ["--kubeconfig", str(kubeconfig)])("promote", "checkout")
    assert result.code == 1
    assert result.err.startswith(f'rollouts promote: the cluster of context "prod" ({api.url}) failed the request')
