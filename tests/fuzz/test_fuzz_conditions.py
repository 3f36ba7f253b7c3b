"""Fuzzing the condition language: any text, any result, only the language's own errors.

Conditions come from a grammar of the language (literals at the edges of int64 and
float64, long and odd strings, every operator, every built-in with any arguments,
predicates with `#`, `#index` and `.field`, slices, ranges, pipes, nesting) and from
random or mutated text; results are nested lists and maps with NaN, ±Inf, ints beyond
int64, numeric strings of thousands of digits, surrogates, and hostile shapes (deep
nesting, one large list referenced many times, long strings). The properties:

- compiling and evaluating raise nothing but ExprError (and its subclasses);
- an int64 never silently overflows: an int result stays in int64 unless the data held
  a larger one;
- the verdict API (`evaluate_condition`) never raises at all;
- each evaluation of a hostile result stays bounded: its memory (tracemalloc peak) is
  under 100 MB, and its work under the budget, which raises ExprError when exceeded
  (the timeout marker is only the safety net).

Deterministic (derandomize, no database); no assertion on time.
"""

from __future__ import annotations

import math
import re
import struct
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.expr import ExprError, MeasurementPhase, Verdict, compile_expr, evaluate_condition
from tests.fuzz.budget import examples, timeout

INT64 = 2**63
MEMORY_LIMIT = 100 * 2**20
FAST = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=list(HealthCheck))  # fmt: skip

# ---------------------------------------------------------------- the grammar
# Hypothesis draws bytes (cheap to generate, and it shrinks them); a Decoder reads them
# as the choices of a grammar, so each example is a condition and a result of the language.

INTS = ["0", "1", "2", "3", "7", "10", "-1", "1000", "100000", "9223372036854775807", "4611686018427387904",
        "3037000500", "0x7fffffffffffffff", "0b101", "1_000", "(-9223372036854775807 - 1)"]  # fmt: skip
FLOATS = ["0.5", "1.5", "1e308", "1.7976931348623157e308", "5e-324", ".5", "2.5e10", "1e-7", "0.1", "-0.0"]
STRINGS = ["''", "'a'", "'abc'", "','", "'ß'", "'ﬃ'", "'\\u00e9'", "'\\ud800'", "'1e5'", "'NaN'", "'+Inf'",
           "' 1'", "'9223372036854775808'", "'-0x1'", "'1_0'", "'1.5e400'", "\"\\\"\"", "`raw\\`", "'\\x41'",
           "'a,b'", "'  x '", "'1'"]  # fmt: skip
VARIABLES = ["result", "result[0]", "result.a", "result[-1]", "result?.a", "result.a.b", "result[0][0]",
             "result.values", "result[1]"]  # fmt: skip
POINTERS = ["#", "#", "#", "#index", ".a", "#.a", "#[0]", "#?.b", "(# ?? 0)", "#.values"]
EDGES = ["1e308", "1.7976931348623157e308", "-1e308", "(-9223372036854775807 - 1)", "9223372036854775807",
         "-9223372036854775807", "result", "result", "result[0]", "result.a", "'" + "9" * 1000 + "'",
         "'" + "1" * 3000 + "x'", "0", "-0.0", "5e-324", "4611686018427387904"]  # fmt: skip
ATOMS = {"N": INTS + FLOATS + VARIABLES[:3], "I": [*INTS[:10], "len(result)", "result"], "E": EDGES,
         "S": STRINGS + VARIABLES[:3], "L": ["result", "[]", "[1, 2]", "result.a", "[1e308, 1e308]"],
         "M": ["result", "{}", "{a: 1}", "result[0]"], "B": ["true", "false", "result", "result.a"],
         "X": INTS + FLOATS + STRINGS + VARIABLES + ["nil", "true", "[]", "{}"]}  # fmt: skip
