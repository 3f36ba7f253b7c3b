"""One test's own corner of the shared real cluster: its namespaces, created and deleted.

The contract tests name namespaces ("team", "one", "default", ...) as if the cluster were
theirs. On the real kube-apiserver the control plane is shared by the whole session, so
`Isolated` wraps a KubeCluster and maps each namespace a test names to a namespace of its
own (`<prefix>-<name>`), created on first use, and maps it back in every answer; lists
and watches over all namespaces see only this test's namespaces. Cluster-scoped objects
the test created are deleted at `close()`, with its namespaces (the real namespace
controller then deletes what is in them, asynchronously).

Only namespace names are translated (in objects and in error messages): every answer,
error and watch event is the real server's.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.cluster import ClusterError, NotFound, Obj, Patch, WatchEvent, WatchStream
from rollouts.platform.kinds import kind_info


class Isolated:
    """The Cluster port over `inner`, in namespaces only this test uses."""

    def __init__(self, inner: KubeCluster, plane: ControlPlane) -> None:
        self.inner, self._plane = inner, plane
        self.prefix = f"t{secrets.token_hex(3)}-"
        self._namespaces: set[str] = set()
        self._cluster_scoped: set[tuple[str, str]] = set()

    # --- names -----------------------------------------------------------------------------
    def real(self, namespace: str | None) -> str:
        """The real namespace for the one the test names (None is "default", as in the port)."""
        name = f"{self.prefix}{namespace or 'default'}"
        if name not in self._namespaces:
            self._plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            self._namespaces.add(name)
        return name

    def _ns(self, kind: str, namespace: str | None) -> str | None:
        return self.real(namespace) if kind_info(kind).namespaced else namespace

    def _inward(self, obj: Obj) -> Obj:
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            return obj
        info = kind_info(obj["kind"])
        out = dict(obj)
        meta = dict(out.get("metadata") or {})
        if info.namespaced:
            meta["namespace"] = self.real(meta.get("namespace"))
        out["metadata"] = meta
        involved = out.get("involvedObject")
        if info.kind == "Event" and isinstance(involved, dict) and involved.get("namespace"):
            out["involvedObject"] = dict(involved, namespace=self.real(involved["namespace"]))
        return out

    def outward(self, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and namespace.startswith(self.prefix):
            meta["namespace"] = namespace[len(self.prefix):]
        involved = obj.get("involvedObject")
        if isinstance(involved, dict) and str(involved.get("namespace", "")).startswith(self.prefix):
            involved["namespace"] = involved["namespace"][len(self.prefix):]
        return obj

    @contextlib.contextmanager
    def _answers(self) -> Iterator[None]:
        """The real server's error, its message naming the namespaces as the test does."""
        try:
            yield
        except ClusterError as err:
            if self.prefix not in str(err):
                raise
            mapped = type(err)(str(err).replace(self.prefix, ""))
            mapped.code, mapped.reason = err.code, err.reason
            raise mapped from None

    def mine(self, obj: Obj) -> bool:
        if not kind_info(str(obj.get("kind"))).namespaced:
            return True
        return str((obj.get("metadata") or {}).get("namespace", "")).startswith(self.prefix)

    # --- the port --------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        with self._answers():
            return self.outward(self.inner.get(kind, name, self._ns(kind, namespace)))

    def list(self, kind: str, namespace: str | None = None, *,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        where = None if namespace is None else self._ns(kind, namespace)
        return [self.outward(o) for o in self.inner.list(kind, where, label_selector=label_selector) if self.mine(o)]

    def create(self, obj: Obj) -> Obj:
        with self._answers():
            created = self.inner.create(self._inward(obj))
        if not kind_info(created["kind"]).namespaced:
            self._cluster_scoped.add((created["kind"], created["metadata"]["name"]))
        return self.outward(created)

    def patch(self, kind: str, name: str, namespace: str | None, patch: Patch, *, patch_type: str = "merge") -> Obj:
        with self._answers():
            return self.outward(self.inner.patch(kind, name, self._ns(kind, namespace), patch, patch_type=patch_type))

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        with self._answers():
            return self.outward(self.inner.patch_status(kind, name, self._ns(kind, namespace), patch))

    def replace(self, obj: Obj) -> Obj:
        with self._answers():
            return self.outward(self.inner.replace(self._inward(obj)))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        with self._answers():
            self.inner.delete(kind, name, self._ns(kind, namespace))

    def watch(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
              resource_version: str | None = None, timeout: float | None = None) -> WatchStream:
        where = None if namespace is None else self._ns(kind, namespace)
        return _Mine(self, self.inner.watch(kind, where, label_selector=label_selector,
                                            resource_version=resource_version, timeout=timeout))

    # --- clean-up --------------------------------------------------------------------------
    def close(self) -> None:
        for kind, name in sorted(self._cluster_scoped):
            try:
                self.inner.delete(kind, name)
            except NotFound:
                pass
        with self._plane.session() as http:
            for namespace in sorted(self._namespaces):
                http.delete(f"{self._plane.url}/api/v1/namespaces/{namespace}", timeout=30)


class _Mine:
    """A watch over all namespaces narrowed to the test's own (answers mapped back)."""

    def __init__(self, owner: Isolated, inner: WatchStream) -> None:
        self._owner, self._inner = owner, inner

    @property
    def resource_version(self) -> str | None:
        return self._inner.resource_version

    def __iter__(self) -> Iterator[WatchEvent]:
        return self

    def __next__(self) -> WatchEvent:
        while True:
            event = next(self._inner)
            if self._owner.mine(event.object):
                return WatchEvent(event.type, self._owner.outward(event.object))

    def close(self) -> None:
        self._inner.close()
