"""Backend faults, class by class (issue 14 item 2): one table, one bench, the same five proofs.

Each row of FAULTS is one class of fault met by a victim Rollout on the two-Rollout bench
(tests.faults.bench): its metric backend (Prometheus or a web metric, on a real local HTTP
server or a closed port), its lifecycle webhook (rollouts/controller/hooks.py) or the API
server itself (a FaultyCluster between the controller and the cluster). For every class:

1. the other Rollout keeps moving: the healthy Rollout beside the victim has exactly the
   weight history, promotion time and number of reconciles it has with no fault at all;
2. the fault is recorded: an event, a controller metric, and (for metrics) an Error
   measurement whose message says what went wrong;
3. retries are bounded: the calls to the broken backend or API are counted against a bound;
4. no canary is promoted on missing evidence: the victim is promoted only when every one of
   its measurements was Successful (the API classes, once the fault passes), else its stable
   ReplicaSet never changes and its canary never had more than the first step's 50%;
5. the victim's token arg comes from a Secret, and no encoding of it (raw, percent-encoded,
   JSON-escaped, repr, base64) is in any object, event, metric, log line or webhook body.

`python -m pytest tests/faults/test_fault_classes.py -s -p no:xdist` prints the table of
class -> outcome (one row per test, `OUTCOME|class|...`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from rollouts.controller.manager import WATCH_RETRY
from rollouts.platform.cluster import Conflict, Unavailable
from tests.faults.backends import Reply, Request
from tests.faults.bench import HEALTHY, HORIZON, SECRET, VICTIM, Bench, Setup, encodings, metric, prometheus, web

ATTEMPTS = 3  # the providers' attempts per measurement (analysis.providers.ATTEMPTS)
PASS_ATTEMPTS = 4  # the reconciler's attempts per API call within one pass


def closed_port() -> str:
    """An address where nothing listens (a stopped server): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def too_many_requests(retry_after: int) -> Unavailable:
    """The port's error for 429 Too Many Requests (the kube adapter maps 429 to Unavailable)."""
    error = Unavailable(f"Too many requests, please try again later (Retry-After: {retry_after})")
    error.code = 429
    return error


@dataclass(frozen=True)
class FaultClass:
    setup: Callable[[], Setup]
    expect: str  # aborted | held | completed | not-started
    check: Callable[[Bench], str]  # the class's own recording and bound; returns the outcome's detail
    # a watch stream is shared by every Rollout of a kind: when it fails, the neighbour's steps are
    # the same but may come up to one watch retry (manager.WATCH_RETRY) per failed poll later
    shared_delay: timedelta = timedelta(0)


# ---------------------------------------------------------------- checks per family


def errored(bench: Bench, *words: str, path: str | None = None, per_measurement: int = ATTEMPTS) -> str:
    """The victim's run errored: Error measurements naming the cause, counted and bounded."""
    errors = [m for m in bench.victim_measurements() if m["phase"] == "Error"]
    assert errors, bench.victim_measurements()
    for measurement in errors:
        for word in words:
            assert word in measurement["message"], measurement["message"]
        assert "Traceback" not in measurement["message"]
    [run] = bench.victim_runs()
    assert run["status"]["phase"] == "Error"
    name = run["metadata"]["name"]
    assert bench.metric("analysis_run_metric_phase", name=name, metric="check", phase="Error") == 1
    assert bench.metric("rollouts_aborts_total", rollout=VICTIM, reason="analysis") == 1
    assert bench.victim_events("RolloutAborted")
    if path is not None:  # every attempt reached the backend, and no more than the attempts of each measurement
        calls = len(bench.backend.requests_to(path))
        assert 0 < calls <= per_measurement * len(errors), (calls, len(errors))
        return f"{len(errors)} Error measurements, {calls} calls; {errors[-1]['message'][:90]}"
    return f"{len(errors)} Error measurements; {errors[-1]['message'][:90]}"


def hook_failed(bench: Bench, *words: str, path: str | None = None, per_ask: int = 3) -> str:
    """The victim's confirm-promotion gate said no (a fault is a no): recorded, bounded, holding."""
    [answer] = [h for h in bench.victim.get("hooks") or [] if h.get("name") == "gate"]
    assert answer.get("ok") is not True and answer.get("error"), answer
    for word in words:
        assert word in answer["error"], answer["error"]
    assert bench.victim_events("WebhookFailed")
    failed = sum(bench.metric("rollouts_hook_calls_total", rollout=VICTIM, type="confirm-promotion", result=result)
                 for result in ("error", "refused"))
    assert failed >= 1 and bench.metric("rollouts_hook_calls_total", rollout=VICTIM, result="ok") == 0
    asks = failed  # one counted call per ask; the gate is asked every interval (5m) over the horizon
    assert asks <= HORIZON / timedelta(minutes=5) + 1, asks
    if path is not None:
        calls = len(bench.backend.requests_to(path))
        assert asks <= calls <= per_ask * asks, (calls, asks)  # retries: 2, so at most three attempts an ask
    return f"{int(asks)} asks answered no; {answer['error'][:90]}"


