"""From per-metric judgements to one 0-100 score and one verdict (Kayenta's WeightedSumScorer, §B7 step 3-4).

Rules:
- Muted metrics are left out. A critical failure (a critical HIGH or LOW) scores 0: Fail.
- A group's score is 100 × Σweight(PASS) / Σweight(PASS, HIGH, LOW, NODATA_FAIL, UNDECIDED), each
  metric with its `weight` (1 by default) in every group it names; NODATA and ERROR are left out of
  the denominator (Kayenta); a group with nothing countable scores 100. UNDECIDED (sequential) counts
  as not passed, so `result.score >= 80` never passes a release the sequential test has not
  cleared. Groups weigh `groupWeights` percent; the groups without a weight share what is left
  equally. The score is the weighted
  sum, rounded to 2 decimals. NODATA in half or more of the metrics scores 0 (Kayenta).
- Verdict, in order: Fail on a critical failure, or when metrics were judged and the score is
  below `marginal` with at least one of them HIGH, LOW or NODATA_FAIL (the data there is shows
  harm); Inconclusive when any metric has too little data or an ERROR (never Pass on missing
  evidence); Continue (sequential only) while any metric is UNDECIDED; else Pass at or above
  `pass`, Marginal at or above `marginal`, Fail below.
- The message names the verdict, the score and each metric that moved (by how much, with what
  confidence) or lacks data (in sequential mode also each one decisively safe); when none moved
  it says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from analysis.judge.classify import Classification, MetricJudgement
from analysis.judge.config import JudgeConfig, JudgeMetric

C = Classification
_COUNTED = frozenset({C.PASS, C.HIGH, C.LOW, C.NODATA_FAIL, C.UNDECIDED})
_FAILED = frozenset({C.HIGH, C.LOW, C.NODATA_FAIL})


class Verdict(StrEnum):
    PASS = "Pass"
    MARGINAL = "Marginal"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"  # not enough data: the measurement is Inconclusive
    CONTINUE = "Continue"  # sequential: nothing decisive yet


@dataclass(frozen=True)
class Judgement:
    score: float
    verdict: Verdict
    metrics: tuple[MetricJudgement, ...]
    message: str
    mode: str = "fixed"

    def document(self) -> dict[str, object]:
        """The measured value: `result.score`, `result.verdict`, `result.metrics[i]...`."""
        return {"score": self.score, "verdict": str(self.verdict), "mode": self.mode,
                "metrics": [metric.document() for metric in self.metrics]}


def judge(config: JudgeConfig, judged: Sequence[tuple[JudgeMetric, MetricJudgement]], *,
          mode: str = "fixed") -> Judgement:
    """The score and verdict of `judged` under `config`'s weights and thresholds."""
    active = [(metric, result) for metric, result in judged if not metric.muted]
    results = tuple(result for _, result in active)
    critical = next((result for result in results if result.critical and result.classification in _FAILED), None)
    if critical is not None:
        return Judgement(0.0, Verdict.FAIL, results, f"Fail (score 0): critical metric {critical.message}", mode)
    score = _score(config, active)
    nodata = sum(result.classification is C.NODATA for result in results)
    if active and nodata * 2 >= len(active):
        score = 0.0
    thresholds = config.score_thresholds
    failed = any(result.classification in _FAILED for result in results)
    if failed and score < thresholds.marginal:
        verdict = Verdict.FAIL
    elif any(result.classification in (C.NODATA, C.ERROR) for result in results):
        verdict = Verdict.INCONCLUSIVE
    elif any(result.classification is C.UNDECIDED for result in results):
        verdict = Verdict.CONTINUE
    else:
        verdict = (Verdict.PASS if score >= thresholds.pass_ else
                   Verdict.MARGINAL if score >= thresholds.marginal else Verdict.FAIL)
    return Judgement(score, verdict, results, _message(verdict, score, results, sequential=mode == "sequential"), mode)


def _score(config: JudgeConfig, active: Sequence[tuple[JudgeMetric, MetricJudgement]]) -> float:
    groups: dict[str, list[tuple[float, MetricJudgement]]] = {}
    for metric, result in active:
        for group in metric.groups:
            groups.setdefault(group, []).append((metric.weight, result))
    if not groups:
        return 100.0
    given = {group: config.group_weights[group] for group in groups if group in config.group_weights}
    unweighted = [group for group in groups if group not in given]
    share = max(0.0, 100.0 - sum(given.values())) / len(unweighted) if unweighted else 0.0
    total = 0.0
    for group, members in groups.items():
        counted = [(weight, result) for weight, result in members if result.classification in _COUNTED]
        denominator = sum(weight for weight, _ in counted)
        passed = sum(weight for weight, result in counted if result.classification is C.PASS)
        group_score = 100.0 * passed / denominator if denominator else 100.0
        total += group_score * given.get(group, share) / 100.0
    return round(total, 2)


def _message(verdict: Verdict, score: float, results: Sequence[MetricJudgement], *, sequential: bool) -> str:
    head = f"{verdict} (score {score:g})"
    quiet = (C.UNDECIDED,) if sequential else (C.PASS, C.UNDECIDED)  # a sequential pass is news: it ends early
    notable = [result.message for result in results if result.classification not in quiet]
    if verdict is Verdict.CONTINUE:
        notable += [result.message for result in results if result.classification is C.UNDECIDED]
    if not notable:
        return f"{head}: no metric moved ({', '.join(result.name for result in results)})"
    return f"{head}: " + "; ".join(notable)
