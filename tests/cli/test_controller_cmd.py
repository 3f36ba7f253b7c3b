"""`rollouts controller`: flags, one-line failures, and a real run against `--local`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from rollouts.cli import build_parser, main
from rollouts.kube.cluster import KubeCluster

ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
    },
}


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["controller", *argv])


def test_defaults_are_argos() -> None:
    args = parse()
    assert (args.namespace, args.instance_id, args.workers) == (None, None, 4)
    assert (args.metrics_addr, args.health_addr) == (("0.0.0.0", 8090), ("0.0.0.0", 8080))
    assert (args.leader_elect, args.log_format, args.local) == (True, "text", False)


def test_flags() -> None:
    args = parse("--namespace", "team-a", "--instance-id", "blue", "--workers", "8", "--metrics-addr", "127.0.0.1:0",
                 "--health-addr", "[::1]:9000", "--no-leader-elect", "--log-format", "json",
                 "--kubeconfig", "/k", "--context", "prod")
    assert (args.namespace, args.instance_id, args.workers, args.leader_elect) == ("team-a", "blue", 8, False)
    assert (args.metrics_addr, args.health_addr, args.log_format) == (("127.0.0.1", 0), ("::1", 9000), "json")
    assert (args.kubeconfig, args.context) == ("/k", "prod")


@pytest.mark.parametrize(("argv", "message"), [
    (["--log-format", "xml"], "invalid choice: 'xml'"),
    (["--metrics-addr", "8090"], "'8090' is not an address: use HOST:PORT or :PORT"),
    (["--health-addr", "host:http"], "'host:http' is not an address"),
    (["--workers", "0"], "'0' is not a positive number of workers"),
])
def test_bad_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_missing_kubeconfig_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controller", "--kubeconfig", "/nonexistent/kubeconfig"]) == 1
    err = capsys.readouterr().err
    assert err == ("rollouts controller: kubeconfig /nonexistent/kubeconfig does not exist: "
                   "pass --kubeconfig PATH to an existing file\n")


def test_apply_needs_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controller", "--apply", "x.yaml"]) == 2
    assert "--apply works only with --local" in capsys.readouterr().err


def test_a_taken_metrics_port_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["controller", "--local", "--no-leader-elect", "--metrics-addr", f"127.0.0.1:{port}"])
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"rollouts controller: --metrics-addr 127.0.0.1:{port}: port {port} is already in use; "
        "stop what listens there or pass another --metrics-addr")


class JsonLog:
    """The controller's stderr, one JSON object per line, read in a thread."""

    def __init__(self, stream: Any) -> None:
        self.records: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.raw.append(line)
                self.records.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        regex = re.compile(pattern)
        with self._cond:
            self._cond.wait_for(lambda: any(regex.search(r["msg"]) for r in self.records), timeout)
            found = next((m for r in self.records if (m := regex.search(r["msg"]))), None)
        assert found, f"no log line matching {pattern!r}: {self.raw[-10:]}"
        return found


def wait_until(predicate: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s")


def test_local_controller_runs_a_rollout_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(yaml.safe_dump(ROLLOUT))
    process = subprocess.Popen(
        [sys.executable, "-m", "rollouts", "controller", "--local", "--apply", str(manifest), "--log-format", "json",
         "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        log = JsonLog(process.stderr)
        kubeconfig = log.wait_for(r"--kubeconfig (\S+)").group(1)
        metrics = log.wait_for(r"metrics on (\S+)").group(1)
        health = log.wait_for(r"health on (\S+)").group(1)
        log.wait_for(r"now leads")
        with KubeCluster(kubeconfig=kubeconfig) as cluster:
            def status() -> dict[str, Any]:
                return cluster.get("Rollout", "web", "default").get("status") or {}

            wait_until(lambda: status().get("phase") == "Healthy")
            cluster.patch("Rollout", "web", "default", {"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "web:2"}]}}}})
            paused = wait_until(lambda: (s := status()).get("phase") == "Paused" and s)
            assert paused["currentStepIndex"] == 1 and paused["stableRS"] != paused["currentPodHash"]
        assert requests.get(health, timeout=5).text == "ok\n"
        exposed = requests.get(metrics, timeout=5).text
        assert re.search(r'rollout_info\{[^}]*name="web"[^}]*phase="Paused"', exposed)
        assert "rollouts_controller_leader 1.0" in exposed
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    log.thread.join(10)
    assert process.returncode == 0
    assert log.records[-1]["msg"] == "controller stopped"
    assert all(r["level"] in ("info", "warning") for r in log.records), log.raw


@pytest.mark.parametrize("address", ["file:///etc/passwd", "ftp://prometheus:9090", "prometheus:9090", ""])
def test_a_prometheus_address_that_is_not_http_is_a_usage_error_at_start(
        address: str, capsys: pytest.CaptureFixture[str]) -> None:
    from rollouts.cli import main as cli_main

    with pytest.raises(SystemExit) as stopped:
        cli_main(["controller", "--prometheus", address])
    assert stopped.value.code == 2
    assert "argument --prometheus: address is not an http(s) URL" in capsys.readouterr().err
