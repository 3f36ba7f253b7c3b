"""The models round-trip: every document we accept loads and dumps back equal, fields Argo
accepts for features we do not run included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.model import AnalysisRun, AnalysisTemplate, ArgoModel
from rollouts.spec import manifests
from rollouts.spec.model import Rollout

ROOT = Path(__file__).resolve().parents[1]
MODELS: dict[str, type[ArgoModel]] = {"Rollout": Rollout, "AnalysisTemplate": AnalysisTemplate,
                                      "ClusterAnalysisTemplate": AnalysisTemplate,
                                      "AnalysisRun": AnalysisRun}  # fmt: skip


def argo_documents(*paths: Path) -> list[manifests.Document]:
    docs = manifests.load([str(p) for p in paths]).documents
    return [d for d in docs if d.data.get("kind") in MODELS]


EXAMPLE_DOCS = argo_documents(ROOT / "examples")
WARN_DOCS = list(argo_documents(ROOT / "tests" / "spec" / "warn"))


def ids(docs: list[manifests.Document]) -> list[str]:
    return [f"{Path(d.file).parent.name}/{Path(d.file).name}#{d.index}" for d in docs]


@pytest.mark.parametrize("doc", EXAMPLE_DOCS, ids=ids(EXAMPLE_DOCS))
def test_every_example_round_trips(doc: manifests.Document) -> None:
    model = MODELS[doc.data["kind"]].load(doc.data)
    assert model.dump() == doc.data


@pytest.mark.parametrize("doc", WARN_DOCS, ids=ids(WARN_DOCS))
def test_fields_for_features_we_do_not_run_are_kept(doc: manifests.Document) -> None:
    model = MODELS[doc.data["kind"]].load(doc.data)
    assert model.dump() == doc.data


def test_argo_status_round_trips_with_its_spelling() -> None:
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r", "generation": 3},
        "spec": {"replicas": 5, "strategy": {"canary": {"steps": [{"setWeight": 50}]}}},
        "status": {
            "phase": "Paused", "currentStepIndex": 1, "stableRS": "6f8d9c", "currentPodHash": "7b5c4d",
            "HPAReplicas": 5, "observedGeneration": "3", "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}],
            "canary": {"weights": {"canary": {"weight": 50, "serviceName": "canary-svc"},
                                   "stable": {"weight": 50, "serviceName": "stable-svc"}},
                       "stepPluginStatuses": [{"name": "x"}]},
            "blueGreen": {},
        },
    }  # fmt: skip
    rollout = Rollout.load(doc)
    assert rollout.status is not None and rollout.status.stable_rs == "6f8d9c" and rollout.status.hpa_replicas == 5
    dumped = rollout.dump()
    assert dumped["status"]["pauseConditions"][0]["startTime"] in ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00")
    dumped["status"]["pauseConditions"][0]["startTime"] = "2024-01-01T00:00:00Z"
    assert dumped == doc


def test_analysis_run_with_status_round_trips() -> None:
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "run"},
        "spec": {"args": [{"name": "service-name", "value": "svc"}],
                 "metrics": [{"name": "m", "interval": "1m", "count": 2, "successCondition": "result[0] > 0",
                              "provider": {"prometheus": {"address": "http://p:9090", "query": "up"}}}]},
        "status": {"phase": "Running", "metricResults": [{"name": "m", "phase": "Running", "count": 1,
                   "successful": 1, "measurements": [{"phase": "Successful", "value": "[1]"}]}]},
    }  # fmt: skip
    assert AnalysisRun.load(doc).dump() == doc
