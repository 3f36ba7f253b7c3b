"""The embedded API server: any Cluster (normally an InMemoryCluster) over Kubernetes REST.

One server serves the demo's second terminal, a controller restarted in a crash test, and
the KubeCluster contract tests. Standard library only (ThreadingHTTPServer).

Rules (faithful where client bugs hide):
- Paths, verbs and Status bodies are the real API server's for the kinds in
  rollouts.kinds: 201 on create, 404/409/410/422 Status objects with the real reasons
  (NotFound, AlreadyExists, Conflict, Expired, Invalid), 409 Conflict on a stale
  resourceVersion.
- PATCH is chosen by Content-Type, never by body shape: application/merge-patch+json needs
  an object (a JSON-patch list sent with it is 422, as the real server answers the
  mislabelled requests of the kubernetes client), application/json-patch+json needs a
  list (else 400), strategic merge is 415 for custom resources and treated as a merge
  patch for built-in kinds (lists replaced, not merged by key). Anything else is 415.
- `/status` writes change only status; writes to the main resource never change status
  (the Cluster enforces both).
- `?watch=true` streams newline-delimited JSON events (chunked). A too-old
  resourceVersion is a 200 stream holding one ERROR event with a 410 Expired Status, as
  the real server's watch cache does; the kubernetes client turns it into ApiException
  410. With `allowWatchBookmarks=true` a BOOKMARK carrying the resume resourceVersion is
  sent before the stream ends on `timeoutSeconds`.
- Label selectors: equality only (`a=b,c==d`); anything else is 400, never ignored.
- `close()` drops every open connection (a watcher sees its stream break, as when a real
  server goes away) and joins every thread it started.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from rollouts.cluster import Cluster, ClusterError, Conflict, Gone, WatchStream
from rollouts.kinds import KINDS, KindInfo, by_resource, groups
from rollouts.patches import PatchError, json_patch, merge_diff

__all__ = ["ApiServer", "serve"]

log = logging.getLogger(__name__)

MERGE, JSON_PATCH, STRATEGIC = (
    "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json",
)
DEFAULT_WATCH_SECONDS = 1800.0
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def status_body(code: int, reason: str, message: str, details: dict[str, str] | None = None) -> dict[str, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def parse_selector(text: str) -> dict[str, str] | None:
    if not text:
        return None
    selector: dict[str, str] = {}
    for term in text.split(","):
        key, sep, value = term.replace("==", "=").partition("=")
        if not sep or "!" in key or not key.strip():
            raise HttpError(400, "BadRequest", f"unsupported label selector term {term!r}: "
                            "this server supports only equality selectors such as app=web")
        selector[key.strip()] = value.strip()
    return selector


class ApiServer:
    """A running embedded API server; `url` is its address. Close it (or use `with`)."""

    def __init__(self, cluster: Cluster, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._streams: set[WatchStream] = set()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.api = self  # type: ignore[attr-defined]
        bound_host, bound_port = self._httpd.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"apiserver:{bound_port}", daemon=True)
        self._thread.start()

    def write_kubeconfig(self, path: str | Path, context: str = "rollouts-local", namespace: str = "default") -> Path:
        """Write a kubeconfig (plain http, no auth) whose current context is this server."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._httpd.shutdown()
        with self._lock:
            streams, connections = list(self._streams), list(self._connections)
        for stream in streams:
            stream.close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # daemon handler threads are not joined by socketserver itself
            thread.join()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()} | {thread}

    def _track(self, item: Any, collection: set[Any], add: bool) -> None:
        with self._lock:
            (collection.add if add else collection.discard)(item)


