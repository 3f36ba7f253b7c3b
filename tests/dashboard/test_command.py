"""`rollouts dashboard` as a process: it prints its URL, serves the Rollouts of the cluster its
kubeconfig names (here the embedded API server), and stops on SIGINT with exit 0; a bad
--addr is a usage error."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from tests.cli.conftest import Shop
from tests.dashboard.conftest import http
from tests.fixtures.children import communicate_or_dump, dumps_stacks, interruptible


def test_the_command_prints_its_url_serves_the_cluster_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cluster = InMemoryCluster(workloads=False)
    Shop(cluster).seed("paused")
    with serve(cluster) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        child = subprocess.Popen(interruptible("dashboard", "--kubeconfig", str(kubeconfig), "--addr", "127.0.0.1:0"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dumps_stacks())
        try:
            line = child.stdout.readline() if child.stdout else ""
            found = re.match(r"rollouts dashboard: (http://127\.0\.0\.1:\d+)/  \(every namespace of ", line)
            assert found, line
            page = http().get(found.group(1) + "/rollouts/shop/checkout", timeout=15)
            assert page.status_code == 200 and 'data-phase="Paused"' in page.text
        finally:
            child.send_signal(signal.SIGINT)
            _, err = communicate_or_dump(child, timeout=30)  # reads the pipes: a chatty child cannot block on them
            assert child.returncode in (0, 130), err


def test_a_bad_addr_is_a_usage_error(tmp_path: Path) -> None:
    cluster = InMemoryCluster(workloads=False)
    with serve(cluster) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        done = subprocess.run([sys.executable, "-m", "rollouts", "dashboard", "--kubeconfig", str(kubeconfig),
                               "--addr", "localhost"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--addr: 'localhost' is not HOST:PORT" in done.stderr
