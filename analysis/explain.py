"""Why an AnalysisRun ended as it did, in one line a human can act on (issue 12 item 3).

Rules:
- Written once, called by every place that tells a verdict: the Rollout's abort reason
  (status message and its RolloutAborted Event, through `rollouts.plan.runs`), the
  Rollout's AnalysisRun event, the notifications (which render the event) and
  `rollouts get rollout` (which shows the status message).
- One clause per judged (not dry-run) metric whose phase is the run's bad phase, each
  naming the metric, the last measured value, the condition that decided, the counts
  against the limit and the resolved query:
  `success-rate=0.87 failed "result[0] >= 0.95" (2 failed > failureLimit 1); query: sum(...)`.
  A failureCondition that matched reads `met failureCondition "..."`; an Error reads
  `error: <last message>`. A value longer than VALUE_MAX characters (a judge's whole result
  document) is cut, and the deciding measurement's message, when it has one (the judge's:
  which metrics moved, by how much, with what confidence), follows as `measured: ...`.
  Several metrics' clauses are joined by ` | `.
- The query is the metric's own with the run's args substituted (`build.metric_rules`):
  a secret arg stands as `*****`, never its value (the value is read only when measuring,
  and never reaches status). Long queries are cut at QUERY_MAX characters.
- Argo's AnalysisRun status message (`Metric "x" assessed Failed due to failed (2) >
  failureLimit (1)`) is left as it is, in the run: users grep for it. `summary` keeps that
  head (Argo's Rollout message carries it too) and puts ours after it.
- Pure: a plain document in, a sentence out (None when there is nothing to explain, or
  the run cannot be read; the caller then falls back to the run's own message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from analysis.args import ArgError
from analysis.build import MetricRules, SpecError, metric_rules
from analysis.model import AnalysisPhase, AnalysisRun, Measurement, Metric, MetricResult

__all__ = ["QUERY_MAX", "VALUE_MAX", "explain", "metric_clause", "query_of", "summary"]

QUERY_MAX = 300
VALUE_MAX = 120
P = AnalysisPhase


def explain(doc: Mapping[str, Any]) -> str | None:
    """One clause per judged metric that decided the run's bad phase, joined by ' | ', or None."""
    try:
        run = AnalysisRun.load(dict(doc))
        rules = metric_rules(run.spec)
    except (ValidationError, SpecError, ArgError, TypeError, ValueError):
        return None
    status = run.status
    if status is None or status.phase is None or status.phase not in (P.FAILED, P.ERROR, P.INCONCLUSIVE):
        return None
    results = {r.name: r for r in status.metric_results or []}
    clauses = [metric_clause(rule, results[rule.name]) for rule in rules
               if not rule.dry_run and rule.name in results and results[rule.name].phase == status.phase]
    return " | ".join(clauses) or None


def summary(doc: Mapping[str, Any]) -> str | None:
    """The abort reason's verdict: Argo's head of the run's message (what Argo writes in the Rollout's
    message too, `Metric "x" assessed Failed due to failed (2) > failureLimit (1)`), then ours after
    ': ' in place of the deciding measurement's own message (ours says it again, with the value and
    the query). None when there is nothing to explain."""
    ours = explain(doc)
    if ours is None:
        return None
    status = doc.get("status") or {}
    head = str(status.get("message") or "")
    for result in status.get("metricResults") or []:
        tail = f": {result.get('message')}" if result.get("message") else ""
        if tail and head.endswith(tail):
            head = head[: -len(tail)]
            break
    return f"{head}: {ours}" if head else ours


def metric_clause(rule: MetricRules, result: MetricResult) -> str:
    """`name=value verdict "condition" (counts > limit); query: q` for one completed metric."""
    last = result.measurements[-1] if result.measurements else None
    value = f"={_cut(str(last.value), VALUE_MAX)}" if last is not None and last.value is not None else ""
    head = f"{rule.name}{value} {_verdict(rule.metric, result, last.phase if last else None, last)}"
    counts = _counts(rule, result)
    query = query_of(rule.metric)
    long = last is not None and last.value is not None and len(str(last.value)) > VALUE_MAX
    said = last.message if long and last is not None and last.message and last.phase != P.ERROR else None
    return (head + (f" ({counts})" if counts else "") + (f"; measured: {said}" if said else "")
            + (f"; query: {query}" if query else ""))


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _verdict(metric: Metric, result: MetricResult, last: AnalysisPhase | None,
             measurement: Measurement | None) -> str:
    if result.phase == P.ERROR or last == P.ERROR:
        message = measurement.message if measurement is not None and measurement.message else "no value"
        return f"error: {message}"
    if result.phase == P.INCONCLUSIVE or last == P.INCONCLUSIVE:
        return "inconclusive" + (f' "{metric.success_condition}"' if metric.success_condition else "")
    if metric.failure_condition and "met failureCondition" in (measurement.message or "" if measurement else ""):
        return f'met failureCondition "{metric.failure_condition}"'
    if metric.success_condition:
        return f'failed "{metric.success_condition}"'
    if metric.failure_condition:
        return f'met failureCondition "{metric.failure_condition}"'
    return "failed"


def _counts(rule: MetricRules, result: MetricResult) -> str:
    failed, inconclusive, errors = result.failed or 0, result.inconclusive or 0, result.consecutive_error or 0
    if result.phase == P.ERROR and errors > rule.consecutive_error_limit:
        return f"{errors} consecutiveErrors > consecutiveErrorLimit {rule.consecutive_error_limit}"
    if result.phase == P.INCONCLUSIVE and inconclusive > rule.inconclusive_limit:
        return f"{inconclusive} inconclusive > inconclusiveLimit {rule.inconclusive_limit}"
    if rule.failure_limit >= 0 and failed > rule.failure_limit:
        return f"{failed} failed > failureLimit {rule.failure_limit}"
    if rule.count is not None and (result.count or 0) >= rule.count and rule.consecutive_success_limit:
        return (f"{result.consecutive_success or 0} consecutive successes < consecutiveSuccessLimit "
                f"{rule.consecutive_success_limit} after count {result.count}")
    return f"{failed} failed, failureLimit {rule.failure_limit}" if failed else ""


def query_of(metric: Metric) -> str:
    """What the metric asked its backend (args substituted, secrets masked), cut to QUERY_MAX."""
    provider = metric.provider
    text = ""
    if provider.prometheus is not None:
        text = provider.prometheus.query
    elif provider.web is not None:
        web = provider.web
        text = f"{web.method or 'GET'} {web.url}" + (f" jsonPath {web.json_path}" if web.json_path else "")
    else:
        text = ", ".join(provider.kinds())
    text = " ".join(text.split())
    return text if len(text) <= QUERY_MAX else text[:QUERY_MAX - 1] + "…"
