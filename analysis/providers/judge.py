"""The judge provider: `provider: {plugin: {"rollouts/judge": {...}}}`, canary against baseline over a window.

Rules:
- Argo's CRD keeps `provider.plugin` as preserve-unknown-fields, so the block survives Argo's own
  schema; its config is analysis.judge.config (checked there, for lint and here alike). A plugin
  other than `rollouts/judge` is UnsupportedProvider (InvalidSpec in lint, analysis.checks).
- At `at`, every query of every judge metric (canary, baseline, canaryTotal, baselineTotal;
  `{{args.*}}` already substituted) is one Prometheus range query over [at - lookback, at] at
  `step`, through the prometheus provider (the same address rules: the judge's `address`, else
  the controller's default or ARGO_ROLLOUTS_PROMETHEUS_ADDRESS; bounded, retried, redacted).
  The samples are put on the window's grid of `step` buckets; a bucket without a point is NaN. A
  query answering several series is an error naming the fix (aggregate it, e.g. with sum()).
- The value is the judgement's document, `{score, verdict, mode, metrics: [...]}`, so conditions
  read `result.score >= 80` or `result.verdict == "Pass"`; the measurement's message is the
  judgement's message (which metrics moved, by how much, with what confidence). The verdict
  Inconclusive (not enough data) makes the measurement Inconclusive whatever the conditions
  say (analysis.measure), so hold-and-resume can key on it; nothing else overrides the conditions.
- Every failure is ProviderError (a bad config names its field and fix); nothing else leaves.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from analysis.model import Metric, PrometheusMetric, parse_duration
from analysis.providers import ProviderError, Result, UnsupportedProvider
from analysis.providers.prometheus import PrometheusProvider

PLUGIN = "rollouts/judge"  # analysis.judge.config.PLUGIN (not imported here: the judge loads lazily)


class JudgeProvider:
    """`measure(metric, at=...)` for metrics with `provider.plugin["rollouts/judge"]`."""

    def __init__(self, prometheus: PrometheusProvider) -> None:
        self._prometheus = prometheus

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        from analysis.judge import config as judge_config
        from analysis.judge.evaluate import evaluate

        plugins = metric.provider.plugin or {}
        if PLUGIN not in plugins or len(plugins) != 1:
            names = ", ".join(sorted(plugins)) or "(none)"
            raise UnsupportedProvider(f"metric {metric.name!r}: metric plugin {names} is not supported by this "
                                      f"controller (supported: {PLUGIN})")
        try:
            config = judge_config.parse(plugins[PLUGIN])
        except judge_config.ConfigError as err:
            path, message, fix = err.problems[0]
            raise ProviderError(f"metric {metric.name!r}: provider.plugin.{PLUGIN}.{path}: {message}; {fix}") from None
        step = timedelta(seconds=parse_duration(config.step))
        start = at - timedelta(seconds=parse_duration(config.lookback))
        grid = _grid(start, at, step)
        series = {}
        for judged in config.metrics:
            queries = [judged.canary, judged.baseline]
            if judged.canary_total is not None and judged.baseline_total is not None:
                queries += [judged.canary_total, judged.baseline_total]
            columns = [self._column(query, config.address, config.timeout, start, at, step, grid) for query in queries]
            series[judged.name] = _samples(columns)
        judgement = evaluate(config, series)
        return Result(value=judgement.document(), metadata={"verdict": str(judgement.verdict)},
                      note=judgement.message, inconclusive=str(judgement.verdict) == "Inconclusive")

    def _column(self, query: str, address: str | None, timeout: int | None, start: datetime, end: datetime,
                step: timedelta, grid: list[float]) -> list[float]:
        source = PrometheusMetric(address=address, query=query, timeout=timeout)
        points = self._prometheus.query_range(source, start=start, end=end, step=step)
        by_time: dict[float, float] = {}
        for moment, value in points:
            ts = round(moment, 3)
            if ts in by_time:
                raise ProviderError(f"judge query {query!r} answered several series; aggregate it to one, "
                                    "e.g. sum(...) or histogram_quantile(0.99, sum by (le) (...))")
            by_time[ts] = value
        return [by_time.get(ts, math.nan) for ts in grid]


def _grid(start: datetime, end: datetime, step: timedelta) -> list[float]:
    """The bucket times Prometheus evaluates a range query at: start, start + step, ... <= end."""
    first, last, seconds = start.timestamp(), end.timestamp(), step.total_seconds()
    return [round(first + i * seconds, 3) for i in range(int((last - first) // seconds) + 1)]


def _samples(columns: list[list[float]]) -> Any:
    from analysis.judge.classify import MetricSamples

    if len(columns) == 4:
        return MetricSamples(columns[0], columns[1], columns[2], columns[3])
    return MetricSamples(columns[0], columns[1])
