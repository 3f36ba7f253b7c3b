"""Traffic for one pass: which pods each selector picks, and the canary's weight.

Rules (argo-rollouts.md §2.3, §2.4, §2.6), for the canary's share in percent, first match:
- aborted -> 0; fully promoted (stableRS == currentPodHash) -> 0 (the stable side now
  selects the new pods);
- the new ReplicaSet has no available pod, or a canary selector (canary Service,
  canary subset) does not select it yet -> 0;
- promoteFull -> the weight already recorded in status (kept until promotion completes);
- otherwise the weight in force at the current step (100 once past the last step), but
  only once the canary ReplicaSet has all the pods that step needs available; until then
  the weight of the previous setWeight step. A weight is never raised onto missing pods.
- Never above `Pass.weight_cap`: while promotion waits for analysis evidence, the last
  step's weight stays in force (never all traffic onto an unproven canary).
Selectors (the stable/canary Services' `rollouts-pod-template-hash`, the DestinationRule
subsets): stable -> `status.stableRS`, canary -> the new pods (the stable ones when
aborted). A selector moves only onto a ReplicaSet with an available pod (all its pods
when adopting a Service this Rollout does not manage yet); a canary selector leaves pods
that still carry weight only after the weight is 0 (one pass later). Services are
patched before the VirtualService, so new pods are selected before they get traffic.
Ping-pong Services (traffic.pingpong) take turns: the stable one follows stableRS, the
canary one the new pods until they are promoted, and neither moves back on abort.

The router itself (traffic.router, traffic.istio) answers with actions; this module decides
what to ask of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollouts.plan.state import Pass
from rollouts.plan.steplist import previous_set_weight, set_weight_at
from rollouts.platform.actions import NORMAL, SetServiceSelector
from rollouts.platform.labels import HASH_LABEL, MANAGED_BY
from rollouts.spec.model import CanaryStep, TrafficWeights, WeightDestination
from rollouts.traffic import pingpong


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


# ---------------------------------------------------------------- one plan pass


@dataclass(frozen=True)
class Selection:
    canary: str | None  # the hash the canary side selects after this pass
    stable: str | None
    canary_selected: bool  # every canary-side selector picks the new pods
    selected: frozenset[str]  # every hash some selector picks


def select(p: Pass) -> Selection:
    """Point the stable/canary Services and the router's subsets at their ReplicaSets."""
    stable_target = p.st.stable_rs
    canary_target = stable_target if p.aborted else p.pod_hash
    chosen: dict[str, str | None] = {}
    for key, name, target in _selectors(p, stable_target, canary_target):
        service = next((s for s in p.observed.services if (s.get("metadata") or {}).get("name") == name), None)
        if service is None:
            continue
        current = ((service.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)
        managed = ((service.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY) == p.ro.metadata.name
        chosen[key] = _gate(p, key.split("-")[0], current, target, managed=managed)
        if chosen[key] != current and chosen[key] is not None:
            p.actions.append(SetServiceSelector(str(name), str(chosen[key])))
    hashes = p.router.selected_hashes() if p.router is not None else None
    if p.router is not None and hashes is not None:
        canary_now, stable_now = hashes
        chosen["canary-subset"] = _gate(p, "canary", canary_now, canary_target, managed=canary_now is not None)
        chosen["stable-subset"] = _gate(p, "stable", stable_now, stable_target, managed=stable_now is not None)
        p.actions += p.router.update_hash(canary_hash=chosen["canary-subset"], stable_hash=chosen["stable-subset"])
    canary_side = [value for key, value in chosen.items() if key.startswith("canary")]
    stable_side = [value for key, value in chosen.items() if key.startswith("stable")]
    return Selection(
        canary=canary_side[0] if canary_side else p.pod_hash,
        stable=stable_side[0] if stable_side else stable_target,
        canary_selected=all(value == p.pod_hash for value in canary_side),
        selected=frozenset(value for value in chosen.values() if value),
    )


Selector = tuple[str, str | None, str | None]


def _selectors(p: Pass, stable_target: str | None, canary_target: str | None) -> list[Selector]:
    """(role key, Service name, target hash) of every Service selector this pass points.
    The ping-pong pair (traffic.pingpong): its stable side follows stableRS, its canary side
    the new pods while not fully promoted (aborted too: no ping-pong selector moves back)."""
    found: list[Selector] = [("stable", p.canary.stable_service, stable_target),
                             ("canary", p.canary.canary_service, canary_target)]
    status = p.st.canary.stable_ping_pong if p.st.canary else None
    pair = pingpong.roles(p.canary, status)
    if pair is not None:
        found = [(role, name, target) for role, name, target in found if name]
        found.append(("stable-pingpong", pair[0], stable_target))
        if not p.promoted:
            found.append(("canary-pingpong", pair[1], p.pod_hash))
    return found


def _gate(p: Pass, role: str, current: str | None, target: str | None, *, managed: bool) -> str | None:
    """The hash a selector may pick this pass (see the module rules)."""
    if target is None or current == target:
        return current
    recorded = p.old.canary.weights.canary.weight if p.old.canary and p.old.canary.weights else 0
    if role == "canary" and current is not None and recorded > 0 and p.router is not None:
        return current
    rs = p.view(target)
    if rs is None:
        return current
    ready = rs.available > 0 if managed else 0 < rs.replicas <= rs.available
    return target if ready else current


def route(p: Pass, selection: Selection) -> None:
    """Set the VirtualService weights and record them in `status.canary.weights`."""
    if p.router is None:
        return
    old = p.old.canary
    recorded = old.weights.canary.weight if old and old.weights else 0
    weight = desired_weight(steps=p.steps, index=p.index, aborted=p.aborted, promoted=p.promoted,
                            promote_full=bool(p.st.promote_full), canary_selected=selection.canary_selected,
                            canary_available=p.new.available, at_desired=p.at_desired, recorded=recorded)
    weight = min(weight, p.weight_cap)
    p.actions += p.router.set_weight(weight)
    if weight != recorded:
        p.event(NORMAL, "TrafficWeightUpdated", f"Traffic weight updated from {recorded} to {weight}")
    assert p.st.canary is not None
    stable_service, canary_service = pingpong.routed_services(p.canary, p.st.canary.stable_ping_pong)
    p.st.canary.weights = TrafficWeights(
        canary=WeightDestination(weight=weight, service_name=canary_service, pod_template_hash=selection.canary),
        stable=WeightDestination(weight=100 - weight, service_name=stable_service, pod_template_hash=selection.stable))
    p.weight = weight
