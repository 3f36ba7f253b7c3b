"""examples/: the reference scenario and its siblings lint clean, validate against crds/,
and say exactly what the issue asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import main
from rollouts.spec import crdschema, manifests

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DIRS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
CRD_FILES = {"Rollout": "rollouts.yaml", "AnalysisTemplate": "analysistemplates.yaml",
             "ClusterAnalysisTemplate": "clusteranalysistemplates.yaml",
             "AnalysisRun": "analysisruns.yaml"}  # fmt: skip
SUCCESS_RATE_QUERY = (
    'sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",'
    'response_code!~"5.*"}[5m])) / sum(irate(istio_requests_total{reporter="source",'
    'destination_service=~"{{args.service-name}}"}[5m]))'
)


# The reference example keeps Argo's manifests exactly: its background analysis can only
# fail after the pause ends, which lint warns about and its README explains
# (tests/spec/test_timing.py asserts the exact line).
TIMING_WARNING = ("can fail at the earliest after 15m (failureLimit 3 + 1 failures, every 5m), "
                  "but the steps end after 10m")


def documents(directory: Path = EXAMPLES) -> list[manifests.Document]:
    return manifests.load([str(directory)]).documents


def by_kind(directory: Path, kind: str) -> list[dict[str, Any]]:
    return [d.data for d in documents(directory) if d.data["kind"] == kind]


def test_lint_examples_exits_0_with_an_ok_line(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["lint", "examples/"]) == 0
    files = len(list(EXAMPLES.rglob("*.yaml")))
    *warned, ok = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1] for line in warned] == ["examples/istio-canary/rollout.yaml"]
    assert TIMING_WARNING in warned[0]
    assert ok == f"OK: {files} files, {len(documents())} objects, 1 warning"


@pytest.mark.parametrize("directory", DIRS, ids=[d.name for d in DIRS])
def test_each_example_lints_alone_without_warnings(directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(directory)]) == 0
    *warned, ok = capsys.readouterr().out.splitlines()
    assert ok.startswith("OK: ")
    if directory.name == "istio-canary":
        assert len(warned) == 1 and TIMING_WARNING in warned[0] and ok.endswith(", 1 warning")
    else:
        assert warned == [] and "warning" not in ok
    assert (directory / "README.md").is_file()


def test_every_example_custom_resource_validates_against_crds_strictly() -> None:
    crds = {kind: yaml.safe_load((ROOT / "crds" / name).read_text()) for kind, name in CRD_FILES.items()}
    checked = 0
    for doc in documents():
        if doc.data["kind"] in crds:
            assert crdschema.validate(crds[doc.data["kind"]], doc.data, strict=True) == [], doc.file
            checked += 1
    assert checked >= 7  # four Rollouts, three AnalysisTemplates


def test_builtin_kinds_in_examples_pass_kubernetes_validate_strict() -> None:
    tool = Path(sys.executable).with_name("kubernetes-validate")
    files = [str(p) for p in sorted(EXAMPLES.rglob("*.yaml"))]
    result = subprocess.run([str(tool), "--strict", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource service/") == 6


def test_istio_canary_is_the_reference_scenario() -> None:
    directory = EXAMPLES / "istio-canary"
    assert sorted(p.name for p in directory.glob("*.yaml")) == [
        "analysis-template.yaml", "rollout.yaml", "services.yaml", "virtualservice.yaml"]
    [rollout] = by_kind(directory, "Rollout")
    assert rollout["metadata"]["name"] == "rollout-example"
    spec = rollout["spec"]
    assert spec["replicas"] == 5
    assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"] == {"app": "rollout-example"}
    assert spec["template"]["spec"]["containers"][0]["image"] == "argoproj/rollouts-demo:blue"
    canary = spec["strategy"]["canary"]
    assert (canary["canaryService"], canary["stableService"]) == ("canary-svc", "stable-svc")
    assert canary["analysis"] == {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service-name", "value": "guestbook-svc.default.svc.cluster.local"}],
    }
    assert canary["trafficRouting"] == {"istio": {"virtualService": {"name": "rollout-vsvc", "routes": ["primary"]}}}
    assert canary["steps"] == [{"setWeight": 50}, {"pause": {"duration": "10m"}}]

    [template] = by_kind(directory, "AnalysisTemplate")
    [metric] = template["spec"]["metrics"]
    assert template["metadata"]["name"] == "success-rate"
    assert template["spec"]["args"] == [{"name": "service-name"}]
    assert (metric["interval"], metric["successCondition"], metric["failureLimit"]) == ("5m", "result[0] >= 0.95", 3)
    prometheus = metric["provider"]["prometheus"]
    assert prometheus["address"] == "http://prometheus.istio-system:9090"
    assert " ".join(prometheus["query"].split()) == SUCCESS_RATE_QUERY

    [vs] = by_kind(directory, "VirtualService")
    [route] = vs["spec"]["http"]
    assert vs["metadata"]["name"] == "rollout-vsvc" and route["name"] == "primary"
    assert {d["destination"]["host"]: d["weight"] for d in route["route"]} == {"stable-svc": 100, "canary-svc": 0}
    assert sorted(s["metadata"]["name"] for s in by_kind(directory, "Service")) == ["canary-svc", "stable-svc"]


def test_multi_step_walks_10_25_50_100_with_pauses_and_a_counted_analysis_step() -> None:
    directory = EXAMPLES / "multi-step"
    [rollout] = by_kind(directory, "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [10, 25, 50, 100]
    assert sum("pause" in s for s in steps) >= 2
    [analysis] = [s["analysis"] for s in steps if "analysis" in s]
    [template] = by_kind(directory, "AnalysisTemplate")
    assert analysis["templates"] == [{"templateName": template["metadata"]["name"]}]
    assert all(m.get("count") for m in template["spec"]["metrics"])
    assert by_kind(directory, "DestinationRule"), "subset routing: the DestinationRule is part of the example"


def test_basic_canary_has_no_traffic_router() -> None:
    [rollout] = by_kind(EXAMPLES / "basic-canary", "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    assert "trafficRouting" not in canary
    assert [s["setWeight"] for s in canary["steps"] if "setWeight" in s] == [25, 50, 75]
