"""The condition language is bounded on any input, and fails only with its own errors.

Regression tests of the security review: work and memory are bounded by what an
evaluation does (expr_budget), numbers parse in linear time, and nothing but ExprError
leaves the condition API. No test asserts a time: boundedness shows as the budget or size
error, or as memory measured with tracemalloc; the timeout markers are only a safety net.
"""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import pytest

from analysis.expr import ExprError, MeasurementPhase, compile_expr, eval_condition, evaluate_condition, format_value
from analysis.expr import budget as expr_budget
from analysis.expr import builtins as expr_builtins

BUDGET = "evaluation exceeded its budget of 1000000 steps"
INT64_MIN = "(-9223372036854775807 - 1)"
NAN, INF = math.nan, math.inf


def value(text: str, result: object = None) -> object:
    return compile_expr(text).evaluate({"result": result})


def error_of(text: str, result: object = None) -> str:
    with pytest.raises(ExprError) as caught:
        value(text, result)
    return str(caught.value)


def peak_of(text: str, result: object) -> tuple[str, int]:
    """The outcome of evaluating `text` (its value's repr, or its error) and the peak of
    memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        try:
            outcome = repr(value(text, result))[:80]
        except ExprError as err:
            outcome = str(err)
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def nested(depth: int) -> list[Any]:
    """[[[...]]] `depth` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# ---------------------------------------------------------------- number parsing is linear


@pytest.mark.timeout(30)
@pytest.mark.parametrize("function", ["asFloat", "float", "asInt", "int"])
@pytest.mark.parametrize("digits", [20_000, 100_000, 1 << 20])
def test_long_numeric_text_is_refused_before_parsing(function: str, digits: int) -> None:
    """Review: asFloat of 20,000 digits and a letter held the GIL 8.3 s (a backtracking
    regex), 100,000 digits over 150 s. Numbers longer than MAX_NUMBER_TEXT are refused."""
    message = error_of(f"{function}(result) > 1", "1" * digits + "x")
    limit = f"longer than {expr_builtins.MAX_NUMBER_TEXT} characters"
    assert limit in message or message.startswith(f"invalid operation: {function}(1111")
    assert len(message) < 300  # the text is cut in the message too


@pytest.mark.timeout(60)
def test_float_syntax_is_checked_in_linear_time() -> None:
    assert expr_builtins.go_float_syntax("1" * 1_000_000 + "x") is False
    assert expr_builtins.go_float_syntax("1" * 1_000_000 + ".5e-7") is True
    assert expr_builtins.go_float_syntax("." * 500_000) is False


@pytest.mark.parametrize(
    ("text", "want"),
    [("1.5", True), ("-.5", True), ("+1.", True), ("1e3", True), ("1E+3", True), ("inf", True), ("-Infinity", True),
     ("NaN", True), (".", False), ("", False), ("1e", False), ("e5", False), (" 1", False), ("1_0", False),
     ("0x10", False), ("١", False), ("1.5.5", False), ("--1", False), ("1e5e5", False)],
)  # fmt: skip
def test_float_syntax_is_go_parse_float_for_decimals(text: str, want: bool) -> None:
    assert expr_builtins.go_float_syntax(text) is want


def test_numbers_of_ordinary_length_still_parse() -> None:
    assert value("asFloat(result)", "1" * 300 + ".5") == float("1" * 300 + ".5")
    assert value("asInt(result)", "0" * 390 + "42") == 42
    assert "value out of range" in error_of("asInt(result)", "9" * 400)


# ---------------------------------------------------------------- the budget applies to every evaluation


@pytest.mark.timeout(120)
def test_many_references_to_one_large_list_pay_for_each_walk() -> None:
    """Review: many `#` references to one large nested list multiplied work past the
    budget (a 291-character condition ran about 30 s): each deep comparison pays."""
    big = [[list(range(1000))] * 100] * 100
    assert error_of("all(result, # == # && # == # && # == #)", big) == BUDGET
    assert error_of("all(result, all(#, all(#, # == # && # == #)))", big) == BUDGET


