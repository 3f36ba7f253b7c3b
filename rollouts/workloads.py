"""What the ReplicaSet controller and the kubelet would do, for the in-memory cluster.

`InMemoryCluster` has no pods. So that local runs, the demo and tests make progress, a
`Workloads` hook computes the status a workload object would reach, and the cluster
writes it through its ordinary status path (new resourceVersion, MODIFIED event).

Rules:
- The hook is called after a create/patch/replace of one of its `kinds`, and for every
  object of those kinds on `InMemoryCluster.settle(now)`. It returns a merge patch for
  `.status`, or None for "nothing to do". Status writes by the hook do not call it again.
- `ReplicaSets`: `status.replicas` and `fullyLabeledReplicas` follow `spec.replicas` at
  once (pods are created or removed); `readyReplicas` and `availableReplicas` follow at
  once when scaling down, and `ready_delay` after the change when scaling up (zero by
  default). `observedGeneration` is the object's generation. Time is the `now` argument:
  nothing here reads a clock or starts a thread.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol


class Workloads(Protocol):
    kinds: frozenset[str]

    def status_for(self, obj: dict[str, Any], now: datetime) -> dict[str, Any] | None: ...


class ReplicaSets:
    """Stands in for the ReplicaSet controller and kubelet: pods become available."""

    kinds = frozenset({"ReplicaSet"})

    def __init__(self, *, ready_delay: timedelta = timedelta(0)) -> None:
        self.ready_delay = ready_delay
        # uid -> (replicas being scaled up to, when that target was first seen)
        self._pending: dict[str, tuple[int, datetime]] = {}

    def status_for(self, obj: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        meta = obj.get("metadata", {})
        status = obj.get("status") or {}
        target = _count((obj.get("spec") or {}).get("replicas", 1))
        ready = min(_count(status.get("readyReplicas", 0)), target)
        if ready < target:
            uid = str(meta.get("uid", ""))
            wanted, since = self._pending.get(uid, (target, now))
            if wanted != target:
                since = now
            if now - since >= self.ready_delay:
                ready = target
                self._pending.pop(uid, None)
            else:
                self._pending[uid] = (target, since)
        return {
            "replicas": target,
            "fullyLabeledReplicas": target,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": meta.get("generation", 1),
        }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
