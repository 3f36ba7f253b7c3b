"""The traffic router port, and the canary weight a Rollout should have right now.

Rules (argo-rollouts.md §2.3), first match wins, for the canary's share in percent:
- aborted -> 0; fully promoted (stableRS == currentPodHash) -> 0 (the stable side now
  selects the new pods);
- the new ReplicaSet is missing, has no available pod, or the canary Service/subset does
  not select it yet -> 0;
- promoteFull -> the weight already recorded in status (kept until promotion completes);
- otherwise the weight in force at the current step (100 once past the last step), but
  only once the canary ReplicaSet has all the pods that step needs available; until then
  the weight of the previous setWeight step. So a weight is never raised onto pods that
  are not there yet.

A router is pure: it is built over the objects observed this pass and answers with
actions (patches), which the shell applies. It has three methods, in the order plan()
calls them: `problems()` (InvalidSpec, no traffic change), `update_hash()` (point the
canary/stable subsets at ReplicaSet hashes) and `set_weight()`. `router_for` picks the
router from `spec.strategy.canary.trafficRouting`; no traffic routing -> None (basic
canary: replica counts approximate the weight). Routers other than Istio are not run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rollouts.actions import Action
from rollouts.model import CanaryStep, Rollout
from rollouts.problems import Problem
from rollouts.steps import previous_set_weight, set_weight_at
from rollouts.traffic.istio import IstioRouter


class TrafficRouter(Protocol):
    def problems(self) -> list[Problem]: ...

    def update_hash(self, *, canary_hash: str | None, stable_hash: str | None) -> list[Action]: ...

    def set_weight(self, weight: int) -> list[Action]: ...


def router_for(rollout: Rollout, *, virtual_services: Sequence[Mapping[str, Any]],
               destination_rule: Mapping[str, Any] | None) -> TrafficRouter | None:
    canary = rollout.canary
    routing = canary.traffic_routing if canary else None
    if routing is None or routing.istio is None:
        return None
    return IstioRouter(rollout, virtual_services, destination_rule)


def is_routed(rollout: Rollout) -> bool:
    canary = rollout.canary
    return bool(canary and canary.traffic_routing and canary.traffic_routing.istio)


def desired_weight(*, steps: Sequence[CanaryStep], index: int, aborted: bool, promoted: bool, promote_full: bool,
                   canary_selected: bool, canary_available: int, at_desired: bool, recorded: int) -> int:
    """The canary weight for this pass (see the module rules).

    >>> desired_weight(steps=[CanaryStep(set_weight=20), CanaryStep(set_weight=50)], index=1, aborted=False,
    ...                promoted=False, promote_full=False, canary_selected=True, canary_available=2,
    ...                at_desired=False, recorded=20)
    20
    """
    if aborted or promoted or not canary_selected or canary_available == 0:
        return 0
    if promote_full:
        return recorded
    if at_desired:
        return set_weight_at(steps, index)
    return previous_set_weight(steps, index)
