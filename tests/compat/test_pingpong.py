"""Ping-pong Services with Istio, run for real (Argo: test/e2e/istio_test.go
TestIstioPingPongUpdate over test/e2e/istio/istio-host-split-ping-pong.yaml;
pkg/apis/rollouts/validation/validation.go PingPongWithRouterOnlyMessage: "Ping-pong feature
works with the ALB, Istio, and plugin-based traffic routers only").

The ping and pong Services take the stable and canary roles in turn
(`status.canary.stablePingPong`), the VirtualService destinations are their hosts, and the
roles swap at each promotion, so no selector moves when a canary is promoted.
"""

from __future__ import annotations

import copy
from typing import Any

from rollouts.cli import lint
from rollouts.spec import manifests
from tests.conformance.harness import Run


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80, "targetPort": "http", "name": "http"}],
                     "selector": {"app": "istio-host-split"}}}


VS = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
      "metadata": {"name": "istio-host-split-vsvc"},
      "spec": {"hosts": ["istio-host-split"],
               "http": [{"name": "primary", "route": [{"destination": {"host": "ping"}, "weight": 100},
                                                      {"destination": {"host": "pong"}, "weight": 0}]}]}}
ROLLOUT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "istio-host-split"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "istio-host-split"}},
                    "template": {"metadata": {"labels": {"app": "istio-host-split"}},
                                 "spec": {"containers": [{"name": "app", "image": "nginx:1.19-alpine"}]}},
                    "strategy": {"canary": {
                        "pingPong": {"pingService": "ping", "pongService": "pong"},
                        "trafficRouting": {"istio": {"virtualService": {"name": "istio-host-split-vsvc",
                                                                        "routes": ["primary"]}}},
                        "steps": [{"setWeight": 25}, {"pause": {}}]}}}}
DOCS = [service("pong"), service("ping"), VS, ROLLOUT]


def lint_errors(*docs: dict[str, Any]) -> list[str]:
    loaded = manifests.Loaded(files=["mem.yaml"], documents=[manifests.Document("mem.yaml", i, d)
                                                             for i, d in enumerate(docs, 1)])
    return [f"{f.problem.path}: {f.problem.message}" for f in lint.lint(loaded) if f.problem.is_error]


def weights(run: Run) -> tuple[int, int]:
    return run.weight_of("istio-host-split-vsvc", "ping"), run.weight_of("istio-host-split-vsvc", "pong")


def test_istio_ping_pong_update() -> None:
    """TestIstioPingPongUpdate: 100/0 healthy, 75/25 at the step, 0/100 promoted; then the
    other way round: 25/75, 100/0."""
    run = Run(copy.deepcopy(DOCS)).given().until_phase("Healthy")
    assert weights(run) == (100, 0)
    assert run.status["canary"]["stablePingPong"] == "ping"
    first = run.status["stableRS"]
    assert run.selector("ping") == first  # the stable side selects the stable pods

    run.new_image("nginx:1.20-alpine").run_until(lambda: run.status.get("currentStepIndex") == 1
                                                 and run.phase == "Paused")
    second = run.status["currentPodHash"]
    assert weights(run) == (75, 25)
    assert (run.selector("ping"), run.selector("pong")) == (first, second)
    assert run.status["canary"]["weights"]["canary"]["serviceName"] == "pong"

    run.promote().until_phase("Healthy")
    assert weights(run) == (0, 100)
    assert run.status["canary"]["stablePingPong"] == "pong"
    assert run.status["stableRS"] == second
    assert run.selector_history["pong"][-1] == second and run.selector("pong") == second  # no move at promotion

    run.new_image("nginx:1.21-alpine").run_until(lambda: run.status.get("currentStepIndex") == 1
                                                 and run.phase == "Paused")
    third = run.status["currentPodHash"]
    assert weights(run) == (25, 75)
    assert (run.selector("ping"), run.selector("pong")) == (third, second)

    run.promote().until_phase("Healthy")
    assert weights(run) == (100, 0)
    assert run.status["canary"]["stablePingPong"] == "ping"
    # every weight the VirtualService held was a step's: 100/0, 75/25, 0/100, 25/75
    seen = {tuple(w for *_, w in snap) for snap in run.vs_history["istio-host-split-vsvc"]}
    assert seen <= {(100, 0), (75, 25), (0, 100), (25, 75)}