# Productions by kind (I int, N number, E a value at an edge, S string, L list, M map, B bool,
# X any); <K> is a text of kind K, <P>/<Q> a predicate's body (bool/any), <@> an atom.
RULES = {
    "N": ["<@>", "len(<L>)", "asInt(<X>)", "asFloat(<X>)", "int(<X>)", "float(<X>)", "(<N> + <N>)",
          "(<N> - <N>)", "(<N> * <N>)", "(<N> / <N>)", "(<I> % <I>)", "(<N> ** <N>)", "-<N>", "-(<N>)",
          "abs(<N>)", "max(<L>)", "min(<N>, <X>)", "mean(<L>)", "mean(<N>, <N>)", "median(<L>)", "sum(<L>)",
          "sum(<L>, <Q>)", "count(<L>, <P>)", "findIndex(<L>, <P>)", "ceil(<N>)", "round(<X>)", "first(<L>)",
          "last(<L>)", "<L>[<I>]", "(<N> ?? <N>)", "(<B> ? <N> : <N>)", "(<L> | sum())", "max(<N>, <L>)",
          # at the edges of int64 and float64, and of what Python converts
          "mean(<E>, <E>)", "mean(<E>)", "median(<E>, <E>)", "-(<E>)", "-<E>", "abs(<E>)", "asInt(<E>)",
          "asFloat(<E>)", "float(<E>)", "int(<E>)", "(<E> + <E>)", "(<E> * <E>)", "(<E> - 1)", "(<E> / <E>)",
          "(<E> % <E>)", "round(<E>)", "sum(<E>)", "(<E> ** <E>)", "-(<E> + <E>)", "abs(<E> - 1)"],
    "I": ["<@>", "len(<L>)", "asInt(<X>)", "int(<N>)", "(<I> + <I>)", "(<I> * <I>)", "-<I>", "abs(<I>)",
          "count(<L>, <P>)", "findIndex(<L>, <P>)", "(<I> % <I>)", "(<I> - <I>)"],
    "S": ["<@>", "upper(<S>)", "lower(<X>)", "trim(<S>)", "trim(<S>, <X>)", "(<S> + <S>)", "string(<X>)",
          "join(<L>)", "join(<L>, <S>)", "<S>[<I>:<I>]", "<S>[<I>:]", "first(split(<S>, <S>))", "<S>[<I>]",
          "(<S> ?? <S>)", "(<X> | string())", "trim(<S>, <E>)", "string(<E>)", "upper(<E>)", "join(<E>)",
          "join(split(<S>, ''), <S>)", "string([<L>, <L>, <L>, <L>])", "join(map(<L>, <S>), <S>)"],
    "L": ["<@>", "[<X>, <X>]", "[<X>, <X>, <X>, <X>]", "split(<S>, <S>)", "map(<L>, <Q>)", "filter(<L>, <P>)",
          "(<I>..<I>)", "keys(<M>)", "values(<M>)", "<L>[<I>:<I>]", "<L>[:<I>]", "[<L>, <L>, <L>]",
          "map(<L>, [#, #, #])", "(<L> | filter(<P>))", "(<L> | map(<Q>))", "1..1000", "map(1..100000, <Q>)",
          "[<E>, <E>]"],
    "M": ["<@>", "{a: <X>, b: <X>}", "{(<S>): <X>}", "<L>[<I>]", "find(<L>, <P>)", "findLast(<L>, <P>)"],
    "B": ["<@>", "(<X> == <X>)", "(<X> != <X>)", "(<N> < <N>)", "(<S> >= <S>)", "(<N> <= <X>)",
          "(<S> contains <S>)", "(<S> startsWith <S>)", "(<S> endsWith <X>)", "(<X> in <L>)", "(<S> in <M>)",
          "(<X> not in <L>)", "all(<L>, <P>)", "any(<L>, <P>)", "none(<L>, <P>)", "one(<L>, <P>)",
          "isNaN(<N>)", "isInf(<X>)", "(<B> && <B>)", "(<B> || <B>)", "!<B>", "not <B>", "isNil(<X>)",
          "(<N> < <N> < <N>)", "(<L> == <L>)", "(<B> ?: <B>)", "(<L> | all(<P>))", "(<E> > <E>)",
          "all(<L>, # == # && # == #)", "(<X> in <L> && <X> in <L>)", "(<L> == <L> && <L> == <L>)"],
    "X": ["<@>", "<N>", "<S>", "<L>", "<M>", "<B>", "default(<X>, <X>)", "(<X> ?? <X>)", "<X>[<X>]",
          "<X>.a", "<X>?.a", "(<B> ? <X> : <X>)", "<E>", "(<X> + <X>)"],
}  # fmt: skip
WRONG = ["repeat(<S>, <N>)", "nofunc(<X>)", "<X> +", "(<S> matches <S>)", "(<X> ^ <X>)", "<X>.Name()"]
PLACEHOLDER = re.compile(r"<([NIESLMBXPQ@])>")
CHARS = ["a", "1", "ß", "\U0001f600", ",", "\ud800", "0", "e", " "]
TEXT = "()[]{}#.,:?!|&=<>+-*/%^'\"`\\ 0123456789abcdefresultinlmapxyz_\n\ud800é"
KEYS = ["a", "b", "c", "0", "values", "\ud800", ""]
HUGE_INTS: list[object] = [INT64, -INT64 - 1, 10**30, -(10**400), 2**64 + 1, 10**4300, -(10**5000)]
FLOAT_VALUES: list[object] = [math.nan, math.inf, -math.inf, 1e308, -1e308, -0.0, 5e-324, 0.5, 1.0, 2.0]
STRING_VALUES: list[object] = ["1", "1.5", "NaN", "inf", "-7", "0x10", "1e400", " 2", "a,b", "ß", "",
                               "9223372036854775808", "9" * 4301, "1" * 20_000 + "x"]  # fmt: skip
