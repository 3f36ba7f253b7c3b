"""Notifications end to end: the Manager's event recorder -> the Notifier's own thread -> real local HTTP servers.

Covers: promotion, abort and analysis-failure notices rendered from the default Slack template
and a custom webhook template; routes by namespace and by label selector; a refusing and a
hanging endpoint leave the rollout's passes, events and stepped-clock times exactly as without
notifications; secrets (a URL and a header from a Secret) never in logs, events, status or
bodies; a full queue drops and counts; a pause held past heldAfter and a HookGateHeld event
notify gate-held; a bad ConfigMap is refused naming its key; and the verdict of a failing
canary carries metric, query, value, condition and counts in status, Event, notification
body and `rollouts get rollout`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import tenacity
import yaml

from analysis.args import redact
from rollouts.cli import connect
from rollouts.cli import main as cli_main
from rollouts.cli.controller import configmap_target
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.notify import Notifier, secret_forms
from rollouts.memory.cluster import InMemoryCluster
from rollouts.plan import notify_render
from rollouts.plan.notify import ConfigError, parse
from rollouts.platform.clock import SteppedClock
from rollouts.platform.events import EventRecorder
from tests.controller.dsl import START, Scenario
from tests.http_server import HttpServer, Request, Response

NS = "default"
CM = "rollouts-notifications"
NEW_IMAGE = "argoproj/rollouts-demo:yellow"
HEALTHY, FAILING = [0.99], [0.42]
TOKEN = "xoxb-s3cr3t-T0KEN-4242"  # in the URL path of a Secret, and an Authorization header
QUERY_PART = 'destination_service=~"guestbook-svc.default.svc.cluster.local"'  # the query, args substituted


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Endpoint:
    """A real local HTTP server that keeps what it receives; `hang` holds every answer until released."""

    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def bodies(self, trigger: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.received if trigger is None or trigger in json.dumps(r.body)]


@contextlib.contextmanager
def serve(mode: str = "ok") -> Iterator[Endpoint]:
    endpoint = Endpoint(mode=mode)

    def handle(request: Request) -> Response:
        if endpoint.mode == "hang":
            endpoint.release.wait(10)
        endpoint.received.append(Received(request.path, request.headers, json.loads(request.body or b"{}")))
        return Response(200, b"ok")

    with HttpServer(handle) as server:
        endpoint.url = server.url
        try:
            yield endpoint
        finally:
            endpoint.release.set()


def refusing_url() -> str:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def configmap(routes: dict[str, dict[str, Any]], *, templates: dict[str, str] | None = None,
              settings: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {f"route.{name}": yaml.safe_dump(route) for name, route in routes.items()}
    data.update({f"template.{name}": text for name, text in (templates or {}).items()})
    if settings is not None:
        data["settings"] = yaml.safe_dump(settings)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CM, "namespace": NS}, "data": data}


def secret(name: str, **values: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


FAST = {"timeout": 0.2, "retries": 1}


def scenario(*extra: dict[str, Any], notifications: bool = True, pause: dict[str, Any] | None = None) -> Scenario:
    options: dict[str, Any] = {"notifications": (NS, CM)} if notifications else {}
    s = Scenario("istio-canary", manager_options=options)
    if pause is not None:
        rollout = next(d for d in s.docs if d["kind"] == "Rollout")
        steps = rollout["spec"]["strategy"]["canary"]["steps"]
        steps[next(i for i, step in enumerate(steps) if "pause" in step)] = {"pause": pause}
    for doc in extra:
        s.cluster.create(doc)
    if s.manager.notifier is not None:
        s.manager.notifier._retry_wait = tenacity.wait_none()
    return s


def close(s: Scenario) -> None:
    """The scenario's watchers, and the notifier's worker thread (a daemon, stopped so none lingers)."""
    s.close()
    if s.manager.notifier is not None:
        s.manager.notifier.stop()


def flush(s: Scenario) -> Notifier:
    notifier = s.manager.notifier
    assert notifier is not None and notifier.flush(30), "the notifier did not drain"
    return notifier


def promote_once(s: Scenario) -> Scenario:
    s.provider.script("success-rate", HEALTHY)
    s.given_healthy()
    s.when_image(NEW_IMAGE).run_until(lambda: s.phase == "Healthy")
    return s


def abort_once(s: Scenario) -> Scenario:
    s.provider.script("success-rate", HEALTHY)
    s.given_healthy()
    s.provider.script("success-rate", FAILING)
    s.when_image(NEW_IMAGE).run_until(lambda: s.phase == "Degraded")
    return s


# ---------------------------------------------------------------- delivery, templates, routes


WEBHOOK = """{"who": {{ (namespace ~ "/" ~ name) | tojson }}, "what": {{ trigger | tojson }},
 "why": {{ message | tojson }}, "team": {{ labels.get("team", "none") | tojson }}}"""


def test_promotion_abort_and_analysis_failure_arrive_rendered_and_routed() -> None:
    with serve() as slack, serve() as hook, serve() as elsewhere, serve() as labelled:
        routes = {
            "slack": {"url": slack.url + "/slack"},  # default format slack, every trigger
            "hook": {"url": hook.url + "/hook", "format": "webhook", "template": "mine",
                     "triggers": ["aborted", "analysis-failed"], "namespaces": [NS]},
            "other-namespace": {"url": elsewhere.url, "namespaces": ["shop"]},
            "team-a": {"url": labelled.url, "selector": {"matchLabels": {"team": "a"}}},
        }
        s = scenario(configmap(routes, templates={"mine": WEBHOOK}), pause={"duration": "30m"})
        try:
            s.provider.script("success-rate", HEALTHY)
            s.given_healthy()  # revision 1: promoted
            flush(s)
            assert [b["text"].split(":")[0] for b in slack.bodies()] == ["[promoted] Rollout default/rollout-example"]
            s.provider.script("success-rate", FAILING)
            s.when_image(NEW_IMAGE).run_until(lambda: s.phase == "Degraded")
            flush(s)
        finally:
            close(s)
        texts = [b["text"] for b in slack.bodies()]
        assert [t.split(" ")[0] for t in texts] == ["[promoted]", "[analysis-failed]", "[aborted]"]
        section = slack.bodies()[2]["blocks"][0]["text"]["text"]
        assert section.startswith(":rotating_light: *aborted* Rollout `default/rollout-example`")
        # the custom template, only its triggers, its namespace
        mine = [r.body for r in hook.received]
        assert [b["what"] for b in mine] == ["analysis-failed", "aborted"]
        assert mine[1]["who"] == "default/rollout-example" and mine[1]["team"] == "none"
        assert {r.path for r in hook.received} == {"/hook"}
        assert elsewhere.received == [] and labelled.received == []  # wrong namespace; no team=a label


def test_a_label_selector_route_receives_when_the_labels_match() -> None:
    with serve() as labelled:
        routes = {"team-a": {"url": labelled.url, "format": "webhook",
                             "selector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}}}
        s = scenario(configmap(routes))
        next(d for d in s.docs if d["kind"] == "Rollout")["metadata"]["labels"] = {"team": "a"}
        try:
            promote_once(s)
            flush(s)
        finally:
            close(s)
        bodies = labelled.bodies()
        assert [b["trigger"] for b in bodies] == ["promoted", "promoted"]  # revision 1 and 2
        assert bodies[0]["object"]["labels"] == {"team": "a"}


# ---------------------------------------------------------------- a failing endpoint never delays the rollout


def fingerprint(s: Scenario) -> tuple[Any, ...]:
    """What the rollout did: controller passes, stepped-clock time, weights, and its events in order."""
    events = sorted(s.events(), key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    return (s.manager.reconciles, s.clock.now(), s.weights.entries, [(e["reason"], e["count"]) for e in events])


def test_a_refusing_and_a_hanging_endpoint_do_not_change_the_rollouts_passes() -> None:
    plain = promote_once(scenario(notifications=False))
    baseline = fingerprint(plain)
    close(plain)
    with serve("hang") as hanging:
        routes = {"down": {"url": refusing_url(), **FAST}, "hang": {"url": hanging.url, **FAST}}
        s = scenario(configmap(routes, settings={"queueSize": 2}))
        try:
            promote_once(s)
            assert fingerprint(s) == baseline  # same passes, same times, same events: nothing waited
            notifier = flush(s)
        finally:
            close(s)
    assert notifier.sent == 0 and notifier.failed >= 2
    down = [d for d in notifier.deliveries if d.route == "down"]
    assert down and all(d.error and "Connection refused" in d.error and d.attempts == 2 for d in down)
    hung = [d for d in notifier.deliveries if d.route == "hang"]
    assert hung and all(d.error and "timed out" in d.error and d.attempts == 2 for d in hung)


def test_a_full_queue_drops_and_counts_and_the_reconcile_never_waits() -> None:
    with serve("hang") as hanging:
        cluster = InMemoryCluster()
        clock = SteppedClock(START)
        cluster.create(configmap({"hang": {"url": hanging.url, "timeout": 5, "retries": 0, "triggers": ["aborted"]}},
                                 settings={"queueSize": 2}))
        recorder = EventRecorder(cluster, clock=clock)
        metrics = ControllerMetrics()
        notifier = Notifier(cluster, clock=clock, configmap=(NS, CM), recorder=recorder,
                            on_result=lambda result: metrics.notifications.labels(result).inc())
        recorder.subscribe(notifier.offer)
        rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r", "namespace": NS}}
        try:
            notifier.start()
            assert notifier.flush(10)  # config loaded: queueSize 2
            for index in range(10):
                recorder.record(rollout, type="Warning", reason="RolloutAborted", message=f"abort {index}")
                recorder.record(rollout, reason="RolloutCompleted", message=f"no route wants it {index}")
            assert len(recorder.recorded) == 20  # every event recorded while the endpoint hangs
            hanging.release.set()
            assert notifier.flush(30)
        finally:
            notifier.stop()
    # the unrouted notices took no place in the queue: only aborts were sent or dropped
    assert notifier.dropped >= 7 and notifier.sent + notifier.dropped == 10
    counted = {result: metrics.registry.get_sample_value("rollouts_notifications_total", {"result": result})
               for result in ("sent", "failed", "dropped")}  # the controller's /metrics counts them too
    assert counted == {"sent": notifier.sent, "failed": notifier.failed, "dropped": notifier.dropped}


# ---------------------------------------------------------------- secrets


def test_secrets_from_a_secret_never_reach_logs_events_status_or_bodies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve() as hook:
        routes = {
            "ok": {"urlFrom": {"secretKeyRef": {"name": "hooks", "key": "ok"}}, "format": "webhook",
                   "headers": [{"name": "Authorization",
                                "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "auth"}}}]},
            "down": {"urlFrom": {"secretKeyRef": {"name": "hooks", "key": "down"}}, **FAST},
        }
        hooks = secret("hooks", ok=f"{hook.url}/services/{TOKEN}", down=refusing_url() + f"/{TOKEN}",
                       auth=f"Bearer {TOKEN}")
        s = scenario(configmap(routes), hooks, pause={"duration": "30m"})
        try:
            abort_once(s)
            notifier = flush(s)
            status, events = json.dumps(s.status), json.dumps(s.cluster.list("Event", NS))
        finally:
            close(s)
    assert hook.received and hook.received[0].path == f"/services/{TOKEN}"  # the secret URL was used
    assert hook.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert notifier.failed >= 1 and any(d.error for d in notifier.deliveries if d.route == "down")
    for text in (caplog.text, status, events, json.dumps([r.body for r in hook.received]),
                 json.dumps([d.error for d in notifier.deliveries])):
        assert TOKEN not in text
    assert "to route down failed after 2 attempt(s)" in caplog.text


def test_an_error_quoting_a_secret_urls_path_or_a_bearer_token_alone_is_redacted() -> None:
    forms = secret_forms([f"https://hooks.example/services/{TOKEN}?k=v", f"Bearer {TOKEN}"])
    text = f"Max retries exceeded with url: /services/{TOKEN}?k=v; header {TOKEN}; quoted %2Fservices%2F{TOKEN}"
    assert TOKEN not in redact(text, forms)


# ---------------------------------------------------------------- gate held


def test_a_pause_held_past_held_after_and_a_hook_gate_held_event_notify_gate_held() -> None:
    with serve() as hook:
        s = scenario(configmap({"all": {"url": hook.url, "format": "webhook"}}, settings={"heldAfter": 600}),
                     pause={})
        try:
            s.provider.script("success-rate", HEALTHY)
            s.given_healthy()
            s.when_image(NEW_IMAGE).run_until(lambda: s.phase == "Paused")
            s.run_for(300)
            flush(s)
            assert [b["trigger"] for b in hook.bodies()] == ["promoted"]  # held 5m: not yet
            s.run_for(400)
            flush(s)
            flush(s)  # told once per pause
            s.manager.recorder.record(s.rollout, type="Warning", reason="HookGateHeld",
                                      message="confirm-promotion answered 403")
            flush(s)
        finally:
            close(s)
    held = [b for b in hook.bodies() if b["trigger"] == "gate-held"]
    assert len(held) == 2
    assert held[0]["event"]["message"].startswith("held for 7") and "heldAfter 600s" in held[0]["event"]["message"]
    assert held[1]["event"]["reason"] == "HookGateHeld" and held[1]["event"]["message"].endswith("403")


# ---------------------------------------------------------------- item 3: the verdict explains itself


def test_a_failing_canarys_verdict_explains_itself_everywhere() -> None:
    with serve() as hook:
        s = scenario(configmap({"slack": {"url": hook.url}}), pause={"duration": "30m"})
        try:
            abort_once(s)
            flush(s)
            out = io.StringIO()
            runtime = connect.Runtime(clock=s.clock, sleep=s.clock.advance, tty=False, watch=False,
                                      make_cluster=lambda _: s.cluster)
            with connect.use_runtime(runtime), contextlib.redirect_stdout(out):
                assert cli_main(["get", "rollout", s.rollout_name, "-n", NS]) == 0
            shown = " ".join(out.getvalue().split())
            message = s.status["message"]
            [event] = s.events("RolloutAborted")
        finally:
            close(s)
    [body] = hook.bodies("[aborted]")
    for text in (message, event["message"], body["text"], shown):
        assert "success-rate=[0.42]" in text, text  # the metric and the measured value
        assert 'failed "result[0] >= 0.95"' in text  # the condition
        assert "(4 failed > failureLimit 3)" in text  # the counts against the limit
        assert QUERY_PART in text and "istio_requests_total" in text  # the resolved query
    assert 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)' in message  # Argo's head


# ---------------------------------------------------------------- a bad ConfigMap


@pytest.mark.parametrize(("data", "named"), [
    ({"route.a": "url: ftp://x"}, 'data["route.a"].url: is not an http(s) URL'),
    ({"route.a": "{url: http://x, triggers: [promotd]}"}, "data[\"route.a\"].triggers: 'promotd' is not a trigger"),
    ({"route.a": "{url: http://x, on: [aborted]}"}, 'data["route.a"].on: is read by YAML as the boolean true'),
    ({"route.a": "{url: http://x, urlFrom: {secretKeyRef: {name: s, key: k}}}"},
     'data["route.a"]: needs exactly one of url and urlFrom'),
    ({"route.a": "{url: http://x, template: nope}"}, 'data["route.a"].template: names template \'nope\''),
    ({"route.a": "{url: http://x, timeout: 600}"}, 'data["route.a"].timeout: is 600'),
    ({"route.a": "{url: http://x, colour: red}"}, 'data["route.a"].colour: is not a route field'),
    ({"route.a": "url: [unclosed"}, 'data["route.a"]: is not valid YAML at line 1'),
    ({"settings": "{queueSize: 0}"}, 'data["settings"].queueSize: is 0'),
    ({"routes": "x"}, 'data["routes"]: is not a key notifications know'),
    ({"route.a": "{url: http://x, template: t}", "template.t": '{"text": {{ mesage | tojson }}}'},
     "data[\"template.t\"]: could not render: UndefinedError: 'mesage' is undefined"),
    ({"route.a": "{url: http://x, template: t}", "template.t": '{"text": {{ message }}}'},
     'data["template.t"]: rendered text is not JSON'),
    ({"route.a": "{url: http://x, template: t}", "template.t": '{"blocks": []}'},
     'data["template.t"]: a Slack body needs a "text" string'),
    ({"route.a": "{url: http://x, template: t}", "template.t": "{{ ''.__class__.__mro__ }}"},
     'data["template.t"]: could not render: SecurityError'),
])  # fmt: skip
def test_a_bad_configmap_names_the_key_and_the_fix(data: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        notify_render.load(data)
    assert named in str(caught.value)
    assert all(problem.fix for problem in caught.value.problems)


def test_the_shell_keeps_the_last_good_config_and_records_why_the_new_one_is_refused() -> None:
    cluster = InMemoryCluster()
    clock = SteppedClock(START)
    cluster.create(configmap({"a": {"url": "http://127.0.0.1:9/x"}}))
    recorder = EventRecorder(cluster, clock=clock)
    notifier = Notifier(cluster, clock=clock, configmap=(NS, CM), recorder=recorder)
    try:
        assert notifier.flush(10) and [r.name for r in notifier.config.routes] == ["a"]
        bad = cluster.get("ConfigMap", CM, NS)
        bad["data"]["route.b"] = "url: gopher://x"
        cluster.replace(bad)
        notifier.reload()
        assert notifier.flush(10) and [r.name for r in notifier.config.routes] == ["a"]
    finally:
        notifier.stop()
    [event] = [e for e in cluster.list("Event", NS) if e["reason"] == "NotificationConfigInvalid"]
    assert event["involvedObject"]["kind"] == "ConfigMap" and event["type"] == "Warning"
    assert 'data["route.b"].url: is not an http(s) URL (write it as https://host/path)' in event["message"]


def test_the_configmap_flag_is_namespace_slash_name() -> None:
    assert configmap_target("rollouts/rollouts-notifications") == ("rollouts", "rollouts-notifications")
    for bad in ("rollouts-notifications", "/x", "a/", "a/b/c"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAMESPACE/NAME"):
            configmap_target(bad)


def test_an_empty_configmap_is_no_routes() -> None:
    assert parse({}).routes == () and parse(None).settings.queue_size == 100
