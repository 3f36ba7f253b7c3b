"""Closures specialised for the commonest shapes of condition, so they run near native speed.

Rules and invariants:
- Each builder here returns a closure that computes exactly what the general compiled
  closures would (same value, same error, same message) for the shape it handles; only
  the number of Python calls differs. The fast path is taken only when the values have
  the expected types (a list indexed by an int, a dict by a str, a number compared with a
  number); anything else falls back to the general operation (`fetch`, `order`,
  `equal`), which owns the rules and the error messages.
- `&&`/`||` short-circuit and accept only bools, as `truth` says; when both sides are
  bool by their static kind nothing is checked. A chain `a && b && c` is one closure over
  its operands (`conjunction`), not a nest of pairs.
- Shapes: `result[0] >= 0.95` (a Leaf: variable, constant key, comparison, numeric
  constant) fused into one closure; two leaves joined by && or || fused into one, with a
  range check on one value (`result[0] >= 0.9 && result[0] < 1.5`) fetching it once;
  `x == const`; `x < const`; `result[0]`/`result.a` as one lookup; a plain built-in of
  one variable (`len(result)`, Applied) as one lookup and one call, and compared with a
  number (`max(result) < 0.5`) in the same closure; a metered built-in also gets the scope
  (env), to pay into its budget.
- These shapes compare with numeric constants, or with literals bounded by the text, so
  they have nothing to pay for (expr.budget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis.expr.ops import fetch, unknown_name
from analysis.expr.values import CMP, Fn, equal, order, truth


def logic2(lf: Fn, rf: Fn, op: str, *, bools: bool = False) -> Fn:
    """`a && b`, `a || b`. With `bools` (both sides are bool by their static kind, so
    nothing needs checking) Python's own `and`/`or` do it in one expression."""
    if bools:
        if op == "&&":
            return lambda env: lf(env) and rf(env)
        return lambda env: lf(env) or rf(env)
    short = op == "||"  # the value that decides without looking at the right side
    other = not short
    what = f"operand of {op}"

    def logic(env: Any) -> bool:
        a = lf(env)
        if a is short:
            return bool(short)
        if a is not other:
            truth(a, what)
        b = rf(env)
        if b is True or b is False:
            return b
        return truth(b, what)

    return logic


def conjunction(fns: list[Fn], op: str) -> Fn:
    short = op == "||"
    other = not short
    what = f"operand of {op}"

    def logic(env: Any) -> bool:
        for f in fns:
            v = f(env)
            if v is short:
                return bool(short)
            if v is not other:
                truth(v, what)
        return other

    return logic


def equals_const(op: str, lf: Fn, const: Any) -> Fn:
    want = op == "=="
    if const is None:
        return lambda env: (lf(env) is None) is want
    kind = type(const)

    def equals(env: Any) -> bool:
        a = lf(env)
        if type(a) is kind:
            return (a == const) is want
        return equal(a, const) is want

    return equals


def compare_to(op: str, lf: Fn, const: Any) -> Fn:
    cmp = CMP[op]

    def compare(env: Any) -> Any:
        a = lf(env)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    return compare


@dataclass(frozen=True, slots=True)
class Leaf:
    """`name[key] OP const` (or `name.key OP const`), the commonest condition shape."""

    name: str
    key: Any
    op: str
    const: Any

    def read(self, env: Any) -> object:
        """The slow path of the fused closures below: lookup errors, nil, empty result..."""
        if self.name not in env:
            raise unknown_name(self.name)
        return fetch(env[self.name], self.key, from_result=self.name == "result")


def compare_member(leaf: Leaf) -> Fn:
    """`result[0] >= 0.95`: lookup, fetch and comparison in one closure (the hot path)."""
    name, key, const, op, read = leaf.name, leaf.key, leaf.const, leaf.op, leaf.read
    cmp, by_index = CMP[op], type(key) is int

    def compare(env: Any) -> Any:
        try:
            o = env[name]
            if (type(o) is list and by_index) or (type(o) is dict and not by_index):
                a = o[key]
            else:
                a = read(env)
        except (KeyError, IndexError):  # unknown name, out of range, missing key
            a = read(env)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    return compare


