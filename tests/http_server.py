"""A real local HTTP(S) server for tests: serves one handler function and records every request.

Rules:
- `HttpServer(handle)` listens on 127.0.0.1 at a free port once entered (`with`, or `start()`),
  in a daemon thread; `url` is its base URL (`http://` or, with `tls=` an ssl server context,
  `https://`). Leaving it (or `close()`) shuts the server down, closes the socket and joins the thread.
- Every request (any method) is counted in `served` and recorded in `requests` as a `Request`
  (method, path with its query, headers, body, the client certificate over TLS) before `handle`
  sees it (`record=False` keeps only the count, for a long run); `handle`
  returns a `Response`, which is sent with its Content-Length (to a client still there: one that
  gave up waiting on a slow handler is no error). A handler that raises answers
  500 and the error is kept in `errors`, so a test can assert there was none.
- Nothing is logged: a test reads what it needs from `requests`.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["HttpServer", "Request", "Response"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes = b""
    peer_cert: Any = None  # the client certificate (ssl's dict form) when one was presented over TLS

    def query(self, name: str) -> str | None:
        """The first value of a query parameter, None when absent."""
        values = parse_qs(urlsplit(self.path).query).get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


Handle = Callable[[Request], Response]


class HttpServer:
    def __init__(self, handle: Handle, *, tls: ssl.SSLContext | None = None, keep_alive: bool = False,
                 record: bool = True, name: str = "test-http") -> None:
        self.handle = handle
        self.served = 0
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self._tls = tls
        self._keep_alive = keep_alive
        self._record = record
        self._name = name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None, "enter the server first"
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self._name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.served += 1
            if self._record:
                self.requests.append(request)
        try:
            return self.handle(request)
        except Exception as err:
            with self._lock:
                self.errors.append(err)
            return Response(500, repr(err).encode())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if server._keep_alive else "HTTP/1.0"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
                response = server._answer(Request(self.command, self.path, dict(self.headers),
                                                  self.rfile.read(length) if length else b"", peer))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
