"""Properties of the judge (hypothesis, derandomized so a run is reproducible) and the sequential
test's false-abort rate under the null when it is looked at every interval (a seeded simulation)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.judge import config as judge_config
from analysis.judge import sequential
from analysis.judge.classify import Classification, MetricSamples
from analysis.judge.evaluate import evaluate
from analysis.judge.score import Verdict

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
means = st.floats(min_value=1.0, max_value=1e4)


def config(mode: str = "fixed", **metric: object) -> judge_config.JudgeConfig:
    return judge_config.parse({"mode": mode, "metrics": [{"name": "m", "canary": "c", "baseline": "b", **metric}]})


def draw(seed: int, mean: float, n: int = 30, factor: float = 1.0) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    baseline = rng.normal(mean, 0.05 * mean, n)
    canary = rng.normal(mean * factor, 0.05 * mean, n)
    return canary.tolist(), baseline.tolist()


@SETTINGS
@given(seeds, means)
def test_identical_distributions_score_high(seed: int, mean: float) -> None:
    canary, baseline = draw(seed, mean)
    judgement = evaluate(config(), {"m": MetricSamples(canary, baseline)})
    assert judgement.verdict is Verdict.PASS and judgement.score == 100


@SETTINGS
@given(seeds, means, st.floats(min_value=1.2, max_value=3.0))
def test_a_shift_in_the_bad_direction_fails(seed: int, mean: float, factor: float) -> None:
    canary, baseline = draw(seed, mean, factor=factor)
    judgement = evaluate(config(direction="increase"), {"m": MetricSamples(canary, baseline)})
    assert judgement.verdict is Verdict.FAIL


@SETTINGS
@given(seeds, means, st.floats(min_value=0.3, max_value=0.85))
def test_a_shift_in_the_good_direction_passes(seed: int, mean: float, factor: float) -> None:
    canary, baseline = draw(seed, mean, factor=factor)
    judgement = evaluate(config(direction="increase"), {"m": MetricSamples(canary, baseline)})
    assert judgement.verdict is Verdict.PASS


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=9),
       st.lists(st.floats(min_value=0, max_value=1e6), min_size=10, max_size=40),
       st.sampled_from(["fixed", "sequential"]), st.sampled_from(["increase", "decrease", "either"]))
def test_too_few_samples_never_pass(canary: list[float], baseline: list[float], mode: str, direction: str) -> None:
    size = min(len(canary), len(baseline))
    judgement = evaluate(config(mode, direction=direction), {"m": MetricSamples(canary[:size], baseline[:size])})
    assert judgement.verdict is not Verdict.PASS


def null_counts(rng: np.random.Generator, intervals: int, requests: float, share: float,
                rate: float) -> tuple[np.ndarray, ...]:
    total = rng.poisson(requests, intervals).astype(float)
    canary_total = rng.binomial(total.astype(int), share).astype(float)
    baseline_total = total - canary_total
    return (rng.binomial(canary_total.astype(int), rate).astype(float), canary_total,
            rng.binomial(baseline_total.astype(int), rate).astype(float), baseline_total)


def test_sequential_false_abort_rate_stays_below_alpha_when_peeking_every_interval() -> None:
    # 1500 unchanged releases, 30 intervals each, judged after every interval (the e-process path
    # crossing 1/alpha at any interval is an abort); alpha = 0.05 so the rate is measurable.
    rng, alpha, trials = np.random.default_rng(20261203), 0.05, 1500
    aborts = 0
    for _ in range(trials):
        bad, total, other_bad, other_total = null_counts(rng, 30, 2000, 0.2, 0.01)
        path = sequential.count_eprocess(bad, total, other_bad, other_total, null_ratio=1.0,
                                         grid=sequential._RATIO_GRID, alpha=alpha)
        aborts += path.crossed_at is not None
    assert aborts / trials <= alpha
    # a naive fixed test repeated every interval (one-sided z-test at alpha on the cumulative
    # counts) aborts far more often under the same null: peeking is what the e-process survives
    naive = 0
    rng = np.random.default_rng(20261203)
    for _ in range(trials):
        bad, total, other_bad, other_total = null_counts(rng, 30, 2000, 0.2, 0.01)
        k, n, j, m = (np.cumsum(a) for a in (bad, total, other_bad, other_total))
        pooled = (k + j) / (n + m)
        z = (k / n - j / m) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
        naive += bool((z > 1.645).any())
    assert naive / trials > 2 * alpha


def test_sequential_sign_test_false_abort_rate_under_the_null() -> None:
    rng, alpha, trials = np.random.default_rng(7), 0.05, 2000
    aborts = sum(
        sequential.sign_eprocess(list(rng.random(40) < 0.5), grid=sequential._SIGN_GRID, alpha=alpha).crossed_at
        is not None for _ in range(trials))
    assert aborts / trials <= alpha


def test_sequential_aborts_a_doubling_early_and_passes_a_good_release_early() -> None:
    rng = np.random.default_rng(11)
    cfg = judge_config.parse({"mode": "sequential", "minSamples": 3, "metrics": [
        {"name": "errors", "canary": "c", "baseline": "b", "canaryTotal": "ct", "baselineTotal": "bt",
         "direction": "increase"}]})
    bad, total, other_bad, other_total = null_counts(rng, 10, 6000, 0.2, 0.01)
    doubled = rng.binomial(total.astype(int), 0.02).astype(float)
    harmed = evaluate(cfg, {"errors": MetricSamples(doubled, other_bad, total, other_total)})
    assert harmed.verdict is Verdict.FAIL and harmed.metrics[0].classification is Classification.HIGH
    good = evaluate(cfg, {"errors": MetricSamples(bad, other_bad, total, other_total)})
    assert good.verdict is Verdict.PASS and "decisively safe" in good.message
    early = evaluate(cfg, {"errors": MetricSamples(bad[:1], other_bad[:1], total[:1], other_total[:1])})
    assert (early.verdict, early.score) == (Verdict.CONTINUE, 0.0)  # not cleared yet: `result.score >= 80` fails
    assert early.message.startswith("Continue (score 0): errors undecided: harm e=")


def test_sequential_decrease_fails_only_beyond_the_allowed_decrease() -> None:
    rng = np.random.default_rng(5)
    cfg = judge_config.parse({"mode": "sequential", "minSamples": 3, "metrics": [
        {"name": "throughput", "canary": "c", "baseline": "b", "direction": "decrease",
         "effectSize": {"allowedDecrease": 0.8}}]})
    baseline = rng.normal(100, 2, 20)
    slightly = evaluate(cfg, {"throughput": MetricSamples((baseline * 0.9).tolist(), baseline.tolist())})
    halved = evaluate(cfg, {"throughput": MetricSamples((baseline * 0.5).tolist(), baseline.tolist())})
    assert slightly.verdict is not Verdict.FAIL
    assert halved.verdict is Verdict.FAIL and halved.metrics[0].classification is Classification.LOW
