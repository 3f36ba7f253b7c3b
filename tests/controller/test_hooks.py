"""Lifecycle webhooks end to end: every type against real local HTTP servers, on the stepped clock.

The hook endpoints are one http.server in a thread; each path answers from a script (codes in
order, the last repeats; "slow" answers after the hook's timeout) and records what it was sent
with the controller clock's time. `timeline()` is the (seconds, type, answer) list of a scenario.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from rollouts import view
from rollouts.platform.clock import SteppedClock
from rollouts.view import render
from tests.controller.dsl import START, Scenario
from tests.http_server import HttpServer, Request, Response

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


class Hooks:
    """A local webhook server: `script(path, *answers)`, `calls` = (time, path, body, answer)."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.scripts: dict[str, list[Any]] = {}
        self.calls: list[tuple[datetime, str, dict[str, Any], str]] = []
        self.lock = threading.Lock()
        self.server = HttpServer(self._answer).start()
        self.url = self.server.url

    def _answer(self, request: Request) -> Response:
        if request.method == "GET":  # a redirect followed
            with self.lock:
                self.calls.append((self.clock.now(), request.path, {"type": "redirected"}, "loop"))
            return Response(302, headers={"Location": request.path})
        body = json.loads(request.body or b"{}")
        with self.lock:
            script = self.scripts.get(request.path, [200])
            answer = script.pop(0) if len(script) > 1 else script[0]
            self.calls.append((self.clock.now(), request.path, body, str(answer)))
        if answer == "slow":
            time.sleep(0.6)
            answer = 200
        if answer == "loop":
            return Response(302, headers={"Location": request.path})
        return Response(int(answer), b"no" if int(answer) >= 300 else b"ok")

    def script(self, path: str, *answers: Any) -> None:
        with self.lock:
            self.scripts[path] = list(answers)

    def close(self) -> None:
        self.server.close()

    def to(self, path: str) -> list[tuple[datetime, dict[str, Any], str]]:
        return [(at, body, answer) for at, p, body, answer in self.calls if p == path]

    def timeline(self) -> list[tuple[int, str, str]]:
        """(seconds since the scenario started, hook type, answer) of every call but event hooks."""
        return [(int((at - START).total_seconds()), body["type"], answer)
                for at, _, body, answer in self.calls if body["type"] not in ("event", "redirected")]


def refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/"


