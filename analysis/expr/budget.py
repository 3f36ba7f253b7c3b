"""The work budget of one evaluation: every operation that grows with its data pays first.

Rules and invariants:
- One evaluation may spend MAX_STEPS steps, whatever the text and the data. A step is one
  element of a list or map handled (walked, copied, compared or built), CHARS_PER_STEP
  characters of a string handled, CONTAINER more for each list or map a deep walk
  reaches, LOOP for starting a scoped loop, and per element of a loop its body's nodes
  (`body_cost`: calls and literals that build cost more). Work that grows with the data
  (string building and scanning, lists built, deep equality, `in`, flattening, rendering,
  loops) pays BEFORE it is done, in every evaluation, at the top level as well as inside
  loops; a deep walk pays for each container as it reaches it, so it stops as soon as the
  budget runs out. A step is at most a few hundred nanoseconds of CPU and allocates at
  most some tens of bytes, so an evaluation stays well under a second and 100 MB.
- Results are size-checked before they are built, from their operands' lengths: strings
  <= MAX_STRING characters (`check_string`), lists <= MAX_LIST elements (`check_list`).
- Where the budget lives (expr.Expression): an expression with a scoped loop (its body
  reads `#` from the scope) evaluates in a scope, a copy of env holding a Budget under
  BUDGET. Any other expression that pays first runs on the caller's env with no Budget, a
  trial run: there an operation costing more than SMALL steps raises NeedBudget (a deep
  walk gets a trial Budget of SMALL steps), and the evaluation starts again in a scope
  with a Budget. A trial runs each node at most once, so what it may waste is bounded by
  the text (nodes x SMALL steps). NeedBudget never reaches the caller: the compiler marks
  every expression that may raise it (expr.compile, expr.calls: `metered`).
- An operation's first FREE steps are covered by the step of its own node, so tiny
  operations never look the budget up (`spend` does nothing for them).
- Running out is ExprError "evaluation exceeded its budget of 1000000 steps".
- Scope keys BUDGET (and expr.ops.ITEM, INDEX) start with `#`, which no identifier can
  spell, so they never collide with the user's variables.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from analysis.expr.nodes import Array, Call, MapLit, Node, Predicate
from analysis.expr.parse import PREDICATE_ARGS
from analysis.expr.tokens import ExprError

MAX_STEPS = 1_000_000
MAX_STRING = 100_000
MAX_LIST = 100_000
CHARS_PER_STEP = 8
FREE = 4  # steps an operation's own node pays for
FREE_CHARS = FREE * CHARS_PER_STEP
SMALL = 128  # steps an operation may take in a trial run (no Budget yet)
BUDGET = "#budget"  # scope key no identifier can spell
CONTAINER = 8  # steps for reaching one list or map in a deep walk, besides its elements
LOOP = 8  # steps for starting a predicate's loop, besides its elements
NODE_COST = {MapLit: 5, Array: 3, Call: 4}  # a node's steps in a predicate body; any other costs 1


class NeedBudget(Exception):
    """A trial run met an operation too big to do without a budget: start again with one."""


class Budget:
    """The steps one evaluation has left. A trial budget (what one operation may spend in a
    trial run) raises NeedBudget instead of running out."""

    __slots__ = ("left", "trial")

    def __init__(self, steps: int = MAX_STEPS, *, trial: bool = False) -> None:
        self.left = steps
        self.trial = trial

    def take(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            if self.trial:
                raise NeedBudget
            raise ExprError(f"evaluation exceeded its budget of {MAX_STEPS} steps")


def spend(scope: Any, steps: int) -> None:
    """Pay `steps` from the scope's Budget; in a trial run (no Budget), more than SMALL
    steps restarts the evaluation with one. At most FREE steps cost nothing."""
    if steps > FREE:
        budget = None if scope is None else scope.get(BUDGET)
        if budget is not None:
            budget.take(steps)
        elif steps > SMALL:
            raise NeedBudget


def meter(scope: Any) -> Budget:
    """The Budget a deep walk pays into: the scope's, or in a trial run a trial budget."""
    budget = None if scope is None else scope.get(BUDGET)
    return Budget(SMALL, trial=True) if budget is None else budget


def chars(count: int) -> int:
    """Steps for handling `count` characters."""
    return count // CHARS_PER_STEP


def check_string(length: int) -> None:
    if length > MAX_STRING:
        raise ExprError(f"string longer than {MAX_STRING} characters")


def check_list(length: int, what: str) -> None:
    if length > MAX_LIST:
        raise ExprError(f"{what} has more than {MAX_LIST} elements")


def body_cost(body: Node) -> int:
    """Steps one run of a predicate's body costs: one per node (calls, loops, map and list
    literals more), leaving out the bodies of loops inside it, which pay for themselves."""
    total, pending = 0, [body]
    while pending:
        node = pending.pop()
        total += LOOP if isinstance(node, Call) and node.name in PREDICATE_ARGS else NODE_COST.get(type(node), 1)
        for field in fields(node):
            value = getattr(node, field.name)
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                for child in item if isinstance(item, tuple) else (item,):
                    if isinstance(child, Node) and not isinstance(child, Predicate):
                        pending.append(child)
    return total
