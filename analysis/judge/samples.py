"""Each side's samples made ready for the judge, on its own (Kayenta's transforms, flagger-kayenta.md §B7).

Rules:
- `nanStrategy: remove` drops NaN (and ±Inf, which no rank test can place); `replace` sets them to 0.0.
- `outliers: {strategy: remove, outlierFactor: f}` keeps the points inside
  [min(p1, Q1 - f·IQR), max(p99, Q3 + f·IQR)], percentiles by R's type 7 (linear, numpy's default);
  the p1/p99 clamp is Kayenta's "reduced sensitivity". `keep` (the default) keeps them all.
- `rates(bad, total)`: per-bucket bad/total for a counts metric; a bucket without traffic
  (total 0 or missing) is NaN, so the NaN strategy decides it.
- Pure; numpy imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from analysis.judge.config import JudgeMetric


def clean(values: Sequence[float], metric: JudgeMetric) -> list[float]:
    """`values` after the metric's NaN strategy and outlier rule."""
    if metric.nan_strategy == "replace":
        kept = [value if math.isfinite(value) else 0.0 for value in values]
    else:
        kept = [value for value in values if math.isfinite(value)]
    if metric.outliers.strategy == "remove" and len(kept) >= 2:
        kept = without_outliers(kept, metric.outliers.outlier_factor)
    return kept


def without_outliers(values: Sequence[float], factor: float) -> list[float]:
    import numpy as np

    array = np.asarray(values, dtype=float)
    p1, q1, q3, p99 = (float(v) for v in np.percentile(array, [1, 25, 75, 99]))
    iqr = q3 - q1
    low, high = min(p1, q1 - factor * iqr), max(p99, q3 + factor * iqr)
    return [value for value in values if low <= value <= high]


def rates(bad: Sequence[float], total: Sequence[float]) -> list[float]:
    """bad/total per bucket; NaN where the bucket has no traffic."""
    return [b / t if math.isfinite(b) and math.isfinite(t) and t > 0 else math.nan
            for b, t in zip(bad, total, strict=True)]
