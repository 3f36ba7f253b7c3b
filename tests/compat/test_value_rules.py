"""Value-level rules Argo applies, as `rollouts lint` applies them (argo-rollouts.md §1.3, §3.3).

Each row is a value Argo accepts (no error) or rejects (an error on the named path), run
through the whole lint pipeline: CRD schema, models, semantic checks.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from analysis.model import parse_duration
from rollouts.cli import lint
from rollouts.spec import manifests

ROLLOUT: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
    "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "web:2"}]}},
             "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}},
}  # fmt: skip
CANARY = "spec.strategy.canary"


def errors(*docs: dict[str, Any]) -> list[str]:
    """`path: message` of every lint error for the documents, linted together."""
    loaded = manifests.Loaded(files=["mem.yaml"],
                              documents=[manifests.Document("mem.yaml", i, d)
                                         for i, d in enumerate(docs, 1)])  # fmt: skip
    return [f"{f.problem.path}: {f.problem.message}" for f in lint.lint(loaded) if f.problem.is_error]


def rule_errors(*docs: dict[str, Any]) -> list[str]:
    """`errors`, less the refusal of a traffic router this controller does not run
    (problems.router_not_run), for the value rules Argo applies under those routers."""
    return [e for e in errors(*docs) if "is not run by this controller" not in e]


def rollout(**canary: Any) -> dict[str, Any]:
    doc = copy.deepcopy(ROLLOUT)
    doc["spec"]["strategy"]["canary"].update(canary)
    return doc


def template(metric: dict[str, Any], *, args: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": "checks"},
            "spec": {"args": [{"name": a, "value": "2"} for a in args],
                     "metrics": [{"name": "m", "successCondition": "result[0] > 0",
                                  "provider": {"prometheus": {"address": "http://prom:9090", "query": "up"}},
                                  **metric}]}}


# ---------------------------------------------------------------- pause.duration


@pytest.mark.parametrize(("duration", "seconds"), [
    (10, 10), ("10", 10), ("10s", 10), ("1h30m", 5400), ("1.5m", 90), (0, 0), ("500ms", 0), ("2h", 7200),
])  # fmt: skip
def test_pause_durations_argo_accepts(duration: int | str, seconds: int) -> None:
    assert parse_duration(duration) == seconds  # Go's time.ParseDuration, truncated to seconds
    assert errors(rollout(steps=[{"setWeight": 10}, {"pause": {"duration": duration}}])) == []


@pytest.mark.parametrize(("duration", "message"), [
    ("1d", "'1d' is not a duration"),        # Go has no d unit
    ("-5s", "'-5s' is not a duration"),      # Argo: DurationSeconds() < 0 is invalid
    (-5, "-5 is not a duration"),
    ("10 s", "'10 s' is not a duration"),
    ("soon", "'soon' is not a duration"),
    (1.5, "must be a number or a string, got 1.5"),  # IntOrString: the API server rejects a float
])  # fmt: skip
def test_pause_durations_argo_rejects(duration: Any, message: str) -> None:
    assert errors(rollout(steps=[{"pause": {"duration": duration}}])) == [
        f"{CANARY}.steps[0].pause.duration: {message}"]


# ---------------------------------------------------------------- maxSurge / maxUnavailable


@pytest.mark.parametrize(("surge", "unavailable"), [
    ("25%", "25%"), (1, 0), (0, 1), (0, "10%"), ("100%", 0), ("1", 0), (None, 0),
])  # fmt: skip
def test_surge_and_unavailable_argo_accepts(surge: Any, unavailable: Any) -> None:
    fields = {k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable)) if v is not None}
    assert errors(rollout(**fields)) == []


@pytest.mark.parametrize(("surge", "unavailable", "message"), [
    (0, 0, "maxSurge and maxUnavailable are both 0, so no pod can be replaced"),  # Argo: both can not be zero
    ("0%", 0, "maxSurge and maxUnavailable are both 0, so no pod can be replaced"),
    ("0%", "0%", "maxSurge and maxUnavailable are both 0, so no pod can be replaced"),
    ("lots", 1, "'lots' is not a count or a percentage"),
    ("25.5%", 1, "'25.5%' is not a count or a percentage"),  # Argo's int-or-percent parse fails on it
])  # fmt: skip
def test_surge_and_unavailable_argo_rejects(surge: Any, unavailable: Any, message: str) -> None:
    assert errors(rollout(maxSurge=surge, maxUnavailable=unavailable)) == [f"{CANARY}.maxSurge: {message}"]


# ---------------------------------------------------------------- count, limits, interval


@pytest.mark.parametrize("metric", [
    {"count": "{{args.n}}", "interval": "1m"},
    {"count": "{{args.n}}"},  # the interval rule is judged when the run is built
    {"count": 5, "interval": "{{args.every}}", "failureLimit": "{{args.f}}"},
    {"count": "{{ args.n }}", "interval": "30s", "inconclusiveLimit": "{{args.i}}",
     "consecutiveErrorLimit": "{{args.e}}", "consecutiveSuccessLimit": "{{args.s}}", "failureLimit": -1},
    {"count": 1}, {"count": 0}, {},  # one measurement
    {"count": "3", "interval": "10s"},  # IntOrString: a numeric string is a count
    {"interval": "5m"},  # background only: runs until the Rollout terminates it
])  # fmt: skip
def test_metric_counts_and_limits_argo_accepts(metric: dict[str, Any]) -> None:
    args = ("n", "every", "f", "i", "e", "s")
    assert errors(template(metric, args=args)) == []


@pytest.mark.parametrize(("metric", "error"), [
    ({"count": 3}, "spec.metrics[0].interval: count 3 needs an interval between measurements"),
    ({"count": "3"}, "spec.metrics[0].interval: count 3 needs an interval between measurements"),
    ({"count": "three", "interval": "1m"}, "spec.metrics[0].count: 'three' is not an integer"),
    ({"failureLimit": "{{args.nope}}"}, "spec.metrics[0]: metric 'm' uses {{args.nope}} but no arg 'nope' is declared"),
    ({"count": 2, "interval": "1m", "failureLimit": 3},
     "spec.metrics[0].count: count 2 is less than failureLimit + consecutiveSuccessLimit (3), so that limit can "
     "never be reached"),
])  # fmt: skip
def test_metric_counts_and_limits_argo_rejects(metric: dict[str, Any], error: str) -> None:
    assert errors(template(metric)) == [error]


# ---------------------------------------------------------------- analysis steps need a count


def step_analysis() -> dict[str, Any]:
    return rollout(steps=[{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "checks"}]}}])


def background_analysis() -> dict[str, Any]:
    return rollout(analysis={"templates": [{"templateName": "checks"}]})


@pytest.mark.parametrize("metric", [{"interval": "1m", "count": 3}, {}, {"interval": "1m", "count": "{{args.n}}"}])
def test_a_step_analysis_metric_with_a_count_is_accepted(metric: dict[str, Any]) -> None:
    assert errors(step_analysis(), template(metric, args=("n",))) == []


@pytest.mark.parametrize("metric", [{"interval": "1m"}, {"interval": "1m", "count": 0}])
def test_a_step_analysis_metric_without_a_count_runs_indefinitely(metric: dict[str, Any]) -> None:
    """Argo: "AnalysisTemplate checks has metric m which runs indefinitely" (InvalidSpec)."""
    assert errors(step_analysis(), template(metric)) == [
        f"{CANARY}.steps[1].analysis.templates[0]: AnalysisTemplate 'checks' has metric 'm' which runs indefinitely "
        "(interval 1m with no count)"]


def test_the_same_metric_is_fine_for_background_analysis() -> None:
    assert errors(background_analysis(), template({"interval": "1m"})) == []


# ---------------------------------------------------------------- setWeight and maxTrafficWeight


def test_set_weight_is_a_percentage_unless_the_router_has_a_max_traffic_weight() -> None:
    nginx = {"nginx": {"stableIngress": "web"}}
    assert errors(rollout(steps=[{"setWeight": 101}])) == [f"{CANARY}.steps[0].setWeight: 101 is not between 0 and 100"]
    routed = rollout(canaryService="c", stableService="s", trafficRouting={**nginx, "maxTrafficWeight": 1000},
                     steps=[{"setWeight": 500}])  # fmt: skip
    assert rule_errors(routed) == []  # Argo: setWeight is checked against maxTrafficWeight
    routed["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 1001}]
    assert rule_errors(routed) == [f"{CANARY}.steps[0].setWeight: 1001 is not between 0 and 1000"]


def test_ping_pong_with_istio_is_valid() -> None:
    """Argo validation.go: "Ping-pong feature works with the ALB, Istio, and plugin-based
    traffic routers only"; with pingPong, canaryService and stableService are not required."""
    ping = {"pingService": "ping", "pongService": "pong"}
    istio = {"istio": {"virtualService": {"name": "vs"}}}
    assert errors(rollout(pingPong=ping, trafficRouting=istio)) == []
    assert errors(rollout(pingPong=ping, canaryService="c", stableService="s", trafficRouting=istio)) == []
    assert rule_errors(rollout(pingPong=ping, trafficRouting={"alb": {"ingress": "web", "servicePort": 80}})) == []
