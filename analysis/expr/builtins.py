"""Built-in functions of the condition language: Argo's helpers and expr-lang's builtins.

Rules and invariants:
- FUNCTIONS maps each plain built-in to (fewest arguments, most or -1, implementation,
  kind of its result, metered); "arg" means the kind of its first argument, "any"
  unknown until run time. Implementations are functions of their arguments only: they
  read no clock and no state, so the compiler may call them directly, in any order. A
  metered one takes the scope first, only to pay into its budget (expr.budget) for the
  size of what it handles before handling it. ONE_ARGUMENT holds the one-argument forms
  of variadic ones (max, min), which the compiler calls with no `*args` to pack.
- Argo's helpers: `asInt` truncates numbers toward zero and parses strings as base-10
  int64; `asFloat` parses strings with Go's ParseFloat rules (inf, nan, exponents). Their
  errors are Go's: `strconv.ParseInt: parsing "x": invalid syntax`. Parsing is linear:
  text longer than MAX_NUMBER_TEXT is refused first, then string methods check the
  syntax (no regular expression), and only then does Python convert it.
- Numbers are never bools (see expr.values). max/min/mean/median take numbers or arrays of
  numbers, flattened without recursion, paying for each array; max/min of nothing is nil,
  mean/median of nothing 0. mean sums exactly (fsum), or as Go does when that overflows
  or meets +Inf and -Inf (±Inf, NaN). `round` is Go's (half away from zero);
  ceil/floor/round leave NaN and ±Inf as they are. abs stays within int64.
- The built-ins on strings (string, trim, upper, lower, split, join) live in expr.strings.
- The built-ins that take a predicate (all, map, count, ...) live in expr.predicates.
- NOT_SUPPORTED names expr-lang built-ins left out on purpose (dates and durations, JSON
  and base64, sorting and grouping, more string helpers, bit operations): calling one is a
  compile error that says so, rather than "unknown function".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from analysis.expr.budget import CONTAINER, FREE, Budget, meter, spend
from analysis.expr.ops import int_result
from analysis.expr.strings import change_case, join, split, to_string, trim
from analysis.expr.tokens import ExprError
from analysis.expr.values import INT64, format_value, go_type, is_num, kind_of, to_float

MAX_NUMBER_TEXT = 400  # longest string asInt/asFloat parse: linear checks, then Python's parser


def numeric_arg(name: str, value: Any) -> int | float:
    if is_num(value):
        number: int | float = value
        return number
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def _numbers(name: str, args: Any, scope: Any) -> list[int | float]:
    """The numbers in `args`, arrays flattened (without recursion, each paid for), as
    expr's max/min/mean/median take them."""
    for arg in args:  # the common case, numbers only: no walk
        if type(arg) is not float and type(arg) is not int:
            break
    else:
        return list(args)
    out: list[int | float] = []
    budget: Budget | None = None
    pending: list[Iterator[Any]] = [iter(args)]
    while pending:
        for arg in pending[-1]:
            if type(arg) is float or type(arg) is int:
                out.append(arg)
            elif kind_of(arg) == "array":
                budget = budget or meter(scope)
                budget.take(len(arg) + CONTAINER)
                pending.append(iter(arg))
                break
            else:
                raise ExprError(f"invalid argument for {name} (type {go_type(arg)})")
        else:
            pending.pop()
    return out


def _shown(text: str) -> str:
    return text if len(text) <= 100 else text[:99] + "…"


def _number_text(parser: str, text: str) -> str:
    if len(text) > MAX_NUMBER_TEXT:
        raise ExprError(f'strconv.{parser}: parsing "{_shown(text)}": longer than {MAX_NUMBER_TEXT} characters')
    return text


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def go_float_syntax(text: str) -> bool:
    """Go's ParseFloat syntax for decimal numbers: [+-] then inf, infinity or nan (any
    case), or digits with an optional point and exponent. Linear: string methods only."""
    body = (text[1:] if text[:1] in ("+", "-") else text).lower()
    if body in ("inf", "infinity", "nan"):
        return True
    mantissa, e, exponent = body.partition("e")
    if e and not _digits(exponent[1:] if exponent[:1] in ("+", "-") else exponent):
        return False
    whole, _, fraction = mantissa.partition(".")
    return bool(whole or fraction) and (not whole or _digits(whole)) and (not fraction or _digits(fraction))


def as_int(value: Any) -> int:
    """Argo's asInt: numbers truncate toward zero, strings parse as base-10 integers."""
    if type(value) is int:
        return int_result("asInt", value)
    if type(value) is float and math.isfinite(value):
        return int_result("asInt", int(value))
    if type(value) is str:
        digits = _number_text("ParseInt", value)
        digits = digits[1:] if digits[:1] in ("+", "-") else digits
        if _digits(digits):
            if -INT64 <= int(value) < INT64:
                return int(value)
            raise ExprError(f'strconv.ParseInt: parsing "{value}": value out of range')
        raise ExprError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    raise ExprError(f"could not convert {format_value(value)} to int")


def as_float(value: Any) -> float:
    """Argo's asFloat: numbers as they are, strings parsed with Go's ParseFloat rules."""
    if is_num(value):
        return to_float(value)
    if type(value) is str:
        if not go_float_syntax(_number_text("ParseFloat", value)):
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": value out of range')
        return number
    raise ExprError(f"could not convert {format_value(value)} to float")


def _float_test(name: str, test: Callable[[float], bool]) -> Callable[[object], bool]:
    def run(value: Any) -> bool:
        if is_num(value):
            return test(to_float(value))
        raise ExprError(f"cannot use {go_type(value)} as argument (type float64) to call {name}")

    return run


