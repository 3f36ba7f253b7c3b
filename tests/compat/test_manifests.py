"""Argo Rollouts manifests work unchanged (DESIGN §1), on manifests written for these tests.

Each file under manifests/ holds realistic objects using what Argo's canary docs and
examples use, and lists the warnings `rollouts lint` must give as `# warn: Kind/name path`
lines. For every file:
- each object uses only fields Argo's CRDs have, with Argo's types and required fields
  (a schema built from argo_field_paths.txt: what Argo accepts, not what we do);
- each Argo object loads into our models and dumps back equal (nothing dropped or added);
- each validates against our CRDs in crds/ with unknown fields forbidden where the CRD
  does not preserve them (a real API server with our CRDs keeps every field);
- `rollouts lint` gives exactly the listed warnings, each saying the feature "is not
  supported by this controller", and exactly the listed `# error: Kind/name path` lines
  for what Argo runs and this controller refuses (a strategy, step kind or traffic
  router it does not run: InvalidSpec, never passed over), each "is not run by this
  controller".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from analysis.model import AnalysisRun, AnalysisTemplate, ArgoModel
from rollouts.cli import lint
from rollouts.spec import crdschema, manifests
from rollouts.spec.model import Rollout
from tests.compat.argo_paths import argo_schema

HERE = Path(__file__).parent
FILES = sorted((HERE / "manifests").glob("*.yaml"))
CRDS = HERE.parents[1] / "crds"
MODELS: dict[str, type[ArgoModel]] = {"Rollout": Rollout, "AnalysisTemplate": AnalysisTemplate,
                                      "ClusterAnalysisTemplate": AnalysisTemplate,
                                      "AnalysisRun": AnalysisRun}  # fmt: skip
CRD_FILES = {"Rollout": "rollouts.yaml", "AnalysisTemplate": "analysistemplates.yaml",
             "ClusterAnalysisTemplate": "clusteranalysistemplates.yaml",
             "AnalysisRun": "analysisruns.yaml"}  # fmt: skip
NOT_SUPPORTED = "not supported by this controller"  # rollouts/spec/problems.py, validation.py
NOT_RUN = "is not run by this controller"  # refused: steps.not_run_problem, problems.router_not_run


def argo_docs() -> list[tuple[Path, manifests.Document]]:
    return [(f, d) for f in FILES for d in manifests.load([str(f)]).documents if d.data.get("kind") in MODELS]


DOCS = argo_docs()
DOC_IDS = [f"{f.stem}:{d.data['kind']}/{d.data['metadata'].get('name')}" for f, d in DOCS]


def expected_warnings(path: Path, level: str = "warn") -> set[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {(m[1], m[2]) for line in lines if (m := re.fullmatch(rf"# {level}: (\S+) (\S+)", line))}


@functools.cache
def our_crd(kind: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS / CRD_FILES[kind]).read_text(encoding="utf-8"))


@functools.cache
def argo_validator(kind: str) -> Draft7Validator:
    schema_kind = "AnalysisTemplate" if kind == "ClusterAnalysisTemplate" else kind  # same Go type
    return Draft7Validator(argo_schema(schema_kind))


def test_there_is_a_manifest_per_feature_family() -> None:
    assert len(FILES) >= 12 and len(DOCS) >= 30


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=DOC_IDS)
def test_argo_has_every_field_the_manifest_uses(path: Path, doc: manifests.Document) -> None:
    errors = sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                    for e in argo_validator(doc.data["kind"]).iter_errors(doc.data))  # fmt: skip
    assert errors == []


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=DOC_IDS)
def test_loads_and_dumps_back_equal(path: Path, doc: manifests.Document) -> None:
    assert MODELS[doc.data["kind"]].load(doc.data).dump() == doc.data


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=DOC_IDS)
def test_our_crds_accept_it_and_prune_nothing(path: Path, doc: manifests.Document) -> None:
    assert crdschema.validate(our_crd(doc.data["kind"]), doc.data, strict=True) == []


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_lint_names_each_unsupported_feature_and_refuses_what_is_not_run(path: Path) -> None:
    findings = lint.lint(manifests.load([str(path)]))
    refused = {(f.subject, f.problem.path) for f in findings if f.problem.is_error}
    warned = {(f.subject, f.problem.path) for f in findings if not f.problem.is_error}
    assert refused == expected_warnings(path, "error")
    assert warned == expected_warnings(path)
    for finding in findings:
        assert (NOT_RUN if finding.problem.is_error else NOT_SUPPORTED) in finding.problem.message, str(finding)
        field = finding.problem.path.rsplit(".", 1)[-1]
        assert re.sub(r"\[\d+\]$", "", field) in finding.problem.message, str(finding)


# ---------------------------------------------------------------- what the manifests cover


def wire_paths(node: Any, path: str = "") -> Iterator[str]:
    """Every field path of a document, list indices written `[]`."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub
            yield from wire_paths(value, sub)
    elif isinstance(node, list):
        for item in node:
            yield from wire_paths(item, f"{path}[]")


