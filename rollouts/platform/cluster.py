"""The Cluster port: the protocol, its errors and watch events, shared by both adapters.

Adapters: `InMemoryCluster` (rollouts.memory.cluster: local mode, the demo and fast tests)
and `KubeCluster` (rollouts.kube.cluster, the official client); this module knows neither. The kinds the port
knows are in rollouts.platform.kinds; any other kind is `UnknownKind` (a ValueError).

Rules of the port (both adapters obey them; tests/adapters/test_contract.py checks it, also
on a real kube-apiserver 1.20: tests/adapters/REAL_API_DIFFERENCES.md):
- Objects are plain Kubernetes JSON dicts. Every object returned is a fresh deep copy.
- A namespaced kind with `namespace=None` means "default" for get/patch/replace/delete
  and "all namespaces" for list/watch. Cluster-scoped kinds ignore the namespace.
- Writes give the object a new `metadata.resourceVersion` (a global counter, as text).
  A merge patch or replace carrying a stale resourceVersion is `Conflict`; a replace of a
  custom resource must carry one (else `Invalid`), of a built-in kind may omit it.
- Objects are stored as the API server stores them: empty labels/annotations/owner lists
  are omitted; `metadata.generation` exists for custom resources, Deployments and
  ReplicaSets only and moves with everything but metadata (and status, for kinds with a
  status subresource); unknown fields of our CRDs' kinds are pruned, never refused; names
  and generateName prefixes are RFC 1123 subdomains; an Event's involvedObject.namespace
  is its own. Namespaces must exist on a real cluster (the in-memory one has them all).
- Kinds with a status subresource (see rollouts.platform.kinds) keep status apart: create drops
  `.status`, `patch`/`replace` cannot change it, `patch_status` changes nothing else.
- A failing JSON-patch op (including `test`) is `Invalid`, as the API server's 422 (whose
  message says only "the server rejected our request"). Use a merge patch with
  `metadata.resourceVersion` for optimistic concurrency (`Conflict`).
- `watch` yields ADDED/MODIFIED/DELETED in resourceVersion order. Without a
  resourceVersion (or with "0") it first yields ADDED for every existing object, oldest
  first, so resuming from the last event seen is always safe. A resourceVersion older
  than the kept history is `Gone`: list again and watch from there. The stream ends when
  `timeout` runs out or when `.close()` is called (from any thread); afterwards
  `.resource_version` is where to resume. `timeout=0` yields what is already there and
  ends (KubeCluster waits the API server's minimum of one second for it).
- Deleting an object deletes its dependents (objects whose ownerReferences name it) once
  none of their owners is left, transitively (cascade, as kubectl users expect). The
  in-memory cluster does it at once; a real cluster's garbage collector does it soon
  (in the background: callers that need it done poll).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rollouts.platform.kinds import KindInfo, UnknownKind

__all__ = [
    "AlreadyExists", "Cluster", "ClusterError", "Conflict", "Forbidden", "Gone",
    "Invalid", "NotFound", "Unavailable", "UnknownKind", "WatchEvent",
    "WatchStream",
]

Obj = dict[str, Any]
Patch = dict[str, Any] | list[Any]  # a merge patch (object) or a JSON patch (list of ops)
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class ClusterError(Exception):
    """Base of every error the port raises; `code`/`reason` are the API server's."""

    code = 500
    reason = "InternalError"


class NotFound(ClusterError):
    code, reason = 404, "NotFound"


class AlreadyExists(ClusterError):
    code, reason = 409, "AlreadyExists"


class Conflict(ClusterError):
    code, reason = 409, "Conflict"


class Gone(ClusterError):
    code, reason = 410, "Expired"


class Forbidden(ClusterError):
    code, reason = 403, "Forbidden"


class Invalid(ClusterError):
    code, reason = 422, "Invalid"


class Unavailable(ClusterError):
    code, reason = 503, "ServiceUnavailable"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Obj


class WatchStream(Iterator[WatchEvent], Protocol):
    @property
    def resource_version(self) -> str | None:
        """Where to resume: the resourceVersion of the last event read (or of the list it started from)."""
        ...

    def close(self) -> None: ...


class Cluster(Protocol):
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj: ...

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None
    ) -> list[Obj]: ...

    def create(self, obj: Obj) -> Obj: ...

    def patch(
        self, kind: str, name: str, namespace: str | None, patch: Patch, *, patch_type: str = "merge",
    ) -> Obj: ...

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj: ...

    def replace(self, obj: Obj) -> Obj: ...

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None: ...

    def watch(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
        resource_version: str | None = None, timeout: float | None = None,
    ) -> WatchStream: ...


# --- helpers shared by both adapters --------------------------------------------------

CONFLICT_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


def namespace_of(info: KindInfo, namespace: str | None) -> str | None:
    return (namespace or "default") if info.namespaced else None


def describe(info: KindInfo, name: str) -> str:
    return f'{info.resource} "{name}"'


def matches(obj: Obj, label_selector: dict[str, str] | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (label_selector or {}).items())


def check_status_patch(info: KindInfo, name: str, patch: Any) -> None:
    """patch_status takes an object patch {"status": {...}}; say so clearly otherwise."""
    if not info.status_subresource:
        raise Invalid(f"{info.kind} has no status subresource: write {describe(info, name)} with patch()")
    extra = sorted(set(patch) - {"status", "metadata", "spec", "apiVersion", "kind"}) if isinstance(patch, dict) else []
    if not isinstance(patch, dict) or extra:
        raise Invalid(
            f"patch_status({info.kind} {name!r}) takes an object patch like {{'status': {{...}}}}; "
            f"got top-level keys {extra}: wrap them in 'status'"
        )


def check_patch_type(patch: Any, patch_type: str) -> None:
    if patch_type == "merge" and not isinstance(patch, dict):
        raise Invalid("a merge patch must be a JSON object; pass patch_type='json' for a list of ops")
    if patch_type == "json" and not isinstance(patch, list):
        raise Invalid("a JSON patch must be a list of operations; pass patch_type='merge' for an object")
    if patch_type not in ("merge", "json"):
        raise Invalid(f"unknown patch_type {patch_type!r}: use 'merge' or 'json'")
