"""The condition language: every operator and built-in, errors, bounds, and the verdict.

Table-driven over the pure core (analysis.expr). Where we deviate from expr-lang / Argo on
purpose, a test named `test_deviation_*` states the input and the reason.
"""

from __future__ import annotations

import ast
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from analysis import expr
from analysis.expr import (
    ExprError,
    Expression,
    ExprSyntaxError,
    MeasurementPhase,
    Verdict,
    check_syntax,
    compile_expr,
    eval_condition,
    evaluate_condition,
    format_value,
)
from analysis.expr import budget as expr_budget
from analysis.expr import builtins as expr_builtins
from analysis.expr import calls as expr_calls
from analysis.expr import compile as expr_compile
from analysis.expr import nodes as expr_nodes
from analysis.expr import ops as expr_ops
from analysis.expr import parse as expr_parse
from analysis.expr import predicates as expr_predicates
from analysis.expr import shapes as expr_shapes
from analysis.expr import strings as expr_strings
from analysis.expr import tokens as expr_tokens
from analysis.expr import values as expr_values  # fmt: skip

NAN, INF = math.nan, math.inf


def value(text: str, result: object = None) -> object:
    return compile_expr(text).evaluate({"result": result})


def same(got: object, want: object) -> bool:
    """Equal with the same Python type (int vs float matters: Go's int vs float64)."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(want) and got == want


def error_of(text: str, result: object = None) -> str:
    with pytest.raises(ExprError) as caught:
        value(text, result)
    return str(caught.value)


# ---------------------------------------------------------------- values

VALUES: list[tuple[str, object, object]] = [
    # literals
    ("1", None, 1), ("1.5", None, 1.5), (".5", None, 0.5), ("1e3", None, 1000.0), ("1_000", None, 1000),
    ("0x1F", None, 31), ("0b101", None, 5), ("0o17", None, 15), ("'single'", None, "single"),
    ('"double"', None, "double"), ("`raw\\n`", None, "raw\\n"), ('"a\\tb"', None, "a\tb"),
    ('"\\u00e9"', None, "é"), ("true", None, True), ("false", None, False), ("nil", None, None),
    ("[1, 'a', nil]", None, [1, "a", None]), ("[1, 2,]", None, [1, 2]), ("{a: 1, 'b c': 2}", None, {"a": 1, "b c": 2}),
    ("1 // a comment", None, 1), ("/* block */ 2", None, 2),
    # arithmetic: int op int stays int, anything with a float is float64, / and ** are always float
    ("1 + 2", None, 3), ("1 + 2.5", None, 3.5), ("5 - 7", None, -2), ("3 * 4", None, 12), ("3 * 0.5", None, 1.5),
    ("7 / 2", None, 3.5), ("6 / 3", None, 2.0), ("7 % 3", None, 1), ("-7 % 3", None, -1), ("7 % -3", None, 1),
    ("2 ** 10", None, 1024.0), ("2 ^ 3", None, 8.0), ("2 ** 3 ** 2", None, 512.0), ("-2 ** 2", None, -4.0),
    ("(-2) ** 2", None, 4.0), ("1 / 0", None, INF), ("-1 / 0", None, -INF), ("0 / 0", None, NAN),
    ("1 + 2 * 3", None, 7), ("(1 + 2) * 3", None, 9), ("10 - 2 - 3", None, 5), ("-result", 2.5, -2.5),
    ("+result", 2, 2), ("'a' + 'b'", None, "ab"), ("result + 1", 1.5, 2.5),
    # comparison
    ("1 < 2", None, True), ("2 <= 2", None, True), ("3 > 4", None, False), ("4 >= 4.0", None, True),
    ("1 == 1.0", None, True), ("1 != 1", None, False), ("'a' < 'b'", None, True), ("'b' >= 'a'", None, True),
    ("result > 0.5", 0.7, True), ("result == 10", 10.0, True), ("result == nil", None, True),
    ("result != nil", 1.0, True), ("nil == nil", None, True), ("[1, 2] == [1, 2]", None, True),
    ("[1, 2] == [1, 2.0]", None, True), ("{a: 1} == {a: 1}", None, True), ("result == [1, 2]", [1, 2], True),
    ("1 < 2 < 3", None, True), ("3 > 2 > 1", None, True), ("1 < 3 < 2", None, False),
    ("result >= 0.9", NAN, False), ("result < 0.9", NAN, False), ("result != result", NAN, True),
    ("result > 1e308", INF, True),
    # logic
    ("true && false", None, False), ("true and true", None, True), ("false || true", None, True),
    ("false or false", None, False), ("!true", None, False), ("not false", None, True),
    ("not true == false", None, True), ("true || false && false", None, True),
    ("(true || false) && false", None, False), ("false && result[0] > 1", [], False),
    ("true || result[0] > 1", None, True), ("true && true && false", None, False),
    ("false || false || true", None, True), ("(true || false) && (false || true)", None, True),
    # membership and string operators
    ("2 in [1, 2]", None, True), ("2.0 in [1, 2]", None, True), ("3 not in [1, 2]", None, True),
    ("'a' in {a: 1}", None, True), ("'b' in {a: 1}", None, False), ("1 in result", None, False),
    ("nil in [nil]", None, True), ("result in [1, 2]", NAN, False),
    ("'foobar' contains 'oba'", None, True), ("'foobar' not contains 'x'", None, True),
    ("'foobar' startsWith 'foo'", None, True), ("'foobar' endsWith 'bar'", None, True),
    ("'foobar' not startsWith 'bar'", None, True), ("'a' + 'b' in ['ab']", None, True),
    # ranges
    ("1..4", None, [1, 2, 3, 4]), ("3..1", None, []), ("len(1..10)", None, 10),
    # indexing, members, slices
    ("result[0]", [5.0, 6.0], 5.0), ("result[-1]", [5.0, 6.0], 6.0), ("result[-2]", [5.0, 6.0], 5.0),
    ("result.a", {"a": 1}, 1), ("result['a.b']", {"a.b": 2}, 2), ("result.missing", {"a": 1}, None),
    ("result.a.b", {"a": {"b": True}}, True), ("result[0].count", [{"count": 10}], 10),
    ("result['a'][1]", {"a": [1, 2]}, 2), ("'abc'[1]", None, "b"), ("result[1:]", [1, 2, 3], [2, 3]),
    ("result[:2]", [1, 2, 3], [1, 2]), ("result[-2:]", [1, 2, 3], [2, 3]), ("result[5:]", [1, 2, 3], []),
    ("result[2:1]", [1, 2, 3], []), ("result[:]", [1, 2], [1, 2]), ("'hello'[1:3]", None, "el"),
    ("result?.a", None, None), ("result?.a.b", None, None), ("result?.[0]", None, None),
    ("result?.a", {"a": 3}, 3), ("{a: 1}.a", None, 1), ("[[1, 2]][0][1]", None, 2),
    ("result[1 + 0]", [1, 2], 2),
    # ternary, elvis, nil coalescing, pipe
    ("true ? 1 : 2", None, 1), ("false ? 1 : 2", None, 2), ("result > 1 ? 'hi' : 'lo'", 2, "hi"),
    ("false ? 1 : true ? 2 : 3", None, 2), ("result ?: false", True, True), ("result ?: 'x'", False, "x"),
    ("result ?? 5", None, 5), ("result ?? 5", 1.5, 1.5), ("result.a ?? 'none'", {}, "none"),
    ("result | len()", [1, 2, 3], 3), ("result | all(# > 0)", [1, 2], True),
    ("result | filter(# > 1) | len()", [1, 2, 3], 2),
]


@pytest.mark.parametrize(("text", "result", "want"), VALUES, ids=[v[0] for v in VALUES])
def test_value(text: str, result: object, want: object) -> None:
    assert same(value(text, result), want)


# ---------------------------------------------------------------- built-ins

BUILTINS: list[tuple[str, object, object]] = [
    ("len(result)", [1, 2], 2), ("len(result)", {"a": 1}, 1), ("len(result)", "héllo", 5), ("len(result)", [], 0),
    ("abs(-3)", None, 3), ("abs(-2.5)", None, 2.5), ("abs(result)", 4, 4),
    ("max(result)", [1.0, 5.0, 3.0], 5.0), ("max(1, 2.5, 2)", None, 2.5), ("max(result)", [], None),
    ("max(result, 9)", [1, 2], 9), ("min(result)", [3, 1, 2], 1), ("min(1, 0.5)", None, 0.5),
    ("sum(result)", [1, 2, 3], 6), ("sum(result)", [1, 2.5], 3.5), ("sum(result)", [], 0),
    ("sum(result, # * 2)", [1, 2], 6), ("mean(result)", [1, 2, 3, 4], 2.5), ("mean(result)", [], 0.0),
    ("median(result)", [3, 1, 2], 2.0), ("median(result)", [4, 1, 3, 2], 2.5), ("median(result)", [], 0.0),
    ("ceil(1.2)", None, 2.0), ("floor(1.8)", None, 1.0), ("floor(-1.5)", None, -2.0), ("ceil(2)", None, 2.0),
    ("round(2.5)", None, 3.0), ("round(-2.5)", None, -3.0), ("round(2.4)", None, 2.0), ("ceil(result)", INF, INF),
    ("int(2.9)", None, 2), ("int(-2.9)", None, -2), ("int('42')", None, 42), ("float(2)", None, 2.0),
    ("float('1.5')", None, 1.5), ("string(1.5)", None, "1.5"), ("string(result)", [1, 2], "[1,2]"),
    ("trim('  a ')", None, "a"), ("trim('xxaxx', 'x')", None, "a"), ("upper('ab')", None, "AB"),
    ("lower('AB')", None, "ab"), ("split('a,b', ',')", None, ["a", "b"]), ("split('ab', '')", None, ["a", "b"]),
    ("join(['a', 'b'], '-')", None, "a-b"), ("join(['a', 'b'])", None, "ab"),
    ("first(result)", [7, 8], 7), ("first(result)", [], None), ("last(result)", [7, 8], 8),
    ("keys(result)", {"a": 1}, ["a"]), ("values(result)", {"a": 1}, [1]),
    # Argo's helpers (argo-rollouts.md §4.1)
    ("asInt(result)", "42", 42), ("asInt(result)", "-7", -7), ("asInt(result)", "+7", 7), ("asInt(result)", 1.9, 1),
    ("asInt(result)", -1.9, -1), ("asInt(result)", 3, 3), ("asFloat(result)", "1.5", 1.5),
    ("asFloat(result)", "1e3", 1000.0), ("asFloat(result)", "-.5", -0.5), ("asFloat(result)", 2, 2.0),
    ("asFloat(result)", "NaN", NAN), ("asFloat(result)", "+Inf", INF), ("asFloat(result)", "-inf", -INF),
    ("isNaN(result)", NAN, True), ("isNaN(result)", 1.0, False), ("isNaN(1)", None, False),
    ("isInf(result)", INF, True), ("isInf(result)", -INF, True), ("isInf(result)", NAN, False),
    ("isNil(result)", None, True), ("isNil(result)", [], False), ("isNil(result)", 0.0, False),
    ("default(result, 3)", None, 3), ("default(result, 3)", 1.5, 1.5),
]


@pytest.mark.parametrize(("text", "result", "want"), BUILTINS, ids=[f"{v[0]}|{v[1]!r}" for v in BUILTINS])
def test_builtin(text: str, result: object, want: object) -> None:
    assert same(value(text, result), want)


# ---------------------------------------------------------------- predicates

PREDICATES: list[tuple[str, object, object]] = [
    ("all(result, {# > 1})", [2, 3], True), ("all(result, # > 1)", [1, 3], False), ("all(result, # > 1)", [], True),
    ("any(result, {# > 2})", [1, 3], True), ("any(result, # > 5)", [1, 3], False), ("any(result, # > 5)", [], False),
    ("none(result, # > 5)", [1, 3], True), ("none(result, {# > 2})", [1, 3], False),
    ("one(result, # == 2)", [1, 2, 3], True), ("one(result, # > 1)", [1, 2, 3], False),
    ("filter(result, # > 1)", [1, 2, 3], [2, 3]),
    ("filter(result, {.ok})", [{"ok": True}, {"ok": False}], [{"ok": True}]),
    ("map(result, # * 2)", [1, 2], [2, 4]), ("map(result, {#index})", [5, 6], [0, 1]),
    ("map(result, .name)", [{"name": "a"}], ["a"]), ("count(result, # > 1)", [1, 2, 3], 2),
    ("count(result)", [True, False, True], 2), ("find(result, # > 1)", [1, 2, 3], 2),
    ("find(result, # > 9)", [1, 2], None), ("findIndex(result, # > 1)", [1, 2, 3], 1),
    ("findLast(result, # > 1)", [1, 2, 3], 3), ("findLastIndex(result, # > 1)", [1, 2, 3], 2),
    ("findIndex(result, # > 9)", [1], -1), ("all(result, .a > 0 && .b)", [{"a": 1, "b": True}], True),
    ("all(result, # >= 0.9 || isNaN(#))", [NAN, 0.95], True), ("all(result, #.count < 20)", [{"count": 10}], True),
    ("all(result, # == 'x')", ["x", "x"], True), ("any(result, # != nil)", [None, 1], True),
    ("all(result, # > 'a')", ["b", "c"], True),
    ("all(result, {all(#, {# > 0})})", [[1, 2], [3]], True), ("map(result, {map(#, {# + 1})})", [[1], [2]], [[2], [3]]),
    ("all(result, {any(result, {# > 2})})", [1, 3], True), ("map(result, {#index + #})", [10, 20], [10, 21]),
    ("filter(map(result, # * 10), # > 15)", [1, 2], [20]), ("all(1..3, # > 0)", None, True),
    ("sum(map(result, .n))", [{"n": 1}, {"n": 2}], 3), ("all(result, { # > 1 })", [2], True),
    ("count(result, # > 1,)", [1, 2], 1),
]


@pytest.mark.parametrize(("text", "result", "want"), PREDICATES, ids=[v[0] for v in PREDICATES])
def test_predicate(text: str, result: object, want: object) -> None:
    assert same(value(text, result), want)


def test_predicates_do_not_touch_the_callers_environment() -> None:
    env = {"result": [1, 2, 3]}
    assert compile_expr("map(result, {#index + #})").evaluate(env) == [1, 3, 5]
    assert env == {"result": [1, 2, 3]}


def test_one_expression_evaluates_from_many_threads() -> None:
    expression = compile_expr("map(result, {# * 2 + #index})")
    seen: list[object] = []

    def work(n: int) -> None:
        for _ in range(200):
            seen.append(expression.evaluate({"result": [n, n]}) == [2 * n, 2 * n + 1])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [True] * 800


# ---------------------------------------------------------------- fast paths agree with the general path

FUSED = [
    "result[0] >= 0.95", "result[0] >= 0.95 && result[0] < 1.5", "result[0] > 1 || result[0] < 0",
    "result[0] > 1 || result[1] < 0", "result[-1] <= 2 && result[0] != 1", "result.a > 1 && result.b < 2",
    "result[0] == 1", "result.a == nil", "result.a != 'x'", "all(result, # > 0.9)", "any(result, # < 0)",
    "none(result, # >= 1)", "filter(result, # > 1)", "count(result, .a > 1)", "findIndex(result, # == 2)",
    "result[0] >= 0.95 && result[1] < 1.5",
]
RESULTS: list[object] = [
    [0.97], [1.0], [2.0], [-1.0], [0.5, -1], [2, 3], [], None, ["a"], [None], (1.0,), {"a": 2, "b": 1},
    {"a": None}, 1.0, "x", [NAN], [{"a": 2}, {"a": 0}], [[1]], [True],
]


def outcome(text: str, result: object) -> object:
    try:
        got = value(text, result)
    except ExprError as err:
        return ("error", str(err).split(" at column")[0])
    return ("nan",) if isinstance(got, float) and math.isnan(got) else (type(got).__name__, got)


def unfused(text: str) -> str:
    """The same expression with literals written `(N + 0)`, `(nil ?? nil)`, `('x' + '')`:
    no fast path applies to it."""
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and (text[j].isdigit() or (text[j] == "." and j > i)):
            j += 1
        if j > i and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "[-")):
            out.append(f"({text[i:j]} + 0)")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out).replace("nil", "(nil ?? nil)").replace("'x'", "('x' + '')")


@pytest.mark.parametrize("text", FUSED)
def test_fast_paths_agree_with_the_general_path(text: str) -> None:
    slow = unfused(text)
    assert slow != text
    for result in RESULTS:
        assert outcome(text, result) == outcome(slow, result), (text, slow, result)


# ---------------------------------------------------------------- typing (expr's checker)

def test_typed_mismatch_in_equality_is_an_error() -> None:
    # asFloat returns float64: comparing it with a string literal is expr's compile error.
    assert check_syntax('asFloat(result) == "1.1"') is not None
    assert "mismatched types float64 and string" in error_of('asFloat(result) == "1.1"', "1.1")
    # `result` is typed from its value: a float compared with a bool is an error...
    assert "mismatched types float64 and bool" in error_of("result == true", 1.0)
    # ...but the same comparison against an element of a list ("any") is just false.
    assert value("result[0] == true", [1.0]) is False
    assert value("result.a == 'x'", {"a": 1.0}) is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 && true", "invalid operation: && (mismatched types int and bool)"),
        ("'a' < 1", "invalid operation: < (mismatched types string and int)"),
        ("'a' * 2", "invalid operation: * (mismatched types string and int)"),
        ("1.5 % 2", "invalid operation: % (mismatched types float64 and int)"),
        ("!1", "invalid operation: ! (mismatched type int)"),
        ("-'a'", "invalid operation: - (mismatched type string)"),
        ("1 ? 2 : 3", "non-bool expression (type int) used as condition"),
        ("all(1, # > 0)", "builtin all takes only array (got int)"),
        ("all([1], 1 + 1)", "predicate should return boolean (got int)"),
        ("1 in 'abc'", "invalid operation: in (mismatched types int and string)"),
        ("'a' contains 1", "invalid operation: contains (mismatched types string and int)"),
    ],
)
def test_static_type_errors_are_compile_errors(text: str, message: str) -> None:
    error = check_syntax(text)
    assert error is not None
    assert error.reason == message


# ---------------------------------------------------------------- runtime errors

ERRORS: list[tuple[str, object, str]] = [
    ("result[0]", [], "result is empty: the query returned no series"),
    ("result[0]", None, "result is empty: the query returned no series"),
    ("result[0] >= 0.95", None, "result is empty: the query returned no series"),
    ("result.a", None, "result is empty: the query returned no series"),
    ("result[3]", [1, 2], "index out of range: 3 (array length is 2)"),
    ("result[-3]", [1, 2], "index out of range: -1 (array length is 2)"),
    ("result.a[0]", {"a": []}, "index out of range: 0 (array length is 0)"),
    ("result['x']", [1], "array elements can only be selected using an integer (got string)"),
    ("result[0]", {"a": 1}, "cannot use int to get an element from map[string]interface {}"),
    ("result.a", 1.0, "type float64 has no field a"),
    ("result.a.b", {"a": None}, "cannot fetch b from nil"),
    ("result < 0.05", None, "invalid operation: < (mismatched types nil and float64)"),
    ("result < 'a'", 1.0, "invalid operation: < (mismatched types float64 and string)"),
    ("result[0] < 1", ["a"], "invalid operation: < (mismatched types string and int)"),
    ("result + 1", "a", "invalid operation: + (mismatched types string and int)"),
    ("result && true", 1.0, "operand of && must be bool, got float64"),
    ("!result", 1.0, "operand of ! must be bool, got float64"),
    ("result ? 1 : 2", 1.0, "condition of ?: must be bool, got float64"),
    ("all(result, # > 1)", 5.0, "builtin all takes only array (got float64)"),
    ("all(result, #)", [1.0], "predicate of all must return bool, got float64"),
    ("filter(result, .a)", [{"a": 1}], "predicate of filter must return bool, got int"),
    ("len(result)", 1.0, "invalid argument for len (type float64)"),
    ("abs(result)", "a", "invalid argument for abs (type string)"),
    ("max(result)", ["a"], "invalid argument for max (type string)"),
    ("1 % result", 0, "integer divide by zero"),
    ("'a' in result", {1: 2} and 5.0, 'operator "in" not defined on float64'),
    ("result in {a: 1}", 1.0, "cannot use float64 as a key of map[string]interface {}"),
    ("asInt(result)", "1.1", 'strconv.ParseInt: parsing "1.1": invalid syntax'),
    ("asInt(result)", "99999999999999999999", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    ("asInt(result)", True, "could not convert true to int"),
    ("asInt(result)", NAN, "could not convert NaN to int"),
    ("asFloat(result)", "NotANum", 'strconv.ParseFloat: parsing "NotANum": invalid syntax'),
    ("asFloat(result)", " 1", 'strconv.ParseFloat: parsing " 1": invalid syntax'),
    ("asFloat(result)", "1e400", 'strconv.ParseFloat: parsing "1e400": value out of range'),
    ("asFloat(result)", None, "could not convert nil to float"),
    ("isNaN(result)", "x", "cannot use string as argument (type float64) to call isNaN"),
    ("int('1.5')", None, "invalid operation: int(1.5)"),
    ("float('x')", None, "invalid operation: float(x)"),
    ("default(result.x, 0)", None, "result is empty: the query returned no series"),
    ("{(1): 2}", None, "a map key must be a string, got int"),
]


@pytest.mark.parametrize(("text", "result", "message"), ERRORS, ids=[f"{e[0]}|{e[1]!r}" for e in ERRORS])
def test_runtime_error_message(text: str, result: object, message: str) -> None:
    assert error_of(text, result) == message


def test_a_condition_must_be_bool() -> None:
    with pytest.raises(ExprError, match="expected bool, but got int"):
        eval_condition("1", True)
    with pytest.raises(ExprError, match="expected bool, but got float64"):
        eval_condition("result", 0.5)
    with pytest.raises(ExprError, match="expected bool, but got nil"):
        eval_condition("result", None)
    assert eval_condition("result", True) is True


def test_unknown_variable_at_evaluation_names_it() -> None:
    with pytest.raises(ExprError, match="unknown name result"):
        compile_expr("result > 1").evaluate({})


# ---------------------------------------------------------------- syntax errors and positions

SYNTAX: list[tuple[str, str, int]] = [
    ("result[0] >= )", "unexpected token ')'", 13),
    ("(result > 1", "unexpected end of expression", 11),
    ("result > ", "unexpected end of expression", 9),
    ("result[0] 10.000000", "unexpected token '10.000000'", 10),
    ("result @ 1", "unexpected character '@'", 7),
    ("'abc", "literal not terminated", 0),
    ("'\\q'", "invalid escape in string", 1),
    ("# > 1", "cannot use pointer accessor outside predicate", 0),
    ("invalidVariable", "unknown name invalidVariable", 0),
    ("result > 1 && a", "unknown name a", 14),
    ("result == NaN", "unknown name NaN", 10),  # no NaN literal in expr: use isNaN(result)
    ("foo(1)", "unknown function foo()", 0),
    ("now()", "function now() is not supported in conditions", 0),
    ("len()", "not enough arguments to call len", 0),
    ("len(1, 2)", "too many arguments to call len", 0),
    ("isNil()", "not enough arguments to call isNil", 0),
    ("all(result)", "expected at least 2 arguments to all", 10),
    ("result.Name() == 'hi'", "unknown method Name(): only built-in functions can be called", 7),
    ("1 ?? 2 + 3", "operator + and coalesce expressions (??) cannot be mixed; wrap either in parentheses", 7),
    ("result not 1", "unexpected token '1'", 11),
    ("let x = 1; x", "variable declarations (let) are not supported", 0),
    ("{a 1}", "unexpected token '1'", 3),
    ("", "empty expression", 0),
    ("   ", "empty expression", 3),
    ("9223372036854775808", "integer literal is too large", 0),
    ("1e999", "float literal is too large", 0),
    ("#foo", "cannot use pointer accessor outside predicate", 0),
    ("all(result, #foo > 1)", "unknown pointer #foo", 12),
    ("1 +\n  )", "unexpected token ')'", 6),
]


@pytest.mark.parametrize(("text", "reason", "position"), SYNTAX, ids=[s[0] for s in SYNTAX])
def test_syntax_error_position(text: str, reason: str, position: int) -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        compile_expr(text)
    assert caught.value.reason == reason
    assert caught.value.position == position
    assert check_syntax(text) is not None


def test_syntax_error_message_names_the_column() -> None:
    error = check_syntax("result[0] >= 0.95 && )")
    assert error is not None
    assert str(error) == "unexpected token ')' at column 21"
    multiline = check_syntax("result[0] >= 0.95 &&\n  )")
    assert multiline is not None
    assert str(multiline) == "unexpected token ')' at line 2, column 2"
    assert multiline.position == 23


def test_check_syntax_accepts_good_text() -> None:
    assert check_syntax("len(result) == 0 || result[0] >= 0.95") is None


# ---------------------------------------------------------------- bounds

def test_huge_power_is_an_error_not_a_hang() -> None:
    assert "too large for float64" in error_of("9**9**9")
    assert "too large for float64" in error_of("10 ** 400")


def test_expression_length_is_capped() -> None:
    longest = "1" + " " * (expr_parse.MAX_LENGTH - 1)
    assert value(longest) == 1
    error = check_syntax(longest + " ")
    assert error is not None and "more than the 4096 allowed" in error.reason


@pytest.mark.parametrize(
    "text",
    [
        "(" * 65 + "1" + ")" * 65,
        "-" * 80 + "1",
        "!" * 80 + "true",
        "+".join(["1"] * 100),
        "&&".join(["true"] * 100),
        "2" + "**2" * 70,
        "[" * 70 + "]" * 70,
        "all(result, " * 40 + "true" + ")" * 40,
    ],
    ids=["parens", "unary minus", "not", "sum chain", "and chain", "power chain", "arrays", "predicates"],
)
def test_nesting_depth_is_capped(text: str) -> None:
    error = check_syntax(text)
    assert error is not None
    assert error.reason == f"expression nests too deeply (more than {expr_parse.MAX_DEPTH} levels)"


def test_nesting_below_the_cap_works() -> None:
    assert value("(" * 60 + "1" + ")" * 60) == 1
    assert value("+".join(["1"] * 60)) == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1..1000000", "range 1..1000000 has more than 100000 elements"),
        ("map(1..1000, map(1..1000, #))", "evaluation exceeded its budget of 1000000 steps"),
        ("map(result, map(result, map(result, #)))", "evaluation exceeded its budget of 1000000 steps"),
        ("len(join(map(1..2000, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')))",
         "string longer than 100000 characters"),
        ("9223372036854775807 + 1", "integer overflow in +: the result does not fit in int64"),
        ("9223372036854775807 * 2", "integer overflow in *: the result does not fit in int64"),
    ],
)
def test_size_and_work_are_bounded(text: str, message: str) -> None:
    assert error_of(text, list(range(200))) == message


def test_long_string_concatenation_is_bounded() -> None:
    assert "string longer than" in error_of("result + result", "a" * 60_000)


@pytest.mark.parametrize(
    ("text", "result"),
    [
        # Each would do ~10^10 element operations if loops only paid for their iterations.
        ("all(1..100000, 5 in result)", list(range(100_000))),
        ("all(1..100000, result == result)", list(range(100_000))),
        ("map(result, result[1:])", list(range(100_000))),
        ("map(result, len(keys(#)))", [{str(i): i for i in range(100_000)}] * 100),
        ("map(1..100000, upper(result))", "a" * 50_000),
        ("map(1..100000, result contains 'b')", "a" * 50_000),
    ],
    ids=["in", "deep equality", "slice", "keys", "upper", "contains"],
)
def test_work_inside_loops_pays_for_the_size_of_its_operands(text: str, result: object) -> None:
    assert error_of(text, result) == "evaluation exceeded its budget of 1000000 steps"


def test_the_same_operations_outside_loops_are_fine() -> None:
    big = list(range(100_000))
    assert value("5 in result && result == result && len(result[1:]) == 99999", big) is True


# ---------------------------------------------------------------- deliberate deviations


def test_deviation_power_overflow_is_an_error() -> None:
    """Vector: `9**9**9` (and `10 ** 400`). expr-lang gives +Inf (math.Pow); we raise, so a
    runaway exponent is reported instead of silently compared. Bounded-evaluation rule."""
    assert "too large for float64" in error_of("result ** 400 > 1", 10.0)


def test_deviation_integer_overflow_is_an_error() -> None:
    """Vector: `9223372036854775807 + 1`. Go wraps int64 around to a negative number; we raise."""
    assert "integer overflow" in error_of("9223372036854775807 + 1")


def test_deviation_matches_is_refused() -> None:
    """Vector: `result matches "^ok"`. expr-lang runs Go's RE2 (linear time); Python's `re`
    can backtrack exponentially, so the operator is refused with a pointer to alternatives."""
    error = check_syntax('result matches "^ok"')
    assert error is not None
    assert "matches operator is not supported" in error.reason
    assert "contains, startsWith or endsWith" in error.reason


def test_deviation_list_elements_are_untyped() -> None:
    """Vector: `result[0] == "x"` with result [1.0]. Argo's Prometheus provider hands expr a
    []float64, which makes this a compile error; a list here is []interface{} (as from the
    web provider), so the comparison is false. Ordering still errors."""
    assert value('result[0] == "x"', [1.0]) is False
    assert "mismatched types" in error_of('result[0] < "x"', [1.0])


def test_quirk_isnil_and_default_ignore_their_first_argument() -> None:
    """Argo's isNil(_) and default(_, d) look at the top-level result only (§4.1): kept."""
    assert value("default(result.x, 0)", {"x": 1}) == {"x": 1}  # all of result, not result.x
    assert value("isNil(result.x)", {"x": None}) is False
    assert value("isNil(nil)", [1]) is False


