"""KubeCluster: the Cluster port over the official `kubernetes` client (the only importer of it).

Rules:
- Every call goes through `ApiClient.call_api` on the REST path that rollouts.platform.kinds gives,
  with an explicit Content-Type, and comes back as a plain dict (json.loads; no typed
  models). This sidesteps the client's mislabelling of JSON-patch lists on custom
  objects (it sends them as application/merge-patch+json, which a real API server rejects
  with 422) and its `create_namespaced_custom_object` returning None on a 200.
- Status goes through the status subresource (`.../status`). A body without apiVersion
  gets the kind's (the port defaults it; the real server fails custom resources without).
- Errors are typed: 404 NotFound; 409 AlreadyExists or Conflict by the Status reason;
  410 Gone; 401/403 Forbidden; 400/415/422 Invalid; 429, 5xx and connection failures
  Unavailable (keeping the answer's code, 503 when there was none). Retrying is the
  shells' job (tenacity), not this module's.
- `watch` lists first when given no resourceVersion (ADDED for each object, then watches
  from the list's resourceVersion), asks for bookmarks, reconnects on its own until
  `timeout`, and keeps `.resource_version` at the resume point. A 410 (an ERROR event or
  an HTTP status) is `Gone`.
- Configuration: an explicit ApiClient; else an explicit kubeconfig (optional context);
  else in-cluster; else the default kubeconfig.
Size: over 300 lines because one adapter class over the client, its watch stream and the
  request helpers it alone uses.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from rollouts.kube.errors import api_error as _error
from rollouts.platform.cluster import (
    ClusterError,
    Invalid,
    Obj,
    Patch,
    Unavailable,
    WatchEvent,
    WatchStream,
    check_patch_type,
    check_status_patch,
    namespace_of,
)
from rollouts.platform.kinds import KindInfo, kind_info

__all__ = ["KubeCluster"]

_CONTENT_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}
WATCH_CHUNK_SECONDS = 300


def load_api_client(kubeconfig: str | Path | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient from a kubeconfig (if given), else in-cluster, else ~/.kube/config."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None:
            try:
                config.load_incluster_config(client_configuration=configuration)
                return client.ApiClient(configuration)
            except config.ConfigException:
                pass
        config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None, context=context,
                                client_configuration=configuration, persist_config=False)
        impersonate = _impersonation(kubeconfig, context)
    except (config.ConfigException, OSError) as err:
        where = kubeconfig or "~/.kube/config"
        raise ClusterError(f"no usable Kubernetes configuration: not in a cluster, and {where}: {err}; "
                           "pass --kubeconfig (and --context) or run inside a pod") from None
    api = client.ApiClient(configuration)
    for header, value in impersonate.items():
        api.set_default_header(header, value)
    return api


def _impersonation(kubeconfig: str | Path | None, context: str | None) -> dict[str, str]:
    """The Impersonate-* headers for the user entry's `as` / `as-groups`, as kubectl sends them.

    The Python client ignores these kubeconfig fields; without them a kubeconfig meant to act
    as a ServiceAccount would silently act with the caller's own (broader) rights.
    """
    contexts, current = config.list_kube_config_contexts(config_file=str(kubeconfig) if kubeconfig else None)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    user_name = ((chosen or {}).get("context") or {}).get("user")
    # KUBECONFIG may name several files (joined by os.pathsep), merged as kubectl merges them: first wins
    paths = [str(kubeconfig)] if kubeconfig else config.KUBE_CONFIG_DEFAULT_LOCATION.split(os.pathsep)
    users = [u for path in paths if path and Path(path).expanduser().is_file()
             for u in (yaml.safe_load(Path(path).expanduser().read_text()) or {}).get("users") or []]
    user = next((u.get("user") or {} for u in users if u.get("name") == user_name), {})
    headers: dict[str, str] = {}
    if user.get("as"):
        headers["Impersonate-User"] = str(user["as"])
    groups = user.get("as-groups") or []
    if len(groups) > 1:
        raise config.ConfigException(f"user {user_name!r}: only one `as-groups` entry is supported, got {groups}")
    if groups:
        headers["Impersonate-Group"] = str(groups[0])
    return headers


class KubeCluster:
    """The Cluster port on a real (or embedded) Kubernetes API server."""

    def __init__(self, api_client: client.ApiClient | None = None, *, kubeconfig: str | Path | None = None,
                 context: str | None = None, request_timeout: float = 30.0) -> None:
        self.api_client = api_client or load_api_client(kubeconfig, context)
        self.request_timeout = request_timeout

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the port --------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        info = kind_info(kind)
        return self._object(info, self._request("GET", info.object_path(namespace_of(info, namespace), name)))

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
    ) -> list[Obj]:
        info = kind_info(kind)
        listing = self._request("GET", info.collection_path(namespace), query=_selector(label_selector))
        return [self._object(info, item) for item in listing.get("items") or []]

    def create(self, obj: Obj) -> Obj:
        info, namespace, _ = self._identify(obj, need_name=False)
        return self._object(info, self._request("POST", info.collection_path(namespace), body=_versioned(info, obj)))

    def patch(self, kind: str, name: str, namespace: str | None, patch: Patch,
              *, patch_type: str = "merge") -> Obj:
        info = kind_info(kind)
        check_patch_type(patch, patch_type)
        path = info.object_path(namespace_of(info, namespace), name)
        return self._object(info, self._request("PATCH", path, body=patch, content_type=_CONTENT_TYPES[patch_type]))

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> Obj:
        info = kind_info(kind)
        check_status_patch(info, name, patch)
        path = info.object_path(namespace_of(info, namespace), name, "status")
        return self._object(info, self._request("PATCH", path, body=patch, content_type=_CONTENT_TYPES["merge"]))

    def replace(self, obj: Obj) -> Obj:
        info, namespace, name = self._identify(obj, need_name=True)
        return self._object(info, self._request("PUT", info.object_path(namespace, name), body=_versioned(info, obj)))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        info = kind_info(kind)
        self._request("DELETE", info.object_path(namespace_of(info, namespace), name),
                      body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})

    def watch(self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None,
              resource_version: str | None = None, timeout: float | None = None) -> WatchStream:
        return _KubeWatch(self, kind_info(kind), namespace, label_selector, resource_version, timeout)

    # --- plumbing --------------------------------------------------------------------------
    def _identify(self, obj: Obj, *, need_name: bool) -> tuple[KindInfo, str | None, str]:
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            raise Invalid("an object must be a JSON object with a `kind` field (e.g. kind: Rollout)")
        info = kind_info(obj["kind"])
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if need_name and not isinstance(name, str):
            raise Invalid(f"{info.kind}: metadata.name is required")
        return info, namespace_of(info, meta.get("namespace")), name or ""

    @staticmethod
    def _object(info: KindInfo, obj: Any) -> Obj:
        """Lists of built-in kinds omit each item's kind/apiVersion; put them back."""
        if isinstance(obj, dict):
            obj.setdefault("kind", info.kind)
            obj.setdefault("apiVersion", info.api_version)
        return obj

    def _request(self, method: str, path: str, *, query: Sequence[tuple[str, str]] | None = None, body: Any = None,
                 content_type: str = "application/json", stream: bool = False,
                 timeout: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        api = self.api_client
        method, url, headers, body, _ = api.param_serialize(
            method=method, resource_path=path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"])
        try:
            response = api.call_api(method, url, header_params=headers, body=body,
                                    _request_timeout=timeout or self.request_timeout)
        except urllib3.exceptions.HTTPError as err:
            raise Unavailable(f"cannot reach the Kubernetes API at {api.configuration.host}: {err}") from None
        except ApiException as err:
            raise _error(err.status or 0, err.body, str(err.reason)) from None
        if stream and 200 <= response.status <= 299:
            return response.response
        try:
            data = response.read()
        except urllib3.exceptions.HTTPError as err:
            raise Unavailable(f"the Kubernetes API at {api.configuration.host} dropped the answer: {err}") from None
        if not 200 <= response.status <= 299:
            raise _error(response.status, data, response.reason)
        return json.loads(data) if data else None

    def _watch_call(self, *, info: KindInfo, namespace: str | None, label_selector: dict[str, str] | None,
                    resource_version: str | None, timeout_seconds: int) -> Any:
        """One watch request, answered as a raw urllib3 stream."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_seconds))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        return self._request("GET", info.collection_path(namespace), query=query + _selector(label_selector),
                             stream=True, timeout=(self.request_timeout, timeout_seconds + self.request_timeout))


def _versioned(info: KindInfo, obj: Obj) -> Obj:
    """`obj` with its apiVersion: the port defaults it, a real server answers a custom
    resource without one with a 500 ("Object 'apiVersion' is missing")."""
    return obj if obj.get("apiVersion") else {"apiVersion": info.api_version, **obj}


def _shutdown(response: Any) -> None:
    """Unblock a thread reading `response` (a urllib3 response) by shutting its socket."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _selector(label_selector: dict[str, str] | None) -> list[tuple[str, str]]:
    if not label_selector:
        return []
    return [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(label_selector.items())))]


