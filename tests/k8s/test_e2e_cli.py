"""The CLI against the real API server, as subprocesses with `--kubeconfig`, each with its exit code.

`get rollout --watch` without a terminal prints a line per change (read while the story runs,
then stopped with Ctrl-C, which is how a watch ends: exit 0); `status --timeout` exits 0 Healthy, 1 Degraded/aborted,
2 on timeout; `set image`, `promote`, `abort`, `retry` exit 0 and the controller (the chart's
ServiceAccount, in a subprocess) does the work; a missing Rollout is exit 1 with one line.
Argo's counterparts: pkg/kubectl-argo-rollouts/cmd/{get,status,promote,abort,retry,set}.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from tests.fixtures.children import communicate_or_dump, dumps_stacks, interruptible
from tests.k8s.e2e import (
    ROOT,
    admin,
    controller_for,
    create_all,
    eventually,
    healthy,
    installed,
    namespace,
    rollout,
    status,
)

NAME = "cli"
STEPS = [{"setWeight": 50}, {"pause": {}}]
CLI_TIMEOUT = 90


def paused(cluster: KubeCluster, ns: str) -> bool:
    current = status(cluster, NAME, ns)
    return current.get("currentStepIndex") == 1 and bool(current.get("pauseConditions"))


def test_cli_commands_on_the_real_api_server_with_their_exit_codes(control_plane: ControlPlane,
                                                                   tmp_path: Path) -> None:
    with namespace(control_plane, "e2e-cli") as ns, installed(control_plane, tmp_path, "e2e-cli", ns) as docs, \
            admin(control_plane, tmp_path, ns) as cluster, \
            controller_for(control_plane, tmp_path, docs, namespace=ns) as controller:
        kubeconfig = control_plane.kubeconfig(tmp_path / "user", namespace=ns)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "rollouts", *args, "--kubeconfig", str(kubeconfig),
                                   "-n", ns], capture_output=True, text=True, cwd=ROOT, timeout=CLI_TIMEOUT,
                                  check=False)

        create_all(cluster, ns, [rollout(NAME, STEPS, replicas=2)])
        watcher = subprocess.Popen(interruptible("get", "rollout", NAME, "--watch", "--kubeconfig", str(kubeconfig),
                                                 "-n", ns), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
                                   env=dumps_stacks())
        try:
            done = cli("status", NAME, "--timeout", "60s")
            assert done.returncode == 0 and "Healthy" in done.stdout, (done, controller.tail())

            done = cli("set", "image", NAME, "app=app:v2")
            assert done.returncode == 0 and "image updated" in done.stdout, done
            assert eventually(lambda: paused(cluster, ns)), status(cluster, NAME, ns)
            done = cli("status", NAME, "--timeout", "2s")  # paused: not Healthy yet
            assert done.returncode == 2 and "exceeded timeout" in done.stderr, done

            done = cli("promote", NAME)
            assert done.returncode == 0 and "promoted" in done.stdout, done
            done = cli("status", NAME, "--timeout", "60s")
            assert done.returncode == 0, (done, controller.tail())
            assert healthy(cluster, NAME, ns)
            second = status(cluster, NAME, ns)["stableRS"]

            assert cli("set", "image", NAME, "*=app:v3").returncode == 0
            assert eventually(lambda: paused(cluster, ns)), status(cluster, NAME, ns)
            done = cli("abort", NAME)
            assert done.returncode == 0 and "aborted" in done.stdout, done
            done = cli("status", NAME, "--timeout", "60s")
            assert done.returncode == 1 and "degraded state" in done.stderr, done
            assert status(cluster, NAME, ns)["stableRS"] == second

            done = cli("retry", NAME)
            assert done.returncode == 0 and "retried" in done.stdout, done
            assert eventually(lambda: paused(cluster, ns) and not status(cluster, NAME, ns).get("abort"))
            assert cli("promote", NAME).returncode == 0
            done = cli("status", NAME, "--timeout", "60s")
            assert done.returncode == 0, (done, controller.tail())
            assert status(cluster, NAME, ns)["stableRS"] != second

            missing = cli("promote", "no-such-rollout")
            assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing
            assert "no-such-rollout" in missing.stderr
        finally:
            watcher.send_signal(signal.SIGINT)
            out, err = communicate_or_dump(watcher, timeout=30)
        assert watcher.returncode == 0, (watcher.returncode, err)
        frames = out.splitlines()
        assert len(frames) >= 4, out  # a line per change, no terminal codes
        assert "\x1b[" not in out
        assert any("Paused" in line for line in frames) and any("Degraded" in line for line in frames), out
        assert not controller.forbidden(), controller.forbidden()
