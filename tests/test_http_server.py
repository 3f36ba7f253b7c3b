"""tests/http_server.py, and the metric backends the slow suites build on it (the storm's Verdicts,
the k8s e2e WebMetric), against real sockets: what is recorded, what is answered, a clean stop."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.http_server import HttpServer, Request, Response
from tests.k8s.e2e import WebMetric
from tests.storm.fleet import SECRET, Verdicts


def fetch(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_every_request_is_recorded_before_the_handler_answers_it() -> None:
    seen_by_handler: list[int] = []

    def handle(request: Request) -> Response:
        seen_by_handler.append(len(server.requests))
        return Response.json({"path": request.path, "body": request.body.decode()}, status=201)

    with HttpServer(handle) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert fetch(server.url + "/a?x=1&x=2") == (201, json.dumps({"path": "/a?x=1&x=2", "body": ""}).encode())
        status, _ = fetch(server.url + "/b", data=b"payload", headers={"X-Test": "yes"})
    assert status == 201 and seen_by_handler == [1, 2] and server.served == 2
    first, second = server.requests
    assert (first.method, first.query("x"), first.query("y"), first.peer_cert) == ("GET", "1", None, None)
    assert (second.method, second.path, second.body, second.headers["X-Test"]) == ("POST", "/b", b"payload", "yes")
    assert server.errors == []


def test_a_handler_that_raises_answers_500_and_is_kept_in_errors() -> None:
    def handle(request: Request) -> Response:
        raise ValueError(f"no answer for {request.path}")

    with HttpServer(handle) as server:
        status, body = fetch(server.url + "/x")
    assert status == 500 and b"no answer for /x" in body
    assert [str(err) for err in server.errors] == ["no answer for /x"]


def test_leaving_the_server_closes_its_port() -> None:
    with HttpServer(lambda _: Response()) as server:
        port = int(server.url.rpartition(":")[2])
        assert fetch(server.url)[0] == 200
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_without_recording_it_only_counts() -> None:
    with HttpServer(lambda _: Response(), record=False) as server:
        fetch(server.url)
        fetch(server.url)
    assert (server.served, server.requests) == (2, [])


def verdict(verdicts: Verdicts, image: str, token: str) -> tuple[int, Any]:
    status, body = fetch(f"{verdicts.url}?image={image}", headers={"Authorization": f"Bearer {token}"})
    return status, json.loads(body) if body else None


def test_the_storms_verdicts_judge_the_image_and_refuse_a_wrong_token() -> None:
    with Verdicts() as verdicts:
        assert verdicts.url.endswith("/verdict")
        assert verdict(verdicts, "app:good-3", SECRET) == (200, {"ok": True})
        assert verdict(verdicts, "app:bad-4", SECRET) == (200, {"ok": False})
        assert verdict(verdicts, "app:good-3", "guess") == (401, None)
    assert (verdicts.served, verdicts.refused, verdicts.requests) == (3, 1, [])


def test_the_e2e_web_metric_answers_as_healthy_is_set() -> None:
    with WebMetric() as metric:
        assert metric.url.endswith("/health")
        assert fetch(metric.url) == (200, b'{"ok": true}')
        metric.healthy = False
        assert fetch(metric.url) == (200, b'{"ok": false}')
    assert metric.served == 2
