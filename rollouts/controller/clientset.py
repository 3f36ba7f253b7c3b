"""The Cluster port, counted: every API request the controller makes, by verb and outcome.

Rules (Argo's instrumented clientset, argo-rollouts.md §8):
- `MeteredCluster(inner, metrics)` is a Cluster: each call goes to `inner` unchanged and
  is counted in `controller_clientset_k8s_request_total{kind,namespace,name,verb,
  status_code}`: 201 for a create, 200 for any other success, the error's own code
  (409, 410, 503, ...) for a ClusterError, which is raised on unchanged. So an API fault
  the shells retried away (a 409 read again, a 5xx retried by tenacity) is still data.
- `verb` is the port's method name (get, list, create, patch, patch_status, replace,
  delete, watch); `name` is empty for list, watch and delete, and for Events (each has a new name). A
  watch is counted when it is opened, and again if its stream raises (a 410 Gone mid-stream).
- Bounded: an object the controller deletes loses its named series (ControllerMetrics.forget_requests;
  the delete itself stays counted, by kind), and so does a Rollout or AnalysisRun found gone
  (ControllerMetrics.forget).
- Nothing is decided here and nothing is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rollouts.controller.metrics import ControllerMetrics
from rollouts.platform.cluster import Cluster, ClusterError, Obj, Patch, WatchEvent, WatchStream

__all__ = ["MeteredCluster"]

T = TypeVar("T")


class MeteredCluster:
    def __init__(self, inner: Cluster, metrics: ControllerMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def _count(self, verb: str, kind: str, namespace: str | None, name: str, call: Callable[[], T],
               *, ok: str = "200") -> T:
        try:
            result = call()
        except ClusterError as err:
            self._metrics.count_request(kind, namespace or "", name, verb, str(err.code))
            raise
        self._metrics.count_request(kind, namespace or "", name, verb, ok)
        return result

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return self._count("get", kind, namespace, name, lambda: self.inner.get(kind, name, namespace))

    def list(self, kind: str, namespace: str | None = None, *,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        return self._count("list", kind, namespace, "",
                           lambda: self.inner.list(kind, namespace, label_selector=label_selector))

    def create(self, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        return self._count("create", str(obj.get("kind", "")), meta.get("namespace"), str(meta.get("name", "")),
                           lambda: self.inner.create(obj), ok="201")

    def patch(self, kind: str, name: str, namespace: str | None, patch: Patch, *, patch_type: str = "merge") -> Obj:
        return self._count("patch", kind, namespace, name,
                           lambda: self.inner.patch(kind, name, namespace, patch, patch_type=patch_type))

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        return self._count("patch_status", kind, namespace, name,
                           lambda: self.inner.patch_status(kind, name, namespace, patch))

    def replace(self, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        return self._count("replace", str(obj.get("kind", "")), meta.get("namespace"), str(meta.get("name", "")),
                           lambda: self.inner.replace(obj))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self._count("delete", kind, namespace, "", lambda: self.inner.delete(kind, name, namespace))
        self._metrics.forget_requests(kind, namespace or "", name)  # gone: its series go (its name never returns)

    def watch(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
              resource_version: str | None = None, timeout: float | None = None) -> WatchStream:
        stream = self._count("watch", kind, namespace, "", lambda: self.inner.watch(
            kind, namespace, label_selector=label_selector, resource_version=resource_version, timeout=timeout))
        return _MeteredStream(self, kind, namespace, stream)


class _MeteredStream:
    def __init__(self, owner: MeteredCluster, kind: str, namespace: str | None, inner: WatchStream) -> None:
        self._owner, self._kind, self._namespace, self._inner = owner, kind, namespace, inner

    @property
    def resource_version(self) -> str | None:
        return self._inner.resource_version

    def __iter__(self) -> _MeteredStream:
        return self

    def __next__(self) -> WatchEvent:
        try:
            return next(self._inner)
        except ClusterError as err:
            self._owner._metrics.count_request(self._kind, self._namespace or "", "", "watch", str(err.code))
            raise

    def close(self) -> None:
        self._inner.close()
