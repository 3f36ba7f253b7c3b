"""Built-in functions of the condition language: Argo's helpers and expr-lang's builtins.

Rules and invariants:
- FUNCTIONS maps each plain built-in to (fewest arguments, most or -1, implementation,
  kind of its result); "arg" means the kind of its first argument, "any" unknown until
  run time. Implementations are pure functions of their arguments: they read no scope,
  no clock and no state, so the compiler may call them directly, in any order.
  ONE_ARGUMENT holds the one-argument forms of variadic ones (max, min), which the
  compiler calls when there is a single argument, with no `*args` to pack.
- Argo's helpers: `asInt` truncates numbers toward zero and parses strings as base-10
  int64; `asFloat` parses strings with Go's ParseFloat rules (inf, nan, exponents). Their
  errors are Go's: `strconv.ParseInt: parsing "x": invalid syntax`.
- Numbers are never bools (see expr_values). max/min/mean/median take numbers or arrays of
  numbers, flattened; max/min of nothing is nil, mean/median of nothing 0. `round` is Go's
  (half away from zero); ceil/floor/round leave NaN and ±Inf as they are.
- The built-ins that take a predicate (all, map, count, ...) live in expr_predicates.
- NOT_SUPPORTED names expr-lang built-ins left out on purpose (dates and durations, JSON
  and base64, sorting and grouping, more string helpers, bit operations): calling one is a
  compile error that says so, rather than "unknown function".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from analysis.expr_ops import INT64, MAX_STRING, int_result
from analysis.expr_tokens import ExprError
from analysis.expr_values import format_value, go_type, is_num, kind_of

_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I | re.A)


def numeric_arg(name: str, value: Any) -> int | float:
    if is_num(value):
        number: int | float = value
        return number
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def _numbers(name: str, args: Any) -> list[int | float]:
    """The numbers in `args`, arrays flattened, as expr's max/min/mean/median take them."""
    out: list[int | float] = []
    for arg in args:
        if type(arg) is float or type(arg) is int:
            out.append(arg)
        elif kind_of(arg) == "array":
            out.extend(_numbers(name, arg))
        else:
            raise ExprError(f"invalid argument for {name} (type {go_type(arg)})")
    return out


def as_int(value: Any) -> int:
    """Argo's asInt: numbers truncate toward zero, strings parse as base-10 integers."""
    if is_num(value) and math.isfinite(value):
        return int_result("asInt", int(value))
    if type(value) is str:
        digits = value[1:] if value[:1] in "+-" else value
        if digits.isascii() and digits.isdigit():
            if -INT64 <= int(value) < INT64:
                return int(value)
            raise ExprError(f'strconv.ParseInt: parsing "{value}": value out of range')
        raise ExprError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    raise ExprError(f"could not convert {format_value(value)} to int")


def as_float(value: Any) -> float:
    """Argo's asFloat: numbers as they are, strings parsed with Go's ParseFloat rules."""
    if is_num(value):
        return float(value)
    if type(value) is str:
        if not _GO_FLOAT.fullmatch(value):
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": value out of range')
        return number
    raise ExprError(f"could not convert {format_value(value)} to float")


def _float_test(name: str, test: Callable[[float], bool]) -> Callable[[object], bool]:
    def run(value: Any) -> bool:
        if is_num(value):
            return test(float(value))
        raise ExprError(f"cannot use {go_type(value)} as argument (type float64) to call {name}")

    return run


def _length(value: Any) -> int:
    if type(value) is list or type(value) is str or kind_of(value) in ("array", "map", "string"):
        return len(value)
    raise ExprError(f"invalid argument for len (type {go_type(value)})")


def _rounding(name: str, fn: Callable[[float], float]) -> Callable[[object], float]:
    def run(value: Any) -> float:
        x = float(numeric_arg(name, value))
        return float(fn(x)) if math.isfinite(x) else x

    return run


def _go_round(x: float) -> float:
    """Go's math.Round: half away from zero (Python's round() is half to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _conversion(name: str, convert: Callable[[Any], int | float]) -> Callable[[object], object]:
    """expr's int()/float(): numbers as asInt/asFloat take them, strings parsed the same
    way but failing with expr's own message."""

    def run(value: Any) -> object:
        if type(value) is str:
            try:
                return convert(value)
            except ExprError:
                raise ExprError(f"invalid operation: {name}({value})") from None
        return convert(numeric_arg(name, value))

    return run