# ---------------------------------------------------------------- API


def test_compile_once_evaluate_many() -> None:
    expression = compile_expr("result[0] >= 0.95")
    assert isinstance(expression, Expression)
    assert expression is compile_expr("result[0] >= 0.95")  # cached
    assert expression.source == "result[0] >= 0.95"
    assert [expression.evaluate({"result": [v]}) for v in (0.9, 0.95, 1.0)] == [False, True, True]
    assert repr(expression) == "Expression('result[0] >= 0.95')"


def test_other_variables_can_be_declared() -> None:
    expression = compile_expr("a + b > result", frozenset({"a", "b", "result"}))
    assert expression.evaluate({"a": 1, "b": 2, "result": 2.5}) is True
    assert check_syntax("a + b > result") is not None  # only `result` by default


def test_the_evaluator_never_uses_eval_exec_compile_or_ast() -> None:
    for module in (expr, expr_budget, expr_builtins, expr_calls, expr_compile, expr_nodes, expr_ops,
                   expr_parse, expr_predicates, expr_shapes, expr_strings, expr_tokens, expr_values):  # fmt: skip
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, module.__name__
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                assert "ast" not in names, module.__name__


# ---------------------------------------------------------------- the verdict


VERDICTS: list[tuple[str | None, str | None, object, MeasurementPhase, str]] = [
    (None, None, 0.5, MeasurementPhase.SUCCESSFUL,
     "result 0.5: no successCondition or failureCondition, so any result counts as Successful (as in Argo Rollouts)"),
    ("", "", NAN, MeasurementPhase.SUCCESSFUL,
     "result NaN: no successCondition or failureCondition, so any result counts as Successful (as in Argo Rollouts)"),
    ("result[0] >= 0.95", None, [0.97], MeasurementPhase.SUCCESSFUL,
     'result [0.97] satisfied successCondition "result[0] >= 0.95"'),
    ("result[0] >= 0.95", None, [0.93], MeasurementPhase.FAILED,
     'result [0.93] did not satisfy successCondition "result[0] >= 0.95"'),
    (None, "result > 0.1", 0.05, MeasurementPhase.SUCCESSFUL,
     'result 0.05 did not meet failureCondition "result > 0.1"'),
    (None, "result > 0.1", 0.2, MeasurementPhase.FAILED, 'result 0.2 met failureCondition "result > 0.1"'),
    ("result > 1", "result > 2", 3.0, MeasurementPhase.FAILED, 'result 3 met failureCondition "result > 2"'),
    ("result > 1", "result > 2", 1.5, MeasurementPhase.SUCCESSFUL,
     'result 1.5 satisfied successCondition "result > 1" and did not meet failureCondition "result > 2"'),
    ("result > 1", "result < 0", 0.5, MeasurementPhase.INCONCLUSIVE,
     'result 0.5 satisfied neither successCondition "result > 1" nor failureCondition "result < 0"'),
    ("result[0] >= 0.95", None, [], MeasurementPhase.ERROR,
     'could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: '
     "no data returned from the metric provider"),
    ("result < 0.05", None, None, MeasurementPhase.ERROR,
     'could not evaluate successCondition "result < 0.05": metric result is nil or empty: '
     "no data returned from the metric provider"),
    ("result", None, 0.5, MeasurementPhase.ERROR,
     'could not evaluate successCondition "result": expected bool, but got float64'),
    ("true", "result ==", 1.0, MeasurementPhase.ERROR,
     'could not evaluate failureCondition "result ==": unexpected end of expression at column 9'),
    ("result.a == 'x'", None, {"a": "x", "b": [1, 2.5, None, True]}, MeasurementPhase.SUCCESSFUL,
     'result {"a":"x","b":[1,2.5,nil,true]} satisfied successCondition "result.a == \'x\'"'),
]


