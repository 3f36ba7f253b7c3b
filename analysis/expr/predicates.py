"""Built-ins that take a predicate: all, any, none, one, filter, map, count, sum, find,
findIndex, findLast, findLastIndex. These are the language's only loops.

Rules and invariants:
- A predicate must return bool (map and sum excepted): anything else is "predicate of NAME
  must return bool". all/any/none stop at the first element that decides; find/findIndex
  scan forwards and findLast/findLastIndex backwards; `one` and `count` look at all.
- The collection must be an array; nil or anything else is "builtin NAME takes only array".
- Two ways to run one. The common bodies `# OP const` and `#.field OP const` (OP a
  comparison) become a plain function of the element (`element_loop`), with no scope at
  all. Any other body reads `#` and `#index` from the scope (`scoped_loop`), which are
  saved and restored around the loop, so nested predicates each see their own element and
  one compiled expression can run on many threads (each evaluation has its own scope).
- Every loop pays before it starts, wherever it is (expr.budget): an element loop one
  step per element (nothing in a trial run, unless its collection is big), a scoped loop
  LOOP steps plus `cost` (its body's expr.budget.body_cost) per element. A scoped loop
  always runs in a scope that holds a Budget (expr.Expression).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analysis.expr.budget import BUDGET, FREE, LOOP, SMALL, NeedBudget
from analysis.expr.builtins import numeric_arg
from analysis.expr.nodes import Binary, Lit, Member, Node, Pointer
from analysis.expr.ops import INDEX, ITEM, add, fetch
from analysis.expr.tokens import ExprError
from analysis.expr.values import CMP, NOTHING, Fn, equal, go_type, is_num, kind_of, order

PREDICATE_KIND = {"all": "bool", "any": "bool", "none": "bool", "one": "bool",
                  "filter": "array", "map": "array", "count": "int", "sum": "any",
                  "find": "any", "findLast": "any", "findIndex": "int", "findLastIndex": "int"}  # fmt: skip


def _not_bool(name: str, value: Any) -> ExprError:
    return ExprError(f"predicate of {name} must return bool, got {go_type(value)}")


def run_predicate(name: str, keys: Any, test: Callable[[Any], Any], element: Fn) -> object:
    """One predicate built-in. `keys` are what `test` takes (the elements themselves, or
    their indexes when the predicate needs a scope); `element(key)` is the element."""
    if name == "map":
        return [test(k) for k in keys]
    if name == "sum":
        total: object = 0
        for k in keys:
            total = add(None, total, numeric_arg("sum", test(k)))
        return total
    if name in ("all", "any", "none"):
        stop = name != "all"  # all stops at the first False, any/none at the first True
        for k in keys:
            hit = test(k)
            if hit is stop:
                return name == "any"
            if hit is not (not stop):
                raise _not_bool(name, hit)
        return name != "any"
    hits = [k for k in keys if _hit(name, test(k))] if name in ("one", "count", "filter") else []
    if name == "filter":
        return [element(k) for k in hits]
    if name in ("one", "count"):
        return len(hits) == 1 if name == "one" else len(hits)
    positions = range(len(keys)) if name in ("find", "findIndex") else range(len(keys) - 1, -1, -1)
    for i in positions:
        if _hit(name, test(keys[i])):
            return i if name.endswith("Index") else element(keys[i])
    return -1 if name.endswith("Index") else None


def _hit(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_bool(name, value)


def _identity(value: object) -> object:
    return value


def _check(name: str, items: Any) -> None:
    if kind_of(items) != "array":
        raise ExprError(f"builtin {name} takes only array (got {go_type(items)})")


def element_loop(name: str, cf: Fn, body: Node | None) -> Fn | None:
    """`name(cf, body)` when the body needs no scope: none at all (`count(result)`), or
    `# OP const` / `#.field OP const`. None when the body must be compiled (scoped_loop)."""
    test = _element_test(body) if body is not None else _identity
    if test is None:
        return None
    element_test = test
    loop = _quantifier(name, body) or (lambda items: run_predicate(name, items, element_test, _identity))

    def run(env: Any) -> object:
        items = cf(env)
        if type(items) is not list:
            _check(name, items)
        size = len(items)
        if size > FREE:  # one step per element, paid before the loop (expr.budget.spend, inlined)
            budget = env.get(BUDGET)
            if budget is not None:
                budget.take(size)
            elif size > SMALL:
                raise NeedBudget
        return loop(items)

    return run


def scoped_loop(name: str, cf: Fn, body: Fn, cost: int) -> Fn:
    """`name(cf, body)` where the compiled body reads `#`/`#index` from the scope; they are
    saved and restored around the loop so nested predicates each see their own element.
    The loop pays `cost` steps per element (expr.budget.body_cost) before it starts."""

    def run(env: Any) -> object:
        items = cf(env)
        _check(name, items)
        env[BUDGET].take(LOOP + len(items) * cost)
        outer = env.get(ITEM, NOTHING), env.get(INDEX)

        def test(i: int) -> object:
            env[ITEM] = items[i]
            env[INDEX] = i
            return body(env)

        try:
            return run_predicate(name, range(len(items)), test, items.__getitem__)
        finally:
            if outer[0] is not NOTHING:
                env[ITEM], env[INDEX] = outer

    return run


def _quantifier(name: str, body: Node | None) -> Callable[[Any], object] | None:
    """`all(result, # < 0.05)` and its any/none siblings as one tight loop."""
    if name not in ("all", "any", "none") or not isinstance(body, Binary) or body.op not in CMP:
        return None
    left, right = body.left, body.right
    if not (isinstance(left, Pointer) and not left.name and isinstance(right, Lit)):
        return None
    if not is_num(right.value):
        return None
    op, cmp, stop = body.op, CMP[body.op], name != "all"
    const: Any = right.value

    def loop(items: Any) -> bool:
        for x in items:
            hit = cmp(x, const) if type(x) is float or type(x) is int else order(op, x, const)
            if hit is stop:
                return name == "any"
        return name != "any"

    return loop


def _element_test(body: Node) -> Callable[[Any], object] | None:
    """The common predicate `# OP const` or `#.field OP const` (OP a comparison) as a
    plain function of the element, needing no scope; None for any other body."""
    if not (isinstance(body, Binary) and isinstance(body.right, Lit)):
        return None
    op, left = body.op, body.left
    const: Any = body.right.value
    if op not in CMP and op not in ("==", "!="):
        return None
    key: object = NOTHING
    if isinstance(left, Member) and isinstance(left.obj, Pointer) and isinstance(left.prop, Lit) \
            and not left.optional:  # fmt: skip
        key, left = left.prop.value, left.obj
    if not (isinstance(left, Pointer) and left.name == ""):
        return None
    kind = type(const)  # a literal: comparing data with it costs at most the literal's length
    if op in ("==", "!="):
        want = op == "=="

        def compare(x: Any) -> object:
            return (x == const if type(x) is kind else equal(x, const)) is want
    elif is_num(const):
        cmp = CMP[op]

        def compare(x: Any) -> object:
            if type(x) is float or type(x) is int:
                return cmp(x, const)
            return order(op, x, const)
    elif kind is str:
        cmp = CMP[op]
        compare = lambda x: cmp(x, const) if type(x) is str else order(op, x, const)  # noqa: E731
    else:
        compare = lambda x: order(op, x, const)  # noqa: E731
    if key is NOTHING:
        return compare
    return lambda x: compare(x.get(key) if type(x) is dict and type(key) is str else fetch(x, key))
