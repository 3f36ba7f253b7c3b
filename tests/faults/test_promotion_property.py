"""Property: a canary is promoted only when every analysis that gates it has the successes
its limits require (the safety issue, defect 4).

Hypothesis draws a step layout (setWeight, pause and analysis steps, optionally a
background analysis) and, per metric, a sequence of measurement outcomes (a passing
value, a failing value, a provider error). Both controllers run the release on the
InMemoryCluster with a stepped clock. Whatever happens, if the new revision became
stable, then every step run of that revision and its background run were Successful
with at least one successful measurement per metric, and the canary never had 100% of
the traffic before that.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollouts.controller.manager import Stalled
from tests.controller.dsl import Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
OK, BAD, ERROR = [0.99], [0.42], RuntimeError("backend down")
OUTCOMES = st.sampled_from(["ok", "bad", "error"])
VALUES = {"ok": OK, "bad": BAD, "error": ERROR}


def template(name: str, metric: str, *, count: int | None, interval: str, failure_limit: int,
             error_limit: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": metric, "interval": interval, "successCondition": "result[0] >= 0.95",
                            "failureLimit": failure_limit, "consecutiveErrorLimit": error_limit,
                            "provider": {"prometheus": {"address": "http://prometheus:9090", "query": metric}}}
    if count is not None:
        spec["count"] = count
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"metrics": [spec]}}


@st.composite
def releases(draw: st.DrawFn) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["setWeight", "pause", "analysis"]))
        if kind == "setWeight":
            steps.append({"setWeight": draw(st.sampled_from([10, 25, 50, 90]))})
        elif kind == "pause":
            steps.append({"pause": {"duration": draw(st.sampled_from([0, "30s", "2m"]))}})
        else:
            steps.append({"analysis": {"templates": [{"templateName": "step-check"}]}})
    count = draw(st.integers(1, 3))
    return {
        "steps": steps,
        "step_template": template("step-check", "step-metric", count=count, interval="30s",
                                  failure_limit=draw(st.integers(0, count - 1)), error_limit=draw(st.integers(0, 2))),
        "background": draw(st.booleans()),
        "bg_template": template("bg-check", "bg-metric", count=None, interval="1m",
                                failure_limit=draw(st.integers(0, 2)), error_limit=draw(st.integers(0, 2))),
        "step_script": draw(st.lists(OUTCOMES, min_size=1, max_size=8)),
        "bg_script": draw(st.lists(OUTCOMES, min_size=1, max_size=8)),
    }


def evidence_of(run: dict[str, Any]) -> bool:
    status = run.get("status") or {}
    return status.get("phase") == "Successful" and all(
        (result.get("successful") or 0) >= 1 for result in status.get("metricResults") or [{}])


def gated_by(run: dict[str, Any], pod_hash: str) -> bool:
    return bool(run["metadata"]["labels"].get("rollouts-pod-template-hash") == pod_hash)


@settings(max_examples=150, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(releases())
def test_promoted_only_on_the_evidence_every_gating_analysis_requires(release: dict[str, Any]) -> None:
    scenario = Scenario("istio-canary")
    try:
        rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
        canary = rollout["spec"]["strategy"]["canary"]
        canary["steps"] = release["steps"]
        if release["background"]:
            canary["analysis"] = {"templates": [{"templateName": "bg-check"}]}
        else:
            del canary["analysis"]
        scenario.docs += [release["step_template"], release["bg_template"]]
        scenario.provider.script("step-metric", *[VALUES[o] for o in release["step_script"]])  # type: ignore[attr-defined]
        scenario.provider.script("bg-metric", *[VALUES[o] for o in release["bg_script"]])  # type: ignore[attr-defined]
        scenario.given_healthy()
        scenario.when_image(NEW_IMAGE)
        try:
            scenario.run_until(lambda: scenario.phase in ("Healthy", "Degraded"), max_seconds=3 * 3600)
        except Stalled:
            pass  # held (an inconclusive pause, a promotion waiting for evidence): not promoted, checked below
        status = scenario.status
        new_hash = status["currentPodHash"]
        promoted = status["stableRS"] == new_hash
        runs = [run for run in scenario.analysis_runs() if gated_by(run, new_hash)]
        if promoted:
            steps = [r for r in runs if r["metadata"]["labels"].get("rollout-type") == "Step"]
            background = [r for r in runs if r["metadata"]["labels"].get("rollout-type") == "Background"]
            wanted = sum(1 for step in release["steps"] if "analysis" in step)
            assert len(steps) == wanted and all(evidence_of(r) for r in steps), [r.get("status") for r in steps]
            if release["background"]:
                [bg] = background
                results = (bg.get("status") or {}).get("metricResults") or []
                assert results and all((m.get("successful") or 0) >= 1 for m in results), bg.get("status")
                assert (bg.get("status") or {}).get("phase") not in ("Failed", "Error", "Inconclusive")
        else:
            assert 100 not in scenario.weights.canary_weights, scenario.weights.entries
    finally:
        scenario.close()