@pytest.mark.timeout(120)
def test_top_level_operations_pay_too() -> None:
    """The budget is not only for loops inside loops: a deep comparison, a membership
    test or a walk at the top level pays for what it handles."""
    flat = [0.5] * 100_000
    assert error_of(" && ".join(["result == result"] * 30), flat) == BUDGET
    assert error_of("result == result", [[list(range(1000))] * 100] * 100) == BUDGET
    assert error_of("all(result, # == 0)", [0] * 2_000_000) == BUDGET  # more than a 1 MiB body can hold
    assert error_of(" && ".join(["max(result) > 0"] * 30), flat) == BUDGET


@pytest.mark.timeout(120)
def test_membership_pays_for_the_comparisons_it_makes() -> None:
    result = [[list(range(1000))] * 10] * 10
    assert error_of("all(1..300, result[0] in result)", result) == BUDGET


@pytest.mark.timeout(120)
def test_string_of_a_large_value_pays_for_what_it_renders() -> None:
    result = [list(range(1000))] * 100
    assert error_of("all(1..100, len(string(result)) > 0)", result) == BUDGET
    shown = value("string(result)", result)
    assert isinstance(shown, str) and len(shown) == expr_budget.MAX_STRING and shown.endswith("…")


@pytest.mark.timeout(120)
def test_join_checks_its_length_before_building_the_string() -> None:
    """Review: `len(join(split(S,''),S))` with a 45,000-character S used 2 GB (99,999 asked
    for 10 GB): join built its string before checking it. The length is computed first."""
    outcome, peak = peak_of("len(join(split(result, ''), result)) > 0", "a" * 5_000)
    assert outcome == f"string longer than {expr_budget.MAX_STRING} characters"
    assert peak < 10 * 2**20  # the 25,000,000 characters are never built
    assert error_of("len(join(split(result, ''), result)) > 0", "a" * 45_000).startswith("string longer than")


@pytest.mark.parametrize(
    ("text", "result", "message"),
    [
        ("len(upper(result)) > 0", "a" * 200_000, "string longer than 100000 characters"),
        ("len(lower(result)) > 0", "A" * 200_000, "string longer than 100000 characters"),
        ("len(split(result, '')) > 0", "a" * 200_000, "split has more than 100000 elements"),
        ("len(split(result, ',')) > 0", "," * 200_000, "split has more than 100000 elements"),
    ],
)
def test_results_are_size_checked_before_they_are_built(text: str, result: str, message: str) -> None:
    assert error_of(text, result) == message


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("map(1..1000, result + 'x')", "a" * 90_000),
        ("map(1..1000, split(result, ''))", "\u0101" * 4_000),
        ("map(1..100000, {{a: #, b: [#, #]}})", None),
        ("map(1..3000, 1..1000)", None),
        ("map(1..1000, result[1:])", list(range(100_000))),
        ("map(1..1000, keys(result))", {str(i): i for i in range(10_000)}),
        ("len(string([result, result, result, result, result, result, result, result])) > 0",
         [[list(range(1000))] * 20] * 20),
    ],
)  # fmt: skip
def test_memory_stays_small(text: str, result: object) -> None:
    outcome, peak = peak_of(text, result)
    assert peak < 60 * 2**20, (outcome, peak)


def test_common_conditions_are_not_refused() -> None:
    series = [0.97] * 10_000
    assert value("all(result, # > 0.9) && max(result) < 1 && len(result) > 0", series) is True
    assert value("mean(result) > 0.9 && count(result, # > 0.95) == 10000", series) is True
    assert value("result == result", [[1.5] * 1000] * 100) is True


# ---------------------------------------------------------------- deep values need no recursion


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("text", "want"),
    [("result == result", True), ("len(string(result)) > 0", True), ("max(result) == nil", True),
     ("[] in result", False), ("result[0] != result", True)],
)  # fmt: skip
def test_deeply_nested_results(text: str, want: bool) -> None:
    assert value(text, nested(100_000)) is want


def test_format_value_renders_only_what_it_shows() -> None:
    assert format_value(nested(100_000)).startswith("[[[[") and len(format_value(nested(100_000))) == 200
    assert format_value(["x" * 1_000_000]) == '["' + "x" * 197 + "…"
    assert format_value([1, [2, {"a": "b\\"}]], limit=200) == '[1,[2,{"a":"b\\\\"}]]'


