"""Runtime operations of the condition language: operators, indexing, slicing, and bounds.

Rules and invariants:
- Each operator follows expr-lang at run time: `+ - *` (and unary minus) keep int when
  both sides are int and stay within int64 (Go wraps around; we raise "integer overflow"),
  otherwise work in float64; `/` is always float64 and divides by zero as Go does (±Inf,
  NaN); `%` is int-only and truncates like Go (the remainder takes the dividend's sign);
  `**` is float64 and beyond float64's range is an error (Go gives +Inf). An int beyond
  float64's range (data only: Go has none) is an error wherever it would become a float.
  Any other pairing of types is "invalid operation: OP (mismatched types A and B)".
- `a in b` tests list membership with `equal` and map key presence; `in nil` is false.
- `fetch` is `obj[key]`/`obj.key`: negative indexes count from the end, a missing map key
  is nil, out of range or nil is an error; on `result` an empty list or nil says
  EMPTY_RESULT instead. `slice_of` clamps its bounds like expr.
- Bounded (expr.budget): ARITHMETIC operators take numbers only and do O(1) work. METERED
  ones, which may handle strings, lists or maps, take the scope first and pay into its
  budget before working: `+` of strings for both (and checks MAX_STRING first), `==`,
  `!=` and `in` for every element they compare, ordering and contains/startsWith/endsWith
  for the characters they scan, a range for its elements (checked against MAX_LIST
  first), a slice for the elements or characters it copies.
- Scope keys ITEM and INDEX start with `#`, which no identifier can spell, so a
  predicate's element never collides with the user's variables.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

from analysis.expr.budget import FREE, FREE_CHARS, MAX_LIST, chars, check_string, spend
from analysis.expr.tokens import ExprError
from analysis.expr.values import (
    CMP,
    INT64,
    equal,
    format_value,
    go_type,
    int_too_large,
    is_num,
    kind_of,
    mismatch,
    order,
)  # fmt: skip

ITEM, INDEX = "#", "#index"  # scope keys no identifier can spell
EMPTY_RESULT = "result is empty: the query returned no series"
Op = Callable[[Any, Any, Any], object]  # a metered operator: (scope, a, b) -> value


def unknown_name(name: str) -> ExprError:
    return ExprError(f"unknown name {name}: it is not in the evaluation environment")


def int_result(op: str, value: int) -> int:
    if -INT64 <= value < INT64:
        return value
    raise ExprError(f"integer overflow in {op}: the result does not fit in int64")


def too_large(a: object, b: object) -> ExprError:
    """The error for an int beyond float64's range (data only) met where a float is needed."""
    big = a if type(a) is int and (type(b) is not int or abs(a) >= abs(b)) else b
    return int_too_large(big)


def add(scope: Any, a: Any, b: Any) -> object:
    if type(a) is int and type(b) is int:
        return int_result("+", a + b)
    if is_num(a) and is_num(b):
        try:
            return float(a) + float(b)
        except OverflowError:
            raise too_large(a, b) from None
    if type(a) is str and type(b) is str:
        size = len(a) + len(b)
        check_string(size)
        if size > FREE_CHARS:
            spend(scope, chars(size))
        return a + b
    raise mismatch("+", a, b)


def _arith(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[object, object], object]:
    def run(a: Any, b: Any) -> object:
        if type(a) is int and type(b) is int:
            return int_result(op, fn(a, b))
        if is_num(a) and is_num(b):
            try:
                return fn(float(a), float(b))
            except OverflowError:
                raise too_large(a, b) from None
        raise mismatch(op, a, b)

    return run


def _floats(op: str, a: Any, b: Any) -> tuple[float, float]:
    if not (is_num(a) and is_num(b)):
        raise mismatch(op, a, b)
    try:
        return float(a), float(b)
    except OverflowError:
        raise too_large(a, b) from None


def divide(a: Any, b: Any) -> float:
    x, y = _floats("/", a, b)
    if y == 0.0:
        return math.nan if x == 0.0 or math.isnan(x) else math.copysign(math.inf, x)
    return x / y


def modulo(a: Any, b: Any) -> int:
    if not (type(a) is int and type(b) is int):
        raise mismatch("%", a, b)
    if b == 0:
        raise ExprError("integer divide by zero")
    rem = abs(a) % abs(b)  # Go truncates: the remainder takes the dividend's sign
    return int_result("%", -rem if a < 0 else rem)


def power(a: Any, b: Any) -> float:
    x, y = _floats("**", a, b)
    try:
        return math.pow(x, y)
    except OverflowError:
        raise ExprError(f"{format_value(a)} ** {format_value(b)} is too large for float64") from None
    except ValueError:  # 0 ** -1 is +Inf in Go, (-8) ** 0.5 is NaN
        return math.inf if x == 0.0 else math.nan


def minus(value: float) -> float:
    return int_result("-", -value) if type(value) is int else -value


