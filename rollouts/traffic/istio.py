"""Istio traffic routing, pure: VirtualService weights and DestinationRule subset labels.

Rules (argo-rollouts.md §2):
- A VirtualService reference is `name` or `name.namespace` (anything after a second dot,
  like `.svc.cluster.local`, is ignored); the default namespace is the Rollout's.
- HTTP routes: the named `routes` (each must exist: "HTTP route 'x' is not in
  VirtualService 'vs'", at `routes[i]`, with a did-you-mean); with no names (and no tls or
  tcp routes named), the VirtualService must have exactly one http route, and that one
  is used. A VirtualService with no `http` section has no HTTP route to check or weigh
  (Argo's reconcileVirtualService skips them), so names in `routes` are not looked for;
  its tls/tcp routes are selected as below, and a VirtualService where nothing at all is
  selected is still an error (never a Rollout whose traffic cannot move). TLS routes: each `tlsRoutes[]{port, sniHosts}`
  selects the routes whose matches carry exactly that one port and exactly that set of
  SNI hosts; TCP routes: `tcpRoutes[]{port}` by port alone. Deliberate difference from
  Argo (issue #3454): with no tlsRoutes/tcpRoutes, the first tls/tcp route is managed only
  if it holds both the canary and the stable destination, and never fails validation.
- Every selected route must hold a canary and a stable destination: by host in host mode,
  by subset in DestinationRule mode ("route 'r' in VirtualService 'vs' has no destination
  for canaryService 'c'"); with ping-pong Services the hosts are the ping and pong ones,
  in the roles `status.canary.stablePingPong` gives them (traffic.pingpong). Hosts
  compare by short name (everything before the first `.`).
  Problems mean InvalidSpec and no traffic change. `validate_virtual_service` is the one
  checker: lint (traffic.checks) and the router both call it.
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
Size: over 300 lines because Istio's route selection, its one checker and the rewrite
  share the route-matching helpers; split apart they would each need them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollouts.platform.labels import HASH_LABEL, MANAGED_BY
from rollouts.spec.model import CanaryStrategy, IstioVirtualService, Rollout
from rollouts.spec.problems import Problem, did_you_mean
from rollouts.traffic.pingpong import routed_services

if TYPE_CHECKING:  # the router's actions are imported where it makes them: lint needs the checker only
    from rollouts.platform.actions import Action

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

    def missing_destinations(self, route: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(what, name, key) of the canary and stable destinations `route` lacks."""
        roles = {self.role(d.get("destination") or {}) for d in route.get("route") or [] if isinstance(d, Mapping)}
        wanted = ((("canary subset", self.canary_subset, "canary"), ("stable subset", self.stable_subset, "stable"))
                  if self.canary_subset else
                  (("canaryService", self.canary_host, "canary"), ("stableService", self.stable_host, "stable")))
        key = "subset" if self.canary_subset else "host"
        return [(what, str(name), key) for what, name, role in wanted if name and role not in roles]


def targets_of(canary: CanaryStrategy | None, stable_ping_pong: str | None = None) -> Targets:
    """Which destinations are the canary's and the stable's, for a canary strategy (the ping
    and pong hosts take turns by `status.canary.stablePingPong`: traffic.pingpong)."""
    istio = canary.traffic_routing.istio if canary and canary.traffic_routing else None
    rule = istio.destination_rule if istio else None
    stable_host, canary_host = routed_services(canary, stable_ping_pong)
    return Targets(
        canary_host=canary_host,
        stable_host=stable_host,
        canary_subset=rule.canary_subset_name if rule else None,
        stable_subset=rule.stable_subset_name if rule else None,
        additional_subsets=tuple(rule.additional_subset_names or []) if rule else (),
    )


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
    http = [r for r in spec.get("http") or [] if isinstance(r, Mapping)]
    names = [str(r["name"]) for r in http if isinstance(r.get("name"), str) and r.get("name")]
    if ref.routes and spec.get("http") is not None:  # Argo checks HTTP routes only when there is an http section
        for index, route_name in enumerate(ref.routes):
            found = [i for i, r in enumerate(http) if r.get("name") == route_name]
            if not found:
                guess = did_you_mean(route_name, names)
                fix = f"did you mean {guess}?" if guess else f"routes there: {', '.join(names) or '(none named)'}"
                problems.append(Problem(f"{path}.routes[{index}]",
                                        f"HTTP route {route_name!r} is not in VirtualService {name!r}", fix))
            chosen["http"] += found
    elif len(http) == 1:
        chosen["http"] = [0]
    elif len(http) > 1 and not (ref.tls_routes or ref.tcp_routes):
        problems.append(Problem(f"{path}.routes", f"VirtualService {name!r} has {len(http)} HTTP routes, so "
                                "routes must name the ones to shift", "list them under routes"))
    for section, wanted, match in (("tls", ref.tls_routes, _tls_match), ("tcp", ref.tcp_routes, _tcp_match)):
        routes = spec.get(section) or []
        for want in wanted or []:
            found = [i for i, r in enumerate(routes) if match(r, want)]
            if not found:
                problems.append(Problem(f"{path}.{section}Routes", f"No matching {section.upper()} routes found in "
                                        f"the defined Virtual Service ({want}).", "match the port/sniHosts of a route"))
            chosen[section] += found
        if not wanted and routes and not targets.missing_destinations(routes[0]):
            chosen[section] = [0]
    if not any(chosen.values()) and not problems:
        problems.append(Problem(path, f"VirtualService {name!r} has no route to manage", "add an http route"))
    return chosen, problems


def validate_virtual_service(vs: Mapping[str, Any], ref: IstioVirtualService, targets: Targets, *,
                             path: str = f"{ISTIO}.virtualService") -> list[Problem]:
    """The rules of one referenced VirtualService (the module rules); lint and the controller both call it."""
    chosen, problems = select_routes(vs, ref, targets, path)
    name = (vs.get("metadata") or {}).get("name")
    spec = vs.get("spec") or {}
    named = list(ref.routes or [])
    for section, indices in chosen.items():
        for index in indices:
            route = spec[section][index]
            label = route.get("name") or f"{section}[{index}]"
            where = (f"{path}.routes[{named.index(route['name'])}]" if section == "http" and route.get("name") in named
                     else f"{path}.name")
            problems += [Problem(where, f"route {label!r} in VirtualService {name!r} has no destination for "
                                 f"{what} {value!r}", f"add a destination with {key}: {value} to that route")
                         for what, value, key in targets.missing_destinations(route)]
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
        status = self.rollout.status.canary if self.rollout.status else None
        return targets_of(self.rollout.canary, status.stable_ping_pong if status else None)

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
        from rollouts.platform.actions import PatchVirtualService

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
        from rollouts.platform.actions import PatchDestinationRule

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