# ---------------------------------------------------------------- only ExprError leaves the API


@pytest.mark.parametrize(
    ("text", "result", "message"),
    [
        ("trim('a', 1) == 'a'", None, "invalid argument for trim (type int)"),
        ("asInt(result) > 0", "1" * 4_301, "longer than 400 characters"),
        ("asInt(result) > 0", "1" * 5_000, "longer than 400 characters"),
        (f"-{INT64_MIN} > 0", None, "integer overflow in -: the result does not fit in int64"),
        (f"-(-{INT64_MIN}) > 0", None, "integer overflow in -: the result does not fit in int64"),
        (f"abs({INT64_MIN}) > 0", None, "integer overflow in abs: the result does not fit in int64"),
        ("-result > 0", -(2**63), "integer overflow in -: the result does not fit in int64"),
        ("asFloat(result) > 0", 10**400, "is too large for float64"),
        ("result + 1.5 > 0", 10**400, "is too large for float64"),
        ("result / 2 > 0", 10**400, "is too large for float64"),
        ("isInf(result)", 10**400, "is too large for float64"),
        ("ceil(result) > 0", 10**400, "is too large for float64"),
        ("mean(result) > 0", [10**400], "is too large for float64"),
        ("median(result) > 0", [10**400, 1], "is too large for float64"),
        ("[1][result] > 0", 10**5000, "index out of range"),
        ("len(1..result) > 0", 10**5000, "has more than 100000 elements"),
        ("asInt(result) > 0", 10**5000, "integer overflow in asInt"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 60 else type(v).__name__,
)
def test_failures_are_expr_errors(text: str, result: object, message: str) -> None:
    """Review: trim('a', 1) (TypeError), asInt of 4,300+ digits (Python's int-string
    limit), `-(-9223372036854775807-1)` and abs of it (left int64 silently), and numbers
    beyond float64 (OverflowError)."""
    assert message in error_of(text, result)


@pytest.mark.parametrize(
    ("text", "result", "want"),
    [
        ("mean(1e308, 1e308)", None, INF),  # Go sums in float64: +Inf, not OverflowError
        ("mean(result)", [INF, -INF], NAN),  # +Inf + -Inf is NaN in Go, not ValueError
        ("mean(result)", [1e308, 1e308, -1e308], INF),
        ("mean(result)", [0.1, 0.2, 0.3], math.fsum([0.1, 0.2, 0.3]) / 3),
        ("median(result)", [INF, -INF], NAN),
    ],
)
def test_mean_of_extreme_values_is_what_go_computes(text: str, result: object, want: float) -> None:
    got = value(text, result)
    assert isinstance(got, float)
    assert math.isnan(got) if math.isnan(want) else got == want


@pytest.mark.parametrize(
    "result",
    [10**5000, -(10**5000), [10**5000], nested(100_000), {"a": nested(50_000)}, "\ud800", ["\udc80", 2**63]],
    ids=["huge int", "huge negative", "in a list", "deep list", "deep map", "surrogate", "mixed"],
)
def test_the_verdict_never_raises(result: object) -> None:
    for success, failure in [("true", None), ("result == result", "string(result) == ''"), ("result > 0", None)]:
        verdict = evaluate_condition(success, failure, result)
        assert isinstance(verdict.message, str) and verdict.message
        assert verdict.phase in tuple(MeasurementPhase)


def test_huge_integers_render_without_str() -> None:
    assert format_value(10**5000) == "<integer too large for float64>"
    assert format_value(-(10**5000)) == "-<integer too large for float64>"
    assert format_value(2**64) == "18446744073709551616"
    assert format_value(10**30) == "1e+30"


def test_the_trial_run_never_shows() -> None:
    """An expression with no loops first runs without a budget; an operation too big for
    that run starts it again with one. Either way the caller sees a value or ExprError."""
    big = list(range(50_000))
    assert eval_condition("max(result) == 49999 && len(result[1:]) == 49999", big) is True
    assert eval_condition("max(result) == 2", [1, 2]) is True
    with pytest.raises(ExprError, match="budget"):
        eval_condition(" && ".join(["max(result) > 0"] * 30), big)
