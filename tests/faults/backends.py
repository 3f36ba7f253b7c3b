"""A real local HTTP backend whose answers a test scripts per path prefix.

`Backend()` serves on 127.0.0.1 (a free port) in a daemon thread; `answer(prefix, reply)`
decides how requests whose path starts with `prefix` are answered: a `Reply` (status,
body, content type, and an optional delay before answering). A delayed answer waits on
an Event, so `close()` releases it at once. Every request is kept in `seen`
(method, path with query, headers, body).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before the answer is sent (a hung backend)
    headers: tuple[tuple[str, str], ...] = ()  # more headers (a redirect's Location)


Answer = Reply | Callable[[Request], Reply]


class Backend:
    def __init__(self) -> None:
        self.seen: list[Request] = []
        self._answers: list[tuple[str, Answer]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass  # no access log on stderr (a secret may sit in a path)

            def do_GET(self) -> None:
                backend._serve(self)

            do_POST = do_PUT = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out hangs up; a broken pipe is expected

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-backend", daemon=True)
        self._thread.start()

    def answer(self, prefix: str, reply: Answer) -> None:
        with self._lock:
            self._answers.insert(0, (prefix, reply))

    def requests_to(self, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.seen if r.path.startswith(prefix)]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8", "replace") if length else ""
        request = Request(handler.command, handler.path, dict(handler.headers), body)
        with self._lock:
            self.seen.append(request)
            found = next((a for p, a in self._answers if request.path.startswith(p)), Reply(404, '{"error":"no"}'))
        reply = found(request) if callable(found) else found
        if reply.delay and self._closing.wait(reply.delay):
            return
        data = reply.body.encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