EDGE_VALUES: list[object] = [
    10**400, -(10**400), 2**63, -(2**63), 2**63 - 1, "9" * 4301, "1" * 20_000 + "x", "1" * 500, 1e308, -1e308,
    [1e308, 1e308], [math.inf, -math.inf], [10**400, 1], {"a": 10**400}, ["\ud800"], {"\udc80": "\ud800"},
    [-(2**63)], math.nan, [math.nan], "", [], {},
]  # fmt: skip


class Decoder:
    """Reads drawn bytes as grammar choices; once they run out every choice is the first
    (an atom), so any byte string decodes to a finite text or value."""

    def __init__(self, data: bytes) -> None:
        self.data, self.i = data, 0

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        self.i += 1
        return self.data[self.i - 1]

    def pick(self, options: Sequence[Any]) -> Any:
        return options[self.byte() % len(options)]

    def size(self, most: int) -> int:
        """A size up to `most`, mostly small: a byte scaled by a second one."""
        return min(most, self.byte() * (1 << (self.byte() % 12)) // 8)

    # -- conditions
    def atom(self, kind: str, in_predicate: bool) -> str:
        if in_predicate and self.byte() % 3 == 0:
            return str(self.pick(POINTERS))
        if kind == "S" and self.byte() % 4 == 0:
            return "'" + str(self.pick(CHARS)) * self.size(1500) + "'"
        atom: str = self.pick(ATOMS[kind])
        return atom

    def expr(self, kind: str, depth: int, in_predicate: bool) -> str:
        """A text of `kind` (see RULES), mostly well typed so that evaluation goes deep;
        one choice in eight is of another kind."""
        if self.byte() % 8 == 0:
            kind = self.pick(list(RULES))
        if kind == "E":
            return self.atom(kind, in_predicate)
        rules = RULES[kind]
        rule = rules[self.byte() % len(rules)] if depth > 0 else "<@>"

        def fill(match: re.Match[str]) -> str:
            code = match.group(1)
            if code == "@":
                return self.atom(kind, in_predicate)
            if code in "PQ":  # a predicate's body: bool (P) or any (Q), braced or bare
                body = self.expr("B" if code == "P" else "X", depth - 1, True)
                return f"{{{body}}}" if self.byte() % 2 else body
            return self.expr(code, depth - 1, in_predicate)

        return PLACEHOLDER.sub(fill, rule)

    def condition(self) -> str:
        if self.byte() % 12 == 0:  # now and then, text that is wrong
            return PLACEHOLDER.sub(lambda m: self.expr(m.group(1), 3, False), self.pick(WRONG))
        return self.expr(self.pick(["B", "B", "N", "X"]), 4, False)

    def text(self) -> str:
        """Random text over the language's characters."""
        return "".join(self.pick(TEXT) for _ in range(self.byte() % 80))

    # -- results
    def value(self, depth: int) -> object:
        choice = self.byte() % (14 if depth > 0 else 10)
        if choice < 2:
            return None if choice == 0 else self.byte() % 2 == 0
        if choice == 2:
            return int.from_bytes(bytes(self.byte() for _ in range(8)), "big", signed=True) >> self.byte() % 64
        if choice == 4:
            return struct.unpack("<d", bytes(self.byte() for _ in range(8)))[0]
        if choice in (3, 5, 6):
            options: list[object] = {3: HUGE_INTS, 5: FLOAT_VALUES, 6: STRING_VALUES}[choice]
            return self.pick(options)
        if choice == 7:
            return "".join(chr(0xD7F8 + self.byte() % 16) if self.byte() % 3 == 0 else self.pick(CHARS)
                           for _ in range(self.byte() % 6))  # fmt: skip
        if choice == 8:
            return self.pick(CHARS) * self.size(3000)
        if choice == 9:
            return "1" * self.size(6000) + self.pick(["", "x", "e5", ".5"])
        if choice == 11:
            return {self.pick(KEYS): self.value(depth - 1) for _ in range(self.byte() % 4)}
        if choice == 12:
            return [self.value(depth - 1)] * self.size(200)  # one value referenced many times
        return [self.value(depth - 1) for _ in range(self.byte() % 5)]

    def result(self) -> object:
        """A result: one at an edge (of int64, float64, what Python converts), or any."""
        return self.pick(EDGE_VALUES) if self.byte() % 3 == 0 else self.value(4)

    def hostile(self) -> object:
        """A large or deep result: what a 1 MiB body, or a careless provider, could give."""
        choice, n = self.byte() % 10, self.size(1 << 20)
        if choice == 2:
            value = self.value(1)
            for _ in range(min(n, 50_000) + 500):
                value = [value]
            return value
        return [
            lambda: list(range(min(n, 200_000))),
            lambda: [[list(range(n % 3000))] * (n % 300 + 1)] * (n % 300 + 1),  # one list, referenced many times
            None,
            lambda: self.pick(CHARS) * max(n, 1000),
            lambda: "1" * min(n + 300, 120_000) + self.pick(["", "x", "e5", ".5"]),
            lambda: {str(i): [i] for i in range(min(n, 50_000))},
            lambda: [[] for _ in range(min(n, 100_000))],
            lambda: [math.inf, -math.inf, 1e308, 10**400] * (n % 1000 + 1),
            lambda: ["a" * 1000] * (n % 1000 + 1),
            lambda: self.value(3),
        ][choice]()  # type: ignore[misc]


CONDITIONS = st.binary(min_size=48, max_size=160).map(lambda data: Decoder(data).condition())
RANDOM_TEXT = st.binary(max_size=100).map(lambda data: Decoder(data).text())
MUTATED = st.tuples(CONDITIONS, st.integers(0, 200), st.sampled_from([*TEXT, "", "(", "#"])).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :])  # a grammar text with one character changed
SMALL_RESULTS = st.binary(min_size=16, max_size=120).map(lambda data: Decoder(data).result())
HOSTILE_RESULTS = st.binary(min_size=3, max_size=60).map(lambda data: Decoder(data).hostile())

