"""The threshold read from a condition (analysis.expr.thresholds): what /metrics shows beside the value.

Covers: the comparisons that have one threshold (either side, negative, scientific, every-element
predicates, NaN and length guards) and everything that must give none rather than a wrong one."""

from __future__ import annotations

import pytest

from analysis.expr.thresholds import Threshold, threshold


@pytest.mark.parametrize(("condition", "expected"), [
    ("result[0] >= 0.95", Threshold(">=", 0.95)),
    ("0.95 <= result[0]", Threshold(">=", 0.95)),
    ("result[0]>=9.5e-1", Threshold(">=", 0.95)),
    ("result < 0.01", Threshold("<", 0.01)),
    ("-1 < result", Threshold(">", -1.0)),
    ("asFloat(result) > 1", Threshold(">", 1.0)),
    ("result.data.rate <= 300", Threshold("<=", 300.0)),
    ("max(result) < 300", Threshold("<", 300.0)),
    ("all(result, {# < 0.05})", Threshold("<", 0.05)),
    ("any(result, 0.5 > #)", Threshold("<", 0.5)),
    ("isNaN(result) || result < 0.01", Threshold("<", 0.01)),
    ("!isNaN(result[0]) && result[0] >= 0.9", Threshold(">=", 0.9)),
    ("len(result) > 0 && max(result) < 300", Threshold("<", 300.0)),
    ("result[0] >= 1", Threshold(">=", 1.0)),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_comparison_with_a_constant_has_that_threshold(condition: str, expected: Threshold) -> None:
    assert threshold(condition) == expected


@pytest.mark.parametrize("condition", [
    None, "", "   ",
    "result[0] > 0.9 && result[1] > 0.8",  # two thresholds: neither is "the" threshold
    "result[0] > 0.9 || result[0] < 0.1",
    "result == 1",  # equality is not a threshold
    "result.data.ok == true",
    "result[0] * 100 > 95",  # arithmetic: 95 is not on the value's scale
    "!(result[0] < 0.95)",
    "result[0] > result[1]",
    "result[0] > true",
    "len(result) > 0",  # only a guard
    "isNaN(result)",
    "result[0] >=",  # does not parse
    "filter(result, # > 1) != []",
    "1 < 2",
], ids=repr)
def test_a_condition_without_a_single_threshold_gives_none(condition: str | None) -> None:
    assert threshold(condition) is None
