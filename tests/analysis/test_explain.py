"""Every verdict explains itself (analysis.explain): metric, value, condition, counts against the limit, query.

Runs are driven through the real state machine (analysis.assess.measurement + assess), so the
explanation is tested on the status the controller writes, not on a hand-written one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import assess, explain
from analysis.args import REDACTED
from analysis.assess import Observed, Unmeasured
from analysis.model import AnalysisRun

T0 = datetime(2024, 1, 1, tzinfo=UTC)
QUERY = 'sum(rate(http_requests_total{service="{{args.service}}",code!~"5.*"}[1m]))'
TOKEN = "tok-3f9a-very-secret"


def run_doc(*metrics: dict[str, Any], args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": list(metrics)}
    if args is not None:
        spec["args"] = args
    return {"metadata": {"name": "r", "namespace": "ns"}, "spec": spec}


def rate(**fields: Any) -> dict[str, Any]:
    return {"name": "success-rate", "interval": "1m", "successCondition": "result[0] >= 0.95",
            "provider": {"prometheus": {"query": QUERY}}, **fields}


def measure(doc: dict[str, Any], *values: object) -> dict[str, Any]:
    """Feed one outcome per minute through the real state machine until the run completes; the stored doc."""
    run = AnalysisRun.load(doc)
    for index, value in enumerate(values):
        now = T0 + timedelta(minutes=index)
        metric = run.spec.metrics[0]
        outcome = value if isinstance(value, Unmeasured) else Observed(value)
        taken = assess.measurement(metric, outcome, started_at=now)
        result = assess.assess(run, now=now, measurements={metric.name: taken})
        run = AnalysisRun.load({**run.dump(), "status": result.status.dump()})
    return run.dump()


SERVICE = [{"name": "service", "value": "checkout"}]
RESOLVED = QUERY.replace("{{args.service}}", "checkout")


def test_a_failed_metric_names_value_condition_counts_and_the_resolved_query() -> None:
    done = measure(run_doc(rate(failureLimit=1), args=SERVICE), [0.99], [0.87], [0.87])
    assert done["status"]["phase"] == "Failed"
    assert explain.explain(done) == (
        f'success-rate=[0.87] failed "result[0] >= 0.95" (2 failed > failureLimit 1); query: {RESOLVED}')
    assert RESOLVED == 'sum(rate(http_requests_total{service="checkout",code!~"5.*"}[1m]))'
    # the run keeps Argo's own message shape, which users grep for
    assert done["status"]["message"].startswith('Metric "success-rate" assessed Failed due to failed (2) > '
                                                "failureLimit (1)")


def test_a_matched_failure_condition_is_named_as_such() -> None:
    errors = {"name": "error-rate", "failureCondition": "result > 0.1", "provider": {"prometheus": {"query": "e"}}}
    done = measure(run_doc(errors), 0.2)
    assert explain.explain(done) == 'error-rate=0.2 met failureCondition "result > 0.1" (1 failed > failureLimit 0)' \
        "; query: e"


def test_an_error_names_the_last_error_and_the_consecutive_error_limit() -> None:
    done = measure(run_doc(rate(consecutiveErrorLimit=1), args=SERVICE), Unmeasured("connection refused"),
                   Unmeasured("connection refused"))
    assert done["status"]["phase"] == "Error"
    text = explain.explain(done)
    assert text is not None
    assert text.startswith("success-rate error: connection refused (2 consecutiveErrors > consecutiveErrorLimit 1)")


def test_an_inconclusive_metric_names_its_counts() -> None:
    both = rate(failureCondition="result[0] < 0.5")
    done = measure(run_doc(both, args=SERVICE), [0.7])
    assert done["status"]["phase"] == "Inconclusive"
    assert explain.explain(done) == ('success-rate=[0.7] inconclusive "result[0] >= 0.95" '
                                     f"(1 inconclusive > inconclusiveLimit 0); query: {RESOLVED}")


def test_a_secret_arg_stands_masked_in_the_query() -> None:
    metric = rate(provider={"prometheus": {"query": 'up{token="{{args.token}}"}'}})
    secret = [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    done = measure(run_doc(metric, args=secret), [0.5])
    text = explain.explain(done)
    assert text is not None and f'query: up{{token="{REDACTED}"}}' in text and TOKEN not in text


def test_a_web_metric_shows_its_method_url_and_json_path() -> None:
    web = {"name": "probe", "successCondition": "result == true",
           "provider": {"web": {"url": "http://probe/{{args.service}}/ok", "jsonPath": "{$.ok}"}}}
    done = measure(run_doc(web, args=SERVICE), False)
    assert explain.explain(done) == ('probe=false failed "result == true" (1 failed > failureLimit 0); '
                                     "query: GET http://probe/checkout/ok jsonPath {$.ok}")


def test_only_judged_metrics_that_decided_are_explained_and_long_queries_are_cut() -> None:
    long_query = "sum(" + "x" * 500 + ")"
    judged = rate(provider={"prometheus": {"query": long_query}})
    shadow = {**rate(name="shadow"), "provider": {"prometheus": {"query": "shadow"}}}
    doc = run_doc(judged, shadow)
    doc["spec"]["dryRun"] = [{"metricName": "shadow"}]
    run = AnalysisRun.load(doc)
    taken = {m.name: assess.measurement(m, Observed([0.1]), started_at=T0) for m in run.spec.metrics}
    result = assess.assess(run, now=T0, measurements=taken)
    text = explain.explain({**run.dump(), "status": result.status.dump()})
    assert text is not None and "shadow" not in text and text.startswith("success-rate=[0.1]")
    assert text.endswith("…") and len(text.split("query: ")[1]) == explain.QUERY_MAX


@pytest.mark.parametrize("status", [None, {"phase": "Running"}, {"phase": "Successful"}])
def test_nothing_to_explain_is_none(status: dict[str, Any] | None) -> None:
    doc = run_doc(rate(), args=SERVICE)
    if status is not None:
        doc["status"] = status
    assert explain.explain(doc) is None


def test_an_unreadable_run_is_none_so_the_caller_falls_back() -> None:
    assert explain.explain({"metadata": {"name": "x"}, "spec": {"metrics": "nope"}, "status": {"phase": "Failed"}}) \
        is None


def test_the_summary_keeps_argos_head_and_puts_ours_in_place_of_the_measurement_message() -> None:
    done = measure(run_doc(rate(), args=SERVICE), [0.91])
    assert explain.summary(done) == (
        'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0): '
        f'success-rate=[0.91] failed "result[0] >= 0.95" (1 failed > failureLimit 0); query: {RESOLVED}')
    assert explain.summary(run_doc(rate(), args=SERVICE)) is None


def test_a_long_value_is_cut_and_the_measurement_message_says_what_it_found() -> None:
    document = {"score": 0, "verdict": "Fail", "metrics": [{"name": f"m{i}", "shift": 0.5} for i in range(20)]}
    judge = {"name": "judge", "successCondition": "result.score >= 80", "provider": {"prometheus": {"query": "j"}}}
    done = run_doc(judge)
    done["status"] = {"phase": "Failed", "metricResults": [{"name": "judge", "phase": "Failed", "count": 1, "failed": 1,
                      "measurements": [{"phase": "Failed", "value": json.dumps(document),
                                        "message": "errors rose: shift +0.09 (98% CI)"}]}]}
    clause = explain.explain(done)
    assert clause is not None
    value = clause.split(" failed ")[0].removeprefix("judge=")
    assert len(value) == explain.VALUE_MAX and value.endswith("...")  # not the whole document
    assert clause.endswith('(1 failed > failureLimit 0); measured: errors rose: shift +0.09 (98% CI); query: j')
