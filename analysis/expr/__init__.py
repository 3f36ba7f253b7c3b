"""The condition language of successCondition/failureCondition, and a measurement's verdict.

Rules and invariants:
- Syntax and semantics are expr-lang's as Argo Rollouts uses it (argo-rollouts.md §3.4, §4).
  User text is tokenized and parsed (expr.tokens, expr.parse) into our own nodes
  (expr.nodes), then compiled ONCE (expr.compile, expr.calls) into a tree of Python
  closures over the runtime operations (expr.values, expr.ops, expr.builtins,
  expr.strings, expr.predicates, expr.shapes); it never reaches eval/exec/compile/ast.
- `compile_expr(text)` is cached; `Expression.evaluate(env)` only runs closures. A compiled
  expression keeps no per-run state, so one Expression may be evaluated from many threads.
- Typing follows expr's checker (expr.compile): `==`/`!=` between typed operands of
  incompatible types is an error (`asFloat(result) == "1.1"`); with a list or map element
  (`result[0]`, `result.a`, `#`) it is simply false. Ordering, arithmetic and `&&` on
  mismatched types are always errors. A list `result` is typed []interface{} here (Argo's
  Prometheus provider has []float64), so `result[0] == "x"` is false here where Argo
  reports a type error.
- Errors are ExprError with a clear message, and nothing else leaves compile_expr or
  evaluate, whatever the text and the data (deep nesting, ints beyond int64 or float64,
  thousands of digits, surrogates). Anything wrong with the text itself (syntax, unknown
  name or function, argument count, typed mismatch) is ExprSyntaxError with a position,
  raised by compile_expr. Indexing an empty or nil `result` says
  "result is empty: the query returned no series".
- Bounded: text <= 4096 chars and nesting <= 64 (expr.parse). Every evaluation has a
  budget of expr.budget.MAX_STEPS steps: every operation that walks, scans, copies or
  builds data pays for its size before doing it, at the top level as in loops, and every
  loop pays for its elements; deep walks pay as they go and use no recursion. What is
  built is size-checked first (strings <= MAX_STRING characters, lists <= MAX_LIST
  elements), and numbers are parsed in linear time from at most 400 characters. So one
  evaluation stays well under a second of CPU and 100 MB of memory on any input.
  `**` beyond float64 range is an error (Go gives +Inf) and integers stay within int64
  (Go wraps around): both deliberate, named in the tests. `matches` is refused: Python
  regular expressions cannot be bounded in time.
- The verdict is Argo's EvaluateResult: success is evaluated before failure, failure wins
  when both hold, both false is Inconclusive, no conditions at all means Successful, and a
  condition that cannot be evaluated makes the measurement Error (never an exception).
- Argo quirks kept: `isNil(x)` and `default(x, d)` ignore x and look at the top-level
  `result`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from analysis.expr.budget import BUDGET, Budget, NeedBudget
from analysis.expr.compile import Compiler
from analysis.expr.parse import parse as parse_text
from analysis.expr.tokens import ExprError, ExprSyntaxError
from analysis.expr.values import Fn, format_value, go_type, kind_of

__all__ = [
    "ExprError",
    "ExprSyntaxError",
    "Expression",
    "MeasurementPhase",
    "Verdict",
    "check_syntax",
    "compile_expr",
    "eval_condition",
    "evaluate_condition",
    "format_value",
]  # fmt: skip

RESULT_ONLY = frozenset({"result"})
NO_DATA = "metric result is nil or empty: no data returned from the metric provider"

Env = Mapping[str, Any]


class Expression:
    """A compiled expression. `evaluate(env)` runs it against variables such as
    `{"result": ...}` and returns its value, or raises ExprError. For speed, `evaluate` is
    the root closure itself when nothing in the expression can grow with the data. An
    expression with scoped loops runs in a scope (a copy of env, where predicates keep `#`)
    holding a Budget; any other that pays into a budget first runs as a trial on env itself,
    and again in such a scope only if an operation was too big for the trial (expr.budget)."""

    __slots__ = ("evaluate", "source")

    def __init__(self, source: str, root: Fn, *, scoped: bool, metered: bool) -> None:
        self.source = source
        self.evaluate: Callable[[Env], object] = root
        if scoped:

            def evaluate(env: Env) -> object:
                scope = dict(env)
                scope[BUDGET] = Budget()
                return root(scope)

            self.evaluate = evaluate
        elif metered:

            def trial(env: Env) -> object:
                try:
                    return root(env)
                except NeedBudget:
                    scope = dict(env)
                    scope[BUDGET] = Budget()
                    return root(scope)

            self.evaluate = trial

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@functools.lru_cache(maxsize=1024)
def compile_expr(text: str, variables: frozenset[str] = RESULT_ONLY) -> Expression:
    """Parse and compile `text` once; raises ExprSyntaxError for anything wrong with it."""
    compiler = Compiler(text, variables)
    root = compiler.compile(parse_text(text))
    return Expression(text, root.fn, scoped=compiler.scoped, metered=compiler.metered)


def check_syntax(text: str) -> ExprSyntaxError | None:
    """The compile error of `text` (syntax, unknown name or function, typed mismatch), if any."""
    try:
        compile_expr(text)
    except ExprSyntaxError as err:
        return err
    return None


def eval_condition(condition: str, result: object) -> bool:
    """Argo's EvalCondition: the condition's value for `result`, which must be a bool."""
    value = compile_expr(condition).evaluate({"result": result})
    if value is True or value is False:
        return value
    raise ExprError(f"expected bool, but got {go_type(value)}")


# ---------------------------------------------------------------- a measurement's verdict


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class Verdict:
    phase: MeasurementPhase
    message: str


def _no_data(result: object) -> bool:
    return result is None or (kind_of(result) == "array" and len(result) == 0)  # type: ignore[arg-type]


def _shown(result: object) -> str:
    try:
        return format_value(result)
    except Exception:  # noqa: BLE001 - only a message: a result of any type must show
        return f"<{type(result).__name__}>"


def _check(label: str, condition: str, result: object) -> bool | Verdict:
    try:
        return eval_condition(condition, result)
    except Exception as err:  # noqa: BLE001 - any failure of a user's condition is data
        reason = NO_DATA if _no_data(result) else str(err)
        if not isinstance(err, ExprError):
            reason = f"internal error: {type(err).__name__}: {err}"
        return Verdict(MeasurementPhase.ERROR, f'could not evaluate {label} "{condition}": {reason}')


def evaluate_condition(success: str | None, failure: str | None, result: object) -> Verdict:
    """Argo's EvaluateResult (argo-rollouts.md §3.4). Success is evaluated before failure;
    failure wins when both hold; both false is Inconclusive. With no condition at all the
    measurement is Successful whatever the result (Argo's code; its docs say Inconclusive)."""
    shown = _shown(result)
    if not success and not failure:
        return Verdict(MeasurementPhase.SUCCESSFUL,
                       f"result {shown}: no successCondition or failureCondition, so any result "
                       "counts as Successful (as in Argo Rollouts)")  # fmt: skip
    passed = failed = False
    if success:
        outcome = _check("successCondition", success, result)
        if isinstance(outcome, Verdict):
            return outcome
        passed = outcome
    if failure:
        outcome = _check("failureCondition", failure, result)
        if isinstance(outcome, Verdict):
            return outcome
        failed = outcome
    s, f = f'successCondition "{success}"', f'failureCondition "{failure}"'
    if failed:
        return Verdict(MeasurementPhase.FAILED, f"result {shown} met {f}")
    if not failure:
        phase = MeasurementPhase.SUCCESSFUL if passed else MeasurementPhase.FAILED
        return Verdict(phase, f"result {shown} {'satisfied' if passed else 'did not satisfy'} {s}")
    if passed or not success:
        met = f"satisfied {s} and did not meet {f}" if success else f"did not meet {f}"
        return Verdict(MeasurementPhase.SUCCESSFUL, f"result {shown} {met}")
    return Verdict(MeasurementPhase.INCONCLUSIVE, f"result {shown} satisfied neither {s} nor {f}")
