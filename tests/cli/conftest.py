"""Fixtures for the SRE commands: a shop's `checkout` Rollout as the controller writes it.

The scenario: `checkout` (5 replicas, Istio, background analysis `error-rate` from step 1)
is updating from shop/checkout:1.4.0 (revision 2, stable) to 1.5.0 (revision 3, canary),
with steps setWeight 20 → pause → analysis success-rate → setWeight 50 → pause 30s.
Revision 1 (1.3.2) is scaled down. `Shop.seed(stage)` writes the Rollout, its three
ReplicaSets and its AnalysisRuns for one stage:

- "paused"        step 1/5, CanaryPauseStep, weight 20, background run Running
- "analysis"      step 2/5, step run success-rate Running (2 good measurements)
- "inconclusive"  step 2/5, step run Inconclusive, pause InconclusiveAnalysisRun
- "aborted"       step 0/5, abort, Degraded, step run Failed (0.942 < 0.95)
- "healthy"       step 5/5, stableRS = 1.5.0, old ReplicaSets scaled down

Commands run through `rollouts.cli.main` against an InMemoryCluster served over HTTP by
`rollouts.memory.server` (KubeCluster, a kubeconfig: the real path, fixture `cli`), or in
process through the runtime's `make_cluster` seam where a stepped clock must drive waits
(`connect.use_runtime(...)` in the tests that need it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollouts.cli import connect, main
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import ApiServer, serve
from rollouts.platform.clock import SteppedClock

NS = "shop"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # when the objects were created
NOW = T0 + timedelta(minutes=7)  # the CLI's clock in tests
OLD, STABLE, CANARY = "5c8d7b6a4", "6d4f8c7b9", "7f9b5d6c8"
IMAGES = {OLD: "shop/checkout:1.3.2", STABLE: "shop/checkout:1.4.0", CANARY: "shop/checkout:1.5.0"}
REVISIONS = {OLD: 1, STABLE: 2, CANARY: 3}
SIDECAR = "fluent/fluent-bit:3.0"
STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
    {"analysis": {"templates": [{"templateName": "success-rate"}],
                  "args": [{"name": "service-name", "value": "checkout-canary.shop.svc.cluster.local"}]}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
]
ABORT_MESSAGE = ('RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase failed: '
                 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)')


def stamp(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_template(image: str, pod_hash: str | None = None) -> dict[str, Any]:
    labels = {"app": "checkout", **({"rollouts-pod-template-hash": pod_hash} if pod_hash else {})}
    return {
        "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "true"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": image.replace("checkout:", "checkout-migrate:"),
                                "args": ["--up"]}],
            "containers": [
                {"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}},
                {"name": "log-shipper", "image": SIDECAR},
            ],
        },
    }


def rollout_manifest(name: str = "checkout", image: str = IMAGES[CANARY]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "checkout", "team": "payments"}},
        "spec": {
            "replicas": 5,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": pod_template(image),
            "strategy": {"canary": {
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
                "trafficRouting": {"istio": {"virtualService": {"name": "checkout", "routes": ["primary"]}}},
                "analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1,
                             "args": [{"name": "service-name", "value": "checkout-canary"}]},
                "steps": STEPS,
            }},
        },
    }


def weights(canary: int, stable_hash: str = STABLE) -> dict[str, Any]:
    return {"canary": {"weight": canary, "serviceName": "checkout-canary", "podTemplateHash": CANARY},
            "stable": {"weight": 100 - canary, "serviceName": "checkout-stable", "podTemplateHash": stable_hash}}


def condition(kind: str, status: str, reason: str, message: str, minutes: float = 2) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": stamp(minutes), "lastTransitionTime": stamp(minutes)}


def rollout_status(stage: str) -> dict[str, Any]:
    """Status as the controller writes it at `stage`."""
    base: dict[str, Any] = {
        "observedGeneration": "1", "currentPodHash": CANARY, "stableRS": STABLE, "currentStepHash": "5b8c9d7f6",
        "selector": "app=checkout", "replicas": 6, "updatedReplicas": 1, "readyReplicas": 6,
        "availableReplicas": 6, "HPAReplicas": 6,
        "conditions": [condition("Available", "True", "AvailableReason", "Rollout has minimum availability"),
                       condition("Progressing", "True", "ReplicaSetUpdated",
                                 'ReplicaSet "checkout-7f9b5d6c8" is progressing.')],
    }
    background = {"name": "checkout-7f9b5d6c8-3", "status": "Running"}
    if stage == "paused":
        return base | {
            "phase": "Paused", "message": "CanaryPauseStep", "currentStepIndex": 1, "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": stamp(3)}],
            "canary": {"weights": weights(20), "currentBackgroundAnalysisRunStatus": background},
        }
    if stage == "analysis":
        return base | {
            "phase": "Progressing", "message": "waiting for all steps to complete", "currentStepIndex": 2,
            "canary": {"weights": weights(20), "currentBackgroundAnalysisRunStatus": background,
                       "currentStepAnalysisRunStatus": {"name": "checkout-7f9b5d6c8-3-2", "status": "Running"}},
        }
    if stage == "inconclusive":
        return base | {
            "phase": "Paused", "message": "InconclusiveAnalysisRun", "currentStepIndex": 2, "controllerPause": True,
            "pauseConditions": [{"reason": "InconclusiveAnalysisRun", "startTime": stamp(6)}],
            "canary": {"weights": weights(20), "currentBackgroundAnalysisRunStatus": background,
                       "currentStepAnalysisRunStatus": {"name": "checkout-7f9b5d6c8-3-2", "status": "Inconclusive"}},
        }
    if stage == "aborted":
        return base | {
            "phase": "Degraded", "message": ABORT_MESSAGE, "currentStepIndex": 0, "abort": True,
            "abortedAt": stamp(6), "replicas": 5, "updatedReplicas": 0, "readyReplicas": 5, "availableReplicas": 5,
            "canary": {"weights": weights(0)},
            "conditions": [condition("Progressing", "False", "RolloutAborted", ABORT_MESSAGE, 6)],
        }
    if stage == "healthy":
        return base | {
            "phase": "Healthy", "message": "", "currentStepIndex": len(STEPS), "stableRS": CANARY,
            "replicas": 5, "updatedReplicas": 5, "readyReplicas": 5, "availableReplicas": 5, "HPAReplicas": 5,
            "canary": {"weights": weights(0, CANARY)},
            "conditions": [condition("Healthy", "True", "RolloutHealthy", "Rollout is healthy", 7),
                           condition("Completed", "True", "RolloutCompleted", "Rollout completed update", 7)],
        }
    raise ValueError(f"unknown stage {stage!r}")


def owner(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": rollout["metadata"]["name"],
             "uid": rollout["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]


def replica_set(rollout: dict[str, Any], pod_hash: str, *, replicas: int, ready: int,
                annotations: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"{rollout['metadata']['name']}-{pod_hash}"
    obj = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"app": "checkout", "rollouts-pod-template-hash": pod_hash},
                     "annotations": {"rollout.argoproj.io/revision": str(REVISIONS[pod_hash]),
                                     "rollout.argoproj.io/desired-replicas": "5", **(annotations or {})},
                     "ownerReferences": owner(rollout)},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "checkout", "rollouts-pod-template-hash": pod_hash}},
                 "template": pod_template(IMAGES[pod_hash], pod_hash)},
    }
    status = {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
              "availableReplicas": ready, "observedGeneration": 1}
    return obj, status


def measurement(phase: str, value: str, minutes: float) -> dict[str, Any]:
    return {"phase": phase, "value": value, "startedAt": stamp(minutes), "finishedAt": stamp(minutes)}


def analysis_run(rollout: dict[str, Any], name: str, *, step: int | None, metric: str, phase: str,
                 measurements: list[dict[str, Any]], message: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    labels = {"rollouts-pod-template-hash": CANARY, "rollout-type": "Step" if step is not None else "Background"}
    if step is not None:
        labels["step-index"] = str(step)
    counts = {p: sum(m["phase"] == p.capitalize() for m in measurements)
              for p in ("successful", "failed", "inconclusive", "error")}
    obj = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": NS, "labels": labels,
                     "annotations": {"rollout.argoproj.io/revision": "3"}, "ownerReferences": owner(rollout)},
        "spec": {"args": [{"name": "service-name", "value": "checkout-canary"}], "metrics": [{
            "name": metric, "interval": "30s", "count": 3, "successCondition": "result[0] >= 0.95",
            "failureLimit": 0,
            "provider": {"prometheus": {"address": "http://prometheus.monitoring:9090",
                                        "query": 'sum(rate(istio_requests_total{destination_service=~"checkout-canary",'
                                                 'response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total[1m]))'}},
        }]},
    }
    result: dict[str, Any] = {"name": metric, "phase": phase, "measurements": measurements,
                              "count": len(measurements) - counts["error"], **counts,
                              "consecutiveError": 0}
    if message:
        result["message"] = message
    status: dict[str, Any] = {"phase": phase, "startedAt": stamp(4), "metricResults": [result],
                              "runSummary": {"count": 1, **{k: int(phase.lower() == k) for k in counts}}}
    if message:
        status["message"] = message
    if phase not in ("Running", "Pending"):
        status["completedAt"] = stamp(6)
    return obj, status


@dataclass
class Shop:
    """Seeds the `checkout` objects of one stage into an InMemoryCluster."""

    cluster: InMemoryCluster

    def rollout(self, name: str = "checkout") -> dict[str, Any]:
        return self.cluster.get("Rollout", name, NS)

    def seed(self, stage: str, *, name: str = "checkout") -> dict[str, Any]:
        rollout = self.cluster.create(rollout_manifest(name))
        self.cluster.patch_status("Rollout", name, NS, {"status": rollout_status(stage)})
        if name != "checkout":
            return self.rollout(name)
        healthy, aborted = stage == "healthy", stage == "aborted"
        deadline = {"scale-down-deadline": stamp(7.5)} if healthy else None
        sets = [replica_set(rollout, OLD, replicas=0, ready=0),
                replica_set(rollout, STABLE, replicas=0 if healthy else 5, ready=0 if healthy else 5,
                            annotations=deadline),
                replica_set(rollout, CANARY, replicas=5 if healthy else 0 if aborted else 1,
                            ready=5 if healthy else 0 if aborted else 1)]
        for obj, status in sets:
            self._create(obj, status)
        for obj, status in self._runs(rollout, stage):
            self._create(obj, status)
        return self.rollout(name)

    def _runs(self, rollout: dict[str, Any], stage: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        background_phase = "Successful" if stage == "healthy" else "Running"
        runs = [analysis_run(rollout, "checkout-7f9b5d6c8-3", step=None, metric="error-rate",
                             phase=background_phase if stage != "aborted" else "Successful",
                             measurements=[measurement("Successful", "[0.002]", 4),
                                           measurement("Successful", "[0.004]", 5)])]
        step_run = {
            "analysis": ("Running", [measurement("Successful", "[0.995]", 5),
                                     measurement("Successful", "[0.991]", 5.5)], ""),
            "healthy": ("Successful", [measurement("Successful", "[0.995]", 5),
                                       measurement("Successful", "[0.991]", 5.5),
                                       measurement("Successful", "[0.989]", 6)], ""),
            "inconclusive": ("Inconclusive", [measurement("Successful", "[0.995]", 5),
                                              measurement("Inconclusive", "[NaN]", 5.5)],
                             'Metric "success-rate" assessed Inconclusive due to inconclusive (1) > '
                             'inconclusiveLimit (0)'),
            "aborted": ("Failed", [measurement("Successful", "[0.991]", 5), measurement("Failed", "[0.942]", 5.5)],
                        'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'),
        }.get(stage)
        if step_run is not None:
            phase, values, message = step_run
            runs.append(analysis_run(rollout, "checkout-7f9b5d6c8-3-2", step=2, metric="success-rate",
                                     phase=phase, measurements=values, message=message))
        return runs

    def _create(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        self.cluster.create(obj)
        self.cluster.patch_status(obj["kind"], obj["metadata"]["name"], NS, {"status": status})


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(NOW)


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(clock=lambda: T0, workloads=False)


@pytest.fixture
def shop(cluster: InMemoryCluster) -> Shop:
    return Shop(cluster)


@pytest.fixture
def runtime(clock: SteppedClock) -> Iterator[connect.Runtime]:
    """A stepped clock whose `sleep` advances it; no TTY; polling instead of watching."""
    with connect.use_runtime(connect.Runtime(clock=clock, sleep=clock.advance, tty=False, watch=False)) as rt:
        yield rt


@pytest.fixture
def server(cluster: InMemoryCluster) -> Iterator[ApiServer]:
    with serve(cluster) as api:
        yield api


@pytest.fixture
def kubeconfig(server: ApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig", context="shop-prod", namespace=NS)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs `rollouts ...` through main() with the connection flags given once."""

    def __init__(self, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
        self.capsys, self.flags = capsys, flags

    def __call__(self, *argv: str, flags: bool = True) -> Result:
        self.capsys.readouterr()
        code = main([*argv, *(self.flags if flags else [])])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], kubeconfig: Path, runtime: connect.Runtime) -> Cli:
    """The real path: KubeCluster over HTTP to the served InMemoryCluster, via a kubeconfig."""
    return Cli(capsys, ["--kubeconfig", str(kubeconfig)])