def requests_with(bench: Bench, code: str, **labels: str) -> float:
    return bench.metric("controller_clientset_k8s_request_total", status_code=code, **labels)


# ---------------------------------------------------------------- the classes


def hook(url: str) -> dict[str, Any]:
    return {"name": "gate", "type": "confirm-promotion", "url": url, "timeout": "300ms", "retries": 2,
            "interval": "5m"}


def redirect_to_itself(path: str) -> Reply:
    return Reply(302, "", headers=(("Location", path),))


def echoing(status: int) -> Callable[[Request], Reply]:
    """A backend that refuses and echoes the Authorization it got, JSON-escaped, in its error body."""
    def reply(request: Request) -> Reply:
        return Reply(status, json.dumps({"status": "error", "errorType": "unauthorized",
                                         "error": f"rejected {request.headers.get('Authorization')}"}))
    return reply


def answering(path: str, reply: Reply | Callable[[Request], Reply]) -> Callable[[Bench], None]:
    def arrange(bench: Bench) -> None:
        bench.backend.answer(path, reply)
    return arrange


def storm_409(bench: Bench) -> None:
    bench.faulty.fail("patch", "VirtualService", f"{VICTIM}-rollout-vsvc", [Conflict("the object has been modified")]
                      * 30)


def storm_429(bench: Bench) -> None:
    bench.faulty.fail("patch_status", "Rollout", VICTIM, [too_many_requests(2) for _ in range(10)])


def outage_500(bench: Bench) -> None:
    bench.faulty.always_fail("create", "ReplicaSet", f"{VICTIM}-", Unavailable("etcdserver: request timed out"))


def watches_cut(bench: Bench) -> None:
    for kind in ("Rollout", "AnalysisRun", "VirtualService"):
        bench.faulty.fail("watch", kind, None, [Unavailable(f"the watch on {kind} broke (injected)")] * 5)


def watches_expire(bench: Bench) -> None:
    for kind in ("Rollout", "ReplicaSet", "VirtualService", "AnalysisRun"):
        bench.faulty.expire_watches(kind, 3)


def slow_api(bench: Bench) -> None:
    bench.faulty.slow_down(0.02, name_prefix=f"{VICTIM}")


def completed_after(code: str, injected: int, **labels: str) -> Callable[[Bench], str]:
    def check(bench: Bench) -> str:
        assert requests_with(bench, code, **labels) == injected
        assert len(bench.faulty.faults) == injected
        return f"{injected} x {code} retried, then completed"
    return check


def not_started(bench: Bench) -> str:
    passes = bench.metric("rollout_reconcile_error_total", name=VICTIM)
    attempts = len([f for f in bench.faulty.faults if f[:2] == ("create", "ReplicaSet")])
    assert attempts == PASS_ATTEMPTS * passes, (attempts, passes)
    # the queue's backoff (5 ms doubling to a 10 s cap: 16 passes in the first minute, then 6 a
    # minute) and a pass for the events of the victim's own objects: never a hot loop
    assert 16 <= passes <= 16 + 8 * HORIZON / timedelta(minutes=1), passes
    assert requests_with(bench, "503", verb="create", kind="ReplicaSet") == attempts
    [event] = bench.victim_events("ReconcileError")
    assert event["type"] == "Warning" and "etcdserver: request timed out" in event["message"]
    return f"{int(passes)} passes x {PASS_ATTEMPTS} attempts, ReconcileError event (count {event['count']})"


def watch_cut_check(bench: Bench) -> str:
    cut = sum(requests_with(bench, "503", verb="watch", kind=kind) for kind in ("Rollout", "AnalysisRun",
                                                                                 "VirtualService"))
    assert cut == 15 and len(bench.faulty.faults) == 15
    return "15 watch polls failed (503 counted), next poll resumed"


def watch_gone_check(bench: Bench) -> str:
    gone = requests_with(bench, "410", verb="watch")
    assert gone == sum(bench.faulty.gone.values()) == 12
    relists = sum(n for (verb, _, _), n in bench.faulty.calls.items() if verb == "list")
    assert relists >= 12
    return f"{int(gone)} watches 410 Gone (counted), {relists} lists"


