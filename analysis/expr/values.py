"""Values of the condition language: their kinds, equality, ordering, truth and rendering.

Rules and invariants:
- Values are plain Python data as providers hand them over: None, bool, int, float, str,
  list (or tuple) and dict (or any Mapping). `kind_of` names them as expr's checker does
  (nil, bool, int, float, string, array, map); `go_type` spells them as Go prints them in
  messages (`float64`, `[]interface {}`, `map[string]interface {}`).
- bool is never a number: `type(x) is int`, not isinstance, everywhere (True + 1 is an
  error, as in Go). int and float compare with each other by value.
- `equal` is expr's runtime.Equal: numbers by value, lists and maps deeply, any other
  mismatch is simply false. `order` (<, >, <=, >=) takes two numbers or two strings and
  raises a mismatch error for anything else. `truth` accepts only true and false. Given
  the scope, both pay into its budget (expr.budget): equality walks lists and maps
  without recursion, paying CONTAINER steps and one per element for each it reaches, and
  long strings of one length pay for their characters, as long strings ordered do.
- Static kinds, for expr's checker at compile time: CONCRETE kinds are the ones above;
  `allowed(op, a, b)` says whether expr accepts operands of kinds a and b, and
  `arith_kind` gives the kind of an arithmetic result ("exact": concrete, but known only
  at run time; "any": unknown).
- `format_value` renders a value the way Go would print it in a message (10, 0.93, NaN,
  +Inf, [10,11], "OK", nil), cut to `limit` characters with an ellipsis. It renders only
  what it shows, without recursion, so any size or depth costs O(limit); an int beyond
  int64 (Go has none) shows as float64 would, never through str() (Python refuses more
  than 4300 digits). With a scope (string()) each piece pays into the budget.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from analysis.expr.budget import CONTAINER, FREE_CHARS, Budget, chars, meter, spend
from analysis.expr.tokens import ExprError

Fn = Callable[[Any], Any]  # a compiled node: env (or scope) -> value
NOTHING = object()  # "no value", where None (nil) is a value
KINDS = {type(None): "nil", bool: "bool", int: "int", float: "float", str: "string",
         list: "array", tuple: "array", dict: "map"}  # fmt: skip
GO = {"nil": "nil", "bool": "bool", "int": "int", "float": "float64", "string": "string",
      "array": "[]interface {}", "map": "map[string]interface {}"}  # fmt: skip
CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
PLAIN = frozenset({type(None), bool, int, float})  # types whose values have no size
INT64 = 2**63


def kind_of(value: object) -> str:
    kind = KINDS.get(type(value))
    if kind is None:
        kind = "map" if isinstance(value, Mapping) else type(value).__name__
    return kind


def go_type(value: object) -> str:
    kind = kind_of(value)
    return GO.get(kind, kind)


def is_num(value: object) -> bool:
    return type(value) is float or type(value) is int


def equal(a: Any, b: Any, scope: Any = None) -> bool:
    """expr's runtime.Equal: numbers by value, lists and maps deeply, other mismatches false.
    Long strings and deep walks pay into the scope's budget (expr.budget)."""
    ta, tb = type(a), type(b)
    if ta is tb and ta in PLAIN:
        return bool(a == b)
    if ta is str and tb is str:
        if len(a) == len(b) > FREE_CHARS:  # only strings of one length are compared in full
            spend(scope, chars(len(a)))
        return bool(a == b)
    if is_num(a) and is_num(b):
        return bool(a == b)
    ka = kind_of(a)
    if ka in ("array", "map") and kind_of(b) == ka:
        return _deep_equal(a, b, meter(scope))
    return False


def _deep_equal(a: Any, b: Any, budget: Budget) -> bool:
    """Equality of two lists or two maps, walked without recursion, paying for each
    container (CONTAINER steps, and one per element) as it reaches it, and for long strings."""
    pending = [(a, b)]
    budget.take(len(a) + CONTAINER)
    while pending:
        x, y = pending.pop()  # paid for when reached
        kx = kind_of(x)
        if kx != kind_of(y) or len(x) != len(y):
            return False
        if kx == "map":
            if x.keys() != y.keys():
                return False
            pairs: Any = ((x[k], y[k]) for k in x)
        else:
            pairs = zip(x, y, strict=True)
        for p, q in pairs:
            tp = type(p)
            if tp is type(q):
                if tp in PLAIN:
                    if p != q:
                        return False
                    continue
                if tp is str:
                    if len(p) == len(q) > FREE_CHARS:
                        budget.take(chars(len(p)))
                    if p != q:
                        return False
                    continue
                if tp is list or tp is dict:
                    if len(p) != len(q):
                        return False
                    budget.take(len(p) + CONTAINER)
                    pending.append((p, q))
                    continue
            if is_num(p) and is_num(q):
                if p != q:
                    return False
            elif kind_of(p) in ("array", "map"):
                budget.take(len(p) + CONTAINER)
                pending.append((p, q))
            else:
                return False
    return True


