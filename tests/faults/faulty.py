"""A fault-injecting Cluster: the port, delegating to another Cluster, failing on request.

`FaultyCluster(inner)` implements every method of rollouts.platform.cluster.Cluster explicitly.
`fail(verb, kind, name, errors)` queues exceptions raised (one per call, before the call
reaches `inner`) by the next calls that match; `always_fail(verb, kind, prefix, error)`
raises on every matching call; `faults` lists every one raised. Watch
streams are wrapped so a `Gone` raised while iterating is counted too (`gone`).
`expire_watches(kind, n)` makes the next n watches of `kind` that resume from a
resourceVersion `Gone`, as an API server whose watch cache moved on; `drop_watches(kind,
n)` cuts the next n streams of `kind` when first read; `slow_down(seconds, name_prefix)` makes
every call on an object whose name starts with the prefix wait first (a slow API server;
counted in `slowed`). Every write's answer
is kept in `written` (verb, kind, name, object), so a test can see each state the
controller wrote without watching (which tiny histories would expire).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from rollouts.platform.cluster import Cluster, Gone, Obj, Patch, WatchEvent, WatchStream

Key = tuple[str, str, str | None]  # (verb, kind, name or None for any name)


class FaultyCluster:
    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._rules: dict[Key, deque[BaseException]] = {}
        self._expire: Counter[str] = Counter()
        self._drop: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._always: list[tuple[str, str, str, BaseException]] = []
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.faults: list[tuple[str, str, str, str]] = []
        self.gone: Counter[str] = Counter()
        self.written: list[tuple[str, str, str, Obj]] = []
        self._slow: tuple[float, str] | None = None
        self.slowed = 0

    # ------------------------------------------------------------ arranging faults

    def fail(self, verb: str, kind: str, name: str | None, errors: list[BaseException]) -> None:
        with self._lock:
            self._rules.setdefault((verb, kind, name), deque()).extend(errors)

    def always_fail(self, verb: str, kind: str, name_prefix: str, error: BaseException) -> None:
        """Every call of `verb` on a `kind` whose name starts with `name_prefix` raises `error`."""
        with self._lock:
            self._always.append((verb, kind, name_prefix, error))

    def expire_watches(self, kind: str, count: int) -> None:
        with self._lock:
            self._expire[kind] += count

    def drop_watches(self, kind: str, count: int) -> None:
        """The next `count` watch streams of `kind` break (ConnectionResetError) when first read:
        served over HTTP, the client sees its connection cut mid-stream."""
        with self._lock:
            self._drop[kind] += count

    def slow_down(self, seconds: float, *, name_prefix: str) -> None:
        with self._lock:
            self._slow = (seconds, name_prefix)

    def _enter(self, verb: str, kind: str, name: str) -> None:
        slow = self._slow
        if slow is not None and name and name.startswith(slow[1]):
            with self._lock:
                self.slowed += 1
            time.sleep(slow[0])
        with self._lock:
            self.calls[(verb, kind, name)] += 1
            for key in ((verb, kind, name), (verb, kind, None)):
                queued = self._rules.get(key)
                if queued:
                    error = queued.popleft()
                    self.faults.append((verb, kind, name, type(error).__name__))
                    raise error
            for verb_, kind_, prefix, error in self._always:
                if (verb_, kind_) == (verb, kind) and name.startswith(prefix):
                    self.faults.append((verb, kind, name, type(error).__name__))
                    raise error

    def _wrote(self, verb: str, obj: Obj) -> Obj:
        with self._lock:
            self.written.append((verb, obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""), obj))
        return obj

    # ------------------------------------------------------------ the port

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        self._enter("get", kind, name)
        return self.inner.get(kind, name, namespace)

    def list(self, kind: str, namespace: str | None = None, *,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        self._enter("list", kind, "")
        return self.inner.list(kind, namespace, label_selector=label_selector)

    def create(self, obj: Obj) -> Obj:
        self._enter("create", obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""))
        return self._wrote("create", self.inner.create(obj))

    def patch(self, kind: str, name: str, namespace: str | None, patch: Patch, *, patch_type: str = "merge") -> Obj:
        self._enter("patch", kind, name)
        return self._wrote("patch", self.inner.patch(kind, name, namespace, patch, patch_type=patch_type))

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        self._enter("patch_status", kind, name)
        return self._wrote("patch_status", self.inner.patch_status(kind, name, namespace, patch))

    def replace(self, obj: Obj) -> Obj:
        self._enter("replace", obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""))
        return self._wrote("replace", self.inner.replace(obj))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self._enter("delete", kind, name)
        self.inner.delete(kind, name, namespace)

    def watch(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
              resource_version: str | None = None, timeout: float | None = None) -> WatchStream:
        self._enter("watch", kind, "")
        with self._lock:
            expire = resource_version not in (None, "", "0") and self._expire[kind] > 0
            if expire:
                self._expire[kind] -= 1
        try:
            if expire:
                raise Gone(f"too old resource version: {resource_version} (injected)")
            inner = self.inner.watch(kind, namespace, label_selector=label_selector, resource_version=resource_version,
                                     timeout=timeout)
        except Gone:
            with self._lock:
                self.gone[kind] += 1
            raise
        with self._lock:  # a cut is spent only on a stream that exists (a real 410 above keeps it for the next)
            drop = self._drop[kind] > 0
            if drop:
                self._drop[kind] -= 1
        return _CountingStream(self, kind, inner, drop=drop)

    # ------------------------------------------------------------ reading what happened

    def writes_of(self, kind: str, name: str | None = None, *,
                  verbs: tuple[str, ...] = ("patch", "replace")) -> list[Obj]:
        with self._lock:
            return [obj for verb, k, n, obj in self.written if k == kind and verb in verbs and name in (None, n)]


class _CountingStream:
    def __init__(self, owner: FaultyCluster, kind: str, inner: WatchStream, *, drop: bool = False) -> None:
        self._owner, self._kind, self._inner, self._drop = owner, kind, inner, drop

    @property
    def resource_version(self) -> str | None:
        return self._inner.resource_version

    def __iter__(self) -> _CountingStream:
        return self

    def __next__(self) -> WatchEvent:
        if self._drop:
            self._drop = False
            with self._owner._lock:
                self._owner.dropped[self._kind] += 1
            self._inner.close()
            raise ConnectionResetError(f"watch on {self._kind} cut (injected)")
        try:
            return next(self._inner)
        except Gone:
            with self._owner._lock:
                self._owner.gone[self._kind] += 1
            raise

    def close(self) -> None:
        self._inner.close()