class _KubeWatch:
    """A closable, resumable watch; reconnects every WATCH_CHUNK_SECONDS until `timeout`."""

    def __init__(self, cluster: KubeCluster, info: KindInfo, namespace: str | None,
                 selector: dict[str, str] | None, resource_version: str | None, timeout: float | None) -> None:
        self._cluster, self._info, self._namespace, self._selector = cluster, info, namespace, selector
        self.resource_version: str | None = None if resource_version in (None, "", "0") else resource_version
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._watch = k8s_watch.Watch()
        self._closed = threading.Event()
        self._response: Any = None
        self._events = self._generate()

    def __iter__(self) -> _KubeWatch:
        return self

    def __next__(self) -> WatchEvent:
        if self._closed.is_set():
            raise StopIteration
        try:
            return next(self._events)
        except ApiException as err:
            if self._closed.is_set():
                raise StopIteration from None
            raise _error(err.status or 0, err.body, str(err.reason)) from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            if self._closed.is_set():
                raise StopIteration from None
            raise Unavailable(f"the watch on {self._info.resource} broke: {err}") from None
        except ClusterError:
            if self._closed.is_set():
                raise StopIteration from None
            raise

    def close(self) -> None:
        self._closed.set()
        self._watch.stop()
        _shutdown(self._response)
        try:
            self._events.close()
        except ValueError:  # running in another thread: the shut socket ends it there
            pass

    def _open(self, *, resource_version: str | None = None, timeout_seconds: int = WATCH_CHUNK_SECONDS,
              watch: bool = True, _preload_content: bool = False) -> Any:  # Watch reads what it returns
        """One watch request, for kubernetes.watch.Watch; a close() racing with it still wins."""
        self._response = self._cluster._watch_call(
            info=self._info, namespace=self._namespace, label_selector=self._selector,
            resource_version=resource_version, timeout_seconds=timeout_seconds)
        if self._closed.is_set():
            _shutdown(self._response)
        return self._response

    def _generate(self) -> Any:
        info = self._info
        must_ask = True  # timeout=0 still asks once (the API's minimum is 1 s), unless it just listed
        if self.resource_version is None:
            must_ask = False
            listing = self._cluster._request("GET", info.collection_path(self._namespace),
                                             query=_selector(self._selector))
            items = listing.get("items") or []
            if all(str(i["metadata"].get("resourceVersion", "")).isdigit() for i in items):
                items.sort(key=lambda i: int(i["metadata"]["resourceVersion"]))
            listed = listing["metadata"]["resourceVersion"]
            for index, item in enumerate(items, start=1):  # resume from the list's version after the last
                self.resource_version = listed if index == len(items) else item["metadata"].get("resourceVersion")
                yield WatchEvent("ADDED", KubeCluster._object(info, item))
            self.resource_version = listed
        while not self._closed.is_set():
            remaining = None if self._deadline is None else self._deadline - time.monotonic()
            if remaining is not None and remaining <= 0 and not must_ask:
                return
            must_ask = False
            seconds = (WATCH_CHUNK_SECONDS if remaining is None
                       else max(1, min(WATCH_CHUNK_SECONDS, math.ceil(remaining))))
            stream = self._watch.stream(self._open, resource_version=self.resource_version, timeout_seconds=seconds)
            try:
                for raw in stream:
                    if not isinstance(raw, dict):
                        continue
                    obj = raw.get("raw_object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion")
                    if raw["type"] == "BOOKMARK":
                        self.resource_version = version or self.resource_version
                    elif raw["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.resource_version = version or self.resource_version
                        yield WatchEvent(raw["type"], KubeCluster._object(info, obj))
            finally:
                stream.close()