# ---------------------------------------------------------------- the properties


def _has_huge_int(value: object, budget: list[int]) -> bool:
    """Whether `value` (walked at most budget[0] items) holds an int beyond int64."""
    pending = [value]
    while pending and budget[0] > 0:
        item = pending.pop()
        budget[0] -= 1
        if type(item) is int and not -INT64 <= item < INT64:
            return True
        if isinstance(item, list):
            pending.extend(item[:1000])
        elif isinstance(item, dict):
            pending.extend(list(item.values())[:1000])
    return budget[0] <= 0  # not walked to the end: assume it might


def evaluate(text: str, result: object) -> object:
    """The condition's value, or None when it raised ExprError; anything else propagates."""
    try:
        value = compile_expr(text).evaluate({"result": result})
    except ExprError:
        return None
    if type(value) is int:
        assert -INT64 <= value < INT64 or _has_huge_int(result, [10_000]), (text, value)
    return value


def verdict_of(success: str, failure: str | None, result: object) -> Verdict:
    verdict = evaluate_condition(success, failure, result)  # never raises
    assert isinstance(verdict, Verdict) and isinstance(verdict.phase, MeasurementPhase)
    assert isinstance(verdict.message, str)
    return verdict


def bounded(text: str, result: object) -> None:
    tracemalloc.start()
    try:
        evaluate(text, result)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, (text, peak)


@pytest.mark.timeout(timeout(120))
@settings(FAST, max_examples=examples(3100))
@given(CONDITIONS, SMALL_RESULTS)
def test_grammar_conditions_raise_only_expr_errors(text: str, result: Any) -> None:
    evaluate(text, result)


@pytest.mark.timeout(timeout(120))
@settings(FAST, max_examples=examples(1500))
@given(st.one_of(RANDOM_TEXT, MUTATED), SMALL_RESULTS)
def test_random_text_raises_only_expr_errors(text: str, result: Any) -> None:
    evaluate(text, result)


@pytest.mark.timeout(timeout(120))
@settings(FAST, max_examples=examples(1000))
@given(CONDITIONS, st.one_of(CONDITIONS, st.none()), SMALL_RESULTS)
def test_the_verdict_never_raises(success: str, failure: str | None, result: Any) -> None:
    verdict_of(success, failure, result)


@pytest.mark.timeout(timeout(240))
@settings(FAST, max_examples=examples(500))
@given(CONDITIONS, HOSTILE_RESULTS)
def test_hostile_results_stay_bounded(text: str, result: Any) -> None:
    bounded(text, result)
    verdict_of(text, None, result)
