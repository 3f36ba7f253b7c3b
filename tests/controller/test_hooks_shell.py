"""The webhook shell (rollouts.controller.hooks) against a real local HTTP server: bounded retries,
timeouts, the answer recorded, the on_call callback, and a URL that is not http(s) never called."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rollouts.controller.hooks import HookCaller
from rollouts.plan.hook_calls import Call
from rollouts.platform.clock import SteppedClock
from rollouts.spec.model import Webhook
from tests.controller.dsl import START
from tests.controller.test_hooks import Hooks, refused_url


@pytest.fixture
def server() -> Iterator[Hooks]:
    hooks = Hooks(SteppedClock(START))
    yield hooks
    hooks.close()


def call(url: str, **fields: Any) -> Call:
    return Call(Webhook.load({"name": "h", "type": "rollout", "url": url, **fields}), "u/round-1",
                {"type": "rollout", "name": "web", "namespace": "team-a"})


def caller(seen: list[tuple[str, str, float, str, str]]) -> HookCaller:
    return HookCaller(clock=SteppedClock(START), on_call=lambda *args: seen.append(args), first_wait=0.01,
                      max_wait=0.02)


def test_a_5xx_is_retried_within_the_bound_and_recorded(server: Hooks) -> None:
    seen: list[tuple[str, str, float, str, str]] = []
    server.script("/flaky", 503)
    answer = caller(seen).call(call(f"{server.url}/flaky", retries=2))
    assert len(server.to("/flaky")) == 3  # 1 + 2 retries, never more
    assert (answer.code, answer.ok, answer.result) == (503, False, "refused")
    assert "failed after 3 attempts" in (answer.error or "")
    assert [(kind, result, ns, name) for kind, result, _, ns, name in seen] == [("rollout", "refused", "team-a", "web")]


def test_a_4xx_is_not_retried_and_its_body_is_kept(server: Hooks) -> None:
    server.script("/no", 403)
    answer = caller([]).call(call(f"{server.url}/no", retries=3))
    assert len(server.to("/no")) == 1 and (answer.code, answer.error, answer.result) == (403, "no", "refused")


def test_a_slow_answer_times_out(server: Hooks) -> None:
    server.script("/slow", "slow")
    answer = caller([]).call(call(f"{server.url}/slow", timeout="200ms"))
    assert answer.code is None and answer.result == "error" and "timeout" in (answer.error or "")


def test_refused_and_not_http(server: Hooks) -> None:
    seen: list[tuple[str, str, float, str, str]] = []
    refused = caller(seen).call(call(refused_url()))
    assert refused.code is None and "cannot connect" in (refused.error or "")
    never = caller(seen).call(call("file:///etc/passwd"))
    assert never.error == "the URL is not http(s)" and [r for _, r, *_ in seen] == ["error", "error"]


def test_a_2xx_is_ok_and_the_payload_is_json(server: Hooks) -> None:
    answer = caller([]).call(call(f"{server.url}/ok"))
    assert answer.ok and answer.code == 200 and answer.error is None
    assert server.to("/ok")[0][1] == {"type": "rollout", "name": "web", "namespace": "team-a"}
