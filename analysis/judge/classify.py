"""One metric's fixed-window judgement: Kayenta's Mann-Whitney classifier (flagger-kayenta.md §B7).

Rules, in order:
- Each side is cleaned on its own (analysis.judge.samples); a counts metric is judged on its
  per-bucket rates bad/total.
- Not enough data is its own classification, NODATA (the judgement is Inconclusive): a side
  with fewer than minSamples points, or a counts metric whose canary saw no traffic. With
  `mustHaveData` it is NODATA_FAIL instead (scored as a failure, as Kayenta). Kayenta passes an
  empty side under `nanStrategy: replace`; here too few samples never pass.
- Identical sorted sides, or one distinct value across both: PASS.
- Each side constant (two different values): the shift is exact, canary - baseline, its
  interval that point (Kayenta adds random noise here; the judge stays deterministic).
- Otherwise the shift, its `confidence` interval (analysis.judge.ranks) and the tolerance
  bound B = 0.25·|estimate|: HIGH when direction is increase/either, the interval's low end > B
  and the effect (meanRatio = mean canary / mean baseline, NaN when either mean is 0; or cles)
  is NaN or >= allowedIncrease; LOW is the mirror (high end < -B, effect <= allowedDecrease);
  HIGH is tested first; else PASS.
- A HIGH or LOW of a `critical` metric whose effect reaches criticalIncrease/criticalDecrease
  (or is NaN) is critical: it fails the whole judgement.
- A rank error (every value tied) is ERROR, never critical (Kayenta).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from analysis.judge import ranks, samples
from analysis.judge.config import Direction, JudgeConfig, JudgeMetric

TOLERANCE_SHARE = 0.25  # Kayenta's hard-coded tolerance


class Classification(StrEnum):
    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"  # not enough data: Inconclusive
    NODATA_FAIL = "NodataFail"  # not enough data and mustHaveData: a failure
    ERROR = "Error"
    UNDECIDED = "Undecided"  # sequential: neither harm nor safety decisive yet


@dataclass(frozen=True)
class MetricSamples:
    """One metric's series over the window, bucket by bucket (NaN where a bucket has no point)."""

    canary: Sequence[float]
    baseline: Sequence[float]
    canary_total: Sequence[float] | None = None
    baseline_total: Sequence[float] | None = None


@dataclass(frozen=True)
class MetricJudgement:
    name: str
    classification: Classification
    message: str
    critical: bool = False  # a critical failure: fails the whole judgement
    canary_n: int = 0
    baseline_n: int = 0
    estimate: float = math.nan  # canary - baseline shift
    low: float = math.nan
    high: float = math.nan
    ratio: float = math.nan  # mean canary / mean baseline
    p_value: float = math.nan

    def document(self) -> dict[str, object]:
        """The metric's entry in the measured value (`result.metrics[i]`), JSON-safe (NaN is None)."""
        def num(value: float) -> float | None:
            return round(value, 6) if math.isfinite(value) else None

        return {"name": self.name, "classification": str(self.classification), "critical": self.critical,
                "canaryN": self.canary_n, "baselineN": self.baseline_n, "estimate": num(self.estimate),
                "low": num(self.low), "high": num(self.high), "ratio": num(self.ratio),
                "pValue": num(self.p_value), "message": self.message}


def sides(metric: JudgeMetric, series: MetricSamples) -> tuple[list[float], list[float]]:
    """The cleaned canary and baseline samples the test sees (rates for a counts metric)."""
    canary, baseline = list(series.canary), list(series.baseline)
    if metric.counts and series.canary_total is not None and series.baseline_total is not None:
        canary, baseline = samples.rates(canary, series.canary_total), samples.rates(baseline, series.baseline_total)
    return samples.clean(canary, metric), samples.clean(baseline, metric)


def no_canary_traffic(metric: JudgeMetric, series: MetricSamples) -> bool:
    total = series.canary_total
    return metric.counts and total is not None and not any(math.isfinite(t) and t > 0 for t in total)


