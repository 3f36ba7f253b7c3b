"""The compiler: a syntax tree becomes a tree of Python closures, checked and typed once.

Rules and invariants:
- Compiling runs once per text (expr.compile_expr caches); evaluating only calls closures,
  each `fn(env) -> value`. Closures keep no state between calls: anything an evaluation
  needs (a predicate's `#`, the step budget) lives in its scope, a copy of env made per
  evaluation (expr.Expression), so one compiled expression may run on many threads.
- Typing follows expr's checker, which types each variable from its concrete Go value.
  Every compiled node has a static kind: one of CONCRETE (nil, bool, int, float, string,
  array, map) when known at compile time; "exact" when it is a variable's own value,
  concrete but known only at run time; "any" for elements of lists and maps (`result[0]`,
  `result.a`, `#`). Operands of CONCRETE kinds that expr's checker would refuse are an
  ExprSyntaxError here (`asFloat(result) == "1.1"`, `1 ? 2 : 3`, `!1`); `==`/`!=` between
  an "exact" and a typed operand raises at run time on incompatible types, while with an
  "any" operand it is simply false.
- Anything wrong with the text (unknown name or function, argument count, a predicate
  outside a built-in, `matches`) is an ExprSyntaxError pointing at the node.
- Work is bounded (expr.budget): every operation that may handle a string, list or map
  pays into the evaluation's budget for its size, wherever it is; the compiler marks the
  expression `metered` when it compiles one (`paying`), and `scoped` when a predicate
  needs a scope (expr.calls). Arithmetic, and any operation on operands of SCALAR kinds
  only, has nothing to pay for.
- Common shapes are compiled to the specialised closures of expr.shapes and
  expr.predicates; everything else to the general operations of expr.ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analysis.expr.calls import CallCompiler, Compiled, constant
from analysis.expr.nodes import Array, Binary, Cond, Lit, MapLit, Member, Name, Node, Pointer, Predicate, Slice, Unary
from analysis.expr.ops import (
    ARITHMETIC,
    INDEX,
    ITEM,
    METERED,
    fetch,
    make_range,
    minus,
    slice_of,
    typed_equality,
    unknown_name,
)  # fmt: skip
from analysis.expr.shapes import (
    Leaf,
    compare_applied,
    compare_member,
    compare_pair,
    compare_to,
    conjunction,
    equals_const,
    logic2,
    variable_member,
)  # fmt: skip
from analysis.expr.tokens import ExprError
from analysis.expr.values import (
    CMP,
    CONCRETE,
    GO,
    NOTHING,
    NUMERIC,
    SCALAR,
    Fn,
    allowed,
    arith_kind,
    go_type,
    is_num,
    truth,
)  # fmt: skip


def _optional_chain(node: Node) -> bool:
    """True inside a chain that has `?.`: nil anywhere after it makes the chain nil."""
    while isinstance(node, (Member, Slice)):
        if isinstance(node, Member) and node.optional:
            return True
        node = node.obj
    return False


class Compiler(CallCompiler):
    def __init__(self, source: str, variables: frozenset[str]) -> None:
        super().__init__(source)
        self.variables = variables
        self.operands: dict[Fn, list[Compiled]] = {}  # flattened operands of && / || closures
        self.leaves: dict[Fn, Leaf] = {}  # fused comparisons, by their closure

    def compile(self, node: Node) -> Compiled:
        method: Callable[[Any], Compiled] = getattr(self, "c_" + type(node).__name__)
        return method(node)

    def c_Lit(self, node: Lit) -> Compiled:
        return constant(node.value)

    def c_Name(self, node: Name) -> Compiled:
        name = node.name
        if name not in self.variables:
            raise self.error(node, f"unknown name {name}")

        def var(env: Any) -> object:
            try:
                return env[name]
            except KeyError:
                raise unknown_name(name) from None

        return Compiled(var, "exact")

    def c_Pointer(self, node: Pointer) -> Compiled:
        key = INDEX if node.name else ITEM
        return Compiled(lambda env: env[key], "int" if node.name else "any")

    def c_Predicate(self, node: Predicate) -> Compiled:
        raise self.error(node, "a predicate can only be an argument of a built-in function")

    def c_Unary(self, node: Unary) -> Compiled:
        c = self.compile(node.operand)
        f, op = c.fn, node.op
        wanted = ("bool",) if op == "!" else ("int", "float")
        if c.kind in CONCRETE and c.kind not in wanted:
            raise self.error(node, f"invalid operation: {op} (mismatched type {GO[c.kind]})")
        if op == "!":
            def negate(env: Any) -> bool:
                return not truth(f(env), "operand of !")

            return Compiled(negate, "bool")

        def sign(value: object) -> object:
            if not is_num(value):
                raise ExprError(f"invalid operation: {op} {go_type(value)}")
            return value if op == "+" else minus(value)  # type: ignore[arg-type]

        if c.const is not NOTHING:
            return constant(sign(c.const))
        return Compiled(lambda env: sign(f(env)), c.kind if c.kind in NUMERIC | {"exact"} else "any")

    def c_Binary(self, node: Binary) -> Compiled:
        op = node.op
        if op == "matches":
            raise self.error(node, "the matches operator is not supported: regular expressions "
                             "cannot be bounded in time; use contains, startsWith or endsWith")  # fmt: skip
        left, right = self.compile(node.left), self.compile(node.right)
        if op in ("&&", "||"):
            return self.logic(node, left, right)
        lf, rf = left.fn, right.fn
        if op == "??":
            same = left.kind == right.kind and left.kind in CONCRETE
            kind = right.kind if left.kind == "nil" else (left.kind if same else "any")
            return Compiled(lambda env: rf(env) if (v := lf(env)) is None else v, kind)
        if left.kind in CONCRETE and right.kind in CONCRETE and not allowed(op, left.kind, right.kind):
            raise self.error(node, f"invalid operation: {op} (mismatched types "
                             f"{GO[left.kind]} and {GO[right.kind]})")  # fmt: skip
        if op == "..":
            self.metered = True
            return Compiled(lambda env: make_range(env, lf(env), rf(env)), "array")
        kinds = {left.kind, right.kind}
        typed = op in ("==", "!=") and "any" not in kinds and "exact" in kinds
        kind = "bool" if op in CMP or op in ("==", "!=", "in", "contains", "startsWith", "endsWith") \
            else arith_kind(op, left.kind, right.kind)  # fmt: skip
        if op in ARITHMETIC:
            arith = ARITHMETIC[op]
            return Compiled(lambda env: arith(lf(env), rf(env)), kind)
        core = typed_equality(op) if typed else METERED[op]
        general = Compiled(lambda env: core(env, lf(env), rf(env)), kind)
        if typed:
            return self.paying(general, kinds)
        if op in ("==", "!=") and right.const is not NOTHING:
            return Compiled(equals_const(op, lf, right.const), "bool")
        if op in CMP and is_num(right.const):
            target = node.left
            if isinstance(target, Member) and isinstance(target.obj, Name) and \
                    isinstance(target.prop, Lit) and not target.optional:  # fmt: skip
                leaf = Leaf(target.obj.name, target.prop.value, op, right.const)
                fused = compare_member(leaf)
                self.leaves[fused] = leaf
                return Compiled(fused, "bool")
            applied = self.applied(target)
            if applied is not None:
                return Compiled(compare_applied(applied, op, right.const), "bool")
            return Compiled(compare_to(op, lf, right.const), "bool")
        return self.paying(general, kinds)

    def paying(self, compiled: Compiled, kinds: set[str]) -> Compiled:
        """An operation that pays into the budget unless all its operands are SCALAR."""
        if not kinds <= SCALAR:
            self.metered = True
        return compiled

    def logic(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        for side in (left, right):
            if side.kind in CONCRETE and side.kind != "bool":
                raise self.error(node, f"invalid operation: {node.op} (mismatched types "
                                 f"{GO[side.kind]} and bool)")  # fmt: skip
        same = isinstance(node.left, Binary) and node.left.op == node.op
        operands = [*(self.operands.pop(left.fn, [left]) if same else [left]), right]
        fns = [c.fn for c in operands]
        if len(fns) == 2 and all(f in self.leaves for f in fns):
            fn = compare_pair(self.leaves[fns[0]], self.leaves[fns[1]], node.op)
        elif len(fns) > 2:
            fn = conjunction(fns, node.op)
        else:
            fn = logic2(fns[0], fns[1], node.op, bools=left.kind == right.kind == "bool")
        self.operands[fn] = operands  # `a && b && c` runs as one closure over three operands
        return Compiled(fn, "bool")

    def c_Member(self, node: Member) -> Compiled:
        obj, prop = self.compile(node.obj), self.compile(node.prop)
        of, pf, key = obj.fn, prop.fn, prop.const
        tolerant = _optional_chain(node)
        from_result = isinstance(node.obj, Name) and node.obj.name == "result"
        if tolerant:
            return Compiled(lambda env: None if (o := of(env)) is None else fetch(o, pf(env)), "any")
        if key is NOTHING:
            return Compiled(lambda env: fetch(of(env), pf(env), from_result=from_result), "any")
        if isinstance(node.obj, Name):
            return Compiled(variable_member(node.obj.name, key, from_result), "any")

        def member(env: Any) -> object:
            o = of(env)
            if type(o) is dict and type(key) is str:
                return o.get(key)
            return fetch(o, key, from_result=from_result)

        return Compiled(member, "any")

    def c_Slice(self, node: Slice) -> Compiled:
        obj = self.compile(node.obj)
        of = obj.fn
        lo = self.compile(node.lo).fn if node.lo else (lambda env: None)
        hi = self.compile(node.hi).fn if node.hi else (lambda env: None)
        kind = obj.kind if obj.kind in ("array", "string", "exact") else "any"
        self.metered = True  # a slice copies: it pays for the copy
        return Compiled(lambda env: slice_of(env, of(env), lo(env), hi(env)), kind)

    def c_Array(self, node: Array) -> Compiled:
        fns = [self.compile(item).fn for item in node.items]
        return Compiled(lambda env: [f(env) for f in fns], "array")

    def c_MapLit(self, node: MapLit) -> Compiled:
        pairs = [(self.compile(k).fn, self.compile(v).fn) for k, v in node.pairs]

        def build(env: Any) -> dict[str, object]:
            out: dict[str, object] = {}
            for kf, vf in pairs:
                key = kf(env)
                if type(key) is not str:
                    raise ExprError(f"a map key must be a string, got {go_type(key)}")
                out[key] = vf(env)
            return out

        return Compiled(build, "map")

    def c_Cond(self, node: Cond) -> Compiled:
        test = self.compile(node.test)
        if test.kind in CONCRETE and test.kind != "bool":
            raise self.error(node, f"non-bool expression (type {GO[test.kind]}) used as condition")
        then = self.compile(node.then) if node.then is not None else test
        other = self.compile(node.other)
        tf, thf, of = test.fn, then.fn, other.fn

        def choose(env: Any) -> object:
            return thf(env) if truth(tf(env), "condition of ?:") else of(env)

        same = then.kind == other.kind and then.kind in CONCRETE
        return Compiled(choose, then.kind if same else "any")
