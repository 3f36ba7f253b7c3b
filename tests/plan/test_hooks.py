"""The pure part of lifecycle webhooks (rollouts.plan.hooks): when each is asked, what an answer means.

A `Shell` stands in for rollouts.controller.hooks: after each plan it takes the calls the written
status asks (`hooks.asked`), answers them from a script (no HTTP) and records the answers
(`hooks.answered`), as the reconciler does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rollouts.plan import hook_calls as hooks
from rollouts.plan import hook_checks
from rollouts.plan.planner import Plan
from rollouts.spec.model import CanaryStrategy, Rollout, Webhook
from tests.plan.builders import T0, World, replicaset, rollout, seconds, weights


def hook(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": f"http://hooks.test/{name}", "interval": "10s", **extra}


class Shell:
    def __init__(self, world: World, **script: list[int | None]) -> None:
        self.world, self.script = world, script
        self.calls: list[tuple[datetime, str, str, int | None]] = []

    def step(self, at: datetime | None = None) -> Plan:
        before = self.world.rollout.get("status")
        result = self.world.step(at)
        calls = hooks.asked(self.world.observed(), before, result.status, self.world.now)
        answers = []
        for call in calls:
            codes = self.script.get(call.hook.name) or [200]
            code = codes.pop(0) if len(codes) > 1 else codes[0]
            answer = hooks.Answer(self.world.now, code, 5, None if code is not None else "cannot connect")
            answers.append((call, answer))
            self.calls.append((self.world.now, call.hook.name, call.decision, code))
        if answers:
            self.world.rollout["status"] = hooks.answered(result.status, answers)
        return result

    def settle(self, at: datetime | None = None) -> None:
        for _ in range(30):
            before = (str(self.world.rollout.get("status")), len(self.calls))
            result = self.step(at)
            if not result.actions and (str(self.world.rollout.get("status")), len(self.calls)) == before:
                return
        raise AssertionError("no fixed point")

    def asked(self, name: str) -> list[tuple[datetime, str, int | None]]:
        return [(at, decision, code) for at, n, decision, code in self.calls if n == name]


def deployed(*webhooks: dict[str, Any], steps: tuple[dict[str, Any], ...] = ({"setWeight": 20}, {"setWeight": 60}),
             **canary: Any) -> World:
    """v1 stable, then v2 rolled out with `webhooks` (pods become available at once)."""
    world = World.of(rollout(steps=steps, webhooks=list(webhooks), **canary))
    world.replica_sets = [replicaset(image="app:v1", replicas=4)]
    world.settle()
    world.set_image("app:v2")
    return world


def canary_weight(world: World) -> int:
    return weights(world.vs)["web-canary"]


def test_a_closed_gate_holds_at_zero_and_is_asked_once_per_interval() -> None:
    world = deployed(hook("start", "confirm-rollout"))
    shell = Shell(world, start=[403])
    shell.settle()
    shell.settle(world.advance(seconds(5)))
    assert [code for _, _, code in shell.asked("start")] == [403]  # 5 s later: not asked again
    assert canary_weight(world) == 0 and world.status["currentStepIndex"] == 0
    assert "webhook 'start' (confirm-rollout) answered 403" in world.status["message"]
    shell.settle(world.advance(seconds(5)))
    assert [at for at, _, _ in shell.asked("start")] == [T0, T0 + seconds(10)]
    shell.script["start"] = [200]
    shell.settle(world.advance(seconds(10)))
    assert world.status["stableRS"] == world.status["currentPodHash"]  # promoted once the gate said yes


def test_a_new_controller_reads_the_ask_and_does_not_repeat_it() -> None:
    """Planning again from the written status (what a restarted controller does) asks nothing."""
    world = deployed(hook("start", "confirm-rollout"))
    shell = Shell(world, start=[None])
    shell.settle()
    status = world.status
    assert [e["error"] for e in status["hooks"]] == ["cannot connect"]
    again = world.plan(world.now + seconds(9))
    assert hooks.asked(world.observed(), status, again.status, world.now) == []
    unanswered = {**status, "hooks": [{**status["hooks"][0], "answeredAt": None, "error": None}]}
    world.rollout["status"] = unanswered  # asked, then the controller stopped before the answer was written
    later = world.plan(world.now + seconds(9))
    assert hooks.asked(world.observed(), unanswered, later.status, world.now) == []
    after = world.plan(world.now + seconds(10))
    assert len(hooks.asked(world.observed(), unanswered, after.status, world.now)) == 1  # one interval later


def test_confirm_traffic_increase_keeps_the_weight_and_confirm_promotion_the_last_step() -> None:
    world = deployed(hook("more", "confirm-traffic-increase"), hook("ship", "confirm-promotion"))
    shell = Shell(world, more=[200, 403], ship=[403])
    shell.settle()
    assert canary_weight(world) == 20 and world.status["currentStepIndex"] == 1
    shell.script["more"] = [200]
    shell.settle(world.advance(seconds(10)))
    assert canary_weight(world) == 60 and world.status.get("stableRS") != world.status["currentPodHash"]
    assert [d.rsplit("/", 1)[1] for _, d, _ in shell.asked("more")] == ["step-0", "step-1", "step-1"]
    shell.script["ship"] = [200]
    shell.settle(world.advance(seconds(10)))
    assert world.status["stableRS"] == world.status["currentPodHash"]


def test_pre_rollout_and_rollout_failures_are_summed_against_the_limit() -> None:
    world = deployed(hook("smoke", "pre-rollout"), hook("load", "rollout"), webhookFailureLimit=1,
                     steps=({"setWeight": 20}, {"pause": {}}))
    shell = Shell(world, smoke=[500, 200], load=[200, 503])
    shell.settle()
    assert canary_weight(world) == 0 and not world.status.get("abort")  # 1 failure: not over 1
    shell.settle(world.advance(seconds(10)))
    assert canary_weight(world) == 20
    shell.settle(world.advance(seconds(10)))  # the second rollout round fails: 2 > 1
    assert world.status["abort"] is True and canary_weight(world) == 0
    assert "webhook checks failed 2 times > webhookFailureLimit 1" in world.status["conditions"][0]["message"] or any(
        "webhook checks failed 2 times" in (c.get("message") or "") for c in world.status["conditions"])


def test_a_rollback_hook_that_says_yes_aborts_and_post_rollout_fires_once() -> None:
    world = deployed(hook("rb", "rollback"), hook("done", "post-rollout"), steps=({"setWeight": 20}, {"pause": {}}))
    shell = Shell(world, rb=[404, 200])
    shell.settle()
    assert canary_weight(world) == 20 and not world.status.get("abort")
    shell.settle(world.advance(seconds(10)))
    assert world.status["abort"] is True
    shell.settle(world.advance(seconds(60)))
    assert len(shell.asked("done")) == 1 and "/aborted-" in shell.asked("done")[0][1]
    assert len(shell.asked("rb")) == 2  # never asked once aborted


def test_a_retry_starts_a_new_update_and_asks_the_gates_again() -> None:
    world = deployed(hook("start", "confirm-rollout"), hook("smoke", "pre-rollout"), webhookFailureLimit=3,
                     steps=({"setWeight": 20}, {"pause": {}}))
    shell = Shell(world, smoke=[500, 200])
    shell.settle()
    shell.settle(world.advance(seconds(10)))
    assert canary_weight(world) == 20
    assert [e.get("failures") for e in world.status["hooks"]] == [None, 1]
    world.set_status(abort=True)
    shell.settle(world.advance(seconds(1)))
    world.set_status(abort=False)
    shell.settle(world.advance(seconds(1)))
    assert len(shell.asked("start")) == 2 and len(shell.asked("smoke")) == 3
    assert [e.get("failures") for e in world.status["hooks"]] == [None, None]  # the count starts again


def test_payload_is_flaggers_shape_plus_ours() -> None:
    world = deployed(hook("start", "confirm-rollout", metadata={"team": "web"}))
    shell = Shell(world, start=[403])
    before = world.rollout.get("status")
    result = world.step()
    [call] = hooks.asked(world.observed(), before, result.status, world.now)
    body = call.payload
    assert body["name"] == "web" and body["namespace"] == "shop" and body["metadata"] == {"team": "web"}
    assert body["images"] == ["app:v2"] and body["setWeight"] == 20 and body["actualWeight"] == 0
    assert body["stepIndex"] == 0 and body["revision"] == 2 and body["decision"].endswith("/confirm-rollout")
    assert body["checksum"] == body["decision"].split("/")[0] and body["podTemplateHash"] in body["checksum"]
    assert shell.calls == []


def test_the_field_rules() -> None:
    canary = CanaryStrategy.load({"webhooks": [
        {"name": "a", "type": "rollout", "url": "https://h.test/a", "timeout": "300ms", "interval": "1m30s"},
        {"name": "b", "type": "event", "url": "http:///nohost"},
        {"name": "c", "type": "rollback", "url": "http://h.test/c", "timeout": "50ms", "interval": "soon"},
    ], "webhookFailureLimit": -1})
    found = [(p.path, p.message) for p in hook_checks.webhook_problems(canary)]
    assert found == [
        ("spec.strategy.canary.webhooks[1].url", "'http:///nohost' has no host"),
        ("spec.strategy.canary.webhooks[2].timeout", "'50ms' is out of range"),
        ("spec.strategy.canary.webhooks[2].interval", "'soon' is not a duration"),
        ("spec.strategy.canary.webhookFailureLimit", "-1 is out of range"),
    ]
    first = Webhook.load(canary.dump()["webhooks"][0])
    assert hook_checks.timeout_of(first) == 0.3 and hook_checks.interval_of(first) == 90.0
    assert hook_checks.retries_of(first) == 0


def test_without_webhooks_nothing_changes() -> None:
    world = World.of(rollout(steps=({"setWeight": 20},)))
    world.replica_sets = [replicaset(image="app:v1", replicas=4)]
    world.settle()
    assert "hooks" not in world.status
    assert Rollout.load(world.rollout).canary is not None
