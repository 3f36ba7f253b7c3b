"""Scenarios for the fault proofs: the dsl's Scenario with real providers and edited examples.

`FaultScenario(example, providers=..., cluster=...)` is tests.controller.dsl.Scenario whose
Manager runs the given `Providers` (the real Prometheus and web providers, with no wait
between retries) instead of one scripted provider. `template(...)` builds an
AnalysisTemplate document; `replace_template` swaps it into the example before the
objects are created. `stable_hashes` follows every stableRS the Rollout's status showed.
"""

from __future__ import annotations

import json
from typing import Any

import tenacity

from analysis.providers import Providers
from analysis.providers.registry import default_providers
from rollouts.controller.manager import Manager
from rollouts.platform.kinds import KINDS
from tests.controller.dsl import Follower, Scenario
from tests.faults.faulty import FaultyCluster

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def real_providers(*, prometheus_address: str | None = None) -> Providers:
    """The controller's providers as shipped, with no wait between retries (tests stay fast)."""
    return default_providers(prometheus_address=prometheus_address, retry_wait=tenacity.wait_none())


class FaultScenario(Scenario):
    def __init__(self, example: str = "istio-canary", *, providers: Providers | None = None, **options: Any) -> None:
        self.providers = providers
        options.setdefault("manager_options", {})
        options["manager_options"] = {"retry_wait": tenacity.wait_none(), **options["manager_options"]}
        super().__init__(example, **options)
        self.stable_hashes = Follower(self.cluster, self.clock, kind="Rollout", name=self.rollout_name,
                                      namespace=self.namespace,
                                      extract=lambda ro: (ro.get("status") or {}).get("stableRS"))

    def new_manager(self, cluster: Any = None) -> Manager:
        providers = self.providers if self.providers is not None else Providers({"prometheus": self.provider})
        return Manager(cluster if cluster is not None else self.cluster, providers, clock=self.clock,
                       **self.manager_options)

    def observe(self) -> None:
        super().observe()
        if hasattr(self, "stable_hashes"):
            self.stable_hashes.poll()

    @property
    def rollout_doc(self) -> dict[str, Any]:
        """The example's Rollout document (edit it before `given_*`)."""
        return next(doc for doc in self.docs if doc["kind"] == "Rollout")

    def replace_template(self, template: dict[str, Any]) -> FaultScenario:
        self.docs = [doc for doc in self.docs if doc["kind"] != "AnalysisTemplate"] + [template]
        return self

    def set_pause(self, duration: str) -> FaultScenario:
        steps = self.rollout_doc["spec"]["strategy"]["canary"]["steps"]
        steps[next(i for i, step in enumerate(steps) if "pause" in step)] = {"pause": {"duration": duration}}
        return self

    def metric_results(self) -> list[dict[str, Any]]:
        [run] = self.analysis_runs()
        return list((run.get("status") or {}).get("metricResults") or [])

    def measurements(self, metric: str) -> list[dict[str, Any]]:
        return [m for r in self.metric_results() if r["name"] == metric for m in r.get("measurements") or []]


def through_faults() -> tuple[FaultScenario, FaultyCluster]:
    """istio-canary whose controller reaches the cluster through a FaultyCluster (arrange the
    faults on it), its success-rate metric scripted healthy (0.99)."""
    scenario = FaultScenario()
    faulty = FaultyCluster(scenario.cluster)
    scenario.manager = scenario.new_manager(cluster=faulty)
    scenario.provider.script("success-rate", [0.99])
    return scenario, faulty


def template(name: str, metrics: list[dict[str, Any]], *, args: list[dict[str, Any]] | None = None,
             namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"args": args if args is not None else [{"name": "service-name"}], "metrics": metrics}}


def everything(cluster: Any, *, skip: tuple[str, ...] = ()) -> str:
    """Every object of every kind the cluster holds, as one JSON text (to search for a value)."""
    return json.dumps([obj for kind in KINDS if kind not in skip for obj in cluster.list(kind)])

