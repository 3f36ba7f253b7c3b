"""`rollouts demo --blue-green`: the short blue-green demo end to end (real processes, real Prometheus),
its manifests, its history and its summary.

The end-to-end case follows Argo's test/e2e/analysis_test.go TestBlueGreenAnalysis (a healthy version
is measured behind the preview Service, then the active Service switches to it and the old ReplicaSet
goes after scaleDownDelaySeconds) and TestBlueGreenPrePromotionFail (a failing one is aborted before
any switch; the active Service keeps the stable pods), with real processes and real measurements.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import main
from rollouts.demo import bluegreen
from rollouts.demo.bluegreen_record import BlueGreenRecord, History, Scale, Selectors
from rollouts.demo.bluegreen_summary import summarize, table, to_json
from rollouts.demo.scenario import ScenarioError
from rollouts.demo.summary import Outcome
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.labels import HASH_LABEL
from rollouts.view.render import to_text
from tests.conftest import require_prometheus
from tests.demo.test_demo import accepts

ROLLOUTS = [sys.executable, "-m", "rollouts"]
DEMO_TIMEOUT = 180


# --- end to end ------------------------------------------------------------------------------------

def test_short_demo_blue_green_analysis_then_pre_promotion_fail() -> None:
    """v2 as TestBlueGreenAnalysis, v3 as TestBlueGreenPrePromotionFail, asserted from the JSON summary."""
    require_prometheus()
    done = subprocess.run([*ROLLOUTS, "demo", "--blue-green", "--short", "--json"], capture_output=True, text=True,
                          timeout=DEMO_TIMEOUT, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["ok"] is True and summary["strategy"] == "blueGreen"
    v2, v3 = summary["releases"]
    assert (v2["image"], v2["outcome"], v3["image"], v3["outcome"]) == ("demo:v2", "Promoted", "demo:v3", "Aborted")

    # v2: measured behind the preview Service, then exactly one switch of the active Service, after the run
    old, new = v2["old_hash"], v2["new_hash"]
    assert old and new and old != new
    actives = [s["active"] for s in v2["selectors"]]
    assert actives[0] == old and actives[-1] == new
    assert sum(1 for a, b in itertools.pairwise(actives) if a != b) == 1 == v2["active_switches"]
    assert any(s["preview"] == new and s["active"] == old for s in v2["selectors"])  # preview first
    assert v2["analysis"]["phase"] == "Successful" and v2["analysis"]["run"].endswith("-pre")
    assert len(v2["analysis"]["values"]) == bluegreen.SHORT.count and v2["analysis"]["min"] >= 0.95
    switched = next(s["version"] for s in v2["selectors"] if s["active"] == new)
    assert switched == v2["active_switch_version"] > v2["analysis"]["succeeded_version"]
    assert v2["production"]["requests_to_new"] > 0 and v2["production"]["errors_from_new"] == 0
    # the old ReplicaSet kept its pods past the switch, with a deadline, then went to 0
    replicas = v2["old_replicaset"]["replicas"]
    assert v2["old_replicaset"]["scale_down_deadline"]
    assert any(r["version"] > switched and r["replicas"] > 0 for r in replicas)
    assert replicas[-1]["replicas"] == 0 and v2["old_replicaset"]["scaled_down_version"] > switched

    # v3: the preview analysis fails on the smoke tests; the active Service never selects v3
    assert v3["old_hash"] == new and v3["new_hash"] not in (new, old)
    assert v3["analysis"]["phase"] == "Failed" and v3["analysis"]["min"] < 0.95
    assert v3["new_hash"] not in [s["active"] for s in v3["selectors"]] and v3["active_history"] == [new]
    assert v3["new_hash"] in [s["preview"] for s in v3["selectors"]]
    assert v3["smoke"]["errors"] > 0 and v3["smoke"]["success_rate"] < 0.95
    assert v3["production"]["requests_to_new"] == 0 and v3["production"]["requests"] > 0
    assert v3["new_replicaset_replicas"][-1]["replicas"] == 0  # scaled down after abortScaleDownDelaySeconds

    endpoints = summary["endpoints"]
    assert {"api", "prometheus", "traffic", "smoke"} <= set(endpoints)
    assert [url for url in endpoints.values() if accepts(url)] == []
    assert not Path(summary["kubeconfig"]).exists()
    assert "Traceback" not in done.stderr


# --- the manifests ---------------------------------------------------------------------------------

def test_scenario_is_the_example_with_short_timings_auto_promotion_and_lints_clean(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    built = bluegreen.build(bluegreen.SHORT, namespace="demo-ns")
    strategy = built.rollout["spec"]["strategy"]["blueGreen"]
    assert built.rollout["metadata"] == {"name": "demo", "namespace": "demo-ns"}
    assert built.rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "demo:v1"
    assert strategy["autoPromotionEnabled"] is True
    assert (strategy["scaleDownDelaySeconds"], strategy["abortScaleDownDelaySeconds"]) == (5, 3)
    assert (built.active_service, built.preview_service) == ("rollout-bluegreen-active", "rollout-bluegreen-preview")
    assert strategy["prePromotionAnalysis"]["args"] == [
        {"name": "service-name", "value": "rollout-bluegreen-preview.demo-ns.svc.cluster.local"},
        {"name": "preview-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    metric = built.template["spec"]["metrics"][0]
    assert (metric["interval"], metric["initialDelay"], metric["count"]) == ("2s", "4s", 3)
    assert metric["successCondition"] == "result[0] >= 0.95"
    query = metric["provider"]["prometheus"]["query"]
    assert 'destination_service=~"{{args.service-name}}"' in query
    assert 'destination_workload=~".+-{{args.preview-hash}}"' in query and "[10s]" in query
    assert {d["metadata"]["namespace"] for d in built.objects} == {"demo-ns"}
    assert [d["kind"] for d in built.objects] == ["AnalysisTemplate", "Service", "Service", "Rollout"]
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump_all(built.objects))
    assert main(["lint", str(tmp_path)]) == 0, capsys.readouterr().out


def test_scenario_names_a_missing_example(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"blue-green demo builds on .*rollout.yaml, which cannot be read"):
        bluegreen.build(directory=tmp_path)


def test_scenario_names_a_service_the_rollout_routes_by_but_the_example_lacks(tmp_path: Path) -> None:
    for name in ("rollout.yaml", "analysis-template.yaml"):
        (tmp_path / name).write_text((bluegreen.EXAMPLE_DIR / name).read_text())
    services = [s for s in yaml.safe_load_all((bluegreen.EXAMPLE_DIR / "services.yaml").read_text())
                if s["metadata"]["name"] != "rollout-bluegreen-preview"]
    (tmp_path / "services.yaml").write_text(yaml.safe_dump_all(services))
    with pytest.raises(ScenarioError, match=r"no Service 'rollout-bluegreen-preview', the Rollout's previewService"):
        bluegreen.build(directory=tmp_path)


# --- the history: one resourceVersion counter orders Services and runs --------------------------

def _service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": "x"}}}


def _select(cluster: InMemoryCluster, name: str, pod_hash: str) -> None:
    cluster.patch("Service", name, "default", {"spec": {"selector": {HASH_LABEL: pod_hash}}})


def test_history_orders_selector_changes_and_run_phases_by_resource_version() -> None:
    cluster = InMemoryCluster()
    for name in ("active", "preview", "other"):
        cluster.create(_service(name))
    history = History(cluster, namespace="default", active="active", preview="preview")
    _select(cluster, "active", "old")
    _select(cluster, "preview", "old")
    history.restart()  # a release starts here
    _select(cluster, "preview", "new")
    _select(cluster, "other", "new")  # not one of the demo's Services
    history.drain()
    _select(cluster, "active", "new")
    _select(cluster, "active", "new")  # the same selector again: no change
    history.drain()
    assert [(s.active, s.preview) for s in history.selectors] == [("old", "old"), ("old", "new"), ("new", "new")]
    versions = [s.version for s in history.selectors]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert (history.active, history.preview) == ("new", "new")


# --- the summary (pure) ----------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bg_record(image: str, expected: Outcome, **changes: Any) -> BlueGreenRecord:
    values: dict[str, Any] = {
        "image": image, "expected": expected, "started": T0, "ended": T0 + timedelta(seconds=20),
        "phase": "Healthy", "message": "", "aborted": False, "promoted": True, "weights": (), "canary": "demo-new",
        "analysis_run": "demo-new-2-pre", "analysis_phase": "Successful", "measurements": ("[1]", "[1]", "[1]"),
        "new_hash": "new", "old_hash": "old",
        "selectors": (Selectors(10, "old", "old"), Selectors(14, "old", "new"), Selectors(30, "new", "new")),
        "analysis_succeeded_version": 28,
        "old_scales": (Scale(3, 2, None), Scale(31, 2, "2024-01-01T00:00:15Z"), Scale(40, 0, "2024-01-01T00:00:15Z")),
        "production": {"200": 120}, "production_total": 400, "smoke": {"200": 60},
    }
    values.update(changes)
    return BlueGreenRecord(**values)


def test_summary_reads_one_switch_after_the_analysis_and_production_requests() -> None:
    v2 = bg_record("demo:v2", Outcome.PROMOTED)
    v3 = bg_record("demo:v3", Outcome.ABORTED, phase="Degraded", aborted=True, promoted=False, new_hash="v3",
                   canary="demo-v3", old_hash="new", analysis_phase="Failed", measurements=("[0.85]",),
                   analysis_succeeded_version=None, selectors=(Selectors(30, "new", "new"), Selectors(44, "new", "v3")),
                   old_scales=(), production={}, production_total=300, smoke={"200": 40, "500": 7})
    data = to_json(summarize([v2, v3], duration_seconds=40.04, endpoints={}, kubeconfig=""))
    first, second = data["releases"]
    assert data["ok"] is True and data["duration_seconds"] == 40.0
    assert first["active_history"] == ["old", "new"]
    assert (first["active_switches"], first["active_switch_version"]) == (1, 30)
    assert first["switched_after_analysis"] is True and first["analysis"]["succeeded_version"] == 28
    assert first["old_replicaset"]["scaled_down_version"] == 40
    assert first["old_replicaset"]["scale_down_deadline"] == "2024-01-01T00:00:15Z"
    assert first["production"] == {"requests": 400, "requests_to_new": 120, "errors_from_new": 0}
    assert (second["active_history"], second["active_switches"], second["switched_after_analysis"]) == (["new"], 0,
                                                                                                         False)
    assert second["production"]["requests_to_new"] == 0
    assert second["smoke"] == {"requests": 47, "errors": 7, "success_rate": 0.8511}
    text = to_text(table(summarize([v2, v3], duration_seconds=40, endpoints={}, kubeconfig="")), width=200)
    assert "old → new(new)" in text and "0 of 300" in text
    assert "✔ as expected: demo:v2 Promoted, demo:v3 Aborted" in text


def test_a_switch_before_the_run_succeeded_is_not_after_the_analysis() -> None:
    early = bg_record("demo:v2", Outcome.PROMOTED, analysis_succeeded_version=31)
    late = bg_record("demo:v2", Outcome.PROMOTED, analysis_succeeded_version=None)
    already = bg_record("demo:v2", Outcome.PROMOTED, selectors=(Selectors(5, "new", "new"),))
    for record in (early, late, already):
        data = to_json(summarize([record], duration_seconds=1, endpoints={}, kubeconfig=""))["releases"][0]
        assert data["switched_after_analysis"] is False
    assert to_json(summarize([already], duration_seconds=1, endpoints={}, kubeconfig=""))[
        "releases"][0]["active_switch_version"] is None


def test_blue_green_summary_is_not_ok_when_an_outcome_differs() -> None:
    unfinished = bg_record("demo:v3", Outcome.ABORTED, promoted=False, phase="Paused", message="BlueGreenPause")
    summary = summarize([unfinished], duration_seconds=1, endpoints={}, kubeconfig="")
    assert not summary.ok
    assert "not as expected: demo:v3 Unfinished (expected Aborted: BlueGreenPause)" in to_text(table(summary),
                                                                                                width=200)
