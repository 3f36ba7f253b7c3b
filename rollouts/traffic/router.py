"""The traffic router port: what the plan asks of a mesh, and which router a Rollout uses.

Rules (Flagger's small router interface, Argo's TrafficRoutingReconciler):
- A router is pure: built over the objects observed this pass, it answers with actions
  (platform.actions) and never reads the cluster.
- `problems()` lists what makes the routing invalid (InvalidSpec, and no traffic
  change); `selected_hashes()` says which pod hashes its own selectors pick (None when
  it routes to Services); `update_hash()` and `set_weight()` return the patches.
- `router_for` picks the router from `spec.strategy.canary.trafficRouting`: Istio, or
  None (a basic canary: replica counts approximate the weight). Any other router is
  refused before a router is asked for (spec.problems.router_not_run).
- This layer knows meshes, not the plan: the pass that uses a router is plan.routing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rollouts.platform.actions import Action
from rollouts.spec.model import Rollout
from rollouts.spec.problems import Problem
from rollouts.traffic.istio import IstioRouter


class TrafficRouter(Protocol):
    def problems(self) -> list[Problem]:
        """What makes the routing invalid (InvalidSpec, and no traffic change)."""
        ...

    def selected_hashes(self) -> tuple[str | None, str | None] | None:
        """(canary, stable) pod hashes the router's own selectors pick; None: it routes to Services."""
        ...

    def update_hash(self, *, canary_hash: str | None, stable_hash: str | None) -> list[Action]: ...

    def set_weight(self, weight: int) -> list[Action]: ...


def router_for(rollout: Rollout, *, virtual_services: Sequence[Mapping[str, Any]],
               destination_rule: Mapping[str, Any] | None) -> TrafficRouter | None:
    canary = rollout.canary
    routing = canary.traffic_routing if canary else None
    if routing is None or routing.istio is None:
        return None
    return IstioRouter(rollout, virtual_services, destination_rule)
