"""The dashboard's picture of the cluster: one watch per kind for the whole process.

Rules:
- One `Store` per dashboard process watches Rollouts, ReplicaSets, AnalysisRuns, Pods and
  Events (of `namespace`, or every namespace) through the Cluster port and keeps the
  latest of each in the controller's informer cache. Every browser reads from here: no
  browser request ever lists the API (1,000 Rollouts and ten browsers are still five watches).
- Never a Secret: the store does not watch Secrets, and nothing reads one.
- Each change bumps `version` and records which Rollout it concerns (an object's owning
  Rollout: by ownerReference, a Pod through its ReplicaSet, an Event through its
  involvedObject), so a stream sends only the rows that changed since what it last sent.
- The canary weight over time is kept here, since the process started: a point
  (time, set weight, actual weight) whenever either changes, at most `HISTORY` per Rollout.
- A watch that ends is resumed from its last resourceVersion; one that is `Gone` lists
  again; any other failure is recorded (`errors`, shown on every page) and retried after
  a bounded backoff (1 s doubling to 15 s). `close()` stops every watch.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollouts.controller.informer import Cache
from rollouts.platform.clock import Clock, SystemClock
from rollouts.platform.cluster import Cluster, ClusterError, Gone, WatchStream
from rollouts.view import build, owned_by

__all__ = ["KINDS", "Store", "WeightPoint"]

log = logging.getLogger(__name__)

KINDS = ("Rollout", "ReplicaSet", "AnalysisRun", "Pod", "Event")
HISTORY = 500
CHANGES_KEPT = 10_000
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 15.0
Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, rollout name)


@dataclass(frozen=True)
class WeightPoint:
    at: datetime
    set_weight: int | None
    actual_weight: int | None


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _section(obj: Obj, key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _owner(obj: Obj, kind: str) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("kind") == kind and ref.get("name"):
            return str(ref["name"])
    return None


class Store:
    def __init__(self, cluster: Cluster, namespace: str | None = None, *, clock: Clock | None = None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.clock = clock or SystemClock()
        self.cache = Cache()
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._changes: deque[tuple[int, Key]] = deque(maxlen=CHANGES_KEPT)
        self._history: dict[Key, deque[WeightPoint]] = {}
        self._listeners: list[Callable[[], None]] = []
        # (kind, namespace, owner kind, owner name) -> names: a Rollout's ReplicaSets and runs, a
        # ReplicaSet's Pods, an object's Events, found without scanning the namespace
        self._children: dict[tuple[str, str, str, str], set[str]] = {}
        self._synced: set[str] = set()
        self._streams: dict[str, WatchStream] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- running ----------------------------------------------------------------------
    def start(self) -> Store:
        for kind in KINDS:
            thread = threading.Thread(target=self._watch_loop, args=(kind,), name=f"dashboard-watch:{kind}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait_synced(self, timeout: float = 10.0) -> bool:
        """True once every kind has been listed (tests and the benchmark wait for it)."""
        done = threading.Event()

        def check() -> None:
            if self._synced.issuperset(KINDS):
                done.set()

        self.subscribe(check)
        check()
        try:
            return done.wait(timeout)
        finally:
            self.unsubscribe(check)

    def _watch_loop(self, kind: str) -> None:
        resource_version: str | None = None
        backoff = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist(kind)
                stream = self.cluster.watch(kind, self.namespace, resource_version=resource_version, timeout=300)
                with self._lock:
                    self._streams[kind] = stream
                if self._stop.is_set():
                    stream.close()
                    return
                for event in stream:
                    self.take(kind, event.type, event.object)
                resource_version = stream.resource_version or resource_version
                self.errors.pop(kind, None)
                backoff = BACKOFF_FIRST
            except Gone:
                resource_version = None
            except (ClusterError, OSError) as err:
                self.errors[kind] = f"watching {kind}s: {err}"
                log.warning("dashboard: watching %ss failed (%s); retrying in %.0f s", kind, err, backoff)
                self._notify()
                self._stop.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)

    def _relist(self, kind: str) -> str | None:
        """List `kind` into the cache (the whole truth about it); the watch resumes from the newest
        resourceVersion listed (None when there is nothing: the watch then lists from the start)."""
        objects = self.cluster.list(kind, self.namespace)
        for obj in objects:
            obj.setdefault("kind", kind)
        self.cache.replace_kind(kind, objects)
        with self._lock:
            for index in [k for k in self._children if k[0] == kind]:
                del self._children[index]
        for obj in objects:
            self._index(kind, "ADDED", obj)
        keys = {key for obj in objects if (key := self._rollout_of(kind, obj)) is not None}
        with self._lock:
            self._version += 1
            self._changes.extend((self._version, key) for key in keys)
        if kind == "Rollout":  # a point per Rollout at first sight (its ReplicaSets' later events add more)
            for key in keys:
                self._record_weight(key)
        self._synced.add(kind)
        self.errors.pop(kind, None)
        self._notify()
        versions = [int(v) for obj in objects if (v := str(_meta(obj).get("resourceVersion") or "")).isdigit()]
        return str(max(versions)) if versions else None

    # --- taking in events ----------------------------------------------------------------
    def take(self, kind: str, event_type: str, obj: Obj) -> None:
        """One watch event: into the cache, the change log, the weight history."""
        obj = dict(obj)
        obj.setdefault("kind", kind)
        self.cache.apply(event_type, obj)
        self._index(kind, event_type, obj)
        key = self._rollout_of(kind, obj)
        with self._lock:
            self._version += 1
            if key is not None:
                self._changes.append((self._version, key))
                if event_type == "DELETED" and kind == "Rollout":
                    self._history.pop(key, None)
        if key is not None and event_type != "DELETED":
            self._record_weight(key)
        self._notify()

    def _parent(self, kind: str, obj: Obj) -> tuple[str, str] | None:
        """(owner kind, owner name) this object is indexed under, if any."""
        if kind in ("ReplicaSet", "AnalysisRun"):
            owner = _owner(obj, "Rollout")
            return ("Rollout", owner) if owner else None
        if kind == "Pod":
            owner = _owner(obj, "ReplicaSet")
            return ("ReplicaSet", owner) if owner else None
        if kind == "Event":
            involved = _section(obj, "involvedObject")
            return (str(involved.get("kind")), str(involved.get("name"))) if involved.get("name") else None
        return None

    def _index(self, kind: str, event_type: str, obj: Obj) -> None:
        parent = self._parent(kind, obj)
        if parent is None:
            return
        meta = _meta(obj)
        index = (kind, str(meta.get("namespace") or "default"), *parent)
        with self._lock:
            names = self._children.setdefault(index, set())
            if event_type == "DELETED":
                names.discard(str(meta.get("name")))
            else:
                names.add(str(meta.get("name")))

    def _children_of(self, kind: str, namespace: str, owner_kind: str, owner: str) -> list[Obj]:
        with self._lock:
            names = sorted(self._children.get((kind, namespace, owner_kind, owner), ()))
        found = []
        for name in names:
            try:
                found.append(self.cache.get(kind, name, namespace))
            except ClusterError:
                continue
        return found

    def _rollout_of(self, kind: str, obj: Obj) -> Key | None:
        meta = _meta(obj)
        namespace = str(meta.get("namespace") or "default")
        if kind == "Rollout":
            return namespace, str(meta.get("name", ""))
        if kind in ("ReplicaSet", "AnalysisRun"):
            owner = _owner(obj, "Rollout")
            return (namespace, owner) if owner else None
        if kind == "Pod":
            rs = _owner(obj, "ReplicaSet")
            if rs is None:
                return None
            try:
                owner = _owner(self.cache.get("ReplicaSet", rs, namespace), "Rollout")
            except ClusterError:
                return None
            return (namespace, owner) if owner else None
        involved = _section(obj, "involvedObject")
        if involved.get("kind") == "Rollout":
            return namespace, str(involved.get("name", ""))
        if involved.get("kind") == "AnalysisRun":
            try:
                owner = _owner(self.cache.get("AnalysisRun", str(involved.get("name", "")), namespace), "Rollout")
            except ClusterError:
                return None
            return (namespace, owner) if owner else None
        return None

    def _record_weight(self, key: Key) -> None:
        rollout = self.rollout(*key)
        if rollout is None:
            return
        view = build(rollout, self.replica_sets(*key), self.analysis_runs(*key), now=self.clock.now())
        with self._lock:
            points = self._history.setdefault(key, deque(maxlen=HISTORY))
            if points and (points[-1].set_weight, points[-1].actual_weight) == (view.set_weight, view.actual_weight):
                return
            points.append(WeightPoint(self.clock.now(), view.set_weight, view.actual_weight))

    # --- notifying ------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> None:
        """`listener()` is called (on a watch thread) after every change; it must not block."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    # --- reading ----------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def changed_since(self, version: int) -> tuple[int, set[Key] | None]:
        """(now, the Rollouts changed after `version`); None when the log no longer reaches back that far."""
        with self._lock:
            now = self._version
            full = len(self._changes) == self._changes.maxlen
            if full and self._changes[0][0] > version + 1:
                return now, None
            return now, {key for v, key in self._changes if v > version}

    def history(self, namespace: str, name: str) -> list[WeightPoint]:
        with self._lock:
            return list(self._history.get((namespace, name), ()))

    def rollouts(self) -> list[Obj]:
        return sorted(self.cache.list("Rollout", self.namespace),
                      key=lambda r: (str(_meta(r).get("namespace")), str(_meta(r).get("name"))))

    def rollout(self, namespace: str, name: str) -> Obj | None:
        try:
            return self.cache.get("Rollout", name, namespace)
        except ClusterError:
            return None

    def _owned(self, kind: str, namespace: str, name: str) -> list[Obj]:
        rollout = self.rollout(namespace, name) or {"metadata": {"name": name, "namespace": namespace}}
        return [obj for obj in self._children_of(kind, namespace, "Rollout", name) if owned_by(obj, rollout)]

    def replica_sets(self, namespace: str, name: str) -> list[Obj]:
        return self._owned("ReplicaSet", namespace, name)

    def analysis_runs(self, namespace: str, name: str) -> list[Obj]:
        return self._owned("AnalysisRun", namespace, name)

    def pods(self, namespace: str, name: str) -> list[Obj]:
        return [pod for rs in self.replica_sets(namespace, name)
                for pod in self._children_of("Pod", namespace, "ReplicaSet", str(_meta(rs).get("name")))]

    def events(self, namespace: str, name: str) -> list[Obj]:
        found = self._children_of("Event", namespace, "Rollout", name)
        for run in self.analysis_runs(namespace, name):
            found += self._children_of("Event", namespace, "AnalysisRun", str(_meta(run).get("name")))
        return sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                               or _meta(e).get("creationTimestamp") or ""))

    def all_owned(self, kind: str) -> dict[Key, list[Obj]]:
        """Every `kind` object grouped by its owning Rollout (one pass over the cache, for the overview)."""
        grouped: dict[Key, list[Obj]] = {}
        for obj in self.cache.list(kind, self.namespace):
            owner = _owner(obj, "Rollout")
            if owner:
                grouped.setdefault((str(_meta(obj).get("namespace") or "default"), owner), []).append(obj)
        return grouped


def keys_of(rollouts: Iterable[Obj]) -> list[Key]:
    return [(str(_meta(r).get("namespace") or "default"), str(_meta(r).get("name"))) for r in rollouts]
