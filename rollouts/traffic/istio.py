"""Istio traffic routing, pure: VirtualService weights and DestinationRule subset labels.

Rules (argo-rollouts.md §2):
- A VirtualService reference is `name` or `name.namespace` (anything after a second dot,
  like `.svc.cluster.local`, is ignored); the default namespace is the Rollout's.
- HTTP routes: the named `routes` (each must exist: "HTTP Route 'x' is not found in the
  defined Virtual Service."); with no names, the VirtualService must have exactly one
  http route, and that one is used. TLS routes: each `tlsRoutes[]{port, sniHosts}`
  selects the routes whose matches carry exactly that one port and exactly that set of
  SNI hosts; TCP routes: `tcpRoutes[]{port}` by port alone. Deliberate difference from
  Argo (issue #3454): with no tlsRoutes/tcpRoutes, the first tls/tcp route is managed only
  if it holds both the canary and the stable destination, and never fails validation.
- Every selected route must hold a canary and a stable destination: by host in host mode
  (`Canary Service 'x' not found in route`), by subset in DestinationRule mode
  (`Canary DestinationRule subset 'x' not found in route`). Hosts compare by short name
  (everything before the first `.`). Problems mean InvalidSpec and no traffic change.
- Rewriting touches only the `weight` key of destinations in selected routes: canary gets
  the desired weight, stable gets 100 - desired - (weights of `additionalSubsetNames`
  destinations, left as they are), clamped at 0; any other destination with a non-zero
  weight is removed (so weights sum to 100; zero-weight ones stay). Everything else in the
  VirtualService (matches, retries, other routes) is left byte-for-byte alone.
- DestinationRule: the canary and stable subsets get `labels[rollouts-pod-template-hash]`,
  subsets other than those and `additionalSubsetNames` are dropped, and the annotation
  `argo-rollouts.argoproj.io/managed-by-rollouts` names the Rollout.
- `IstioRouter` turns a desired weight / desired hashes into patch actions, and emits a
  patch only when something changes (GitOps tools watch these objects).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollouts.platform.actions import Action, PatchDestinationRule, PatchVirtualService
from rollouts.platform.labels import HASH_LABEL, MANAGED_BY
from rollouts.spec.model import IstioVirtualService, Rollout
from rollouts.spec.problems import Problem

ISTIO = "spec.strategy.canary.trafficRouting.istio"


def short_host(host: str | None) -> str:
    return (host or "").split(".", 1)[0]


def vs_reference(ref: str, default_namespace: str) -> tuple[str, str]:
    name, _, rest = ref.partition(".")
    return name, (rest.split(".", 1)[0] or default_namespace)


@dataclass(frozen=True)
class Targets:
    """Which destinations are the canary and the stable (hosts as short names)."""

    canary_host: str | None = None
    stable_host: str | None = None
    canary_subset: str | None = None
    stable_subset: str | None = None
    additional_subsets: tuple[str, ...] = ()

    def role(self, destination: Mapping[str, Any]) -> str | None:
        host, subset = short_host(destination.get("host")), destination.get("subset")
        if (self.canary_host and host == self.canary_host) or (self.canary_subset and subset == self.canary_subset):
            return "canary"
        if (self.stable_host and host == self.stable_host) or (self.stable_subset and subset == self.stable_subset):
            return "stable"
        if subset is not None and subset in self.additional_subsets:
            return "additional"
        return None

    def missing(self, route: Mapping[str, Any]) -> list[str]:
        roles = {self.role(d.get("destination") or {}) for d in route.get("route") or []}
        kind = "DestinationRule subset" if self.canary_subset else "Service"
        canary = self.canary_subset or self.canary_host
        stable = self.stable_subset or self.stable_host
        return [f"{side} {kind} '{name}' not found in route"
                for side, name, role in (("Canary", canary, "canary"), ("Stable", stable, "stable"))
                if role not in roles]


# ---------------------------------------------------------------- route selection


def _tls_match(route: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    matches = route.get("match") or []
    ports = {m.get("port") for m in matches}
    hosts = {h for m in matches for h in m.get("sniHosts") or []}
    port_ok = "port" not in want or ports == {want.get("port")}
    return port_ok and hosts == set(want.get("sniHosts") or [])


def _tcp_match(route: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    return {m.get("port") for m in route.get("match") or []} == {want.get("port")}


def select_routes(vs: Mapping[str, Any], ref: IstioVirtualService, targets: Targets,
                  path: str) -> tuple[dict[str, list[int]], list[Problem]]:
    """Indices of the managed routes per section (`http`, `tls`, `tcp`), and problems."""
    spec = vs.get("spec") or {}
    name = (vs.get("metadata") or {}).get("name")
    chosen: dict[str, list[int]] = {"http": [], "tls": [], "tcp": []}
    problems: list[Problem] = []
    http = spec.get("http") or []
    if ref.routes:
        for route_name in ref.routes:
            found = [i for i, r in enumerate(http) if r.get("name") == route_name]
            if not found:
                problems.append(Problem(f"{path}.routes",
                                        f"HTTP Route '{route_name}' is not found in the defined Virtual Service.",
                                        f"add it to VirtualService {name} or fix the name"))
            chosen["http"] += found
    elif len(http) == 1:
        chosen["http"] = [0]
    elif len(http) > 1:
        problems.append(Problem(f"{path}.routes", f"VirtualService {name} has {len(http)} http routes, so "
                                "spec.http[] must have exactly one route when omitting routes",
                                "list the routes to manage by name"))
    for section, wanted, match in (("tls", ref.tls_routes, _tls_match), ("tcp", ref.tcp_routes, _tcp_match)):
        routes = spec.get(section) or []
        for want in wanted or []:
            found = [i for i, r in enumerate(routes) if match(r, want)]
            if not found:
                problems.append(Problem(f"{path}.{section}Routes", f"No matching {section.upper()} routes found in "
                                        f"the defined Virtual Service ({want}).", "match the port/sniHosts of a route"))
            chosen[section] += found
        if not wanted and routes and not targets.missing(routes[0]):
            chosen[section] = [0]
    if not any(chosen.values()) and not problems:
        problems.append(Problem(path, f"VirtualService {name} has no route to manage", "add an http route"))
    return chosen, problems


def validate_virtual_service(vs: Mapping[str, Any], ref: IstioVirtualService, targets: Targets, *,
                             path: str = f"{ISTIO}.virtualService") -> list[Problem]:
    chosen, problems = select_routes(vs, ref, targets, path)
    name = (vs.get("metadata") or {}).get("name")
    spec = vs.get("spec") or {}
    for section, indices in chosen.items():
        for index in indices:
            route = spec[section][index]
            label = route.get("name") or f"{section}[{index}]"
            problems += [Problem(path, f"{text} {label!r} of VirtualService {name}",
                                 "route both the canary and the stable destination in it")
                         for text in targets.missing(route)]
    return problems


# ---------------------------------------------------------------- rewriting


def _reweigh(destinations: Sequence[Mapping[str, Any]], targets: Targets, weight: int) -> list[dict[str, Any]]:
    roles = [targets.role(d.get("destination") or {}) for d in destinations]
    additional = sum(int(d.get("weight") or 0) for d, r in zip(destinations, roles, strict=True) if r == "additional")
    stable = max(0, 100 - weight - additional)
    out: list[dict[str, Any]] = []
    for destination, role in zip(destinations, roles, strict=True):
        if role == "canary":
            out.append({**destination, "weight": weight})
        elif role == "stable":
            out.append({**destination, "weight": stable})
        elif role == "additional" or not destination.get("weight"):
            out.append(dict(destination))
    return out


def with_weights(vs: Mapping[str, Any], ref: IstioVirtualService, targets: Targets, *, desired_weight: int,
                 path: str = f"{ISTIO}.virtualService") -> dict[str, Any]:
    """A copy of `vs` with the weights of its managed routes set for `desired_weight`."""
    out = copy.deepcopy(dict(vs))
    chosen, _ = select_routes(vs, ref, targets, path)
    spec = out.get("spec") or {}
    for section, indices in chosen.items():
        for index in indices:
            route = spec[section][index]
            route["route"] = _reweigh(route.get("route") or [], targets, desired_weight)
    return out


def subset_hash(dr: Mapping[str, Any] | None, subset: str) -> str | None:
    for entry in (dr or {}).get("spec", {}).get("subsets") or []:
        if entry.get("name") == subset:
            return (entry.get("labels") or {}).get(HASH_LABEL)
    return None


def with_subset_hashes(dr: Mapping[str, Any], *, canary_subset: str, stable_subset: str, canary_hash: str | None,
                       stable_hash: str | None, additional_subsets: Sequence[str] = (),
                       managed_by: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(dr))
    wanted = {canary_subset: canary_hash, stable_subset: stable_hash}
    kept = []
    for entry in out.get("spec", {}).get("subsets") or []:
        name = entry.get("name")
        if name in wanted:
            if wanted[name]:
                entry["labels"] = {**(entry.get("labels") or {}), HASH_LABEL: wanted[name]}
            kept.append(entry)
        elif name in additional_subsets:
            kept.append(entry)
    out.setdefault("spec", {})["subsets"] = kept
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), MANAGED_BY: managed_by}
    return out


# ---------------------------------------------------------------- the router


@dataclass(frozen=True)
class IstioRouter:
    """The Istio side of one Rollout, over the objects observed this pass."""

    rollout: Rollout
    virtual_services: Sequence[Mapping[str, Any]]
    destination_rule: Mapping[str, Any] | None

    @property
    def _namespace(self) -> str:
        return str(self.rollout.metadata.namespace or "default")

    def targets(self) -> Targets:
        canary = self.rollout.canary
        istio = canary.traffic_routing.istio if canary and canary.traffic_routing else None
        rule = istio.destination_rule if istio else None
        return Targets(
            canary_host=canary.canary_service if canary else None,
            stable_host=canary.stable_service if canary else None,
            canary_subset=rule.canary_subset_name if rule else None,
            stable_subset=rule.stable_subset_name if rule else None,
            additional_subsets=tuple(rule.additional_subset_names or []) if rule else (),
        )

    def references(self) -> list[tuple[str, IstioVirtualService, Mapping[str, Any] | None]]:
        """(field path, reference, observed VirtualService or None) per referenced VirtualService."""
        canary = self.rollout.canary
        istio = canary.traffic_routing.istio if canary and canary.traffic_routing else None
        if istio is None:
            return []
        refs = [(f"{ISTIO}.virtualService", istio.virtual_service)] if istio.virtual_service else []
        refs += [(f"{ISTIO}.virtualServices[{i}]", r) for i, r in enumerate(istio.virtual_services or [])]
        found = []
        for path, ref in refs:
            name, namespace = vs_reference(ref.name, self._namespace)
            doc = next((vs for vs in self.virtual_services if (vs.get("metadata") or {}).get("name") == name
                        and (vs.get("metadata") or {}).get("namespace", namespace) == namespace), None)
            found.append((path, ref, doc))
        return found

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        for path, ref, doc in self.references():
            if doc is None:
                name, namespace = vs_reference(ref.name, self._namespace)
                problems.append(Problem(f"{path}.name", f"VirtualService '{name}' not found in namespace "
                                        f"'{namespace}'", "create it, or fix the name"))
            else:
                problems += validate_virtual_service(doc, ref, self.targets(), path=path)
        rule = self._rule()
        if rule is not None and self.destination_rule is None:
            problems.append(Problem(f"{ISTIO}.destinationRule.name", f"DestinationRule '{rule}' not found",
                                    "create it, or fix the name"))
        return problems

    def _rule(self) -> str | None:
        canary = self.rollout.canary
        istio = canary.traffic_routing.istio if canary and canary.traffic_routing else None
        return istio.destination_rule.name if istio and istio.destination_rule else None

    def set_weight(self, weight: int) -> list[Action]:
        patches: list[Action] = []
        for path, ref, doc in self.references():
            if doc is None:
                continue
            new = with_weights(doc, ref, self.targets(), desired_weight=weight, path=path)
            if new.get("spec") != doc.get("spec"):
                meta = doc.get("metadata") or {}
                spec = new.get("spec") or {}
                patches.append(PatchVirtualService(
                    name=str(meta.get("name")), namespace=str(meta.get("namespace") or self._namespace),
                    http=spec.get("http"), tls=spec.get("tls"), tcp=spec.get("tcp"),
                    resource_version=meta.get("resourceVersion")))
        return patches

    def selected_hashes(self) -> tuple[str | None, str | None] | None:
        """(canary, stable) hashes of the DestinationRule subsets; None without subsets."""
        targets = self.targets()
        if self.destination_rule is None or not targets.canary_subset or not targets.stable_subset:
            return None
        return (subset_hash(self.destination_rule, targets.canary_subset),
                subset_hash(self.destination_rule, targets.stable_subset))

    def update_hash(self, *, canary_hash: str | None, stable_hash: str | None) -> list[Action]:
        targets, doc = self.targets(), self.destination_rule
        if doc is None or not targets.canary_subset or not targets.stable_subset:
            return []
        new = with_subset_hashes(doc, canary_subset=targets.canary_subset, stable_subset=targets.stable_subset,
                                 canary_hash=canary_hash, stable_hash=stable_hash,
                                 additional_subsets=targets.additional_subsets,
                                 managed_by=str(self.rollout.metadata.name))
        if new == doc:
            return []
        meta = doc.get("metadata") or {}
        return [PatchDestinationRule(
            name=str(meta.get("name")), namespace=str(meta.get("namespace") or self._namespace),
            subsets=new["spec"]["subsets"], annotations={MANAGED_BY: str(self.rollout.metadata.name)},
            resource_version=meta.get("resourceVersion"))]