def compare_pair(first: Leaf, second: Leaf, op: str) -> Fn:
    """`result[0] >= 0.95 && result[0] < 1.5`: two fused comparisons unrolled in one
    closure, about half the cost of three closure calls."""
    one, two, short = compare_member(first), compare_member(second), op == "||"
    n1, k1, c1, cmp1 = first.name, first.key, first.const, CMP[first.op]
    n2, k2, c2, cmp2 = second.name, second.key, second.const, CMP[second.op]
    if type(k1) is not int or type(k2) is not int:
        return logic2(one, two, op)
    if (n1, k1) == (n2, k2):  # a range check on one value: fetch it once

        def between(env: Any) -> Any:
            try:
                o = env[n1]
                a = o[k1] if type(o) is list else None
            except (KeyError, IndexError):
                a = None
            if type(a) is float or type(a) is int:
                hit = cmp1(a, c1)
                return hit if hit is short else cmp2(a, c2)
            hit = one(env)  # not a number where expected: the error, or a tuple's element
            return hit if hit is short else two(env)

        return between

    def pair(env: Any) -> Any:
        try:
            o = env[n1]
            a = o[k1] if type(o) is list else None
        except (KeyError, IndexError):
            a = None
        hit = cmp1(a, c1) if type(a) is float or type(a) is int else one(env)
        if hit is short:
            return short
        try:
            o = env[n2]
            a = o[k2] if type(o) is list else None
        except (KeyError, IndexError):
            a = None
        if type(a) is float or type(a) is int:
            return cmp2(a, c2)
        return two(env)

    return pair


def variable_member(name: str, key: Any, from_result: bool) -> Fn:
    """`result[0]` / `result.a`: the variable lookup and the fetch in one closure."""
    by_index = type(key) is int

    def member(env: Any) -> object:
        try:
            o = env[name]
        except KeyError:
            raise unknown_name(name) from None
        if type(o) is list and by_index:
            try:
                return o[key]
            except IndexError:
                pass
        elif type(o) is dict and not by_index:
            return o.get(key)
        return fetch(o, key, from_result=from_result)

    return member


@dataclass(frozen=True, slots=True)
class Applied:
    """`f(name)`: a plain built-in of one argument applied to a variable (`len(result)`)."""

    variable: str
    impl: Callable[..., Any]
    numeric: bool  # f always returns an int or a float (its declared kind says so)
    metered: bool  # f takes the scope first and pays into its budget (expr.builtins.FUNCTIONS)


def _lookup(name: str) -> Callable[[Any], object]:
    def value(env: Any) -> object:
        try:
            return env[name]
        except KeyError:
            raise unknown_name(name) from None

    return value


def apply_to_variable(applied: Applied) -> Fn:
    """`len(result)`: the variable lookup and the call in one closure."""
    name, impl = applied.variable, applied.impl

    def call(env: Any) -> object:
        try:
            value = env[name]
        except KeyError:
            raise unknown_name(name) from None
        return impl(value)

    if not applied.metered:
        return call
    lookup = _lookup(name)
    return lambda env: impl(env, lookup(env))


def compare_applied(applied: Applied, op: str, const: Any) -> Fn:
    """`len(result) > 0`, `max(result) < 0.5`: lookup, call and comparison in one closure,
    with no type check on the result when the built-in always returns a number."""
    name, impl, cmp, metered = applied.variable, applied.impl, CMP[op], applied.metered

    def compare_number(env: Any) -> Any:
        try:
            value = env[name]
        except KeyError:
            raise unknown_name(name) from None
        return cmp(impl(value), const)

    def compare(env: Any) -> Any:
        try:
            value = env[name]
        except KeyError:
            raise unknown_name(name) from None
        a = impl(value)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    def compare_metered(env: Any) -> Any:
        try:
            value = env[name]
        except KeyError:
            raise unknown_name(name) from None
        a = impl(env, value)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    if metered:
        return compare_metered
    return compare_number if applied.numeric else compare
