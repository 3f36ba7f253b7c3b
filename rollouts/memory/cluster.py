"""InMemoryCluster: the Cluster port in one process, for local mode, the demo and tests.

Rules and invariants (on top of the port's, see rollouts.platform.cluster):
- One re-entrant lock guards everything; every write goes through `_commit`, which
  records the change in the ChangeLog (rollouts.memory.watchlog: the resourceVersion counter,
  the bounded per-kind history, the watch streams). Stored objects are never mutated in
  place, so history can share them; callers only ever see deep copies.
- `metadata.uid`, `creationTimestamp` (from the injected clock) and `generation` are set
  by the cluster; names, generateName, generation, empty metadata maps, unconditional
  updates and Events follow the real API server (rollouts.memory.apirules). With
  `prune=True` our CRDs' kinds lose the fields their schema does not know on every write
  (rollouts.memory.pruning), as on a real server; the default keeps them, so local mode and
  the controller's tests still reach its unknown-field Problems.
- The `workloads` hook (rollouts.memory.workloads) stands in for the ReplicaSet controller and
  kubelet: after a write to a ReplicaSet, or to or deleting one of its Pods, the
  ReplicaSet's pods are created, deleted or made Ready and its status written, each
  through `_commit` like any other write (watch events included). `settle(now)` lets
  delayed readiness happen on a stepped clock, with no threads. Pods are indexed by
  owner uid, so a ReplicaSet finds its own without a scan.
- A delete removes, transitively, the objects left with no live owner (the garbage
  collector's background cascade). Every object is indexed by the uids its ownerReferences
  name, and live uids are kept in a set, so a delete looks only at the deleted object's
  dependents, never at the whole store (10,000 Rollouts hold over 100,000 objects).
Size: over 300 lines because the in-memory API server's storage rules (resourceVersion,
  status apart, generation, finalizer-free delete) share one lock and one commit path.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rollouts.memory import apirules, pruning
from rollouts.memory.watchlog import ChangeLog, LogStream
from rollouts.memory.workloads import Dependents, ReplicaSets, Workloads, controller_of, owner_uids
from rollouts.platform.cluster import (
    CONFLICT_MESSAGE,
    AlreadyExists,
    Conflict,
    Invalid,
    NotFound,
    Obj,
    Patch,
    WatchEvent,
    WatchStream,
    check_patch_type,
    check_status_patch,
    describe,
    matches,
    namespace_of,
)
from rollouts.platform.kinds import KindInfo, kind_info
from rollouts.platform.patches import PatchError, clone, json_patch, merge_patch
from rollouts.platform.times import format_time

__all__ = ["InMemoryCluster"]

_timestamp = format_time


class InMemoryCluster:
    """A thread-safe, in-process Kubernetes API with the port's semantics."""

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, workloads: Workloads | bool = True,
        history: int = 1000, prune: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self._log = ChangeLog(threading.Condition(self._lock), size=history)
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._clock = clock or (lambda: datetime.now(UTC))
        self._dependents = Dependents()  # the workloads' pods by owner uid
        self._owned = Dependents()  # every object by the uids its ownerReferences name
        self._uids: set[str] = set()  # the uids of the stored objects
        self._prune = prune
        self.workloads: Workloads | None = None
        if workloads is True:
            self.workloads = ReplicaSets()
        elif workloads is not False:
            self.workloads = workloads

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion written (what a list response carries)."""
        with self._lock:
            return str(self._log.version)

    # --- reads -----------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        info = kind_info(kind)
        with self._lock:
            return _copy(self._find(info, name, namespace))

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
    ) -> list[Obj]:
        info = kind_info(kind)
        with self._lock:
            found = [obj for (k, ns, _), obj in sorted(self._objects.items())
                     if k == kind and (namespace is None or not info.namespaced or ns == namespace)
                     and matches(obj, label_selector)]
            return [clone(obj) for obj in found]

    # --- writes ----------------------------------------------------------------------
    def create(self, obj: Obj) -> Obj:
        info = _kind_of(obj)
        new: Obj = {"apiVersion": self._api_version(info, obj), "kind": info.kind}
        new.update((k, clone(v)) for k, v in obj.items() if k not in new)
        meta: Any = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Invalid(f"{info.kind}: metadata must be an object")
        _check_maps(info, meta)
        with self._lock:
            if not meta.get("name") and isinstance(meta.get("generateName"), str):
                meta["name"] = apirules.generated_name(info, meta["generateName"], self._log.version + 1)
            name = self._valid_name(info, meta.get("name"))
            ns = namespace_of(info, meta.get("namespace"))
            if ns is None:
                meta.pop("namespace", None)
            else:
                meta["namespace"] = ns
            key = (info.kind, ns or "", name)
            if key in self._objects:
                raise AlreadyExists(f"{describe(info, name)} already exists")
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_timestamp(self._clock()))
            for transient in ("resourceVersion", "deletionTimestamp", "generation"):
                meta.pop(transient, None)
            if apirules.has_generation(info):
                meta["generation"] = 1
            apirules.omit_empty(meta)
            apirules.check_owner_references(info, meta)
            apirules.check_event(info, new)
            if info.status_subresource:
                new.pop("status", None)
            stored = self._commit(info, key, None, self._pruned(info, new))
            self._run_workloads(info, key)
            return _copy(self._objects.get(key, stored))

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
                apirules.check_unconditional(info, current["metadata"]["name"], None)
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._update(info, current, new, status_only=False)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        info = kind_info(kind)
        with self._lock:
            current = self._find(info, name, namespace)
            self._remove(info, current)
            self._collect_garbage({current["metadata"]["uid"]})
            self._run_workloads(info, (info.kind, current["metadata"].get("namespace", ""), name), dependent=current)

    def settle(self, now: datetime | None = None) -> int:
        """Let the workloads hook move every object it keeps to `now` (pods made Ready after
        their delay); returns how many of those objects (ReplicaSets) had their status moved."""
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

        def wanted(obj: Obj) -> bool:
            return self._in_scope(info, obj, namespace) and matches(obj, label_selector)

        with self._lock:
            initial: list[WatchEvent] = []
            if resource_version in (None, "", "0"):
                cursor = self._log.version
                objects = [o for (k, _, _), o in self._objects.items() if k == kind and wanted(o)]
                for obj in sorted(objects, key=lambda o: int(o["metadata"]["resourceVersion"])):
                    initial.append(WatchEvent("ADDED", clone(obj)))
            else:
                try:
                    cursor = int(str(resource_version))
                except ValueError:
                    raise Invalid(f"resourceVersion {resource_version!r} is not a resourceVersion") from None
                self._log.check(kind, cursor)
            return LogStream(self._log, kind, wanted=wanted, cursor=cursor, initial=initial, timeout=timeout)

    # --- internals ---------------------------------------------------------------------
    def _find(self, info: KindInfo, name: str, namespace: str | None) -> Obj:
        obj = self._objects.get((info.kind, namespace_of(info, namespace) or "", name))
        if obj is None:
            raise NotFound(f"{describe(info, name)} not found")
        return obj

    @staticmethod
    def _valid_name(info: KindInfo, name: Any) -> str:
        return apirules.check_name(info, name)

    @staticmethod
    def _api_version(info: KindInfo, obj: Obj) -> str:
        given = obj.get("apiVersion")
        if given is not None and (not isinstance(given, str) or given.rpartition("/")[0] != info.group):
            raise Invalid(f"{info.kind} {obj.get('metadata', {}).get('name')!r}: apiVersion {given!r} "
                          f"is not in group {info.group or 'core'!r}; use {info.api_version!r}")
        return info.api_version

    def _pruned(self, info: KindInfo, obj: Obj) -> Obj:
        return pruning.prune(info.kind, obj) if self._prune else obj

    @staticmethod
    def _in_scope(info: KindInfo, obj: Obj, namespace: str | None) -> bool:
        return namespace is None or not info.namespaced or obj["metadata"].get("namespace") == namespace

    def _update(self, info: KindInfo, current: Obj, new: Obj, *, status_only: bool, hooks: bool = True) -> Obj:
        meta, old_meta = new.get("metadata"), current["metadata"]
        if not isinstance(meta, dict):
            raise Invalid(f"{describe(info, old_meta['name'])}: metadata must be an object")
        _check_maps(info, meta)
        for field in ("name", "namespace"):
            if meta.get(field, old_meta.get(field)) != old_meta.get(field):
                raise Invalid(f"{describe(info, old_meta['name'])}: metadata.{field} cannot be changed")
        if str(meta.get("resourceVersion", old_meta["resourceVersion"])) != old_meta["resourceVersion"]:
            raise Conflict(f"Operation cannot be fulfilled on {describe(info, old_meta['name'])}: {CONFLICT_MESSAGE}")
        if status_only:
            new = (dict(current, status=new["status"]) if "status" in new
                   else {k: v for k, v in current.items() if k != "status"})
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
            apirules.omit_empty(meta)
            apirules.check_owner_references(info, meta)
            new = self._pruned(info, new)  # before generation: a dropped field changes nothing
            if apirules.generation_moved(info, current, new):
                new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        new = self._pruned(info, new)
        if new == current:
            return _copy(current)
        key = (info.kind, old_meta.get("namespace", ""), old_meta["name"])
        self._commit(info, key, current, clone(new))
        if hooks:
            self._run_workloads(info, key)
        return _copy(self._objects[key])

    def _commit(
        self, info: KindInfo, key: tuple[str, str, str], old: Obj | None, new: Obj, *, deleted: bool = False,
    ) -> Obj:
        if deleted:
            del self._objects[key]
            self._uids.discard(new["metadata"].get("uid"))
        else:
            self._objects[key] = new
            self._uids.add(new["metadata"].get("uid"))
        self._owned.moved(key, old, None if deleted else new)
        if self.workloads is not None and info.kind == self.workloads.dependent:
            self._dependents.moved(key, old, None if deleted else new)
        self._log.record(info.kind, "DELETED" if deleted else "ADDED" if old is None else "MODIFIED", old, new)
        return new

    def _remove(self, info: KindInfo, current: Obj) -> None:
        meta = current["metadata"]
        key = (info.kind, meta.get("namespace", ""), meta["name"])
        gone = dict(current, metadata=dict(meta))
        self._commit(info, key, current, gone, deleted=True)

    def _collect_garbage(self, deleted: set[str]) -> None:
        """Delete the dependents of `deleted` uids that have no owner left, transitively."""
        while deleted:
            orphans = []
            for key in sorted({key for uid in deleted for key in self._owned.keys(uid)}):
                obj = self._objects.get(key)
                if obj is not None and not any(uid in self._uids for uid in owner_uids(obj)):
                    orphans.append(obj)
            for obj in orphans:
                self._remove(kind_info(obj["kind"]), obj)
            deleted = {obj["metadata"]["uid"] for obj in orphans}

    def _run_workloads(self, info: KindInfo, key: tuple[str, str, str], now: datetime | None = None, *,
                       dependent: Obj | None = None) -> int:
        """Let the hook sync the workload at `key` (or, for a dependent, its owner); returns 1
        when the workload's status moved, else 0."""
        hook = self.workloads
        if hook is None:
            return 0
        if info.kind == hook.dependent:  # a pod written or deleted: its ReplicaSet looks again
            ref = controller_of(dependent if dependent is not None else self._objects.get(key), hook.kinds)
            if ref is None:
                return 0
            info, key = kind_info(ref[0]), (ref[0], key[1], ref[1])
            if (self._objects.get(key) or {}).get("metadata", {}).get("uid") != ref[2]:
                return 0
        current = self._objects.get(key)
        if current is None or info.kind not in hook.kinds:
            return 0
        moment = now or self._clock()
        dep_info = kind_info(hook.dependent)
        owned = self._dependents.keys(current["metadata"]["uid"])
        result = hook.sync(clone(current), [clone(self._objects[k]) for k in owned], moment)
        namespace = key[1]
        for name in result.delete:
            found = self._objects.get((dep_info.kind, namespace, name))
            if found is not None:
                self._remove(dep_info, found)
        for name, status in result.status_of:
            dep_key = (dep_info.kind, namespace, name)
            if (found := self._objects.get(dep_key)) is not None:
                self._commit(dep_info, dep_key, found, dict(found, status=clone(status)))
        for doc in result.create:
            self._add_dependent(dep_info, doc, moment)
        if result.status is None:
            return 0
        new = merge_patch(current, {"status": result.status})
        if new == current:
            return 0
        self._commit(info, key, current, new)
        return 1

    def _add_dependent(self, info: KindInfo, doc: Obj, moment: datetime) -> None:
        """Store a dependent the hook made, status included (the kubelet writes pod status)."""
        new = clone(doc)
        meta = new["metadata"]
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_timestamp(moment))
        if apirules.has_generation(info):
            meta["generation"] = 1
        key = (info.kind, meta.get("namespace", ""), self._valid_name(info, meta.get("name")))
        if key not in self._objects:
            self._commit(info, key, None, new)


def _kind_of(obj: Any) -> KindInfo:
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise Invalid("an object must be a JSON object with a `kind` field (e.g. kind: Rollout)")
    return kind_info(obj["kind"])


def _check_maps(info: KindInfo, meta: Obj) -> None:
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise Invalid(f"{info.kind} {meta.get('name')!r}: metadata.{field} must map strings to strings "
                          "(quote numbers and booleans, e.g. version: \"2\")")


def _copy(obj: Obj) -> Obj:
    copied: Obj = clone(obj)
    return copied
