"""The rank statistics of the fixed-window judge: Mann-Whitney U, its p-value, and the Hodges-Lehmann
shift with its confidence interval.

Rules:
- `mann_whitney(x, y)`: U of x (the canary) and the two-sided p-value by scipy's
  `mannwhitneyu(method="asymptotic", use_continuity=True)`, the normal approximation with tie and
  continuity corrections that R's `wilcox.test(x, y, exact=FALSE, correct=TRUE)` and Kayenta use.
- `shift_interval(x, y, confidence)`: the estimate and interval of the shift d of x against y, as
  R's `wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)` computes them (and Kayenta's
  port of it, flagger-kayenta.md §B7): W(d) is the centred rank sum of x - d among y, σ(d) its
  tie-corrected deviation, f(d, q) = (W(d) - ½·sign(W(d)))/σ(d) - q; the interval ends are the roots of
  f(·, ±z) on [min x - max y, max x - min y] (an end where f has not changed sign is that end),
  the estimate the root of f(·, 0); Brent's method to 1e-4, as R's uniroot. scipy has no such
  interval, so this is the one statistic written here.
- All values tied (σ = 0) is `RankError`, as R's "cannot compute confidence interval when all
  observations are tied"; the classifier handles constant sides before it gets here.
- numpy and scipy are imported inside the functions (start-up of lint and eval stays light).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TOLERANCE = 1e-4  # R's uniroot tol in wilcox.test, Kayenta's Brent absolute accuracy


class RankError(ValueError):
    """The rank interval cannot be computed (every value tied)."""


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U statistic of x (the canary)
    p_value: float  # two-sided


@dataclass(frozen=True)
class Shift:
    estimate: float
    low: float
    high: float


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """U of x against y and the two-sided p-value (normal approximation, tie and continuity corrected)."""
    from scipy.stats import mannwhitneyu

    result = mannwhitneyu(list(x), list(y), alternative="two-sided", method="asymptotic", use_continuity=True)
    p_value = float(result.pvalue)
    return MannWhitney(float(result.statistic), 1.0 if math.isnan(p_value) else p_value)


def shift_interval(x: Sequence[float], y: Sequence[float], confidence: float) -> Shift:
    """Hodges-Lehmann-style shift of x against y and its `confidence` interval (R's wilcox.test, exact=FALSE)."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.stats import norm, rankdata

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n, m = len(xs), len(ys)
    if n == 0 or m == 0:
        raise RankError("a side has no samples")
    low_end, high_end = float(xs.min() - ys.max()), float(xs.max() - ys.min())

    def f(d: float, q: float) -> float:
        pooled = np.concatenate((xs - d, ys))
        w = float(rankdata(pooled)[:n].sum()) - n * (n + 1) / 2 - n * m / 2
        _, counts = np.unique(pooled, return_counts=True)
        ties = float(((counts.astype(float) ** 3) - counts).sum())
        sigma = math.sqrt((n * m / 12) * ((n + m + 1) - ties / ((n + m) * (n + m - 1))))
        if sigma == 0:
            raise RankError("cannot compute the interval when every value is tied")
        return (w - 0.5 * math.copysign(1.0, w) * (w != 0)) / sigma - q

    def root(q: float) -> float:
        at_low, at_high = f(low_end, q), f(high_end, q)
        if at_low <= 0:
            return low_end
        if at_high >= 0:
            return high_end
        return float(brentq(f, low_end, high_end, args=(q,), xtol=TOLERANCE, maxiter=1000))

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return Shift(estimate=root(0.0), low=root(z), high=root(-z))
