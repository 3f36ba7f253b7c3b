"""InMemoryCluster: the Cluster port in one process, for local mode, the demo and tests.

Rules and invariants (on top of the port's, see rollouts.cluster):
- One re-entrant lock guards everything; every write goes through `_commit`, which bumps
  the global resourceVersion, records the event in a bounded per-kind history and wakes
  the watchers. Stored objects are never mutated in place, so history records can share
  them; callers only ever see deep copies.
- A resourceVersion older than the oldest kept event of that kind is `Gone`.
- `metadata.uid`, `creationTimestamp` (from the injected clock) and `generation` (bumped
  when anything outside metadata and status changes) are set by the cluster.
- The `workloads` hook (rollouts.workloads) stands in for the ReplicaSet controller and
  kubelet; its status writes take the same path as any other write. `settle(now)` lets
  delayed readiness happen on a stepped clock, with no threads.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollouts.cluster import (
    CONFLICT_MESSAGE, AlreadyExists, Conflict, EventType, Gone, Invalid, NotFound, Obj, Patch,
    WatchEvent, check_patch_type, check_status_patch, describe, matches, namespace_of,
)
from rollouts.kinds import KindInfo, kind_info
from rollouts.patches import PatchError, clone, json_patch, merge_patch
from rollouts.workloads import ReplicaSets, Workloads

__all__ = ["InMemoryCluster"]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class _Record:
    rv: int
    type: EventType
    old: Obj | None
    new: Obj  # the state after the event (for DELETED: the last state, with the delete's rv)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InMemoryCluster:
    """A thread-safe, in-process Kubernetes API with the port's semantics."""

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, workloads: Workloads | bool = True,
        history: int = 1000,
    ) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._rv = 0
        self._history: dict[str, deque[_Record]] = {}
        self._floor: dict[str, int] = {}
        self._history_size = max(1, history)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.workloads: Workloads | None = None
        if workloads is True:
            self.workloads = ReplicaSets()
        elif workloads is not False:
            self.workloads = workloads

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion written (what a list response carries)."""
        with self._lock:
            return str(self._rv)

    # --- reads -----------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        info = kind_info(kind)
        with self._lock:
            return clone(self._find(info, name, namespace))

    def list(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None) -> list[Obj]:
        info = kind_info(kind)
        with self._lock:
            found = [obj for (k, ns, _), obj in sorted(self._objects.items())
                     if k == kind and (namespace is None or not info.namespaced or ns == namespace)
                     and matches(obj, label_selector)]
            return [clone(obj) for obj in found]

    # --- writes ----------------------------------------------------------------------
    def create(self, obj: Obj) -> Obj:
        info = _kind_of(obj)
        new = {"apiVersion": self._api_version(info, obj), "kind": info.kind}
        new.update((k, clone(v)) for k, v in obj.items() if k not in new)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Invalid(f"{info.kind}: metadata must be an object")
        with self._lock:
            if not meta.get("name") and isinstance(meta.get("generateName"), str):
                meta["name"] = f"{meta['generateName']}{self._rv + 1:05x}"
            name = self._valid_name(info, meta.get("name"))
            ns = namespace_of(info, meta.get("namespace"))
            if ns is None:
                meta.pop("namespace", None)
            else:
                meta["namespace"] = ns
            key = (info.kind, ns or "", name)
            if key in self._objects:
                raise AlreadyExists(f"{describe(info, name)} already exists")
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_timestamp(self._clock()), generation=1)
            for transient in ("resourceVersion", "deletionTimestamp"):
                meta.pop(transient, None)
            if info.status_subresource:
                new.pop("status", None)
            stored = self._commit(info, key, None, new)
            self._run_workloads(info, key)
            return clone(self._objects.get(key, stored))

    def patch(
        self, kind: str, name: str, namespace: str | None, patch: Patch,
        *, patch_type: str = "merge",
    ) -> Obj:
        info = kind_info(kind)
        check_patch_type(patch, patch_type)
        with self._lock:
            current = self._find(info, name, namespace)
            try:
                patched = merge_patch(current, patch) if patch_type == "merge" else json_patch(current, patch)  # type: ignore[arg-type]
            except PatchError as err:
                raise Invalid(f"{describe(info, name)} is invalid: {err}") from None
            return self._update(info, current, patched, status_only=False)

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        info = kind_info(kind)
        check_status_patch(info, name, patch)
        with self._lock:
            current = self._find(info, name, namespace)
            return self._update(info, current, merge_patch(current, patch), status_only=True, hooks=False)

    def replace(self, obj: Obj) -> Obj:
        info = _kind_of(obj)
        meta = obj.get("metadata") or {}
        with self._lock:
            current = self._find(info, self._valid_name(info, meta.get("name")), meta.get("namespace"))
            new = clone(obj)
            if "resourceVersion" not in new.get("metadata", {}):  # unconditional update
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._update(info, current, new, status_only=False)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        info = kind_info(kind)
        with self._lock:
            current = self._find(info, name, namespace)
            self._remove(info, current)
            self._collect_garbage({current["metadata"]["uid"]})

    def settle(self, now: datetime | None = None) -> int:
        """Let the workloads hook move every object it owns to `now`; returns writes made."""
        if self.workloads is None:
            return 0
        moment = now or self._clock()
        with self._lock:
            keys = [key for key in sorted(self._objects) if key[0] in self.workloads.kinds]
            return sum(self._run_workloads(kind_info(key[0]), key, moment) for key in keys)

    def watch(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
        resource_version: str | None = None, timeout: float | None = None,
    ) -> WatchStream:
        info = kind_info(kind)
        with self._lock:
            initial: list[WatchEvent] = []
            if resource_version in (None, "", "0"):
                cursor = self._rv
                objects = [o for (k, _, _), o in self._objects.items() if k == kind]
                for obj in sorted(objects, key=lambda o: int(o["metadata"]["resourceVersion"])):
                    if self._in_scope(info, obj, namespace) and matches(obj, label_selector):
                        initial.append(WatchEvent("ADDED", clone(obj)))
            else:
                try:
                    cursor = int(resource_version)  # type: ignore[arg-type]
                except ValueError:
                    raise Invalid(f"resourceVersion {resource_version!r} is not a resourceVersion") from None
                floor = self._floor.get(kind, 0)
                if cursor < floor:
                    raise Gone(f"too old resource version: {cursor} ({floor + 1})")
            return _MemoryWatch(self, info, namespace, label_selector, cursor, initial, timeout)

    # --- internals ---------------------------------------------------------------------
    def _find(self, info: KindInfo, name: str, namespace: str | None) -> Obj:
        obj = self._objects.get((info.kind, namespace_of(info, namespace) or "", name))
        if obj is None:
            raise NotFound(f"{describe(info, name)} not found")
        return obj

    @staticmethod
    def _valid_name(info: KindInfo, name: Any) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise Invalid(
                f"{info.kind} {name!r}: metadata.name must be a lowercase RFC 1123 subdomain "
                "(letters, digits, '-' and '.', starting and ending with a letter or digit)"
            )
        return name

    @staticmethod
    def _api_version(info: KindInfo, obj: Obj) -> str:
        given = obj.get("apiVersion")
        if given is not None and (not isinstance(given, str) or given.rpartition("/")[0] != info.group):
            raise Invalid(f"{info.kind} {obj.get('metadata', {}).get('name')!r}: apiVersion {given!r} "
                          f"is not in group {info.group or 'core'!r}; use {info.api_version!r}")
        return info.api_version

    @staticmethod
    def _in_scope(info: KindInfo, obj: Obj, namespace: str | None) -> bool:
        return namespace is None or not info.namespaced or obj["metadata"].get("namespace") == namespace

    def _update(self, info: KindInfo, current: Obj, new: Obj, *, status_only: bool, hooks: bool = True) -> Obj:
        meta, old_meta = new.get("metadata"), current["metadata"]
        if not isinstance(meta, dict):
            raise Invalid(f"{describe(info, old_meta['name'])}: metadata must be an object")
        for field in ("name", "namespace"):
            if meta.get(field, old_meta.get(field)) != old_meta.get(field):
                raise Invalid(f"{describe(info, old_meta['name'])}: metadata.{field} cannot be changed")
        if str(meta.get("resourceVersion", old_meta["resourceVersion"])) != old_meta["resourceVersion"]:
            raise Conflict(f"Operation cannot be fulfilled on {describe(info, old_meta['name'])}: {CONFLICT_MESSAGE}")
        if status_only:
            new = dict(current, status=new["status"]) if "status" in new else {k: v for k, v in current.items() if k != "status"}
        else:
            new["apiVersion"], new["kind"] = self._api_version(info, new), info.kind
            if info.status_subresource:
                new.pop("status", None)
                if "status" in current:
                    new["status"] = current["status"]
            meta = new["metadata"]
            for field in ("uid", "creationTimestamp", "generation", "namespace"):
                meta.pop(field, None)
                if field in old_meta:
                    meta[field] = old_meta[field]
            meta["resourceVersion"] = old_meta["resourceVersion"]
            if _body(new) != _body(current):
                meta["generation"] = old_meta.get("generation", 1) + 1
        if new == current:
            return clone(current)
        key = (info.kind, old_meta.get("namespace", ""), old_meta["name"])
        self._commit(info, key, current, clone(new))
        if hooks:
            self._run_workloads(info, key)
        return clone(self._objects[key])

    def _commit(self, info: KindInfo, key: tuple[str, str, str], old: Obj | None, new: Obj, *, deleted: bool = False) -> Obj:
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        if deleted:
            del self._objects[key]
        else:
            self._objects[key] = new
        kind_type: EventType = "DELETED" if deleted else "ADDED" if old is None else "MODIFIED"
        history = self._history.setdefault(info.kind, deque())
        history.append(_Record(self._rv, kind_type, old, new))
        while len(history) > self._history_size:
            self._floor[info.kind] = history.popleft().rv
        self._changed.notify_all()
        return new

    def _remove(self, info: KindInfo, current: Obj) -> None:
        meta = current["metadata"]
        key = (info.kind, meta.get("namespace", ""), meta["name"])
        gone = dict(current, metadata=dict(meta))
        self._commit(info, key, current, gone, deleted=True)

    def _collect_garbage(self, deleted: set[str]) -> None:
        """Delete the dependents of `deleted` uids that have no owner left, transitively."""
        while deleted:
            uids = {obj["metadata"]["uid"] for obj in self._objects.values()}
            orphans = []
            for obj in self._objects.values():
                owners = {r.get("uid") for r in obj["metadata"].get("ownerReferences") or () if isinstance(r, dict)}
                if owners & deleted and not owners & uids:
                    orphans.append(obj)
            for obj in orphans:
                self._remove(kind_info(obj["kind"]), obj)
            deleted = {obj["metadata"]["uid"] for obj in orphans}

    def _run_workloads(self, info: KindInfo, key: tuple[str, str, str], now: datetime | None = None) -> int:
        hook = self.workloads
        current = self._objects.get(key)
        if hook is None or current is None or info.kind not in hook.kinds:
            return 0
        status = hook.status_for(clone(current), now or self._clock())
        if status is None:
            return 0
        new = merge_patch(current, {"status": status})
        if new == current:
            return 0
        self._commit(info, key, current, new)
        return 1

    def _events_after(self, kind: str, cursor: int) -> tuple[Sequence[_Record], int]:
        """History records of `kind` after `cursor`, and the cursor to continue from."""
        floor = self._floor.get(kind, 0)
        if cursor < floor:
            raise Gone(f"too old resource version: {cursor} ({floor + 1})")
        records: list[_Record] = []
        for record in reversed(self._history.get(kind, ())):
            if record.rv <= cursor:
                break
            records.append(record)
        records.reverse()
        return records, self._rv


def _kind_of(obj: Any) -> KindInfo:
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise Invalid("an object must be a JSON object with a `kind` field (e.g. kind: Rollout)")
    return kind_info(obj["kind"])


def _body(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class _MemoryWatch:
    """One watch on an InMemoryCluster: thread-safe close(), resumable resource_version."""

    def __init__(self, cluster: InMemoryCluster, info: KindInfo, namespace: str | None,
                 selector: dict[str, str] | None, cursor: int, initial: list[WatchEvent],
                 timeout: float | None) -> None:
        self._cluster, self._info, self._namespace, self._selector = cluster, info, namespace, selector
        self._cursor, self._pending = cursor, deque(initial)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        self.resource_version: str | None = str(cursor)

    def __iter__(self) -> _MemoryWatch:
        return self

    def __next__(self) -> WatchEvent:
        cluster = self._cluster
        with cluster._changed:
            while not self._closed:
                if self._pending:
                    event = self._pending.popleft()
                    if not self._pending:
                        self.resource_version = str(self._cursor)
                    else:
                        self.resource_version = event.object["metadata"]["resourceVersion"]
                    return event
                records, self._cursor = cluster._events_after(self._info.kind, self._cursor)
                self._pending.extend(e for r in records if (e := self._translate(r)) is not None)
                if self._pending:
                    continue
                self.resource_version = str(self._cursor)
                remaining = None if self._deadline is None else self._deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                cluster._changed.wait(remaining)
        raise StopIteration

    def _translate(self, record: _Record) -> WatchEvent | None:
        """The event a filtered watcher sees: objects entering or leaving the filter are ADDED/DELETED."""
        def seen(obj: Obj | None) -> bool:
            return obj is not None and self._in_scope(obj) and matches(obj, self._selector)

        now_in = record.type != "DELETED" and seen(record.new)
        was_in = seen(record.old)
        if record.type == "DELETED":
            return WatchEvent("DELETED", clone(record.new)) if was_in else None
        if now_in:
            return WatchEvent("MODIFIED" if was_in else "ADDED", clone(record.new))
        return WatchEvent("DELETED", clone(record.new)) if was_in else None

    def _in_scope(self, obj: Obj) -> bool:
        return InMemoryCluster._in_scope(self._info, obj, self._namespace)

    def close(self) -> None:
        with self._cluster._changed:
            self._closed = True
            self._cluster._changed.notify_all()
