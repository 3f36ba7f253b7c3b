"""Which keys a watch event makes due: the fan-in from child objects to their Rollout.

Rules (sample-controller's `handleObject`, Argo's VirtualService index):
- Every event first updates the cache (rollouts.controller.informer), so a reconcile triggered
  by an event always reads at least that version.
- A Rollout enqueues itself (when in scope); a ReplicaSet or AnalysisRun enqueues the
  Rollout or Experiment named by its controller ownerReference (not when the cache holds
  that owner out of scope: another shard's, whose leader alone handles it; only Rollouts in
  scope are indexed by their VirtualService and DestinationRule); an Experiment enqueues
  itself (in scope) and its Rollout; an AnalysisRun in scope also enqueues
  itself for the analysis controller unless it has finished (its phase never changes
  again and its reconcile would only read it: a restarted controller's analysis workers
  go straight to the runs still measuring instead of reading every finished one first,
  oldest first, which under restarts left a new run unmeasured; found by the kill storm);
  the owners of a run whose verdict is Failed or Error are queued first (`urgent`);
  a VirtualService or DestinationRule enqueues every
  Rollout that references it (`name` or `name.namespace`), from an index kept up to date
  by the Rollout events. Other kinds only feed the cache.
- Scope: without an instance id only objects without the label
  `argo-rollouts.argoproj.io/controller-instance-id` are ours; with one, only objects
  carrying that value (Argo's sharding). A deleted Rollout always enqueues (the
  reconcile finds it gone and forgets it).
- The info metrics (`rollout_info`, `analysis_run_info`) follow the objects' phases
  here, from the events, without extra reads; so do an AnalysisRun's phase, metric
  phases, measured values and thresholds (ControllerMetrics.observe_analysis_run).
- Any shape is routed: objects are read through rollouts.platform.wire, so a Rollout whose
  spec is a list or whose strategy is a string still enqueues itself (and gets
  InvalidSpec from its reconcile); nothing here raises on user data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analysis.model import AnalysisPhase
from rollouts.controller.informer import Cache
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.reconciler import references
from rollouts.controller.workqueue import Key
from rollouts.platform import wire
from rollouts.platform.cluster import NotFound
from rollouts.platform.labels import INSTANCE_LABEL

__all__ = ["EventRouter", "Scope"]


@dataclass(frozen=True)
class Scope:
    namespace: str | None = None
    instance_id: str | None = None

    def admits(self, obj: dict[str, Any]) -> bool:
        labels = wire.section(obj, "metadata", "labels")
        return labels.get(INSTANCE_LABEL) == self.instance_id if self.instance_id else INSTANCE_LABEL not in labels


class EventRouter:
    def __init__(self, *, cache: Cache, metrics: ControllerMetrics, scope: Scope) -> None:
        self.cache, self.metrics, self.scope = cache, metrics, scope
        self._refs: dict[tuple[str, str, str], set[Key]] = {}  # (kind, ns, name) of a VS/DR -> Rollouts
        self._ref_of: dict[Key, set[tuple[str, str, str]]] = {}
        self._lock = threading.Lock()

    def route(self, kind: str, event_type: str, obj: dict[str, Any]) -> list[Key]:
        """The keys one watch event makes due (and the index/metrics it updates)."""
        self.cache.apply(event_type, obj)
        namespace, name = wire.name_of(obj)
        deleted = event_type == "DELETED"
        if kind == "Rollout":
            key = Key("Rollout", namespace, name)
            self._index(key, [] if deleted or not self.scope.admits(obj) else references(obj))
            if deleted:
                self.metrics.forget("Rollout", namespace, name)
                return [key]
            if not self.scope.admits(obj):
                return []
            if phase := wire.text(obj, "status", "phase"):
                router = "istio" if references(obj) else "none"
                strategy = "blueGreen" if wire.section(obj, "spec", "strategy").get("blueGreen") else "canary"
                self.metrics.set_rollout_info(namespace, name, phase=phase, traffic_router=router, strategy=strategy)
            return [key]
        owners = [Key(str(wire.text(ref, "kind")), namespace, ref["name"])
                  for ref in wire.items(obj, "metadata", "ownerReferences")
                  if wire.text(ref, "kind") in ("Rollout", "Experiment") and wire.text(ref, "name")
                  and ref.get("controller", True) and self._owner_in_scope(str(wire.text(ref, "kind")),
                                                                           namespace, ref["name"])]
        if kind == "Experiment":  # itself (in scope), and the Rollout whose step created it
            keep = deleted or self.scope.admits(obj)
            return [*([Key("Experiment", namespace, name)] if keep else []), *owners]
        if kind == "AnalysisRun":
            if deleted:
                self.metrics.forget("AnalysisRun", namespace, name)
            elif self.scope.admits(obj):
                self.metrics.observe_analysis_run(obj)
                return [*([] if finished_run(obj) else [Key("AnalysisRun", namespace, name)]), *owners]
            return owners
        if kind == "ReplicaSet":
            return owners
        if kind not in ("VirtualService", "DestinationRule"):
            return []
        with self._lock:
            return sorted(self._refs.get((kind, namespace, name), ()))

    def _owner_in_scope(self, kind: str, namespace: str, name: str) -> bool:
        """An owner another shard handles is no key of ours (unknown to the cache: let its reconcile look)."""
        try:
            return self.scope.admits(self.cache.get(kind, name, namespace))
        except NotFound:
            return True

    def _index(self, key: Key, refs: Iterable[tuple[str, str, str]]) -> None:
        with self._lock:
            for old in self._ref_of.pop(key, set()):
                self._refs.get(old, set()).discard(key)
            new = set(refs)
            if new:
                self._ref_of[key] = new
            for ref in new:
                self._refs.setdefault(ref, set()).add(key)


def urgent(kind: str, obj: dict[str, Any]) -> bool:
    """An AnalysisRun whose verdict is Failed or Error: the Rollout it fails is queued first, so its
    abort never waits behind a wave of other work (the scale benchmark's worst abort lag)."""
    return kind == "AnalysisRun" and wire.text(obj, "status", "phase") in ("Failed", "Error")


def finished_run(run: dict[str, Any]) -> bool:
    """The run's phase is a completed one (analysis.assess: a completed phase never changes)."""
    phase = wire.text(run, "status", "phase")
    return phase is not None and phase in AnalysisPhase._value2member_map_ and AnalysisPhase(phase).completed
