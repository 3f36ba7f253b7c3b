"""Tokens of the condition language, and the errors every part of it raises.

Rules and invariants:
- Every failure of the language, at compile or run time, is an ExprError whose message
  says what is wrong in the user's terms (Go type names, the offending value).
- Anything wrong with the text itself is an ExprSyntaxError carrying `.reason` (the bare
  message), `.position` (0-based character offset of the offending token) and `.source`;
  its str() appends where: `at column 12` for one-line text, `at line 2, column 4` otherwise.
- `tokenize` reads characters only: it knows no precedence and builds no tree. Numbers
  keep expr-lang's literal forms (`0x1F`, `0b101`, `0o17`, `1_000`, `.5`, `1e3`); integer
  literals fit in int64 and float literals are finite. Strings take `'`, `"` or raw
  backquotes; escapes are Go's. `//` and `/* */` are comments. Its caller bounds the
  length of the text (expr.parse.MAX_LENGTH).
- A Cursor walks the tokens for the parser and never moves past the final "eof" token,
  so looking ahead at the end of the text is always safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar


class ExprError(Exception):
    """An expression could not be compiled or evaluated; the message says why."""


class ExprSyntaxError(ExprError):
    """The text itself is wrong (syntax, unknown name, static type mismatch)."""

    def __init__(self, message: str, *, position: int, source: str = "") -> None:
        self.reason = message
        self.position = position
        self.source = source
        super().__init__(f"{message} at {where(source, position)}")


def where(source: str, position: int) -> str:
    """`column N` for one-line text, `line L, column C` (line 1-based) otherwise."""
    if "\n" not in source:
        return f"column {position}"
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1)
    return f"line {line}, column {column}"


WORD_OPERATORS = frozenset(
    {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith", "let"}
)
SYMBOLS = (
    "**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "..", "::",
    "+", "-", "*", "/", "%", "^", "<", ">", "!", "?", ":", ",", ".", "#", "|", "=", ";",
)  # fmt: skip
DIGITS = "0123456789"
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`",
           "a": "\a", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}  # fmt: skip
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "str", "ident", "op", "bracket", "eof"
    text: str
    pos: int
    value: object = None

    def shown(self) -> str:
        return "end of expression" if self.kind == "eof" else repr(self.text)


def tokenize(source: str) -> list[Token]:
    """Split `source` into tokens, ending with one "eof" token; raises ExprSyntaxError."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\r\n":
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise ExprSyntaxError("unclosed comment", position=i, source=source)
            i = end + 2
        elif ch in DIGITS or (ch == "." and i + 1 < n and source[i + 1] in DIGITS):
            i = _number(source, i, tokens)
        elif ch.isalpha() or ch in "_$":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            word = source[i:j]
            tokens.append(Token("op" if word in WORD_OPERATORS else "ident", word, i))
            i = j
        elif ch in "'\"`":
            i = _string(source, i, tokens)
        elif ch in "()[]{}":
            tokens.append(Token("bracket", ch, i))
            i += 1
        else:
            sym = next((s for s in SYMBOLS if source.startswith(s, i)), None)
            if sym is None:
                raise ExprSyntaxError(f"unexpected character {ch!r}", position=i, source=source)
            if sym == "?." and i + 2 < n and source[i + 2] in DIGITS:
                sym = "?"  # `a ?.5 : 1` is a ternary, not optional chaining
            tokens.append(Token("op", sym, i))
            i += len(sym)
    tokens.append(Token("eof", "", n))
    return tokens


def _number(source: str, i: int, tokens: list[Token]) -> int:
    j, n = i, len(source)
    lower = source[i : i + 2].lower()
    if lower in ("0x", "0b", "0o"):
        j = i + 2
        while j < n and (source[j].isalnum() or source[j] == "_"):
            j += 1
        text = source[i:j]
        try:
            value: int | float = int(text.replace("_", ""), 0)
        except ValueError:
            raise ExprSyntaxError(f"invalid number {text!r}", position=i, source=source) from None
    else:
        while j < n and (source[j] in DIGITS or source[j] == "_"):
            j += 1
        if j < n and source[j] == "." and not source.startswith("..", j):
            j += 1
            while j < n and (source[j] in DIGITS or source[j] == "_"):
                j += 1
        if j < n and source[j] in "eE":
            k = j + 1
            if k < n and source[k] in "+-":
                k += 1
            if k < n and source[k] in DIGITS:
                j = k
                while j < n and source[j] in DIGITS:
                    j += 1
        text = source[i:j]
        clean = text.replace("_", "")
        value = float(clean) if any(c in clean for c in ".eE") else int(clean)
    if isinstance(value, int) and value > 2**63 - 1:
        raise ExprSyntaxError("integer literal is too large", position=i, source=source)
    if value == float("inf"):
        raise ExprSyntaxError("float literal is too large", position=i, source=source)
    tokens.append(Token("num", text, i, value))
    return j


def _string(source: str, i: int, tokens: list[Token]) -> int:
    quote, j, n = source[i], i + 1, len(source)
    out: list[str] = []
    while j < n and source[j] != quote:
        ch = source[j]
        if ch == "\\" and quote != "`":
            j += 1
            esc = source[j] if j < n else ""
            if esc in ESCAPES:
                out.append(ESCAPES[esc])
                j += 1
            elif esc in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = source[j + 1 : j + 1 + width]
                try:
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    raise ExprSyntaxError(
                        "invalid escape in string", position=j - 1, source=source
                    ) from None
                j += 1 + width
            else:
                raise ExprSyntaxError("invalid escape in string", position=j - 1, source=source)
        else:
            out.append(ch)
            j += 1
    if j >= n:
        raise ExprSyntaxError("literal not terminated", position=i, source=source)
    tokens.append(Token("str", source[i : j + 1], i, "".join(out)))
    return j + 1


class Cursor:
    """The tokens of `source` and a position in them, with the helpers a parser needs to
    look ahead, consume and raise errors at a token."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0

    @property
    def cur(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def error(self, message: str, token: Token | None = None) -> ExprSyntaxError:
        tok = token or self.cur
        return ExprSyntaxError(message, position=tok.pos, source=self.source)

    def unexpected(self, token: Token | None = None) -> ExprSyntaxError:
        tok = token or self.cur
        if tok.kind == "eof":
            return self.error("unexpected end of expression", tok)
        return self.error(f"unexpected token {tok.shown()}", tok)

    def is_(self, kind: str, text: str | None = None) -> bool:
        tok = self.cur
        return tok.kind == kind and (text is None or tok.text == text)

    def expect(self, kind: str, text: str) -> Token:
        if not self.is_(kind, text):
            raise self.unexpected()
        return self.advance()

    def items(self, closing: str, item: Callable[[], T]) -> list[T]:
        """Comma-separated `item()`s up to and including the `closing` bracket; a trailing
        comma is allowed."""
        out: list[T] = []
        while not self.is_("bracket", closing):
            if out:
                self.expect("op", ",")
                if self.is_("bracket", closing):
                    break
            out.append(item())
        self.advance()
        return out