def test_istio_ping_pong_abort_leaves_the_selectors() -> None:
    """Argo rollout/service.go reconcilePingAndPongService: the canary side keeps the new
    pods on abort (only its weight goes to 0), so no selector moves back."""
    run = Run(copy.deepcopy(DOCS)).given().until_phase("Healthy")
    first = run.status["stableRS"]
    run.new_image("nginx:1.20-alpine").until_phase("Paused")
    second = run.status["currentPodHash"]
    run.abort().until_phase("Degraded")
    assert weights(run) == (100, 0)
    assert (run.selector("ping"), run.selector("pong")) == (first, second)
    assert run.status["stableRS"] == first and run.status["canary"]["stablePingPong"] == "ping"


def test_istio_ping_pong_manifest_lints_clean() -> None:
    """Argo's e2e manifest: no canaryService/stableService needed with pingPong."""
    assert lint_errors(*copy.deepcopy(DOCS)) == []


def test_ping_pong_validation_rules() -> None:
    """validation.go: both Services set and different (InvalidPingPongProvidedMessage,
    DuplicatedPingPongServicesMessage); ALB, Istio or plugins (PingPongWithRouterOnlyMessage)."""
    same = copy.deepcopy(ROLLOUT)
    same["spec"]["strategy"]["canary"]["pingPong"] = {"pingService": "ping", "pongService": "ping"}
    assert "spec.strategy.canary.pingPong.pongService: pingService and pongService are both 'ping'" in \
        lint_errors(same, service("ping"), VS)
    nginx = copy.deepcopy(ROLLOUT)
    nginx["spec"]["strategy"]["canary"]["trafficRouting"] = {"nginx": {"stableIngress": "web"}}
    assert "spec.strategy.canary.pingPong: Ping-pong feature works with the ALB, Istio, and plugin-based " \
           "traffic routers only" in lint_errors(nginx)
    missing = copy.deepcopy(ROLLOUT)
    assert lint_errors(missing, service("ping"), VS) == [
        "spec.strategy.canary.pingPong.pongService: Service 'pong' not found"]


def test_ping_pong_beside_canary_and_stable_services() -> None:
    """service_helper.go GetStableAndCanaryServices(isPingpongPreferred=false): with Istio and
    canaryService/stableService set too, the VirtualService routes to those two, and the
    ping-pong pair still takes turns (test/e2e/functional/albmesh-pingpong-stablecanary-rollout.yaml
    without its ALB half)."""
    docs = copy.deepcopy(DOCS)
    docs[2]["spec"]["http"][0]["route"] = [{"destination": {"host": "stable"}, "weight": 100},
                                           {"destination": {"host": "canary"}, "weight": 0}]
    docs[3]["spec"]["strategy"]["canary"].update(canaryService="canary", stableService="stable")
    run = Run([service("stable"), service("canary"), *docs]).given().until_phase("Healthy")
    first = run.status["stableRS"]
    run.new_image("nginx:1.20-alpine").until_phase("Paused")
    second = run.status["currentPodHash"]
    vsvc = "istio-host-split-vsvc"
    assert (run.weight_of(vsvc, "stable"), run.weight_of(vsvc, "canary")) == (75, 25)
    assert (run.selector("stable"), run.selector("canary")) == (first, second)
    assert (run.selector("ping"), run.selector("pong")) == (first, second)
    run.promote().until_phase("Healthy")
    assert run.status["canary"]["stablePingPong"] == "pong"
    assert (run.selector("stable"), run.selector("pong")) == (second, second)
