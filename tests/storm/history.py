"""Every version of the objects a storm is judged on, as the API server's watch delivered them.

Rules:
- One thread per kind watches the whole cluster through the Cluster port (the in-memory
  cluster in process, or the real API server through KubeCluster) and keeps every
  version in delivery order, each version once (by resourceVersion). A watch that ends
  resumes from the last version it delivered, so nothing is missed or repeated.
- A resume that the server refuses (410 Gone: history was compacted past it) is a gap:
  the history can no longer prove anything, and `gaps` says so; the storm fails on it. A
  410 before the first event (the real server's watch cache not caught up with the list)
  misses nothing: the watch lists again.
"""

from __future__ import annotations

import threading
from typing import Any

from rollouts.platform.cluster import Cluster, ClusterError, Gone

KINDS = ("Rollout", "VirtualService", "ReplicaSet", "AnalysisRun", "Service")
STOP_SECONDS = 10.0


class History:
    def __init__(self, cluster: Cluster, kinds: tuple[str, ...] = KINDS, namespace: str | None = None) -> None:
        self.cluster, self.namespace = cluster, namespace
        self._lock = threading.Lock()
        self._versions: dict[str, list[tuple[str, dict[str, Any]]]] = {kind: [] for kind in kinds}
        self._seen: set[tuple[str, str, str, str]] = set()
        self.gaps: list[str] = []
        self._stop = threading.Event()
        self._ready = {kind: threading.Event() for kind in kinds}
        self._threads = [threading.Thread(target=self._run, args=(kind,), name=f"history-{kind}", daemon=True)
                         for kind in kinds]

    def __enter__(self) -> History:
        for thread in self._threads:
            thread.start()
        for ready in self._ready.values():
            ready.wait(STOP_SECONDS)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(STOP_SECONDS)

    def versions(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(event type, object) of every version of `kind`, in the order they were delivered."""
        with self._lock:
            return list(self._versions[kind])

    def by_name(self, kind: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Every version of each object of `kind`, keyed by (namespace, name), deletions left out."""
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for event, obj in self.versions(kind):
            if event != "DELETED":
                meta = obj["metadata"]
                found.setdefault((meta.get("namespace") or "", meta["name"]), []).append(obj)
        return found

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._versions.values())

    def _run(self, kind: str) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                stream = self.cluster.watch(kind, self.namespace, resource_version=version, timeout=1.0)
                self._ready[kind].set()
                for event in stream:
                    self._add(kind, event.type, event.object)
                    if event.object.get("metadata", {}).get("resourceVersion"):
                        version = str(event.object["metadata"]["resourceVersion"])
                    if self._stop.is_set():
                        break
                version = stream.resource_version or version
                stream.close()
            except Gone:
                if version is not None:  # before the first event there is nothing to miss: list again
                    self.gaps.append(f"{kind}: the watch could not resume at resourceVersion {version} (410 Gone)")
                version = None
                self._stop.wait(0.2)
            except ClusterError:
                self._stop.wait(0.2)

    def _add(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name", ""), f"{event}:{meta.get('resourceVersion')}")
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                self._versions[kind].append((event, obj))