def webhook(name: str, kind: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": url, "interval": "10s", "timeout": "5s", **extra}


def scenario_with(webhooks: list[dict[str, Any]], clock: SteppedClock, *, limit: int | None = None) -> Scenario:
    scenario = Scenario("istio-canary", clock=clock)
    for doc in scenario.docs:
        if doc["kind"] == "Rollout":
            canary = doc["spec"]["strategy"]["canary"]
            canary.pop("analysis", None)
            canary["steps"] = [{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 60}]
            canary["webhooks"] = webhooks
            if limit is not None:
                canary["webhookFailureLimit"] = limit
    return scenario


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(START)


@pytest.fixture
def hooks(clock: SteppedClock) -> Iterator[Hooks]:
    server = Hooks(clock)
    yield server
    server.close()


def promoted(scenario: Scenario) -> bool:
    st = scenario.status
    return st.get("stableRS") == st.get("currentPodHash") and scenario.phase == "Healthy"


def entry(scenario: Scenario, name: str) -> dict[str, Any]:
    return next(e for e in scenario.status.get("hooks") or [] if e["name"] == name)


def test_every_hook_type_in_one_scenario(clock: SteppedClock, hooks: Hooks) -> None:
    u = hooks.url
    scenario = scenario_with([
        webhook("start", "confirm-rollout", f"{u}/start", metadata={"team": "payments"}),
        webhook("smoke", "pre-rollout", f"{u}/smoke"),
        webhook("load", "rollout", f"{u}/load", interval="20s"),
        webhook("traffic", "confirm-traffic-increase", f"{u}/traffic"),
        webhook("approve", "confirm-promotion", f"{u}/approve", timeout="300ms"),
        webhook("done", "post-rollout", f"{u}/done"),
        webhook("rb", "rollback", f"{u}/rb", interval="15s"),
        webhook("events", "event", f"{u}/events"),
    ], clock, limit=1)
    hooks.script("/start", 403, 200)
    hooks.script("/smoke", 500, 200)
    hooks.script("/traffic", 403, 200)
    hooks.script("/approve", "slow", 200)
    hooks.script("/rb", 404)
    try:
        scenario.given_healthy()
        assert hooks.calls == [] or all(body["type"] == "event" for _, _, body, _ in hooks.calls)
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: promoted(scenario))
        scenario.run_for(60)
        line = hooks.timeline()
        print("\nhook timeline (seconds, type, answer):")
        for item in line:
            print("  ", item)
        # the documented order: confirm-rollout (no, then yes 10 s later), pre-rollout (a failure, then a
        # pass), the rollout rounds every 20 s and rollback every 15 s from there, each weight increase
        # confirmed, confirm-promotion (timed out, asked again 10 s later), post-rollout once
        assert line == [
            (0, "confirm-rollout", "403"), (0, "rollback", "404"), (10, "confirm-rollout", "200"),
            (10, "pre-rollout", "500"), (15, "rollback", "404"), (20, "pre-rollout", "200"), (20, "rollout", "200"),
            (20, "confirm-traffic-increase", "403"), (30, "confirm-traffic-increase", "200"),
            (30, "rollback", "404"), (40, "rollout", "200"), (45, "rollback", "404"), (60, "rollout", "200"),
            (60, "rollback", "404"), (60, "confirm-traffic-increase", "200"), (60, "confirm-promotion", "slow"),
            (70, "confirm-promotion", "200"), (70, "post-rollout", "200")]
        # a gate that says no holds: no weight rose before each yes; the 30 s pause ran from 30 s to 60 s
        weights = [(int((at - START).total_seconds()), canary) for at, _, canary in scenario.weights.entries]
        assert weights == [(0, 0), (30, 20), (60, 60), (70, 100), (70, 0)]  # 0: the new pods are the stable
        # the slow confirm-promotion timed out, was recorded, and was asked again one interval later
        (t1, _, a1), (t2, _, a2) = hooks.to("/approve")[:2]
        assert (a1, a2) == ("slow", "200") and (t2 - t1).total_seconds() == 10
        held = [e["message"] for e in scenario.events("HookGateHeld") if "'approve'" in e["message"]]
        assert held and "timeout" in held[0] and held[0].startswith("the rollout is held: ")
        # each gate's first no of a decision is one HookGateHeld (notifications' gate-held); checks that fail
        # (pre-rollout's 500) are WebhookFailed
        gates = sorted(m.split("'")[1] for m in (e["message"] for e in scenario.events("HookGateHeld")))
        assert gates == ["approve", "start", "traffic"]
        assert any("'smoke'" in e["message"] for e in scenario.events("WebhookFailed"))
        assert all("heldSince" not in entry(scenario, name) for name in ("approve", "start"))  # a yes ends a hold
        # the pre-rollout failure counted (1 of the limit 1: not over it)
        assert entry(scenario, "smoke")["failures"] == 1
        assert entry(scenario, "done")["code"] == 200 and entry(scenario, "approve")["ok"] is True
        # payloads: Flagger's shape plus ours
        body = hooks.to("/start")[0][1]
        assert {k: body[k] for k in ("name", "namespace", "phase", "type", "hook")} == {
            "name": "rollout-example", "namespace": "default", "phase": "Progressing", "type": "confirm-rollout",
            "hook": "start"}
        assert body["metadata"] == {"team": "payments"} and body["images"] == [NEW_IMAGE]
        assert body["stepIndex"] == 0 and body["setWeight"] == 20 and body["actualWeight"] == 0
        assert body["revision"] == 2 and body["podTemplateHash"] == scenario.status["currentPodHash"]
        assert body["checksum"].startswith(body["podTemplateHash"])
        traffic = [b for _, b, a in hooks.to("/traffic")]
        assert {(b["stepIndex"], b["setWeight"]) for b in traffic} == {(0, 20), (2, 60)}
        post = hooks.to("/done")[0][1]
        assert post["phase"] == "Healthy" and post["decision"].endswith("/promoted")
        events = [b["metadata"] for _, b, _ in hooks.to("/events")]
        assert any(m["eventReason"] == "RolloutUpdated" for m in events) and all("timestamp" in m for m in events)
        assert entry(scenario, "events")["decision"].startswith("event/") and entry(scenario, "events")["ok"] is True
        # a rollback hook that answers 2xx aborts the next update; post-rollout fires once for the abort
        hooks.script("/rb", 200)
        hooks.script("/start", 200)
        scenario.when_image("argoproj/rollouts-demo:green")
        scenario.run_until(lambda: bool(scenario.status.get("abort")))
        scenario.run_for(60)
        assert "rollback webhook 'rb'" in scenario.status["message"] or any(
            "rollback webhook 'rb'" in e["message"] for e in scenario.events("RolloutAborted"))
        assert len(hooks.to("/done")) == 2 and hooks.to("/done")[1][1]["decision"].split("/")[1].startswith("aborted")
    finally:
        scenario.close()


