"""Benchmark: how fast and how reliably four analyses catch a bad canary and pass a good one.

Run: .venv/bin/python benchmarks/bench_detection.py [--trials N]

A seeded traffic model, one-minute intervals, the canary at 20% of the traffic, each interval in two
30 s buckets: Poisson request counts (low: 5 req/s, high: 100 req/s), errors Binomial at 1% (the
stable) and at 1% × the error regression (the canary); per-bucket mean latency of each side ~ the
mean of its requests (100 ms, per-request CV 0.5) × a load factor shared by both sides that bucket
(sd 10%), × the latency regression for the canary. Compared, each on the same trials:
- threshold: examples/istio-canary's template: the canary's success rate >= 0.95, measured every 5
  intervals, failing on the 4th failure (failureLimit 3); the steps end after 10 intervals.
- flagger: Flagger's threshold check every interval (success rate >= 98.5%, mean latency <= 150 ms),
  rollback after 5 failed checks (`threshold: 5`), promotion after 10 iterations.
- fixed: the fixed-window judge (analysis.judge, mode fixed), one judgement over the first 10
  intervals (20 buckets), errors as counts (critical) and latency (allowedIncrease 1.1); abort
  unless the verdict is Pass.
- sequential: the sequential judge (mode sequential, alpha 0.01, passBelow 1.5, minSamples 3),
  judged after every interval on the window so far, at most 30 intervals; abort on decisive harm,
  promote on decisive safety. Its per-interval verdicts are computed from the e-process paths and
  checked against analysis.judge.evaluate on the same window for a sample of trials.
Printed per method and traffic: the detection rate within 10 intervals and the median intervals to
abort for each regression, the false-abort rate on unchanged releases (three times as many trials,
so that 1% is resolved) and the median intervals to promote them. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.judge import config as judge_config
from analysis.judge import sequential
from analysis.judge.classify import MetricSamples
from analysis.judge.evaluate import evaluate
from analysis.judge.score import Verdict

HORIZON = 30  # intervals
BUCKETS = 2  # per interval
SHARE = 0.2
BASE_ERROR = 0.01
LATENCY_MS, CV, LOAD_SD = 100.0, 0.5, 0.10
TRAFFIC = {"low": 5.0, "high": 100.0}  # requests per second
SCENARIOS = [("unchanged", 1.0, 1.0), ("errors x1.5", 1.5, 1.0), ("errors x2", 2.0, 1.0), ("errors x4", 4.0, 1.0),
             ("latency +10%", 1.0, 1.10), ("latency +25%", 1.0, 1.25), ("latency +50%", 1.0, 1.5)]
QUERIES = {"canary": "c", "baseline": "b"}
COUNTS = {"canaryTotal": "ct", "baselineTotal": "bt"}
FIXED = judge_config.parse({"mode": "fixed", "minSamples": 10, "scoreThresholds": {"pass": 80, "marginal": 60},
                            "metrics": [
    {"name": "errors", **QUERIES, **COUNTS, "direction": "increase", "critical": True},
    {"name": "latency", **QUERIES, "direction": "increase", "effectSize": {"allowedIncrease": 1.1}}]})
SEQUENTIAL = judge_config.parse({"mode": "sequential", "minSamples": 3, "sequential": {"alpha": 0.01}, "metrics": [
    {"name": "errors", **QUERIES, "canaryTotal": "ct", "baselineTotal": "bt", "direction": "increase"},
    {"name": "latency", **QUERIES, "direction": "increase", "effectSize": {"allowedIncrease": 1.1}}]})


@dataclass(frozen=True)
class Trial:
    canary_bad: np.ndarray
    canary_total: np.ndarray
    stable_bad: np.ndarray
    stable_total: np.ndarray
    canary_latency: np.ndarray
    stable_latency: np.ndarray

    def window(self, buckets: int) -> dict[str, MetricSamples]:
        b = slice(0, buckets)
        return {"errors": MetricSamples(self.canary_bad[b].tolist(), self.stable_bad[b].tolist(),
                                        self.canary_total[b].tolist(), self.stable_total[b].tolist()),
                "latency": MetricSamples(self.canary_latency[b].tolist(), self.stable_latency[b].tolist())}


def simulate(rng: np.random.Generator, rps: float, error_factor: float, latency_factor: float) -> Trial:
    n = HORIZON * BUCKETS
    total = rng.poisson(rps * 60 / BUCKETS, n)
    canary_total = rng.binomial(total, SHARE)
    stable_total = total - canary_total
    canary_bad = rng.binomial(canary_total, min(1.0, BASE_ERROR * error_factor))
    stable_bad = rng.binomial(stable_total, BASE_ERROR)
    load = rng.lognormal(0.0, LOAD_SD, n)

    def latency(count: np.ndarray, factor: float) -> np.ndarray:
        safe = np.maximum(count, 1)
        mean = LATENCY_MS * factor * load * (1 + rng.normal(0.0, CV, n) / np.sqrt(safe))
        return np.where(count > 0, mean, np.nan)

    return Trial(canary_bad.astype(float), canary_total.astype(float), stable_bad.astype(float),
                 stable_total.astype(float), latency(canary_total, latency_factor), latency(stable_total, 1.0))


# Each method returns (decision, interval): ("abort" | "promote" | "undecided", 1-based interval).
Outcome = tuple[str, int]


def threshold_template(trial: Trial) -> Outcome:
    failures = 0
    for interval in range(5, HORIZON + 1, 5):  # measured every 5 intervals over the last 5
        b = slice((interval - 5) * BUCKETS, interval * BUCKETS)
        total = trial.canary_total[b].sum()
        rate = 1 - trial.canary_bad[b].sum() / total if total else float("nan")
        failures += not rate >= 0.95
        if failures > 3:
            return "abort", interval
        if interval >= 10:
            return "promote", 10  # the steps end after 10 intervals, with the analysis still running
    return "promote", 10


def flagger(trial: Trial) -> Outcome:
    failed = 0
    for interval in range(1, 11):
        b = slice((interval - 1) * BUCKETS, interval * BUCKETS)
        total = trial.canary_total[b].sum()
        success = 1 - trial.canary_bad[b].sum() / total if total else float("nan")
        latency = float(np.nanmean(trial.canary_latency[b])) if total else float("nan")
        failed += not (success >= 0.985 and latency <= 150)
        if failed >= 5:
            return "abort", interval
    return "promote", 10


def fixed_judge(trial: Trial) -> Outcome:
    verdict = evaluate(FIXED, trial.window(10 * BUCKETS)).verdict
    return ("promote" if verdict is Verdict.PASS else "abort"), 10


def sequential_judge(trial: Trial) -> Outcome:
    """The first interval whose judgement (over the window so far) is Fail or Pass, from the e-process paths."""
    alpha, pass_below = SEQUENTIAL.sequential.alpha, SEQUENTIAL.sequential.pass_below
    errors_harm = sequential.count_eprocess(trial.canary_bad, trial.canary_total, trial.stable_bad, trial.stable_total,
                                            null_ratio=1.0, grid=sequential._RATIO_GRID, alpha=alpha)
    errors_safe = sequential.count_eprocess(trial.canary_bad, trial.canary_total, trial.stable_bad, trial.stable_total,
                                            null_ratio=pass_below, grid=sequential._SAFE_GRID, alpha=alpha)
    c, s = trial.canary_latency, trial.stable_latency
    pairs = [None if np.isnan(a) or np.isnan(b) else bool(a) for a, b in zip(c, s, strict=True)]
    harm_signs = [None if p is None else bool(a > 1.1 * b) for p, a, b in zip(pairs, c, s, strict=True)]
    safe_signs = [None if p is None else not bool(a >= pass_below * b) for p, a, b in zip(pairs, c, s, strict=True)]
    latency_harm = sequential.sign_eprocess(harm_signs, grid=sequential._SIGN_GRID, alpha=alpha)
    latency_safe = sequential.sign_eprocess(safe_signs, grid=sequential._SIGN_GRID, alpha=alpha)
    harm = [p.crossed_at for p in (errors_harm, latency_harm) if p.crossed_at is not None]
    safe = [p.crossed_at for p in (errors_safe, latency_safe)]
    first_bucket = SEQUENTIAL.min_samples - 1
    safe_at = None if None in safe else max([*safe, first_bucket])  # type: ignore[type-var]
    if harm and (safe_at is None or min(harm) <= safe_at):
        return "abort", min(harm) // BUCKETS + 1
    if safe_at is not None:
        return "promote", safe_at // BUCKETS + 1
    return "undecided", HORIZON


def check_sequential(trial: Trial, outcome: Outcome) -> None:
    """The path shortcut agrees with analysis.judge.evaluate on the window at the decision (and before it)."""
    decision, interval = outcome
    expected = {"abort": Verdict.FAIL, "promote": Verdict.PASS, "undecided": Verdict.CONTINUE}[decision]
    at = evaluate(SEQUENTIAL, trial.window(interval * BUCKETS)).verdict
    assert at is expected, (outcome, at)
    if interval > 1:
        before = evaluate(SEQUENTIAL, trial.window((interval - 1) * BUCKETS)).verdict
        assert before is Verdict.CONTINUE, (outcome, before)


METHODS: dict[str, Callable[[Trial], Outcome]] = {
    "threshold": threshold_template, "flagger": flagger, "fixed": fixed_judge, "sequential": sequential_judge}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per regression")
    parser.add_argument("--null-trials", type=int, default=600, help="unchanged releases (the false-abort rate)")
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    print(f"{args.trials} trials per regression, {args.null_trials} unchanged releases, seed {args.seed}; "
          f"canary {SHARE:.0%}, {BUCKETS} buckets per interval, "
          f"base error rate {BASE_ERROR:.0%}, base latency {LATENCY_MS:g} ms")
    header = f"{'traffic':8} {'method':11} {'false abort':>11} {'promote@':>9}"
    header += "".join(f" {name:>17}" for name, *_ in SCENARIOS[1:])
    print(header + "\n" + " " * 42 + "".join(f" {'caught%  abort@':>17}" for _ in SCENARIOS[1:]))
    for traffic, rps in TRAFFIC.items():
        outcomes: dict[str, dict[str, list[Outcome]]] = {m: {} for m in METHODS}
        for index, (name, error_factor, latency_factor) in enumerate(SCENARIOS):
            rng = np.random.default_rng([args.seed, index, int(rps)])
            count = args.null_trials if index == 0 else args.trials
            trials = [simulate(rng, rps, error_factor, latency_factor) for _ in range(count)]
            for method, run in METHODS.items():
                outcomes[method][name] = [run(trial) for trial in trials]
            for trial, outcome in list(zip(trials, outcomes["sequential"][name], strict=True))[:10]:
                check_sequential(trial, outcome)
        for method in METHODS:
            null = outcomes[method]["unchanged"]
            false_abort = sum(d == "abort" for d, _ in null) / len(null)
            promoted = [i for d, i in null if d == "promote"]
            row = f"{traffic:8} {method:11} {false_abort:>10.1%} {_median(promoted):>9}"
            for name, *_ in SCENARIOS[1:]:
                runs = outcomes[method][name]
                caught = sum(d == "abort" and i <= 10 for d, i in runs) / len(runs)
                row += f" {caught:>8.1%} {_median([i for d, i in runs if d == 'abort']):>8}"
            print(row)


def _median(values: list[int]) -> str:
    return f"{statistics.median(values):g}" if values else "-"


if __name__ == "__main__":
    main()
