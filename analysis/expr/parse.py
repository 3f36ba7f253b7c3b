"""Parser of the condition language: expr-lang syntax, precedence climbing, hand-written.

Rules and invariants:
- User text is never handed to `eval`, `exec`, `compile` or `ast`: `expr.tokens` turns it
  into tokens, this precedence-climbing parser (expr-lang's own precedence table, below)
  turns the tokens into `expr.nodes`, and `expr.compile` compiles those.
- Bounded: text longer than MAX_LENGTH characters, or a tree deeper than MAX_DEPTH nodes
  (parentheses, unary operators and long operator chains all count), is an ExprSyntaxError
  before anything recurses deeply.
- Every syntax error is an ExprSyntaxError carrying `.position`, the 0-based character
  offset of the offending token (its column for one-line text), and a message naming it:
  `unexpected token ')' at column 12`; for text with line breaks: `at line 2, column 4`.
- Grammar notes kept from expr-lang: chained comparisons `a < b < c` mean
  `a < b && b < c`; `not in`/`not contains`/... negate; `**` and `^` are right-associative
  and bind tighter than unary minus (`-2 ** 2 == -4`); `??` cannot be mixed with other
  binary operators without parentheses; predicates take `{...}` or a bare expression, in
  which `#` is the element, `#index` its index and `.name` means `#.name`; `x | f(y)` is
  `f(x, y)`; lists, maps and calls allow a trailing comma. Method calls (`result.Name()`)
  are rejected: only built-ins can be called.
Size: over 300 lines because a recursive-descent parser: one function per precedence
  level.
"""

from __future__ import annotations

from analysis.expr.nodes import (
    Array,
    Binary,
    Call,
    Cond,
    Lit,
    MapLit,
    Member,
    Name,
    Node,
    Pointer,
    Predicate,
    Slice,
    Unary,
)  # fmt: skip
from analysis.expr.tokens import Cursor, ExprSyntaxError, Token

MAX_LENGTH = 4096
MAX_DEPTH = 64

BINARY = {
    "|": (0, "left"), "or": (10, "left"), "||": (10, "left"), "and": (15, "left"),
    "&&": (15, "left"), "==": (20, "left"), "!=": (20, "left"), "<": (20, "left"),
    ">": (20, "left"), ">=": (20, "left"), "<=": (20, "left"), "in": (20, "left"),
    "matches": (20, "left"), "contains": (20, "left"), "startsWith": (20, "left"),
    "endsWith": (20, "left"), "..": (25, "left"), "+": (30, "left"), "-": (30, "left"),
    "*": (60, "left"), "/": (60, "left"), "%": (60, "left"), "**": (100, "right"),
    "^": (100, "right"), "??": (500, "left"),
}  # fmt: skip
UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
NEGATABLE = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
NORMAL = {"and": "&&", "or": "||", "^": "**", "not": "!"}
# Built-ins whose arguments are predicates: one spec letter per argument,
# "e" an expression, "p" a predicate, "P" an optional predicate.
PREDICATE_ARGS = {
    "all": "ep", "any": "ep", "none": "ep", "one": "ep", "filter": "ep", "map": "ep",
    "find": "ep", "findIndex": "ep", "findLast": "ep", "findLastIndex": "ep",
    "count": "eP", "sum": "eP",
}  # fmt: skip


def parse(source: str) -> Node:
    """Parse `source` into a node tree, or raise ExprSyntaxError."""
    if len(source) > MAX_LENGTH:
        raise ExprSyntaxError(
            f"expression is {len(source)} characters long, more than the {MAX_LENGTH} allowed",
            position=MAX_LENGTH,
            source=source,
        )
    return _Parser(source).parse()


