"""The JSONPath subset the web provider runs, and bounded JSON loading for every provider.

Rules:
- JSONPath is the subset Argo users write, hand-parsed: `{$.data.ok}`, `$.a.b`, `{.a.b}`,
  `$.items[0].value`, `$.items[-1]`, `$['a.b']`, `$.items[*].value`; braces optional.
  Anything else (filters, slices, `..`) is `JsonPathError` naming the unsupported part,
  never a guess. `parse` is pure (spec checks call it before any run), `select` walks
  the document without recursion.
- `load_json(text)` parses with the standard library only after a linear pre-scan proved
  the nesting at most MAX_DEPTH levels deep; deeper is `TooDeep` ("JSON nested deeper than
  64 levels"), so an answer can never exhaust Python's recursion. Text that is not JSON is
  ValueError, as from `json.loads`.
- No I/O here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate, repeat
from typing import Any

MAX_DEPTH = 64

_STEP = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]|\[\*\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_ONLY_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in "[]{}"))
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
SUPPORTED = "supported: $.a.b, $.items[0], $['a.b'], $.items[*].value, with or without braces"


class Wildcard:
    """The `[*]` / `.*` step: every child."""

    def __repr__(self) -> str:
        return "[*]"


ALL = Wildcard()
Step = str | int | Wildcard
JsonPath = tuple[Step, ...]


class JsonPathError(ValueError):
    """The text is not in the supported JSONPath subset; the message names the part."""


class TooDeep(ValueError):
    """A JSON document nested deeper than MAX_DEPTH."""


def parse(text: str) -> JsonPath:
    """Steps of a JSONPath: keys (str), indexes (int) and `ALL`.

    >>> parse("{$.items[0].value}")
    ('items', 0, 'value')
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    body = body.removeprefix("$")
    steps: list[Step] = []
    position = 0
    while position < len(body):
        match = _STEP.match(body, position)
        if match is None or body.startswith("..", position):
            raise JsonPathError(f"jsonPath {text!r} is not supported at {body[position:]!r}")
        key, index, quoted, double = match.groups()
        if key is not None:
            steps.append(ALL if key == "*" else key)
        elif index is not None:
            steps.append(int(index))
        elif quoted is not None or double is not None:
            steps.append(quoted if quoted is not None else double)
        else:
            steps.append(ALL)
        position = match.end()
    return tuple(steps)


def select(document: Any, path: JsonPath) -> list[Any]:
    """Every node `path` reaches in `document`, in document order (empty: no match)."""
    nodes = [document]
    for step in path:
        nodes = [child for node in nodes for child in _children(node, step)]
    return nodes


def _children(node: Any, step: Step) -> list[Any]:
    if isinstance(step, Wildcard):
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if isinstance(step, int):
        if isinstance(node, list) and -len(node) <= step < len(node):
            return [node[step]]
        return []
    if isinstance(node, dict) and step in node:
        return [node[step]]
    return []


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether `[`/`{` nest deeper than `limit` in `text`, outside JSON strings; linear, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False
    unescaped = text.replace("\\\\", "").replace('\\"', "")  # escapes first, so every '"' left is a delimiter
    outside = "".join(unescaped.split('"')[::2]) if '"' in unescaped else unescaped
    brackets = outside.translate(_ONLY_BRACKETS)
    return max(accumulate(map(_DELTA.get, brackets, repeat(0))), default=0) > limit


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _finite(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def read(token: str) -> Any:
        number = convert(token)
        if isinstance(number, float) and math.isinf(number):
            raise ValueError(f"the number {token[:20]}... is beyond float64")
        return number
    return read


def load_json(text: str, *, parse_int: Callable[[str], Any] | None = None, strict: bool = False) -> Any:
    """`json.loads(text)` for text nested at most MAX_DEPTH deep; TooDeep beyond, ValueError for non-JSON.

    `strict`: as Go's json.Unmarshal into `any` reads it: NaN, Infinity and -Infinity are not JSON,
    and neither is a number beyond float64 (both ValueError)."""
    if too_deep(text):
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        if strict:
            return json.loads(text, parse_int=_finite(parse_int or int), parse_float=_finite(float),
                              parse_constant=_not_json)
        return json.loads(text, parse_int=parse_int)
    except RecursionError:  # unreachable after the scan; kept so no RecursionError can escape
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
