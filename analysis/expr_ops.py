"""Runtime operations of the condition language: operators, indexing, slicing, and bounds.

Rules and invariants:
- Each operator follows expr-lang at run time: `+ - *` keep int when both sides are int
  and stay within int64 (Go wraps around; we raise "integer overflow"), otherwise work in
  float64; `/` is always float64 and divides by zero as Go does (±Inf, NaN); `%` is
  int-only and truncates like Go (the remainder takes the dividend's sign); `**` is
  float64 and beyond float64's range is an error (Go gives +Inf). Any other pairing of
  types is "invalid operation: OP (mismatched types A and B)".
- `a in b` tests list membership with `equal` and map key presence; `in nil` is false.
- `fetch` is `obj[key]`/`obj.key`: negative indexes count from the end, a missing map key
  is nil, out of range or nil is an error; on `result` an empty list or nil says
  EMPTY_RESULT instead. `slice_of` clamps its bounds like expr.
- Bounded: strings <= MAX_STRING characters, ranges <= MAX_LIST items. Loops are the only
  way to multiply work, so an evaluation that runs loops inside loops carries a budget of
  MAX_STEPS units in its scope (under BUDGET): `charge` spends it, `metered` charges for
  the size of an operation's operands (one unit per element, or per 16 characters).
- Scope keys ITEM, INDEX and BUDGET start with `#`, which no identifier can spell, so a
  predicate's element and the budget never collide with the user's variables.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

from analysis.expr_tokens import ExprError
from analysis.expr_values import CMP, equal, format_value, go_type, is_num, kind_of, mismatch, order

MAX_STRING = 100_000
MAX_LIST = 100_000
MAX_STEPS = 1_000_000
INT64 = 2**63
ITEM, INDEX, BUDGET = "#", "#index", "#budget"  # scope keys no identifier can spell
EMPTY_RESULT = "result is empty: the query returned no series"


def unknown_name(name: str) -> ExprError:
    return ExprError(f"unknown name {name}: it is not in the evaluation environment")


def int_result(op: str, value: int) -> int:
    if -INT64 <= value < INT64:
        return value
    raise ExprError(f"integer overflow in {op}: the result does not fit in int64")


def add(a: Any, b: Any) -> object:
    if type(a) is int and type(b) is int:
        return int_result("+", a + b)
    if is_num(a) and is_num(b):
        return float(a) + float(b)
    if type(a) is str and type(b) is str:
        if len(a) + len(b) > MAX_STRING:
            raise ExprError(f"string longer than {MAX_STRING} characters")
        return a + b
    raise mismatch("+", a, b)


def _arith(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[object, object], object]:
    def run(a: Any, b: Any) -> object:
        if type(a) is int and type(b) is int:
            return int_result(op, fn(a, b))
        if is_num(a) and is_num(b):
            return fn(float(a), float(b))
        raise mismatch(op, a, b)

    return run


def divide(a: Any, b: Any) -> float:
    if not (is_num(a) and is_num(b)):
        raise mismatch("/", a, b)
    x, y = float(a), float(b)
    if y == 0.0:
        return math.nan if x == 0.0 or math.isnan(x) else math.copysign(math.inf, x)
    return x / y


def modulo(a: Any, b: Any) -> int:
    if not (type(a) is int and type(b) is int):
        raise mismatch("%", a, b)
    if b == 0:
        raise ExprError("integer divide by zero")
    rem = abs(a) % abs(b)  # Go truncates: the remainder takes the dividend's sign
    return -rem if a < 0 else rem


def power(a: Any, b: Any) -> float:
    if not (is_num(a) and is_num(b)):
        raise mismatch("**", a, b)
    x, y = float(a), float(b)
    try:
        return math.pow(x, y)
    except OverflowError:
        raise ExprError(f"{format_value(a)} ** {format_value(b)} is too large for float64") from None
    except ValueError:  # 0 ** -1 is +Inf in Go, (-8) ** 0.5 is NaN
        return math.inf if x == 0.0 else math.nan


def make_range(a: Any, b: Any) -> list[int]:
    if not (type(a) is int and type(b) is int):
        raise mismatch("..", a, b)
    if b - a + 1 > MAX_LIST:
        raise ExprError(f"range {a}..{b} has more than {MAX_LIST} elements")
    return list(range(a, b + 1))


def contained(a: Any, b: Any) -> bool:
    """`a in b`: list membership by equal(), map key presence; `in nil` is false."""
    kind = kind_of(b)
    if kind == "array":
        return any(equal(item, a) for item in b)
    if kind == "map":
        if type(a) is not str:
            raise ExprError(f"cannot use {go_type(a)} as a key of {go_type(b)}")
        return a in b
    if b is None:
        return False
    raise ExprError(f'operator "in" not defined on {go_type(b)}')


def _strings(op: str, fn: Callable[[str, str], bool]) -> Callable[[object, object], bool]:
    def run(a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            return fn(a, b)
        raise mismatch(op, a, b)

    return run


BINARY: dict[str, Callable[[object, object], object]] = {
    "==": equal, "!=": lambda a, b: not equal(a, b), "+": add, "/": divide, "%": modulo,
    "-": _arith("-", operator.sub), "*": _arith("*", operator.mul), "**": power,
    "..": make_range, "in": contained, "contains": _strings("contains", operator.contains),
    "startsWith": _strings("startsWith", str.startswith),
    "endsWith": _strings("endsWith", str.endswith),
    **{op: functools.partial(order, op) for op in CMP},
}  # fmt: skip


def typed_equality(op: str) -> Callable[[object, object], bool]:
    """== / != where both sides are typed: incompatible types are an error, as in expr."""
    want = op == "=="

    def eq(a: object, b: object) -> bool:
        if type(a) is not type(b) and a is not None and b is not None:
            if not (is_num(a) and is_num(b)) and kind_of(a) != kind_of(b):
                raise mismatch(op, a, b)
        return equal(a, b) is want

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
            raise ExprError(f"index out of range: {index} (array length is {size})")
        return obj[index]
    if obj is None:
        if from_result:
            raise ExprError(EMPTY_RESULT)
        raise ExprError(f"cannot fetch {key} from nil")
    if type(key) is str:
        raise ExprError(f"type {go_type(obj)} has no field {key}")
    raise ExprError(f"cannot fetch {format_value(key)} from {go_type(obj)}")


def slice_of(obj: Any, lo: Any, hi: Any) -> object:
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
    return obj[min(start, stop) : stop]


def charge(env: Any, steps: int) -> None:
    budget = env[BUDGET]
    budget[0] -= steps
    if budget[0] < 0:
        raise ExprError(f"evaluation exceeded its budget of {MAX_STEPS} steps")


def ranged(env: Any, a: object, b: object) -> list[int]:
    values = make_range(a, b)
    charge(env, len(values))
    return values


def work_of(value: object) -> int:
    """Work units for handling `value`: its length, or one per 16 characters of a string."""
    kind = type(value)
    if kind is str:
        return len(value) >> 4  # type: ignore[arg-type]
    if kind is list or kind is dict or kind is tuple:
        return len(value)  # type: ignore[arg-type]
    return 0


def metered(env: Any, core: Callable[..., object], *args: object) -> object:
    """core(*args), after charging the budget for the size of the arguments (in loops)."""
    charge(env, sum(work_of(a) for a in args))
    return core(*args)
