"""The embedded API server: any Cluster (normally an InMemoryCluster) over Kubernetes REST.

One server serves the demo's second terminal, a controller restarted in a crash test, and
the KubeCluster contract tests. Standard library only (ThreadingHTTPServer).

Rules (the REST semantics, Status bodies and Content-Type handling are in rollouts.memory.rest):
- `?watch=true` streams newline-delimited JSON events (chunked). A too-old
  resourceVersion is a 200 stream holding one ERROR event with a 410 Expired Status, as
  the real server's watch cache does; the kubernetes client turns it into ApiException
  410. No BOOKMARK is sent: the real server (1.20) sends them about once a minute, not when a
  short watch ends on `timeoutSeconds`, so a client must resume from the last event it
  read; `allowWatchBookmarks` is accepted and changes nothing. `timeoutSeconds` is whole
  seconds (else 400, as the real server parses it).
- A client that goes away mid-answer (BrokenPipe, ConnectionReset) is not an error: nothing is
  answered and nothing printed; other handler failures are logged, never printed to stderr.
- `close()` drops every open connection (a watcher sees its stream break, as when a real
  server goes away) and joins every thread it started. A watch that a kept-alive connection
  starts while it runs (a client reconnecting at once, as the dashboard's watches do) is
  closed at once rather than left waiting for changes, so close() never hangs on it.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from rollouts.memory.rest import HttpError, Verbs, discovery, parse_selector, route, status_body
from rollouts.platform.cluster import Cluster, ClusterError, Gone, WatchStream
from rollouts.platform.kinds import KindInfo

__all__ = ["ApiServer", "serve"]

log = logging.getLogger(__name__)

DEFAULT_WATCH_SECONDS = 1800.0


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not an error; anything else is logged, never printed to stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("request from %s failed", client_address)


class ApiServer:
    """A running embedded API server; `url` is its address. Close it (or use `with`)."""

    def __init__(self, cluster: Cluster, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._streams: set[WatchStream] = set()
        self._closing = False
        self._httpd = _Server((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.api = self  # type: ignore[attr-defined]
        bound_host, bound_port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
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
            self._closing = True  # a watch a kept-alive connection starts from now on is closed at once (_track)
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
            late = add and self._closing
            if not late:
                (collection.add if add else collection.discard)(item)
        if late and collection is self._streams:
            item.close()  # started after close() took its list: it would wait for changes forever
        elif late:
            try:
                item.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


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
            answer = discovery(parts, self.api.url) if method == "GET" else None
            if answer is not None:
                return self._send(200, answer)
            info, namespace, name, sub = route(parts)
            if method == "GET" and name is None and query.get("watch") in ("true", "1"):
                return self._watch(info, namespace, query)
            self._send(*Verbs(self.api.cluster, info, namespace, name, sub).run(
                method, body, self.headers.get("Content-Type", ""), query))
        except HttpError as err:
            self._send(err.code, status_body(err.code, err.reason, str(err), err.details))
        except ClusterError as err:
            self._send(err.code, status_body(err.code, err.reason, str(err)))
        except ConnectionError:  # the client went away (a demo or test stopping): no one to answer
            self.close_connection = True
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
        try:  # whole seconds, as the real server parses it
            timeout = float(int(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS))
        except ValueError:
            raise HttpError(400, "BadRequest", f'strconv.ParseInt: parsing "{query.get("timeoutSeconds")}": '
                            "invalid syntax") from None
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
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            if stream is not None:
                stream.close()
                self.api._track(stream, self.api._streams, False)