def test_pre_rollout_failures_over_the_limit_abort(clock: SteppedClock, hooks: Hooks) -> None:
    scenario = scenario_with([webhook("smoke", "pre-rollout", f"{hooks.url}/smoke")], clock, limit=1)
    hooks.script("/smoke", 500)
    try:
        scenario.given_healthy()
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: bool(scenario.status.get("abort")))
        scenario.run_for(60)
        assert len(hooks.to("/smoke")) == 2  # the second failure is 2 > 1: aborted, never asked again
        [aborted] = scenario.events("RolloutAborted")
        assert "webhook checks failed 2 times > webhookFailureLimit 1" in aborted["message"]
        assert max(scenario.weights.canary_weights) == 0
    finally:
        scenario.close()


@pytest.mark.parametrize("kind", ["refused", "loop"])
def test_a_broken_confirm_promotion_never_promotes(clock: SteppedClock, hooks: Hooks, kind: str) -> None:
    url = refused_url() if kind == "refused" else f"{hooks.url}/loop"
    hooks.script("/loop", "loop")
    scenario = scenario_with([webhook("approve", "confirm-promotion", url)], clock)
    try:
        scenario.given_healthy()
        first = scenario.status["stableRS"]
        scenario.when_image(NEW_IMAGE)
        scenario.run_for(300)
        assert scenario.status["stableRS"] == first and max(scenario.weights.canary_weights) == 60
        recorded = entry(scenario, "approve")
        assert recorded["ok"] is not True and recorded.get("code") is None
        assert ("cannot connect" if kind == "refused" else "more than 3 redirects") in recorded["error"]
        assert "webhook 'approve' (confirm-promotion)" in scenario.status["message"]
        shown = render.to_text(render.rollout(view.build(scenario.rollout, scenario.cluster.list("ReplicaSet"), [],
                                                         now=clock.now())), width=200)
        [row] = [line for line in shown.splitlines() if "approve  confirm-promotion" in line]
        assert row.split()[1:4] == ["approve", "confirm-promotion", "error"] and "Webhooks:" in shown
        assert ("cannot connect" if kind == "refused" else "more than 3 redirects") in row
        if kind == "loop":  # asked every 10 s once past the last step: bounded, 4 requests each (3 redirects)
            assert len(hooks.to("/loop")) % 4 == 0 and len(hooks.to("/loop")) <= 4 * 31
    finally:
        scenario.close()


def test_a_gate_held_through_a_restart_is_not_asked_twice(clock: SteppedClock, hooks: Hooks) -> None:
    scenario = scenario_with([webhook("start", "confirm-rollout", f"{hooks.url}/start"),
                              webhook("done", "post-rollout", f"{hooks.url}/done")], clock)
    hooks.script("/start", 403)
    try:
        scenario.given_healthy()
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: any(e.get("code") == 403 for e in scenario.status.get("hooks") or []),
                           between_reconciles=True)
        asked = hooks.to("/start")
        assert len(asked) == 1
        scenario.manager = scenario.new_manager()  # the old controller is abandoned, a new one starts
        scenario.run_for(5)
        assert len(hooks.to("/start")) == 1  # the new controller read the answer: no second call
        scenario.run_for(10)
        times = [at for at, _, _ in hooks.to("/start")]
        assert len(times) == 2 and (times[1] - times[0]).total_seconds() == 10
        hooks.script("/start", 200)
        scenario.run_until(lambda: promoted(scenario))
        scenario.manager = scenario.new_manager()
        scenario.run_for(60)
        assert len(hooks.to("/done")) == 1  # post-rollout once per promotion, not again after the restart
    finally:
        scenario.close()


def test_a_controller_that_dies_between_the_ask_and_the_call_does_not_ask_again_within_the_interval(
        clock: SteppedClock, hooks: Hooks) -> None:
    scenario = scenario_with([webhook("start", "confirm-rollout", f"{hooks.url}/start")], clock)
    try:
        scenario.given_healthy()
        caller = scenario.manager.rollouts.hooks
        dying = {"left": 1}

        def call_all(calls: Any) -> Any:
            if dying["left"]:
                dying["left"] -= 1
                raise RuntimeError("the controller died after writing the ask")
            return real(calls)

        real, caller.call_all = caller.call_all, call_all  # type: ignore[method-assign]
        scenario.when_image(NEW_IMAGE)
        scenario.run_for(9)
        assert hooks.to("/start") == [] and entry(scenario, "start")["askedAt"] == "2024-01-01T00:00:00Z"
        scenario.manager = scenario.new_manager()
        scenario.run_for(2)
        asked = hooks.to("/start")
        assert [int((at - START).total_seconds()) for at, _, _ in asked] == [10]  # one interval after the ask
        scenario.run_until(lambda: promoted(scenario))
        assert len(hooks.to("/start")) == 1
    finally:
        scenario.close()
