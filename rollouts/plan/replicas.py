"""ReplicaSets of a Rollout: pod-template hash, names, documents and replica arithmetic.

Rules:
- The pod-template hash is a pure function of the pod template (minus our own hash
  label) and `status.collisionCount`: 10 characters from Kubernetes' "safe" alphabet
  (lowercase consonants and digits, so no words). Same template, same hash, on every
  controller, after every restart. It is not Argo's hash (Argo hashes Go structs): a
  Rollout adopted mid-update from Argo starts its canary over once.
- A Rollout's ReplicaSet is `<rollout>-<hash>`, owned by the Rollout (controller
  ownerReference), labelled `rollouts-pod-template-hash`, annotated with its
  `rollout.argoproj.io/revision` and `rollout.argoproj.io/desired-replicas`.
- Traffic-routed canary: canary replicas = ceil(weight x replicas / 100) (or what a
  `setCanaryScale` step says, never below `minPodsPerReplicaSet` when non-zero); the
  stable ReplicaSet stays at `spec.replicas` until promotion.
- Basic canary (no traffic router): the replica ratio *is* the traffic split, so the
  counts approximate the weight and move within maxSurge/maxUnavailable, following
  Argo's `CalculateReplicaCountsForBasicCanary` (see `basic_canary_counts`).
- maxSurge/maxUnavailable: an int is a count, a string is a percent (`"25%"` or the
  legacy `"25"`); surge rounds up, unavailable rounds down; both default to 25%; when
  both resolve to 0, maxUnavailable is 1.
- No I/O, no clock: deadlines are parsed from annotations, compared by the caller.
Size: over 300 lines because Argo's replica arithmetic (surge, unavailable, canary and
  basic-canary counts) with its worked examples; the functions call each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollouts.platform.labels import DESIRED_REPLICAS, HASH_LABEL, REVISION, SCALE_DOWN_DEADLINE, short_hash
from rollouts.platform.times import parse_time
from rollouts.spec.model import CanaryStrategy, Rollout, SetCanaryScale


def pod_template_hash(template: Mapping[str, Any] | None, collision_count: int | None = None) -> str:
    clean = json.loads(json.dumps(template or {}))
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return short_hash({"template": clean, "collisionCount": collision_count or 0})


def replicaset_name(rollout_name: str, pod_hash: str) -> str:
    return f"{rollout_name}-{pod_hash}"


@dataclass(frozen=True)
class ReplicaSetView:
    """What the core needs to know about one observed ReplicaSet."""

    name: str
    pod_hash: str
    replicas: int  # spec.replicas
    created: int  # status.replicas
    ready: int
    available: int
    revision: int
    deadline: datetime | None  # scale-down-deadline annotation
    annotations: Mapping[str, str]

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> ReplicaSetView:
        meta = doc.get("metadata") or {}
        status = doc.get("status") or {}
        annotations = dict(meta.get("annotations") or {})
        replicas = (doc.get("spec") or {}).get("replicas")
        return cls(
            name=str(meta.get("name", "")),
            pod_hash=str((meta.get("labels") or {}).get(HASH_LABEL, "")),
            replicas=1 if replicas is None else int(replicas),
            created=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            revision=_int(annotations.get(REVISION)),
            deadline=_time(annotations.get(SCALE_DOWN_DEADLINE)),
            annotations=annotations,
        )

    def all_available(self, desired: int) -> bool:
        """`desired` pods asked for and all of them available (Argo's allDesiredAreAvailable)."""
        return self.replicas == desired and self.available == desired


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


_time = parse_time


def new_replicaset(rollout: Rollout, *, pod_hash: str, revision: int, replicas: int) -> dict[str, Any]:
    """The ReplicaSet document for the Rollout's current pod template."""
    meta = rollout.metadata
    template = json.loads(json.dumps(rollout.spec.template or {}))
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = rollout.spec.selector.dump() if rollout.spec.selector else {}
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": template}
    if rollout.spec.min_ready_seconds:
        spec["minReadySeconds"] = rollout.spec.min_ready_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": replicaset_name(str(meta.name), pod_hash),
            "namespace": meta.namespace,
            "labels": dict(template_meta["labels"]),
            "annotations": {REVISION: str(revision), DESIRED_REPLICAS: str(spec_replicas(rollout))},
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": spec,
    }


