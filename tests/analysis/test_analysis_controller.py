"""The AnalysisRun controller shell against InMemoryCluster, a scripted provider and a stepped clock."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from analysis.controller import AnalysisController
from analysis.model import Metric
from analysis.providers import ProviderError, Providers, Result
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Conflict
from rollouts.platform.patches import merge_diff

NS = "shop"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class ScriptedProvider:
    """A Provider: answers each measurement from a script (a value, or a ProviderError to raise)."""

    def __init__(self, script: Iterable[object]) -> None:
        self.script = list(script)
        self.calls: list[tuple[Metric, datetime]] = []

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.calls.append((metric, at))
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, ProviderError):
            raise answer
        return Result(value=answer, metadata={"ResolvedPrometheusQuery": metric.provider.prometheus.query
                                              if metric.provider.prometheus else ""})


class CountingCluster:
    """InMemoryCluster, counting status writes; `before_status` runs before the first one."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner
        self.status_writes = 0
        self.before_status: Any = None

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.inner.get(kind, name, namespace)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.inner.create(obj)

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> dict[str, Any]:
        if self.before_status is not None:
            hook, self.before_status = self.before_status, None
            hook()
        self.status_writes += 1
        return self.inner.patch_status(kind, name, namespace, patch)


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(T0)


@pytest.fixture
def cluster(clock: SteppedClock) -> CountingCluster:
    return CountingCluster(InMemoryCluster(clock=clock.now, workloads=False))


def create_run(cluster: CountingCluster, *metrics: dict[str, Any], name: str = "web-abc-1", **spec: Any) -> None:
    cluster.inner.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                          "metadata": {"name": name, "namespace": NS}, "spec": {"metrics": list(metrics), **spec}})


def rate(**fields: Any) -> dict[str, Any]:
    return {"name": "success-rate", "successCondition": "result[0] >= 0.95",
            "provider": {"prometheus": {"address": "http://prom:9090", "query": "sum(rate(ok[1m]))"}}, **fields}


def controller(
    cluster: CountingCluster, clock: SteppedClock, provider: ScriptedProvider, **kwargs: Any
) -> AnalysisController:
    return AnalysisController(cluster, Providers({"prometheus": provider}), clock=clock, **kwargs)


def status(cluster: CountingCluster, name: str = "web-abc-1") -> dict[str, Any]:
    return cluster.get("AnalysisRun", name, NS).get("status") or {}


def events(cluster: CountingCluster) -> list[tuple[str, str, str]]:
    return [(e["reason"], e["type"], e["message"]) for e in cluster.inner.list("Event", NS)]


def run_to_end(ctl: AnalysisController, clock: SteppedClock, limit: int = 20) -> list[float | None]:
    delays = []
    for _ in range(limit):
        delay = ctl.reconcile(NS, "web-abc-1")
        delays.append(delay)
        if delay is None:
            return delays
        clock.advance(delay)
    raise AssertionError(f"run did not finish: {delays}")


