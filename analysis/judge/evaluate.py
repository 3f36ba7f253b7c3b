"""The judge's one entry point: a config and each metric's series over the window in, a Judgement out.

Rules:
- `evaluate(config, series)`: each metric of `config` is judged on `series[metric.name]`, by the
  fixed-window classifier (analysis.judge.classify) or, with `mode: sequential`, by the
  e-processes (analysis.judge.sequential); analysis.judge.score turns the results into the score
  and verdict. A metric missing from `series` has no data (NODATA, or NODATA_FAIL with mustHaveData).
- Pure and deterministic: the same series give the same judgement.
"""

from __future__ import annotations

from collections.abc import Mapping

from analysis.judge import classify, sequential
from analysis.judge.classify import MetricSamples
from analysis.judge.config import JudgeConfig
from analysis.judge.score import Judgement, judge


def evaluate(config: JudgeConfig, series: Mapping[str, MetricSamples]) -> Judgement:
    judged = []
    for metric in config.metrics:
        samples = series.get(metric.name, MetricSamples((), ()))
        if config.mode == "sequential":
            judged.append((metric, sequential.judge_metric(metric, samples, config)))
        else:
            judged.append((metric, classify.classify(metric, samples, config)))
    return judge(config, judged, mode=config.mode)
