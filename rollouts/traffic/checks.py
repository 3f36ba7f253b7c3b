"""Semantic checks of a canary's traffic routing and the Istio objects it names.

Rules (argo-rollouts.md §2.1, Argo's validation_references.go):
- trafficRouting must name a router; Istio is run, the routers Argo has besides it
  are kept and reported as warnings (`rollouts.spec.problems`). maxTrafficWeight is for
  nginx and plugins only (Istio weights are out of 100); with them it is a warning, as
  this controller reads weights as percentages. pingPong needs both Services, two
  different ones, and the ALB, Istio or a plugin router (Argo: "Ping-pong feature works
  with the ALB, Istio, and plugin-based traffic routers only"); with Istio it is run
  (traffic.pingpong).
- Istio: exactly one of virtualService / virtualServices. Without a destinationRule
  (host-level routing) both canaryService and stableService are required, unless
  pingPong names the two hosts (Argo's requireCanaryStableServices).
- With the VirtualServices given (by name; `name.namespace` refs match on the name):
  each must exist (did-you-mean), and then its routes obey traffic.istio's rules
  (`validate_virtual_service`, the checker the router runs too).
- With DestinationRules given: the named one exists and has both subsets. With
  Services given: canaryService and stableService exist.
- A `None` collection means "not known": those checks are skipped. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from rollouts.spec.model import CanaryStrategy, IstioVirtualService
from rollouts.spec.problems import ARGO_ONLY_FIELDS, Problem, did_you_mean, join, warning
from rollouts.traffic.istio import targets_of, validate_virtual_service

ISTIO = "spec.strategy.canary.trafficRouting.istio"
PING_PONG = "spec.strategy.canary.pingPong"
Objects = Mapping[str, Mapping[str, Any]]


def _get(node: Any, key: str, kind: type) -> Any:
    """node[key] when node is a mapping and the value has `kind`, else an empty `kind`."""
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, kind) else kind()


def short_name(ref: str) -> str:
    """`name` of a `name` or `name.namespace[.svc.cluster.local]` reference."""
    return ref.split(".", 1)[0]


def virtual_service_refs(canary: CanaryStrategy) -> list[tuple[str, IstioVirtualService]]:
    """(path, ref) for every VirtualService the canary names."""
    istio = canary.traffic_routing.istio if canary.traffic_routing else None
    if istio is None:
        return []
    single = [(f"{ISTIO}.virtualService", istio.virtual_service)] if istio.virtual_service else []
    return single + [(f"{ISTIO}.virtualServices[{i}]", vs) for i, vs in enumerate(istio.virtual_services or [])]


def _not_found(kind: str, name: str, pool: Collection[str], path: str) -> Problem:
    guess = did_you_mean(name, pool)
    fix = f"did you mean {guess}?" if guess else f"create it, or use one of: {', '.join(sorted(pool)) or '(none)'}"
    return Problem(path, f"{kind} {name!r} not found", fix)


def traffic_problems(
    canary: CanaryStrategy,
    *,
    virtual_services: Objects | None = None,
    destination_rules: Objects | None = None,
    services: Collection[str] | None = None,
) -> list[Problem]:
    routing = canary.traffic_routing
    if routing is None:
        return []
    found: list[Problem] = []
    others = set(routing.model_extra or {}) & ARGO_ONLY_FIELDS[type(routing)]
    if routing.istio is None and not others:
        found.append(Problem("spec.strategy.canary.trafficRouting", "no traffic router is set",
                             "add istio: {virtualService: {name: NAME, routes: [ROUTE]}}, or remove trafficRouting"))
    found.extend(ping_pong_problems(canary, others))
    if routing.max_traffic_weight is not None and not others & {"nginx", "plugins"}:
        found.append(Problem("spec.strategy.canary.trafficRouting.maxTrafficWeight",
                             "maxTrafficWeight only works with the nginx router and plugins",
                             "remove it: Istio weights are out of 100"))
    elif routing.max_traffic_weight is not None:
        found.append(warning("spec.strategy.canary.trafficRouting.maxTrafficWeight",
                             "maxTrafficWeight is not supported by this controller",
                             "weights are percentages here, so a setWeight above 100 would scale the canary past "
                             "spec.replicas; let Argo Rollouts run this Rollout"))
    istio = routing.istio
    if istio is None:
        return found
    if istio.virtual_service is not None and istio.virtual_services is not None:
        found.append(Problem(ISTIO, "virtualService and virtualServices are both set", "use only one of them"))
    elif istio.virtual_service is None and not istio.virtual_services:
        found.append(Problem(ISTIO, "neither virtualService nor virtualServices is set",
                             "add virtualService: {name: NAME, routes: [ROUTE]}"))
    rule = istio.destination_rule
    if rule is None:
        for alias, value in (("canaryService", canary.canary_service), ("stableService", canary.stable_service)):
            if not value and canary.ping_pong is None:
                found.append(Problem(f"spec.strategy.canary.{alias}", "is required with Istio host-level routing",
                                     "set canaryService and stableService, "
                                     "or use trafficRouting.istio.destinationRule"))
    elif rule.canary_subset_name == rule.stable_subset_name:
        found.append(Problem(f"{ISTIO}.destinationRule.stableSubsetName", "canarySubsetName and stableSubsetName are "
                             f"both {rule.stable_subset_name!r}", "use two different subsets"))
    elif destination_rules is not None:
        found.extend(_destination_rule_problems(rule.name, [rule.canary_subset_name, rule.stable_subset_name],
                                                destination_rules))
    if services is not None:
        found.extend(service_problems(canary, services))
    if virtual_services is not None:
        for path, ref in virtual_service_refs(canary):
            found.extend(_virtual_service_problems(canary, path, ref, virtual_services))
    return found


def ping_pong_problems(canary: CanaryStrategy, others: Collection[str]) -> list[Problem]:
    """Argo's pingPong rules: both Services set and different, and a router that takes turns
    between them (ALB, Istio or plugins; only Istio is run here, the others are refused)."""
    pair = canary.ping_pong
    if pair is None:
        return []
    found: list[Problem] = []
    routing = canary.traffic_routing
    if routing is not None and routing.istio is None and not set(others) & {"alb", "plugins"}:
        found.append(Problem(PING_PONG, "Ping-pong feature works with the ALB, Istio, and plugin-based traffic "
                             "routers only", "use trafficRouting.istio, or canaryService and stableService"))
    for alias, value in (("pingService", pair.ping_service), ("pongService", pair.pong_service)):
        if not value:
            found.append(Problem(f"{PING_PONG}.{alias}", "ping service and pong service must both be set to use "
                                 "ping-pong", f"name a Service in {alias}"))
    if pair.ping_service and pair.ping_service == pair.pong_service:
        found.append(Problem(f"{PING_PONG}.pongService", f"pingService and pongService are both "
                             f"{pair.pong_service!r}", "use two different Services"))
    return found


def service_problems(canary: CanaryStrategy, services: Collection[str]) -> list[Problem]:
    """canaryService, stableService and the ping-pong Services must name Services among
    `services` (the one rule lint, validation and the plan's own check share)."""
    pair = canary.ping_pong
    named = [("canaryService", canary.canary_service), ("stableService", canary.stable_service)]
    if pair is not None:
        named += [("pingPong.pingService", pair.ping_service), ("pingPong.pongService", pair.pong_service)]
    return [_not_found("Service", value, services, f"spec.strategy.canary.{alias}")
            for alias, value in named if value and value not in services]


def _destination_rule_problems(ref: str, subsets: list[str], rules: Objects) -> list[Problem]:
    path = f"{ISTIO}.destinationRule"
    rule = rules.get(short_name(ref))
    if rule is None:
        return [_not_found("DestinationRule", ref, rules, join(path, "name"))]
    have = [_get(s, "name", str) for s in _get(_get(rule, "spec", dict), "subsets", list)]
    return [
        Problem(join(path, alias), f"subset {subset!r} is not in DestinationRule {short_name(ref)!r}",
                f"add a subset named {subset} to it" + (f"; it has: {', '.join(have)}" if have else ""))
        for alias, subset in zip(("canarySubsetName", "stableSubsetName"), subsets, strict=True)
        if subset not in have
    ]


def _virtual_service_problems(canary: CanaryStrategy, path: str, ref: IstioVirtualService,
                              pool: Objects) -> list[Problem]:  # fmt: skip
    name = short_name(ref.name)
    service = pool.get(name)
    if service is None:
        return [_not_found("VirtualService", ref.name, pool, join(path, "name"))]
    return validate_virtual_service(service, ref, targets_of(canary), path=path)