def slow_check(bench: Bench) -> str:
    slowed = bench.faulty.slowed
    spent = sum(sample.value for family in bench.manager.metrics.registry.collect() for sample in family.samples
                if sample.name in ("rollout_reconcile_sum", "analysis_run_reconcile_sum")
                and sample.labels.get("name", "").startswith(VICTIM))
    assert slowed > 10 and spent >= 0.02 * slowed * 0.9, (slowed, spent)
    return f"{slowed} calls 20 ms slower; reconcile histograms hold {spent:.2f}s for the victim's objects"


FAULTS: dict[str, FaultClass] = {
    "prometheus stopped": FaultClass(
        lambda: Setup(victim_metric=lambda _: metric(prometheus(closed_port()), condition="result[0] >= 0.95")),
        "aborted", lambda b: errored(b, "Connection refused", "failed after 3 attempts")),
    "prometheus slow past the timeout": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(prometheus(f"{u}/slow-prom", timeout=1),
                                                     condition="result[0] >= 0.95"),
                      arrange=answering("/slow-prom", Reply(200, "{}", delay=5.0))),
        "aborted", lambda b: errored(b, "1s", path="/slow-prom")),
    "prometheus 5xx": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(prometheus(f"{u}/prom-5xx"), condition="result[0] >= 0.95"),
                      arrange=answering("/prom-5xx", echoing(503))),
        "aborted", lambda b: errored(b, "503", "failed after 3 attempts", "rejected Bearer *****", path="/prom-5xx")),
    "prometheus answers an HTML page": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(prometheus(f"{u}/prom-html"), condition="result[0] >= 0.95"),
                      arrange=answering("/prom-html", Reply(200, "<html><body>502 Bad Gateway</body></html>",
                                                            content_type="text/html"))),
        "aborted", lambda b: errored(b, path="/prom-html")),
    "prometheus result of the wrong type": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(prometheus(f"{u}/prom-type"), condition="result[0] >= 0.95"),
                      arrange=answering("/prom-type", Reply(200, '{"status":"success","data":{"resultType":"string",'
                                                                 '"result":[1704067200,"not a number"]}}'))),
        "aborted", lambda b: errored(b, path="/prom-type", per_measurement=1)),
    "web metric hanging": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(web(f"{u}/web-hang", timeout=1)),
                      arrange=answering("/web-hang", Reply(200, '{"ok": true}', delay=5.0))),
        "aborted", lambda b: errored(b, "no answer within the 1s timeout", path="/web-hang", per_measurement=1)),
    "web metric refusing": FaultClass(
        lambda: Setup(victim_metric=lambda _: metric(web(f"{closed_port()}/verdict"))),
        "aborted", lambda b: errored(b, "failed after 3 attempts")),
    "web metric redirecting in a loop": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(web(f"{u}/web-loop")),
                      arrange=answering("/web-loop", redirect_to_itself("/web-loop"))),
        "aborted", lambda b: errored(b, "more than 3 redirects", path="/web-loop", per_measurement=4)),
    "web metric answering a huge body": FaultClass(
        lambda: Setup(victim_metric=lambda u: metric(web(f"{u}/web-huge")),
                      arrange=answering("/web-huge", Reply(200, '{"ok": true, "pad": "' + "x" * (8 << 20) + '"}'))),
        "aborted", lambda b: errored(b, "body larger than 1048576 bytes", path="/web-huge", per_measurement=1)),
    "webhook hanging": FaultClass(
        lambda: Setup(hook=lambda u: hook(f"{u}/hook-hang"),
                      arrange=answering("/hook-hang", Reply(200, "ok", delay=5.0))),
        "held", lambda b: hook_failed(b, path="/hook-hang")),
    "webhook refusing": FaultClass(
        lambda: Setup(hook=lambda _: hook(f"{closed_port()}/hook")),
        "held", lambda b: hook_failed(b)),
    "webhook redirecting in a loop": FaultClass(
        lambda: Setup(hook=lambda u: hook(f"{u}/hook-loop"),
                      arrange=answering("/hook-loop", redirect_to_itself("/hook-loop"))),
        "held", lambda b: hook_failed(b, "more than 3 redirects", path="/hook-loop", per_ask=4)),
    "webhook answering a huge body": FaultClass(
        lambda: Setup(hook=lambda u: hook(f"{u}/hook-huge"),
                      arrange=answering("/hook-huge", Reply(500, "y" * (8 << 20)))),
        "held", lambda b: hook_failed(b, "response body larger than 65536 bytes", path="/hook-huge")),
    "API 409 storm": FaultClass(lambda: Setup(arrange=storm_409), "completed",
                                completed_after("409", 30, verb="patch", kind="VirtualService")),
    "API 429 with Retry-After": FaultClass(lambda: Setup(arrange=storm_429), "completed",
                                           completed_after("429", 10, verb="patch_status", kind="Rollout")),
    "API 500s": FaultClass(lambda: Setup(arrange=outage_500), "not-started", not_started),
    "watch streams dropping": FaultClass(lambda: Setup(arrange=watches_cut), "completed", watch_cut_check,
                                         shared_delay=5 * timedelta(seconds=WATCH_RETRY)),
    "watches 410 Gone": FaultClass(lambda: Setup(arrange=watches_expire), "completed", watch_gone_check),
    "slow API server": FaultClass(lambda: Setup(arrange=slow_api), "completed", slow_check),
}

