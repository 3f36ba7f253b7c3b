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
  raises a mismatch error for anything else. `truth` accepts only true and false.
- Static kinds, for expr's checker at compile time: CONCRETE kinds are the ones above;
  `allowed(op, a, b)` says whether expr accepts operands of kinds a and b, and
  `arith_kind` gives the kind of an arithmetic result ("exact": concrete, but known only
  at run time; "any": unknown).
- `format_value` renders a value the way Go would print it in a message (10, 0.93, NaN,
  +Inf, [10,11], "OK", nil), cut to `limit` characters with an ellipsis.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from analysis.expr_tokens import ExprError

Fn = Callable[[Any], Any]  # a compiled node: env (or scope) -> value
NOTHING = object()  # "no value", where None (nil) is a value
KINDS = {type(None): "nil", bool: "bool", int: "int", float: "float", str: "string",
         list: "array", tuple: "array", dict: "map"}  # fmt: skip
GO = {"nil": "nil", "bool": "bool", "int": "int", "float": "float64", "string": "string",
      "array": "[]interface {}", "map": "map[string]interface {}"}  # fmt: skip
CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


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


def equal(a: Any, b: Any) -> bool:
    """expr's runtime.Equal: numbers by value, lists and maps deeply, other mismatches false."""
    ta, tb = type(a), type(b)
    if ta is tb and ta is not list and ta is not dict:
        return bool(a == b)
    if is_num(a) and is_num(b):
        return bool(a == b)
    ka, kb = kind_of(a), kind_of(b)
    if ka == kb == "array":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if ka == kb == "map":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return False


def mismatch(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(f"invalid operation: {op} (mismatched types {go_type(a)} and {go_type(b)})")


def order(op: str, a: Any, b: Any) -> bool:
    if (is_num(a) and is_num(b)) or (type(a) is str and type(b) is str):
        return bool(CMP[op](a, b))
    raise mismatch(op, a, b)


def truth(value: Any, what: str) -> bool:
    if value is True or value is False:
        return value
    raise ExprError(f"{what} must be bool, got {go_type(value)}")


def format_value(value: Any, limit: int = 200) -> str:
    """A short Go-like rendering for messages: 10, 0.93, NaN, +Inf, [10,11], "OK", nil."""
    text = _format(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format(value: Any) -> str:
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if type(value) is str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    kind = kind_of(value)
    if kind == "array":
        return "[" + ",".join(_format(v) for v in value) + "]"
    if kind == "map":
        items = value.items()
        return "{" + ",".join(f"{_format(str(k))}:{_format(v)}" for k, v in items) + "}"
    return str(value)


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