def mismatch(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(f"invalid operation: {op} (mismatched types {go_type(a)} and {go_type(b)})")


def order(op: str, a: Any, b: Any, scope: Any = None) -> bool:
    if is_num(a) and is_num(b):
        return bool(CMP[op](a, b))
    if type(a) is str and type(b) is str:
        if len(a) > FREE_CHARS and len(b) > FREE_CHARS:
            spend(scope, chars(min(len(a), len(b))))
        return bool(CMP[op](a, b))
    raise mismatch(op, a, b)


def truth(value: Any, what: str) -> bool:
    if value is True or value is False:
        return value
    raise ExprError(f"{what} must be bool, got {go_type(value)}")


def to_float(value: float) -> float:
    """A number as float64; an int beyond float64's range is an error, not OverflowError."""
    try:
        return float(value)
    except OverflowError:
        raise int_too_large(value) from None


def int_too_large(value: object) -> ExprError:
    bits = value.bit_length() if type(value) is int else 0
    return ExprError(f"an integer of {bits} bits is too large for float64")


def format_value(value: Any, limit: int = 200, scope: Any = None) -> str:
    """A short Go-like rendering for messages: 10, 0.93, NaN, +Inf, [10,11], "OK", nil,
    cut to `limit` characters with an ellipsis. Only what is shown is rendered, without
    recursion, so any size or depth is cheap; with a scope (string()), each piece pays."""
    text = "".join(_render(value, limit + 1, None if scope is None else meter(scope)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: Any, room: int, budget: Budget | None) -> list[str]:
    """The pieces of `value`'s rendering, stopping once `room` characters are out."""
    out: list[str] = []
    size = 0
    frames: list[tuple[Iterator[Any], bool, str, list[bool]]] = []  # children, map?, closing, first?
    item = value
    while True:
        kind = kind_of(item)
        if kind == "array" or kind == "map":
            piece = "[" if kind == "array" else "{"
            children = iter(item) if kind == "array" else iter(item.items())
            frames.append((children, kind == "map", "]" if kind == "array" else "}", [True]))
        else:
            piece = _scalar(item, room - size)
        out.append(piece)
        size += len(piece)
        if budget is not None:
            budget.take(1 + chars(len(piece)))
        while True:  # the next element, closing the containers that are done
            if size >= room or not frames:
                return out
            children, is_map, closing, first = frames[-1]
            child: Any = next(children, NOTHING)
            if child is NOTHING:
                frames.pop()
                out.append(closing)
                size += 1
                continue
            sep = "" if first[0] else ","
            first[0] = False
            if is_map:
                key, child = child
                sep += _quote(key if type(key) is str else _scalar(key, room - size), room - size) + ":"
            out.append(sep)
            size += len(sep)
            if size < room:
                item = child
                break


def _scalar(value: Any, room: int) -> str:
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        return _float_text(value)
    if type(value) is int:
        if -INT64 <= value < INT64:
            return str(value)
        try:  # beyond int64 (Go has none): as float64, the way Go decodes such a JSON number
            return _float_text(float(value))
        except OverflowError:
            return ("-" if value < 0 else "") + "<integer too large for float64>"
    if type(value) is str:
        return _quote(value, room)
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - only a message: any object must render
        return f"<{type(value).__name__}>"


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _quote(text: str, room: int) -> str:
    """`"text"` with \\ and \" escaped, cut past `room` characters (the rest is not shown)."""
    if len(text) > room:
        text = text[: max(room, 0)]
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


CONCRETE = frozenset(GO)  # kinds known at compile time; "exact" = known at run time
NUMERIC = frozenset({"int", "float"})
SCALAR = frozenset({"nil", "bool", "int", "float"})  # values with no size (no work to handle)


def allowed(op: str, a: str, b: str) -> bool:
    """expr's checker for two operands of known kinds."""
    if op in ("==", "!="):
        return a == b or "nil" in (a, b) or (a in NUMERIC and b in NUMERIC)
    if op in CMP or op == "+":
        return (a in NUMERIC and b in NUMERIC) or a == b == "string"
    if op in ("-", "*", "/", "**"):
        return a in NUMERIC and b in NUMERIC
    if op in ("%", ".."):
        return a == b == "int"
    if op == "in":
        return b in ("array", "nil") or (b == "map" and a == "string")
    return a == b == "string"  # contains, startsWith, endsWith


def arith_kind(op: str, a: str, b: str) -> str:
    if op in ("/", "**"):
        return "float"
    if op in ("%", ".."):
        return "int" if op == "%" else "array"
    if "any" in (a, b):
        return "any"
    if a in CONCRETE and b in CONCRETE:
        return "string" if a == "string" else ("int" if a == b == "int" else "float")
    return "exact"