CANARY = "spec.strategy.canary"
COVERED = {
    "Rollout": [
        f"{CANARY}.steps[].setWeight", f"{CANARY}.steps[].pause.duration", f"{CANARY}.steps[].analysis.templates",
        f"{CANARY}.steps[].setCanaryScale.replicas", f"{CANARY}.steps[].setCanaryScale.weight",
        f"{CANARY}.steps[].setCanaryScale.matchTrafficWeight", f"{CANARY}.steps[].setHeaderRoute.match",
        f"{CANARY}.steps[].setMirrorRoute.percentage", f"{CANARY}.steps[].experiment.templates",
        f"{CANARY}.trafficRouting.istio.virtualService.routes", f"{CANARY}.trafficRouting.istio.virtualServices",
        f"{CANARY}.trafficRouting.istio.destinationRule.canarySubsetName",
        f"{CANARY}.trafficRouting.istio.virtualService.tlsRoutes",
        f"{CANARY}.trafficRouting.istio.virtualService.tcpRoutes",
        f"{CANARY}.trafficRouting.managedRoutes", f"{CANARY}.trafficRouting.nginx", f"{CANARY}.trafficRouting.alb",
        f"{CANARY}.analysis.startingStep", f"{CANARY}.analysis.args[].value",
        f"{CANARY}.analysis.args[].valueFrom.podTemplateHashValue",
        f"{CANARY}.analysis.args[].valueFrom.fieldRef.fieldPath",
        f"{CANARY}.analysis.dryRun", f"{CANARY}.analysis.measurementRetention",
        f"{CANARY}.analysis.analysisRunMetadata",
        f"{CANARY}.analysis.templates[].clusterScope", f"{CANARY}.canaryMetadata", f"{CANARY}.stableMetadata",
        f"{CANARY}.antiAffinity", f"{CANARY}.maxSurge", f"{CANARY}.maxUnavailable", "spec.workloadRef",
        "spec.strategy.blueGreen", "status.canary.weights",
    ],
    "AnalysisTemplate": [
        "spec.templates", "spec.args[].valueFrom.secretKeyRef", "spec.metrics[].count", "spec.metrics[].failureLimit",
        "spec.metrics[].consecutiveSuccessLimit", "spec.metrics[].provider.prometheus.headers",
        "spec.metrics[].provider.prometheus.timeout", "spec.metrics[].provider.prometheus.authentication.basicAuth",
        "spec.metrics[].provider.prometheus.rangeQuery", "spec.metrics[].provider.web.jsonPath",
        "spec.metrics[].provider.web.headers", "spec.metrics[].provider.web.body",
        "spec.metrics[].provider.web.jsonBody",
    ],
    "ClusterAnalysisTemplate": ["spec.metrics[].provider.prometheus.query"],
    "AnalysisRun": ["spec.dryRun", "spec.measurementRetention", "status.metricResults[].measurements"],
}


@pytest.mark.parametrize("kind", COVERED)
def test_the_manifests_use_what_argo_canary_docs_use(kind: str) -> None:
    used = {p for _, d in DOCS if d.data["kind"] == kind for p in wire_paths(d.data)}
    assert [p for p in COVERED[kind] if p not in used] == []


def test_templated_limits_are_strings_in_the_manifests() -> None:
    """count/failureLimit written as "{{args.x}}" reach the models as strings, untouched."""
    [template] = [d.data for f, d in DOCS if f.stem == "templated-limits" and d.data["kind"] == "AnalysisTemplate"]
    metric = AnalysisTemplate.load(template).spec.metrics[0]
    assert (metric.count, metric.failure_limit, metric.interval) == (
        "{{args.samples}}", "{{args.tolerated}}", "{{args.every}}")
