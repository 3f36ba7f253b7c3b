"""The syntax tree of the condition language: what the parser builds and the compiler reads.

Rules and invariants:
- Nodes are frozen values with no behaviour. Each carries `pos`, the 0-based character
  offset that errors about it point at, and `depth`, the height of its subtree (a leaf is
  1), which the parser keeps at or below expr.parse.MAX_DEPTH.
- Operators are stored normalised: `and`/`or`/`not`/`^` arrive as `&&`/`||`/`!`/`**`;
  `a not in b` is `!(a in b)`; chained comparisons are already split into `&&` of pairs;
  `x | f(y)` is already `f(x, y)`; `.name` and `[expr]` are both Member (`optional` for `?.`).
- Calls name only built-in functions; a predicate argument (`{...}` or a bare body in
  which `#` is the element) is a Predicate node, valid only as a built-in's argument.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    pos: int
    depth: int


@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: object


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    name: str  # "" for `#`, "index" for `#index`


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "!" or "-" or "+"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # normalised: "&&", "||", "**" for and/or/^
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Member(Node):
    obj: Node
    prop: Node
    optional: bool


@dataclass(frozen=True, slots=True)
class Slice(Node):
    obj: Node
    lo: Node | None
    hi: Node | None


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Predicate(Node):
    body: Node


@dataclass(frozen=True, slots=True)
class Array(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Cond(Node):
    test: Node
    then: Node | None  # None for the Elvis form `a ?: b`
    other: Node
