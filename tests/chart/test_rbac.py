"""The chart's RBAC is what the controller uses: every request it makes is granted, every grant is used.

What the controller uses is not read from the code by eye: the controller's own request counter
(`controller_clientset_k8s_request_total{kind,verb}`, rollouts.controller.clientset) is read after
stories that reach every request path: a canary promoted and one aborted with leader election on,
revisionHistoryLimit and the AnalysisRun history limits, a secretKeyRef arg, a restart, a
409 on a VirtualService and a DestinationRule patch (which reads them again), experiment steps
passed and failed (a template with its own Service), and a blueGreen release promoted.
Each port verb is the API verb it sends (rollouts.kube.cluster): a watch lists first, a
replace is an update, a status patch is a patch of `<plural>/status`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rollouts.controller.metrics import ControllerMetrics
from rollouts.platform.cluster import Conflict
from rollouts.platform.kinds import KINDS
from tests.chart.conftest import NAMESPACE, Render, one
from tests.controller.dsl import Scenario
from tests.faults.faulty import FaultyCluster

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

API_VERBS = {"get": ["get"], "list": ["list"], "watch": ["list", "watch"], "create": ["create"],
             "patch": ["patch"], "replace": ["update"], "delete": ["delete"], "patch_status": ["patch"]}

# Kinds the Cluster port knows that the controller never requests (the CLI or the in-memory
# cluster use them).
UNUSED_KINDS = {
    "Deployment": "only `rollouts set image` on a workloadRef Rollout changes one (the CLI, with the user's access)",
    "ConfigMap": "no controller code reads one",
}

HEALTHY, FAILING = [0.99], [0.42]
IMAGES = ["argoproj/rollouts-demo:yellow", "argoproj/rollouts-demo:green", "argoproj/rollouts-demo:red"]


def requests_made(metrics: ControllerMetrics) -> set[tuple[str, str]]:
    """(kind, port verb) of every API request the controller counted."""
    return {(s.labels["kind"], s.labels["verb"])
            for family in metrics.registry.collect() if family.name == "controller_clientset_k8s_request"
            for s in family.samples if s.name.endswith("_total") and s.value > 0}


def as_grants(requests: set[tuple[str, str]]) -> set[Grant]:
    grants = set()
    for kind, verb in requests:
        info = KINDS[kind]
        resource = f"{info.plural}/status" if verb == "patch_status" else info.plural
        grants.update((info.group, resource, api_verb) for api_verb in API_VERBS[verb])
    return grants


def granted(rules: list[dict[str, Any]]) -> set[Grant]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def docs_of(scenario: Scenario, kind: str) -> dict[str, Any]:
    return next(doc for doc in scenario.docs if doc["kind"] == kind)


def istio_story() -> set[tuple[str, str]]:
    """Leader election, releases past every history limit, an abort, a secretKeyRef arg, a restart."""
    scenario = Scenario("istio-canary", manager_options={"leader_election": True})
    rollout = docs_of(scenario, "Rollout")
    rollout["spec"]["revisionHistoryLimit"] = 1
    rollout["spec"]["analysis"] = {"successfulRunHistoryLimit": 1, "unsuccessfulRunHistoryLimit": 0}
    docs_of(scenario, "AnalysisTemplate")["spec"]["args"].append(
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "metrics-creds", "key": "token"}}})
    scenario.docs.append({"apiVersion": "v1", "kind": "Secret", "data": {"token": "c2VjcmV0"},
                          "metadata": {"name": "metrics-creds", "namespace": scenario.namespace}})
    try:
        scenario.provider.script("success-rate", HEALTHY)
        scenario.given_healthy()
        for image in IMAGES:
            scenario.when_image(image).run_until(lambda: scenario.phase == "Healthy")
        scenario.provider.script("success-rate", FAILING)
        scenario.when_image("argoproj/rollouts-demo:purple").run_until(lambda: scenario.phase == "Degraded")
        scenario.provider.script("success-rate", HEALTHY)
        scenario.when_image(IMAGES[0]).run_until(lambda: scenario.phase == "Healthy")
        scenario.cluster.patch("Rollout", scenario.rollout_name, scenario.namespace,
                               {"spec": {"restartAt": scenario.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}})
        scenario.run_until(lambda: scenario.status.get("restartedAt") is not None)
        return requests_made(scenario.manager.metrics)
    finally:
        scenario.close()


def conflict_story() -> set[tuple[str, str]]:
    """A 409 on the VirtualService and the DestinationRule patch: the reconciler reads them again."""
    cluster = FaultyCluster(Scenario("multi-step", vs="multi-step-vsvc").cluster)
    scenario = Scenario("multi-step", vs="multi-step-vsvc", cluster=cluster, stable="stable", canary="canary")
    try:
        scenario.provider.script("error-rate", [0.0])
        scenario.given_healthy()
        cluster.fail("patch", "VirtualService", None, [Conflict("the object has been modified")])
        cluster.fail("patch", "DestinationRule", None, [Conflict("the object has been modified")])
        scenario.when_image(IMAGES[0]).run_until(lambda: scenario.vs_weights[1] > 0)
        assert {f[:2] for f in cluster.faults} == {("patch", "DestinationRule"), ("patch", "VirtualService")}
        return requests_made(scenario.manager.metrics)
    finally:
        scenario.close()


def experiment_story() -> set[tuple[str, str]]:
    """Experiment steps (a template with its own Service) passed and failed, past the history limits."""
    scenario = Scenario("istio-canary")
    rollout = docs_of(scenario, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    del canary["analysis"]
    rollout["spec"]["analysis"] = {"successfulRunHistoryLimit": 1, "unsuccessfulRunHistoryLimit": 0}
    canary["steps"] = [{"setWeight": 20}, {"experiment": {
        "duration": "1m",
        "templates": [{"name": "canary", "specRef": "canary", "service": {}}],
        "analyses": [{"name": "gate", "templateName": "success-rate",
                      "args": [{"name": "service-name", "value": "canary"}]}]}}]
    try:
        scenario.provider.script("success-rate", HEALTHY)
        scenario.given_healthy()
        for image in IMAGES[:2]:
            scenario.when_image(image).run_until(lambda: scenario.phase == "Healthy")
        scenario.provider.script("success-rate", FAILING)
        scenario.when_image(IMAGES[2]).run_until(lambda: scenario.phase == "Degraded")
        scenario.run_for(60)  # the failed Experiment's pods and Service go after its scale-down delay
        return requests_made(scenario.manager.metrics)
    finally:
        scenario.close()


def blue_green_story() -> set[tuple[str, str]]:
    """A blueGreen release switched by promote: the active and preview Services' selectors."""
    scenario = Scenario("blue-green", vs="none")
    rollout = docs_of(scenario, "Rollout")
    rollout["spec"]["strategy"]["blueGreen"].pop("prePromotionAnalysis", None)
    try:
        scenario.given_healthy()
        scenario.when_image(IMAGES[0]).run_until(lambda: scenario.phase == "Paused")
        scenario.when_promote().run_until(lambda: scenario.phase == "Healthy")
        return requests_made(scenario.manager.metrics)
    finally:
        scenario.close()