def owner_reference(rollout: Rollout) -> dict[str, Any]:
    meta = rollout.metadata
    owner = {"apiVersion": rollout.api_version, "kind": "Rollout", "name": meta.name, "uid": meta.uid,
             "controller": True, "blockOwnerDeletion": True}
    return {key: value for key, value in owner.items() if value is not None}


def spec_replicas(rollout: Rollout) -> int:
    return 1 if rollout.spec.replicas is None else rollout.spec.replicas


# ---------------------------------------------------------------- surge / unavailable


def _resolve(value: int | str | None, total: int, *, round_up: bool) -> int:
    if value is None:
        value = "25%"
    if isinstance(value, int):
        return value
    percent = int(value.strip().rstrip("%") or 0)
    return -(-percent * total // 100) if round_up else percent * total // 100


def surge_and_unavailable(canary: CanaryStrategy | None, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; e.g. 25%/25% of 10 replicas -> (3, 2)."""
    surge = _resolve(canary.max_surge if canary else None, replicas, round_up=True)
    unavailable = _resolve(canary.max_unavailable if canary else None, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


# ---------------------------------------------------------------- traffic-routed canary


def weight_to_replicas(weight: int, replicas: int) -> int:
    """ceil(weight x replicas / 100): 10 replicas at 33% -> 4; at 25% -> 3; at 0% -> 0."""
    return -(-weight * replicas // 100)


def routed_canary_replicas(*, replicas: int, weight: int, scale: SetCanaryScale | None,
                           min_pods: int | None) -> int:
    """Canary pods for a traffic-routed step: setCanaryScale wins over the traffic weight.

    >>> routed_canary_replicas(replicas=4, weight=100, scale=SetCanaryScale(weight=200), min_pods=None)
    8
    >>> routed_canary_replicas(replicas=10, weight=5, scale=None, min_pods=2)
    2
    """
    if scale is not None and scale.replicas is not None:
        count = scale.replicas
    elif scale is not None and scale.weight is not None:
        count = weight_to_replicas(scale.weight, replicas)
    else:
        count = weight_to_replicas(weight, replicas)
    if count > 0 and min_pods:
        count = max(count, min_pods)
    return count


# ---------------------------------------------------------------- basic canary


def approximate_counts(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """(canary, stable) whose ratio is closest to `weight`, summing to replicas or replicas+1.

    Candidates are ceil and floor of weight x replicas / 100 over `replicas` pods and, if
    surging is allowed, over `replicas + 1`; a 1-99% weight never rounds either side to 0
    (unless one pod and no surge); on an exact tie the larger canary wins. Examples:
    (10, 15, 0) -> (2, 8); (10, 1, 1) -> (1, 10) = 9.1%; (3, 50, 0) -> (2, 1); (1, 49, 1) -> (1, 1).
    """
    if replicas == 0:
        return 0, 0
    zero_ok = weight in (0, 100) or (replicas == 1 and max_surge == 0)
    ceil, floor = weight_to_replicas(weight, replicas), weight * replicas // 100
    options: list[tuple[int, int]] = []
    if ceil < replicas or zero_ok:
        options.append((ceil, replicas))
    if not _tied(weight, replicas) and (floor != 0 or zero_ok):
        options.append((floor, replicas))
    if max_surge > 0:
        options.append((ceil, replicas + 1))
        if not _tied(weight, replicas + 1) and (floor != 0 or zero_ok):
            options.append((floor, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for option in options[1:]:
        if _delta(weight, *option) < _delta(weight, *best):
            best = option
    return best[0], best[1] - best[0]


def _tied(weight: int, total: int) -> bool:
    return weight * total % 100 == 50


def _delta(weight: int, canary: int, total: int) -> float:
    return abs(canary * 100 / total - weight)


def basic_canary_counts(
    *, replicas: int, weight: int, max_surge: int, max_unavailable: int,
    new: ReplicaSetView | None, stable: ReplicaSetView | None, others: Sequence[ReplicaSetView] = (),
) -> tuple[int, int]:
    """(new, stable) replica counts for this pass of a basic canary (Argo's semantics).

    1. Targets come from `approximate_counts`; without a distinct stable ReplicaSet the
       new one simply goes to `replicas`.
    2. Scale up within `replicas + maxSurge` pods in total, stable first, then canary.
    3. While older ReplicaSets still have pods, stop there (they are scaled down first).
    4. Scale down within `replicas - maxUnavailable` available pods: when the canary grows,
       shrink the stable (its unavailable pods count as removable); when it shrinks (abort,
       lower weight), shrink the canary; then re-balance so neither limit is crossed.

    Worked examples (replicas, weight, surge, unavailable; stable spec/available; canary):
    - 10, 10%, 1, 1; stable 10/10; canary 0/0 -> canary 1, stable 9.
    - 10, 30%, 3, 0; stable 10/10; canary 0/0 -> canary 3, stable 10 (surge only).
    - 10, 30%, 0, 5; stable 10/10; canary 0/0 -> canary 0, stable 7 (make room first).
    - 10, 100%, 1, 0; stable 10/2; canary 10/8 -> canary 9, stable 2.
    - 4, 0% (abort), 1, 0; stable 1/1; canary 4/4 -> canary 3, stable 1 (one at a time).
    """
    target_new, target_stable = approximate_counts(replicas, weight, max_surge)
    has_stable = stable is not None and (new is None or stable.name != new.name)
    if not has_stable:
        target_new, target_stable = replicas, 0
    new_count = new.replicas if new else 0
    stable_count = stable.replicas if stable is not None and has_stable else 0
    ceiling = replicas + max_surge
    room = ceiling - (sum(rs.replicas for rs in others) + new_count + stable_count)
    if stable is not None and has_stable and stable.replicas < target_stable and room > 0:
        grow = min(room, target_stable - stable.replicas)
        stable_count, room = stable.replicas + grow, room - grow
    if new is not None and new.replicas < target_new and room > 0:
        new_count = min(target_new, new.replicas + room)
    if any(rs.replicas > 0 for rs in others):
        return new_count, stable_count
    floor = replicas - max_unavailable
    growing = new is None or target_new >= new.replicas
    removable = _removable(new, ignore_availability=not growing)
    if has_stable:
        removable += _removable(stable, ignore_availability=growing)
    if removable <= floor:
        return new_count, stable_count
    budget = removable - floor
    if not growing:
        new_count = _drain(new, target_new, budget, new_count)
        new_count, stable_count = _rebalance(new, stable if has_stable else None, new_count, stable_count,
                                             ceiling=ceiling, floor=floor)
    elif has_stable:
        stable_count = _drain(stable, target_stable, budget, stable_count)
        stable_count, new_count = _rebalance(stable, new, stable_count, new_count, ceiling=ceiling, floor=floor)
    return new_count, stable_count


def _removable(rs: ReplicaSetView | None, *, ignore_availability: bool) -> int:
    """Pods of `rs` that count toward availability when deciding how far to scale down."""
    if rs is None:
        return 0
    if rs.replicas < rs.available or ignore_availability:
        return rs.replicas
    return rs.available


def _drain(rs: ReplicaSetView | None, target: int, budget: int, current: int) -> int:
    if rs is not None and rs.replicas > target:
        return max(target, rs.replicas - budget)
    return current


def _rebalance(drained: ReplicaSetView | None, adjusted: ReplicaSetView | None, drained_count: int,
               adjusted_count: int, *, ceiling: int, floor: int) -> tuple[int, int]:
    """Trim `adjusted` back under maxSurge, give back what availability needs, then trim `drained`."""
    if adjusted is None:
        return drained_count, adjusted_count
    available = min(drained.available, drained_count) if drained is not None else 0
    adjusted_count -= max(0, adjusted_count + drained_count - ceiling)
    available += min(adjusted.available, adjusted_count)
    lost = max(0, adjusted.available - adjusted_count)
    adjusted_count += min(lost, max(0, floor - available))
    drained_count -= max(0, adjusted_count + drained_count - ceiling)
    return drained_count, adjusted_count


def basic_old_scale_down(*, replicas: int, max_unavailable: int, all_sets: Sequence[ReplicaSetView],
                         old: Sequence[ReplicaSetView]) -> dict[str, int]:
    """New counts for older ReplicaSets of a basic canary: unhealthy pods go at once, then
    as many available pods as keep `replicas - maxUnavailable` available, newest first.

    10 replicas, maxUnavailable 0, 11 pods available in all, an old set at 3/3 -> 2.
    """
    budget = sum(rs.available for rs in all_sets) - (replicas - max_unavailable)
    targets: dict[str, int] = {}
    for rs in sorted(old, key=lambda r: r.revision, reverse=True):
        if rs.replicas == 0:
            continue
        unhealthy = max(0, rs.replicas - rs.available)
        take = min(rs.replicas, unhealthy + max(0, budget))
        budget -= max(0, take - unhealthy)
        if take:
            targets[rs.name] = rs.replicas - take
    return targets
