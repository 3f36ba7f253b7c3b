"""`rollouts demo --kube --short`: the demo on a real control plane: v2 promoted, v3 aborted, v4 aborted by the judge.

While it runs, its kubeconfig (printed for a second terminal) reaches the real API server,
where the real ReplicaSet controller made the Pods the app processes stand for. When it
ends, the API server it started no longer answers.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from rollouts.kube.cluster import KubeCluster
from tests.k8s.e2e import ROOT, eventually

DEMO_TIMEOUT = 240


def answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 443), timeout=2):
            return True
    except OSError:
        return False


def test_demo_on_the_real_control_plane_promotes_v2_and_aborts_v3(tmp_path: Path) -> None:
    log = tmp_path / "demo.err"
    with log.open("w") as err:
        demo = subprocess.Popen([sys.executable, "-m", "rollouts", "demo", "--kube", "--short", "--json"],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
    with demo:
        _run(demo, log)


def _run(demo: subprocess.Popen[str], log: Path) -> None:
    try:
        found = eventually(lambda: re.search(r"export KUBECONFIG=(\S+)", log.read_text()), timeout=120)
        assert found, log.read_text()[-3000:]
        assert eventually(lambda: "== release 1/3: demo:v2" in log.read_text(), timeout=120), log.read_text()[-3000:]
        with KubeCluster(kubeconfig=found.group(1), request_timeout=10) as cluster:
            pods = [p for p in cluster.list("Pod", "default") if not p["metadata"].get("deletionTimestamp")]
            owners = {p["metadata"]["ownerReferences"][0]["kind"] for p in pods}
            assert pods and owners == {"ReplicaSet"}  # made by the real ReplicaSet controller
            assert {p["status"].get("phase") for p in pods} <= {"Pending", "Running"}
        out, _ = demo.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if demo.poll() is None:  # SIGTERM: the demo stops the control plane and its apps itself
            demo.terminate()
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    assert demo.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(out)
    v2, v3, v4 = summary["releases"]
    assert (v2["image"], v2["outcome"], v3["image"], v3["outcome"]) == ("demo:v2", "Promoted", "demo:v3", "Aborted")
    assert v2["weights"][:3] == [0, 20, 50] and v2["final_canary_weight"] == 0
    assert v3["weights"][:2] == [0, 20] and v3["final_canary_weight"] == 0
    assert v2["analysis"]["phase"] == "Successful" and v3["analysis"]["phase"] == "Failed"
    # the subtle regression, aborted by the judge (its template kept by the real API server's CRD schema)
    assert (v4["image"], v4["outcome"], v4["analysis"]["phase"]) == ("demo:v4", "Aborted", "Failed")
    # errors decide the Fail; latency-p99 (no worse in v4) is then still undecided (score 0) or already
    # decisively safe (score 50), depending on how many buckets came in before errors decided
    assert re.match(r"Fail \(score (0|50)\): errors rose decisively", v4["judge"]["message"]), v4["judge"]["message"]
    assert v4["judge"]["threshold_template"].endswith("would have promoted")
    assert summary["endpoints"]["api"].startswith("https://127.0.0.1:")
    assert not answers(summary["endpoints"]["api"])  # the control plane it started is stopped
    assert "Traceback" not in log.read_text()