@pytest.mark.parametrize(("success", "failure", "result", "phase", "message"), VERDICTS)
def test_verdict(success: str | None, failure: str | None, result: object, phase: MeasurementPhase,
                 message: str) -> None:
    verdict = evaluate_condition(success, failure, result)
    assert verdict == Verdict(phase, message)


def test_success_is_evaluated_before_failure() -> None:
    # Both broken: the success condition's error is the one reported.
    verdict = evaluate_condition("a > 1", "b > 1", 1.0)
    assert verdict.phase is MeasurementPhase.ERROR
    assert verdict.message.startswith('could not evaluate successCondition "a > 1"')


def test_verdict_is_frozen_and_phase_is_a_str_enum() -> None:
    verdict = evaluate_condition("true", None, 1.0)
    with pytest.raises(AttributeError):
        verdict.phase = MeasurementPhase.FAILED  # type: ignore[misc]
    assert verdict.phase == "Successful"
    assert [p.value for p in MeasurementPhase] == ["Successful", "Failed", "Inconclusive", "Error"]


def test_an_unexpected_failure_is_an_error_verdict_not_a_crash() -> None:
    class Weird(dict[str, object]):
        def get(self, key: str, default: object = None) -> object:
            raise RuntimeError("boom")

    verdict = evaluate_condition("result.a == 1", None, Weird())
    assert verdict.phase is MeasurementPhase.ERROR
    assert "boom" in verdict.message


@pytest.mark.parametrize(
    ("result", "shown"),
    [
        (None, "nil"), (True, "true"), (10.0, "10"), (0.93, "0.93"), (NAN, "NaN"), (INF, "+Inf"),
        (-INF, "-Inf"), (1e-7, "1e-07"), (3, "3"), ("OK", '"OK"'), ([10.0, 11.5], "[10,11.5]"),
        ({"a": [1]}, '{"a":[1]}'),
    ],
)
def test_format_value(result: Any, shown: str) -> None:
    assert format_value(result) == shown


def test_format_value_is_short() -> None:
    shown = format_value([0.5] * 1000)
    assert len(shown) == 200
    assert shown.startswith("[0.5,0.5,") and shown.endswith("…")
