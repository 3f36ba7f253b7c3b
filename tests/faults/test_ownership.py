"""One Rollout cannot take another's Services or routes (the safety issue, defect 5).

A second Rollout that names the first one's stableService, canaryService and
VirtualService route used to be accepted as Healthy: it rewrote both Services' selectors
(the first app's Services selected none of its pods) and, on the next release, the two
fought over the VirtualService. Now the Services carry the owner in Argo's
`managed-by-rollouts` annotation and the second Rollout is InvalidSpec naming the owner.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.controller.dsl import Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def intruder(scenario: Scenario) -> dict[str, Any]:
    """A Rollout of another app that names the example's Services and VirtualService route."""
    doc = copy.deepcopy(next(d for d in scenario.docs if d["kind"] == "Rollout"))
    doc["metadata"] = {"name": "intruder", "namespace": "default"}
    labels = {"app": "intruder"}
    doc["spec"]["selector"] = {"matchLabels": labels}
    doc["spec"]["template"]["metadata"]["labels"] = labels
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = "intruder:1"
    return doc


def selector_hash(scenario: Scenario, service: str) -> str:
    return str(scenario.cluster.get("Service", service, "default")["spec"]["selector"]["rollouts-pod-template-hash"])


def test_a_second_rollout_naming_anothers_services_is_invalid_spec_and_changes_nothing() -> None:
    scenario = Scenario("istio-canary")
    try:
        scenario.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
        scenario.given_healthy()
        stable = scenario.status["stableRS"]
        services = {name: selector_hash(scenario, name) for name in ("stable-svc", "canary-svc")}
        # When another Rollout names the same Services and route
        scenario.cluster.create(intruder(scenario))
        scenario.run_for(120)
        # Then it is InvalidSpec, naming the owner, and the first app's Services are untouched
        other = scenario.cluster.get("Rollout", "intruder", "default")["status"]
        assert other["phase"] == "Degraded"
        assert ("spec.strategy.canary.canaryService: Service 'canary-svc' is managed by Rollout 'rollout-example'"
                in other["message"])
        assert "spec.strategy.canary.stableService: Service 'stable-svc' is managed by Rollout" in other["message"]
        assert {name: selector_hash(scenario, name) for name in services} == services == {
            "stable-svc": stable, "canary-svc": stable}
        assert scenario.phase == "Healthy" and scenario.vs_weights == (100, 0)
        # and the first Rollout's next release goes through alone: weights only take its step values
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Paused")
        scenario.run_for(600).run_until(lambda: scenario.phase == "Healthy")
        assert scenario.weights.canary_weights == [0, 50, 100, 0]
        assert scenario.cluster.get("Rollout", "intruder", "default")["status"]["phase"] == "Degraded"
    finally:
        scenario.close()


def test_a_claim_by_a_rollout_that_no_longer_exists_is_taken_over() -> None:
    scenario = Scenario("istio-canary")
    try:
        scenario.provider.script("success-rate", [0.99])  # type: ignore[attr-defined]
        scenario.given_healthy()
        scenario.cluster.delete("Rollout", "rollout-example", "default")
        scenario.cluster.create(intruder(scenario))
        scenario.run_for(120)
        other = scenario.cluster.get("Rollout", "intruder", "default")["status"]
        assert other["phase"] == "Healthy", other.get("message")
        service = scenario.cluster.get("Service", "stable-svc", "default")
        assert service["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"] == "intruder"
    finally:
        scenario.close()