def _text(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def _split(text: Any, sep: Any) -> list[str]:
    a, b = _text("split", text), _text("split", sep)
    return list(a) if b == "" else a.split(b)


def _join(items: Any, sep: Any = "") -> str:
    if kind_of(items) != "array":
        raise ExprError(f"invalid argument for join (type {go_type(items)})")
    parts = [_text("join", item) for item in items]
    out = _text("join", sep).join(parts)
    if len(out) > MAX_STRING:
        raise ExprError(f"string longer than {MAX_STRING} characters")
    return out


def _extreme(name: str, pick: Callable[..., Any]) -> tuple[Callable[..., object], Callable[[Any], object]]:
    """max/min of any number of arguments, and the same of exactly one (`max(result)`)."""

    def run(*args: Any) -> object:
        return one(args[0]) if len(args) == 1 else flattened(args)

    def one(items: Any) -> object:
        if type(items) is list:
            for x in items:  # a plain loop: cheaper than any C-level check on short lists
                if type(x) is not float and type(x) is not int:
                    break
            else:
                return pick(items) if items else None
        return flattened((items,))

    def flattened(args: Any) -> object:
        values = _numbers(name, args)
        return pick(values) if values else None

    return run, one


_MAX, _MAX_ONE = _extreme("max", max)
_MIN, _MIN_ONE = _extreme("min", min)


def _mean(*args: Any) -> float:
    values = _numbers("mean", args)
    return math.fsum(values) / len(values) if values else 0.0


def _median(*args: Any) -> float:
    values = sorted(_numbers("median", args))
    if not values:
        return 0.0
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _end(name: str, index: int) -> Callable[[object], object]:
    def run(items: Any) -> object:
        if kind_of(items) not in ("array", "string"):
            raise ExprError(f"invalid argument for {name} (type {go_type(items)})")
        return items[index] if items else None

    return run


def _map_part(name: str, part: str) -> Callable[[object], list[object]]:
    def run(value: Any) -> list[object]:
        if kind_of(value) != "map":
            raise ExprError(f"invalid argument for {name} (type {go_type(value)})")
        return list(getattr(value, part)())

    return run


# name -> (min args, max args or -1, implementation, kind of the result; "arg" = the argument's)
FUNCTIONS: dict[str, tuple[int, int, Callable[..., object], str]] = {
    "asInt": (1, 1, as_int, "int"),
    "asFloat": (1, 1, as_float, "float"),
    "isNaN": (1, 1, _float_test("isNaN", math.isnan), "bool"),
    "isInf": (1, 1, _float_test("isInf", math.isinf), "bool"),
    "len": (1, 1, _length, "int"),
    "abs": (1, 1, lambda v: abs(numeric_arg("abs", v)), "arg"),
    "ceil": (1, 1, _rounding("ceil", math.ceil), "float"),
    "floor": (1, 1, _rounding("floor", math.floor), "float"),
    "round": (1, 1, _rounding("round", _go_round), "float"),
    "int": (1, 1, _conversion("int", as_int), "int"),
    "float": (1, 1, _conversion("float", as_float), "float"),
    "string": (1, 1, lambda v: v if type(v) is str else format_value(v, MAX_STRING), "string"),
    "trim": (1, 2, lambda s, cut=None: _text("trim", s).strip(cut), "string"),
    "upper": (1, 1, lambda s: _text("upper", s).upper(), "string"),
    "lower": (1, 1, lambda s: _text("lower", s).lower(), "string"),
    "split": (2, 2, _split, "array"),
    "join": (1, 2, _join, "string"),
    "max": (1, -1, _MAX, "any"),
    "min": (1, -1, _MIN, "any"),
    "mean": (1, -1, _mean, "float"),
    "median": (1, -1, _median, "float"),
    "first": (1, 1, _end("first", 0), "any"),
    "last": (1, 1, _end("last", -1), "any"),
    "keys": (1, 1, _map_part("keys", "keys"), "array"),
    "values": (1, 1, _map_part("values", "values"), "array"),
}
# Forms taking exactly one argument, for the compiler to call with no `*args` to pack.
ONE_ARGUMENT: dict[str, Callable[[Any], object]] = {"max": _MAX_ONE, "min": _MIN_ONE}
NOT_SUPPORTED = frozenset(
    "now date duration timezone toJSON fromJSON toBase64 fromBase64 sort sortBy uniq groupBy "
    "reduce repeat replace indexOf lastIndexOf hasPrefix hasSuffix flatten concat reverse get "
    "type trimPrefix trimSuffix take bitand bitor bitxor bitnand bitnot bitshl bitshr".split()
)