def serve(cluster: Cluster, host: str = "127.0.0.1", port: int = 0) -> ApiServer:
    """Serve `cluster` over HTTP in a daemon thread; port 0 picks a free port."""
    return ApiServer(cluster, host, port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rollouts-apiserver"
    disable_nagle_algorithm = True  # else every answer waits ~40 ms for a delayed ACK

    @property
    def api(self) -> ApiServer:
        return self.server.api  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        self.api._track(self.connection, self.api._connections, True)
        self.api._track_thread(threading.current_thread())

    def finish(self) -> None:
        self.api._track(self.connection, self.api._connections, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: a test run or the demo's terminal is no place for an access log."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing -----------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            body = self._read_body()
            discovery = _discovery(parts, self.api.url) if method == "GET" else None
            if discovery is not None:
                return self._send(200, discovery)
            info, namespace, name, sub = _route(parts)
            if method == "GET" and name is None and query.get("watch") in ("true", "1"):
                return self._watch(info, namespace, query)
            self._send(*_Verbs(self.api.cluster, info, namespace, name, sub).run(
                method, body, self.headers.get("Content-Type", ""), query))
        except HttpError as err:
            self._send(err.code, status_body(err.code, err.reason, str(err)))
        except ClusterError as err:
            self._send(err.code, status_body(err.code, err.reason, str(err)))
        except Exception as err:  # a bug or a failing Cluster: answer like the API server, log it
            log.exception("%s %s failed", method, self.path)
            self._send(500, status_body(500, "InternalError", f"an error on the server has prevented the request "
                                        f"from succeeding: {type(err).__name__}: {err}"))

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise HttpError(400, "BadRequest", f"the request body is not valid JSON: {err}") from None

    def _send(self, code: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, info: KindInfo, namespace: str | None, query: dict[str, str]) -> None:
        if query.get("fieldSelector"):
            raise HttpError(400, "BadRequest", "fieldSelector is not supported by this server")
        selector = parse_selector(query.get("labelSelector", ""))
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise HttpError(400, "BadRequest", "timeoutSeconds must be a number") from None
        stream: WatchStream | None = None
        error: ClusterError | None = None
        try:
            stream = self.api.cluster.watch(info.kind, namespace, label_selector=selector,
                                            resource_version=query.get("resourceVersion"), timeout=timeout)
        except Gone as err:
            error = err
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if stream is not None:
            self.api._track(stream, self.api._streams, True)
        try:
            try:
                for event in stream or ():
                    self._chunk({"type": event.type, "object": event.object})
            except Gone as err:
                error = err
            if error is not None:
                self._chunk({"type": "ERROR", "object": status_body(410, "Expired", str(error))})
            elif stream is not None and query.get("allowWatchBookmarks") == "true" and stream.resource_version:
                self._chunk({"type": "BOOKMARK", "object": {
                    "kind": info.kind, "apiVersion": info.api_version,
                    "metadata": {"resourceVersion": stream.resource_version}}})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            if stream is not None:
                stream.close()
                self.api._track(stream, self.api._streams, False)


def _route(parts: list[str]) -> tuple[KindInfo, str | None, str | None, str | None]:
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise HttpError(404, "NotFound", "the server could not find the requested resource")
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    info = by_resource(group, version, rest[0])
    tail = rest[1:]
    name, sub = (tail + [None, None])[:2]
    if (info is None or len(tail) > 2 or (namespace is not None and not info.namespaced)
            or (namespace is None and info.namespaced and name is not None)
            or (sub is not None and (sub != "status" or not info.status_subresource))):
        raise HttpError(404, "NotFound", "the server could not find the requested resource")
    return info, namespace, name, sub


def _discovery(parts: list[str], url: str) -> Any:
    if parts == ["version"]:
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.0-rollouts", "gitCommit": "", "gitTreeState": "clean",
                "buildDate": "2024-01-01T00:00:00Z", "goVersion": "", "compiler": "python", "platform": "linux/amd64"}
    if parts in (["healthz"], ["readyz"], ["livez"]):
        return "ok"
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": url.split("//")[1]}]}
    if parts == ["apis"]:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
             "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
            for group, versions in groups().items() if group]}
    if parts[:1] == ["api"] and len(parts) == 2 or parts[:1] == ["apis"] and len(parts) == 3:
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = []
        for info in KINDS.values():
            if (info.group, info.version) == (group, version):
                resources.append({"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                                  "kind": info.kind, "verbs": VERBS})
                if info.status_subresource:
                    resources.append({"name": f"{info.plural}/status", "singularName": "", "kind": info.kind,
                                      "namespaced": info.namespaced, "verbs": ["get", "patch", "update"]})
        if not resources:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
    return None


class _Verbs:
    """One resource request: the verb table from (method, name, subresource) to the Cluster."""

    def __init__(self, cluster: Cluster, info: KindInfo, namespace: str | None, name: str | None, sub: str | None):
        self.cluster, self.info, self.namespace, self.name, self.sub = cluster, info, namespace, name, sub

    def run(self, method: str, body: Any, content_type: str, query: dict[str, str]) -> tuple[int, Any]:
        cluster, info, name = self.cluster, self.info, self.name
        if method == "GET" and name is None:
            if query.get("fieldSelector"):
                raise HttpError(400, "BadRequest", "fieldSelector is not supported by this server")
            items = cluster.list(info.kind, self.namespace, label_selector=parse_selector(query.get("labelSelector", "")))
            rv = getattr(cluster, "resource_version", None) or max(
                (int(i["metadata"]["resourceVersion"]) for i in items), default=0)
            return 200, {"kind": f"{info.kind}List", "apiVersion": info.api_version,
                         "metadata": {"resourceVersion": str(rv)}, "items": items}
        if method == "GET":
            return 200, cluster.get(info.kind, name, self.namespace)  # type: ignore[arg-type]
        if method == "POST" and name is None and (self.namespace is not None or not info.namespaced):
            return 201, cluster.create(self._body_for(body))
        if name is None:
            raise HttpError(405, "MethodNotAllowed", f"{method} is not supported on a collection here")
        if method == "DELETE":
            found = cluster.get(info.kind, name, self.namespace)
            cluster.delete(info.kind, name, self.namespace)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": info.group, "kind": info.plural,
                                     "uid": found["metadata"].get("uid")}}
        if method == "PUT" and self.sub is None:
            return 200, cluster.replace(self._body_for(body))
        if method == "PUT":
            return 200, self._put_status(self._body_for(body))
        if method == "PATCH":
            return 200, self._patch(body, content_type.split(";")[0].strip().lower())
        raise HttpError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _body_for(self, body: Any) -> dict[str, Any]:
        info = self.info
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", f"the request body must be a {info.kind} object")
        if body.setdefault("kind", info.kind) != info.kind:
            raise HttpError(400, "BadRequest", f"the body's kind {body['kind']!r} does not match the URL ({info.kind})")
        meta = body.setdefault("metadata", {})
        if self.namespace is not None:
            if meta.setdefault("namespace", self.namespace) != self.namespace:
                raise HttpError(400, "BadRequest", "the namespace of the provided object does not match "
                                "the namespace sent on the request")
        if self.name is not None and meta.setdefault("name", self.name) != self.name:
            raise HttpError(400, "BadRequest", "the name of the object does not match the name on the URL")
        return body

    def _patch(self, body: Any, content_type: str) -> dict[str, Any]:
        info, name = self.info, self.name
        assert name is not None
        if content_type == STRATEGIC and not info.custom:
            content_type = MERGE  # an approximation: lists are replaced, not merged by key
        if content_type == MERGE:
            if not isinstance(body, dict):
                shown = json.dumps(body, separators=(",", ":"))
                raise HttpError(422, "Invalid", f' "" is invalid: patch: Invalid value: "{shown}": couldn\'t get '
                                "version/kind; json parse error: json: cannot unmarshal array into Go value of type "
                                "struct { APIVersion string; Kind string }")
            if self.sub == "status":
                return self.cluster.patch_status(info.kind, name, self.namespace,
                                                 {k: v for k, v in body.items() if k in ("status", "metadata")})
            return self.cluster.patch(info.kind, name, self.namespace, body, patch_type="merge")
        if content_type == JSON_PATCH:
            if not isinstance(body, list):
                raise HttpError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            if self.sub == "status":
                return self._retry(lambda cur: {"status": json_patch(cur, body).get("status") or {}})
            return self.cluster.patch(info.kind, name, self.namespace, body, patch_type="json")
        raise HttpError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                        f"media types include: {JSON_PATCH}, {MERGE}" + ("" if info.custom else f", {STRATEGIC}"))

    def _put_status(self, body: dict[str, Any]) -> dict[str, Any]:
        want = body["metadata"].get("resourceVersion")
        return self._retry(lambda cur: {"status": body.get("status") or {}}, want)

    def _retry(self, target: Any, resource_version: str | None = None) -> dict[str, Any]:
        """Rewrite status to target(current): a diff sent with the current rv, retried on a race."""
        for _ in range(5):
            current = self.cluster.get(self.info.kind, self.name, self.namespace)  # type: ignore[arg-type]
            try:
                wanted = target(current)
            except PatchError as err:
                raise HttpError(422, "Invalid", f'{self.info.resource} "{self.name}" is invalid: {err}') from None
            diff = merge_diff({"status": current.get("status") or {}}, wanted)
            rv = resource_version or current["metadata"]["resourceVersion"]
            try:
                return self.cluster.patch_status(self.info.kind, self.name, self.namespace,  # type: ignore[arg-type]
                                                 {"metadata": {"resourceVersion": rv}, **diff})
            except Conflict:
                if resource_version is not None:
                    raise
        raise Conflict(f'Operation cannot be fulfilled on {self.info.resource} "{self.name}": too many conflicts')
