"""crds/ is generated from the models: no drift, structural schemas, Argo's shape, and valid
apiextensions.k8s.io/v1 documents by `kubernetes-validate --strict`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import crds as crds_cli
from rollouts.spec import crdgen, crdschema

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "crds"
FILES = ["analysisruns.yaml", "analysistemplates.yaml", "clusteranalysistemplates.yaml", "experiments.yaml",
         "rollouts.yaml"]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS / name).read_text())


def nodes(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), Mapping):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def run_crds(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    crds_cli.register(parser.add_subparsers())
    args = parser.parse_args(["crds", *argv])
    try:
        return args.func(args)
    except crds_cli.CommandError as err:
        print(err)
        return err.code


def test_crds_directory_matches_the_models() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == FILES
    assert crdgen.drift(CRDS) == [], "crds/ drifted from the models: run `rollouts crds`"


def test_check_flags_a_stale_file_and_out_writes_a_fresh_copy(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_crds("--out", str(tmp_path)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    assert all((tmp_path / f).read_bytes() == (CRDS / f).read_bytes() for f in FILES)
    assert run_crds("--check", "--out", str(tmp_path)) == 0
    (tmp_path / "rollouts.yaml").write_text((CRDS / "rollouts.yaml").read_text().replace("- ro\n", "- rol\n"))
    (tmp_path / "analysisruns.yaml").unlink()
    capsys.readouterr()
    assert run_crds("--check", "--out", str(tmp_path)) == 1
    assert capsys.readouterr().out.startswith("rollouts.yaml, analysisruns.yaml in ")


def test_kubernetes_validate_strict_accepts_every_crd() -> None:
    tool = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(tool), "--strict", *[str(CRDS / f) for f in FILES]],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource customresourcedefinition/") == len(FILES)


def test_kubernetes_validate_strict_rejects_a_broken_crd(tmp_path: Path) -> None:
    broken = (CRDS / "rollouts.yaml").read_text().replace("served: true", "served: 'yes'")
    (tmp_path / "broken.yaml").write_text(broken)
    tool = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(tool), "--strict", str(tmp_path / "broken.yaml")], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert "served" in result.stdout + result.stderr


@pytest.mark.parametrize("name", FILES)
def test_schemas_are_structural(name: str) -> None:
    """The rules the API server enforces and kubernetes-validate does not check."""
    version = load(name)["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    assert root["properties"]["metadata"] == {"type": "object"}
    for path, node in nodes(root):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "const", "default", "nullable", "title"} & node.keys(), path
        assert ("type" in node) or node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path


def test_names_scope_subresources_and_columns_follow_argo() -> None:
    by_kind = {load(f)["spec"]["names"]["kind"]: load(f) for f in FILES}
    short = {kind: crd["spec"]["names"]["shortNames"] for kind, crd in by_kind.items()}
    assert short == {"Rollout": ["ro"], "AnalysisTemplate": ["at"], "ClusterAnalysisTemplate": ["cat"],
                     "AnalysisRun": ["ar"], "Experiment": ["exp"]}  # fmt: skip
    assert {k: c["spec"]["scope"] for k, c in by_kind.items()} == {
        "Rollout": "Namespaced", "AnalysisTemplate": "Namespaced", "ClusterAnalysisTemplate": "Cluster",
        "AnalysisRun": "Namespaced", "Experiment": "Namespaced",
    }  # fmt: skip
    for crd in by_kind.values():
        assert crd["spec"]["group"] == "argoproj.io"
        [version] = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    rollout = by_kind["Rollout"]["spec"]["versions"][0]
    assert rollout["subresources"] == {
        "status": {},
        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.HPAReplicas",
                  "labelSelectorPath": ".status.selector"},
    }  # fmt: skip
    assert [c["name"] for c in rollout["additionalPrinterColumns"]] == ["Desired", "Current", "Up-to-date",
                                                                       "Available", "Age"]  # fmt: skip
    run = by_kind["AnalysisRun"]["spec"]["versions"][0]
    assert run["subresources"] == {"status": {}}
    experiment = by_kind["Experiment"]["spec"]["versions"][0]
    assert "subresources" not in experiment, "Argo's Experiment CRD has no status subresource"
    assert [c["name"] for c in experiment["additionalPrinterColumns"]] == ["Status", "Age"]
    assert [(c["name"], c["jsonPath"]) for c in run["additionalPrinterColumns"]] == [
        ("Status", ".status.phase"), ("Age", ".metadata.creationTimestamp")]
    assert "subresources" not in by_kind["AnalysisTemplate"]["spec"]["versions"][0]


def test_status_fields_keep_argo_spelling() -> None:
    status = load("rollouts.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert {"stableRS", "HPAReplicas", "currentStepIndex", "pauseConditions", "canary"} <= status["properties"].keys()
    assert status["properties"]["observedGeneration"] == {"type": "string"}
    assert status["x-kubernetes-preserve-unknown-fields"] is True


ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
    "spec": {"selector": {"matchLabels": {"app": "r"}}, "template": {"metadata": {"labels": {"app": "r"}}},
             "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                               {"pause": {"duration": 60}}]}}},
}  # fmt: skip


def with_canary(**fields: Any) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(ROLLOUT))
    doc["spec"]["strategy"]["canary"].update(fields)
    return doc


def test_argo_fields_for_other_routers_survive_a_strict_api_server_and_typos_do_not() -> None:
    crd = load("rollouts.yaml")
    assert crdschema.validate(crd, ROLLOUT, strict=True) == []
    nginx = with_canary(trafficRouting={"nginx": {"stableIngress": "web"}}, canaryService="c", stableService="s")
    assert crdschema.validate(crd, nginx, strict=True) == []
    typo = with_canary(steps=[{"setWieght": 20}])
    assert crdschema.validate(crd, typo, strict=True) == [
        "spec.strategy.canary.steps[0]: Additional properties are not allowed ('setWieght' was unexpected)"]
    template = load("analysistemplates.yaml")
    datadog = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
               "spec": {"metrics": [{"name": "m", "provider": {"datadog": {"query": "q"}}}]}}  # fmt: skip
    assert crdschema.validate(template, datadog, strict=True) == []


def test_schema_rejects_what_the_api_server_would() -> None:
    crd = load("rollouts.yaml")
    bad = with_canary(steps=[{"setWeight": "abc"}, {"pause": {"duration": [1]}}], maxSurge=True)
    errors = crdschema.validate(crd, bad)
    assert errors[0] == "spec.strategy.canary.maxSurge: True is not valid under any of the given schemas"
    assert errors[1] == "spec.strategy.canary.steps[0].setWeight: 'abc' is not of type 'integer'"
    assert errors[2].startswith("spec.strategy.canary.steps[1].pause.duration: [1] is not valid under any")
    assert crdschema.validate(crd, {**ROLLOUT, "spec": {}}) == ["spec: 'strategy' is a required property"]