@pytest.fixture(scope="module")
def used() -> Iterator[set[Grant]]:
    yield as_grants(istio_story() | conflict_story() | experiment_story() | blue_green_story())


def cluster_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "ClusterRole")


def test_no_rule_uses_a_wildcard(render: Render) -> None:
    for values in ({}, {"controller": {"namespaceScope": "shop"}}):
        for doc in render(values):
            for rule in doc.get("rules") or []:
                assert "*" not in [*rule["apiGroups"], *rule["resources"], *rule["verbs"]], (doc["kind"], rule)


def test_every_request_the_controller_makes_is_granted_cluster_wide(render: Render, used: set[Grant]) -> None:
    grants = granted(cluster_role(render())["rules"])
    assert used - grants == set()


def test_every_grant_is_used_by_the_controller(render: Render, used: set[Grant]) -> None:
    grants = granted(cluster_role(render())["rules"])
    assert grants - used == set()


def test_every_kind_the_port_knows_is_granted_or_named_unused(render: Render) -> None:
    resources = {(group, resource.split("/")[0]) for group, resource, _ in granted(cluster_role(render())["rules"])}
    for kind, info in KINDS.items():
        assert ((info.group, info.plural) in resources) != (kind in UNUSED_KINDS), kind


def test_the_binding_names_the_chart_service_account(render: Render) -> None:
    docs = render()
    account = one(docs, "ServiceAccount")["metadata"]["name"]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": cluster_role(docs)["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]


def test_a_namespace_scope_grants_a_role_there_and_only_cluster_templates_cluster_wide(
        render: Render, used: set[Grant]) -> None:
    docs = render({"controller": {"namespaceScope": "shop"}})
    role, binding = one(docs, "Role"), one(docs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "shop"
    assert binding["roleRef"]["kind"] == "Role" and binding["subjects"][0]["namespace"] == NAMESPACE
    cluster_wide = granted(cluster_role(docs)["rules"])
    # ClusterAnalysisTemplates are cluster-scoped (no Role can grant them) and the controller
    # watches them in either mode; nothing else is granted beyond the namespace.
    assert {resource for _, resource, _ in cluster_wide} == {"clusteranalysistemplates"}
    assert granted(role["rules"]) | cluster_wide == used
    assert not {resource for _, resource, _ in granted(role["rules"])} & {"clusteranalysistemplates"}


def test_rbac_can_be_left_to_the_user(render: Render) -> None:
    kinds = {d["kind"] for d in render({"rbac": {"create": False}})}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
