"""What the ReplicaSet controller and the kubelet would do, for the in-memory cluster.

`InMemoryCluster` runs no pods. So that local runs, the demo and tests make progress, a
`Workloads` hook decides what a workload object (a ReplicaSet) makes of its dependents
(its Pods) at a moment, and the cluster writes that through its ordinary paths (new
resourceVersions, ADDED/MODIFIED/DELETED watch events).

Rules:
- The cluster calls `sync(obj, dependents, now)` after a create/patch/replace of one of
  the hook's `kinds`, after a write or delete of one of its `dependent` objects (for
  the owner), and for every object of its kinds on `InMemoryCluster.settle(now)`. It
  returns a `Sync`: dependents to create, to delete and to mark Ready, and a merge
  patch for the owner's `.status` (None: nothing to write). Writes made for a `Sync`
  do not call the hook again.
- `ReplicaSets` keeps `spec.replicas` Pods per ReplicaSet (default 1):
  - a Pod is `<replicaset>-<5 characters>`, deterministic (the ReplicaSet's name and
    a serial, hashed into the pod-template-hash alphabet: no words, no collision with
    a live pod); labels, annotations and spec come from the ReplicaSet's template
    (so `rollouts-pod-template-hash` too), its controller ownerReference is the
    ReplicaSet, the cluster stamps `creationTimestamp` with `now`; `status.phase` is
    Running and its Ready condition is True at once, or `ready_delay` after the pod
    was created (False until a `sync` at or after that moment: `settle(now)`);
  - too many pods: the ones not Ready go first, then the newest (the ReplicaSet
    controller's order); a deleted pod is replaced at once by a new one;
  - status: `replicas` and `fullyLabeledReplicas` count the pods, `readyReplicas` and
    `availableReplicas` the Ready ones, `observedGeneration` is the generation.
- `Dependents` indexes the dependents by owner uid for the cluster, so a workload finds
  its own without a scan; `controller_of` names the workload that controls one.
- Time is the `now` argument: nothing here reads a clock or starts a thread.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from rollouts.platform.labels import short_hash
from rollouts.platform.times import format_time, parse_time

Obj = dict[str, Any]
POD_ID_LENGTH = 5


@dataclass(frozen=True)
class Sync:
    """What a workload object makes of its dependents at one moment."""

    status: Obj | None = None  # merge patch for the owner's .status
    create: tuple[Obj, ...] = ()  # whole dependent documents; the cluster sets uid, creationTimestamp
    delete: tuple[str, ...] = ()  # dependent names
    status_of: tuple[tuple[str, Obj], ...] = ()  # (dependent name, its new .status)


class Workloads(Protocol):
    kinds: frozenset[str]  # the kinds the hook keeps (ReplicaSet)
    dependent: str  # the kind it makes for them (Pod)

    def sync(self, obj: Obj, dependents: Sequence[Obj], now: datetime) -> Sync: ...


class ReplicaSets:
    """Stands in for the ReplicaSet controller and the kubelet: pods exist and become Ready."""

    kinds = frozenset({"ReplicaSet"})
    dependent = "Pod"

    def __init__(self, *, ready_delay: timedelta = timedelta(0)) -> None:
        self.ready_delay = ready_delay
        self._serial: dict[tuple[str, str], int] = {}  # (namespace, ReplicaSet) -> pods named so far

    def sync(self, obj: Obj, dependents: Sequence[Obj], now: datetime) -> Sync:
        meta = obj.get("metadata") or {}
        target = _count((obj.get("spec") or {}).get("replicas", 1))
        pods = sorted(dependents, key=_name)
        readied = tuple((_name(pod), _ready_status(pod, now)) for pod in pods
                        if not is_ready(pod) and _created(pod, now) + self.ready_delay <= now)
        ready = {name for name, _ in readied} | {_name(pod) for pod in pods if is_ready(pod)}
        doomed = [_name(pod) for pod in sorted(pods, key=lambda pod: _doom_order(pod, ready, now))[target:]]
        kept = [name for name in map(_name, pods) if name not in doomed]
        fresh = tuple(self._pod(obj, now, taken={*map(_name, pods)}) for _ in range(target - len(kept)))
        ready_now = sum(1 for name in kept if name in ready) + (len(fresh) if self.ready_delay <= timedelta(0) else 0)
        status = {
            "replicas": target,
            "fullyLabeledReplicas": target,
            "readyReplicas": ready_now,
            "availableReplicas": ready_now,
            "observedGeneration": meta.get("generation", 1),
        }
        return Sync(status=status, create=fresh, delete=tuple(doomed),
                    status_of=tuple(item for item in readied if item[0] not in doomed))

    def _pod(self, rs: Obj, now: datetime, *, taken: set[str]) -> Obj:
        meta = rs.get("metadata") or {}
        namespace, owner = str(meta.get("namespace") or "default"), str(meta.get("name"))
        while True:
            serial = self._serial.get((namespace, owner), 0)
            self._serial[(namespace, owner)] = serial + 1
            name = f"{owner}-{short_hash({'replicaSet': owner, 'serial': serial}, POD_ID_LENGTH)}"
            if name not in taken:
                break
        taken.add(name)
        template = (rs.get("spec") or {}).get("template") or {}
        template_meta = template.get("metadata") or {}
        pod_meta: Obj = {"name": name, "namespace": namespace, "labels": dict(template_meta.get("labels") or {}),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                              "uid": meta.get("uid"), "controller": True,
                                              "blockOwnerDeletion": True}]}
        if template_meta.get("annotations"):
            pod_meta["annotations"] = dict(template_meta["annotations"])
        ready = self.ready_delay <= timedelta(0)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                "spec": copy.deepcopy(template.get("spec") or {}),
                "status": {"phase": "Running", "startTime": timestamp(now),
                           "conditions": [_ready_condition(ready, now)]}}


Key = tuple[str, str, str]  # the cluster's (kind, namespace, name)


class Dependents:
    """Owner uid -> keys of the dependents that name it in their ownerReferences."""

    def __init__(self) -> None:
        self._keys: dict[str, set[Key]] = {}

    def keys(self, uid: str) -> list[Key]:
        return sorted(self._keys.get(uid, ()))

    def moved(self, key: Key, old: Obj | None, new: Obj | None) -> None:
        """Take in a write of the dependent at `key` (new None: deleted)."""
        for uid in owner_uids(old):
            keys = self._keys.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys[uid]
        for uid in owner_uids(new):
            self._keys.setdefault(uid, set()).add(key)


def controller_of(obj: Obj | None, kinds: frozenset[str]) -> tuple[str, str, str] | None:
    """(kind, name, uid) of the controller ownerReference of `obj` with one of `kinds`."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("kind") in kinds and ref.get("controller"):
            return str(ref["kind"]), str(ref.get("name")), str(ref.get("uid"))
    return None


def owner_uids(obj: Obj | None) -> list[str]:
    """The uids that `obj`'s ownerReferences name."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return [str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid")]


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


timestamp = format_time


def _ready_condition(ready: bool, now: datetime) -> Obj:
    return {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": timestamp(now)}


def _ready_status(pod: Obj, now: datetime) -> Obj:
    status = dict(pod.get("status") or {})
    others = [c for c in status.get("conditions") or [] if not (isinstance(c, dict) and c.get("type") == "Ready")]
    return {**status, "phase": "Running", "conditions": [*others, _ready_condition(True, now)]}


def _name(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("name"))


def _created(pod: Obj, now: datetime) -> datetime:
    return parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or now


def _doom_order(pod: Obj, ready: set[str], now: datetime) -> tuple[bool, float, str]:
    """Sort key putting the pods a scale-down keeps first: Ready, then oldest, then by name."""
    return _name(pod) not in ready, _created(pod, now).timestamp(), _name(pod)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
