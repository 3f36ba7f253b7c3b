"""Which Rollout manages a Service or a DestinationRule: one owner each, never two that fight.

Rules (Argo's `argo-rollouts.argoproj.io/managed-by-rollouts` annotation):
- A Rollout claims its canary and stable (blueGreen: active and preview) Services and its
  DestinationRule by writing its name into that annotation with the first selector or
  subset it sets (SetServiceSelector, PatchDestinationRule). A VirtualService route is
  reached through those: in host mode its destinations are the two Services, in subset
  mode the DestinationRule's subsets, so a route shared by two Rollouts always shares a
  claimed object.
- An object claimed by another Rollout that still exists (`Observed.live_claimants`, the
  shell's look-up of the names found in the annotations) is InvalidSpec for this Rollout,
  at the field that names it, with the owner in the message: the second Rollout never
  rewrites the first one's selectors or weights. A claim by a Rollout that no longer
  exists is stale and is taken over.
- Pure: observed objects in, problems out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rollouts.platform import wire
from rollouts.platform.labels import MANAGED_BY
from rollouts.spec.model import Rollout
from rollouts.spec.problems import Problem
from rollouts.traffic.istio import ISTIO


def claimant(obj: Mapping[str, Any] | None) -> str | None:
    """The Rollout named in an object's managed-by annotation."""
    return wire.text(obj, "metadata", "annotations", MANAGED_BY) if obj is not None else None


def claimants(services: Sequence[Mapping[str, Any]], destination_rule: Mapping[str, Any] | None) -> set[str]:
    """Every Rollout name found in the managed-by annotations (the shell checks which exist)."""
    return {name for obj in [*services, destination_rule] if (name := claimant(obj))}


def claim_problems(rollout: Rollout, *, services: Sequence[Mapping[str, Any]],
                   destination_rule: Mapping[str, Any] | None, live_claimants: Collection[str]) -> list[Problem]:
    """InvalidSpec for each object another existing Rollout manages (see the rules)."""
    me = rollout.metadata.name
    canary, blue_green = rollout.canary, rollout.blue_green
    found: list[Problem] = []
    named: list[tuple[str, str | None]] = []
    if canary is not None:
        pair = canary.ping_pong
        named += [("canary.canaryService", canary.canary_service), ("canary.stableService", canary.stable_service),
                  *((("canary.pingPong.pingService", pair.ping_service),
                     ("canary.pingPong.pongService", pair.pong_service)) if pair is not None else ())]
    if blue_green is not None:
        named += [("blueGreen.activeService", blue_green.active_service),
                  ("blueGreen.previewService", blue_green.preview_service)]
    for key, name in named:
        service = next((s for s in services if wire.text(s, "metadata", "name") == name), None)
        owner = claimant(service)
        if name and owner and owner != me and owner in live_claimants:
            found.append(_taken(f"spec.strategy.{key}", "Service", str(name), owner))
    owner = claimant(destination_rule)
    if destination_rule is not None and owner and owner != me and owner in live_claimants:
        name = wire.text(destination_rule, "metadata", "name")
        found.append(_taken(f"{ISTIO}.destinationRule.name", "DestinationRule", str(name), owner))
    return found


def _taken(path: str, kind: str, name: str, owner: str) -> Problem:
    return Problem(path, f"{kind} '{name}' is managed by Rollout '{owner}'",
                   f"give this Rollout its own {kind}, or delete Rollout '{owner}' first")