def make_range(scope: Any, a: Any, b: Any) -> list[int]:
    """`a..b`: its length is checked, then paid for, before the list is built."""
    if not (type(a) is int and type(b) is int):
        raise mismatch("..", a, b)
    size = b - a + 1
    if size > MAX_LIST:
        raise ExprError(f"range {format_value(a)}..{format_value(b)} has more than {MAX_LIST} elements")
    if size > FREE:
        spend(scope, size)
    return list(range(a, b + 1))


def contained(scope: Any, a: Any, b: Any) -> bool:
    """`a in b`: list membership by equal(), map key presence; `in nil` is false."""
    kind = kind_of(b)
    if kind == "array":
        if len(b) > FREE:
            spend(scope, len(b))
        return any(equal(item, a, scope) for item in b)
    if kind == "map":
        if type(a) is not str:
            raise ExprError(f"cannot use {go_type(a)} as a key of {go_type(b)}")
        return a in b
    if b is None:
        return False
    raise ExprError(f'operator "in" not defined on {go_type(b)}')


def _strings(op: str, fn: Callable[[str, str], bool]) -> Op:
    def run(scope: Any, a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            if len(a) + len(b) > FREE_CHARS:
                spend(scope, chars(len(a) + len(b)))
            return fn(a, b)
        raise mismatch(op, a, b)

    return run


def _not_equal(scope: Any, a: Any, b: Any) -> bool:
    return not equal(a, b, scope)


# Operators on numbers only: (a, b) -> value, O(1) whatever the operands.
ARITHMETIC: dict[str, Callable[[object, object], object]] = {
    "-": _arith("-", operator.sub), "*": _arith("*", operator.mul), "/": divide, "%": modulo, "**": power,
}  # fmt: skip
# Operators that may handle strings, lists or maps: (scope, a, b) -> value, paying for their size.
METERED: dict[str, Op] = {
    "==": lambda scope, a, b: equal(a, b, scope), "!=": _not_equal, "+": add, "in": contained,
    "contains": _strings("contains", operator.contains), "startsWith": _strings("startsWith", str.startswith),
    "endsWith": _strings("endsWith", str.endswith),
    **{op: functools.partial(lambda op, scope, a, b: order(op, a, b, scope), op) for op in CMP},
}  # fmt: skip


def typed_equality(op: str) -> Op:
    """== / != where both sides are typed: incompatible types are an error, as in expr."""
    want = op == "=="

    def eq(scope: Any, a: object, b: object) -> bool:
        if (type(a) is not type(b) and a is not None and b is not None
                and not (is_num(a) and is_num(b)) and kind_of(a) != kind_of(b)):
            raise mismatch(op, a, b)
        return equal(a, b, scope) is want

    return eq


def fetch(obj: Any, key: Any, *, from_result: bool = False) -> object:
    """`obj[key]` / `obj.key` with expr's rules: negative indexes count from the end,
    a missing map key is nil, anything out of range or on nil is an error."""
    kind = kind_of(obj)
    if kind == "map":
        if type(key) is not str:
            raise ExprError(f"cannot use {go_type(key)} to get an element from {go_type(obj)}")
        return obj.get(key)
    if kind in ("array", "string"):
        if type(key) is not int:
            raise ExprError(f"array elements can only be selected using an integer (got {go_type(key)})")
        size = len(obj)
        if size == 0 and from_result:
            raise ExprError(EMPTY_RESULT)
        index = key + size if key < 0 else key
        if not 0 <= index < size:
            raise ExprError(f"index out of range: {format_value(index)} (array length is {size})")
        return obj[index]
    if obj is None:
        if from_result:
            raise ExprError(EMPTY_RESULT)
        raise ExprError(f"cannot fetch {_key(key)} from nil")
    if type(key) is str:
        raise ExprError(f"type {go_type(obj)} has no field {_key(key)}")
    raise ExprError(f"cannot fetch {format_value(key)} from {go_type(obj)}")


def _key(key: object) -> str:
    """A key as error messages show it: a string as it is (cut if long), anything else as Go prints it."""
    return (key if len(key) <= 200 else key[:199] + "…") if type(key) is str else format_value(key)


def slice_of(scope: Any, obj: Any, lo: Any, hi: Any) -> object:
    """`obj[lo:hi]` with expr's clamped bounds; the copy is paid for before it is made."""
    if kind_of(obj) not in ("array", "string"):
        raise ExprError(f"cannot slice {go_type(obj)}")
    size = len(obj)
    bounds = []
    for value, default in ((lo, 0), (hi, size)):
        if value is None:
            value = default
        elif type(value) is not int:
            raise ExprError(f"non-integer slice index {go_type(value)}")
        value = value + size if value < 0 else value
        bounds.append(min(max(value, 0), size))
    start, stop = bounds
    start = min(start, stop)
    count = stop - start if type(obj) is not str else chars(stop - start)
    if count > FREE:
        spend(scope, count)
    return obj[start:stop]