_baseline: dict[str, Any] = {}
_baseline_lock = threading.Lock()


def healthy_story(bench: Bench) -> dict[str, Any]:
    return {"weights": bench.weights.entries, "promoted_at": bench.promoted_at,
            "reconciles": bench.metric("rollout_reconcile_count", name=HEALTHY),
            "status": {k: v for k, v in bench.status.items() if k not in ("conditions",)}}


def baseline() -> dict[str, Any]:
    """The healthy Rollout's story on the bench with no fault (once per process)."""
    with _baseline_lock:
        if not _baseline:
            bench = Bench()
            try:
                bench.run()
                assert bench.promoted_at is not None and bench.victim_promoted()
                _baseline.update(healthy_story(bench), victim=bench.victim_weights.canary_weights)
            finally:
                bench.close()
        return _baseline


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("rollouts.controller.manager").setLevel(logging.CRITICAL)  # ~300 tracebacks of the 500s
    yield caplog


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_class_is_recorded_bounded_and_never_promotes_and_the_neighbour_keeps_moving(
        fault: str, logs: pytest.LogCaptureFixture) -> None:
    case = FAULTS[fault]
    expected = baseline()
    bench = Bench(case.setup())
    try:
        bench.run()
        # 1. the healthy Rollout beside it went exactly as with no fault
        got = healthy_story(bench)
        assert [w for _, *w in got["weights"]] == [w for _, *w in expected["weights"]]
        assert [c for _, _, c in got["weights"]] == [0, 50, 100, 0]
        for (at, *_), (expected_at, *_) in zip(got["weights"], expected["weights"], strict=True):
            assert expected_at <= at <= expected_at + case.shared_delay, (at, expected_at)
        assert expected["promoted_at"] <= got["promoted_at"] <= expected["promoted_at"] + case.shared_delay
        if not case.shared_delay:
            assert got["reconciles"] == expected["reconciles"]
            assert got["status"] == expected["status"]
        # 2 and 3. the class's own recording and bound
        detail = case.check(bench)
        # 4. no promotion on missing evidence
        victim = bench.victim
        canary = bench.victim_weights.canary_weights
        if case.expect == "completed":
            assert bench.victim_promoted() and victim["phase"] == "Healthy"
            assert canary == expected["victim"] == [0, 50, 100, 0]
            measured = bench.victim_measurements()
            assert measured and all(m["phase"] == "Successful" for m in measured)
        else:
            assert not bench.victim_promoted(), bench.victim_stables.values
            assert max(canary) <= 50, canary
            if case.expect == "aborted":
                assert victim["phase"] == "Degraded" and victim["abort"] is True and canary[-1] == 0
            elif case.expect == "held":
                assert victim["phase"] in ("Paused", "Progressing") and not victim.get("abort"), victim
            else:  # not started: no canary ReplicaSet, the VirtualService never written
                assert canary == [0] and not bench.faulty.writes_of("VirtualService", f"{VICTIM}-rollout-vsvc")
        # 5. the secret is nowhere, in no encoding
        assert any(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in bench.backend.seen) or \
            case.expect in ("not-started",) or "refusing" in fault or "stopped" in fault
        produced = bench.produced(logs.text)
        assert produced["logs"], "the controller logged something"
        for where, text in produced.items():
            for encoding, form in encodings(SECRET).items():
                assert form not in text, f"the secret, {encoding}, is in the {where}"
        print(f"\nOUTCOME|{fault}|{case.expect}|victim {victim.get('phase')}, canary weights {canary}|{detail}")
    finally:
        bench.close()
