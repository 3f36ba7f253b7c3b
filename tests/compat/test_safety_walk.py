"""The safety rule, everywhere (DESIGN §1, §6): every Argo step kind (types.go CanaryStep
fields), every strategy (canary, blueGreen, none) and every traffic router Argo has (types.go
RolloutTrafficRouting: alb, ambassador, apisix, appMesh, istio, nginx, smi, traefik, plugins,
and none), run on the InMemoryCluster controller. Each case either runs (the update reaches
Healthy, promoted, with no Warning) or is refused: an InvalidSpec condition whose message
names the field path and a fix, phase Degraded, no ReplicaSet made, no Service selector and
no VirtualService weight changed, exactly one Warning event however long it waits; and no
reconcile ever raises. blueGreen and the experiment step are being built: "runs or refused".
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.spec.model import StepKind, TrafficRouting
from rollouts.spec.problems import ARGO_ONLY_FIELDS
from tests.conformance.harness import Run, assert_refused, istio_host_split, rollout, service

TEMPLATE = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "ok"},
            "spec": {"metrics": [{"name": "ok", "count": 1, "successCondition": "result >= 0.9",
                                  "provider": {"prometheus": {"address": "http://prom:9090", "query": "up"}}}]}}
# One Argo-valid step of each CanaryStep field (types.go), first in the step list.
STEPS: dict[str, dict[str, Any]] = {
    "setWeight": {"setWeight": 20},
    "pause": {"pause": {"duration": "30s"}},
    "experiment": {"experiment": {"duration": "1m", "templates": [{"name": "canary", "specRef": "canary"}]}},
    "analysis": {"analysis": {"templates": [{"templateName": "ok"}]}},
    "setCanaryScale": {"setCanaryScale": {"replicas": 2}},
    "setHeaderRoute": {"setHeaderRoute": {"name": "header-route",
                                          "match": [{"headerName": "x-canary", "headerValue": {"exact": "yes"}}]}},
    "setMirrorRoute": {"setMirrorRoute": {"name": "mirror-route", "percentage": 50,
                                          "match": [{"method": {"exact": "GET"}}]}},
    "plugin": {"plugin": {"name": "argoproj-labs/step-plugin", "config": {"message": "hello"}}},
}
# One Argo-valid configuration of each router (types.go RolloutTrafficRouting).
ROUTERS: dict[str, dict[str, Any] | None] = {
    "alb": {"ingress": "web", "servicePort": 80},
    "ambassador": {"mappings": ["web"]},
    "apisix": {"route": {"name": "web", "rules": ["primary"]}},
    "appMesh": {"virtualService": {"name": "web", "routes": ["primary"]},
                "virtualNodeGroup": {"canaryVirtualNodeRef": {"name": "web-canary"},
                                     "stableVirtualNodeRef": {"name": "web-stable"}}},
    "istio": None,  # the VirtualService of istio_host_split
    "nginx": {"stableIngress": "web"},
    "smi": {"rootService": "web", "trafficSplitName": "web"},
    "traefik": {"weightedTraefikServiceName": "web"},
    "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web", "namespace": "default"}},
    "none": None,
}
RUN_HERE = {"setWeight", "pause", "analysis", "setCanaryScale"}
BEING_BUILT = {"experiment"}  # another engineer: runs or refused, either for now
CASES = ([("canary", router, kind) for router in ROUTERS for kind in STEPS]
         + [("blueGreen", "none", None), ("none", "none", None)])


def test_the_walk_covers_every_kind_and_router_the_models_know() -> None:
    assert set(STEPS) == {kind.value for kind in StepKind}
    assert set(ROUTERS) == set(ARGO_ONLY_FIELDS[TrafficRouting]) | {"istio", "none"}


def docs_for(strategy: str, router: str, kind: str | None) -> list[dict[str, Any]]:
    if strategy == "blueGreen":
        return [service("web-active", "web"), service("web-preview", "web"),
                rollout("web", {"blueGreen": {"activeService": "web-active", "previewService": "web-preview"}})]
    if strategy == "none":
        return [service("web-stable", "web"), rollout("web", {})]
    assert kind is not None
    steps = [copy.deepcopy(STEPS[kind]), {"setWeight": 50}, {"pause": {"duration": "1m"}}]
    docs = [copy.deepcopy(TEMPLATE), *istio_host_split("web", {"steps": steps})]
    canary = docs[-1]["spec"]["strategy"]["canary"]
    if kind in ("setHeaderRoute", "setMirrorRoute"):  # Argo: the route must be a managed route
        canary["trafficRouting"]["managedRoutes"] = [{"name": STEPS[kind][kind]["name"]}]
    if router == "none":
        del canary["trafficRouting"]
    elif router != "istio":
        managed = canary["trafficRouting"].get("managedRoutes")
        canary["trafficRouting"] = {router: copy.deepcopy(ROUTERS[router]),
                                    **({"managedRoutes": managed} if managed else {})}
    return docs


def expected(strategy: str, router: str, kind: str | None) -> tuple[str, str | None]:
    """('runs' | 'refused' | 'either', the field path a refusal must name)."""
    if strategy == "blueGreen":
        return "either", "spec.strategy.blueGreen"
    if strategy == "none":
        return "refused", "spec.strategy"
    if router not in ("istio", "none"):
        return "refused", f"spec.strategy.canary.trafficRouting.{router}"
    if kind in BEING_BUILT:
        return "either", f"spec.strategy.canary.steps[0].{kind}"
    if kind not in RUN_HERE or (kind == "setCanaryScale" and router == "none"):
        return "refused", f"spec.strategy.canary.steps[0].{kind}"
    return "runs", None


def assert_runs(run: Run) -> None:
    """The first revision is Healthy; an update runs its steps and is promoted."""
    run.until_phase("Healthy", "Degraded")
    assert run.phase == "Healthy" and run.condition("InvalidSpec") is None, run.status
    first = run.status["stableRS"]
    run.new_image().until_phase("Healthy", "Degraded", max_seconds=3600)
    assert run.phase == "Healthy" and run.status["stableRS"] not in (None, first), run.status
    assert run.events("Warning") == []
    for history in run.vs_history.values():  # weights only ever take step values
        assert {w for snapshot in history for *_, w in snapshot} <= {0, 20, 50, 80, 100}, history


@pytest.mark.parametrize(("strategy", "router", "kind"), CASES,
                         ids=[f"{s}-{r}-{k or 'nosteps'}" for s, r, k in CASES])
def test_safety_rule(strategy: str, router: str, kind: str | None) -> None:
    outcome, path = expected(strategy, router, kind)
    run = Run(docs_for(strategy, router, kind), script={"ok": [0.99]}).given()
    run.run_until(lambda: run.phase in ("Healthy", "Degraded") or run.condition("InvalidSpec") is not None,
                  max_seconds=3600)
    refused = run.condition("InvalidSpec") is not None
    if outcome == "refused" or (outcome == "either" and refused):
        assert path is not None
        assert_refused(run, path)
    elif outcome == "runs":
        assert_runs(run)
    else:  # being built: it runs (no InvalidSpec, not Degraded)
        assert run.phase != "Degraded", run.status
    assert run.reconcile_errors() == 0
