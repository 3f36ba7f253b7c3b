"""Kayenta's documented classification and scoring cases (flagger-kayenta.md §B7) and our
"not enough data" verdict, through analysis.judge.evaluate."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.judge import config as judge_config
from analysis.judge.classify import Classification, MetricSamples
from analysis.judge.evaluate import evaluate
from analysis.judge.score import Verdict

BASE = [100.0, 101.0, 99.0, 102.0, 98.0, 100.5, 99.5, 101.5, 98.5, 100.0, 101.0, 99.0]


def config(*metrics: dict[str, Any], **top: Any) -> judge_config.JudgeConfig:
    return judge_config.parse({"metrics": [{"canary": "c", "baseline": "b", **m} for m in metrics], **top})


def test_spinnaker_6278_wide_interval_passes_and_eight_hundreds_is_high() -> None:
    # Kayenta: [100×7, 1×3] vs [1×10] passes (CI_low 6.8e-5 < B = 0.25·99) with mean ratio 70.
    cfg = config({"name": "m", "direction": "increase"}, minSamples=5)
    seven = evaluate(cfg, {"m": MetricSamples([100.0] * 7 + [1.0] * 3, [1.0] * 10)})
    assert seven.metrics[0].classification is Classification.PASS
    assert seven.metrics[0].ratio == pytest.approx(70.3)
    eight = evaluate(cfg, {"m": MetricSamples([100.0] * 8 + [1.0] * 2, [1.0] * 10)})
    assert eight.metrics[0].classification is Classification.HIGH
    assert eight.verdict is Verdict.FAIL and eight.score == 0


def test_identical_sides_pass_with_score_100() -> None:
    judgement = evaluate(config({"name": "m"}), {"m": MetricSamples(BASE, list(reversed(BASE)))})
    assert (judgement.verdict, judgement.score) == (Verdict.PASS, 100.0)
    assert judgement.message == "Pass (score 100): no metric moved (m)"


@pytest.mark.parametrize(("direction", "factor", "expected"), [
    ("increase", 1.3, Classification.HIGH), ("increase", 0.7, Classification.PASS),
    ("decrease", 0.7, Classification.LOW), ("decrease", 1.3, Classification.PASS),
    ("either", 1.3, Classification.HIGH), ("either", 0.7, Classification.LOW),
])
def test_direction_decides_which_move_fails(direction: str, factor: float, expected: Classification) -> None:
    canary = [v * factor for v in BASE]
    judgement = evaluate(config({"name": "m", "direction": direction}), {"m": MetricSamples(canary, BASE)})
    assert judgement.metrics[0].classification is expected


def test_effect_size_gate_lets_a_significant_small_move_pass() -> None:
    canary = [v * 1.05 for v in BASE]
    strict = evaluate(config({"name": "m", "direction": "increase"}), {"m": MetricSamples(canary, BASE)})
    gated = evaluate(config({"name": "m", "direction": "increase", "effectSize": {"allowedIncrease": 1.1}}),
                     {"m": MetricSamples(canary, BASE)})
    assert strict.metrics[0].classification is Classification.HIGH
    assert gated.metrics[0].classification is Classification.PASS


def test_message_says_which_metric_moved_by_how_much_with_what_confidence() -> None:
    judgement = evaluate(config({"name": "latency", "direction": "increase"}, {"name": "errors"}),
                         {"latency": MetricSamples([v * 1.3 for v in BASE], BASE), "errors": MetricSamples(BASE, BASE)})
    assert judgement.verdict is Verdict.FAIL and judgement.score == 50.0
    assert judgement.message.startswith("Fail (score 50): latency rose: shift +30")
    assert "(mean +30.0%), 98% CI [" in judgement.message and "n=12/12" in judgement.message
    assert "errors" not in judgement.message


def test_critical_failure_scores_zero_whatever_the_others() -> None:
    metrics = [{"name": f"ok{i}"} for i in range(9)] + [{"name": "bad", "critical": True, "direction": "increase"}]
    series = {f"ok{i}": MetricSamples(BASE, BASE) for i in range(9)}
    series["bad"] = MetricSamples([v * 2 for v in BASE], BASE)
    judgement = evaluate(config(*metrics), series)
    assert (judgement.verdict, judgement.score) == (Verdict.FAIL, 0.0)
    assert judgement.message.startswith("Fail (score 0): critical metric bad rose")


def test_group_weights_weigh_groups_and_the_rest_share_what_is_left() -> None:
    cfg = config({"name": "lat", "groups": ["latency"], "direction": "increase"}, {"name": "err", "groups": ["errors"]},
                 {"name": "cpu", "groups": ["saturation"]}, groupWeights={"latency": 50})
    judgement = evaluate(cfg, {"lat": MetricSamples([v * 2 for v in BASE], BASE), "err": MetricSamples(BASE, BASE),
                               "cpu": MetricSamples(BASE, BASE)})
    assert judgement.score == 50.0  # latency 0 × 50% + errors 100 × 25% + saturation 100 × 25%


def test_metric_weights_inside_a_group_and_muted_metrics() -> None:
    cfg = config({"name": "a", "weight": 3}, {"name": "b", "direction": "increase"}, {"name": "c", "muted": True})
    bad = MetricSamples([v * 2 for v in BASE], BASE)
    judgement = evaluate(cfg, {"a": MetricSamples(BASE, BASE), "b": bad, "c": bad})
    assert judgement.score == 75.0 and judgement.verdict is Verdict.MARGINAL
    assert [m.name for m in judgement.metrics] == ["a", "b"]


def test_too_few_samples_is_inconclusive_with_the_count_in_the_message() -> None:
    judgement = evaluate(config({"name": "m"}, minSamples=20), {"m": MetricSamples(BASE[:3], BASE)})
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert judgement.metrics[0].message == "insufficient data: n=3 < minSamples 20 (canary)"
    assert "insufficient data: n=3 < minSamples 20" in judgement.message


def test_no_canary_traffic_is_inconclusive_and_must_have_data_fails_it() -> None:
    zeros, totals = [0.0] * 12, [100.0] * 12
    samples = MetricSamples(zeros, [1.0] * 12, zeros, totals)
    lenient = evaluate(config({"name": "e", "canaryTotal": "t", "baselineTotal": "t"}), {"e": samples})
    assert lenient.verdict is Verdict.INCONCLUSIVE
    assert lenient.metrics[0].message == "insufficient data: no canary traffic (canaryTotal is 0 over the window)"
    strict = evaluate(config({"name": "e", "canaryTotal": "t", "baselineTotal": "t", "mustHaveData": True}),
                      {"e": samples})
    assert strict.metrics[0].classification is Classification.NODATA_FAIL and strict.verdict is Verdict.FAIL


def test_nan_strategy_remove_drops_and_replace_zeroes() -> None:
    with_gaps = BASE[:6] + [float("nan")] * 6
    removed = evaluate(config({"name": "m"}), {"m": MetricSamples(with_gaps, BASE)})
    assert removed.verdict is Verdict.INCONCLUSIVE and removed.metrics[0].canary_n == 6
    replaced = evaluate(config({"name": "m", "nanStrategy": "replace"}), {"m": MetricSamples(with_gaps, BASE)})
    assert replaced.metrics[0].canary_n == 12 and replaced.metrics[0].estimate < -40  # six zeros pull it down


def test_iqr_outlier_removal_drops_a_spike() -> None:
    spiky = [*BASE, 10_000.0]
    kept = evaluate(config({"name": "m"}), {"m": MetricSamples(spiky, BASE)})
    removed = evaluate(config({"name": "m", "outliers": {"strategy": "remove"}}), {"m": MetricSamples(spiky, BASE)})
    assert kept.metrics[0].canary_n == 13 and removed.metrics[0].canary_n == 12


def test_kayenta_config_names_are_read_in_place() -> None:
    cfg = judge_config.parse({
        "classifier": {"groupWeights": {"errors": 60, "latency": 40}, "scoreThresholds": {"pass": 90, "marginal": 70}},
        "metrics": [{"name": "e", "canary": "c", "baseline": "b", "groups": ["errors"],
                     "analysisConfigurations": {"canary": {"direction": "increase", "nanStrategy": "replace",
                                                           "critical": True, "mustHaveData": True,
                                                           "effectSize": {"allowedIncrease": 1.1}}}}],
    })
    metric = cfg.metrics[0]
    assert (metric.direction, metric.nan_strategy, metric.critical, metric.must_have_data) == (
        "increase", "replace", True, True)
    assert metric.effect_size.allowed_increase == 1.1
    assert cfg.group_weights == {"errors": 60, "latency": 40} and cfg.score_thresholds.pass_ == 90


def test_config_problems_name_the_field_and_the_fix() -> None:
    found = judge_config.problems({"metrics": [{"name": "m", "canary": "c", "baseline": "b", "direction": "up",
                                                "minSample": 3}], "mode": "fast"})
    paths = {path: fix for path, _, fix in found}
    assert paths["metrics[0].direction"] == "use increase, decrease or either"
    assert "metrics[0].minSample" in paths and paths["mode"] == "use fixed or sequential"
    assert judge_config.problems({"metrics": [{"name": "m", "canary": "c", "baseline": "b",
                                               "minSamples": "{{args.n}}"}]}) == []
    assert judge_config.problems({"metrics": []})[0][0] == "metrics"


def test_problems_of_blocks_holding_placeholders_are_still_found() -> None:
    metric = {"name": "m", "canary": "q{{args.hash}}", "baseline": "q{{args.hash}}"}
    found = judge_config.problems({"metrics": [{**metric, "canaryTotal": "t"}, metric], "lookback": "1d",
                                   "step": "{{args.step}}"})
    assert [(path, fix) for path, _, fix in found] == [
        ("metrics[0]", "see README: Statistical judge"), ("lookback", "give a duration such as 30m")]
    assert "canaryTotal and baselineTotal go together" in found[0][1] and "no 'd'" in found[1][1]
    duplicated = judge_config.problems({"metrics": [metric, metric]})
    assert duplicated == [("(config)", "metric names must be unique (got m, m)", "see README: Statistical judge")]
