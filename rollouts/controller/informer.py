"""A watch-fed object cache (client-go's informer store, kept small): the controller's reads.

Rules:
- The Manager feeds it every watch event; the reconcilers read from it instead of
  listing the API on every pass (a list per reconcile is O(cluster) and would make a
  thousand Rollouts O(n²)). It answers the read half of the Cluster port (`get`,
  `list` with an equality label selector), so a reconciler can be given the Cluster
  itself instead (tests, one-off runs).
- Objects are stored as received and handed out *shared*: readers must not mutate
  them (sample-controller's rule; the core is pure and never does).
- Never older: an update with a lower resourceVersion than the stored one is ignored,
  so a write's own answer (`update(written)`, the "mutation cache") cannot be undone
  by a late watch event, and a reconcile right after a write sees that write.
  DELETED removes the object whatever its version.
- `get` raises the port's NotFound, so callers handle cache and cluster alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from rollouts.platform.cluster import NotFound
from rollouts.platform.kinds import kind_info

__all__ = ["Cache"]

Obj = dict[str, Any]
_Label = tuple[str, str, str, str]  # kind, namespace, label key, label value


def _rv(obj: Obj) -> int | None:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


class Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], dict[str, Obj]] = {}  # (kind, namespace) -> name -> obj
        self._labels: dict[_Label, set[str]] = {}

    # ------------------------------------------------------------ writing

    def update(self, obj: Obj) -> None:
        """Store `obj` unless the cache already holds a newer version of it."""
        kind, namespace, name = self._identity(obj)
        with self._lock:
            bucket = self._objects.setdefault((kind, namespace), {})
            old = bucket.get(name)
            if old is not None:
                old_rv, new_rv = _rv(old), _rv(obj)
                if old_rv is not None and new_rv is not None and new_rv < old_rv:
                    return
                self._unindex(kind, namespace, name, old)
            bucket[name] = obj
            for key, value in self._label_items(obj):
                self._labels.setdefault((kind, namespace, key, value), set()).add(name)

    def delete(self, obj: Obj) -> None:
        kind, namespace, name = self._identity(obj)
        with self._lock:
            old = self._objects.get((kind, namespace), {}).pop(name, None)
            if old is not None:
                self._unindex(kind, namespace, name, old)

    def apply(self, event_type: str, obj: Obj) -> None:
        """Take in one watch event."""
        self.delete(obj) if event_type == "DELETED" else self.update(obj)

    def replace_kind(self, kind: str, objects: Iterable[Obj]) -> None:
        """Make `objects` the whole truth about `kind` (a relist after a watch was Gone)."""
        with self._lock:
            for bucket in [k for k in self._objects if k[0] == kind]:
                del self._objects[bucket]
            for label in [k for k in self._labels if k[0] == kind]:
                del self._labels[label]
        for obj in objects:
            self.update(obj)

    # ------------------------------------------------------------ reading (the Cluster port's read half)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        ns = self._namespace(kind, namespace)
        with self._lock:
            obj = self._objects.get((kind, ns), {}).get(name)
        if obj is None:
            raise NotFound(f'{kind_info(kind).resource} "{name}" not found (in the controller cache)')
        return obj

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None
    ) -> list[Obj]:
        with self._lock:
            buckets = [b for (k, ns), b in self._objects.items() if k == kind and (namespace is None or ns == namespace
                                                                                     or not kind_info(kind).namespaced)]
            if not label_selector:
                return [obj for bucket in buckets for obj in bucket.values()]
            if namespace is None or not kind_info(kind).namespaced:
                return [obj for bucket in buckets for obj in bucket.values() if _matches(obj, label_selector)]
            ns = self._namespace(kind, namespace)
            names: set[str] | None = None
            for key, value in label_selector.items():
                found = self._labels.get((kind, ns, key, value), set())
                names = set(found) if names is None else names & found
            bucket = self._objects.get((kind, ns), {})
            return [bucket[name] for name in sorted(names or ())]

    def holds(self, kind: str, namespace: str | None, name: str) -> bool:
        with self._lock:
            return name in self._objects.get((kind, self._namespace(kind, namespace)), {})

    def __len__(self) -> int:
        with self._lock:
            return sum(len(bucket) for bucket in self._objects.values())

    # ------------------------------------------------------------ internals

    @staticmethod
    def _namespace(kind: str, namespace: str | None) -> str:
        return (namespace or "default") if kind_info(kind).namespaced else ""

    def _identity(self, obj: Obj) -> tuple[str, str, str]:
        meta = obj.get("metadata") or {}
        kind = str(obj.get("kind"))
        return kind, self._namespace(kind, meta.get("namespace")), str(meta.get("name"))

    @staticmethod
    def _label_items(obj: Obj) -> Iterable[tuple[str, str]]:
        return ((meta_labels or {}).items()) if (meta_labels := (obj.get("metadata") or {}).get("labels")) else ()

    def _unindex(self, kind: str, namespace: str, name: str, obj: Obj) -> None:
        for key, value in self._label_items(obj):
            names = self._labels.get((kind, namespace, key, value))
            if names is not None:
                names.discard(name)
                if not names:
                    del self._labels[(kind, namespace, key, value)]


def _matches(obj: Obj, selector: dict[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())
