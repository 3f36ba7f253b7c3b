"""The sequential (anytime-valid) judge: e-processes over the window's buckets, checkable every interval.

Rules (the model: Lindon, Sanden, Shirikian, "Rapid regression detection in software deployments
through sequential testing", KDD 2022):
- Each one-sided test is a mixture of likelihood ratios over a fixed grid of alternatives, a
  nonnegative supermartingale under its null, so by Ville's inequality it ever reaches 1/alpha with
  probability at most alpha, however often it is looked at. The judgement at a measurement is
  whether it reached 1/alpha at ANY bucket of the window so far (the window is replayed from its
  start at every measurement, so every peek sees the same path; set `lookback` to cover the whole
  analysis).
- Counts metric (bad events out of totals): in each bucket, given the k + j bad events of canary (k)
  and baseline (j), k is Binomial(k + j, θ) with θ = ρ·p/(ρ·p + 1 - p), p the canary's share of the
  bucket's requests and ρ the ratio of canary to baseline rates (the conditional test of Netflix's
  count-data paper). Harm: null ρ <= allowedIncrease (1 by default), alternatives above it.
  Safety: null ρ >= passBelow, alternatives below it. `decrease` swaps canary and baseline (its
  harm boundary is 1/allowedDecrease on the swapped ratio: allowedDecrease 0.8 fails below 0.8×).
- Values metric (latency per bucket), paired by bucket: a sequential sign test. Harm: null
  P(canary > allowedIncrease·baseline) <= ½; safety: null P(canary >= passBelow·baseline) >= ½
  (mirrored for `decrease`: canary < allowedDecrease·baseline, canary <= baseline/passBelow). Under
  identical distributions both nulls hold.
- `either` runs both directions at alpha/2 each. Harm at any bucket is HIGH/LOW (critical on a
  critical metric), whatever the sample count; safety is PASS only with `passEarly`, no harm and at
  least minSamples buckets; otherwise UNDECIDED, or NODATA when the canary has no data at all.
- numpy imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from analysis.judge.classify import Classification, MetricJudgement, MetricSamples, insufficient
from analysis.judge.config import Direction, JudgeConfig, JudgeMetric

_RATIO_GRID = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)  # harm alternatives, × the null ratio
_SAFE_GRID = (0.9, 0.8, 0.65, 0.5, 0.3)  # safety alternatives, × the null ratio
_SIGN_GRID = (0.6, 0.7, 0.8, 0.9, 0.97)  # P(sign) alternatives above ½ (harm), mirrored for safety


@dataclass(frozen=True)
class Path:
    """The largest e-value an e-process reached over the window, and the first bucket it crossed (or None)."""

    peak: float
    crossed_at: int | None


def count_eprocess(bad: Sequence[float], total: Sequence[float], other_bad: Sequence[float],
                   other_total: Sequence[float], *, null_ratio: float, grid: Sequence[float], alpha: float) -> Path:
    """Mixture LR of the rate ratio (bad/total over other_bad/other_total) against `null_ratio`."""
    import numpy as np

    ratios = np.asarray([null_ratio * g for g in grid])
    log_lr = np.zeros(len(ratios))
    peak, crossed = 0.0, None
    for index, (k, n, j, m) in enumerate(zip(bad, total, other_bad, other_total, strict=True)):
        if not all(math.isfinite(v) for v in (k, n, j, m)) or n <= 0 or m <= 0 or k + j <= 0:
            continue
        p = n / (n + m)
        theta0 = null_ratio * p / (null_ratio * p + 1 - p)
        theta = ratios * p / (ratios * p + 1 - p)
        log_lr += k * np.log(theta / theta0) + j * np.log((1 - theta) / (1 - theta0))
        peak, crossed = _step(log_lr, peak, crossed, index, alpha)
    return Path(peak, crossed)


def sign_eprocess(signs: Sequence[bool | None], *, grid: Sequence[float], alpha: float) -> Path:
    """Mixture LR of P(sign) = q against ½ over the grid of q; None (a tie, no pair) is skipped."""
    import numpy as np

    q = np.asarray(grid)
    log_lr = np.zeros(len(q))
    peak, crossed = 0.0, None
    for index, sign in enumerate(signs):
        if sign is None:
            continue
        log_lr += np.log(2 * q) if sign else np.log(2 * (1 - q))
        peak, crossed = _step(log_lr, peak, crossed, index, alpha)
    return Path(peak, crossed)


def _step(log_lr: object, peak: float, crossed: int | None, index: int, alpha: float) -> tuple[float, int | None]:
    import numpy as np

    lr = np.asarray(log_lr)
    log_e = float(np.logaddexp.reduce(lr) - math.log(len(lr)))  # log of the mixture's mean, without overflow
    if crossed is None and log_e >= -math.log(alpha):
        crossed = index
    return max(peak, math.exp(min(log_e, 700.0))), crossed


def judge_metric(metric: JudgeMetric, series: MetricSamples, config: JudgeConfig) -> MetricJudgement:
    """The sequential classification of one metric over the window so far."""
    settings = config.sequential
    directions = ([Direction.INCREASE, Direction.DECREASE] if metric.direction is Direction.EITHER
                  else [metric.direction])
    alpha = settings.alpha / len(directions)
    harms, safes = [], []
    for direction in directions:
        # the harm boundary as a ratio >= 1 on the bad side: canary > r·baseline, or canary < baseline/r
        harm_ratio = (metric.effect_size.allowed_increase or 1.0) if direction is Direction.INCREASE else (
            1.0 / (metric.effect_size.allowed_decrease or 1.0))
        harms.append((direction, _test(metric, series, direction, harm_ratio, harm=True, alpha=alpha)))
        safes.append(_test(metric, series, direction, settings.pass_below, harm=False, alpha=alpha))
    n = _buckets(metric, series)
    detail = (f"harm e={max(path.peak for _, path in harms):.3g}, safety e={min(path.peak for path in safes):.3g}"
              f" (decisive at {1 / alpha:g}), n={n}")
    for direction, path in harms:
        if path.crossed_at is not None:
            kind = Classification.HIGH if direction is Direction.INCREASE else Classification.LOW
            word = "rose" if kind is Classification.HIGH else "fell"
            text = f"{metric.name} {word} decisively at bucket {path.crossed_at + 1}: {detail}"
            return MetricJudgement(metric.name, kind, text + (" (critical)" if metric.critical else ""),
                                   critical=metric.critical, canary_n=n, baseline_n=n)
    min_samples = config.metric_min_samples(metric)
    if settings.pass_early and n >= min_samples and all(path.crossed_at is not None for path in safes):
        return MetricJudgement(metric.name, Classification.PASS, f"{metric.name} decisively safe: {detail}",
                               canary_n=n, baseline_n=n)
    lacking = insufficient(metric, series, n, n, 1)
    if lacking is not None:
        return lacking
    return MetricJudgement(metric.name, Classification.UNDECIDED, f"{metric.name} undecided: {detail}",
                           canary_n=n, baseline_n=n)


def _test(metric: JudgeMetric, series: MetricSamples, direction: Direction, ratio: float, *, harm: bool,
          alpha: float) -> Path:
    canary, baseline = series.canary, series.baseline
    if metric.counts and series.canary_total is not None and series.baseline_total is not None:
        grid = _RATIO_GRID if harm else _SAFE_GRID
        if direction is Direction.INCREASE:
            return count_eprocess(canary, series.canary_total, baseline, series.baseline_total,
                                  null_ratio=ratio, grid=grid, alpha=alpha)
        return count_eprocess(baseline, series.baseline_total, canary, series.canary_total,
                              null_ratio=ratio, grid=grid, alpha=alpha)
    signs: list[bool | None] = []
    for c, b in zip(canary, baseline, strict=True):
        if not (math.isfinite(c) and math.isfinite(b)):
            signs.append(None)
            continue
        worse = c > ratio * b if direction is Direction.INCREASE else c * ratio < b
        if harm:
            signs.append(worse)
        else:
            at_least = c >= ratio * b if direction is Direction.INCREASE else c * ratio <= b
            signs.append(not at_least)  # a "good" bucket is evidence against the null of harm
    grid = _SIGN_GRID
    return sign_eprocess(signs, grid=grid, alpha=alpha)


def _buckets(metric: JudgeMetric, series: MetricSamples) -> int:
    """Buckets where both sides have data (and, for counts, traffic)."""
    if metric.counts and series.canary_total is not None and series.baseline_total is not None:
        return sum(1 for n, m in zip(series.canary_total, series.baseline_total, strict=True)
                   if math.isfinite(n) and math.isfinite(m) and n > 0 and m > 0)
    return sum(1 for c, b in zip(series.canary, series.baseline, strict=True) if math.isfinite(c) and math.isfinite(b))