def test_run_goes_successful_after_count_measurements(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m", count=3))
    provider = ScriptedProvider([[0.99], [0.97], [0.98]])
    delays = run_to_end(controller(cluster, clock, provider), clock)
    assert delays == [60, 60, None]
    assert [at for _, at in provider.calls] == [T0, T0.replace(minute=1), T0.replace(minute=2)]
    final = status(cluster)
    assert final["phase"] == "Successful" and final["startedAt"] == "2024-01-01T00:00:00Z"
    assert final["completedAt"] == "2024-01-01T00:02:00Z"
    result = final["metricResults"][0]
    assert (result["count"], result["successful"], result["phase"]) == (3, 3, "Successful")
    assert [m["value"] for m in result["measurements"]] == ["[0.99]", "[0.97]", "[0.98]"]
    assert result["measurements"][0]["metadata"] == {"ResolvedPrometheusQuery": "sum(rate(ok[1m]))"}
    assert sorted(events(cluster)) == [
        ("AnalysisRunSuccessful", "Normal", "Analysis Completed. Result: Successful"),
        ("MetricSuccessful", "Normal", "Metric 'success-rate' Completed. Result: Successful"),
    ]
    event = cluster.inner.list("Event", NS)[0]
    assert event["involvedObject"]["kind"] == "AnalysisRun" and event["involvedObject"]["name"] == "web-abc-1"
    assert event["reportingComponent"] == "rollouts-controller" and event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2024-01-01T00:02:00Z"


def test_failing_run(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m", count=3))
    delays = run_to_end(controller(cluster, clock, ScriptedProvider([[0.99], [0.91]])), clock)
    assert delays == [60, None]
    final = status(cluster)
    assert final["phase"] == "Failed"
    assert final["message"] == ('Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0): '
                                'result [0.91] did not satisfy successCondition "result[0] >= 0.95"')
    failed = ("AnalysisRunFailed", "Warning", f"Analysis Completed. Result: Failed: {final['message']}")
    assert failed in events(cluster)


def test_provider_errors_end_in_error_after_the_consecutive_error_limit(cluster: CountingCluster,
                                                                         clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="5m", count=3))
    provider = ScriptedProvider([ProviderError("Get http://prom:9090: connection refused")])
    delays = run_to_end(controller(cluster, clock, provider), clock)
    assert delays == [10, 10, 10, 10, None]  # errors are retried after 10 s whatever the interval
    final = status(cluster)
    assert final["phase"] == "Error"
    assert final["message"] == ('Metric "success-rate" assessed Error due to consecutiveErrors (5) > '
                                'consecutiveErrorLimit (4): Get http://prom:9090: connection refused')
    assert final["metricResults"][0]["error"] == 5 and final["metricResults"][0]["count"] == 0


def test_status_is_written_only_when_it_changes(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m", count=2))
    provider = ScriptedProvider([[0.99]])
    ctl = controller(cluster, clock, provider)
    assert ctl.reconcile(NS, "web-abc-1") == 60
    assert cluster.status_writes == 1
    version = cluster.get("AnalysisRun", "web-abc-1", NS)["metadata"]["resourceVersion"]
    clock.advance(30)
    assert ctl.reconcile(NS, "web-abc-1") == 30  # nothing due: no measurement, no write
    assert ctl.reconcile(NS, "web-abc-1") == 30
    assert cluster.status_writes == 1 and len(provider.calls) == 1
    assert cluster.get("AnalysisRun", "web-abc-1", NS)["metadata"]["resourceVersion"] == version
    clock.advance(30)
    assert ctl.reconcile(NS, "web-abc-1") is None and cluster.status_writes == 2
    assert ctl.reconcile(NS, "web-abc-1") is None and cluster.status_writes == 2 and len(provider.calls) == 2


def test_a_restarted_controller_continues_from_status(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m", count=3))
    provider = ScriptedProvider([[0.99], [0.99], [0.99]])
    assert controller(cluster, clock, provider).reconcile(NS, "web-abc-1") == 60
    clock.advance(20)
    fresh = controller(cluster, clock, provider)  # new instance, same cluster: no state carried over
    assert fresh.reconcile(NS, "web-abc-1") == 40 and len(provider.calls) == 1
    clock.advance(40)
    assert fresh.reconcile(NS, "web-abc-1") == 60
    assert status(cluster)["metricResults"][0]["count"] == 2
    assert status(cluster)["startedAt"] == "2024-01-01T00:00:00Z"


def test_secrets_are_resolved_for_the_provider_and_redacted_everywhere(cluster: CountingCluster,
                                                                       clock: SteppedClock) -> None:
    token = "s3cr3t-t0ken"
    cluster.inner.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-creds", "namespace": NS},
                          "data": {"token": base64.b64encode(token.encode()).decode()}})
    metric = rate()
    metric["provider"]["prometheus"]["headers"] = [{"key": "Authorization", "value": "Bearer {{args.token}}"}]
    create_run(cluster, metric,
               args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom-creds", "key": "token"}}}])
    provider = ScriptedProvider([ProviderError(f"401 Unauthorized for Bearer {token}")])
    ctl = controller(cluster, clock, provider)
    run_to_end(ctl, clock)
    sent = provider.calls[0][0].provider.prometheus
    assert sent is not None and sent.headers is not None and sent.headers[0].value == f"Bearer {token}"
    document = str(cluster.get("AnalysisRun", "web-abc-1", NS)) + str(cluster.inner.list("Event", NS))
    assert token not in document
    assert "401 Unauthorized for Bearer *****" in status(cluster)["message"]
    spec_args = cluster.get("AnalysisRun", "web-abc-1", NS)["spec"]["args"]
    assert spec_args == [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom-creds", "key": "token"}}}]


@pytest.mark.parametrize(("secret", "message"), [
    (None, "Unable to resolve metric arguments: args.token: secret 'prom-creds' not found in namespace 'shop'"),
    ({"other": "eA=="},
     "Unable to resolve metric arguments: args.token: key 'token' does not exist in secret 'prom-creds'"),
])
def test_unreadable_secret_ends_the_run_in_error(cluster: CountingCluster, clock: SteppedClock,
                                                 secret: dict[str, str] | None, message: str) -> None:
    if secret is not None:
        cluster.inner.create({"apiVersion": "v1", "kind": "Secret", "data": secret,
                              "metadata": {"name": "prom-creds", "namespace": NS}})
    create_run(cluster, rate(),
               args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom-creds", "key": "token"}}}])
    provider = ScriptedProvider([[1.0]])
    assert controller(cluster, clock, provider).reconcile(NS, "web-abc-1") is None
    assert status(cluster)["phase"] == "Error" and status(cluster)["message"] == message
    assert provider.calls == []
    assert [(r, t) for r, t, _ in events(cluster)] == [("AnalysisRunError", "Warning")]


def test_unsupported_provider_is_a_spec_error(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(), {"name": "hook", "provider": {"web": {"url": "http://hook"}}})
    provider = ScriptedProvider([[1.0]])
    assert controller(cluster, clock, provider).reconcile(NS, "web-abc-1") is None
    final = status(cluster)
    assert final["phase"] == "Error" and provider.calls == []
    assert final["message"].startswith("Analysis spec invalid: metric 'hook': provider 'web' is not supported")


def test_malformed_run_is_an_error_not_a_crash(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, {"name": "no-provider", "interval": "1m"})
    assert controller(cluster, clock, ScriptedProvider([[1.0]])).reconcile(NS, "web-abc-1") is None
    assert status(cluster)["phase"] == "Error"
    assert status(cluster)["message"] == "Analysis spec invalid: spec.metrics.0.provider: Field required"


def test_conflict_is_retried_against_the_fresh_run(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m"))
    cluster.before_status = lambda: cluster.inner.patch("AnalysisRun", "web-abc-1", NS, {"spec": {"terminate": True}})
    provider = ScriptedProvider([[0.99]])
    assert controller(cluster, clock, provider).reconcile(NS, "web-abc-1") is None
    final = status(cluster)
    assert final["phase"] == "Successful" and final["message"] == "Run Terminated"
    assert final["metricResults"][0]["count"] == 1 and len(provider.calls) == 1
    assert cluster.status_writes == 2  # the stale write was refused, the second one landed


def test_a_run_deleted_while_measuring_is_left_alone(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m"))
    cluster.before_status = lambda: cluster.inner.delete("AnalysisRun", "web-abc-1", NS)
    assert controller(cluster, clock, ScriptedProvider([[0.99]])).reconcile(NS, "web-abc-1") is None
    assert cluster.inner.list("AnalysisRun", NS) == [] and cluster.inner.list("Event", NS) == []


def test_persistent_conflicts_surface_to_the_queue(cluster: CountingCluster, clock: SteppedClock) -> None:
    create_run(cluster, rate(interval="1m"))

    def always_conflict(kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> dict[str, Any]:
        raise Conflict("the object has been modified")

    cluster.patch_status = always_conflict  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        controller(cluster, clock, ScriptedProvider([[0.99]])).reconcile(NS, "web-abc-1")


def test_missing_and_completed_runs_need_nothing(cluster: CountingCluster, clock: SteppedClock) -> None:
    provider = ScriptedProvider([[0.99]])
    ctl = controller(cluster, clock, provider)
    assert ctl.reconcile(NS, "nope") is None
    create_run(cluster, rate())
    assert ctl.reconcile(NS, "web-abc-1") is None and status(cluster)["phase"] == "Successful"
    assert ctl.reconcile(NS, "web-abc-1") is None and len(provider.calls) == 1


def test_events_go_to_an_injected_sink(cluster: CountingCluster, clock: SteppedClock) -> None:
    class Sink:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, str, str]] = []

        def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:  # noqa: A002
            self.seen.append((obj["metadata"]["name"], type, reason, message))

    sink = Sink()
    create_run(cluster, rate())
    controller(cluster, clock, ScriptedProvider([[0.5]]), events=sink).reconcile(NS, "web-abc-1")
    assert [(n, t, r) for n, t, r, _ in sink.seen] == [("web-abc-1", "Warning", "MetricFailed"),
                                                       ("web-abc-1", "Warning", "AnalysisRunFailed")]
    assert cluster.inner.list("Event", NS) == []


def test_custom_secret_lookup_is_used(cluster: CountingCluster, clock: SteppedClock) -> None:
    asked = []

    def lookup(namespace: str, name: str, key: str) -> str:
        asked.append((namespace, name, key))
        return "0.95"

    create_run(cluster, rate(successCondition="result[0] >= {{args.t}}"),
               args=[{"name": "t", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    controller(cluster, clock, ScriptedProvider([[0.99]]), secret_lookup=lookup).reconcile(NS, "web-abc-1")
    assert asked == [(NS, "s", "k")] and status(cluster)["phase"] == "Successful"


@pytest.mark.parametrize(("old", "new", "patch"), [
    ({}, {}, {}),
    ({"a": 1}, {"a": 1}, {}),
    ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
    ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}, {"a": {"y": 3}}),
    ({"l": [1, 2]}, {"l": [1, 2, 3]}, {"l": [1, 2, 3]}),
    ({}, {"a": {"x": 1}}, {"a": {"x": 1}}),
])
def test_merge_diff(old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]) -> None:
    assert merge_diff(old, new) == patch