def _length(value: Any) -> int:
    if type(value) is list or type(value) is str or kind_of(value) in ("array", "map", "string"):
        return len(value)
    raise ExprError(f"invalid argument for len (type {go_type(value)})")


def _abs(value: Any) -> int | float:
    number = numeric_arg("abs", value)
    return int_result("abs", abs(number)) if type(number) is int else abs(number)


def _rounding(name: str, fn: Callable[[float], float]) -> Callable[[object], float]:
    def run(value: Any) -> float:
        x = to_float(numeric_arg(name, value))
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
                raise ExprError(f"invalid operation: {name}({_shown(value)})") from None
        return convert(numeric_arg(name, value))

    return run


def _extreme(name: str, pick: Callable[..., Any]) -> tuple[Callable[..., object], Callable[[Any, Any], object]]:
    """max/min of any number of arguments, and the same of exactly one (`max(result)`)."""

    def run(scope: Any, *args: Any) -> object:
        return one(scope, args[0]) if len(args) == 1 else flattened(scope, args)

    def one(scope: Any, items: Any) -> object:
        if type(items) is list:
            if len(items) > FREE:
                spend(scope, len(items))
            for x in items:  # a plain loop: cheaper than any C-level check on short lists
                if type(x) is not float and type(x) is not int:
                    break
            else:
                return pick(items) if items else None
        return flattened(scope, (items,))

    def flattened(scope: Any, args: Any) -> object:
        values = _numbers(name, args, scope)
        return pick(values) if values else None

    return run, one


_MAX, _MAX_ONE = _extreme("max", max)
_MIN, _MIN_ONE = _extreme("min", min)


def _mean(scope: Any, *args: Any) -> float:
    values = [to_float(v) for v in _numbers("mean", args, scope)]
    if not values:
        return 0.0
    try:
        total = math.fsum(values)
    except (OverflowError, ValueError):  # beyond float64 or +Inf + -Inf: Go's plain sum, ±Inf or NaN
        total = sum(values)
    return total / len(values)


def _median(scope: Any, *args: Any) -> float:
    values = _numbers("median", args, scope)
    spend(scope, len(values))  # the sort
    values.sort()
    if not values:
        return 0.0
    mid = len(values) // 2
    if len(values) % 2:
        return to_float(values[mid])
    return (to_float(values[mid - 1]) + to_float(values[mid])) / 2


def _end(name: str, index: int) -> Callable[[object], object]:
    def run(items: Any) -> object:
        if kind_of(items) not in ("array", "string"):
            raise ExprError(f"invalid argument for {name} (type {go_type(items)})")
        return items[index] if items else None

    return run


def _map_part(name: str, part: str) -> Callable[[Any, Any], list[object]]:
    def run(scope: Any, value: Any) -> list[object]:
        if kind_of(value) != "map":
            raise ExprError(f"invalid argument for {name} (type {go_type(value)})")
        if len(value) > FREE:
            spend(scope, len(value))
        return list(getattr(value, part)())

    return run


# name -> (min args, max args or -1, implementation, kind of the result ("arg" = the
# argument's), metered: the implementation takes the scope first and pays into its budget)
FUNCTIONS: dict[str, tuple[int, int, Callable[..., object], str, bool]] = {
    "asInt": (1, 1, as_int, "int", False),
    "asFloat": (1, 1, as_float, "float", False),
    "isNaN": (1, 1, _float_test("isNaN", math.isnan), "bool", False),
    "isInf": (1, 1, _float_test("isInf", math.isinf), "bool", False),
    "len": (1, 1, _length, "int", False),
    "abs": (1, 1, _abs, "arg", False),
    "ceil": (1, 1, _rounding("ceil", math.ceil), "float", False),
    "floor": (1, 1, _rounding("floor", math.floor), "float", False),
    "round": (1, 1, _rounding("round", _go_round), "float", False),
    "int": (1, 1, _conversion("int", as_int), "int", False),
    "float": (1, 1, _conversion("float", as_float), "float", False),
    "string": (1, 1, to_string, "string", True),
    "trim": (1, 2, trim, "string", True),
    "upper": (1, 1, change_case("upper", str.upper), "string", True),
    "lower": (1, 1, change_case("lower", str.lower), "string", True),
    "split": (2, 2, split, "array", True),
    "join": (1, 2, join, "string", True),
    "max": (1, -1, _MAX, "any", True),
    "min": (1, -1, _MIN, "any", True),
    "mean": (1, -1, _mean, "float", True),
    "median": (1, -1, _median, "float", True),
    "first": (1, 1, _end("first", 0), "any", False),
    "last": (1, 1, _end("last", -1), "any", False),
    "keys": (1, 1, _map_part("keys", "keys"), "array", True),
    "values": (1, 1, _map_part("values", "values"), "array", True),
}
# Forms taking exactly one argument, for the compiler to call with no `*args` to pack.
ONE_ARGUMENT: dict[str, Callable[..., object]] = {"max": _MAX_ONE, "min": _MIN_ONE}
NOT_SUPPORTED = frozenset([
    "now", "date", "duration", "timezone", "toJSON", "fromJSON", "toBase64", "fromBase64", "sort", "sortBy", "uniq",
    "groupBy", "reduce", "repeat", "replace", "indexOf", "lastIndexOf", "hasPrefix", "hasSuffix", "flatten",
    "concat", "reverse", "get", "type", "trimPrefix", "trimSuffix", "take", "bitand", "bitor", "bitxor", "bitnand",
    "bitnot", "bitshl", "bitshr"
])
