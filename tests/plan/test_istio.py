"""Istio, pure: route selection, weight rewriting, validation, DestinationRule subsets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.plan.routing import desired_weight
from rollouts.platform.actions import PatchDestinationRule, PatchVirtualService
from rollouts.platform.labels import MANAGED_BY
from rollouts.spec.model import CanaryStep, IstioVirtualService, Rollout
from rollouts.traffic import istio
from rollouts.traffic.istio import IstioRouter, Targets
from tests.plan.builders import destination_rule, rollout, route, virtual_service, weights

HOSTS = Targets(canary_host="web-canary", stable_host="web-stable")
SUBSETS = Targets(canary_subset="canary", stable_subset="stable")


def ref(**fields: Any) -> IstioVirtualService:
    return IstioVirtualService.load({"name": "web-vs", **fields})


def rewrite(vs: dict[str, Any], weight: int, targets: Targets = HOSTS, **fields: Any) -> dict[str, Any]:
    return istio.with_weights(vs, ref(**fields), targets, desired_weight=weight)


# ---------------------------------------------------------------- rewriting


def test_host_mode_sets_canary_and_stable_weights() -> None:
    vs = virtual_service()
    out = rewrite(vs, 30)
    assert weights(out) == {"web-stable": 70, "web-canary": 30}
    assert weights(vs) == {"web-stable": 100, "web-canary": 0}  # the input is not modified


def test_hosts_match_by_short_name() -> None:
    vs = virtual_service(http=[route(None, ("web-stable.shop.svc.cluster.local", 100), ("web-canary.shop", 0))])
    assert weights(rewrite(vs, 40)) == {"web-stable.shop.svc.cluster.local": 60, "web-canary.shop": 40}


def test_subset_mode_matches_destinations_by_subset() -> None:
    vs = virtual_service(http=[route("main", ("web", 100, "stable"), ("web", 0, "canary"))])
    assert weights(rewrite(vs, 25, SUBSETS)) == {"web/stable": 75, "web/canary": 25}


def test_only_the_weight_key_of_selected_routes_changes() -> None:
    primary = route("primary", ("web-stable", 100), ("web-canary", 0))
    primary["route"][0]["destination"]["port"] = {"number": 8080}
    primary["route"][0]["headers"] = {"request": {"set": {"x-version": "stable"}}}
    primary["retries"] = {"attempts": 3}
    primary["match"] = [{"uri": {"prefix": "/"}}]
    other = route("admin", ("web-stable", 100), ("web-canary", 0))
    vs = virtual_service(http=[other, primary])
    out = rewrite(vs, 10, routes=["primary"])
    expected = copy.deepcopy(vs)
    expected["spec"]["http"][1]["route"][0]["weight"] = 90
    expected["spec"]["http"][1]["route"][1]["weight"] = 10
    assert out == expected


def test_several_named_routes_are_all_managed() -> None:
    vs = virtual_service(http=[route("a", ("web-stable", 100), ("web-canary", 0)),
                               route("b", ("web-canary", 0), ("web-stable", 100)),
                               route("c", ("web-stable", 100), ("web-canary", 0))])
    out = rewrite(vs, 50, routes=["a", "b"])
    assert [weights(out, index=i) for i in range(3)] == [
        {"web-stable": 50, "web-canary": 50}, {"web-canary": 50, "web-stable": 50},
        {"web-stable": 100, "web-canary": 0}]


def test_foreign_destinations_with_weight_are_removed_and_zero_ones_kept() -> None:
    vs = virtual_service(http=[route(None, ("web-stable", 80), ("web-canary", 0), ("legacy", 20), ("mirror", 0))])
    assert weights(rewrite(vs, 10)) == {"web-stable": 90, "web-canary": 10, "mirror": 0}


def test_additional_subsets_keep_their_weight_and_reduce_the_stable_share() -> None:
    targets = Targets(canary_subset="canary", stable_subset="stable", additional_subsets=("preview",))
    vs = virtual_service(http=[route(None, ("web", 90, "stable"), ("web", 0, "canary"), ("web", 10, "preview"))])
    assert weights(rewrite(vs, 30, targets)) == {"web/stable": 60, "web/canary": 30, "web/preview": 10}
    assert weights(rewrite(vs, 100, targets))["web/stable"] == 0  # clamped


def test_tls_and_tcp_routes_are_selected_by_port_and_sni_hosts() -> None:
    tls = [
        {"match": [{"port": 443, "sniHosts": ["a.example.com"]}],
         **route(None, ("web-stable", 100), ("web-canary", 0))},
        {"match": [{"port": 443, "sniHosts": ["b.example.com"]}],
         **route(None, ("web-stable", 100), ("web-canary", 0))},
    ]  # fmt: skip
    tcp = [{"match": [{"port": 5432}], **route(None, ("web-stable", 100), ("web-canary", 0))},
           {"match": [{"port": 6379}], **route(None, ("web-stable", 100), ("web-canary", 0))}]
    vs = virtual_service(http=[route("primary", ("web-stable", 100), ("web-canary", 0))], tls=tls, tcp=tcp)
    out = rewrite(vs, 20, routes=["primary"], tlsRoutes=[{"port": 443, "sniHosts": ["b.example.com"]}],
                  tcpRoutes=[{"port": 6379}])
    assert weights(out, "tls", 0)["web-canary"] == 0 and weights(out, "tls", 1)["web-canary"] == 20
    assert weights(out, "tcp", 0)["web-canary"] == 0 and weights(out, "tcp", 1)["web-canary"] == 20


def test_without_tls_routes_the_first_tls_route_is_managed_only_if_it_routes_the_canary() -> None:
    ours = {"match": [{"port": 443, "sniHosts": ["a"]}], **route(None, ("web-stable", 100), ("web-canary", 0))}
    unrelated = {"match": [{"port": 9000}], **route(None, ("db", 100))}
    vs = virtual_service(http=[route("p", ("web-stable", 100), ("web-canary", 0))], tls=[ours], tcp=[unrelated])
    out = rewrite(vs, 40)
    assert weights(out, "tls")["web-canary"] == 40 and weights(out, "tcp") == {"db": 100}
    assert istio.validate_virtual_service(vs, ref(), HOSTS) == []  # Argo would reject the tcp route (#3454)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("vs", "fields", "targets", "message"), [
    (virtual_service(), {"routes": ["missing"]}, HOSTS,
     "HTTP route 'missing' is not in VirtualService 'web-vs'"),  # Argo: "HTTP Route 'missing' is not found in ..."
    (virtual_service(http=[route("p", ("web-stable", 100))]), {}, HOSTS,
     "route 'p' in VirtualService 'web-vs' has no destination for canaryService 'web-canary'"),
    (virtual_service(http=[route("p", ("web-canary", 100))]), {}, HOSTS,
     "route 'p' in VirtualService 'web-vs' has no destination for stableService 'web-stable'"),
    (virtual_service(http=[route("p", ("web", 100, "stable"))]), {}, SUBSETS,
     "route 'p' in VirtualService 'web-vs' has no destination for canary subset 'canary'"),
    (virtual_service(http=[route("a", ("web-stable", 100), ("web-canary", 0)),
                           route("b", ("web-stable", 100), ("web-canary", 0))]), {}, HOSTS,
     "VirtualService 'web-vs' has 2 HTTP routes, so routes must name the ones to shift"),
    (virtual_service(tls=[]), {}, HOSTS, "VirtualService 'web-vs' has no route to manage"),
    (virtual_service(tls=[{"match": [{"port": 443, "sniHosts": ["a"]}], **route(None, ("web-stable", 100),
                                                                               ("web-canary", 0))}]),
     {"tlsRoutes": [{"port": 8443, "sniHosts": ["a"]}]}, HOSTS, "No matching TLS routes found"),
])  # fmt: skip
def test_validation_problems(vs: dict[str, Any], fields: dict[str, Any], targets: Targets, message: str) -> None:
    problems = istio.validate_virtual_service(vs, ref(**fields), targets)
    assert any(message in problem.message for problem in problems), problems
    assert all(problem.path.startswith("spec.strategy.canary.trafficRouting.istio.virtualService")
               for problem in problems)


def test_a_valid_virtual_service_has_no_problems() -> None:
    assert istio.validate_virtual_service(virtual_service(), ref(routes=["primary"]), HOSTS) == []
    assert istio.validate_virtual_service(virtual_service(), ref(), HOSTS) == []


@pytest.mark.parametrize(("reference", "expected"), [
    ("vs", ("vs", "shop")), ("vs.other", ("vs", "other")), ("vs.other.svc.cluster.local", ("vs", "other")),
])  # fmt: skip
def test_virtual_service_references(reference: str, expected: tuple[str, str]) -> None:
    assert istio.vs_reference(reference, "shop") == expected


# ---------------------------------------------------------------- DestinationRule


def test_subset_hashes_are_set_and_other_subsets_dropped() -> None:
    dr = destination_rule(canary="old", stable="old", extra=["legacy", "preview"])
    dr["spec"]["subsets"][0]["trafficPolicy"] = {"loadBalancer": {"simple": "ROUND_ROBIN"}}
    out = istio.with_subset_hashes(dr, canary_subset="canary", stable_subset="stable", canary_hash="c2",
                                   stable_hash="s1", additional_subsets=["preview"], managed_by="web")
    assert [(s["name"], s["labels"].get("rollouts-pod-template-hash")) for s in out["spec"]["subsets"]] == [
        ("canary", "c2"), ("stable", "s1"), ("preview", None)]
    assert out["spec"]["subsets"][0]["trafficPolicy"] == {"loadBalancer": {"simple": "ROUND_ROBIN"}}
    assert out["metadata"]["annotations"] == {MANAGED_BY: "web"}
    assert istio.subset_hash(out, "canary") == "c2" and istio.subset_hash(dr, "canary") == "old"


# ---------------------------------------------------------------- the router


def test_the_router_patches_only_when_a_weight_changes_and_handles_several_virtual_services() -> None:
    doc = rollout()
    doc["spec"]["strategy"]["canary"]["trafficRouting"]["istio"] = {
        "virtualServices": [{"name": "web-vs", "routes": ["primary"]}, {"name": "edge-vs.gateways"}]}
    edge = virtual_service("edge-vs", http=[route(None, ("web-stable.shop.svc.cluster.local", 70),
                                                  ("web-canary.shop.svc.cluster.local", 30))])
    edge["metadata"]["namespace"] = "gateways"
    router = IstioRouter(Rollout.load(doc), [virtual_service(), edge], None)
    assert router.problems() == []
    patches = router.set_weight(30)
    assert len(patches) == 1 and isinstance(patches[0], PatchVirtualService)
    patch = patches[0]
    assert (patch.name, patch.namespace, patch.resource_version) == ("web-vs", "shop", "1")
    assert patch.merge_patch() == {"spec": {"http": [route("primary", ("web-stable", 70), ("web-canary", 30))]},
                                   "metadata": {"resourceVersion": "1"}}
    assert [p.name for p in router.set_weight(0)] == ["edge-vs"]


def test_the_router_reports_a_missing_virtual_service_and_destination_rule() -> None:
    doc = rollout(subsets=True)
    problems = IstioRouter(Rollout.load(doc), [], None).problems()
    assert [p.message for p in problems] == ["VirtualService 'web-vs' not found in namespace 'shop'",
                                             "DestinationRule 'web-dr' not found"]


def test_the_router_updates_subset_hashes_only_on_change() -> None:
    router = IstioRouter(Rollout.load(rollout(subsets=True)), [], destination_rule(canary="c", stable="s"))
    (patch,) = router.update_hash(canary_hash="c2", stable_hash="s")
    assert isinstance(patch, PatchDestinationRule)
    assert [s["labels"]["rollouts-pod-template-hash"] for s in patch.subsets] == ["c2", "s"]
    managed = destination_rule(canary="c", stable="s")
    managed["metadata"]["annotations"] = {MANAGED_BY: "web"}
    assert IstioRouter(Rollout.load(rollout(subsets=True)), [], managed).update_hash(canary_hash="c",
                                                                                      stable_hash="s") == []


# ---------------------------------------------------------------- desired weight (argo-rollouts.md §2.3)

SW = [CanaryStep(set_weight=20), CanaryStep.load({"pause": {}}), CanaryStep(set_weight=60)]


@pytest.mark.parametrize(("situation", "kwargs", "expected"), [
    ("aborted", {"aborted": True}, 0),
    ("fully promoted", {"promoted": True}, 0),
    ("no canary pod available", {"canary_available": 0}, 0),
    ("canary Service not moved yet", {"canary_selected": False}, 0),
    ("promote full keeps the recorded weight", {"promote_full": True, "recorded": 20}, 20),
    ("at desired on a pause after setWeight 20", {"index": 1}, 20),
    ("at desired on setWeight 60", {"index": 2}, 60),
    ("not at desired on setWeight 60", {"index": 2, "at_desired": False}, 20),
    ("not at desired on the first step", {"index": 0, "at_desired": False}, 0),
    ("past the last step", {"index": 3}, 100),
    ("past the last step, canary still scaling", {"index": 3, "at_desired": False}, 60),
])  # fmt: skip
def test_desired_weight(situation: str, kwargs: dict[str, Any], expected: int) -> None:
    args = {"steps": SW, "index": 1, "aborted": False, "promoted": False, "promote_full": False,
            "canary_selected": True, "canary_available": 2, "at_desired": True, "recorded": 0} | kwargs
    assert desired_weight(**args) == expected, situation
