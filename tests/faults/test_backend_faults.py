"""Backend faults during a canary (DESIGN §6): the analysis backend breaks, the canary never wins.

Both controllers run on the InMemoryCluster with a SteppedClock, with the REAL providers
(analysis.providers.registry.default_providers, no wait between retries) talking real HTTP:
a real Prometheus that is stopped mid-canary, and a local HTTP server that hangs, fails
or answers garbage. Each fault must end as data (Error measurements naming the cause),
the AnalysisRun in Error, the Rollout aborted with all traffic back on stable, and at no
moment a promotion or a weight above the one set before the fault.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from rollouts.demo.prometheus import PrometheusServer
from tests.conftest import require_prometheus
from tests.faults.backends import Backend, Reply, Request
from tests.faults.harness import NEW_IMAGE, FaultScenario, everything, real_providers, template
from tests.fixtures import istio_history

HEALTHY = istio_history.HEALTHY


def assert_never_promoted(scenario: FaultScenario, *, first_stable: str, top_weight: int) -> None:
    """The stable ReplicaSet never changed, and the canary never got more than `top_weight`."""
    scenario.observe()
    assert [stable for _, stable in scenario.stable_hashes.values if stable] == [first_stable], "never promoted"
    assert max(scenario.weights.canary_weights) <= top_weight
    assert scenario.vs_weights == (100, 0), "all traffic back on stable"


def assert_aborted_because_of(scenario: FaultScenario, *words: str) -> None:
    status = scenario.status
    assert scenario.phase == "Degraded" and status["abort"] is True
    assert "analysis phase Error" in status["message"], status["message"]
    for word in words:
        assert word in status["message"], status["message"]
    assert scenario.events("RolloutAborted")


# ---------------------------------------------------------------- Prometheus stops mid-canary


@pytest.fixture
def prometheus_server() -> Iterator[PrometheusServer]:
    require_prometheus()
    with PrometheusServer(backfill=istio_history.openmetrics()) as server:
        yield server


def test_prometheus_down_mid_canary_errors_the_run_and_aborts_never_promotes(
        prometheus_server: PrometheusServer) -> None:
    # Given the istio-canary example measuring the backfilled healthy service on the REAL
    # Prometheus, on a clock inside the backfilled history, with a 1h pause at 50%
    scenario = FaultScenario(providers=real_providers(prometheus_address=prometheus_server.url))
    scenario.clock.advance_to(istio_history.START + timedelta(minutes=10))
    started = scenario.clock.now()
    scenario.rollout_doc["spec"]["strategy"]["canary"]["analysis"]["args"][0]["value"] = HEALTHY
    scenario.set_pause("1h")
    try:
        scenario.given_healthy()
        first_stable = scenario.status["stableRS"]
        # When a new image is rolled out and the background analysis measured twice (0.99 each)
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: len(scenario.analysis_runs()) == 1
                           and len(scenario.measurements("success-rate")) == 2)
        assert [m["phase"] for m in scenario.measurements("success-rate")] == ["Successful", "Successful"]
        assert scenario.vs_weights == (50, 50) and scenario.phase == "Paused"
        # and then Prometheus goes away
        prometheus_server.stop()
        scenario.run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
        # Then the 5th consecutive Error (consecutiveErrorLimit 4; errors are retried every 10 s) errors the run
        errors = [m for m in scenario.measurements("success-rate") if m["phase"] == "Error"]
        assert len(errors) == 5
        resolved = scenario.measurements("success-rate")[0]["metadata"]["ResolvedPrometheusQuery"]
        assert HEALTHY in resolved and "{{" not in resolved
        for measurement in errors:
            message = measurement["message"]
            assert repr(resolved) in message, "the resolved query is in the message"
            assert prometheus_server.url in message and "failed after 3 attempts" in message
            assert "Connection refused" in message
            assert not measurement.get("value"), f"no value was made up: {measurement}"
        [result] = scenario.metric_results()
        assert result["phase"] == "Error" and result["consecutiveError"] == 5
        [run] = scenario.analysis_runs()
        assert run["status"]["phase"] == "Error"
        assert scenario.clock.now() == started + timedelta(minutes=10, seconds=40)
        # and the rollout aborted and says why; nothing was promoted, the weight never rose past 50
        assert_aborted_because_of(scenario, "success-rate", "consecutiveErrorLimit", "Connection refused")
        assert_never_promoted(scenario, first_stable=first_stable, top_weight=50)
        assert scenario.weights.canary_weights == [0, 50, 0]
        # and it stays so: the pause's end (1h) passes and nothing moves
        scenario.run_for(3600)
        assert_never_promoted(scenario, first_stable=first_stable, top_weight=50)
    finally:
        scenario.close()


# ---------------------------------------------------------------- a web metric whose backend misbehaves


def web_metric(url: str, *, json_path: str | None = "{$.ok}", error_limit: int = 1,
               timeout: int | None = None) -> dict[str, Any]:
    web: dict[str, Any] = {"url": url}
    if json_path is not None:
        web["jsonPath"] = json_path
    if timeout is not None:
        web["timeoutSeconds"] = timeout
    return {"name": "webhook", "interval": "1m", "successCondition": "result == true",
            "consecutiveErrorLimit": error_limit, "provider": {"web": web}}


@pytest.fixture
def backend() -> Iterator[Backend]:
    with Backend() as server:
        yield server


FAULTS = {
    # a hung backend: no answer within timeoutSeconds (1 s); one Error ends the run (limit 0)
    "timeout": (Reply(200, '{"ok": true}', delay=5.0), {"timeout": 1, "error_limit": 0},
                ["no answer within the 1s timeout", "failed after 1 attempt"]),  # one deadline per measurement
    "http-500": (Reply(500, "upstream connect error"), {},
                 ["received non 2xx response code: 500", "upstream connect error", "failed after 3 attempts"]),
    "garbage": (Reply(200, "<html>502 Bad Gateway</html>", content_type="text/html"), {},
                ['could not evaluate successCondition "result == true"']),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_webhook_errors_the_run_and_never_promotes(backend: Backend, fault: str) -> None:
    reply, options, words = FAULTS[fault]
    # Given a web metric (jsonPath {$.ok}, success when true) that passes while the backend is healthy
    backend.answer("/verdict", Reply(200, '{"ok": true}'))
    scenario = FaultScenario(providers=real_providers())
    scenario.replace_template(template("success-rate", [web_metric(f"{backend.url}/verdict", **options)]))
    scenario.set_pause("1h")
    try:
        scenario.given_healthy()
        first_stable = scenario.status["stableRS"]
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: len(scenario.analysis_runs()) == 1 and len(scenario.measurements("webhook")) == 1)
        assert scenario.measurements("webhook")[0]["phase"] == "Successful"
        # When the backend starts to misbehave
        backend.answer("/verdict", reply)
        scenario.run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
        # Then every later measurement is an Error whose message says what went wrong
        later = scenario.measurements("webhook")[1:]
        assert later and all(m["phase"] == "Error" for m in later)
        assert len(later) == options.get("error_limit", 1) + 1
        for measurement in later:
            for word in words:
                assert word in measurement["message"], measurement["message"]
            assert "Traceback" not in measurement["message"]
        if fault == "garbage":
            assert later[0]["value"] == "<html>502 Bad Gateway</html>", "the body is shown as the value"
        [run] = scenario.analysis_runs()
        assert run["status"]["phase"] == "Error"
        assert all(m["phase"] != "Successful" for m in later)
        # and the rollout aborted: never promoted, back to 0%
        assert_aborted_because_of(scenario, "webhook")
        assert_never_promoted(scenario, first_stable=first_stable, top_weight=50)
        assert scenario.weights.canary_weights == [0, 50, 0]
    finally:
        scenario.close()


# ---------------------------------------------------------------- secrets never leak

SECRET = "s3cr3t-T0KEN-4242"


def echo(status: int) -> Any:
    """A backend that rejects the call and echoes what it got (path and Authorization) in the body."""
    def reply(request: Request) -> Reply:
        said = {"status": "error", "errorType": "unauthorized",
                "error": f"rejected {request.path} with {request.headers.get('Authorization')}"}
        return Reply(status, json.dumps(said))
    return reply


def test_a_secret_arg_never_appears_in_any_object_event_metric_or_log(
        backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    # logs as the controller command configures them, at --log-level debug (urllib3 and the
    # kubernetes client are kept at WARNING there)
    caplog.set_level(logging.DEBUG)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    backend.answer("/api/v1/query", echo(401))
    backend.answer("/tenants/", echo(500))
    # Given a template whose token arg comes from a Secret, used in a Prometheus header and in a web URL
    metrics = [
        {"name": "prom", "interval": "1m", "successCondition": "result[0] >= 0.95", "consecutiveErrorLimit": 1,
         "provider": {"prometheus": {"address": backend.url, "query": 'sum(up{service="{{args.service-name}}"})',
                                     "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]}}},
        {"name": "hook", "interval": "1m", "successCondition": "result == true", "consecutiveErrorLimit": 1,
         "provider": {"web": {"url": f"{backend.url}/tenants/{{{{args.token}}}}/verdict?key={{{{args.token}}}}",
                              "jsonPath": "{$.ok}"}}},
    ]
    args = [{"name": "service-name"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "metrics-creds", "key": "token"}}}]
    scenario = FaultScenario(providers=real_providers())
    scenario.replace_template(template("success-rate", metrics, args=args))
    scenario.docs.append({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "metrics-creds", "namespace": "default"},
                          "data": {"token": base64.b64encode(SECRET.encode()).decode()}})
    try:
        scenario.given_healthy()
        # When a canary runs and the backend rejects every call, echoing the token back
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Degraded", max_seconds=3600)
        # Then the token was really used (so error messages could have carried it)...
        assert any(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in backend.requests_to("/api/v1/query"))
        assert any(SECRET in r.path for r in backend.requests_to("/tenants/"))
        # ...the run errored with messages saying why, the secret masked
        [run] = scenario.analysis_runs()
        assert run["status"]["phase"] == "Error"
        messages = [m["message"] for name in ("prom", "hook") for m in scenario.measurements(name)]
        assert any("HTTP 401" in m and "*****" in m for m in messages), messages
        assert any("500" in m and "*****" in m for m in messages), messages
        # ...and the secret is nowhere: not in any object (AnalysisRun, Events, Rollout...), the
        # recorded events, the controller's metrics, or any log line
        assert SECRET not in everything(scenario.cluster, skip=("Secret",))
        assert not [e for e in scenario.manager.recorder.recorded if SECRET in e.message]
        assert SECRET not in generate_latest(scenario.manager.metrics.registry).decode()
        logged = [r.getMessage() + (str(r.exc_info) if r.exc_info else "") for r in caplog.records]
        assert logged, "the controller logged something"
        assert not [line for line in logged if SECRET in line]
        assert SECRET not in caplog.text
    finally:
        scenario.close()
