"""The threshold a condition compares the measured value with: `result[0] >= 0.95` -> 0.95. Pure.

Rules:
- A threshold is read from the parsed condition (expr.parse), never by pattern-matching the
  text, so `0.95 <= result[0]`, `result[0]>=9.5e-1` and `result[0] >= 0.95` give the same.
- Only an ordering comparison (`<`, `<=`, `>`, `>=`) between a value of the measurement and a
  number constant (a literal, or a negated one) is a threshold. A value of the measurement is
  `result`, a fixed path into it (`result[0]`, `result.data.rate`), or one of `asFloat`,
  `asInt`, `float`, `int`, `abs`, `max`, `min`, `mean`, `median`, `first`, `last` applied to
  one. `all/any/none/one(result, {# < 0.05})` compares every element with its constant, so
  its threshold is that constant.
- Guards beside the comparison do not change it: in `a && b` or `a || b`, an `isNaN(...)` or
  `isInf(...)` test (negated or not) and a `len(...)` comparison are guards, so
  `isNaN(result) || result < 0.01` has threshold 0.01 and `len(result) > 0 && max(result) <
  300` has 300.
- Anything else has no single threshold and gives None rather than a wrong number: two
  comparisons (`result[0] > 0.9 && result[1] > 0.8`), equality (`result == 1`), a comparison
  with another value of the measurement or an arg that is not a number, arithmetic
  (`result[0] * 100 > 95`), `!(...)`, a condition that does not parse, and the empty one.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from analysis.expr.nodes import Binary, Call, Lit, Member, Name, Node, Pointer, Predicate, Unary
from analysis.expr.parse import parse
from analysis.expr.tokens import ExprError

__all__ = ["Threshold", "threshold"]

_ORDERING = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}  # an operator and its mirror (constant on the left)
_VALUE_CALLS = frozenset({"asFloat", "asInt", "float", "int", "abs", "max", "min", "mean", "median", "first", "last"})
_EVERY_ELEMENT = frozenset({"all", "any", "none", "one"})
_GUARD_CALLS = frozenset({"isNaN", "isInf"})


@dataclass(frozen=True)
class Threshold:
    """`value OP constant`, written with the measured value on the left (`0.95 <= x` is `x >= 0.95`)."""

    op: str
    value: float


@functools.lru_cache(maxsize=4096)
def threshold(condition: str | None) -> Threshold | None:
    """The single threshold of a condition, or None (see the module rules). Cached: run specs repeat."""
    if not condition or not condition.strip():
        return None
    try:
        tree = parse(condition)
    except ExprError:
        return None
    found = _thresholds(tree)
    return found[0] if found is not None and len(found) == 1 else None


def _thresholds(node: Node) -> list[Threshold] | None:
    """The thresholds of `node`: [] for a guard, None for anything that is neither."""
    if isinstance(node, Binary) and node.op in ("&&", "||"):
        left, right = _thresholds(node.left), _thresholds(node.right)
        return None if left is None or right is None else left + right
    if _is_guard(node):
        return []
    if isinstance(node, Binary) and node.op in _ORDERING:
        found = _comparison(node, element=False)
        return None if found is None else [found]
    if isinstance(node, Call) and node.name in _EVERY_ELEMENT and len(node.args) == 2:
        items, predicate = node.args
        if _is_value(items, element=False) and isinstance(predicate, Predicate) and isinstance(predicate.body, Binary):
            found = _comparison(predicate.body, element=True) if predicate.body.op in _ORDERING else None
            return None if found is None else [found]
    return None


def _comparison(node: Binary, *, element: bool) -> Threshold | None:
    left, right = _constant(node.left), _constant(node.right)
    if right is not None and left is None and _is_value(node.left, element=element):
        return Threshold(node.op, right)
    if left is not None and right is None and _is_value(node.right, element=element):
        return Threshold(_ORDERING[node.op], left)
    return None


def _constant(node: Node) -> float | None:
    """A number literal (or its negation) as a finite float; None for anything else (bools too)."""
    sign = 1.0
    if isinstance(node, Unary) and node.op in ("-", "+"):
        sign, node = (-1.0 if node.op == "-" else 1.0), node.operand
    if not isinstance(node, Lit) or isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
        return None
    try:
        value = sign * float(node.value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _is_value(node: Node, *, element: bool) -> bool:
    """`result` (or `#` inside a predicate), a fixed path into it, or a value function of one."""
    if isinstance(node, Name):
        return node.name == "result" and not element
    if isinstance(node, Pointer):
        return element and node.name == ""
    if isinstance(node, Member):
        return isinstance(node.prop, Lit) and _is_value(node.obj, element=element)
    if isinstance(node, Call) and node.name in _VALUE_CALLS and len(node.args) == 1:
        return _is_value(node.args[0], element=element)
    return False


def _is_guard(node: Node) -> bool:
    """`isNaN(x)` / `isInf(x)` (or negated), or a comparison of `len(...)` with a constant."""
    if isinstance(node, Unary) and node.op == "!":
        return _is_guard(node.operand)
    if isinstance(node, Call):
        return node.name in _GUARD_CALLS
    if isinstance(node, Binary) and node.op in (*_ORDERING, "==", "!="):
        sides = (node.left, node.right)
        return any(isinstance(s, Call) and s.name == "len" for s in sides) and any(
            _constant(s) is not None for s in sides)
    return False