class _Parser(Cursor):
    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.nesting = 0  # recursion guard
        self.predicates = 0  # how many predicates we are inside

    def too_deep(self, pos: int) -> ExprSyntaxError:
        message = f"expression nests too deeply (more than {MAX_DEPTH} levels)"
        return ExprSyntaxError(message, position=pos, source=self.source)

    def node(self, cls: type, pos: int, *children: Node | None, **fields: object) -> Node:
        depth = 1 + max((c.depth for c in children if c is not None), default=0)
        if depth > MAX_DEPTH:
            raise self.too_deep(pos)
        made: Node = cls(pos=pos, depth=depth, **fields)
        return made

    # -- grammar
    def parse(self) -> Node:
        if not self.source.strip():
            raise self.error("empty expression")
        tree = self.expression(0)
        if self.cur.kind != "eof":
            raise self.unexpected()
        return tree

    def expression(self, precedence: int) -> Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.too_deep(self.cur.pos)
        try:
            left = self.binary(self.primary(), precedence)
            if precedence == 0:
                left = self.conditional(left)
            return left
        finally:
            self.nesting -= 1

    def binary(self, left: Node, precedence: int) -> Node:
        previous = ""
        while self.cur.kind == "op":
            op_tok = self.cur
            op = op_tok.text
            negate = op == "not"
            if negate:
                following = self.tokens[self.i + 1]
                if following.kind != "op" or following.text not in NEGATABLE:
                    raise self.unexpected(following)
                if BINARY[following.text][0] < precedence:
                    break
                op = following.text
            spec = BINARY.get(op)
            if spec is None or spec[0] < precedence:
                break
            self.advance()
            if negate:
                self.advance()
            if previous == "??" and op != "??":
                raise self.error(
                    f"operator {op} and coalesce expressions (??) cannot be mixed; "
                    "wrap either in parentheses",
                    op_tok,
                )
            if op == "|":
                name = self.cur
                if name.kind != "ident":
                    raise self.unexpected()
                self.advance()
                left = self.call(name, [left])
            elif spec[0] == 20 and not negate:
                left = self.comparison(left, op_tok)
            else:
                nxt = spec[0] + 1 if spec[1] == "left" else spec[0]
                right = self.expression(nxt)
                left = self.node(Binary, op_tok.pos, left, right, op=NORMAL.get(op, op),
                                 left=left, right=right)  # fmt: skip
                if negate:
                    left = self.node(Unary, op_tok.pos, left, op="!", operand=left)
            previous = op
        return left

    def comparison(self, left: Node, op_tok: Token) -> Node:
        root: Node | None = None
        while True:
            right = self.expression(21)
            cmp = self.node(Binary, op_tok.pos, left, right, op=op_tok.text, left=left,
                            right=right)  # fmt: skip
            root = cmp if root is None else self.node(
                Binary, op_tok.pos, root, cmp, op="&&", left=root, right=cmp
            )
            left = right
            op_tok = self.cur
            if not (op_tok.kind == "op" and BINARY.get(op_tok.text, (0,))[0] == 20):
                return root
            self.advance()

    def conditional(self, test: Node) -> Node:
        while self.is_("op", "?"):
            pos = self.advance().pos
            then: Node | None = None
            if self.is_("op", ":"):
                self.advance()
            else:
                then = self.expression(0)
                self.expect("op", ":")
            other = self.expression(0)
            test = self.node(Cond, pos, test, then, other, test=test, then=then, other=other)
        return test

    def primary(self) -> Node:
        tok = self.cur
        if tok.kind == "op" and tok.text in UNARY:
            self.advance()
            operand = self.expression(UNARY[tok.text])
            op = NORMAL.get(tok.text, tok.text)
            return self.postfix(self.node(Unary, tok.pos, operand, op=op, operand=operand))
        if self.is_("bracket", "("):
            self.advance()
            inner = self.expression(0)
            self.expect("bracket", ")")
            return self.postfix(inner)
        if tok.kind == "op" and tok.text in ("#", "."):
            if self.predicates == 0:
                raise self.error("cannot use pointer accessor outside predicate")
            if tok.text == "#":
                self.advance()
                name = ""
                if self.cur.kind == "ident" and self.cur.pos == tok.pos + 1:
                    name = self.advance().text
                    if name != "index":
                        raise self.error(f"unknown pointer #{name}", tok)
                return self.postfix(self.node(Pointer, tok.pos, name=name))
            return self.postfix(self.node(Pointer, tok.pos, name=""))  # `.x` is `#.x`
        if tok.kind == "op" and tok.text == "let":
            raise self.error("variable declarations (let) are not supported")
        return self.postfix(self.secondary())

    def secondary(self) -> Node:
        tok = self.advance()
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return self.node(Lit, tok.pos, value=tok.text == "true")
            if tok.text == "nil":
                return self.node(Lit, tok.pos, value=None)
            if self.is_("bracket", "("):
                return self.call(tok, [])
            return self.node(Name, tok.pos, name=tok.text)
        if tok.kind in ("num", "str"):
            return self.node(Lit, tok.pos, value=tok.value)
        if tok.kind == "bracket" and tok.text == "[":
            items = self.items("]", self.argument)
            return self.node(Array, tok.pos, *items, items=tuple(items))
        if tok.kind == "bracket" and tok.text == "{":
            return self.map_literal(tok)
        raise self.unexpected(tok)

    def argument(self) -> Node:
        return self.expression(0)

    def map_literal(self, open_tok: Token) -> Node:
        pairs = self.items("}", self.map_pair)
        children = [n for pair in pairs for n in pair]
        return self.node(MapLit, open_tok.pos, *children, pairs=tuple(pairs))

    def map_pair(self) -> tuple[Node, Node]:
        key_tok = self.cur
        if key_tok.kind in ("num", "str", "ident"):
            self.advance()
            text = key_tok.value if key_tok.kind == "str" else key_tok.text
            key = self.node(Lit, key_tok.pos, value=text)
        elif self.is_("bracket", "("):
            key = self.expression(0)
        else:
            raise self.error(
                "a map key must be a quoted string, a number, an identifier, or an "
                f"expression in parentheses (unexpected token {key_tok.shown()})"
            )
        self.expect("op", ":")
        return key, self.expression(0)

    def call(self, name_tok: Token, args: list[Node]) -> Node:
        spec = PREDICATE_ARGS.get(name_tok.text)
        self.expect("bracket", "(")
        if spec is None:  # a piped-in first argument has no comma before it
            args.extend(self.items(")", self.argument))
        else:
            for index, kind in enumerate(spec[len(args) :]):
                if self.is_("bracket", ")"):
                    if kind == "P":
                        break
                    raise self.error(f"expected at least {len(spec)} arguments to {name_tok.text}")
                if index > 0:
                    self.expect("op", ",")
                args.append(self.expression(0) if kind == "e" else self.predicate())
            if self.is_("op", ","):
                self.advance()
            self.expect("bracket", ")")
        return self.node(Call, name_tok.pos, *args, name=name_tok.text, args=tuple(args))

    def predicate(self) -> Node:
        start = self.cur
        braced = self.is_("bracket", "{")
        if braced:
            self.advance()
        self.predicates += 1
        body = self.expression(0)
        self.predicates -= 1
        if braced:
            self.expect("bracket", "}")
        return self.node(Predicate, start.pos, body, body=body)

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.cur
            if tok.kind == "op" and tok.text in (".", "?."):
                optional = tok.text == "?."
                self.advance()
                if optional and self.is_("bracket", "["):
                    node = self.index(node, optional=True)
                    continue
                prop = self.advance()
                if prop.kind != "ident" and not (prop.kind == "op" and prop.text.isalpha()):
                    raise self.error("expected name", prop)
                if self.is_("bracket", "("):
                    raise self.error(
                        f"unknown method {prop.text}(): only built-in functions can be called",
                        prop,
                    )
                key = self.node(Lit, prop.pos, value=prop.text)
                node = self.node(Member, prop.pos, node, key, obj=node, prop=key,
                                 optional=optional)  # fmt: skip
            elif tok.kind == "bracket" and tok.text == "[":
                node = self.index(node, optional=False)
            else:
                return node

    def index(self, node: Node, *, optional: bool) -> Node:
        open_tok = self.expect("bracket", "[")
        lo: Node | None = None
        if not self.is_("op", ":"):
            lo = self.expression(0)
            if self.is_("bracket", "]"):
                self.advance()
                return self.node(Member, open_tok.pos, node, lo, obj=node, prop=lo,
                                 optional=optional)  # fmt: skip
        self.expect("op", ":")
        hi = None if self.is_("bracket", "]") else self.expression(0)
        self.expect("bracket", "]")
        return self.node(Slice, open_tok.pos, node, lo, hi, obj=node, lo=lo, hi=hi)
