"""`rollouts demo`: the short demo end to end (real processes, real Prometheus), its manifests,
its summary, its failure messages and its cleanup.

The end-to-end demo runs the command of the installed wheel (tests/conftest.py's `installed`)
from a directory outside the checkout: it proves the packaged demo as well as the demo."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import main
from rollouts.demo import judge, scenario
from rollouts.demo.summary import Outcome, ReleaseRecord, measurement_value, summarize, table, to_json
from rollouts.view.render import to_text
from tests.conftest import require_prometheus
from tests.fixtures.children import Lines

ROLLOUTS = [sys.executable, "-m", "rollouts"]
DEMO_TIMEOUT = 200


def accepts(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


@pytest.fixture
def demo_process(installed: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`rollouts demo --short --json` of the installed wheel, outside the checkout."""
    require_prometheus()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = subprocess.Popen([str(installed / "rollouts"), "demo", "--short", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


# --- end to end ------------------------------------------------------------------------------

def test_short_demo_promotes_v2_aborts_v3_and_v4_and_leaves_nothing_running(
        demo_process: subprocess.Popen[str]) -> None:
    stderr = Lines(demo_process.stderr)
    # a second terminal reaches the demo's cluster while it runs
    kubeconfig = stderr.wait_for(r"export KUBECONFIG=(\S+)").group(1)
    stderr.wait_for(r"== release 1/3: demo:v2")
    second = subprocess.run([*ROLLOUTS, "get", "rollout", "demo", "--kubeconfig", kubeconfig],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert re.search(r"Name:\s+demo", second.stdout) and "demo:v2" in second.stdout

    # stdout only: stderr belongs to the Lines reader (communicate() would close it under that thread)
    assert demo_process.stdout is not None
    out = demo_process.stdout.read()
    demo_process.wait(timeout=DEMO_TIMEOUT)
    assert demo_process.returncode == 0, stderr.text()[-3000:]
    summary = json.loads(out)
    v2, v3, v4 = summary["releases"]
    assert summary["ok"] is True
    assert (v2["image"], v2["outcome"], v3["image"], v3["outcome"]) == ("demo:v2", "Promoted", "demo:v3", "Aborted")
    assert v2["weights"][:3] == [0, 20, 50] and v2["final_canary_weight"] == 0
    assert v3["weights"][:2] == [0, 20] and v3["final_canary_weight"] == 0
    assert v2["success_rate"] >= 0.95 and v2["analysis"]["min"] >= 0.95 and v2["analysis"]["phase"] == "Successful"
    assert v3["success_rate"] < 0.95 and v3["analysis"]["min"] < 0.95 and v3["analysis"]["phase"] == "Failed"
    assert v3["traffic"]["errors"] > 0 and v2["traffic"]["errors"] == 0
    # the subtle regression: the threshold would pass it, the judge (canary against stable) aborts it
    assert (v4["image"], v4["outcome"], v4["analysis"]["phase"]) == ("demo:v4", "Aborted", "Failed")
    assert v4["final_canary_weight"] == 0 and 0.95 <= v4["success_rate"] < 1 and v4["traffic"]["errors"] > 0
    judged = v4["judge"]
    # errors decide the Fail; latency-p99 (no worse in v4) is then still undecided (score 0) or already
    # decisively safe (score 50), depending on how many buckets came in before errors decided
    assert re.match(r"Fail \(score (0|50)\): errors rose decisively", judged["message"]), judged["message"]
    assert "measurements passed" in judged["threshold_template"]
    assert judged["threshold_template"].endswith("would have promoted")
    assert judged["stable_traffic"]["errors"] == 0 and judged["stable_traffic"]["requests"] > 0
    # every process and server the demo started is gone, and so is its temp dir
    endpoints = summary["endpoints"]
    assert {"api", "prometheus", "traffic"} <= set(endpoints) and sum(k.startswith("app") for k in endpoints) >= 3
    assert [url for url in endpoints.values() if accepts(url)] == []
    assert not Path(summary["kubeconfig"]).exists()
    assert "Traceback" not in stderr.text()


def test_sigterm_stops_every_process_it_started() -> None:
    require_prometheus()
    process = subprocess.Popen([*ROLLOUTS, "demo", "--short", "--plain"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stdout = Lines(process.stdout)
    try:
        api, prometheus = stdout.wait_for(r"cluster API at (\S+), Prometheus at (\S+)").groups()
        app = stdout.wait_for(r"app demo-\S+ \(demo:v1\) listening on (\S+)").group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        err = process.stderr.read()  # stderr only: stdout belongs to the Lines reader
        process.wait(timeout=60)
    assert process.returncode == 130
    assert "interrupted; every process the demo started has been stopped" in err and "Traceback" not in err
    assert [url for url in (api, prometheus, f"http://{app}/") if accepts(url)] == []


# --- failures a user can fix: one line, exit 1 ------------------------------------------------

def test_a_taken_api_port_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    require_prometheus()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--json", "--api-port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (f"rollouts demo: port {port} on 127.0.0.1 is taken: stop what listens there "
                   "or pass --api-port 0 for a free port\n")


@pytest.mark.parametrize(("argv", "message"), [(["--rate", "0"], "'0' is not a request rate"),
                                               (["--api-port", "http"], "'http' is not a port")])
def test_bad_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", *argv])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_prometheus_that_cannot_start_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "prometheus"
    fake.write_text("#!/bin/sh\necho 'err=\"opening storage failed: permission denied\"' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([*ROLLOUTS, "demo", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        'rollouts demo: Prometheus could not start: prometheus did not become ready: '
        'err="opening storage failed: permission denied"']


def test_missing_prometheus_names_the_install_command() -> None:
    done = subprocess.run([*ROLLOUTS, "demo"], capture_output=True, text=True,
                          env=dict(os.environ, PATH="/nonexistent"), timeout=60)
    assert done.returncode == 1
    assert "prometheus is not installed: install Debian's prometheus: apt-get install" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- the manifests -------------------------------------------------------------------------------

def test_scenario_is_the_example_with_short_intervals_and_lints_clean(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    built = scenario.build(scenario.FULL)
    canary = built.rollout["spec"]["strategy"]["canary"]
    assert built.rollout["metadata"]["name"] == "demo"
    assert built.rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "demo:v1"
    assert canary["steps"] == [{"setWeight": 20}, {"pause": {"duration": "15s"}},
                               {"setWeight": 50}, {"pause": {"duration": "15s"}}]
    assert canary["trafficRouting"]["istio"]["virtualService"]["name"] == built.virtual_service["metadata"]["name"]
    metric = built.template["spec"]["metrics"][0]
    assert (metric["interval"], metric["failureLimit"], metric["successCondition"]) == ("5s", 1, "result[0] >= 0.95")
    query = metric["provider"]["prometheus"]["query"]
    assert "[20s]" in query and 'destination_workload=~".+-{{args.canary-hash}}"' in query
    assert built.route == "primary" and built.canary_service == "canary-svc"
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump_all(built.objects))
    assert main(["lint", str(tmp_path)]) == 0, capsys.readouterr().out


def test_judge_release_runs_the_judge_example_adjusted_and_lints_clean(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    built = scenario.build(scenario.SHORT)
    template = judge.judge_template(scenario.SHORT)
    metric = template["spec"]["metrics"][0]
    assert template["metadata"]["name"] == "judge-sequential" and metric["interval"] == "2s"
    config = metric["provider"]["plugin"]["rollouts/judge"]
    assert "address" not in config and (config["mode"], config["step"]) == ("sequential", "5s")
    errors = config["metrics"][0]
    assert 'destination_workload=~".+-{{args.stable-hash}}"' in errors["baselineTotal"] and "[5s]" in errors["canary"]
    patch = judge.judge_patch(built.rollout, "demo:v4", service_name=built.service_name)
    steps = patch["spec"]["strategy"]["canary"]["steps"]
    assert steps[:3] == built.rollout["spec"]["strategy"]["canary"]["steps"][:3]
    assert steps[3]["analysis"]["templates"] == [{"templateName": "judge-sequential"}]
    rollout = copy.deepcopy(built.rollout)
    rollout["spec"]["strategy"]["canary"]["steps"] = steps
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump_all([template, *built.objects[:-1], rollout]))
    assert main(["lint", str(tmp_path)]) == 0, capsys.readouterr().out


def test_threshold_replay_text_says_what_the_threshold_would_have_done() -> None:
    passed = judge.ThresholdReplay("Running", 3, 0, ("[0.975]", "[0.97]", "[0.98]"))
    assert passed.would_promote and passed.text() == (
        "threshold template (success rate >= 95%, replayed on the same history): 3 of 3 measurements passed, "
        "lowest 97.0%: would have promoted")
    failed = judge.ThresholdReplay("Failed", 2, 2, ("[0.8]", "[0.85]"))
    assert not failed.would_promote and "Failed, 0 of 2 measurements passed, lowest 80.0%: would have aborted" in \
        failed.text()


def test_scenario_names_a_missing_example(tmp_path: Path) -> None:
    with pytest.raises(scenario.ScenarioError, match=r"rollout.yaml, which cannot be read"):
        scenario.build(directory=tmp_path)


def test_with_image_keeps_the_rest_of_the_container() -> None:
    rollout = scenario.build().rollout
    patch = scenario.with_image(rollout, "demo:v3")
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "demo:v3"
    assert container["ports"] == rollout["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "demo:v1"  # not mutated


# --- the summary (pure) ----------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def record(image: str, expected: Outcome, **changes: Any) -> ReleaseRecord:
    values: dict[str, Any] = {"image": image, "expected": expected, "started": T0,
                              "ended": T0 + timedelta(seconds=33),
                              "phase": "Healthy", "message": "", "aborted": False, "promoted": True,
                              "weights": (0, 0, 20, 20, 50, 100, 0), "canary": "demo-abc",
                              "analysis_run": "demo-abc-2", "analysis_phase": "Successful",
                              "measurements": ("[1]", "[1]", "[]"), "requests": {"200": 300}}
    values.update(changes)
    return ReleaseRecord(**values)


def test_summary_outcomes_weights_and_rates() -> None:
    v2 = record("demo:v2", Outcome.PROMOTED)
    v3 = record("demo:v3", Outcome.ABORTED, phase="Degraded", aborted=True, weights=(0, 20, 0),
                analysis_phase="Failed", measurements=("[0.96]", "[0.86]", "[0.85]"), requests={"200": 85, "500": 15})
    summary = summarize([v2, v3], duration_seconds=61.23, endpoints={"api": "http://127.0.0.1:1"}, kubeconfig="/k")
    data = to_json(summary)
    assert data["ok"] is True and data["duration_seconds"] == 61.2
    first, second = data["releases"]
    assert first["weight_history"] == "0 → 20 → 50 → 100 → 0(stable)" and first["duration_seconds"] == 33.0
    assert first["analysis"] == {"run": "demo-abc-2", "phase": "Successful", "values": [1.0, 1.0],
                                 "min": 1.0, "last": 1.0}
    assert (second["outcome"], second["success_rate"], second["analysis"]["min"]) == ("Aborted", 0.85, 0.85)
    assert second["traffic"] == {"requests": 100, "errors": 15, "success_rate": 0.85}
    text = to_text(table(summary), width=160)
    assert "✔ as expected: demo:v2 Promoted, demo:v3 Aborted" in text and "85.0% ok of 100" in text


def test_summary_is_not_ok_when_an_outcome_differs() -> None:
    unfinished = record("demo:v3", Outcome.ABORTED, promoted=False, phase="Paused", message="CanaryPauseStep")
    summary = summarize([unfinished], duration_seconds=1, endpoints={}, kubeconfig="")
    assert not summary.ok and summary.releases[0].outcome is Outcome.UNFINISHED
    text = to_text(table(summary), width=200)
    assert "not as expected: demo:v3 Unfinished (expected Aborted: CanaryPauseStep)" in text
    assert not summarize([], duration_seconds=0, endpoints={}, kubeconfig="").ok


def test_summary_shows_the_judge_and_the_threshold_side_by_side() -> None:
    v4 = record("demo:v4", Outcome.ABORTED, phase="Degraded", aborted=True, promoted=False, weights=(0, 20, 50, 0),
                analysis_phase="Failed", measurements=('{"score": 0}',), requests={"200": 390, "500": 10},
                judge="Fail (score 0): errors rose decisively at bucket 7", threshold="threshold template: would have "
                "promoted", baseline_requests={"200": 500})
    summary = summarize([v4], duration_seconds=40, endpoints={}, kubeconfig="")
    data = to_json(summary)["releases"][0]
    assert data["judge"] == {"message": "Fail (score 0): errors rose decisively at bucket 7",
                             "threshold_template": "threshold template: would have promoted",
                             "stable_traffic": {"requests": 500, "errors": 0, "success_rate": 1.0}}
    text = to_text(table(summary), width=200)
    assert "Failed: the judge (below)" in text
    assert "demo:v4 judge: Fail (score 0): errors rose decisively at bucket 7" in text
    assert "canary 2.5% errors of 400, stable 0.0% of 500" in text and "threshold template: would have promoted" in text
    assert "judge" not in to_json(summarize([record("demo:v2", Outcome.PROMOTED)], duration_seconds=1, endpoints={},
                                            kubeconfig=""))["releases"][0]


@pytest.mark.parametrize(("stored", "value"), [("[0.8529]", 0.8529), ("1", 1.0), ("[]", None), ("[0.5,0.7]", 0.5),
                                               ("oops", None)])
def test_measurement_values_as_argo_stores_them(stored: str, value: float | None) -> None:
    assert measurement_value(stored) == value
