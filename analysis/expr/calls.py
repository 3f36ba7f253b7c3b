"""Compiling calls: the plain built-ins, Argo's isNil/default, and the predicate built-ins.

Rules and invariants:
- `CallCompiler` is the part of expr.compile.Compiler that compiles Call nodes; it uses
  the compiler's `compile` for the arguments. A call is checked when compiled: unknown
  or unsupported function, argument count, a collection that cannot be an array.
- A plain built-in is called as FUNCTIONS says: a metered one takes the scope first and
  pays into its budget (expr.budget) for the size of its arguments, and marks the
  expression `metered`.
  `f(name)` on a variable is one closure (expr.shapes.Applied).
- A predicate built-in runs as an element loop when its body is a plain comparison
  (expr.predicates.element_loop), otherwise as a scoped loop over a compiled body, which
  marks the expression `scoped`; either pays for its elements before it starts, a scoped
  loop one step more than `body_cost(body)` per element (the loop itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.expr.budget import body_cost
from analysis.expr.builtins import FUNCTIONS, NOT_SUPPORTED, ONE_ARGUMENT
from analysis.expr.nodes import Call, Name, Node, Predicate
from analysis.expr.predicates import PREDICATE_KIND, element_loop, scoped_loop
from analysis.expr.shapes import Applied, apply_to_variable
from analysis.expr.tokens import ExprSyntaxError
from analysis.expr.values import CONCRETE, GO, NOTHING, NUMERIC, Fn, kind_of


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled node: its closure, its static kind, its value if constant."""

    fn: Fn
    kind: str  # "any", "exact" or one of CONCRETE
    const: object = NOTHING


def constant(value: object) -> Compiled:
    return Compiled(lambda env: value, kind_of(value), value)


class CallCompiler:
    """Compiles Call nodes, for expr.compile.Compiler (which subclasses it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.scoped = False  # some predicate reads `#` from a scope (a copy of env, with a Budget)
        self.metered = False  # some operation pays into the budget (a trial run may need one)

    def compile(self, node: Node) -> Compiled:
        raise NotImplementedError  # expr.compile.Compiler.compile

    def error(self, node: Node, message: str) -> ExprSyntaxError:
        return ExprSyntaxError(message, position=node.pos, source=self.source)

    def c_Call(self, node: Call) -> Compiled:
        name = node.name
        if name in PREDICATE_KIND:
            return self.predicate_call(node)
        args = [self.compile(arg) for arg in node.args]
        if name in ("isNil", "default"):
            return self.argo_quirk(node, args)
        if name not in FUNCTIONS:
            if name in NOT_SUPPORTED:
                raise self.error(node, f"function {name}() is not supported in conditions")
            raise self.error(node, f"unknown function {name}()")
        low, high, impl, kind, metered = FUNCTIONS[name]
        if len(args) < low:
            raise self.error(node, f"not enough arguments to call {name}")
        if high >= 0 and len(args) > high:
            raise self.error(node, f"too many arguments to call {name}")
        if kind == "arg":
            kind = args[0].kind if args[0].kind in NUMERIC | {"exact"} else "any"
        fns = [a.fn for a in args]
        self.metered = self.metered or metered  # it pays for the size of its arguments
        applied = self.applied(node)
        if applied is not None:
            return Compiled(apply_to_variable(applied), kind)
        one = ONE_ARGUMENT.get(name, impl)
        if len(fns) == 1:
            f0 = fns[0]
            if metered:
                return Compiled(lambda env: one(env, f0(env)), kind)
            return Compiled(lambda env: one(f0(env)), kind)
        if metered:
            return Compiled(lambda env: impl(env, *[f(env) for f in fns]), kind)
        return Compiled(lambda env: impl(*[f(env) for f in fns]), kind)

    def applied(self, node: Node) -> Applied | None:
        """`f(name)`, f a plain built-in: called on the variable directly."""
        if not isinstance(node, Call) or node.name not in FUNCTIONS:
            return None
        if len(node.args) != 1 or not isinstance(node.args[0], Name):
            return None
        _, _, impl, kind, metered = FUNCTIONS[node.name]
        self.metered = self.metered or metered
        return Applied(node.args[0].name, ONE_ARGUMENT.get(node.name, impl), kind in NUMERIC, metered)

    def argo_quirk(self, node: Call, args: list[Compiled]) -> Compiled:
        """Argo's isNil(_) and default(_, d) ignore their first argument (§4.1): they test
        the top-level `result`. Arguments are still evaluated, as Go evaluates them."""
        wanted = 1 if node.name == "isNil" else 2
        if len(args) != wanted:
            few = "not enough" if len(args) < wanted else "too many"
            raise self.error(node, f"{few} arguments to call {node.name}")
        fns = [a.fn for a in args]

        def quirk(env: Any) -> object:
            values = [f(env) for f in fns]
            result = env.get("result")
            if node.name == "isNil":
                return result is None
            return values[1] if result is None else result

        return Compiled(quirk, "bool" if node.name == "isNil" else "any")

    def predicate_call(self, node: Call) -> Compiled:
        name = node.name
        coll = self.compile(node.args[0])
        if coll.kind in CONCRETE and coll.kind != "array":
            raise self.error(node, f"builtin {name} takes only array (got {GO[coll.kind]})")
        self.metered = True  # every loop pays for its elements
        cf, pred = coll.fn, node.args[1] if len(node.args) > 1 else None
        body = pred.body if isinstance(pred, Predicate) else None
        loop = element_loop(name, cf, body)
        if loop is not None:
            return Compiled(loop, PREDICATE_KIND[name])
        assert body is not None  # the parser gives every predicate built-in but count/sum a body
        self.scoped = True  # the body reads `#` from a scope
        compiled = self.compile(body)
        if name not in ("map", "sum") and compiled.kind in CONCRETE and compiled.kind != "bool":
            raise self.error(body, f"predicate should return boolean (got {GO[compiled.kind]})")
        return Compiled(scoped_loop(name, cf, compiled.fn, 1 + body_cost(body)), PREDICATE_KIND[name])