def insufficient(metric: JudgeMetric, series: MetricSamples, canary_n: int, baseline_n: int,
                 min_samples: int) -> MetricJudgement | None:
    """The NODATA (or NODATA_FAIL) judgement when the data cannot support one, else None."""
    if no_canary_traffic(metric, series):
        why = "insufficient data: no canary traffic (canaryTotal is 0 over the window)"
    elif min(canary_n, baseline_n) < min_samples:
        side = "canary" if canary_n <= baseline_n else "baseline"
        why = f"insufficient data: n={min(canary_n, baseline_n)} < minSamples {min_samples} ({side})"
    else:
        return None
    if metric.must_have_data:
        return MetricJudgement(metric.name, Classification.NODATA_FAIL, f"{why}; mustHaveData fails it",
                               canary_n=canary_n, baseline_n=baseline_n)
    return MetricJudgement(metric.name, Classification.NODATA, why, canary_n=canary_n, baseline_n=baseline_n)


def classify(metric: JudgeMetric, series: MetricSamples, config: JudgeConfig) -> MetricJudgement:
    """The fixed-window classification of one metric."""
    x, y = sides(metric, series)
    n, m = len(x), len(y)
    lacking = insufficient(metric, series, n, m, config.metric_min_samples(metric))
    if lacking is not None:
        return lacking
    ratio = _mean_ratio(x, y)
    if sorted(x) == sorted(y) or len(set(x) | set(y)) == 1:
        return MetricJudgement(metric.name, Classification.PASS, "canary and baseline are the same",
                               canary_n=n, baseline_n=m, estimate=0.0, low=0.0, high=0.0, ratio=ratio, p_value=1.0)
    if len(set(x)) == 1 and len(set(y)) == 1:
        shift, p_value = ranks.Shift(x[0] - y[0], x[0] - y[0], x[0] - y[0]), 0.0
    else:
        try:
            shift, p_value = ranks.shift_interval(x, y, config.confidence), ranks.mann_whitney(x, y).p_value
        except ranks.RankError as err:
            return MetricJudgement(metric.name, Classification.ERROR, str(err), canary_n=n, baseline_n=m)
    effect = ratio if metric.effect_size.measure == "meanRatio" else _cles(x, y)
    bound = TOLERANCE_SHARE * abs(shift.estimate)
    kind, critical = Classification.PASS, False
    gate = metric.effect_size.gate
    if (metric.direction is not Direction.DECREASE and shift.low > bound
            and (math.isnan(effect) or effect >= gate("allowed_increase"))):
        kind = Classification.HIGH
        critical = metric.critical and (math.isnan(effect) or effect >= gate("critical_increase"))
    elif (metric.direction is not Direction.INCREASE and shift.high < -bound
            and (math.isnan(effect) or effect <= gate("allowed_decrease"))):
        kind = Classification.LOW
        critical = metric.critical and (math.isnan(effect) or effect <= gate("critical_decrease"))
    judged = MetricJudgement(metric.name, kind, "", critical, n, m, shift.estimate, shift.low, shift.high, ratio,
                             p_value)
    return _with_message(judged, config.confidence)


def _with_message(judged: MetricJudgement, confidence: float) -> MetricJudgement:
    change = f"{judged.ratio - 1:+.1%}" if math.isfinite(judged.ratio) else "n/a"
    word = {Classification.HIGH: "rose", Classification.LOW: "fell"}.get(judged.classification, "held")
    text = (f"{judged.name} {word}: shift {judged.estimate:+.4g} (mean {change}), {confidence:.0%} CI "
            f"[{judged.low:.4g}, {judged.high:.4g}], p={judged.p_value:.2g}, n={judged.canary_n}/{judged.baseline_n}")
    if judged.critical:
        text += " (critical)"
    return MetricJudgement(**{**judged.__dict__, "message": text})


def _mean_ratio(x: Sequence[float], y: Sequence[float]) -> float:
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    return math.nan if mean_x == 0 or mean_y == 0 else mean_x / mean_y


def _cles(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) + ½·P(X = Y): the common-language effect size."""
    wins = sum((a > b) + 0.5 * (a == b) for a in x for b in y)
    return wins / (len(x) * len(y))
