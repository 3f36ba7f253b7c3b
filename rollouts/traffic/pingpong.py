"""Ping-pong Services, pure: which of the two plays the stable and which the canary.

Rules (Argo's rollout/trafficrouting/service_helper.go, rollout/service.go, sync.go
promoteStable; docs/features/specification.md "pingPong"):
- `canary.pingPong: {pingService, pongService}` names two long-lived Services that take
  turns: `status.canary.stablePingPong` says which one is the stable ("ping" or "pong");
  anything else (unset) means pong is the stable and ping the canary (Argo's IsStablePing).
- Every promotion to a new stable swaps the roles (`swapped`), the first deploy included:
  the Service that selected the canary pods is the stable one from then on, so no selector
  moves at promotion (the point of ping-pong).
- The canary-side Service selects the new pods while the update is not fully promoted,
  aborted too (Argo moves no ping-pong selector back on abort; the weight is 0 then).
- With Istio, the VirtualService destinations are the ping and pong hosts when neither
  canaryService nor stableService is set; when they are, Istio routes to them (Argo
  prefers the ping-pong pair with ALB only) and the ping-pong pair still takes turns.
- `service_names` is every Service a canary names (the shell reads them, claims check them).
"""

from __future__ import annotations

from rollouts.spec.model import CanaryStrategy

PING, PONG = "ping", "pong"


def roles(canary: CanaryStrategy | None, stable_ping_pong: str | None) -> tuple[str, str] | None:
    """(stable, canary) Service names of the ping-pong pair; None without pingPong."""
    pair = canary.ping_pong if canary is not None else None
    if pair is None:
        return None
    if stable_ping_pong == PING:
        return pair.ping_service, pair.pong_service
    return pair.pong_service, pair.ping_service


def routed_services(canary: CanaryStrategy | None, stable_ping_pong: str | None) -> tuple[str | None, str | None]:
    """(stable, canary) Service names the mesh routes to (see the module rules)."""
    if canary is None:
        return None, None
    pair = roles(canary, stable_ping_pong)
    if pair is not None and not canary.stable_service and not canary.canary_service:
        return pair
    return canary.stable_service, canary.canary_service


def swapped(stable_ping_pong: str | None) -> str:
    """`status.canary.stablePingPong` after a promotion to a new stable."""
    return PONG if stable_ping_pong == PING else PING


def service_names(canary: CanaryStrategy | None) -> list[str]:
    """Every Service name the canary strategy names, in a stable order, without repeats."""
    if canary is None:
        return []
    pair = canary.ping_pong
    names = [canary.canary_service, canary.stable_service,
             *((pair.ping_service, pair.pong_service) if pair is not None else ())]
    return list(dict.fromkeys(name for name in names if name))
